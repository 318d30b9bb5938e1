/* plugins.conf reader: INI sections, key = value, ';' or '#' comments. */
#include "base/conf.h"
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <unistd.h>
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

/* The scopes okegw asks a system's token endpoint for: those of the flows
 * okegw carries to a system of that role. */
static unsigned default_oauth_scopes(enum okegw_role r) {
  switch (r) {
  case OKEGW_ROLE_TA: return OKEGW_SCOPE_FLOW0 | OKEGW_SCOPE_FLOW234;
  case OKEGW_ROLE_TPL: return OKEGW_SCOPE_FLOW15 | OKEGW_SCOPE_FLOW234;
  case OKEGW_ROLE_DR: return OKEGW_SCOPE_FLOW15 | OKEGW_SCOPE_FLOW6;
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

const char *okegw_phase_name(enum okegw_phase p) {
  static const char *const names[] = {"off", "shadow", "pilot", "live"};
  return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "off";
}

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
  int gateway_line;           /* of the [gateway] header */
  int in_bad_section;         /* keys under a rejected header were reported with it */
  okegw_conf_connector *conn; /* current connector section, or NULL */
} parse_state;

#define ERR(ps, ...) okegw_diag_add((ps)->d, (ps)->file, (ps)->line, __VA_ARGS__)

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = okegw_strdup(v);
}

/* ---- the key table ---------------------------------------------------- */

/* ENUM rows store the index of the value: these lists follow conf.h's enums. */
_Static_assert(OKEGW_ROLE_TA == 0 && OKEGW_ROLE_TPL == 1 && OKEGW_ROLE_DR == 2, "role_values");
_Static_assert(OKEGW_PHASE_OFF == 0 && OKEGW_PHASE_SHADOW == 1 && OKEGW_PHASE_PILOT == 2 &&
                   OKEGW_PHASE_LIVE == 3,
               "phase_values");
_Static_assert(OKEGW_AUTH_NONE == 0 && OKEGW_AUTH_BEARER == 1 && OKEGW_AUTH_APIKEY == 2 &&
                   OKEGW_AUTH_OAUTH2 == 3,
               "auth_values");
_Static_assert(OKEGW_TLS_1_3 == 0 && OKEGW_TLS_1_2 == 1, "tls_values");
_Static_assert(OKEGW_TOKEN_AUTH_BASIC == 0 && OKEGW_TOKEN_AUTH_POST == 1 &&
                   OKEGW_TOKEN_AUTH_JWT == 2,
               "token_auth_values");
_Static_assert(OKEGW_CHECK_WARN == 0 && OKEGW_CHECK_BLOCK == 1 && OKEGW_CHECK_OFF == 2,
               "check_values");
static const char *const role_values[] = {"ta", "tpl", "dr", NULL};
static const char *const phase_values[] = {"off", "shadow", "pilot", "live", NULL};
static const char *const no_yes_values[] = {"no", "yes", NULL};
static const char *const auth_values[] = {"none", "bearer", "apikey", "oauth2", NULL};
static const char *const tls_values[] = {"1.3", "1.2", NULL};
static const char *const token_auth_values[] = {"client_secret_basic", "client_secret_post",
                                                "private_key_jwt", NULL};
static const char *const check_values[] = {"warn", "block", "off", NULL};
static const char *const sync_values[] = {"full", "normal", NULL};
static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_format_values[] = {"auto", "json", "text", NULL};
static const char *const tls_version_values[] = {"1.3", "1.2", NULL};
static const char *const off_on_values[] = {"off", "on", NULL};
static const char *const tls_client_auth_values[] = {"off", "optional", "required", NULL};

static int fail(okegw_conf_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(okegw_conf_set *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, s->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *unit_word(enum okegw_conf_type t) {
  switch (t) {
  case OKEGW_CT_MS: return "milliseconds";
  case OKEGW_CT_S: return "seconds";
  case OKEGW_CT_BYTES: return "bytes";
  case OKEGW_CT_KIB: return "KiB";
  default: return "a number";
  }
}

/* "a, b or c" */
static void join_values(const char *const *values, char *buf, size_t n) {
  size_t count = 0, len = 0;
  while (values[count])
    count++;
  buf[0] = '\0';
  for (size_t i = 0; i < count && len < n; i++) {
    const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
    int w = snprintf(buf + len, n - len, "%s%s", sep, values[i]);
    if (w < 0)
      return;
    len += (size_t)w;
  }
}

static int set_number(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  long n;
  if (parse_long(v, k->min, k->max, &n) < 0) {
    char days[32] = "";
    if (k->type == OKEGW_CT_S && k->max >= 86400 && k->max % 86400 == 0)
      snprintf(days, sizeof days, " (%ld days)", k->max / 86400);
    return fail(s, "expected %s from %ld to %ld%s, got '%s'", unit_word(k->type), k->min, k->max,
                days, v);
  }
  if (k->type == OKEGW_CT_BYTES)
    *(size_t *)s->field = (size_t)n;
  else if (k->type == OKEGW_CT_KIB)
    *(size_t *)s->field = (size_t)n * 1024;
  else if (k->size == sizeof(int))
    *(int *)s->field = (int)n;
  else
    *(long *)s->field = n;
  return 0;
}

static int set_values(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  for (int i = 0; k->values[i]; i++) {
    if (strcmp(k->values[i], v) == 0) {
      if (k->type == OKEGW_CT_CHOICE)
        set_str(s->field, v);
      else
        *(int *)s->field = i;
      return 0;
    }
  }
  char list[256];
  join_values(k->values, list, sizeof list);
  return fail(s, "expected %s, got '%s'", list, v);
}

static int set_string(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  /* a secret's value is never echoed, not even when it is refused */
  if ((long)strlen(v) < k->min)
    return k->min == 1 ? fail(s, "must not be empty")
                       : fail(s, "use at least %ld characters", k->min);
  set_str(s->field, v);
  return 0;
}

static int set_path(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  if (k->min > 0 && !*v)
    return fail(s, "a file path is required");
  char **dst = s->field;
  free(*dst);
  *dst = resolve_path(s->conf, v);
  return 0;
}

/* Whether a store value names a PostgreSQL database (store/pg.h checks it
 * further; the configuration only must not take it for a file name). */
static int is_pg_uri(const char *v) {
  return v && (strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0);
}

/* store: an SQLite file, relative to the config's folder, or a PostgreSQL
 * URI kept as written. */
static int set_store(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  if (!is_pg_uri(v))
    return set_path(k, s, v);
  char **dst = s->field;
  free(*dst);
  *dst = okegw_strdup(v);
  return 0;
}

/* The host goes to the key's field, the port to the int right after it. */
_Static_assert(offsetof(okegw_conf, listen_port) ==
                   offsetof(okegw_conf, listen_host) + sizeof(char *),
               "listen_port follows listen_host");
_Static_assert(offsetof(okegw_conf, admin_listen_port) ==
                   offsetof(okegw_conf, admin_listen_host) + sizeof(char *),
               "admin_listen_port follows admin_listen_host");
_Static_assert(offsetof(okegw_conf, listen_tls_port) ==
                   offsetof(okegw_conf, listen_tls_host) + sizeof(char *),
               "listen_tls_port follows listen_tls_host");

static int set_hostport(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  long n;
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v || parse_long(colon + 1, 0, 65535, &n) < 0)
    return fail(s, "expected HOST:PORT (port 0-65535), got '%s'", v);
  char **host = s->field;
  if (host == &s->conf->listen_tls_host)
    s->conf->tls_line = s->line;
  if (host == &s->conf->admin_listen_host)
    s->conf->admin_line = s->line;
  free(*host);
  *host = okegw_strndup(v, (size_t)(colon - v));
  *(int *)(host + 1) = (int)n;
  return 0;
}

/* A certificate fingerprint as `openssl x509 -fingerprint -sha256` prints
 * it (colons, upper case) or plain hex: kept as 64 lower-case digits. */
static int set_sha256(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  char hex[65];
  size_t n = 0;
  for (const char *p = v; *p; p++) {
    if (*p == ':')
      continue;
    char ch = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || n == 64)
      return fail(s, "expected a SHA-256 fingerprint (64 hex digits, colons allowed), got '%s'", v);
    hex[n++] = ch;
  }
  if (n != 64)
    return fail(s, "expected a SHA-256 fingerprint (64 hex digits, colons allowed), got '%s'", v);
  hex[64] = '\0';
  set_str(s->field, hex);
  return 0;
}

static int set_url(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
    return fail(s, "expected an http:// or https:// URL, got '%s'", v);
  size_t len = strlen(v);
  while (len > 0 && v[len - 1] == '/')
    len--;
  char **dst = s->field;
  free(*dst);
  *dst = okegw_strndup(v, len);
  return 0;
}

static int set_scopes(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  okegw_conf_connector *cc = s->obj;
  cc->scopes = 0;
  cc->scopes_set = 1;
  char bad[256] = ""; /* every unknown word, in one message */
  size_t nbad = 0;
  char *copy = okegw_strdup(v), *save = NULL;
  for (char *w = copy ? strtok_r(copy, " ,", &save) : NULL; w; w = strtok_r(NULL, " ,", &save)) {
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof scope_names / sizeof scope_names[0]; i++)
      if (strcmp(w, scope_names[i].name) == 0 || strcmp(w, scope_names[i].name + 14) == 0)
        bit = scope_names[i].bit;
    if (!bit && nbad < sizeof bad) {
      int n = snprintf(bad + nbad, sizeof bad - nbad, "%s'%s'", nbad ? ", " : "", w);
      nbad += n > 0 ? (size_t)n : 0;
    }
    cc->scopes |= bit;
  }
  free(copy);
  if (nbad)
    return fail(s, "unknown scope %s (use nl-test-admin-flow-0, -flow-1-5, -flow-2-3-4, -flow-6)",
                bad);
  return 0;
}

