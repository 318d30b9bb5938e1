#include "connector/mapping.h"
#include "oke/interaction.h"
#include "base/log.h"
#include "connector/luajson.h"
#include "base/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_EVERY 1000 /* instructions between budget checks */

struct okegw_mapset {
  int refs;
  lua_State *L; /* NULL for an empty set */
  char *dir;
  char *lib_dir;
  char hash[65];
  size_t mem_used, mem_limit;
  int mem_exceeded; /* an allocation was refused during the current call */
  long budget;      /* instructions per call */
  long ticks;       /* hook calls in the current call */
  int killed;       /* the budget ran out: every instruction now errors */
  char where[160];  /* file:line last seen running, for errors without one */
  int line_hook;    /* line events are on (memory is nearly used up) */
  /* per interaction: [0] to_peer, [1] from_peer present */
  unsigned char *has;
  int ninteractions;
};

/* Registry keys. */
static const char maps_key = 'm';    /* maps[interaction] = {to_peer=, from_peer=, file=} */
static const char sandbox_key = 's'; /* the read-only globals every script sees */
static const char libs_key = 'l';    /* require() cache */
static const char set_key = 'o';     /* the okegw_mapset itself */

/* ---- allocator and budget ---------------------------------------------- */

/* The memory quota: refuse growth past the limit and note that it happened,
 * since a script's pcall may swallow the resulting error. */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  okegw_mapset *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->mem_used -= old;
    return NULL;
  }
  if (nsize > old && m->mem_used - old + nsize > m->mem_limit) {
    m->mem_exceeded = 1;
    return NULL;
  }
  /* Close to the quota: follow the script line by line, so that a memory
   * error can name its line (Lua reports it without one). lua_sethook is
   * safe to call from anywhere. */
  if (m->L && !m->line_hook && m->mem_used + nsize > m->mem_limit / 4 * 3) {
    m->line_hook = 1;
    lua_sethook(m->L, lua_gethook(m->L), lua_gethookmask(m->L) | LUA_MASKLINE,
                lua_gethookcount(m->L));
  }
  void *p = realloc(ptr, nsize);
  if (p)
    m->mem_used = m->mem_used - old + nsize;
  return p;
}

static okegw_mapset *set_of(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &set_key);
  okegw_mapset *m = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return m;
}

/* Once the budget is spent the hook fires on every instruction, so a pcall
 * in the script cannot catch the error and carry on (as Redis does). */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  okegw_mapset *m = set_of(L);
  /* Remember where the script is, so a memory error (which Lua reports
   * without a position) can still name a line. */
  if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
    snprintf(m->where, sizeof m->where, "%s:%d", ar->short_src, ar->currentline);
  if (ar->event == LUA_HOOKLINE)
    return;
  if (!m->killed && ++m->ticks * HOOK_EVERY <= m->budget)
    return;
  if (!m->killed) {
    m->killed = 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  }
  /* name the line that was running, which is where the loop is */
  if (ar->currentline > 0)
    lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
  else
    lua_pushliteral(L, "");
  lua_pushfstring(L, "instruction budget of %I exceeded (endless loop?)", (lua_Integer)m->budget);
  lua_concat(L, 2);
  lua_error(L);
}

static void budget_start(okegw_mapset *m) {
  m->ticks = 0;
  m->line_hook = 0;
  m->where[0] = '\0';
  m->killed = 0;
  m->mem_exceeded = 0;
  lua_sethook(m->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void budget_stop(okegw_mapset *m) { lua_sethook(m->L, NULL, 0, 0); }

/* ---- the sandbox ------------------------------------------------------- */

static int l_print(lua_State *L) {
  okegw_buf b = {0};
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1)
      okegw_buf_append(&b, "\t", 1);
    okegw_buf_append(&b, s, len);
    lua_pop(L, 1);
  }
  lua_Debug ar;
  char where[256] = "";
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
    snprintf(where, sizeof where, "%s:%d: ", ar.short_src, ar.currentline);
  okegw_log(OKEGW_LOG_INFO, NULL, "lua: %s%s", where, b.data ? b.data : "");
  okegw_buf_free(&b);
  return 0;
}

/* collectgarbage("count") only: the other options would let a script defeat
 * the memory quota's bookkeeping or stall the loop. */
static int l_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "count");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage('%s') is not allowed in a mapping", opt);
  lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
  return 1;
}

static int load_file(lua_State *L, const char *path, const char *chunk, char *err, size_t errsz);
static void readonly(lua_State *L);

