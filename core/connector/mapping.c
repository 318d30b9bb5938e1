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
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOOK_EVERY 1000 /* instructions between budget checks */
/* A count hook, however rarely it fires, makes the Lua VM stop in
 * luaG_traceexec before every instruction, which costs more than a typical
 * mapping itself. So a budget larger than EXACT_BUDGET is watched: the hook
 * is set by a timer signal once a call has run WATCH_AFTER_MS, and counts
 * from then on (a call cannot run EXACT_BUDGET instructions in that time).
 * Smaller budgets are counted exactly from the first instruction. */
#define EXACT_BUDGET 2000000LL
#define WATCH_AFTER_MS 1
#define WATCH_EVERY_MS 10 /* the signal comes again, in case a hook was lost */
/* One instruction on long strings (a < b, a == b, a table key) takes time in
 * proportion to their length, up to ~10 ns a byte (strcoll over embedded
 * zeros). Once the state holds a string longer than this, the budget is
 * checked more often, in proportion, so that the checks stay < 1 s apart. */
#define LONG_STRING (64 * 1024)
#define TIME_MS_MIN 1000 /* a call's wall-clock limit is at least this */
/* The work of C functions is charged to the instruction budget at rough
 * rates that keep a charged instruction no cheaper than a VM one. */
#define ALLOC_BYTES_PER_INSN 64 /* bytes a call allocates */
#define ITEMS_PER_INSN 4        /* string.rep repeats, table elements moved */
#define STEPS_PER_INSN 4        /* steps of the pattern matcher (upper bound) */
#define PRINT_MAX_LINES 20      /* print() per call */
#define PRINT_MAX_BYTES 4096

struct okegw_mapset {
  int refs;
  lua_State *L; /* NULL for an empty set */
  char *dir;
  char *lib_dir;
  char hash[65];
  size_t mem_used, mem_limit;
  int mem_exceeded; /* an allocation was refused during the current call */
  int running;      /* a call is under way: its work is charged */
  long long budget; /* instructions per call */
  long long used;   /* instructions run and charged in the current call */
  long time_ms;     /* wall-clock limit of one call */
  struct timespec deadline;
  int killed;         /* over a limit: every instruction now errors */
  char kill_msg[320]; /* why, raised again at every instruction */
  /* Where the script was last seen running, for errors without a position:
   * the chunk name is copied when it changes (which is rare), so a pointer
   * compare is all the hook pays. */
  const char *where_src;
  char where_file[64];
  int where_line;
  int line_hook;     /* line events are on (memory is nearly used up) */
  int watched;       /* the count hook is on (watchdog mode: only once it fired) */
  int hook_count;    /* instructions between checks in the current call */
  size_t max_string; /* no string in the state is longer */
  int print_lines;   /* print() lines and bytes logged in the current call */
  size_t print_bytes;
  int print_cut;
  /* per interaction: [0] to_peer, [1] from_peer present */
  unsigned char *has;
  int ninteractions;
  /* ctx.config as last built (push_config): copies of every key and value
   * it was built from, in order (keys at even, values at odd places), so a
   * message with the same settings gets a copy of the cached table instead
   * of interning every string and asking which keys are secret again */
  char **cfg;
  size_t ncfg; /* entries: twice the key/value pairs */
};

/* Registry keys. */
static const char maps_key = 'm';    /* maps[interaction] = {to_peer=, from_peer=, file=} */
static const char sandbox_key = 's'; /* the read-only globals every script sees */
static const char libs_key = 'l';    /* require() cache */
static const char config_key = 'c';  /* ctx.config as last built (okegw_mapset.cfg) */

static void budget_hook(lua_State *L, lua_Debug *ar);
static void cfg_forget(okegw_mapset *m);

/* The set a state belongs to, kept in the state's extra space: the hook
 * reads it every HOOK_EVERY instructions. */
static okegw_mapset *set_of(lua_State *L) { return *(okegw_mapset **)lua_getextraspace(L); }

/* Stops the current call: from now on every instruction raises kill_msg, so
 * no pcall can catch it and carry on (as Redis does). Safe anywhere, also in
 * the allocator: lua_sethook may be called at any time. */
static void kill_call(okegw_mapset *m, const char *fmt, ...) {
  if (m->killed)
    return;
  m->killed = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->kill_msg, sizeof m->kill_msg, fmt, ap);
  va_end(ap);
  m->watched = 1;
  lua_sethook(m->L, budget_hook, LUA_MASKCOUNT, 1);
}

/* ---- allocator and budget ---------------------------------------------- */

static int hook_count_for(size_t longest_string) {
  if (longest_string <= LONG_STRING)
    return HOOK_EVERY;
  size_t c = (size_t)HOOK_EVERY * LONG_STRING / longest_string;
  return c > 0 ? (int)c : 1;
}