static int set_base_path(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  if (*v && (v[0] != '/' || strchr(v, '?') || strchr(v, ' ')))
    return fail(s, "must be empty or start with '/', got '%s'", v);
  size_t len = strlen(v);
  while (len > 0 && v[len - 1] == '/')
    len--;
  char **dst = s->field;
  free(*dst);
  *dst = okegw_strndup(v, len);
  return 0;
}

/* A built-in name stays as it is; anything with a '/' is a file. */
static int set_plugin(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  if (!*v)
    return fail(s, "a built-in name or a path to a .so is required");
  okegw_conf_connector *cc = s->obj;
  free(cc->plugin);
  cc->plugin = strchr(v, '/') ? resolve_path(s->conf, v) : okegw_strdup(v);
  cc->plugin_line = s->line;
  return 0;
}

/* Given in the file, the folder must exist (checked when mappings load). */
static int set_scripts(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  if (!*v)
    return fail(s, "a folder is required");
  okegw_conf_connector *cc = s->obj;
  free(cc->scripts);
  cc->scripts = resolve_path(s->conf, v);
  cc->scripts_explicit = 1;
  return 0;
}

static int set_header_name(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  if (!valid_name(v))
    return fail(s, "not a valid header name: '%s'", v);
  set_str(s->field, v);
  return 0;
}

/* A list of UUIDs, kept as " uuid uuid " in lower case so membership is
 * one strstr (okegw_conf_in_list). */
static int set_uuid_list(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  size_t n = strlen(v);
  char *out = malloc(n + 3), *w = out; /* " " + ids with a space after each + NUL */
  if (!out)
    return fail(s, "out of memory");
  *w++ = ' ';
  for (const char *p = v; *p;) {
    size_t len = strcspn(p, " ,\t");
    if (len) {
      char id[40];
      if (len >= sizeof id) {
        free(out);
        return fail(s, "not a UUID: '%.*s'", (int)(len > 60 ? 60 : len), p);
      }
      memcpy(id, p, len);
      id[len] = '\0';
      if (!okegw_is_uuid(id)) {
        free(out);
        return fail(s, "not a UUID: '%s'", id);
      }
      okegw_uuid_lower(id);
      memcpy(w, id, len);
      w += len;
      *w++ = ' ';
    }
    p += len;
    p += strspn(p, " ,\t");
  }
  *w = '\0';
  if (w - out < 2) {
    free(out);
    return fail(s, "give at least one UUID");
  }
  free(*(char **)s->field);
  *(char **)s->field = out;
  return 0;
}

/* A rate: "1%" or a fraction "0.01", from 0 to 1 (100%). */
static int set_rate(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  char *end = NULL;
  errno = 0;
  double d = strtod(v, &end);
  int pct = end && *end == '%';
  if (end == v || errno || (*end && !(pct && !end[1])) || d != d)
    return fail(s, "expected a rate such as 1%% or 0.01, got '%s'", v);
  if (pct)
    d /= 100.0;
  if (d < 0 || d > 1)
    return fail(s, "a rate is from 0%% to 100%% (0 to 1), got '%s'", v);
  *(double *)s->field = d;
  return 0;
}

/* Flows (0-6) or interaction ids ("flow3.patch_association"), kept as
 * " 0 flow3.patch_association " for okegw_conf_listed. */
static int set_interactions(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  char *out = malloc(strlen(v) + 3), *w = out;
  if (!out)
    return fail(s, "out of memory");
  *w++ = ' ';
  for (const char *p = v; *p;) {
    size_t len = strcspn(p, " ,\t");
    int flow = len == 1 && *p >= '0' && *p <= '6';
    int id = len > 6 && len < 48 && strncmp(p, "flow", 4) == 0 && p[4] >= '0' && p[4] <= '6' &&
             p[5] == '.' && strspn(p + 6, "abcdefghijklmnopqrstuvwxyz_") == len - 6;
    if (len && !flow && !id) {
      free(out);
      return fail(s,
                  "expected flows 0-6 or interaction ids such as flow3.patch_association, got "
                  "'%.*s'",
                  (int)(len > 60 ? 60 : len), p);
    }
    memcpy(w, p, len);
    w += len;
    if (len)
      *w++ = ' ';
    p += len;
    p += strspn(p, " ,\t");
  }
  *w = '\0';
  free(*(char **)s->field);
  *(char **)s->field = out;
  return 0;
}

/* The JWKS file: its line is kept, for `okegw -t` to point at when the
 * file it names is not a usable JWKS. */
static int set_jwks_file(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  if (set_path(k, s, v) < 0)
    return -1;
  s->conf->oauth_jwks_file_line = s->line;
  return 0;
}

/* The JWKS URL as written (a trailing slash may matter to the issuer): keys
 * that decide who may call must come over https, plain http only from this
 * machine (an issuer on 127.0.0.1, or a test). */
static int set_jwks_url(const okegw_conf_key *k, okegw_conf_set *s, const char *v) {
  (void)k;
  static const char *const local[] = {"http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:",
                                      "http://localhost/", "http://[::1]:",     "http://[::1]/"};
  int ok = strncmp(v, "https://", 8) == 0 && v[8];
  for (size_t i = 0; !ok && i < sizeof local / sizeof local[0]; i++)
    ok = strncmp(v, local[i], strlen(local[i])) == 0;
  if (!ok || strchr(v, ' '))
    return fail(s,
                "expected an https:// URL (http:// only to 127.0.0.1, localhost or [::1]), "
                "got '%s'",
                v);
  set_str(s->field, v);
  return 0;
}

static okegw_conf_setter type_setter(enum okegw_conf_type t) {
  switch (t) {
  case OKEGW_CT_STRING: return set_string;
  case OKEGW_CT_PATH: return set_path;
  case OKEGW_CT_INT:
  case OKEGW_CT_MS:
  case OKEGW_CT_S:
  case OKEGW_CT_BYTES:
  case OKEGW_CT_KIB: return set_number;
  case OKEGW_CT_ENUM:
  case OKEGW_CT_CHOICE: return set_values;
  case OKEGW_CT_SCOPES: return set_scopes;
  case OKEGW_CT_HOSTPORT: return set_hostport;
  case OKEGW_CT_URL: return set_url;
  }
  return set_string;
}

#define GW(m)                                                                                      \
  .section = OKEGW_CONF_GATEWAY, .offset = offsetof(okegw_conf, m),                                \
  .size = sizeof(((okegw_conf *)0)->m)
#define CN(m)                                                                                      \
  .section = OKEGW_CONF_CONNECTOR, .offset = offsetof(okegw_conf_connector, m),                    \
  .size = sizeof(((okegw_conf_connector *)0)->m)

/* Order is the README's. `def` is parsed like a value from the file before
 * the file is read; keys whose default depends on other keys have none here
 * (def_doc says what it is) and get it in finish(). */
