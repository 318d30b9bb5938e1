/* plugins.conf reader: INI sections, key = value, ';' or '#' comments. */
#include "base/conf.h"
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void okegw_diag_add_msg(okegw_diag *d, const char *msg) {
  char **m = realloc(d->msgs, (d->n + 1) * sizeof *m);
  if (!m)
    return;
  d->msgs = m;
  d->msgs[d->n] = okegw_strdup(msg);
  if (d->msgs[d->n])
    d->n++;
}

void okegw_diag_add(okegw_diag *d, const char *file, int line, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char *full = okegw_asprintf("%s:%d: %s", file, line, msg);
  if (full)
    okegw_diag_add_msg(d, full);
  free(full);
}

void okegw_diag_free(okegw_diag *d) {
  for (size_t i = 0; i < d->n; i++)
    free(d->msgs[i]);
  free(d->msgs);
  d->msgs = NULL;
  d->n = 0;
}

/* Host keys of a connector section, with the one-line help README repeats. */
static const char *const connector_keys[] = {"plugin",
                                             "role",
                                             "phase",
                                             "base_url",
                                             "auth",
                                             "token",
                                             "api_key",
                                             "api_key_header",
                                             "connect_timeout_ms",
                                             "timeout_ms",
                                             "test_system",
                                             "scripts",
                                             "callback_token",
                                             "inbound_token",
                                             "scopes",
                                             "validate_answers",
                                             "delivery_wait_ms",
                                             "delivery_max_age_s",
                                             "delivery_concurrency",
                                             "retry_first_ms",
                                             "retry_max_ms",
                                             "keep_bodies_s",
                                             NULL};

int okegw_conf_is_secret(const char *key) {
  return strcmp(key, "token") == 0 || strcmp(key, "api_key") == 0 ||
         strcmp(key, "callback_token") == 0 || strcmp(key, "inbound_token") == 0;
}

int okegw_conf_is_host_key(const char *key) {
  for (size_t i = 0; connector_keys[i]; i++)
    if (strcmp(connector_keys[i], key) == 0)
      return 1;
  return 0;
}

static const struct {
  unsigned bit;
  const char *name;
} scope_names[] = {{OKEGW_SCOPE_FLOW0, "nl-test-admin-flow-0"},
                   {OKEGW_SCOPE_FLOW15, "nl-test-admin-flow-1-5"},
                   {OKEGW_SCOPE_FLOW234, "nl-test-admin-flow-2-3-4"},
                   {OKEGW_SCOPE_FLOW6, "nl-test-admin-flow-6"}};

const char *okegw_scope_name(unsigned scope) {
  for (size_t i = 0; i < sizeof scope_names / sizeof scope_names[0]; i++)
    if (scope_names[i].bit == scope)
      return scope_names[i].name;
  return "?";
}

/* The scopes a role needs by default: what the standard lets it call. */
static unsigned default_scopes(enum okegw_role r) {
  switch (r) {
  case OKEGW_ROLE_TA: return OKEGW_SCOPE_FLOW234 | OKEGW_SCOPE_FLOW6;
  case OKEGW_ROLE_TPL: return OKEGW_SCOPE_FLOW0 | OKEGW_SCOPE_FLOW15 | OKEGW_SCOPE_FLOW234;
  case OKEGW_ROLE_DR: return OKEGW_SCOPE_FLOW0 | OKEGW_SCOPE_FLOW15;
  }
  return 0;
}

const char *okegw_role_name(enum okegw_role r) {
  switch (r) {
  case OKEGW_ROLE_TA: return "ta";
  case OKEGW_ROLE_TPL: return "tpl";
  case OKEGW_ROLE_DR: return "dr";
  }
  return "?";
}

const char *okegw_phase_name(enum okegw_phase p) { return p == OKEGW_PHASE_LIVE ? "live" : "off"; }

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1]))
    *--e = '\0';
  return s;
}

/* A value may carry a trailing comment after whitespace: "x = 1 ; note". */
static void strip_comment(char *v) {
  for (char *p = v; *p; p++) {
    if ((*p == ';' || *p == '#') && (p == v || isspace((unsigned char)p[-1]))) {
      *p = '\0';
      return;
    }
  }
}

static int parse_long(const char *v, long min, long max, long *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end || n < min || n > max)
    return -1;
  *out = n;
  return 0;
}

static int valid_name(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
      return 0;
  return 1;
}