/* The memory quota: refuse growth past the limit and note that it happened,
 * since a script's pcall may swallow the resulting error. Growth is also
 * work: string and table functions that build large values pay for it. */
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
  /* Lua tells the kind of a new object in osize */
  if (!ptr && osize == LUA_TSTRING && nsize > m->max_string) {
    m->max_string = nsize;
    int count = hook_count_for(nsize);
    if (m->running && !m->killed && count < m->hook_count) {
      m->hook_count = count;
      if (m->watched)
        lua_sethook(m->L, budget_hook, lua_gethookmask(m->L), count);
    }
  }
  if (m->running && nsize > old) {
    m->used += (long long)((nsize - old) / ALLOC_BYTES_PER_INSN);
    if (m->used > m->budget)
      kill_call(m, "instruction budget of %lld exceeded (building very large strings or tables?)",
                m->budget);
  }
  /* Close to the quota: follow the script line by line, so that a memory
   * error can name its line (Lua reports it without one). */
  if (m->L && !m->line_hook && !m->killed && m->mem_used + nsize > m->mem_limit / 4 * 3) {
    m->line_hook = 1;
    lua_sethook(m->L, budget_hook, lua_gethookmask(m->L) | LUA_MASKLINE,
                m->watched ? m->hook_count : 0);
  }
  void *p = realloc(ptr, nsize);
  if (p)
    m->mem_used = m->mem_used - old + nsize;
  return p;
}

static int past_deadline(const okegw_mapset *m) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > m->deadline.tv_sec ||
         (now.tv_sec == m->deadline.tv_sec && now.tv_nsec >= m->deadline.tv_nsec);
}

/* Counts instructions and watches the clock; once the call is killed it fires
 * on every instruction. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  okegw_mapset *m = set_of(L);
  /* Remember where the script is, so a memory error (which Lua reports
   * without a position) can still name a line. */
  if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
    if (ar->source != m->where_src) {
      m->where_src = ar->source;
      snprintf(m->where_file, sizeof m->where_file, "%s", ar->short_src);
    }
    m->where_line = ar->currentline;
  }
  if (ar->event == LUA_HOOKLINE)
    return;
  if (!m->killed) {
    m->used += m->hook_count;
    if (m->used > m->budget)
      kill_call(m, "instruction budget of %lld exceeded (endless loop?)", m->budget);
    else if (past_deadline(m))
      kill_call(m, "time limit of %ld ms exceeded (endless loop?)", m->time_ms);
    else
      return;
  }
  /* name the line that was running, which is where the loop is */
  if (ar->currentline > 0)
    lua_pushfstring(L, "%s:%d: %s", ar->short_src, ar->currentline, m->kill_msg);
  else
    lua_pushstring(L, m->kill_msg);
  lua_error(L);
}

/* ---- the watchdog: a per-thread timer whose signal sets the count hook */

struct watchdog {
  int made; /* 1 the timer exists, -1 it cannot be made: count exactly */
  timer_t timer;
  okegw_mapset *volatile call; /* watched now; NULL between calls */
};
static _Thread_local struct watchdog wd;

static int watch_signal;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

/* Runs on the thread of the call (SIGEV_THREAD_ID), between two of its
 * instructions or inside a C function: lua_sethook is safe there (it is
 * what lua.c does on Ctrl-C). */
static void on_watch(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  okegw_mapset *m = wd.call;
  if (!m || !m->running || (lua_gethookmask(m->L) & LUA_MASKCOUNT))
    return;
  m->watched = 1;
  lua_sethook(m->L, budget_hook, LUA_MASKCOUNT | (m->line_hook ? LUA_MASKLINE : 0),
              m->killed ? 1 : m->hook_count);
}

static void watch_install(void) {
  struct sigaction sa = {.sa_sigaction = on_watch, .sa_flags = SA_SIGINFO | SA_RESTART};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGRTMIN + 2, &sa, NULL) == 0)
    watch_signal = SIGRTMIN + 2;
}

void okegw_mapping_thread_end(void) {
  if (wd.made > 0)
    timer_delete(wd.timer);
  wd.made = 0;
}

/* Arms this thread's timer for a call; 0 when watched, -1 when the budget
 * must be counted from the first instruction. */
static int watch_arm(okegw_mapset *m) {
  if (m->budget <= EXACT_BUDGET || wd.made < 0)
    return -1;
  if (!wd.made) {
    pthread_once(&watch_once, watch_install);
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = watch_signal};
    sev._sigev_un._tid = gettid(); /* glibc names no macro for it */
    wd.made = watch_signal && timer_create(CLOCK_MONOTONIC, &sev, &wd.timer) == 0 ? 1 : -1;
    if (wd.made < 0) {
      okegw_log(OKEGW_LOG_WARN, NULL,
                "mapping: no watchdog timer (%s); budgets are counted at every instruction",
                strerror(errno));
      return -1;
    }
  }
  struct itimerspec it = {.it_value = {.tv_nsec = WATCH_AFTER_MS * 1000000L},
                          .it_interval = {.tv_nsec = WATCH_EVERY_MS * 1000000L}};
  wd.call = m;
  return timer_settime(wd.timer, 0, &it, NULL) == 0 ? 0 : (wd.call = NULL, -1);
}

static void watch_disarm(void) {
  if (!wd.call)
    return;
  struct itimerspec off = {{0, 0}, {0, 0}};
  timer_settime(wd.timer, 0, &off, NULL);
  wd.call = NULL; /* a signal already on its way finds no call */
}

static void budget_start(okegw_mapset *m) {
  m->used = 0;
  m->line_hook = 0;
  m->where_src = NULL;
  m->where_file[0] = '\0';
  m->where_line = 0;
  m->killed = 0;
  m->kill_msg[0] = '\0';
  m->mem_exceeded = 0;
  m->print_lines = 0;
  m->print_bytes = 0;
  m->print_cut = 0;
  clock_gettime(CLOCK_MONOTONIC, &m->deadline);
  m->deadline.tv_sec += m->time_ms / 1000;
  m->deadline.tv_nsec += (m->time_ms % 1000) * 1000000L;
  if (m->deadline.tv_nsec >= 1000000000L) {
    m->deadline.tv_sec++;
    m->deadline.tv_nsec -= 1000000000L;
  }
  m->running = 1;
  /* a string cannot be longer than all memory in use */
  if (m->max_string > m->mem_used)
    m->max_string = m->mem_used;
  m->hook_count = hook_count_for(m->max_string);
  m->watched = 0;
  lua_sethook(m->L, NULL, 0, 0);
  if (watch_arm(m) < 0) {
    m->watched = 1;
    lua_sethook(m->L, budget_hook, LUA_MASKCOUNT, m->hook_count);
  }
}