static const okegw_conf_key keys[] = {
    /* [gateway] */
    {.name = "listen",
     GW(listen_host),
     .type = OKEGW_CT_HOSTPORT,
     .def = "127.0.0.1:8080",
     .help = "`HOST:PORT` to listen on (IPv4 or IPv6 literal). Port `0` lets the OS pick; the "
             "`listening` log line has the port"},
    {.name = "listen_tls",
     GW(listen_tls_host),
     .type = OKEGW_CT_HOSTPORT,
     .def_doc = "(none)",
     .help = "`HOST:PORT` of the HTTPS listener (OKE R1: TLS 1.3), with `tls_cert_file` and "
             "`tls_key_file`; the `listening (TLS)` log line has the port. Plain "
             "`listen` stays for loopback or behind a proxy that terminates TLS"},
    {.name = "tls_cert_file",
     GW(tls_cert_file),
     .type = OKEGW_CT_PATH,
     .def_doc = "(none)",
     .help = "PEM certificate of `listen_tls`, followed by its chain; re-read on SIGHUP (a bad "
             "one keeps the old and says why)"},
    {.name = "tls_key_file",
     GW(tls_key_file),
     .type = OKEGW_CT_PATH,
     .def_doc = "(none)",
     .help = "PEM private key of `tls_cert_file` (unencrypted; readable by okegw only); re-read "
             "on SIGHUP"},
    {.name = "tls_min_version",
     GW(tls_min_version),
     .type = OKEGW_CT_CHOICE,
     .values = tls_version_values,
     .def = "1.3",
     .help = "lowest TLS version `listen_tls` accepts: `1.3` (OKE R1) or, only when set, `1.2`"},
    {.name = "tls_client_ca_file",
     GW(tls_client_ca_file),
     .type = OKEGW_CT_PATH,
     .def_doc = "(none)",
     .help = "PEM CA certificates that sign the client certificates of callers (mTLS); needed "
             "for `tls_client_auth`"},
    {.name = "tls_client_auth",
     GW(tls_client_auth),
     .type = OKEGW_CT_ENUM,
     .values = tls_client_auth_values,
     .def = "off",
     .help = "client certificates on `listen_tls`: `off`, `optional` (one sent must verify) or "
             "`required` (a handshake without one fails); a connector's `client_cert_subject` or "
             "`client_cert_sha256` then names the caller"},
    {.name = "base_path",
     GW(base_path),
     .type = OKEGW_CT_STRING,
     .def = "/ooapi",
     .set = set_base_path,
     .help = "OKE base path the school's systems are configured with; empty for the root"},
    {.name = "store",
     GW(store),
     .type = OKEGW_CT_PATH,
     .set = set_store,
     .min = 1,
     .def = "okegw.db",
     .help = "SQLite file (WAL mode): the correlation of ids to connectors, the outbox and the "
             "audit trail; relative to the config file's folder. Or a PostgreSQL database, "
             "`postgresql://USER@HOST:PORT/DATABASE` (libpq's URI; a password is better in "
             "`~/.pgpass` or `PGPASSFILE` than here): okegw makes and migrates its tables there"},
    {.name = "store_sync",
     GW(store_sync),
     .type = OKEGW_CT_CHOICE,
     .values = sync_values,
     .def = "full",
     .help = "SQLite `synchronous` for the store's commits: `full` (on disk before a push is "
             "acknowledged; survives a power cut) or `normal` (survives a crash of okegw, not of "
             "the machine). Not used with PostgreSQL: there the server's `synchronous_commit` "
             "decides (its default, `on`, is what a durable push needs)"},
    {.name = "store_lease_s",
     GW(store_lease_s),
     .type = OKEGW_CT_S,
     .min = 5,
     .max = 3600,
     .def = "30",
     .help = "PostgreSQL with several instances: how long the instance carrying a resource's "
             "pushes holds it without renewing (it renews every second). When an instance dies, "
             "another takes its resources over after this long. It must exceed every connector's "
             "`timeout_ms` by 10 s: an attempt starts only while the lease surely outlasts it"},
    {.name = "control_socket",
     GW(control_socket),
     .type = OKEGW_CT_PATH,
     .def_doc =
         "the store's path + `.ctl`; `okegw.ctl` in the config file's folder with PostgreSQL",
     .help = "Unix socket (mode 0600) through which `okegw reload -c FILE` asks the running "
             "gateway to reload and hears whether it took the file; needs a restart to move"},
    {.name = "admin_listen",
     GW(admin_listen_host),
     .type = OKEGW_CT_HOSTPORT,
     .def_doc = "none (no admin listener)",
     .help = "`HOST:PORT` of the admin listener, apart from the OKE one: Prometheus `/metrics`, "
             "`/healthz`, `/readyz`, the admin API (`/admin/api/`) and the dashboard (`/admin/`). "
             "On a loopback address by default; any other address needs `admin_token`"},
    {.name = "admin_token",
     GW(admin_token),
     .type = OKEGW_CT_STRING,
     .min = 16,
     .secret = 1,
     .help = "bearer token every request to the admin listener must present (`Authorization: "
             "Bearer ...`; the dashboard asks for it once). Without it the admin listener only "
             "serves on a loopback address"},
    {.name = "outbox_max_open",
     GW(outbox_max_open),
     .type = OKEGW_CT_INT,
     .min = 1,
     .max = 10000000L,
     .def = "100000",
     .help = "undelivered pushes okegw holds at most (in memory only their metadata, under a "
             "kilobyte each); past it a push gets 503 with `Retry-After: 60` and is not stored"},
    {.name = "delivery_retention_s",
     GW(delivery_retention_s),
     .type = OKEGW_CT_S,
     .min = 60,
     .max = 3660L * 86400,
     .def = "2592000",
     .help = "ended deliveries (delivered, failed, dropped) are deleted this long after their last "
             "change (30 days); pending and dead ones never"},
    {.name = "audit_retention_s",
     GW(audit_retention_s),
     .type = OKEGW_CT_S,
     .min = 0,
     .max = 3660L * 86400,
     .def = "34560000",
     .help = "audit rows are deleted this long after they were written (400 days: a school year "
             "plus the months an appeal or an inspection may still ask about it); 0 keeps them "
             "forever. Checked at start and every hour"},
    {.name = "max_header_bytes",
     GW(max_header_bytes),
     .type = OKEGW_CT_BYTES,
     .min = 1024,
     .max = 1L << 20,
     .def = "16384",
     .help = "request line plus headers; more gives 431"},
    {.name = "max_body_bytes",
     GW(max_body_bytes),
     .type = OKEGW_CT_BYTES,
     .min = 1024,
     .max = 1L << 30,
     .def = "1048576",
     .help = "request body, announced or chunked; more gives 413"},
    {.name = "max_document_bytes",
     GW(max_document_bytes),
     .type = OKEGW_CT_BYTES,
     .min = 1024,
     .max = 1L << 32,
     .def = "67108864",
     .help = "largest document (`GET /documents/{id}`) streamed through; a longer one is cut off "
             "(the caller sees an incomplete answer) and logged"},
    {.name = "idle_timeout_ms",
     GW(idle_timeout_ms),
     .type = OKEGW_CT_MS,
     .min = 100,
     .max = 86400000L,
     .def = "30000",
     .help = "a keep-alive connection with no request begun is closed after this long"},
    {.name = "header_timeout_ms",
     GW(header_timeout_ms),
     .type = OKEGW_CT_MS,
     .min = 100,
     .max = 3600000L,
     .def = "10000",
     .help = "a request line and its headers must have arrived this long after their first byte, "
             "however slowly they trickle in; then 408. Also the grace a body gets before "
             "`body_min_rate_bytes` counts"},
    {.name = "send_timeout_ms",
     GW(send_timeout_ms),
     .type = OKEGW_CT_MS,
     .min = 100,
     .max = 3600000L,
     .def = "60000",
     .help = "an answer the caller takes no byte of for this long is abandoned and its connection "
             "closed (a client that stops reading cannot hold a connection and its memory)"},
    {.name = "body_min_rate_bytes",
     GW(body_min_rate_bytes),
     .type = OKEGW_CT_BYTES,
     .min = 1,
     .max = 1L << 30,
     .def = "1024",
     .help = "per second: a request body must arrive at least this fast on average (after the "
             "grace of `header_timeout_ms`); a slower one gets 408"},
    {.name = "request_timeout_ms",
     GW(request_timeout_ms),
     .type = OKEGW_CT_MS,
     .min = 100,
     .max = 3600000L,
     .def = "30000",
     .help = "the longest okegw waits for a connector's answer, whatever its `timeout_ms`; then "
             "504"},
    {.name = "max_connections",
     GW(max_connections),
     .type = OKEGW_CT_INT,
     .min = 1,
     .max = 100000,
     .def = "1024",
     .help = "open client connections; a new one past this takes the place of the connection "
             "that has waited longest on its client (idle, or slowest with its request: that one "
             "gets 503); when every connection is busy with a request, the new one gets 503"},
    {.name = "workers",
     GW(workers),
     .type = OKEGW_CT_INT,
     .min = 0,
     .max = 64,
     .def = "0",
     .help = "event loops serving requests, each a thread with its own listener socket "
             "(SO_REUSEPORT), HTTP client and connector instances (so Lua states); 0 = one per "
             "CPU okegw may run on. The store and the outbox stay one for all loops"},
    {.name = "catalogue_max_pages",
     GW(catalogue_max_pages),
     .type = OKEGW_CT_INT,
     .min = 1,
     .max = 1000,
     .def = "40",
     .help = "pages of 250 fetched per connector for the merged catalogue"},
    {.name = "log_level",
     GW(log_level),
     .type = OKEGW_CT_CHOICE,
     .values = level_values,
     .def = "info",
     .help = "`debug`, `info`, `warn` or `error`"},
    {.name = "log_format",
     GW(log_format),
     .type = OKEGW_CT_CHOICE,
     .values = log_format_values,
     .def = "auto",
     .help = "`json` (one JSON object per line, for journald or a log shipper), `text` (one "
             "readable line per event) or `auto`: text when stderr is a terminal, JSON otherwise"},
    {.name = "scripts_lib",
     GW(scripts_lib),
     .type = OKEGW_CT_PATH,
     .def = "scripts/lib",
     .help = "the folder `require()` in a mapping loads from (relative to the config file's "
             "folder)"},
    {.name = "lua_memory_kb",
     GW(lua_memory_bytes),
     .type = OKEGW_CT_KIB,
     .min = 256,
     .max = 4L << 20,
     .def = "32768",
     .help = "memory quota of each connector's Lua state; a mapping that needs more fails its "
             "request with 502"},
    {.name = "lua_instructions",
     GW(lua_instructions),
     .type = OKEGW_CT_INT,
     .min = 1000,
     .max = 1000000000L,
     .def = "10000000",
     .help = "instruction budget of one mapping call; a loop past it fails its request with 502 "
             "(a `pcall` cannot catch it); a budget above 2000000 is counted from the call's first "
             "millisecond on (a timer starts the count, which spares the count on every "
             "instruction)"},
    {.name = "lua_time_ms",
     GW(lua_time_ms),
     .type = OKEGW_CT_MS,
     .min = 0,
     .max = 600000L,
     .def = "0",
     .help = "wall-clock limit of one mapping call, also inside library functions; 0 = "
             "`lua_instructions` / 10000 ms, at least 1000; past it the request fails with 502"},
    {.name = "contact_email",
     GW(contact_email),
     .type = OKEGW_CT_STRING,
     .def = "ict@school.invalid",
     .help = "contact address served in `GET {base}/`"},
    {.name = "documentation_url",
     GW(documentation_url),
     .type = OKEGW_CT_STRING,
     .def = "https://github.com/okegw/okegw#readme",
     .help = "documentation link served in `GET {base}/`"},
    {.name = "specification_url",
     GW(specification_url),
     .type = OKEGW_CT_STRING,
     .def = "https://raw.githubusercontent.com/open-education-api/specification/v5/v5/source/"
            "spec.yaml",
     .help = "OOAPI specification link served in `GET {base}/`"},
    {.name = "oauth_issuer",
     GW(oauth_issuer),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .help = "OAuth 2.0 for callers: the school's identity provider as it writes itself in its "
             "tokens' `iss` claim (compared exactly). When set, a caller may present a JWT access "
             "token of this issuer instead of its `inbound_token`; needs `oauth_audience` and "
             "`oauth_jwks_file` or `oauth_jwks_url`"},
    {.name = "oauth_audience",
     GW(oauth_audience),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .help = "the value a token's `aud` claim (a string or an array) must hold: the name the "
             "identity provider knows okegw by"},
    {.name = "oauth_jwks_file",
     GW(oauth_jwks_file),
     .type = OKEGW_CT_PATH,
     .min = 1,
     .set = set_jwks_file,
     .help = "the issuer's public keys as a JWKS file, read at start (relative to the config "
             "file's folder); RS256 and ES256 (P-256) keys are used. Not with `oauth_jwks_url`"},
    {.name = "oauth_jwks_url",
     GW(oauth_jwks_url),
     .type = OKEGW_CT_URL,
     .set = set_jwks_url,
     .help = "the issuer's JWKS address (`https://`; `http://` only to this machine), fetched at "
             "start and again when a token names a key okegw has not got, at most once per 30 s. "
             "Not with `oauth_jwks_file`"},
    {.name = "token_endpoint",
     GW(token_endpoint),
     .type = OKEGW_CT_ENUM,
     .values = off_on_values,
     .def = "off",
     .help = "`off`, or `on`: okegw issues access tokens itself at `POST {base_path}/oauth2/token` "
             "(client "
             "credentials; for a school without an identity provider) to the connectors with a "
             "`client_secret_hash`; needs `token_signing_key_file`"},
    {.name = "token_signing_key_file",
     GW(token_signing_key_file),
     .type = OKEGW_CT_PATH,
     .def_doc = "(none)",
     .help = "PEM private key the issued tokens are signed with: RSA of 2048 bits or more "
             "(RS256) or EC P-256 (ES256); unencrypted, readable by okegw only"},
    {.name = "token_lifetime_s",
     GW(token_lifetime_s),
     .type = OKEGW_CT_S,
     .min = 60,
     .max = 86400,
     .def = "900",
     .help = "how long an issued token is valid"},

    /* [connector NAME] */
    {.name = "plugin",
     CN(plugin),
     .type = OKEGW_CT_PATH,
     .set = set_plugin,
     .def_doc = "(required)",
     .help =
         "a built-in plugin (`ooapi`, `sim`, `rest`) or a path to a `.so` (relative to the config "
         "file's folder)"},
    {.name = "role",
     CN(role),
     .type = OKEGW_CT_ENUM,
     .values = role_values,
     .def = "ta",
     .help = "the role of the peer system: `ta` (test supplier), `tpl` (test planning), `dr` "
             "(student information system); decides which interactions it may call and which are "
             "sent to it"},
    {.name = "phase",
     CN(phase),
     .type = OKEGW_CT_ENUM,
     .values = phase_values,
     .def = "off",
     .help = "how far the connector is on its way to going live (a reload changes it without a "
             "restart, and records the change): `off` carries no new work (503 naming it and its "
             "phase, not in the catalogue); `shadow` is invisible to production callers and, with "
             "`mirror_of`, receives a copy of another connector's traffic; `pilot` takes "
             "production zittingen only inside `pilot_organizations` / `pilot_components`; "
             "`live` carries everything. Callers with `acceptance = yes` see `shadow` and `pilot` "
             "as `live`. Zittingen already routed keep flowing in every phase"},
    {.name = "phase_reason",
     CN(phase_reason),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .help = "why the connector is in its phase (e.g. the examencommissie's decision): recorded "
             "with every phase change (`okegw phases`)"},
    {.name = "acceptance",
     CN(acceptance),
     .type = OKEGW_CT_ENUM,
     .values = no_yes_values,
     .def = "no",
     .help = "`no`: a production system; `yes`: its calls are acceptance traffic (the TPL's "
             "or DR's test environment): it sees `shadow` and `pilot` connectors as `live`, and "
             "where okegw picks the one system of a role (flow 1 to the TPL, reads at the DR) "
             "production callers never get an acceptance system, nor it a production one when it "
             "has an acceptance counterpart"},
    {.name = "mirror_of",
     CN(mirror_of),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .help = "in phase `shadow`: the connector (another test supplier) whose requests are copied "
             "to this one, mapped with this one's scripts; only that connector's answer reaches "
             "the caller, the field-level differences between the two answers are recorded, "
             "mirrored pushes are deliveries of their own that never hold back the original's"},
    {.name = "pilot_organizations",
     CN(pilot_organizations),
     .type = OKEGW_CT_STRING,
     .set = set_uuid_list,
     .def_doc = "(any)",
     .help = "in phase `pilot`: organization UUIDs (space or comma separated); a production "
             "zitting whose `organization` is not one of them gets 503 naming the pilot"},
    {.name = "pilot_components",
     CN(pilot_components),
     .type = OKEGW_CT_STRING,
     .set = set_uuid_list,
     .def_doc = "(any)",
     .help = "in phase `pilot`: component (test) UUIDs; production callers see only these in the "
             "catalogue, and a zitting for another component gets 503 naming the pilot"},
    {.name = "accept_interactions",
     CN(accept_interactions),
     .type = OKEGW_CT_STRING,
     .set = set_interactions,
     .def_doc = "by role: ta `0 2 3 4`, tpl `0 1 2 3 4`, dr `1 5`",
     .help = "acceptance criterion: the flows (0-6) or interaction ids "
             "(`flow3.patch_association`) that must have been exercised with this connector, with "
             "a 2xx answer, in the evidence window, before `okegw report` says GO"},
    {.name = "accept_min_exchanges",
     CN(accept_min_exchanges),
     .type = OKEGW_CT_INT,
     .min = 0,
     .max = 100000000,
     .def = "20",
     .help = "acceptance criterion: at least this many exchanges with this connector in the "
             "window; fewer gives INCONCLUSIVE (not enough traffic yet)"},
    {.name = "accept_max_violation_rate",
     CN(accept_max_violation_rate),
     .type = OKEGW_CT_STRING,
     .set = set_rate,
     .def = "1%",
     .help = "acceptance criterion: at most this share of the exchanges may break the OKE profile "
             "(requests refused with 400, answers flagged or blocked); `1%` or `0.01`"},
    {.name = "accept_max_mapping_error_rate",
     CN(accept_max_mapping_error_rate),
     .type = OKEGW_CT_STRING,
     .set = set_rate,
     .def = "0%",
     .help = "acceptance criterion: at most this share of the exchanges may end in a Lua mapping "
             "error"},
    {.name = "accept_max_dead_letters",
     CN(accept_max_dead_letters),
     .type = OKEGW_CT_INT,
     .min = 0,
     .max = 1000000,
     .def = "0",
     .help = "acceptance criterion: at most this many of the connector's deliveries may be dead "
             "(out of time, not delivered) now"},
    {.name = "accept_max_p99_ms",
     CN(accept_max_p99_ms),
     .type = OKEGW_CT_MS,
     .min = 1,
     .max = 3600000,
     .def = "2000",
     .help = "acceptance criterion: the 99th percentile of the exchanges' latency (as okegw "
             "measured it, gateway included) at most this"},
    {.name = "accept_scenarios",
     CN(accept_scenarios),
     .type = OKEGW_CT_ENUM,
     .values = no_yes_values,
     .def = "yes",
     .help = "acceptance criterion: `yes` asks for an `okegw accept` run against this connector "
             "in the window whose every scenario passed (the last run counts); `no` leaves the "
             "runs out of the verdict (they are still reported)"},
    {.name = "accept_max_difference_rate",
     CN(accept_max_difference_rate),
     .type = OKEGW_CT_STRING,
     .set = set_rate,
     .def = "5%",
     .help = "acceptance criterion for a `shadow` connector with `mirror_of`: at most this share "
             "of the mirrored exchanges may answer differently from the live connector"},
    {.name = "accept_window_s",
     CN(accept_window_s),
     .type = OKEGW_CT_S,
     .min = 60,
     .max = 31536000,
     .def = "1209600",
     .help = "the evidence window: `okegw report` weighs the traffic of this many seconds before "
             "now (14 days) unless `--since` says otherwise"},
    {.name = "base_url",
     CN(base_url),
     .type = OKEGW_CT_URL,
     .help = "the peer's OKE base URL (`http://` or `https://`); required by `ooapi`"},
    {.name = "auth",
     CN(auth),
     .type = OKEGW_CT_ENUM,
     .values = auth_values,
     .def = "none",
     .help = "outbound credentials: `none`, `bearer` (sends `Authorization: Bearer <token>`), "
             "`apikey` (sends `<api_key_header>: <api_key>`), `oauth2` (OAuth 2.0 client "
             "credentials: a token from `token_url`, sent as `Authorization: Bearer`)"},
    {.name = "token",
     CN(token),
     .type = OKEGW_CT_STRING,
     .secret = 1,
     .help = "bearer token, required with `auth = bearer`"},
    {.name = "api_key",
     CN(api_key),
     .type = OKEGW_CT_STRING,
     .secret = 1,
     .help = "API key, required with `auth = apikey`; sent in the header `api_key_header`"},
    {.name = "api_key_header",
     CN(api_key_header),
     .type = OKEGW_CT_STRING,
     .set = set_header_name,
     .def = "X-API-Key",
     .help = "the header `api_key` is sent in (letters, digits, `-` and `_`)"},
    {.name = "connect_timeout_ms",
     CN(connect_timeout_ms),
     .type = OKEGW_CT_MS,
     .min = 1,
     .max = 600000,
     .def = "2000",
     .help = "connecting to the peer; never longer than `timeout_ms`"},
    {.name = "timeout_ms",
     CN(timeout_ms),
     .type = OKEGW_CT_MS,
     .min = 1,
     .max = 3600000,
     .def = "10000",
     .help = "the whole exchange with the peer; past it the caller gets 504 (or the connector is "
             "left out of the catalogue)"},
    {.name = "test_system",
     CN(test_system),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .def_doc = "`NAME`",
     .help = "the `code` of the `x-testSystem` entry added to this connector's components"},
    {.name = "scripts",
     CN(scripts),
     .type = OKEGW_CT_PATH,
     .set = set_scripts,
     .def_doc = "`scripts/NAME`",
     .help = "folder of this connector's Lua mappings (see `scripts/README.md`); when not set, a "
             "missing folder means no mappings, when set it must exist"},
    {.name = "callback_token",
     CN(callback_token),
     .type = OKEGW_CT_STRING,
     .min = 16,
     .secret = 1,
     .unique = 1,
     .help = "bearer token a non-OKE supplier presents on `POST /callbacks/NAME/...`; without it "
             "callbacks for this connector are refused"},
    {.name = "inbound_token",
     CN(inbound_token),
     .type = OKEGW_CT_STRING,
     .min = 16,
     .secret = 1,
     .unique = 1,
     .help = "bearer token this system presents when it calls okegw; identifies the caller. Once "
             "any connector has one, a request without a known token gets 401"},
    {.name = "client_cert_subject",
     CN(client_cert_subject),
     .type = OKEGW_CT_STRING,
     .min = 3,
     .unique = 1,
     .help = "subject (RFC 2253, e.g. `CN=tpl.school.nl,O=School`) of the client certificate this "
             "system presents on `listen_tls`: identifies the caller like `inbound_token`"},
    {.name = "client_cert_sha256",
     CN(client_cert_sha256),
     .type = OKEGW_CT_STRING,
     .unique = 1,
     .set = set_sha256,
     .help = "SHA-256 fingerprint of that client certificate (as `openssl x509 -fingerprint "
             "-sha256` prints it); identifies the caller, pinned to one certificate"},
    {.name = "oauth_client_id",
     CN(oauth_client_id),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .unique = 1,
     .help = "the client id this system's JWT access tokens name (claim `client_id`, else `azp`, "
             "else `sub`); identifies the caller like `inbound_token`. Needs `oauth_issuer` or "
             "`token_endpoint`; the token endpoint takes it as the client id (else the "
             "connector's name)"},
    {.name = "client_secret_hash",
     CN(client_secret_hash),
     .type = OKEGW_CT_STRING,
     .min = 8,
     .help = "with `token_endpoint = on`: the hash of the client secret this system authenticates "
             "with at the token endpoint, as `okegw hash-secret` prints it (never the secret "
             "itself)"},
    {.name = "validate_answers",
     CN(validate_answers),
     .type = OKEGW_CT_ENUM,
     .values = check_values,
     .def = "warn",
     .help = "what okegw does with an answer of this system that breaks the OKE profile: `warn` "
             "passes it on and logs a warning naming the first violation, `block` answers 502 "
             "problem+json listing every violation (the catalogue leaves the connector out as "
             "`invalid-response`), `off` does not check. Requests are always checked: a body that "
             "breaks the profile gets 400 listing every violation with its JSON pointer, and "
             "nothing is forwarded"},
    {.name = "delivery_wait_ms",
     CN(delivery_wait_ms),
     .type = OKEGW_CT_MS,
     .min = 0,
     .max = 600000,
     .def = "2000",
     .help = "how long the sender of a push waits for this peer's answer before it gets 202 and a "
             "delivery id (0: never waits)"},
    {.name = "delivery_max_age_s",
     CN(delivery_max_age_s),
     .type = OKEGW_CT_S,
     .min = 1,
     .max = 31L * 86400,
     .def = "86400",
     .help = "a push still failing (retryably) this long after it was stored is dead-lettered"},
    {.name = "delivery_concurrency",
     CN(delivery_concurrency),
     .type = OKEGW_CT_INT,
     .min = 1,
     .max = 1000,
     .def = "8",
     .help = "pushes in flight to this peer at once (different resources; one resource is always "
             "one at a time)"},
    {.name = "retry_first_ms",
     CN(retry_first_ms),
     .type = OKEGW_CT_MS,
     .min = 10,
     .max = 3600000,
     .def = "1000",
     .help = "the first pause between attempts; each pause doubles, with jitter, up to "
             "`retry_max_ms`"},
    {.name = "retry_max_ms",
     CN(retry_max_ms),
     .type = OKEGW_CT_MS,
     .min = 10,
     .max = 86400000L,
     .def = "300000",
     .help = "the longest pause between attempts; not less than `retry_first_ms`"},
    {.name = "keep_bodies_s",
     CN(keep_bodies_s),
     .type = OKEGW_CT_S,
     .min = 0,
     .max = 366L * 86400,
     .def = "0",
     .help = "keep delivered push bodies this long for troubleshooting (`okegw deliveries "
             "show`); 0 drops them once delivered"},
    {.name = "ca_file",
     CN(ca_file),
     .type = OKEGW_CT_PATH,
     .min = 1,
     .def_doc = "the system's",
     .help = "PEM file of the CA certificates that sign the peer's (and its token endpoint's) TLS "
             "certificate, for a supplier with a private CA; relative to the config file's "
             "folder; replaces the system's trust store for this connector"},
    {.name = "client_cert_file",
     CN(client_cert_file),
     .type = OKEGW_CT_PATH,
     .min = 1,
     .help = "PEM client certificate okegw presents to the peer and its token endpoint (mutual "
             "TLS); needs `client_key_file`"},
    {.name = "client_key_file",
     CN(client_key_file),
     .type = OKEGW_CT_PATH,
     .min = 1,
     .help = "PEM private key of `client_cert_file` (unencrypted; keep it readable by okegw "
             "only)"},
    {.name = "tls_min_version",
     CN(tls_min_version),
     .type = OKEGW_CT_ENUM,
     .values = tls_values,
     .def = "1.3",
     .help = "the lowest TLS version accepted from the peer and its token endpoint: `1.3` (OKE "
             "R1) or `1.2` for a peer that cannot do 1.3 yet"},
    {.name = "token_url",
     CN(token_url),
     .type = OKEGW_CT_URL,
     .help = "the OAuth 2.0 token endpoint okegw gets its access token from; required with "
             "`auth = oauth2`"},
    {.name = "client_id",
     CN(client_id),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .help = "okegw's OAuth 2.0 client id at the supplier; required with `auth = oauth2`"},
    {.name = "client_secret_file",
     CN(client_secret_file),
     .type = OKEGW_CT_PATH,
     .min = 1,
     .help = "file holding the client secret (one line; surrounding white space is ignored), "
             "read at start; with `auth = oauth2` this or `client_secret_env` is required. The "
             "secret itself never goes into plugins.conf"},
    {.name = "client_secret_env",
     CN(client_secret_env),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .help = "name of the environment variable holding the client secret, read at start "
             "(instead of `client_secret_file`)"},
    {.name = "oauth_scope",
     CN(oauth_scope),
     .type = OKEGW_CT_STRING,
     .min = 1,
     .def_doc = "by role",
     .help = "the scope okegw asks the token endpoint for, space separated. Defaults: the OKE "
             "scopes of the flows okegw carries to the system: `ta` `nl-test-admin-flow-0 "
             "nl-test-admin-flow-2-3-4`, `tpl` `nl-test-admin-flow-1-5 "
             "nl-test-admin-flow-2-3-4`, `dr` `nl-test-admin-flow-1-5 nl-test-admin-flow-6`"},
    {.name = "token_auth_method",
     CN(token_auth_method),
     .type = OKEGW_CT_ENUM,
     .values = token_auth_values,
     .def = "client_secret_basic",
     .help = "how okegw authenticates at `token_url`: `client_secret_basic` (HTTP Basic), "
             "`client_secret_post` (in the form body) or `private_key_jwt` (a client assertion, "
             "RFC 7523, signed RS256 or ES256 with `client_key_file`: an RSA or P-256 key)"},
    {.name = "scopes",
     CN(scopes),
     .type = OKEGW_CT_SCOPES,
     .def_doc = "by role",
     .help = "the OKE scopes the system may use when it calls okegw, space separated: "
             "`nl-test-admin-flow-0`, `-flow-1-5`, `-flow-2-3-4`, `-flow-6` (the "
             "`nl-test-admin-` prefix may be left out). Defaults: `ta` flow-2-3-4 and flow-6; "
             "`tpl` flow-0, flow-1-5 and flow-2-3-4; `dr` flow-0 and flow-1-5. A call outside "
             "them gets 403"},
    {.name = NULL},
};