static char *resolve_path(const okegw_conf *c, const char *v) {
  if (v[0] == '/' || !c->dir)
    return okegw_strdup(v);
  return okegw_asprintf("%s/%s", c->dir, v);
}

typedef struct parse_state {
  okegw_conf *c;
  okegw_diag *d;
  const char *file;
  int line;
  int in_gateway;
  int gateway_seen;
  int in_bad_section;         /* keys under a rejected header were reported with it */
  okegw_conf_connector *conn; /* current connector section, or NULL */
} parse_state;

#define ERR(ps, ...) okegw_diag_add((ps)->d, (ps)->file, (ps)->line, __VA_ARGS__)

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = okegw_strdup(v);
}

static void gateway_key(parse_state *ps, const char *k, const char *v) {
  okegw_conf *c = ps->c;
  long n;
  if (strcmp(k, "listen") == 0) {
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || parse_long(colon + 1, 0, 65535, &n) < 0) {
      ERR(ps, "listen: expected HOST:PORT (port 0-65535), got '%s'", v);
      return;
    }
    free(c->listen_host);
    c->listen_host = okegw_strndup(v, (size_t)(colon - v));
    c->listen_port = (int)n;
  } else if (strcmp(k, "base_path") == 0) {
    if (*v && (v[0] != '/' || strchr(v, '?') || strchr(v, ' '))) {
      ERR(ps, "base_path: must be empty or start with '/', got '%s'", v);
      return;
    }
    size_t len = strlen(v);
    while (len > 0 && v[len - 1] == '/')
      len--;
    free(c->base_path);
    c->base_path = okegw_strndup(v, len);
  } else if (strcmp(k, "store") == 0) {
    if (!*v) {
      ERR(ps, "store: a file path is required");
      return;
    }
    free(c->store);
    c->store = resolve_path(c, v);
  } else if (strcmp(k, "store_sync") == 0) {
    if (strcmp(v, "full") && strcmp(v, "normal"))
      ERR(ps, "store_sync: expected full or normal, got '%s'", v);
    else
      set_str(&c->store_sync, v);
  } else if (strcmp(k, "outbox_max_open") == 0) {
    if (parse_long(v, 1, 10000000L, &c->outbox_max_open) < 0)
      ERR(ps, "outbox_max_open: expected a number from 1 to 10000000, got '%s'", v);
  } else if (strcmp(k, "delivery_retention_s") == 0) {
    if (parse_long(v, 60, 3660L * 86400, &c->delivery_retention_s) < 0)
      ERR(ps, "delivery_retention_s: expected seconds from 60 to 316224000 (3660 days), got '%s'",
          v);
  } else if (strcmp(k, "max_header_bytes") == 0) {
    if (parse_long(v, 1024, 1 << 20, &n) < 0)
      ERR(ps, "max_header_bytes: expected a number from 1024 to 1048576, got '%s'", v);
    else
      c->max_header_bytes = (size_t)n;
  } else if (strcmp(k, "max_body_bytes") == 0) {
    if (parse_long(v, 1024, 1L << 30, &n) < 0)
      ERR(ps, "max_body_bytes: expected a number from 1024 to 1073741824, got '%s'", v);
    else
      c->max_body_bytes = (size_t)n;
  } else if (strcmp(k, "max_document_bytes") == 0) {
    if (parse_long(v, 1024, 1L << 32, &n) < 0)
      ERR(ps, "max_document_bytes: expected a number from 1024 to 4294967296, got '%s'", v);
    else
      c->max_document_bytes = (size_t)n;
  } else if (strcmp(k, "idle_timeout_ms") == 0) {
    if (parse_long(v, 100, 86400000L, &c->idle_timeout_ms) < 0)
      ERR(ps, "idle_timeout_ms: expected milliseconds from 100 to 86400000, got '%s'", v);
  } else if (strcmp(k, "request_timeout_ms") == 0) {
    if (parse_long(v, 100, 3600000L, &c->request_timeout_ms) < 0)
      ERR(ps, "request_timeout_ms: expected milliseconds from 100 to 3600000, got '%s'", v);
  } else if (strcmp(k, "max_connections") == 0) {
    if (parse_long(v, 1, 100000, &n) < 0)
      ERR(ps, "max_connections: expected a number from 1 to 100000, got '%s'", v);
    else
      c->max_connections = (int)n;
  } else if (strcmp(k, "catalogue_max_pages") == 0) {
    if (parse_long(v, 1, 1000, &n) < 0)
      ERR(ps, "catalogue_max_pages: expected a number from 1 to 1000, got '%s'", v);
    else
      c->catalogue_max_pages = (int)n;
  } else if (strcmp(k, "log_level") == 0) {
    if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error"))
      ERR(ps, "log_level: expected debug, info, warn or error, got '%s'", v);
    else
      set_str(&c->log_level, v);
  } else if (strcmp(k, "scripts_lib") == 0) {
    free(c->scripts_lib);
    c->scripts_lib = resolve_path(c, v);
  } else if (strcmp(k, "lua_memory_kb") == 0) {
    if (parse_long(v, 256, 4L << 20, &n) < 0)
      ERR(ps, "lua_memory_kb: expected KiB from 256 to 4194304, got '%s'", v);
    else
      c->lua_memory_bytes = (size_t)n * 1024;
  } else if (strcmp(k, "lua_instructions") == 0) {
    if (parse_long(v, 1000, 1000000000L, &c->lua_instructions) < 0)
      ERR(ps, "lua_instructions: expected a number from 1000 to 1000000000, got '%s'", v);
  } else if (strcmp(k, "contact_email") == 0) {
    set_str(&c->contact_email, v);
  } else if (strcmp(k, "documentation_url") == 0) {
    set_str(&c->documentation_url, v);
  } else if (strcmp(k, "specification_url") == 0) {
    set_str(&c->specification_url, v);
  } else {
    ERR(ps, "unknown key '%s' in [gateway]", k);
  }
}