static void budget_stop(okegw_mapset *m) {
  watch_disarm();
  m->running = 0;
  lua_sethook(m->L, NULL, 0, 0);
}

/* "file.lua:12" of where the script was last seen, or "?". */
static void where_text(const okegw_mapset *m, char *out, size_t outsz) {
  if (m->where_file[0] && m->where_line > 0)
    snprintf(out, outsz, "%s:%d", m->where_file, m->where_line);
  else
    snprintf(out, outsz, "?");
}

/* Charges the work a C function is about to do, in instructions. Past the
 * budget the call is killed and the function does not run. */
static void charge(lua_State *L, double insns, const char *fmt, ...) {
  okegw_mapset *m = set_of(L);
  if (!m->running)
    return;
  if (!m->killed && insns <= (double)(m->budget - m->used)) {
    m->used += (long long)insns;
    return;
  }
  if (!m->killed) {
    char what[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    kill_call(m, "%s: instruction budget of %lld exceeded", what, m->budget);
  }
  luaL_error(L, "%s", m->kill_msg);
}

/* ---- the sandbox ------------------------------------------------------- */

/* print(): a log line with the script's file:line, at most PRINT_MAX_LINES
 * lines and PRINT_MAX_BYTES bytes per call; then one line saying the rest
 * was dropped. */
static int l_print(lua_State *L) {
  okegw_mapset *m = set_of(L);
  if (m->print_cut)
    return 0;
  lua_Debug ar;
  char where[256] = "";
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
    snprintf(where, sizeof where, "%s:%d: ", ar.short_src, ar.currentline);
  if (m->print_lines >= PRINT_MAX_LINES || m->print_bytes >= PRINT_MAX_BYTES) {
    m->print_cut = 1;
    okegw_log(OKEGW_LOG_INFO, NULL,
              "lua: %s(print output cut: at most %d lines and %d bytes per call)", where,
              PRINT_MAX_LINES, PRINT_MAX_BYTES);
    return 0;
  }
  okegw_buf b = {0};
  size_t room = PRINT_MAX_BYTES - m->print_bytes;
  int n = lua_gettop(L), cut = 0;
  for (int i = 1; i <= n && !cut; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1)
      okegw_buf_append(&b, "\t", 1);
    if (b.len + len > room) {
      len = b.len < room ? room - b.len : 0;
      /* do not end the line inside a UTF-8 sequence */
      while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
        len--;
      cut = 1;
    }
    okegw_buf_append(&b, s, len);
    lua_pop(L, 1);
  }
  okegw_log(OKEGW_LOG_INFO, NULL, "lua: %s%s%s", where, b.data ? b.data : "", cut ? " …" : "");
  m->print_lines++;
  m->print_bytes += b.len + 1;
  okegw_buf_free(&b);
  if (cut) {
    m->print_cut = 1;
    okegw_log(OKEGW_LOG_INFO, NULL,
              "lua: %s(print output cut: at most %d lines and %d bytes per call)", where,
              PRINT_MAX_LINES, PRINT_MAX_BYTES);
  }
  return 0;
}

/* pcall and xpcall that cannot swallow a killed call. xpcall runs its handler
 * after the failed function has unwound (nothing in the sandbox can tell the
 * difference), under the budget like any code: Lua's own xpcall may run it
 * with the count hook off, where an endless handler would never stop. */
static int l_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (status != LUA_OK) {
    if (set_of(L)->killed)
      return lua_error(L);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  return lua_gettop(L);
}

static int l_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  /* f, h, args -> h, f, args */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_replace(L, 1);
  lua_replace(L, 2);
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 0);
  if (status == LUA_OK) {
    lua_pushboolean(L, 1);
    lua_replace(L, 1);
    return lua_gettop(L);
  }
  if (set_of(L)->killed)
    return lua_error(L);
  lua_pushvalue(L, 1);
  lua_insert(L, -2);
  status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK && set_of(L)->killed)
    return lua_error(L);
  lua_pushboolean(L, 0);
  lua_replace(L, 1);
  return 2;
}

/* setmetatable without __gc: a finaliser would run whenever the collector
 * gets to it, outside any call's budget. */
static int l_setmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc (a finaliser) is not allowed in a mapping");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* rawset that leaves the shared libraries alone. */
static int l_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (okegw_luajson_is_frozen(L, 1))
    return luaL_error(L, "rawset: a shared library cannot be changed: copy what you need into a "
                         "local table instead");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
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
    okegw_luajson_freeze(L); /* one script must not change a library for the others */
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

/* ---- C functions that charge their work ---------------------------------
 *
 * The count hook does not fire inside a C function, so each library function
 * whose work is not bounded by its arguments' count charges the budget
 * before it runs, by the work it may do; the original then runs unchanged
 * (it is the wrapper's upvalue, out of the scripts' reach). Results that
 * need memory are charged by the allocator as well. */

