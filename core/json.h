/* The JSON services of the plugin SDK (oke_host json_*), backed by cJSON.
 * An oke_json* is a cJSON* behind an opaque name. */
#ifndef OKEGW_JSON_H
#define OKEGW_JSON_H

#include <oke/plugin.h>

/* Fills the json_* members (and free) of a host table. */
void okegw_json_fill_host(oke_host *h);

#endif