static void connector_key(parse_state *ps, const char *k, const char *v) {
  okegw_conf_connector *cc = ps->conn;
  for (size_t i = 0; i < cc->nkv; i++) {
    if (strcmp(cc->kv[i].key, k) == 0) {
      ERR(ps, "key '%s' repeated in [connector %s] (first at line %d)", k, cc->name,
          cc->kv[i].line);
      return;
    }
  }
  okegw_conf_kv *kv = realloc(cc->kv, (cc->nkv + 1) * sizeof *kv);
  if (!kv)
    return;
  cc->kv = kv;
  cc->kv[cc->nkv++] = (okegw_conf_kv){okegw_strdup(k), okegw_strdup(v), ps->line};

  if (strcmp(k, "plugin") == 0) {
    if (!*v) {
      ERR(ps, "plugin: a built-in name or a path to a .so is required");
      return;
    }
    free(cc->plugin);
    cc->plugin = strchr(v, '/') ? resolve_path(ps->c, v) : okegw_strdup(v);
    cc->plugin_line = ps->line;
  } else if (strcmp(k, "role") == 0) {
    if (strcmp(v, "ta") == 0)
      cc->role = OKEGW_ROLE_TA;
    else if (strcmp(v, "tpl") == 0)
      cc->role = OKEGW_ROLE_TPL;
    else if (strcmp(v, "dr") == 0)
      cc->role = OKEGW_ROLE_DR;
    else
      ERR(ps, "role: expected ta, tpl or dr, got '%s'", v);
  } else if (strcmp(k, "phase") == 0) {
    if (strcmp(v, "off") == 0)
      cc->phase = OKEGW_PHASE_OFF;
    else if (strcmp(v, "live") == 0)
      cc->phase = OKEGW_PHASE_LIVE;
    else
      ERR(ps, "phase: expected off or live, got '%s'", v);
  } else if (strcmp(k, "base_url") == 0) {
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
      ERR(ps, "base_url: expected an http:// or https:// URL, got '%s'", v);
      return;
    }
    size_t len = strlen(v);
    while (len > 0 && v[len - 1] == '/')
      len--;
    free(cc->base_url);
    cc->base_url = okegw_strndup(v, len);
  } else if (strcmp(k, "auth") == 0) {
    if (strcmp(v, "none") == 0)
      cc->auth = OKEGW_AUTH_NONE;
    else if (strcmp(v, "bearer") == 0)
      cc->auth = OKEGW_AUTH_BEARER;
    else if (strcmp(v, "apikey") == 0)
      cc->auth = OKEGW_AUTH_APIKEY;
    else
      ERR(ps, "auth: expected none, bearer or apikey, got '%s'", v);
  } else if (strcmp(k, "token") == 0) {
    set_str(&cc->token, v);
  } else if (strcmp(k, "validate_answers") == 0) {
    if (strcmp(v, "warn") == 0)
      cc->validate_answers = OKEGW_CHECK_WARN;
    else if (strcmp(v, "block") == 0)
      cc->validate_answers = OKEGW_CHECK_BLOCK;
    else if (strcmp(v, "off") == 0)
      cc->validate_answers = OKEGW_CHECK_OFF;
    else
      ERR(ps, "validate_answers: expected warn, block or off, got '%s'", v);
  } else if (strcmp(k, "inbound_token") == 0) {
    if (strlen(v) < 16)
      ERR(ps, "inbound_token: use at least 16 characters");
    else
      set_str(&cc->inbound_token, v);
  } else if (strcmp(k, "scopes") == 0) {
    cc->scopes = 0;
    cc->scopes_set = 1;
    char *copy = okegw_strdup(v), *save = NULL;
    for (char *w = copy ? strtok_r(copy, " ,", &save) : NULL; w; w = strtok_r(NULL, " ,", &save)) {
      unsigned bit = 0;
      for (size_t i = 0; i < sizeof scope_names / sizeof scope_names[0]; i++)
        if (strcmp(w, scope_names[i].name) == 0 || strcmp(w, scope_names[i].name + 14) == 0)
          bit = scope_names[i].bit;
      if (!bit)
        ERR(ps,
            "scopes: unknown scope '%s' (use nl-test-admin-flow-0, -flow-1-5, -flow-2-3-4, "
            "-flow-6)",
            w);
      cc->scopes |= bit;
    }
    free(copy);
  } else if (strcmp(k, "callback_token") == 0) {
    if (strlen(v) < 16)
      ERR(ps, "callback_token: use at least 16 characters");
    else
      set_str(&cc->callback_token, v);
  } else if (strcmp(k, "api_key") == 0) {
    set_str(&cc->api_key, v);
  } else if (strcmp(k, "api_key_header") == 0) {
    if (!valid_name(v))
      ERR(ps, "api_key_header: not a valid header name: '%s'", v);
    else
      set_str(&cc->api_key_header, v);
  } else if (strcmp(k, "test_system") == 0) {
    if (!*v)
      ERR(ps, "test_system: must not be empty");
    else
      set_str(&cc->test_system, v);
  } else if (strcmp(k, "scripts") == 0) {
    if (!*v) {
      ERR(ps, "scripts: a folder is required");
      return;
    }
    free(cc->scripts);
    cc->scripts = resolve_path(ps->c, v);
    cc->scripts_explicit = 1;
  } else if (strcmp(k, "connect_timeout_ms") == 0) {
    if (parse_long(v, 1, 600000, &cc->connect_timeout_ms) < 0)
      ERR(ps, "connect_timeout_ms: expected milliseconds from 1 to 600000, got '%s'", v);
  } else if (strcmp(k, "timeout_ms") == 0) {
    if (parse_long(v, 1, 3600000, &cc->timeout_ms) < 0)
      ERR(ps, "timeout_ms: expected milliseconds from 1 to 3600000, got '%s'", v);
  } else if (strcmp(k, "delivery_wait_ms") == 0) {
    if (parse_long(v, 0, 600000, &cc->delivery_wait_ms) < 0)
      ERR(ps, "delivery_wait_ms: expected milliseconds from 0 to 600000, got '%s'", v);
  } else if (strcmp(k, "delivery_max_age_s") == 0) {
    if (parse_long(v, 1, 31L * 86400, &cc->delivery_max_age_s) < 0)
      ERR(ps, "delivery_max_age_s: expected seconds from 1 to 2678400 (31 days), got '%s'", v);
  } else if (strcmp(k, "delivery_concurrency") == 0) {
    if (parse_long(v, 1, 1000, &cc->delivery_concurrency) < 0)
      ERR(ps, "delivery_concurrency: expected a number from 1 to 1000, got '%s'", v);
  } else if (strcmp(k, "retry_first_ms") == 0) {
    if (parse_long(v, 10, 3600000, &cc->retry_first_ms) < 0)
      ERR(ps, "retry_first_ms: expected milliseconds from 10 to 3600000, got '%s'", v);
  } else if (strcmp(k, "retry_max_ms") == 0) {
    if (parse_long(v, 10, 86400000L, &cc->retry_max_ms) < 0)
      ERR(ps, "retry_max_ms: expected milliseconds from 10 to 86400000, got '%s'", v);
  } else if (strcmp(k, "keep_bodies_s") == 0) {
    if (parse_long(v, 0, 366L * 86400, &cc->keep_bodies_s) < 0)
      ERR(ps, "keep_bodies_s: expected seconds from 0 to 31622400 (366 days), got '%s'", v);
  }
  /* Other keys are the plugin's; they are checked once it is loaded. */
}

