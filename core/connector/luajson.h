/* One crossing per message between a cJSON tree and a Lua table, with no JSON
 * text in between.
 *
 * JSON -> Lua: objects become tables with string keys, arrays become tables
 * with keys 1..n that carry the `json.array` metatable (so an empty array
 * stays an array), null becomes the `json.null` sentinel, integral numbers
 * that fit exactly in a double (|n| <= 2^53) become Lua integers, others
 * floats.
 * Lua -> JSON: a table with the array metatable, or with only keys 1..n
 * (n > 0), is an array; any other table is an object (an empty table without
 * the metatable is {}). Integers beyond 2^53 are written digit for digit.
 * Strings must be valid UTF-8. Nesting is limited to OKEGW_JSON_MAX_DEPTH. */
#ifndef OKEGW_LUAJSON_H
#define OKEGW_LUAJSON_H

#include <cjson/cJSON.h>
#include <lua.h>
#include <stddef.h>

#define OKEGW_JSON_MAX_DEPTH 64

/* Creates the `json` library table (json.null, json.array(t), json.object(t),
 * json.is_array(t)) and leaves it on the stack. Call once per state. */
void okegw_luajson_open(lua_State *L);

/* Pushes the Lua value for j. Returns 0, or -1 with a message in err when
 * the tree nests too deep (nothing is pushed then). */
int okegw_luajson_push(lua_State *L, const cJSON *j, char *err, size_t errsz);

/* Converts the value at idx. Returns a new tree, or NULL with a message in
 * err naming the JSON pointer of the offending value. A read-only table (see
 * below) converts as its contents. */
cJSON *okegw_luajson_to_json(lua_State *L, int idx, char *err, size_t errsz);
/* The same conversion straight to JSON text (heap, NUL-terminated, free()),
 * byte for byte what okegw_json_print prints of okegw_luajson_to_json's tree,
 * for a message that is only sent on: no tree is built. NULL with a message
 * in err, the same one okegw_luajson_to_json gives. */
char *okegw_luajson_print(lua_State *L, int idx, char *err, size_t errsz);

/* Read-only tables, for what the scripts of a state share (libraries).
 * okegw_luajson_freeze turns the table on top of the stack, and every table
 * reachable from it through its fields, into a read-only view in place:
 * the contents move to a hidden table, the visible one stays empty with a
 * protected metatable whose __index, __pairs and __len read the hidden one
 * and whose __newindex refuses. Nothing hands the hidden table out, and
 * json.array/json.object refuse a read-only table; `rawset` must refuse it
 * too (okegw_luajson_is_frozen). */
void okegw_luajson_freeze(lua_State *L);
int okegw_luajson_is_frozen(lua_State *L, int idx);

#endif