/* require(name) loads scripts/lib/<name>.lua once; nothing else. */
static int l_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  okegw_mapset *m = set_of(L);
  for (const char *p = name; *p; p++)
    if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
      return luaL_error(L, "require('%s'): library names use a-z, 0-9 and _", name);
  if (!*name || !m->lib_dir)
    return luaL_error(L, "require('%s'): no library folder is configured", name);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &libs_key);
  if (lua_getfield(L, -1, name) != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  char *path = okegw_asprintf("%s/%s.lua", m->lib_dir, name);
  char *chunk = okegw_asprintf("lib/%s.lua", name);
  char err[512];
  if (!path || !chunk || load_file(L, path, chunk, err, sizeof err) < 0) {
    free(path);
    free(chunk);
    return luaL_error(L, "require('%s'): %s", name, err);
  }
  free(path);
  free(chunk);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  } else if (lua_istable(L, -1)) {
    readonly(L); /* one script must not change a library for the others */
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

static int l_readonly_newindex(lua_State *L) {
  return luaL_error(L,
                    "attempt to change a shared library (key '%s'): copy what you need into "
                    "a local table instead",
                    luaL_tolstring(L, 2, NULL));
}

static int l_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  return lua_next(L, 1) ? 2 : 1;
}

static int l_proxy_pairs(lua_State *L) {
  if (!lua_getmetatable(L, 1)) /* raw: the proxy's own metatable */
    return luaL_error(L, "not a library table");
  lua_pushcfunction(L, l_next);
  lua_getfield(L, -2, "__index");
  lua_pushnil(L);
  return 3;
}

static int l_proxy_len(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* Replaces the table on top of the stack with a read-only view of it. */
static void readonly(lua_State *L) {
  lua_newtable(L);          /* proxy */
  lua_createtable(L, 0, 5); /* its metatable */
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_readonly_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, l_proxy_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushcfunction(L, l_proxy_len);
  lua_setfield(L, -2, "__len");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_replace(L, -2);
}

/* Copies allowed members of a library table into a fresh table. */
static void copy_fields(lua_State *L, const char *lib, const char *const *names) {
  lua_newtable(L);
  lua_getglobal(L, lib);
  for (size_t i = 0; names[i]; i++) {
    lua_getfield(L, -1, names[i]);
    lua_setfield(L, -3, names[i]);
  }
  lua_pop(L, 1);
}

static void build_sandbox(lua_State *L) {
  static const char *const base[] = {
      "assert",   "error",        "ipairs",       "next",     "pairs",    "pcall",  "select",
      "tonumber", "tostring",     "type",         "xpcall",   "rawequal", "rawget", "rawlen",
      "rawset",   "setmetatable", "getmetatable", "_VERSION", NULL};
  static const char *const string_f[] = {"byte",  "char",  "find",     "format", "gmatch",  "gsub",
                                         "len",   "lower", "match",    "rep",    "reverse", "sub",
                                         "upper", "pack",  "packsize", "unpack", NULL};
  static const char *const table_f[] = {"concat", "insert", "move",   "pack",
                                        "remove", "sort",   "unpack", NULL};
  static const char *const math_f[] = {"abs",        "ceil", "floor",      "fmod", "huge", "max",
                                       "maxinteger", "min",  "mininteger", "modf", "pi",   "sqrt",
                                       "tointeger",  "type", "ult",        "exp",  "log",  NULL};
  static const char *const utf8_f[] = {"char", "charpattern", "codepoint", "codes",
                                       "len",  "offset",      NULL};
  static const char *const os_f[] = {"time", "date", "clock", "difftime", NULL};

  lua_newtable(L); /* the sandbox */
  for (size_t i = 0; base[i]; i++) {
    lua_getglobal(L, base[i]);
    lua_setfield(L, -2, base[i]);
  }
  struct {
    const char *lib;
    const char *const *names;
  } libs[] = {
      {"string", string_f}, {"table", table_f}, {"math", math_f}, {"utf8", utf8_f}, {"os", os_f}};
  for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
    copy_fields(L, libs[i].lib, libs[i].names);
    readonly(L);
    lua_setfield(L, -2, libs[i].lib);
  }
  lua_pushcfunction(L, l_print);
  lua_setfield(L, -2, "print");
  lua_pushcfunction(L, l_collectgarbage);
  lua_setfield(L, -2, "collectgarbage");
  lua_pushcfunction(L, l_require);
  lua_setfield(L, -2, "require");
  okegw_luajson_open(L);
  readonly(L);
  lua_setfield(L, -2, "json");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key);

  /* Strings keep their methods ("x"):upper(), but through the sandboxed
   * copy, and the metatable cannot be reached to change it. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key);
  lua_getfield(L, -1, "string");
  lua_setfield(L, -3, "__index");
  lua_pop(L, 1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &libs_key);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &maps_key);
}

/* A fresh global table for one script: reads fall through to the sandbox,
 * writes stay in the script's own table, the link cannot be taken apart. */