static int call_original(lua_State *L) { return lua_tocfunction(L, lua_upvalueindex(1))(L); }

/* A readable excerpt of a script's text for an error message. */
static void excerpt(const char *s, size_t len, char *out, size_t outsz) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 4 < outsz; i++)
    out[n++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
  if (len > 0 && n + 4 >= outsz)
    out[n++] = '~';
  out[n] = '\0';
}

/* Number of positions i..j (Lua's relative positions) of a length-len text. */
static double span(lua_Integer i, lua_Integer j, size_t len) {
  lua_Integer l = (lua_Integer)len;
  if (i < 0)
    i = i < -l ? 1 : l + i + 1;
  else if (i == 0)
    i = 1;
  if (j < 0)
    j = l + j + 1;
  else if (j > l)
    j = l;
  return j >= i ? (double)j - (double)i + 1 : 0;
}

static int w_rep(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n > 0)
    charge(L, (double)n / ITEMS_PER_INSN, "string.rep(…, %lld)", (long long)n);
  return call_original(L);
}

/* string.byte, utf8.codepoint: one value per position of s[i..j]. */
static int w_slice(lua_State *L) {
  size_t len;
  luaL_checklstring(L, 1, &len);
  lua_Integer i = luaL_optinteger(L, 2, 1);
  charge(L, span(i, luaL_optinteger(L, 3, i), len), "string.byte or utf8.codepoint");
  return call_original(L);
}

/* Functions that scan their text arguments once: utf8.len, utf8.offset,
 * tonumber, string.pack, string.unpack. */
static int w_scan(lua_State *L) {
  double bytes = 0;
  for (int i = 1, n = lua_gettop(L); i <= n && i <= 2; i++)
    if (lua_type(L, i) == LUA_TSTRING)
      bytes += (double)lua_rawlen(L, i);
  if (bytes > 64)
    charge(L, bytes / 16, "scanning %.0f bytes", bytes);
  return call_original(L);
}

/* table.concat(t, sep, i, j) and table.unpack(t, i, j): j - i + 1 elements.
 * The default j (#t) is worked out once and passed on, so a __len runs once. */
static int charge_range(lua_State *L, int iarg, const char *fn) {
  lua_Integer i = luaL_optinteger(L, iarg, 1);
  lua_Integer j = lua_isnoneornil(L, iarg + 1) ? luaL_len(L, 1) : luaL_checkinteger(L, iarg + 1);
  lua_settop(L, iarg + 1);
  lua_pushinteger(L, j);
  lua_replace(L, iarg + 1);
  if (j >= i)
    charge(L, (double)j - (double)i + 1, "%s of %.0f elements", fn, (double)j - (double)i + 1);
  return call_original(L);
}

static int w_concat(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE)
    return call_original(L); /* which names the bad argument */
  return charge_range(L, 3, "table.concat");
}

static int w_unpack(lua_State *L) { return charge_range(L, 2, "table.unpack"); }

static int w_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  if (e >= f)
    charge(L, ((double)e - (double)f + 1) / ITEMS_PER_INSN * 4, "table.move of %.0f elements",
           (double)e - (double)f + 1);
  return call_original(L);
}

/* table.insert(t, pos, v) and table.remove(t, pos) shift the elements after
 * pos; table.sort compares about n log n times. */
static int w_insert(lua_State *L) {
  if (lua_gettop(L) == 3 && lua_type(L, 1) == LUA_TTABLE && lua_isinteger(L, 2)) {
    double moved = (double)luaL_len(L, 1) + 1 - (double)lua_tointeger(L, 2);
    if (moved > 0)
      charge(L, moved, "table.insert moving %.0f elements", moved);
  }
  return call_original(L);
}

static int w_remove(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE && lua_isinteger(L, 2)) {
    double moved = (double)luaL_len(L, 1) - (double)lua_tointeger(L, 2);
    if (moved > 0)
      charge(L, moved, "table.remove moving %.0f elements", moved);
  }
  return call_original(L);
}

static int w_sort(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    double n = (double)luaL_len(L, 1);
    if (n > 1)
      charge(L, n * log2(n), "table.sort of %.0f elements", n);
  }
  return call_original(L);
}

/* ---- the cost of a pattern ----------------------------------------------
 *
 * Lua's matcher backtracks: a repeated item (x*, x+, x-) tries every length
 * of its run, each with the rest of the pattern, and an unanchored search
 * tries every start. So from one start, item i is entered at most
 *   visits(i) = product over the repeated items before it of (run + 1)
 * times, where run is the longest run of the subject the item can match,
 * and an entry costs 1, plus the run for x* and x+ (they scan it first),
 * plus the subject's length for %b and back-references. The sum over the
 * items, times the starts, bounds the matcher's steps (a tail that cannot
 * fail, like the %S+ of gmatch("%S+"), costs less: see pattern_steps): small for usual
 * patterns and subjects (runs of spaces or digits are short), huge exactly
 * when the matcher could run for minutes (the trim idiom "^%s*(.-)%s*$" on
 * 40 000 spaces). Only what the bound needs is read from the pattern; at a
 * malformed piece the estimate ends, and Lua raises its own error when it
 * gets there. */

/* Class letters a c d g l p s u w x as bits, per byte, so that a run is
 * scanned with one lookup per byte; filled once per process. */
static const char class_letters[] = "acdglpsuwx";
static unsigned short class_bits[256];
static pthread_once_t class_bits_once = PTHREAD_ONCE_INIT;