const okegw_conf_key *okegw_conf_keys(void) { return keys; }

static const okegw_conf_key *find_key(enum okegw_conf_section sec, const char *name) {
  for (const okegw_conf_key *k = keys; k->name; k++)
    if (k->section == sec && strcmp(k->name, name) == 0)
      return k;
  return NULL;
}

/* Every secret KEY may instead be given as KEY_file = PATH (the file's
 * content, without its final line break) or KEY_env = NAME (an environment
 * variable), so that no secret has to be written in plugins.conf. Returns
 * the secret's row and which form (1 file, 2 env), or NULL. */
static const okegw_conf_key *secret_source(enum okegw_conf_section sec, const char *name,
                                           int *form) {
  size_t n = strlen(name);
  const char *suffix[] = {"_file", "_env"};
  for (int i = 0; i < 2; i++) {
    size_t sn = strlen(suffix[i]);
    if (n <= sn || strcmp(name + n - sn, suffix[i]) != 0 || n - sn >= 64)
      continue;
    char base[64];
    memcpy(base, name, n - sn);
    base[n - sn] = '\0';
    const okegw_conf_key *k = find_key(sec, base);
    if (k && k->secret) {
      *form = i + 1;
      return k;
    }
  }
  return NULL;
}

int okegw_conf_is_host_key(const char *key) {
  int form;
  return find_key(OKEGW_CONF_CONNECTOR, key) != NULL ||
         secret_source(OKEGW_CONF_CONNECTOR, key, &form) != NULL;
}