static void push_env(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

/* Loads a text chunk (never bytecode) with its own environment, leaving the
 * function on the stack. */
/* Chunks are named short ("flow2.put_offering.lua", "lib/oke.lua") because
 * Lua cuts source names to 60 characters; errors are given the full path
 * again by expand_where. */
static int load_file(lua_State *L, const char *path, const char *chunk, char *err, size_t errsz) {
  size_t len;
  char *text = okegw_read_file(path, 1 << 20, &len);
  if (!text) {
    snprintf(err, errsz, "%s:0: cannot read: %s", path, strerror(errno));
    return -1;
  }
  char *chunkname = okegw_asprintf("@%s", chunk);
  int rc = luaL_loadbufferx(L, text, len, chunkname ? chunkname : "@?", "t");
  free(chunkname);
  free(text);
  if (rc != LUA_OK) {
    snprintf(err, errsz, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  push_env(L);
  lua_setupvalue(L, -2, 1);
  return 0;
}

/* "flow2.put_offering.lua:3: x" -> "<dir>/flow2.put_offering.lua:3: x", and
 * "lib/oke.lua:9: x" -> "<lib_dir>/oke.lua:9: x". */
static void expand_where(const okegw_mapset *m, const char *msg, char *out, size_t outsz) {
  const char *colon = strchr(msg, ':');
  size_t n = colon ? (size_t)(colon - msg) : 0;
  if (n > 4 && strncmp(msg + n - 4, ".lua", 4) == 0 && !memchr(msg, ' ', n)) {
    if (strncmp(msg, "lib/", 4) == 0 && m->lib_dir)
      snprintf(out, outsz, "%s/%s", m->lib_dir, msg + 4);
    else if (!memchr(msg, '/', n))
      snprintf(out, outsz, "%s/%s", m->dir, msg);
    else
      snprintf(out, outsz, "%s", msg);
    return;
  }
  snprintf(out, outsz, "%s", msg);
}

/* ---- loading a set ----------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static okegw_mapset *mapset_new(const char *dir, const okegw_map_limits *lim) {
  okegw_mapset *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->refs = 1;
  m->dir = okegw_strdup(dir);
  m->lib_dir = lim && lim->lib_dir ? okegw_strdup(lim->lib_dir) : NULL;
  m->mem_limit = lim && lim->memory_bytes ? lim->memory_bytes : (size_t)32 << 20;
  m->budget = lim && lim->instructions > 0 ? lim->instructions : 10000000L;
  m->ninteractions = okegw_interaction_count();
  m->has = calloc((size_t)m->ninteractions * 2, 1);
  snprintf(m->hash, sizeof m->hash, "-");
  if (!m->dir || !m->has) {
    okegw_mapset_unref(m);
    return NULL;
  }
  return m;
}

/* Runs a loaded chunk (on the stack) and records its to_peer/from_peer. */
static int register_script(okegw_mapset *m, const char *path, int interaction, okegw_diag *diag) {
  lua_State *L = m->L;
  char err[1024];
  lua_getupvalue(L, -1, 1); /* the script's env, kept after the run */
  lua_insert(L, -2);
  budget_start(m);
  int rc = lua_pcall(L, 0, 0, 0);
  budget_stop(m);
  if (rc != LUA_OK) {
    expand_where(m, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error", err, sizeof err);
    okegw_diag_add_msg(diag, err);
    lua_pop(L, 2);
    return -1;
  }
  int ok = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &maps_key);
  lua_newtable(L);
  static const char *const fns[] = {"to_peer", "from_peer"};
  for (int d = 0; d < 2; d++) {
    int t = lua_getfield(L, -3, fns[d]);
    if (t == LUA_TFUNCTION) {
      m->has[interaction * 2 + d] = 1;
      lua_setfield(L, -2, fns[d]);
      ok = 1;
    } else {
      if (t != LUA_TNIL) {
        snprintf(err, sizeof err, "%s:0: %s must be a function, not a %s", path, fns[d],
                 lua_typename(L, t));
        okegw_diag_add_msg(diag, err);
        ok = -1;
      }
      lua_pop(L, 1);
    }
  }
  if (ok == 0) {
    snprintf(err, sizeof err, "%s:0: defines neither to_peer nor from_peer", path);
    okegw_diag_add_msg(diag, err);
    ok = -1;
  }
  lua_pushstring(L, path);
  lua_setfield(L, -2, "file");
  lua_setfield(L, -2, okegw_interaction_name(interaction));
  lua_pop(L, 2); /* maps, env */
  return ok < 0 ? -1 : 0;
}

int okegw_mapset_load(const char *dir, int optional, const okegw_map_limits *lim,
                      okegw_mapset **out, okegw_diag *diag) {
  *out = NULL;
  size_t before = diag->n;
  okegw_mapset *m = mapset_new(dir, lim);
  if (!m) {
    okegw_diag_add(diag, dir, 0, "out of memory");
    return -1;
  }
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT && optional) {
      *out = m;
      return 0;
    }
    okegw_diag_add(diag, dir, 0, "cannot open the scripts folder: %s", strerror(errno));
    okegw_mapset_unref(m);
    return -1;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0 || e->d_name[0] == '.')
      continue;
    char **nn = realloc(names, (n + 1) * sizeof *nn);
    if (!nn)
      break;
    names = nn;
    if ((names[n] = okegw_strdup(e->d_name)))
      n++;
  }
  closedir(d);
  if (n > 1)
    qsort(names, n, sizeof *names, cmp_str);

  if (n > 0) {
    m->L = lua_newstate(l_alloc, m);
    if (!m->L) {
      okegw_diag_add(diag, dir, 0, "cannot create a Lua state");
    } else {
      lua_pushlightuserdata(m->L, m);
      lua_rawsetp(m->L, LUA_REGISTRYINDEX, &set_key);
      luaL_openlibs(m->L);
      build_sandbox(m->L);
    }
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  for (size_t i = 0; i < n && m->L; i++) {
    char *path = okegw_asprintf("%s/%s", dir, names[i]);
    char *id = okegw_strndup(names[i], strlen(names[i]) - 4);
    size_t len = 0;
    char *text = path ? okegw_read_file(path, 1 << 20, &len) : NULL;
    if (text) {
      EVP_DigestUpdate(md, names[i], strlen(names[i]) + 1);
      EVP_DigestUpdate(md, text, len);
      EVP_DigestUpdate(md, "", 1);
    }
    free(text);
    int interaction = id ? okegw_interaction_by_name(id) : 0;
    char err[1024];
    if (!interaction) {
      okegw_diag_add(diag, path ? path : names[i], 0,
                     "'%s' is not an interaction id (see scripts/README.md for the list)",
                     id ? id : "?");
    } else if (load_file(m->L, path, names[i], err, sizeof err) < 0) {
      char full[1200];
      expand_where(m, err, full, sizeof full);
      okegw_diag_add_msg(diag, full);
    } else {
      register_script(m, path, interaction, diag);
    }
    free(path);
    free(id);
  }
  unsigned char digest[32];
  unsigned dlen = 0;
  EVP_DigestFinal_ex(md, digest, &dlen);
  EVP_MD_CTX_free(md);
  if (n > 0 && dlen == sizeof digest)
    okegw_hex(digest, dlen, m->hash);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  if (diag->n > before) {
    okegw_mapset_unref(m);
    return -1;
  }
  if (m->L)
    lua_gc(m->L, LUA_GCCOLLECT, 0);
  *out = m;
  return 0;
}

okegw_mapset *okegw_mapset_ref(okegw_mapset *m) {
  if (m)
    m->refs++;
  return m;
}

void okegw_mapset_unref(okegw_mapset *m) {
  if (!m || --m->refs > 0)
    return;
  if (m->L)
    lua_close(m->L);
  free(m->dir);
  free(m->lib_dir);
  free(m->has);
  free(m);
}

const char *okegw_mapset_hash(const okegw_mapset *m) { return m ? m->hash : "-"; }
const char *okegw_mapset_dir(const okegw_mapset *m) { return m ? m->dir : ""; }

int okegw_mapset_has(const okegw_mapset *m, const char *interaction, int from_peer) {
  if (!m || !m->L)
    return 0;
  int i = okegw_interaction_by_name(interaction);
  return i > 0 && i < m->ninteractions && m->has[i * 2 + (from_peer ? 1 : 0)];
}

/* ---- running ----------------------------------------------------------- */

typedef struct run_args {
  okegw_mapset *m;
  const char *interaction;
  int from_peer;
  const cJSON *in;
  const okegw_map_ctx *ctx;
  cJSON *out;
  char *err;
  size_t errsz;
} run_args;

static void push_ctx(lua_State *L, const run_args *a) {
  const okegw_map_ctx *c = a->ctx;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, c && c->connector ? c->connector : "");
  lua_setfield(L, -2, "connector");
  lua_pushstring(L, a->interaction);
  lua_setfield(L, -2, "interaction");
  lua_pushstring(L, c && c->id ? c->id : "");
  lua_setfield(L, -2, "id");
  lua_pushstring(L, c && c->phase ? c->phase : "");
  lua_setfield(L, -2, "phase");
  lua_pushstring(L, a->from_peer ? "from_peer" : "to_peer");
  lua_setfield(L, -2, "direction");
  if (c && c->status > 0) {
    lua_pushinteger(L, c->status);
    lua_setfield(L, -2, "status");
  }
  lua_newtable(L);
  for (size_t i = 0; c && c->conf && i < c->conf->nkv; i++) {
    const okegw_conf_kv *kv = &c->conf->kv[i];
    /* secrets stay out of scripts */
    if (okegw_conf_is_secret(kv->key))
      continue;
    lua_pushstring(L, kv->value);
    lua_setfield(L, -2, kv->key);
  }
  lua_setfield(L, -2, "config");
}

