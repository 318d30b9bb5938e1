#include "connector/luajson.h"
#include "base/util.h"

#include <inttypes.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Registry keys: addresses of these statics are unique light userdata. */
static const char null_key = 'n';
static const char array_mt_key = 'a';
static const char frozen_key = 'f'; /* marks the metatable of a read-only table */

#define TWO_53 9007199254740992.0

static void push_null(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key); }

static int is_null(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TLIGHTUSERDATA)
    return 0;
  push_null(L);
  int r = lua_rawequal(L, idx < 0 ? idx - 1 : idx, -1);
  lua_pop(L, 1);
  return r;
}

int okegw_luajson_is_frozen(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx))
    return 0;
  int r = lua_rawgetp(L, -1, &frozen_key) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

/* Pushes the hidden contents of the read-only table at idx. */
static void push_frozen_contents(lua_State *L, int idx) {
  lua_getmetatable(L, idx);
  lua_pushliteral(L, "__index");
  lua_rawget(L, -2);
  lua_replace(L, -2);
}

static int has_array_mt(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx))
    return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  int r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* json.array and json.object change a table's metatable: like setmetatable,
 * they leave a protected one (a read-only library's) alone. */
static void check_unprotected(lua_State *L, const char *fn) {
  if (luaL_getmetafield(L, 1, "__metatable") == LUA_TNIL)
    return;
  lua_pop(L, 1);
  if (has_array_mt(L, 1))
    return;
  luaL_error(L, "%s: the table has a protected metatable (a shared library cannot be changed)", fn);
}

/* json.array(t): marks t (or a new table) as a JSON array. */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1))
    lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  check_unprotected(L, "json.array");
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
  lua_setmetatable(L, 1);
  return 1;
}

/* json.object(t): a table that stays a JSON object even when empty. */
static int l_object(lua_State *L) {
  if (lua_isnoneornil(L, 1))
    lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  check_unprotected(L, "json.object");
  lua_settop(L, 1);
  lua_pushnil(L);
  lua_setmetatable(L, 1);
  return 1;
}

static int l_is_array(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE && okegw_luajson_is_frozen(L, 1)) {
    push_frozen_contents(L, 1);
    lua_replace(L, 1);
  }
  lua_pushboolean(L, lua_type(L, 1) == LUA_TTABLE && has_array_mt(L, 1));
  return 1;
}

void okegw_luajson_open(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&null_key);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &null_key);
  lua_newtable(L);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__name");
  /* getmetatable() on an array answers "array" and cannot reach (and so
   * cannot change) the metatable every array shares */
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);

  lua_newtable(L);
  push_null(L);
  lua_setfield(L, -2, "null");
  lua_pushcfunction(L, l_array);
  lua_setfield(L, -2, "array");
  lua_pushcfunction(L, l_object);
  lua_setfield(L, -2, "object");
  lua_pushcfunction(L, l_is_array);
  lua_setfield(L, -2, "is_array");
}

/* ---- JSON -> Lua ------------------------------------------------------- */

static int push_value(lua_State *L, const cJSON *j, int depth, char *err, size_t errsz) {
  if (depth > OKEGW_JSON_MAX_DEPTH) {
    snprintf(err, errsz, "JSON nests deeper than %d levels", OKEGW_JSON_MAX_DEPTH);
    return -1;
  }
  if (!lua_checkstack(L, 4)) {
    snprintf(err, errsz, "Lua stack exhausted");
    return -1;
  }
  if (cJSON_IsNull(j)) {
    push_null(L);
  } else if (cJSON_IsBool(j)) {
    lua_pushboolean(L, cJSON_IsTrue(j));
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) <= TWO_53)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsString(j)) {
    lua_pushstring(L, j->valuestring);
  } else if (cJSON_IsArray(j)) {
    lua_createtable(L, cJSON_GetArraySize(j), 0);
    lua_Integer i = 1;
    for (const cJSON *e = j->child; e; e = e->next) {
      if (push_value(L, e, depth + 1, err, errsz) < 0) {
        lua_pop(L, 1);
        return -1;
      }
      lua_rawseti(L, -2, i++);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    lua_setmetatable(L, -2);
  } else if (cJSON_IsObject(j)) {
    lua_createtable(L, 0, cJSON_GetArraySize(j));
    for (const cJSON *e = j->child; e; e = e->next) {
      /* the name made a Lua string once, for the check and the set */
      lua_pushstring(L, e->string ? e->string : "");
      lua_pushvalue(L, -1);
      /* a repeated name keeps its first value, as cJSON's lookups do */
      if (lua_rawget(L, -3) != LUA_TNIL) {
        lua_pop(L, 2);
        continue;
      }
      lua_pop(L, 1);
      if (push_value(L, e, depth + 1, err, errsz) < 0) {
        lua_pop(L, 2);
        return -1;
      }
      lua_rawset(L, -3);
    }
  } else {
    snprintf(err, errsz, "unsupported JSON value");
    return -1;
  }
  return 0;
}