static void init_class_bits(void) {
  for (int c = 0; c < 256; c++) {
    int r[] = {isalpha(c), iscntrl(c), isdigit(c), isgraph(c), islower(c),
               ispunct(c), isspace(c), isupper(c), isalnum(c), isxdigit(c)};
    for (int i = 0; i < 10; i++)
      if (r[i])
        class_bits[c] |= (unsigned short)(1u << i);
  }
}

/* The bit of class letter cl (either case), or 0 for an escaped character. */
static unsigned class_bit(int cl) {
  const char *f = cl ? strchr(class_letters, tolower(cl)) : NULL;
  return f ? 1u << (f - class_letters) : 0;
}

/* Does byte c belong to class letter cl (%a, %d, ... or an escaped char)? */
static int class_has(int c, int cl) {
  unsigned bit = class_bit(cl);
  if (!bit)
    return cl == c;
  int r = (class_bits[c] & bit) != 0;
  return isupper(cl) ? !r : r;
}

/* The end of the set starting at p ('['), just past its ']', or NULL. */
static const char *set_end(const char *p, const char *pe) {
  const char *q = p + 1;
  if (q < pe && *q == '^')
    q++;
  /* the first character is part of the set even when it is ']' */
  do {
    if (q >= pe)
      return NULL;
    if (*q++ == '%' && q < pe)
      q++;
  } while (q < pe && *q != ']');
  return q < pe ? q + 1 : NULL;
}

/* Does byte c match the set p..ep ('[' to just past ']')? */
static int set_has(int c, const char *p, const char *ep) {
  const char *end = ep - 1; /* the ']' */
  int neg = 0;
  p++;
  if (*p == '^') {
    neg = 1;
    p++;
  }
  for (; p < end; p++) {
    if (*p == '%' && p + 1 < end) {
      p++;
      if (class_has(c, (unsigned char)*p))
        return !neg;
    } else if (p + 2 < end && p[1] == '-') {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
        return !neg;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return !neg;
    }
  }
  return neg;
}

/* The end of the single-character item at p, or NULL if malformed. */
static const char *item_end(const char *p, const char *pe) {
  if (*p == '%')
    return p + 1 < pe ? p + 2 : NULL;
  if (*p == '[')
    return set_end(p, pe);
  return p + 1;
}

static double longest_run(const char *s, size_t n, const char *p, const char *ep) {
  size_t best = 0, cur = 0;
  if (*p == '.')
    return (double)n;
  if (*p == '%' && class_bit((unsigned char)p[1])) {
    unsigned bit = class_bit((unsigned char)p[1]), want = islower((unsigned char)p[1]) ? bit : 0;
    for (size_t i = 0; i < n; i++) {
      cur = (class_bits[(unsigned char)s[i]] & bit) == want ? cur + 1 : 0;
      best = cur > best ? cur : best;
    }
    return (double)best;
  }
  if (*p != '[') {
    char c = *p == '%' ? p[1] : *p;
    for (size_t i = 0; i < n; i++) {
      cur = s[i] == c ? cur + 1 : 0;
      best = cur > best ? cur : best;
    }
    return (double)best;
  }
  for (size_t i = 0; i < n; i++) {
    cur = set_has((unsigned char)s[i], p, ep) ? cur + 1 : 0;
    best = cur > best ? cur : best;
  }
  return (double)best;
}

/* One piece of a pattern, as the estimate sees it. */
typedef struct pat_item {
  const char *p, *ep; /* a single-character class, when kind is 'c' */
  char kind; /* 'c' class, '(' or ')' capture, 'n' scans the subject (%b, %1), 'f' frontier */
  char rep;  /* '*', '+', '-', '?' or 0 */
} pat_item;

#define PAT_ITEMS 64

/* Splits p into items; returns their count, or -1 when there are too many.
 * A malformed piece ends the list (Lua raises the error when it gets
 * there). *dollar is set when the pattern ends with an anchor. */
static int pattern_items(const char *p, const char *pe, pat_item *it, int cap, int *dollar) {
  int k = 0;
  *dollar = 0;
  while (p < pe) {
    if (k == cap)
      return -1;
    pat_item *i = &it[k];
    *i = (pat_item){.p = p, .kind = 'c'};
    if (*p == '(' || *p == ')') {
      i->kind = '(';
      p += *p == '(' && p + 1 < pe && p[1] == ')' ? 2 : 1;
    } else if (*p == '$' && p + 1 == pe) {
      *dollar = 1;
      break;
    } else if (*p == '%' && p + 1 < pe && p[1] == 'f') {
      const char *q = p + 2 < pe && p[2] == '[' ? set_end(p + 2, pe) : NULL;
      if (!q)
        break;
      i->kind = 'f';
      p = q;
    } else if (*p == '%' && p + 1 < pe && (p[1] == 'b' || isdigit((unsigned char)p[1]))) {
      i->kind = 'n';
      p += p[1] == 'b' ? 4 : 2;
    } else {
      if (!(i->ep = item_end(p, pe)))
        break;
      p = i->ep;
      if (p < pe && (*p == '*' || *p == '+' || *p == '-' || *p == '?'))
        i->rep = *p++;
    }
    k++;
  }
  return k;
}