/* Runs inside lua_pcall so that an allocation failure anywhere, also while
 * converting, is an error and never a panic. */
static int run_protected(lua_State *L) {
  run_args *a = lua_touserdata(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &maps_key); /* 2 */
  lua_getfield(L, 2, a->interaction);           /* 3: {to_peer, from_peer, file} */
  if (okegw_luajson_push(L, a->in, a->err, a->errsz) < 0)
    return luaL_error(L, "%s", a->err);
  push_ctx(L, a); /* 5; 4 is msg, kept as the result when the function returns nothing */
  lua_getfield(L, 3, a->from_peer ? "from_peer" : "to_peer");
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (lua_getinfo(L, ">S", &ar))
    snprintf(a->m->where, sizeof a->m->where, "%s:%d", ar.short_src, ar.linedefined);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  lua_call(L, 2, 1); /* 6 */
  int result = lua_isnil(L, 6) ? 4 : 6;
  char cerr[512];
  a->out = okegw_luajson_to_json(L, result, cerr, sizeof cerr);
  if (!a->out) {
    lua_getfield(L, 3, "file");
    return luaL_error(L, "%s: %s returned %s", lua_tostring(L, -1),
                      a->from_peer ? "from_peer" : "to_peer", cerr);
  }
  /* A script may name the resource: ctx.id = msg.candidate_ref */
  if (a->ctx && a->ctx->id_out && lua_getfield(L, 5, "id") == LUA_TSTRING)
    snprintf(a->ctx->id_out, a->ctx->id_out_size, "%s", lua_tostring(L, -1));
  return 0;
}

