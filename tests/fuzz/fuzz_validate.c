/* libFuzzer target: any bytes as a body of any interaction, both ways, then
 * pruned as a request. The validator must never crash, hang or leak,
 * whatever it is given. */
#include "oke/validate.h"

#include <cjson/cJSON.h>
#include <oke/plugin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *j = cJSON_ParseWithLength((const char *)data, size);
  okegw_validate_ctx ctx = {.path_id = "0f57a72a-7f7d-5cea-87ec-6245bd3a2363",
                            .result_value_type = "0.0-10.0"};
  for (int i = 0; i <= OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS + 1; i++) {
    for (int kind = 0; kind < 2; kind++) {
      okegw_violations v = {0};
      okegw_validate(i, (enum okegw_body_kind)kind, j, &ctx, &v);
      char *p = okegw_violations_problem(&v, 400);
      cJSON_free(p);
      okegw_violations_free(&v);
    }
    cJSON *copy = cJSON_Duplicate(j, 1);
    char removed[64];
    okegw_validate_prune(i, copy, removed, sizeof removed);
    cJSON_Delete(copy);
  }
  cJSON_Delete(j);
  return 0;
}