static double pattern_steps(const char *s, size_t n, const char *p, size_t pl, int can_anchor) {
  const char *pe = p + pl;
  double visits = 1, total = 0, dn = (double)n;
  pat_item fixed_it[PAT_ITEMS], *it = fixed_it;
  double fixed_runs[PAT_ITEMS], *runs = fixed_runs;
  int anchored = can_anchor && p < pe && *p == '^', dollar;
  if (anchored)
    p++;
  int k = pattern_items(p, pe, it, PAT_ITEMS, &dollar);
  if (k < 0 && pl > (size_t)1 << 24)
    return 1e300; /* a pattern of megabytes: refuse */
  if (k < 0) {    /* a long pattern: at most one item per byte */
    it = malloc((pl + 1) * sizeof *it);
    runs = malloc((pl + 1) * sizeof *runs);
    k = it && runs ? pattern_items(p, pe, it, (int)pl + 1, &dollar) : -1;
    if (k < 0) {
      free(it);
      free(runs);
      return 1e300; /* out of memory: refuse */
    }
  }
  /* The tail: captures and x*, x-, x? up to the end (without $), after at
   * most one x+. It cannot fail, so it is tried once per reach and its scans
   * lie inside the match: at most the subject once per match. */
  int tail = k;
  if (!dollar) {
    while (tail > 0 && (it[tail - 1].kind == '(' ||
                        (it[tail - 1].kind == 'c' && it[tail - 1].rep && it[tail - 1].rep != '+')))
      tail--;
    if (tail > 0 && it[tail - 1].kind == 'c' && it[tail - 1].rep == '+')
      tail--;
  }
  double tail_scans = 0;
  for (int i = 0; i < k && total < 1e30; i++) {
    if (it[i].kind == 'n') {
      total += visits * (dn + 1);
      continue;
    }
    if (it[i].kind != 'c' || !it[i].rep) {
      total += visits;
      continue;
    }
    /* the longest run the item matches; the same item scans once */
    double run = -1;
    size_t len = (size_t)(it[i].ep - it[i].p);
    for (int j = 0; j < i && run < 0; j++)
      if (it[j].kind == 'c' && it[j].rep && (size_t)(it[j].ep - it[j].p) == len &&
          memcmp(it[j].p, it[i].p, len) == 0)
        run = runs[j];
    runs[i] = run = run >= 0 ? run : longest_run(s, n, it[i].p, it[i].ep);
    if (i >= tail) {
      total += visits;
      if (it[i].rep == '*' || it[i].rep == '+')
        tail_scans += 2 * (dn + 1);
      continue;
    }
    if (it[i].rep == '?') /* two ways only where the item can match at all */
      run = run > 0 ? 1 : 0;
    total += visits * (it[i].rep == '-' || it[i].rep == '?' ? 1 : run + 1);
    visits *= run + 1;
  }
  if (it != fixed_it) {
    free(it);
    free(runs);
  }
  return (anchored ? 1 : dn + 1) * (total + visits) + tail_scans;
}

/* find and match (can anchor), gmatch (cannot), gsub (can); an iteration
 * may try every start twice (after an empty match). */
static int charge_pattern(lua_State *L, const char *fn, int can_anchor, double starts_factor) {
  size_t n, pl;
  const char *s = lua_tolstring(L, 1, &n);
  const char *p = lua_tolstring(L, 2, &pl);
  if (!s || !p)
    return call_original(L); /* which names the bad argument */
  double steps;
  if (lua_gettop(L) >= 4 && lua_toboolean(L, 4) && strcmp(fn, "find") == 0)
    steps = ((double)n + 1) * ((double)pl + 1); /* plain search */
  else
    steps = pattern_steps(s, n, p, pl, can_anchor) * starts_factor;
  if (steps > 256) {
    char pat[48];
    excerpt(p, pl, pat, sizeof pat);
    charge(L, steps / STEPS_PER_INSN,
           "string.%s(\"%s\") on %zu bytes could take up to %.2g matcher steps (simplify the "
           "pattern or shorten the text)",
           fn, pat, n, steps);
  }
  return call_original(L);
}

static int w_find(lua_State *L) { return charge_pattern(L, "find", 1, 1); }
static int w_match(lua_State *L) { return charge_pattern(L, "match", 1, 1); }
static int w_gmatch(lua_State *L) { return charge_pattern(L, "gmatch", 0, 2); }
static int w_gsub(lua_State *L) { return charge_pattern(L, "gsub", 1, 2); }

