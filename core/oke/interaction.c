#include "oke/interaction.h"

#include <cjson/cJSON.h>

#include <oke/plugin.h>
#include <string.h>

/* One row per interaction, indexed by number, from the SDK's list. */
static const struct {
  const char *name, *method, *path;
} rows[] = {[OKE_I_UNKNOWN] = {"unknown", NULL, NULL},
#define ROW(sym, num, id, method, path) [num] = {id, method, path},
            OKE_INTERACTIONS(ROW)
#undef ROW
};

#define COUNT ((int)(sizeof rows / sizeof rows[0]))
_Static_assert(COUNT == OKE_INTERACTION_END, "OKE_INTERACTION_END is one past the last row");

const char *okegw_interaction_name(int i) {
  return i > 0 && i < COUNT && rows[i].name ? rows[i].name : "unknown";
}

const char *okegw_interaction_method(int i) {
  return i > 0 && i < COUNT && rows[i].method ? rows[i].method : "";
}

const char *okegw_interaction_path(int i) {
  return i > 0 && i < COUNT && rows[i].path ? rows[i].path : "";
}

int okegw_interaction_by_name(const char *name) {
  for (int i = 1; i < COUNT; i++)
    if (rows[i].name && strcmp(rows[i].name, name) == 0)
      return i;
  return 0;
}

int okegw_interaction_count(void) { return COUNT; }

cJSON *okegw_service_metadata(void) {
  cJSON *o = cJSON_CreateObject(), *e = cJSON_CreateObject();
  cJSON *v = o ? cJSON_AddArrayToObject(o, "supportedVersions") : NULL;
  cJSON *cons = o ? cJSON_AddArrayToObject(o, "supportedConsumers") : NULL;
  if (!v || !cons || !e || !cJSON_AddItemToArray(cons, e)) {
    cJSON_Delete(e);
    cJSON_Delete(o);
    return NULL;
  }
  if (!cJSON_AddItemToArray(v, cJSON_CreateString("v5")) ||
      !cJSON_AddStringToObject(e, "consumerKey", "nl-test-admin") ||
      !cJSON_AddStringToObject(e, "version", "1.0.1")) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}