static void section(parse_state *ps, char *name) {
  ps->in_gateway = 0;
  ps->in_bad_section = 1;
  ps->conn = NULL;
  if (strcmp(name, "gateway") == 0) {
    if (ps->gateway_seen)
      ERR(ps, "[gateway] appears twice");
    ps->in_gateway = ps->gateway_seen = 1;
    ps->in_bad_section = 0;
    return;
  }
  if (strncmp(name, "connector", 9) == 0 && isspace((unsigned char)name[9])) {
    char *cname = trim(name + 9);
    if (!valid_name(cname)) {
      ERR(ps, "connector name '%s': use letters, digits, '-' and '_'", cname);
      return;
    }
    okegw_conf *c = ps->c;
    for (size_t i = 0; i < c->nconnectors; i++) {
      if (strcmp(c->connectors[i].name, cname) == 0) {
        ERR(ps, "[connector %s] appears twice (first at line %d)", cname, c->connectors[i].line);
        return;
      }
    }
    okegw_conf_connector *arr = realloc(c->connectors, (c->nconnectors + 1) * sizeof *arr);
    if (!arr)
      return;
    c->connectors = arr;
    okegw_conf_connector *cc = &c->connectors[c->nconnectors++];
    memset(cc, 0, sizeof *cc);
    cc->name = okegw_strdup(cname);
    cc->line = ps->line;
    cc->phase = OKEGW_PHASE_OFF;
    cc->role = OKEGW_ROLE_TA;
    cc->connect_timeout_ms = 2000;
    cc->timeout_ms = 10000;
    cc->delivery_wait_ms = 2000;
    cc->delivery_max_age_s = 86400;
    cc->delivery_concurrency = 8;
    cc->retry_first_ms = 1000;
    cc->retry_max_ms = 300000;
    ps->conn = cc;
    ps->in_bad_section = 0;
    return;
  }
  ERR(ps, "unknown section [%s]: expected [gateway] or [connector NAME]", name);
}

