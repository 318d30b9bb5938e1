/* libFuzzer target: any bytes as plugins.conf. */
#include "base/conf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  okegw_conf c;
  okegw_diag d = {0};
  if (okegw_conf_parse("/etc/okegw/plugins.conf", text, &c, &d) == 0)
    okegw_conf_free(&c);
  okegw_diag_free(&d);
  free(text);
  return 0;
}
