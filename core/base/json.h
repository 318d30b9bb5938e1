/* The JSON services of the plugin SDK (oke_host json_*), backed by cJSON.
 * An oke_json* is a cJSON* behind an opaque name. */
#ifndef OKEGW_JSON_H
#define OKEGW_JSON_H

#include <oke/plugin.h>

#include <cjson/cJSON.h>

/* Fills the json_* members (and free) of a host table. */
void okegw_json_fill_host(oke_host *h);

/* The shortest text that reads back as exactly d ("0.1", "9007199254740992",
 * "1e+21"): cJSON's own printer rounds to 15 digits. buf needs 32 bytes. */
void okegw_json_format_number(double d, char buf[32]);
/* Rewrites every number node of the tree so that printing it keeps each
 * value exactly. Returns 0, or -1 when out of memory. */
int okegw_json_exact_numbers(cJSON *j);
/* Finds an object with the same member name twice anywhere in the tree:
 * returns 1 and writes its JSON pointer (RFC 6901) to ptr, else 0. okegw
 * refuses such bodies: parsers disagree on which value wins, and the
 * validator must see what the peer and the mappings see. */
int okegw_json_find_duplicate(const cJSON *j, char *ptr, size_t ptrsz);

/* Adds member name as a string, U+FFFD in place of bytes that are not UTF-8
 * (a peer's words may be cut mid-character), or null for NULL unless omit
 * (then nothing is added). 0, or -1 when out of memory. */
int okegw_json_add_text(cJSON *o, const char *name, const char *v, int omit);

/* Like cJSON_PrintUnformatted, with every number written exactly; the tree
 * is not changed. */
char *okegw_json_print(const cJSON *j);

#endif