int okegw_conf_is_secret(const char *key) {
  int form;
  const okegw_conf_key *k = find_key(OKEGW_CONF_CONNECTOR, key);
  return (k && k->secret) || secret_source(OKEGW_CONF_CONNECTOR, key, &form) != NULL;
}

/* The secret behind KEY_file or KEY_env (heap string), or NULL with the
 * problem reported. */
static char *read_secret(parse_state *ps, const char *key, int form, const char *v) {
  if (form == 2) {
    const char *e = getenv(v);
    if (!e || !*e) {
      ERR(ps, "%s: the environment variable '%s' is not set or empty", key, v);
      return NULL;
    }
    return okegw_strdup(e);
  }
  char *path = resolve_path(ps->c, v);
  FILE *f = path ? fopen(path, "rb") : NULL;
  char buf[8193];
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  int too_long = f && n == sizeof buf - 1;
  if (f)
    fclose(f);
  if (!f || too_long) {
    ERR(ps, "%s: cannot read '%s'%s", key, path ? path : v,
        too_long ? " (over 8 KiB: not a secret)" : "");
    free(path);
    return NULL;
  }
  free(path);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  buf[n] = '\0';
  /* a line break inside would end up in a header line */
  char *secret = n && !memchr(buf, '\n', n) && !memchr(buf, '\r', n) ? okegw_strdup(buf) : NULL;
  if (!secret)
    ERR(ps, "%s: '%s' is %s", key, v, n ? "more than one line (a secret is one line)" : "empty");
  memset(buf, 0, sizeof buf);
  return secret;
}