/* Replaces lib[name] (the table on top) by a charging wrapper around it. */
static void wrap(lua_State *L, const char *name, lua_CFunction w) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, w, 1);
  lua_setfield(L, -2, name);
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
  static const char *const base[] = {"assert", "error",    "ipairs",       "next",     "pairs",
                                     "select", "tonumber", "tostring",     "type",     "rawequal",
                                     "rawget", "rawlen",   "getmetatable", "_VERSION", NULL};
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
  static const struct {
    const char *lib, *name;
    lua_CFunction w;
  } wraps[] = {
      {"string", "rep", w_rep},       {"string", "byte", w_slice},    {"string", "find", w_find},
      {"string", "match", w_match},   {"string", "gmatch", w_gmatch}, {"string", "gsub", w_gsub},
      {"string", "pack", w_scan},     {"string", "packsize", w_scan}, {"string", "unpack", w_scan},
      {"table", "concat", w_concat},  {"table", "unpack", w_unpack},  {"table", "move", w_move},
      {"table", "insert", w_insert},  {"table", "remove", w_remove},  {"table", "sort", w_sort},
      {"utf8", "codepoint", w_slice}, {"utf8", "len", w_scan},        {"utf8", "offset", w_scan}};

  lua_newtable(L); /* the sandbox */
  for (size_t i = 0; base[i]; i++) {
    lua_getglobal(L, base[i]);
    lua_setfield(L, -2, base[i]);
  }
  lua_getglobal(L, "tonumber");
  lua_pushcclosure(L, w_scan, 1);
  lua_setfield(L, -2, "tonumber");
  static const luaL_Reg own[] = {{"print", l_print},     {"collectgarbage", l_collectgarbage},
                                 {"require", l_require}, {"pcall", l_pcall},
                                 {"xpcall", l_xpcall},   {"setmetatable", l_setmetatable},
                                 {"rawset", l_rawset},   {NULL, NULL}};
  luaL_setfuncs(L, own, 0);
  struct {
    const char *lib;
    const char *const *names;
  } libs[] = {
      {"string", string_f}, {"table", table_f}, {"math", math_f}, {"utf8", utf8_f}, {"os", os_f}};
  for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
    copy_fields(L, libs[i].lib, libs[i].names);
    for (size_t w = 0; w < sizeof wraps / sizeof wraps[0]; w++)
      if (strcmp(wraps[w].lib, libs[i].lib) == 0)
        wrap(L, wraps[w].name, wraps[w].w);
    okegw_luajson_freeze(L);
    lua_setfield(L, -2, libs[i].lib);
  }
  okegw_luajson_open(L);
  okegw_luajson_freeze(L);
  lua_setfield(L, -2, "json");
  pthread_once(&class_bits_once, init_class_bits);
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

/* ---- errors -------------------------------------------------------------- */

/* Does msg start with a position ("flow2.put_offering.lua:12: ...")? */
static int has_position(const char *msg) {
  const char *c = strstr(msg, ".lua:");
  if (!c || memchr(msg, ' ', (size_t)(c - msg)))
    return 0;
  c += 5;
  if (!isdigit((unsigned char)*c))
    return 0;
  while (isdigit((unsigned char)*c))
    c++;
  return *c == ':';
}

/* The message handler of a call. An error without a position (error({}),
 * error("x", 0), one raised by C code) gets the file:line of the innermost
 * frame of a mapping script, else of a library. Plain C: it may run with
 * hooks off. */
static int l_error_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg && has_position(msg))
    return 1;
  lua_Debug ar;
  char lib[200] = "", script[200] = "";
  for (int level = 1; !script[0] && lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
      continue;
    int is_lib = strncmp(ar.source, "@lib/", 5) == 0;
    if (!is_lib || !lib[0])
      snprintf(is_lib ? lib : script, 200, "%s:%d", ar.short_src, ar.currentline);
  }
  if (!script[0] && !lib[0])
    return 1;
  if (msg)
    lua_pushstring(L, msg);
  else
    lua_pushfstring(L, "error object is a %s value", luaL_typename(L, 1));
  if (script[0] && lib[0])
    lua_pushfstring(L, "%s: %s (raised in %s)", script, lua_tostring(L, -1), lib);
  else
    lua_pushfstring(L, "%s: %s", script[0] ? script : lib, lua_tostring(L, -1));
  return 1;
}

/* The text of a failed or killed call (status from lua_pcall, error value on
 * top), before expand_where. */
static void failure_text(okegw_mapset *m, lua_State *L, int status, char *raw, size_t rawsz) {
  const char *msg = status != LUA_OK && lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  char where[200];
  where_text(m, where, sizeof where);
  if (m->killed) {
    if (msg && strstr(msg, m->kill_msg))
      snprintf(raw, rawsz, "%s", msg);
    else
      snprintf(raw, rawsz, "%s: %s", where, m->kill_msg);
  } else if (m->mem_exceeded || status == LUA_ERRMEM) {
    snprintf(raw, rawsz, "%s: the mapping exceeded its memory quota of %zu KiB (near this line)",
             where, m->mem_limit / 1024);
  } else {
    snprintf(raw, rawsz, "%s", msg ? msg : "the mapping raised an error that is not a string");
  }
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
  /* by default a tenth of a microsecond per instruction, at least 1 s */
  m->time_ms = lim && lim->time_ms > 0
                   ? lim->time_ms
                   : (long)(m->budget / 10000 > TIME_MS_MIN ? m->budget / 10000 : TIME_MS_MIN);
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
  lua_pushcfunction(L, l_error_handler);
  lua_insert(L, -2);
  budget_start(m);
  int rc = lua_pcall(L, 0, 0, -2);
  budget_stop(m);
  if (rc != LUA_OK || m->killed || m->mem_exceeded) {
    char raw[1024];
    failure_text(m, L, rc, raw, sizeof raw);
    expand_where(m, raw, err, sizeof err);
    okegw_diag_add_msg(diag, err);
    lua_settop(L, rc != LUA_OK ? -4 : -3);
    return -1;
  }
  lua_pop(L, 1); /* the handler */
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
      *(okegw_mapset **)lua_getextraspace(m->L) = m;
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
  cfg_forget(m);
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
  int want_text; /* the result as text (out_text), no tree */
  char *out_text;
} run_args;

static void cfg_forget(okegw_mapset *m) {
  for (size_t i = 0; i < m->ncfg; i++)
    free(m->cfg[i]);
  free(m->cfg);
  m->cfg = NULL;
  m->ncfg = 0;
}

/* 1 when conf's keys and values are those the cached ctx.config was built
 * from (compared by content: a reload may put other settings at the same
 * address). */