int okegw_luajson_push(lua_State *L, const cJSON *j, char *err, size_t errsz) {
  return push_value(L, j, 0, err, errsz);
}

/* ---- Lua -> JSON ------------------------------------------------------- */

/* The JSON pointer of the value being converted, for error messages: its
 * segments, written out only when a message needs them. A key points at the
 * Lua string, which stays on the stack while its value converts. */
typedef struct path {
  struct {
    const char *key; /* NULL: index */
    size_t len;
    lua_Integer index;
  } seg[OKEGW_JSON_MAX_DEPTH + 2];
  int n;
} path;

static void path_key(path *p, const char *k, size_t len) {
  if (p->n < (int)(sizeof p->seg / sizeof p->seg[0]))
    p->seg[p->n].key = k, p->seg[p->n].len = len;
  p->n++;
}

static void path_index(path *p, lua_Integer i) {
  if (p->n < (int)(sizeof p->seg / sizeof p->seg[0]))
    p->seg[p->n].key = NULL, p->seg[p->n].index = i;
  p->n++;
}

static void path_pop(path *p) { p->n--; }

/* Appends "/seg" (RFC 6901 escapes) to buf, as far as it fits. */
static void pointer_add(char *buf, size_t size, size_t *len, const char *seg, size_t seglen) {
  if (*len + 1 < size)
    buf[(*len)++] = '/';
  for (size_t i = 0; i < seglen && *len + 2 < size; i++) {
    if (seg[i] == '~' || seg[i] == '/') {
      buf[(*len)++] = '~';
      buf[(*len)++] = seg[i] == '~' ? '0' : '1';
    } else {
      buf[(*len)++] = seg[i];
    }
  }
  buf[*len] = '\0';
}

static cJSON *fail(char *err, size_t errsz, const path *p, const char *what) {
  char buf[512], num[32];
  size_t len = 0;
  buf[0] = '\0';
  int n = p->n < (int)(sizeof p->seg / sizeof p->seg[0]) ? p->n
                                                         : (int)(sizeof p->seg / sizeof p->seg[0]);
  for (int i = 0; i < n; i++) {
    if (p->seg[i].key)
      pointer_add(buf, sizeof buf, &len, p->seg[i].key, p->seg[i].len);
    else
      pointer_add(buf, sizeof buf, &len, num,
                  (size_t)snprintf(num, sizeof num, "%" PRId64, (int64_t)p->seg[i].index));
  }
  snprintf(err, errsz, "%s at %s", what, len ? buf : "/ (the message itself)");
  return NULL;
}

static cJSON *to_json(lua_State *L, int idx, int depth, path *p, char *err, size_t errsz);

/* 1..n with n > 0 and nothing else: a Lua sequence. */
static int is_sequence(lua_State *L, int idx, lua_Integer *n) {
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1)) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1) {
      lua_pop(L, 1);
      return 0;
    }
    if (k > max)
      max = k;
    count++;
  }
  *n = max;
  return count > 0 && count == max;
}

