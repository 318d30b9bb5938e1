/* libFuzzer target: any JSON through the Lua crossing and back; the value
 * must come back equal (numbers within what a double holds). */
#include "base/json.h"
#include "connector/luajson.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *j = cJSON_ParseWithLength((const char *)data, size);
  char dup[64];
  if (!j || okegw_json_find_duplicate(j, dup, sizeof dup)) {
    cJSON_Delete(j); /* a repeated name cannot come back the same */
    return 0;
  }
  lua_State *L = luaL_newstate();
  okegw_luajson_open(L);
  lua_setglobal(L, "json");
  char err[256];
  if (okegw_luajson_push(L, j, err, sizeof err) == 0) {
    cJSON *back = okegw_luajson_to_json(L, -1, err, sizeof err);
    /* strings with NUL or bad UTF-8 may be refused on the way back; what
     * comes back must be the same value */
    if (back && !cJSON_Compare(j, back, 1)) {
      char *a = cJSON_PrintUnformatted(j), *b = cJSON_PrintUnformatted(back);
      int same_text = a && b && !strcmp(a, b);
      free(a);
      free(b);
      if (!same_text)
        abort();
    }
    cJSON_Delete(back);
  }
  lua_close(L);
  cJSON_Delete(j);
  return 0;
}