/* KEY_file / KEY_env: sets KEY's row with the secret; 0 when name is not
 * such a key. */
static int apply_secret_source(parse_state *ps, enum okegw_conf_section sec, void *obj,
                               const char *name, const char *v);

/* Sets one key through its row; a refusal becomes "FILE:LINE: KEY: why". */
static void apply(parse_state *ps, const okegw_conf_key *k, void *obj, const char *v) {
  char err[512];
  okegw_conf_set s = {.conf = ps->c,
                      .obj = obj,
                      .field = (char *)obj + k->offset,
                      .line = ps->line,
                      .err = err,
                      .errlen = sizeof err};
  okegw_conf_setter set = k->set ? k->set : type_setter(k->type);
  if (set(k, &s, v) < 0)
    ERR(ps, "%s: %s", k->name, err);
}

/* The literal defaults of one section, through the same setters as the
 * file's values; a row whose default it refuses is a bug, reported as such. */
static void apply_defaults(parse_state *ps, enum okegw_conf_section sec, void *obj) {
  int line = ps->line;
  ps->line = 0;
  for (const okegw_conf_key *k = keys; k->name; k++)
    if (k->section == sec && k->def)
      apply(ps, k, obj, k->def);
  ps->line = line;
}

static int apply_secret_source(parse_state *ps, enum okegw_conf_section sec, void *obj,
                               const char *name, const char *v) {
  int form = 0;
  const okegw_conf_key *row = secret_source(sec, name, &form);
  if (!row)
    return 0;
  char *secret = read_secret(ps, name, form, v);
  if (secret)
    apply(ps, row, obj, secret);
  if (secret)
    memset(secret, 0, strlen(secret));
  free(secret);
  return 1;
}

static void gateway_key(parse_state *ps, const char *k, const char *v) {
  const okegw_conf_key *row = find_key(OKEGW_CONF_GATEWAY, k);
  if (row)
    apply(ps, row, ps->c, v);
  else if (!apply_secret_source(ps, OKEGW_CONF_GATEWAY, ps->c, k, v))
    ERR(ps, "unknown key '%s' in [gateway]", k);
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
  const okegw_conf_key *row = find_key(OKEGW_CONF_CONNECTOR, k);
  if (row)
    apply(ps, row, cc, v);
  else
    apply_secret_source(ps, OKEGW_CONF_CONNECTOR, cc, k, v);
  /* Other keys are the plugin's; they are checked once it is loaded. */
}

/* ---- the reference, printed from the table ------------------------------ */

/* "; accepts 1 – 1000 ms" and the like: what a row takes beyond its type,
 * for the reader; "" when nothing. */
static void range_text(const okegw_conf_key *k, char *buf, size_t n) {
  const char *u = k->unique ? "unique across connectors" : NULL;
  buf[0] = '\0';
  switch (k->type) {
  case OKEGW_CT_INT: snprintf(buf, n, "; accepts %ld – %ld", k->min, k->max); return;
  case OKEGW_CT_MS: snprintf(buf, n, "; accepts %ld – %ld ms", k->min, k->max); return;
  case OKEGW_CT_BYTES: snprintf(buf, n, "; accepts %ld – %ld bytes", k->min, k->max); return;
  case OKEGW_CT_KIB: snprintf(buf, n, "; accepts %ld – %ld KiB", k->min, k->max); return;
  case OKEGW_CT_S:
    if (k->max >= 86400 && k->max % 86400 == 0)
      snprintf(buf, n, "; accepts %ld – %ld s (%ld days)", k->min, k->max, k->max / 86400);
    else
      snprintf(buf, n, "; accepts %ld – %ld s", k->min, k->max);
    return;
  case OKEGW_CT_STRING: {
    size_t len = 0;
    if (k->min > 1)
      len = (size_t)snprintf(buf, n, "; at least %ld characters%s%s", k->min, u ? ", " : "",
                             u ? u : "");
    else if (u)
      len = (size_t)snprintf(buf, n, "; %s", u);
    if (k->secret && len < n)
      snprintf(buf + len, n - len,
               "; a secret: or `%s_file = PATH` (read from that file) or `%s_env = NAME` (from "
               "that environment variable), so it need not be written here",
               k->name, k->name);
    return;
  }
  default:
    if (u)
      snprintf(buf, n, "; %s", u);
    return;
  }
}

/* def_doc without its Markdown backticks, for the plain listing. */
static void put_plain(FILE *out, const char *s) {
  for (; *s; s++)
    if (*s != '`')
      fputc(*s, out);
}

static const char *type_name(const okegw_conf_key *k) {
  switch (k->type) {
  case OKEGW_CT_STRING: return "text";
  case OKEGW_CT_PATH: return "path";
  case OKEGW_CT_INT: return "number";
  case OKEGW_CT_MS: return "milliseconds";
  case OKEGW_CT_S: return "seconds";
  case OKEGW_CT_BYTES: return "bytes";
  case OKEGW_CT_KIB: return "KiB";
  case OKEGW_CT_ENUM:
  case OKEGW_CT_CHOICE: return "one of";
  case OKEGW_CT_SCOPES: return "scopes";
  case OKEGW_CT_HOSTPORT: return "HOST:PORT";
  case OKEGW_CT_URL: return "URL";
  }
  return "?";
}

void okegw_conf_print_keys(FILE *out, int markdown) {
  static const char *const titles[] = {"`[gateway]`", "`[connector NAME]`"};
  for (int sec = OKEGW_CONF_GATEWAY; sec <= OKEGW_CONF_CONNECTOR; sec++) {
    if (markdown)
      fprintf(out, "%s### %s\n\n| key | default | meaning |\n|---|---|---|\n", sec ? "\n" : "",
              titles[sec]);
    else
      fprintf(out, "%s[%s]\n", sec ? "\n" : "", sec ? "connector NAME" : "gateway");
    for (const okegw_conf_key *k = keys; k->name; k++) {
      if ((int)k->section != sec)
        continue;
      char range[512], values[256] = "";
      range_text(k, range, sizeof range);
      if (markdown) {
        fprintf(out, "| `%s`%s | ", k->name, k->secret ? " (secret)" : "");
        if (k->def)
          fprintf(out, "`%s`", k->def);
        else
          fputs(k->def_doc ? k->def_doc : "–", out);
        fprintf(out, " | %s%s |\n", k->help, range);
        continue;
      }
      if (k->values)
        join_values(k->values, values, sizeof values);
      fprintf(out, "  %-22s %s%s%s%s; default ", k->name, type_name(k), values[0] ? " " : "",
              values, range);
      put_plain(out, k->def ? k->def : k->def_doc ? k->def_doc : "none");
      fputs(k->secret ? "; secret\n" : "\n", out);
    }
  }
}

static void section(parse_state *ps, char *name) {
  ps->in_gateway = 0;
  ps->in_bad_section = 1;
  ps->conn = NULL;
  if (strcmp(name, "gateway") == 0) {
    if (ps->gateway_seen)
      ERR(ps, "[gateway] appears twice");
    ps->in_gateway = ps->gateway_seen = 1;
    ps->gateway_line = ps->line;
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
    apply_defaults(ps, OKEGW_CONF_CONNECTOR, cc);
    ps->conn = cc;
    ps->in_bad_section = 0;
    return;
  }
  ERR(ps, "unknown section [%s]: expected [gateway] or [connector NAME]", name);
}

/* Overwrites a secret before its memory is freed. */
static void wipe(char *p, size_t n) {
  volatile char *v = p;
  while (n--)
    *v++ = 0;
}

/* A path key given in the file must name a readable file. */
static void check_readable(parse_state *ps, const okegw_conf_connector *cc, const char *key,
                           const char *path) {
  if (!path || access(path, R_OK) == 0)
    return;
  const okegw_conf_kv *kv = okegw_conf_find(cc, key);
  ps->line = kv ? kv->line : cc->line;
  ERR(ps, "%s: cannot read '%s': %s", key, path, strerror(errno));
}

/* Outbound TLS files and the OAuth 2.0 client: files exist, keys that need
 * each other are there, and the client secret is read (never echoed). */