int okegw_mapset_run(okegw_mapset *m, const char *interaction, int from_peer, const cJSON *in,
                     const okegw_map_ctx *ctx, cJSON **out, char *err, size_t errsz) {
  *out = NULL;
  if (!okegw_mapset_has(m, interaction, from_peer))
    return 0;
  lua_State *L = m->L;
  /* Leave room for this call: garbage of earlier calls must not count
   * against it. */
  if (m->mem_used > m->mem_limit / 2)
    lua_gc(L, LUA_GCCOLLECT, 0);
  run_args a = {m, interaction, from_peer, in, ctx, NULL, err, errsz};
  lua_settop(L, 0);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &a);
  budget_start(m);
  int rc = lua_pcall(L, 1, 0, 0);
  budget_stop(m);
  if (rc == LUA_OK && !m->mem_exceeded && !m->killed) {
    *out = a.out;
    lua_settop(L, 0);
    return 0;
  }
  cJSON_Delete(a.out);
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  char raw[1024];
  if (m->killed)
    snprintf(raw, sizeof raw, "%s", msg ? msg : "instruction budget exceeded");
  else if (m->mem_exceeded || rc == LUA_ERRMEM)
    snprintf(raw, sizeof raw,
             "%s: the mapping exceeded its memory quota of %zu KiB (near this line)",
             m->where[0] ? m->where : "?", m->mem_limit / 1024);
  else
    snprintf(raw, sizeof raw, "%s", msg ? msg : "the mapping raised an error that is not a string");
  expand_where(m, raw, err, errsz);
  lua_settop(L, 0);
  /* A script that ran out of memory may have left garbage behind. */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return -1;
}
