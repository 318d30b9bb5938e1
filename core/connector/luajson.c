#include "connector/luajson.h"
#include "base/json.h"
#include "base/util.h"

#include <inttypes.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Where a conversion goes: a cJSON tree (*node), or, when text is set, JSON
 * text appended to it, byte for byte as okegw_json_print prints that tree.
 * One walk serves both, so both refuse the same values with the same words. */
typedef struct sink {
  okegw_buf *text;
  int oom; /* text could not grow */
} sink;

static inline void put(sink *o, const char *s, size_t n) {
  okegw_buf *b = o->text;
  if (!n)
    return;
  if (b->len + n < b->cap) { /* the common case, without a call */
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
  } else if (!o->oom && okegw_buf_append(b, s, n) < 0) {
    o->oom = 1;
  }
}

/* A string as cJSON prints one: the two-character escapes, other bytes
 * below 0x20 as \u00xx, everything else as it is. */
static void put_string(sink *o, const char *s, size_t len) {
  put(o, "\"", 1);
  size_t from = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    put(o, s + from, i - from);
    char esc[8];
    const char *two = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                                  : NULL;
    if (two)
      put(o, two, 2);
    else
      put(o, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
    from = i + 1;
  }
  put(o, s + from, len - from);
  put(o, "\"", 1);
}

static int walk(lua_State *L, int idx, int depth, path *p, sink *o, cJSON **node, char *err,
                size_t errsz);

/* A new node in *node, or "out of memory". */
static int made(cJSON *j, cJSON **node, char *err, size_t errsz, const path *p) {
  *node = j;
  if (!j) {
    fail(err, errsz, p, "out of memory");
    return -1;
  }
  return 0;
}

static int walk_table(lua_State *L, int idx, int depth, path *p, sink *o, cJSON **node, char *err,
                      size_t errsz) {
  lua_Integer n = 0;
  int array = has_array_mt(L, idx);
  if (array) {
    /* holes or other keys in a marked array are an error, not dropped */
    if (!is_sequence(L, idx, &n)) {
      lua_pushnil(L);
      if (lua_next(L, idx)) {
        lua_pop(L, 2);
        fail(err, errsz, p, "an array with keys other than 1..n");
        return -1;
      }
      n = 0;
    }
  } else {
    array = is_sequence(L, idx, &n);
  }
  cJSON *c = NULL;
  if (o->text)
    put(o, array ? "[" : "{", 1);
  else if (made(array ? cJSON_CreateArray() : cJSON_CreateObject(), &c, err, errsz, p) < 0)
    return -1;
  if (array) {
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      path_index(p, i - 1);
      if (o->text && i > 1)
        put(o, ",", 1);
      cJSON *e = NULL;
      int rc = walk(L, lua_gettop(L), depth + 1, p, o, &e, err, errsz);
      path_pop(p);
      lua_pop(L, 1);
      if (rc < 0 || (!o->text && !cJSON_AddItemToArray(c, e))) {
        cJSON_Delete(e);
        cJSON_Delete(c);
        return -1;
      }
    }
  } else {
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) != LUA_TSTRING) {
        lua_pop(L, 2);
        cJSON_Delete(c);
        fail(err, errsz, p,
             "a table mixing string and number keys (JSON objects need string keys)");
        return -1;
      }
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      path_key(p, k, klen);
      if (!okegw_utf8_valid(k, klen) || memchr(k, '\0', klen)) {
        lua_pop(L, 2);
        cJSON_Delete(c);
        fail(err, errsz, p, "a key that is not valid UTF-8");
        return -1;
      }
      if (o->text) {
        if (!first)
          put(o, ",", 1);
        put_string(o, k, klen);
        put(o, ":", 1);
      }
      first = 0;
      cJSON *e = NULL;
      int rc = walk(L, lua_gettop(L), depth + 1, p, o, &e, err, errsz);
      path_pop(p);
      lua_pop(L, 1);
      if (rc < 0 || (!o->text && !cJSON_AddItemToObject(c, k, e))) {
        cJSON_Delete(e);
        lua_pop(L, 1);
        cJSON_Delete(c);
        return -1;
      }
    }
  }
  if (o->text)
    put(o, array ? "]" : "}", 1);
  *node = c;
  return 0;
}