static void check_tls_oauth(parse_state *ps, okegw_conf_connector *cc) {
  check_readable(ps, cc, "ca_file", cc->ca_file);
  check_readable(ps, cc, "client_cert_file", cc->client_cert_file);
  check_readable(ps, cc, "client_key_file", cc->client_key_file);
  ps->line = cc->line;
  if (cc->client_cert_file && !cc->client_key_file)
    ERR(ps, "[connector %s]: client_cert_file needs client_key_file", cc->name);
  if (cc->client_key_file && !cc->client_cert_file &&
      !(cc->auth == OKEGW_AUTH_OAUTH2 && cc->token_auth_method == OKEGW_TOKEN_AUTH_JWT))
    ERR(ps, "[connector %s]: client_key_file needs client_cert_file", cc->name);
  /* token_auth_method has a default, so it may stand in any section */
  static const char *const oauth_keys[] = {"token_url", "client_id", "client_secret_file",
                                           "client_secret_env", "oauth_scope"};
  if (cc->auth != OKEGW_AUTH_OAUTH2) {
    for (size_t i = 0; i < sizeof oauth_keys / sizeof oauth_keys[0]; i++) {
      const okegw_conf_kv *kv = okegw_conf_find(cc, oauth_keys[i]);
      if (kv) {
        ps->line = kv->line;
        ERR(ps, "[connector %s]: %s is only used with auth = oauth2 (auth is %s)", cc->name,
            oauth_keys[i], auth_values[cc->auth]);
      }
    }
    return;
  }
  if (!cc->oauth_scope) {
    unsigned sc = default_oauth_scopes(cc->role);
    char buf[128] = "";
    for (unsigned bit = 1; bit <= OKEGW_SCOPE_FLOW6; bit <<= 1)
      if (sc & bit)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? " " : "",
                 okegw_scope_name(bit));
    cc->oauth_scope = okegw_strdup(buf);
  }
  if (!cc->token_url)
    ERR(ps, "[connector %s]: auth = oauth2 needs 'token_url' (the supplier's token endpoint)",
        cc->name);
  if (!cc->client_id)
    ERR(ps, "[connector %s]: auth = oauth2 needs 'client_id'", cc->name);
  if (cc->token_auth_method == OKEGW_TOKEN_AUTH_JWT) {
    /* the key signs the assertion (checked once loaded, oauth_client.c) */
    if (!cc->client_key_file)
      ERR(ps,
          "[connector %s]: token_auth_method = private_key_jwt needs 'client_key_file' (the "
          "key that signs the client assertion)",
          cc->name);
    if (cc->client_secret_file || cc->client_secret_env)
      ERR(ps,
          "[connector %s]: a client secret is not used with token_auth_method = "
          "private_key_jwt",
          cc->name);
    return;
  }
  ps->line = cc->line;
  if (cc->client_secret_file && cc->client_secret_env) {
    ERR(ps, "[connector %s]: set client_secret_file or client_secret_env, not both", cc->name);
    return;
  }
  if (!cc->client_secret_file && !cc->client_secret_env) {
    ERR(ps,
        "[connector %s]: auth = oauth2 with %s needs 'client_secret_file' or "
        "'client_secret_env' (the secret itself is never written in plugins.conf)",
        cc->name, token_auth_values[cc->token_auth_method]);
    return;
  }
  const char *key = cc->client_secret_file ? "client_secret_file" : "client_secret_env";
  const okegw_conf_kv *kv = okegw_conf_find(cc, key);
  ps->line = kv ? kv->line : cc->line;
  char *secret = NULL;
  if (cc->client_secret_file) {
    size_t len = 0;
    secret = okegw_read_file(cc->client_secret_file, 4096, &len);
    if (!secret) {
      ERR(ps, "client_secret_file: cannot read '%s': %s", cc->client_secret_file,
          errno ? strerror(errno) : "larger than 4 KiB");
      return;
    }
    if (memchr(secret, '\0', len)) {
      free(secret);
      ERR(ps, "client_secret_file: '%s' is not a text file", cc->client_secret_file);
      return;
    }
  } else {
    const char *v = getenv(cc->client_secret_env);
    if (!v) {
      ERR(ps, "client_secret_env: the environment variable %s is not set", cc->client_secret_env);
      return;
    }
    secret = okegw_strdup(v);
  }
  if (!secret)
    return;
  char *t = trim(secret);
  if (!*t || strpbrk(t, "\r\n")) {
    ERR(ps, "%s: the client secret %s%s is %s", key, cc->client_secret_file ? "in " : "in $",
        cc->client_secret_file ? cc->client_secret_file : cc->client_secret_env,
        *t ? "more than one line" : "empty");
    wipe(secret, strlen(secret));
    free(secret);
    return;
  }
  free(cc->client_secret);
  cc->client_secret = okegw_strdup(t);
  wipe(secret, strlen(secret));
  free(secret);
}

long okegw_conf_lease_min_s(const okegw_conf_connector *cc) {
  return (cc->timeout_ms + OKEGW_LEASE_MARGIN_MS + 999) / 1000;
}