static void defaults(okegw_conf *c) {
  c->listen_host = okegw_strdup("127.0.0.1");
  c->listen_port = 8080;
  c->base_path = okegw_strdup("/ooapi");
  c->store = resolve_path(c, "okegw.db");
  c->store_sync = okegw_strdup("full");
  c->delivery_retention_s = 30L * 86400;
  c->outbox_max_open = 100000;
  c->max_header_bytes = 16384;
  c->max_body_bytes = 1048576;
  c->max_document_bytes = (size_t)64 << 20;
  c->idle_timeout_ms = 30000;
  c->request_timeout_ms = 30000;
  c->max_connections = 1024;
  c->catalogue_max_pages = 40;
  c->log_level = okegw_strdup("info");
  c->scripts_lib = resolve_path(c, "scripts/lib");
  c->lua_memory_bytes = (size_t)32 << 20;
  c->lua_instructions = 10000000L;
  c->contact_email = okegw_strdup("ict@school.invalid");
  c->documentation_url = okegw_strdup("https://github.com/okegw/okegw#readme");
  c->specification_url =
      okegw_strdup("https://raw.githubusercontent.com/open-education-api/specification/v5/"
                   "v5/source/spec.yaml");
}

/* Checks that need the whole file: required keys and their combinations. */
static void finish(parse_state *ps) {
  okegw_conf *c = ps->c;
  for (size_t i = 0; i < c->nconnectors; i++) {
    okegw_conf_connector *cc = &c->connectors[i];
    ps->line = cc->line;
    if (!cc->plugin)
      ERR(ps, "[connector %s]: 'plugin' is required", cc->name);
    if (cc->auth == OKEGW_AUTH_BEARER && !cc->token)
      ERR(ps, "[connector %s]: auth = bearer needs 'token'", cc->name);
    if (cc->auth == OKEGW_AUTH_APIKEY && !cc->api_key)
      ERR(ps, "[connector %s]: auth = apikey needs 'api_key'", cc->name);
    if (!cc->scopes_set)
      cc->scopes = default_scopes(cc->role);
    if (!cc->api_key_header)
      cc->api_key_header = okegw_strdup("X-API-Key");
    if (!cc->test_system)
      cc->test_system = okegw_strdup(cc->name);
    if (!cc->scripts) {
      char *rel = okegw_asprintf("scripts/%s", cc->name);
      cc->scripts = rel ? resolve_path(c, rel) : NULL;
      free(rel);
    }
    if (cc->connect_timeout_ms > cc->timeout_ms)
      cc->connect_timeout_ms = cc->timeout_ms;
    if (cc->retry_first_ms > cc->retry_max_ms)
      ERR(ps, "[connector %s]: retry_first_ms (%ld) is larger than retry_max_ms (%ld)", cc->name,
          cc->retry_first_ms, cc->retry_max_ms);
  }
}