static cJSON *table_to_json(lua_State *L, int idx, int depth, path *p, char *err, size_t errsz) {
  lua_Integer n = 0;
  int array = has_array_mt(L, idx);
  if (array) {
    /* holes or other keys in a marked array are an error, not dropped */
    if (!is_sequence(L, idx, &n)) {
      lua_pushnil(L);
      if (lua_next(L, idx)) {
        lua_pop(L, 2);
        return fail(err, errsz, p, "an array with keys other than 1..n");
      }
      n = 0;
    }
  } else {
    array = is_sequence(L, idx, &n);
  }
  if (array) {
    cJSON *a = cJSON_CreateArray();
    if (!a)
      return fail(err, errsz, p, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      path_index(p, i - 1);
      cJSON *e = to_json(L, lua_gettop(L), depth + 1, p, err, errsz);
      path_pop(p);
      lua_pop(L, 1);
      if (!e || !cJSON_AddItemToArray(a, e)) {
        cJSON_Delete(e);
        cJSON_Delete(a);
        return NULL;
      }
    }
    return a;
  }
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return fail(err, errsz, p, "out of memory");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      cJSON_Delete(o);
      return fail(err, errsz, p,
                  "a table mixing string and number keys (JSON objects need string keys)");
    }
    size_t klen;
    const char *k = lua_tolstring(L, -2, &klen);
    path_key(p, k, klen);
    if (!okegw_utf8_valid(k, klen) || memchr(k, '\0', klen)) {
      lua_pop(L, 2);
      cJSON_Delete(o);
      return fail(err, errsz, p, "a key that is not valid UTF-8");
    }
    cJSON *e = to_json(L, lua_gettop(L), depth + 1, p, err, errsz);
    path_pop(p);
    lua_pop(L, 1);
    if (!e || !cJSON_AddItemToObject(o, k, e)) {
      cJSON_Delete(e);
      lua_pop(L, 1);
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

static cJSON *to_json(lua_State *L, int idx, int depth, path *p, char *err, size_t errsz) {
  if (depth > OKEGW_JSON_MAX_DEPTH)
    return fail(err, errsz, p, "nesting deeper than 64 levels");
  if (!lua_checkstack(L, 6))
    return fail(err, errsz, p, "Lua stack exhausted");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return fail(err, errsz, p, "nil (use json.null for a JSON null)");
  case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      if (i >= -((lua_Integer)1 << 53) && i <= ((lua_Integer)1 << 53))
        return cJSON_CreateNumber((double)i);
      /* A double would round it: write the digits as they are. */
      char digits[32];
      snprintf(digits, sizeof digits, "%" PRId64, (int64_t)i);
      return cJSON_CreateRaw(digits);
    } else {
      double d = lua_tonumber(L, idx);
      if (!isfinite(d))
        return fail(err, errsz, p, "a number JSON cannot hold (NaN or infinity)");
      return cJSON_CreateNumber(d);
    }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!okegw_utf8_valid(s, len) || memchr(s, '\0', len))
      return fail(err, errsz, p, "a string that is not valid UTF-8");
    return cJSON_CreateString(s);
  }
  case LUA_TTABLE:
    if (okegw_luajson_is_frozen(L, idx)) {
      push_frozen_contents(L, idx);
      cJSON *r = table_to_json(L, lua_gettop(L), depth, p, err, errsz);
      lua_pop(L, 1);
      return r;
    }
    return table_to_json(L, idx, depth, p, err, errsz);
  case LUA_TLIGHTUSERDATA:
    if (is_null(L, idx))
      return cJSON_CreateNull();
    /* fall through */
  default: {
    char what[64];
    snprintf(what, sizeof what, "a %s (JSON has no such value)", luaL_typename(L, idx));
    return fail(err, errsz, p, what);
  }
  }
}

cJSON *okegw_luajson_to_json(lua_State *L, int idx, char *err, size_t errsz) {
  path p;
  p.n = 0;
  return to_json(L, lua_absindex(L, idx), 0, &p, err, errsz);
}

/* ---- read-only tables ---------------------------------------------------- */

static int l_frozen_newindex(lua_State *L) {
  return luaL_error(L,
                    "attempt to change a shared library (key '%s'): copy what you need into "
                    "a local table instead",
                    luaL_tolstring(L, 2, NULL));
}

/* pairs() on a read-only table: the iterator gets the view, never the hidden
 * contents, and looks them up itself. */
static int l_frozen_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!okegw_luajson_is_frozen(L, 1))
    return luaL_error(L, "not a library table");
  lua_settop(L, 2);
  push_frozen_contents(L, 1);
  lua_insert(L, 2);
  if (lua_next(L, 2))
    return 2;
  lua_pushnil(L);
  return 1;
}

static int l_frozen_pairs(lua_State *L) {
  lua_pushcfunction(L, l_frozen_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int l_frozen_len(lua_State *L) {
  push_frozen_contents(L, 1);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* Freezes the table at idx (absolute) and, depth first, the tables in its
 * fields; `seen` (absolute) holds the tables already done, for cycles. */
static void freeze_at(lua_State *L, int idx, int seen, int depth) {
  if (depth > OKEGW_JSON_MAX_DEPTH || !lua_checkstack(L, 8) || okegw_luajson_is_frozen(L, idx))
    return;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, seen) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);

  lua_newtable(L); /* the hidden contents */
  int hidden = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TTABLE)
      freeze_at(L, lua_gettop(L), seen, depth + 1);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, hidden);
    /* clearing a field during the traversal is allowed */
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, idx);
  }
  if (lua_getmetatable(L, idx)) /* an array stays an array */
    lua_setmetatable(L, hidden);

  lua_createtable(L, 0, 6);
  lua_pushvalue(L, hidden);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_frozen_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, l_frozen_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushcfunction(L, l_frozen_len);
  lua_setfield(L, -2, "__len");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &frozen_key);
  lua_setmetatable(L, idx);
  lua_pop(L, 1); /* hidden */
}

void okegw_luajson_freeze(lua_State *L) {
  int idx = lua_gettop(L);
  lua_newtable(L);
  freeze_at(L, idx, idx + 1, 0);
  lua_pop(L, 1);
}