/* Checks that need the whole file: required keys and their combinations. */
static void finish(parse_state *ps) {
  okegw_conf *c = ps->c;
  if (!c->control_socket && is_pg_uri(c->store))
    c->control_socket = resolve_path(c, "okegw.ctl");
  else if (!c->control_socket && c->store)
    c->control_socket = okegw_asprintf("%s.ctl", c->store);
  for (size_t i = 0; i < c->nconnectors; i++) {
    okegw_conf_connector *cc = &c->connectors[i];
    ps->line = cc->line;
    if (!cc->plugin)
      ERR(ps, "[connector %s]: 'plugin' is required", cc->name);
    if (cc->auth == OKEGW_AUTH_BEARER && !cc->token)
      ERR(ps, "[connector %s]: auth = bearer needs 'token'", cc->name);
    if (cc->auth == OKEGW_AUTH_APIKEY && !cc->api_key)
      ERR(ps, "[connector %s]: auth = apikey needs 'api_key'", cc->name);
    /* Defaults that depend on other keys (the table's def_doc names them):
     * scopes by role, test_system and the scripts folder by the name. */
    if (!cc->scopes_set)
      cc->scopes = default_scopes(cc->role);
    if (!cc->test_system)
      cc->test_system = okegw_strdup(cc->name);
    if (!cc->scripts) {
      char *rel = okegw_asprintf("scripts/%s", cc->name);
      cc->scripts = rel ? resolve_path(c, rel) : NULL;
      free(rel);
    }
    if (cc->connect_timeout_ms > cc->timeout_ms)
      cc->connect_timeout_ms = cc->timeout_ms;
    if (is_pg_uri(c->store) && okegw_conf_lease_min_s(cc) > c->store_lease_s)
      ERR(ps,
          "[connector %s]: timeout_ms (%ld) needs store_lease_s of at least %ld with PostgreSQL "
          "(an attempt must end while its resource's lease surely holds)",
          cc->name, cc->timeout_ms, okegw_conf_lease_min_s(cc));
    check_tls_oauth(ps, cc);
    if (cc->retry_first_ms > cc->retry_max_ms)
      ERR(ps, "[connector %s]: retry_first_ms (%ld) is larger than retry_max_ms (%ld)", cc->name,
          cc->retry_first_ms, cc->retry_max_ms);
  }
  /* a mirror copies one test supplier's traffic to another one */
  for (size_t i = 0; i < c->nconnectors; i++) {
    okegw_conf_connector *cc = &c->connectors[i];
    const okegw_conf_kv *kv = okegw_conf_find(cc, "mirror_of");
    const okegw_conf_kv *acc = okegw_conf_find(cc, "acceptance");
    if (acc && cc->acceptance && cc->role == OKEGW_ROLE_TA) {
      ps->line = acc->line;
      ERR(ps,
          "[connector %s]: acceptance = yes marks a calling system's test environment (role tpl "
          "or dr); a test supplier is tried in phase shadow or pilot instead",
          cc->name);
    }
    if (cc->phase == OKEGW_PHASE_PILOT && !cc->pilot_components && !cc->pilot_organizations) {
      const okegw_conf_kv *ph = okegw_conf_find(cc, "phase");
      ps->line = ph ? ph->line : cc->line;
      ERR(ps,
          "[connector %s]: phase = pilot needs pilot_components or pilot_organizations (the "
          "zittingen the pilot takes); without a subset it would be live",
          cc->name);
    }
    if (!kv)
      continue;
    ps->line = kv->line;
    const okegw_conf_connector *other = NULL;
    for (size_t j = 0; j < c->nconnectors; j++)
      if (strcmp(c->connectors[j].name, cc->mirror_of) == 0)
        other = &c->connectors[j];
    if (!other)
      ERR(ps, "[connector %s]: mirror_of names no connector ('%s')", cc->name, cc->mirror_of);
    else if (other == cc)
      ERR(ps, "[connector %s]: mirror_of names the connector itself", cc->name);
    else if (cc->role != OKEGW_ROLE_TA || other->role != OKEGW_ROLE_TA)
      ERR(ps, "[connector %s]: mirror_of copies a test supplier's traffic: both must have role ta",
          cc->name);
    else if (other->mirror_of)
      ERR(ps, "[connector %s]: mirror_of names '%s', which mirrors another connector itself",
          cc->name, other->name);
  }
  /* OAuth 2.0 in: an issuer, whose tokens are meant for okegw, whose keys come
   * from one place, and some system its tokens can name */
  int client_ids = 0;
  for (size_t i = 0; i < c->nconnectors; i++) {
    const okegw_conf_kv *kv = okegw_conf_find(&c->connectors[i], "oauth_client_id");
    client_ids += kv != NULL;
    if (kv && !c->oauth_issuer && !c->token_endpoint) {
      ps->line = kv->line;
      ERR(ps, "[connector %s]: oauth_client_id needs oauth_issuer or token_endpoint in [gateway]",
          c->connectors[i].name);
    }
  }
  ps->line = ps->gateway_line;
  /* the token endpoint: a key to sign with, and hashes where it is on */
  if (c->token_endpoint && !c->token_signing_key_file)
    ERR(ps, "[gateway]: token_endpoint = on needs token_signing_key_file");
  for (size_t i = 0; i < c->nconnectors; i++) {
    const okegw_conf_kv *kv = okegw_conf_find(&c->connectors[i], "client_secret_hash");
    if (!kv)
      continue;
    ps->line = kv->line;
    if (!c->token_endpoint)
      ERR(ps, "[connector %s]: client_secret_hash needs token_endpoint = on in [gateway]",
          c->connectors[i].name);
    else if (strncmp(kv->value, "$scrypt$", 8) != 0)
      ERR(ps,
          "[connector %s]: client_secret_hash is not a hash made by `okegw hash-secret` (it "
          "starts with $scrypt$); never write the secret itself here",
          c->connectors[i].name);
  }
  ps->line = ps->gateway_line;
  if (c->oauth_issuer) {
    if (!c->oauth_audience)
      ERR(ps, "[gateway]: oauth_issuer needs oauth_audience (the `aud` the issuer gives tokens for "
              "okegw)");
    if (!c->oauth_jwks_file && !c->oauth_jwks_url)
      ERR(ps, "[gateway]: oauth_issuer needs the issuer's keys: oauth_jwks_file or "
              "oauth_jwks_url");
    if (!client_ids)
      ERR(ps, "[gateway]: oauth_issuer is set but no connector has oauth_client_id, so no token "
              "could name a caller");
  } else if (c->oauth_audience || c->oauth_jwks_file || c->oauth_jwks_url) {
    ERR(ps, "[gateway]: oauth_audience, oauth_jwks_file and oauth_jwks_url need oauth_issuer");
  }
  if (c->oauth_jwks_file && c->oauth_jwks_url) {
    ps->line = c->oauth_jwks_file_line;
    ERR(ps, "[gateway]: give oauth_jwks_file or oauth_jwks_url, not both");
  }
  /* A token that identifies a system must identify one: with two alike the
   * caller would get whichever connector matched first. The value is a
   * secret, so only the places are named. */
  /* a secret comes from one place: KEY, KEY_file or KEY_env */
  for (size_t i = 0; i < c->nconnectors; i++) {
    const okegw_conf_connector *cc = &c->connectors[i];
    for (const okegw_conf_key *k = keys; k->name; k++) {
      if (k->section != OKEGW_CONF_CONNECTOR || !k->secret)
        continue;
      char f[80], e[80];
      snprintf(f, sizeof f, "%s_file", k->name);
      snprintf(e, sizeof e, "%s_env", k->name);
      const okegw_conf_kv *a = okegw_conf_find(cc, k->name), *b = okegw_conf_find(cc, f),
                          *d = okegw_conf_find(cc, e);
      if ((a != NULL) + (b != NULL) + (d != NULL) > 1) {
        const okegw_conf_kv *second = a && b ? b : d;
        ps->line = second->line;
        ERR(ps, "[connector %s]: %s is given twice (as %s, %s_file or %s_env: choose one)",
            cc->name, k->name, k->name, k->name, k->name);
      }
    }
  }
  /* the admin listener shows and changes everything: off this machine only
   * with its own credential */
  ps->line = c->admin_line;
  if (c->admin_listen_host && !c->admin_token && strncmp(c->admin_listen_host, "127.", 4) != 0 &&
      strcmp(c->admin_listen_host, "::1") != 0 && strcmp(c->admin_listen_host, "[::1]") != 0 &&
      strcmp(c->admin_listen_host, "localhost") != 0)
    ERR(ps,
        "admin_listen = %s:%d is not a loopback address: set admin_token_file (the bearer "
        "token the admin listener asks for) or listen on 127.0.0.1",
        c->admin_listen_host, c->admin_listen_port);
  /* TLS: what the listener needs, and who can be named by certificate */
  ps->line = c->tls_line;
  if (c->listen_tls_host && (!c->tls_cert_file || !c->tls_key_file))
    ERR(ps, "listen_tls needs tls_cert_file and tls_key_file");
  if (c->tls_client_auth && !c->tls_client_ca_file)
    ERR(ps, "tls_client_auth = %s needs tls_client_ca_file (the CAs of client certificates)",
        tls_client_auth_values[c->tls_client_auth]);
  for (size_t i = 0; i < c->nconnectors; i++) {
    const okegw_conf_connector *cc = &c->connectors[i];
    const okegw_conf_kv *kv = okegw_conf_find(cc, "client_cert_subject");
    if (!kv)
      kv = okegw_conf_find(cc, "client_cert_sha256");
    if (kv && (!c->listen_tls_host || !c->tls_client_auth)) {
      ps->line = kv->line;
      ERR(ps,
          "[connector %s]: %s needs listen_tls with tls_client_auth = optional or required (no "
          "client certificate is asked for otherwise)",
          cc->name, kv->key);
    }
  }
  for (const okegw_conf_key *k = keys; k->name; k++) {
    if (k->section != OKEGW_CONF_CONNECTOR || !k->unique)
      continue;
    for (size_t j = 1; j < c->nconnectors; j++) {
      const char *vj = *(char **)((char *)&c->connectors[j] + k->offset);
      for (size_t i = 0; vj && i < j; i++) {
        const char *vi = *(char **)((char *)&c->connectors[i] + k->offset);
        if (!vi || strcmp(vi, vj) != 0)
          continue;
        const okegw_conf_kv *ki = okegw_conf_find(&c->connectors[i], k->name);
        const okegw_conf_kv *kj = okegw_conf_find(&c->connectors[j], k->name);
        ps->line = kj ? kj->line : c->connectors[j].line;
        ERR(ps,
            "%s: [connector %s] has the same value as [connector %s] (line %d); each connector "
            "needs its own",
            k->name, c->connectors[j].name, c->connectors[i].name,
            ki ? ki->line : c->connectors[i].line);
        break;
      }
    }
  }
}

int okegw_conf_parse(const char *name, const char *text, okegw_conf *out, okegw_diag *diag) {
  memset(out, 0, sizeof *out);
  out->path = okegw_strdup(name);
  const char *slash = strrchr(name, '/');
  out->dir = slash ? okegw_strndup(name, (size_t)(slash - name)) : okegw_strdup(".");
  if (slash == name)
    set_str(&out->dir, "/");

  size_t before = diag->n;
  parse_state ps = {.c = out, .d = diag, .file = name};
  ps.in_bad_section = 0;
  apply_defaults(&ps, OKEGW_CONF_GATEWAY, out);
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

int okegw_conf_load_cli(const char *file, okegw_conf *out) {
  okegw_diag diag = {0};
  int rc = okegw_conf_load(file, out, &diag);
  if (rc < 0)
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "%s\n", diag.msgs[i]);
  okegw_diag_free(&diag);
  return rc < 0 ? -1 : 0;
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
  if (rc == 0)
    okegw_sha256_hex(text, len, out->sha256); /* recorded with each phase change */
  free(text);
  return rc;
}

const okegw_conf_kv *okegw_conf_find(const okegw_conf_connector *c, const char *key) {
  for (size_t i = 0; i < c->nkv; i++)
    if (strcmp(c->kv[i].key, key) == 0)
      return &c->kv[i];
  return NULL;
}

const okegw_conf_connector *okegw_conf_section(const okegw_conf *c, const char *name) {
  for (size_t i = 0; i < c->nconnectors; i++)
    if (strcmp(c->connectors[i].name, name) == 0)
      return &c->connectors[i];
  return NULL;
}

int okegw_conf_listed(const char *list, const char *id) {
  if (!list)
    return 1;
  char probe[48];
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n + 3 > sizeof probe)
    return 0;
  probe[0] = ' ';
  for (size_t i = 0; i < n; i++)
    probe[i + 1] = (char)((id[i] >= 'A' && id[i] <= 'F') ? id[i] - 'A' + 'a' : id[i]);
  probe[n + 1] = ' ';
  probe[n + 2] = '\0';
  return strstr(list, probe) != NULL;
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
    free(cc->client_cert_subject);
    free(cc->client_cert_sha256);
    free(cc->oauth_client_id);
    free(cc->client_secret_hash);
    free(cc->phase_reason);
    free(cc->mirror_of);
    free(cc->pilot_organizations);
    free(cc->pilot_components);
    free(cc->accept_interactions);
    free(cc->api_key);
    free(cc->api_key_header);
    free(cc->test_system);
    free(cc->scripts);
    free(cc->ca_file);
    free(cc->client_cert_file);
    free(cc->client_key_file);
    free(cc->token_url);
    free(cc->client_id);
    free(cc->client_secret_file);
    free(cc->client_secret_env);
    free(cc->oauth_scope);
    if (cc->client_secret)
      wipe(cc->client_secret, strlen(cc->client_secret));
    free(cc->client_secret);
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
  free(c->listen_tls_host);
  free(c->token_signing_key_file);
  free(c->tls_cert_file);
  free(c->tls_key_file);
  free(c->tls_min_version);
  free(c->tls_client_ca_file);
  free(c->base_path);
  free(c->store);
  free(c->control_socket);
  free(c->admin_listen_host);
  free(c->admin_token);
  free(c->store_sync);
  free(c->log_level);
  free(c->log_format);
  free(c->scripts_lib);
  free(c->contact_email);
  free(c->documentation_url);
  free(c->specification_url);
  free(c->oauth_issuer);
  free(c->oauth_audience);
  free(c->oauth_jwks_file);
  free(c->oauth_jwks_url);
  memset(c, 0, sizeof *c);
}