static int cfg_same(const okegw_mapset *m, const okegw_conf_connector *conf) {
  if (!m->cfg || m->ncfg != conf->nkv * 2)
    return 0;
  for (size_t i = 0; i < conf->nkv; i++)
    if (strcmp(m->cfg[2 * i], conf->kv[i].key) || strcmp(m->cfg[2 * i + 1], conf->kv[i].value))
      return 0;
  return 1;
}

/* Builds ctx.config for conf into the cache (registry and m->cfg); leaves
 * the cached table on the stack. Secrets stay out of scripts. */
static void cfg_build(lua_State *L, okegw_mapset *m, const okegw_conf_connector *conf) {
  cfg_forget(m);
  lua_createtable(L, 0, conf ? (int)conf->nkv : 0);
  for (size_t i = 0; conf && i < conf->nkv; i++) {
    const okegw_conf_kv *kv = &conf->kv[i];
    if (okegw_conf_is_secret(kv->key))
      continue;
    lua_pushstring(L, kv->value);
    lua_setfield(L, -2, kv->key);
  }
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key);
  if (!conf || !conf->nkv || !(m->cfg = calloc(conf->nkv * 2, sizeof *m->cfg)))
    return; /* nothing to compare with next time: built again */
  m->ncfg = conf->nkv * 2;
  for (size_t i = 0; i < conf->nkv; i++)
    if (!(m->cfg[2 * i] = okegw_strdup(conf->kv[i].key)) ||
        !(m->cfg[2 * i + 1] = okegw_strdup(conf->kv[i].value))) {
      cfg_forget(m);
      return;
    }
}

/* Pushes ctx.config: a new table each message (a script may change its
 * own), copied from the cached one while the settings are the same. */
static void push_config(lua_State *L, okegw_mapset *m, const okegw_conf_connector *conf) {
  if (!conf || !cfg_same(m, conf)) {
    cfg_build(L, m, conf);
  } else {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key);
  }
  int cached = lua_gettop(L);
  lua_createtable(L, 0, (int)(m->ncfg / 2));
  lua_pushnil(L);
  while (lua_next(L, cached)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, cached);
}

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
  push_config(L, a->m, c ? c->conf : NULL);
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
  if (lua_getinfo(L, ">S", &ar)) {
    a->m->where_src = ar.source;
    snprintf(a->m->where_file, sizeof a->m->where_file, "%s", ar.short_src);
    a->m->where_line = ar.linedefined;
  }
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  lua_call(L, 2, 1); /* 6 */
  int result = lua_isnil(L, 6) ? 4 : 6;
  char cerr[512];
  if (a->want_text)
    a->out_text = okegw_luajson_print(L, result, cerr, sizeof cerr);
  else
    a->out = okegw_luajson_to_json(L, result, cerr, sizeof cerr);
  if (!a->out && !a->out_text) {
    lua_getfield(L, 3, "file");
    return luaL_error(L, "%s: %s returned %s", lua_tostring(L, -1),
                      a->from_peer ? "from_peer" : "to_peer", cerr);
  }
  /* A script may name the resource: ctx.id = msg.candidate_ref */
  if (a->ctx && a->ctx->id_out && lua_getfield(L, 5, "id") == LUA_TSTRING)
    snprintf(a->ctx->id_out, a->ctx->id_out_size, "%s", lua_tostring(L, -1));
  return 0;
}

/* okegw_mapset_run, with the result as a tree (out) or as text (text). */
static int run(okegw_mapset *m, const char *interaction, int from_peer, const cJSON *in,
               const okegw_map_ctx *ctx, cJSON **out, char **text, char *err, size_t errsz) {
  if (out)
    *out = NULL;
  if (text)
    *text = NULL;
  if (!okegw_mapset_has(m, interaction, from_peer))
    return 0;
  lua_State *L = m->L;
  /* Leave room for this call: garbage of earlier calls must not count
   * against it. */
  if (m->mem_used > m->mem_limit / 2)
    lua_gc(L, LUA_GCCOLLECT, 0);
  run_args a = {m, interaction, from_peer, in, ctx, NULL, err, errsz, text != NULL, NULL};
  lua_settop(L, 0);
  lua_pushcfunction(L, l_error_handler);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &a);
  budget_start(m);
  int rc = lua_pcall(L, 1, 0, 1);
  budget_stop(m);
  if (rc == LUA_OK && !m->mem_exceeded && !m->killed) {
    if (out)
      *out = a.out;
    else
      *text = a.out_text;
    lua_settop(L, 0);
    return 0;
  }
  cJSON_Delete(a.out);
  free(a.out_text);
  char raw[1024];
  failure_text(m, L, rc, raw, sizeof raw);
  expand_where(m, raw, err, errsz);
  lua_settop(L, 0);
  /* A script that ran out of memory may have left garbage behind. */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return m->killed || m->mem_exceeded ? OKEGW_MAP_KILLED : -1;
}

int okegw_mapset_run(okegw_mapset *m, const char *interaction, int from_peer, const cJSON *in,
                     const okegw_map_ctx *ctx, cJSON **out, char *err, size_t errsz) {
  return run(m, interaction, from_peer, in, ctx, out, NULL, err, errsz);
}

int okegw_mapset_run_text(okegw_mapset *m, const char *interaction, int from_peer, const cJSON *in,
                          const okegw_map_ctx *ctx, char **text, char *err, size_t errsz) {
  return run(m, interaction, from_peer, in, ctx, NULL, text, err, errsz);
}