static int walk(lua_State *L, int idx, int depth, path *p, sink *o, cJSON **node, char *err,
                size_t errsz) {
  *node = NULL;
  if (depth > OKEGW_JSON_MAX_DEPTH) {
    fail(err, errsz, p, "nesting deeper than 64 levels");
    return -1;
  }
  if (!lua_checkstack(L, 6)) {
    fail(err, errsz, p, "Lua stack exhausted");
    return -1;
  }
  char num[32];
  switch (lua_type(L, idx)) {
  case LUA_TNIL: fail(err, errsz, p, "nil (use json.null for a JSON null)"); return -1;
  case LUA_TBOOLEAN:
    if (o->text) {
      int t = lua_toboolean(L, idx);
      put(o, t ? "true" : "false", t ? 4 : 5);
      return 0;
    }
    return made(cJSON_CreateBool(lua_toboolean(L, idx)), node, err, errsz, p);
  case LUA_TNUMBER: {
    double d;
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      if (i < -((lua_Integer)1 << 53) || i > ((lua_Integer)1 << 53)) {
        /* A double would round it: write the digits as they are. */
        snprintf(num, sizeof num, "%" PRId64, (int64_t)i);
        if (o->text) {
          put(o, num, strlen(num));
          return 0;
        }
        return made(cJSON_CreateRaw(num), node, err, errsz, p);
      }
      d = (double)i;
    } else {
      d = lua_tonumber(L, idx);
      if (!isfinite(d)) {
        fail(err, errsz, p, "a number JSON cannot hold (NaN or infinity)");
        return -1;
      }
    }
    if (o->text) {
      okegw_json_format_number(d, num);
      put(o, num, strlen(num));
      return 0;
    }
    return made(cJSON_CreateNumber(d), node, err, errsz, p);
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!okegw_utf8_valid(s, len) || memchr(s, '\0', len)) {
      fail(err, errsz, p, "a string that is not valid UTF-8");
      return -1;
    }
    if (o->text) {
      put_string(o, s, len);
      return 0;
    }
    return made(cJSON_CreateString(s), node, err, errsz, p);
  }
  case LUA_TTABLE:
    if (okegw_luajson_is_frozen(L, idx)) {
      push_frozen_contents(L, idx);
      int rc = walk_table(L, lua_gettop(L), depth, p, o, node, err, errsz);
      lua_pop(L, 1);
      return rc;
    }
    return walk_table(L, idx, depth, p, o, node, err, errsz);
  case LUA_TLIGHTUSERDATA:
    if (is_null(L, idx)) {
      if (o->text) {
        put(o, "null", 4);
        return 0;
      }
      return made(cJSON_CreateNull(), node, err, errsz, p);
    }
    /* fall through */
  default: {
    char what[64];
    snprintf(what, sizeof what, "a %s (JSON has no such value)", luaL_typename(L, idx));
    fail(err, errsz, p, what);
    return -1;
  }
  }
}

cJSON *okegw_luajson_to_json(lua_State *L, int idx, char *err, size_t errsz) {
  path p;
  p.n = 0;
  sink o = {0};
  cJSON *j = NULL;
  return walk(L, lua_absindex(L, idx), 0, &p, &o, &j, err, errsz) == 0 ? j : NULL;
}

char *okegw_luajson_print(lua_State *L, int idx, char *err, size_t errsz) {
  path p;
  p.n = 0;
  okegw_buf text = {.data = malloc(2048), .cap = 2048}; /* most messages fit */
  if (!text.data)
    text.cap = 0;
  sink o = {.text = &text};
  cJSON *none = NULL;
  int rc = walk(L, lua_absindex(L, idx), 0, &p, &o, &none, err, errsz);
  if (rc == 0 && o.oom)
    snprintf(err, errsz, "out of memory");
  if (rc < 0 || o.oom) {
    okegw_buf_free(&text);
    return NULL;
  }
  return text.data;
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