int okegw_conf_parse(const char *name, const char *text, okegw_conf *out, okegw_diag *diag) {
  memset(out, 0, sizeof *out);
  out->path = okegw_strdup(name);
  const char *slash = strrchr(name, '/');
  out->dir = slash ? okegw_strndup(name, (size_t)(slash - name)) : okegw_strdup(".");
  if (slash == name)
    set_str(&out->dir, "/");
  defaults(out);

  size_t before = diag->n;
  parse_state ps = {.c = out, .d = diag, .file = name};
  ps.in_bad_section = 0;
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char *raw = okegw_strndup(p, len);
    ps.line++;
    p = nl ? nl + 1 : p + len;
    if (!raw)
      break;
    char *s = trim(raw);
    if (!*s || *s == ';' || *s == '#') {
      free(raw);
      continue;
    }
    if (*s == '[') {
      char *close = strchr(s, ']');
      if (!close || trim(close + 1)[0] != '\0') {
        ERR(&ps, "malformed section header: %s", s);
      } else {
        *close = '\0';
        section(&ps, trim(s + 1));
      }
      free(raw);
      continue;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
      ERR(&ps, "expected 'key = value', got: %s", s);
      free(raw);
      continue;
    }
    *eq = '\0';
    char *k = trim(s);
    char *v = eq + 1;
    strip_comment(v);
    v = trim(v);
    if (!*k)
      ERR(&ps, "missing key before '='");
    else if (ps.in_gateway)
      gateway_key(&ps, k, v);
    else if (ps.conn)
      connector_key(&ps, k, v);
    else if (!ps.in_bad_section)
      ERR(&ps, "key '%s' outside any section", k);
    free(raw);
  }
  if (!ps.gateway_seen) {
    ps.line = 1;
    ERR(&ps, "missing [gateway] section");
  }
  finish(&ps);
  if (diag->n > before) {
    okegw_conf_free(out);
    return -1;
  }
  return 0;
}

int okegw_conf_load(const char *file, okegw_conf *out, okegw_diag *diag) {
  size_t len;
  char *text = okegw_read_file(file, 1 << 20, &len);
  if (!text) {
    memset(out, 0, sizeof *out);
    okegw_diag_add(diag, file, 0, "cannot read: %s", strerror(errno));
    return -1;
  }
  if (memchr(text, '\0', len)) {
    free(text);
    memset(out, 0, sizeof *out);
    okegw_diag_add(diag, file, 0, "not a text file");
    return -1;
  }
  int rc = okegw_conf_parse(file, text, out, diag);
  free(text);
  return rc;
}

const okegw_conf_kv *okegw_conf_find(const okegw_conf_connector *c, const char *key) {
  for (size_t i = 0; i < c->nkv; i++)
    if (strcmp(c->kv[i].key, key) == 0)
      return &c->kv[i];
  return NULL;
}

const char *okegw_conf_get(const okegw_conf_connector *c, const char *key) {
  const okegw_conf_kv *kv = okegw_conf_find(c, key);
  return kv ? kv->value : NULL;
}

void okegw_conf_free(okegw_conf *c) {
  for (size_t i = 0; i < c->nconnectors; i++) {
    okegw_conf_connector *cc = &c->connectors[i];
    free(cc->name);
    free(cc->plugin);
    free(cc->base_url);
    free(cc->token);
    free(cc->callback_token);
    free(cc->inbound_token);
    free(cc->api_key);
    free(cc->api_key_header);
    free(cc->test_system);
    free(cc->scripts);
    for (size_t j = 0; j < cc->nkv; j++) {
      free(cc->kv[j].key);
      free(cc->kv[j].value);
    }
    free(cc->kv);
  }
  free(c->connectors);
  free(c->path);
  free(c->dir);
  free(c->listen_host);
  free(c->base_path);
  free(c->store);
  free(c->store_sync);
  free(c->log_level);
  free(c->scripts_lib);
  free(c->contact_email);
  free(c->documentation_url);
  free(c->specification_url);
  memset(c, 0, sizeof *c);
}
