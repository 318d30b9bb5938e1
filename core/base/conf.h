/* plugins.conf: an INI file with one [gateway] section and one
 * [connector NAME] section per peer system. Parsing is pure (no I/O besides
 * reading the file) so `okegw -t` and the unit tests share it. */
#ifndef OKEGW_CONF_H
#define OKEGW_CONF_H

#include <stddef.h>
#include <stdio.h>

/* With PostgreSQL an attempt starts only while its resource's lease holds
 * for the connector's timeout_ms plus OKEGW_ATTEMPT_SLACK_MS (a token fetch,
 * the mappings); store_lease_s must exceed every timeout_ms by
 * OKEGW_LEASE_MARGIN_MS, which leaves the renewals (each second) a few
 * seconds' room. */
#define OKEGW_LEASE_MARGIN_MS 10000L
#define OKEGW_ATTEMPT_SLACK_MS 5000L

enum okegw_role { OKEGW_ROLE_TA = 0, OKEGW_ROLE_TPL, OKEGW_ROLE_DR };
/* How far a connector is on its way to going live (DESIGN.md §8): what
 * production callers see of it grows from off to live; callers with
 * acceptance = yes see shadow and pilot connectors as live. */
enum okegw_phase { OKEGW_PHASE_OFF = 0, OKEGW_PHASE_SHADOW, OKEGW_PHASE_PILOT, OKEGW_PHASE_LIVE };
enum okegw_auth { OKEGW_AUTH_NONE = 0, OKEGW_AUTH_BEARER, OKEGW_AUTH_APIKEY, OKEGW_AUTH_OAUTH2 };
/* The lowest TLS version okegw accepts from a peer: 1.3 unless set (R1). */
enum okegw_tls_min { OKEGW_TLS_1_3 = 0, OKEGW_TLS_1_2 };
/* How okegw proves itself to an OAuth 2.0 token endpoint (RFC 6749 2.3,
 * RFC 7523). */
enum okegw_token_auth {
  OKEGW_TOKEN_AUTH_BASIC = 0, /* client_secret_basic */
  OKEGW_TOKEN_AUTH_POST,      /* client_secret_post */
  OKEGW_TOKEN_AUTH_JWT        /* private_key_jwt */
};
enum okegw_check { OKEGW_CHECK_WARN = 0, OKEGW_CHECK_BLOCK, OKEGW_CHECK_OFF };

/* The OKE flow scopes (digest R2): what a caller may do. */
enum {
  OKEGW_SCOPE_FLOW0 = 1,   /* nl-test-admin-flow-0 */
  OKEGW_SCOPE_FLOW15 = 2,  /* nl-test-admin-flow-1-5 */
  OKEGW_SCOPE_FLOW234 = 4, /* nl-test-admin-flow-2-3-4 */
  OKEGW_SCOPE_FLOW6 = 8    /* nl-test-admin-flow-6 */
};
/* "nl-test-admin-flow-2-3-4" for OKEGW_SCOPE_FLOW234. */
const char *okegw_scope_name(unsigned scope);

/* One key = value line as written, kept so that plugins can look up their own
 * keys and errors can point at the line. */

typedef struct okegw_conf_kv {
  char *key;
  char *value;
  int line;
} okegw_conf_kv;

typedef struct okegw_conf_connector {
  char *name;
  int line;     /* line of the [connector NAME] header */
  char *plugin; /* built-in name or resolved path to a .so */
  int plugin_line;
  enum okegw_role role;
  enum okegw_phase phase;
  char *phase_reason; /* why the phase is what it is (recorded with each change), NULL = none */
  int acceptance;     /* 1: its calls are acceptance traffic (sees shadow and pilot as live) */
  char *mirror_of;    /* shadow: the connector whose traffic is copied to this one, NULL = none */
  /* pilot: the zittingen production callers may plan here, as " uuid uuid "
   * (lower case, space around each); NULL = no limit of that kind */
  char *pilot_organizations;
  char *pilot_components;
  /* acceptance criteria: what `okegw report` weighs for its verdict
   * (report/verdict.c). accept_interactions is " 0 2 flow3.patch_association "
   * (flows or interaction ids, space around each), NULL = the role's default */
  char *accept_interactions;
  long accept_min_exchanges;
  double accept_max_violation_rate; /* fractions, 0..1 */
  double accept_max_mapping_error_rate;
  double accept_max_difference_rate;
  long accept_max_dead_letters;
  long accept_max_p99_ms;
  int accept_scenarios; /* 1: the last acceptance run must have passed */
  long accept_window_s;
  char *base_url; /* NULL if unset; no trailing slash */
  enum okegw_auth auth;
  char *token;          /* bearer token (auth = bearer) */
  char *api_key_header; /* default "X-API-Key" */
  char *api_key;
  char *test_system;        /* name used in otherCodes x-testSystem; default = name */
  char *callback_token;     /* bearer token the peer presents on /callbacks/NAME/...; NULL = none */
  char *inbound_token;      /* bearer token this system presents when it calls okegw; NULL = none */
  char *oauth_client_id;    /* the client id its JWT access tokens name (auth/jwt.h); NULL = none */
  char *client_secret_hash; /* token endpoint: the scrypt hash of its client secret */
  char *client_cert_subject; /* its client certificate's subject (RFC 2253), NULL = none */
  char *client_cert_sha256;  /* or the certificate's SHA-256, lower-case hex without colons */
  unsigned scopes;           /* OKEGW_SCOPE_* this system may use when it calls okegw */
  int scopes_set;            /* scopes given in the file (else the role's defaults) */
  enum okegw_check validate_answers; /* what to do with an answer that breaks the profile */
  long connect_timeout_ms;
  long timeout_ms;
  /* the outbox (pushes): how long a sender waits for the peer's answer
   * before it gets 202; the age after which retrying stops (dead letter);
   * attempts in flight at once; the first and the longest pause between
   * attempts; how long a delivered body is kept (0: dropped at once) */
  long delivery_wait_ms;
  long delivery_max_age_s;
  long delivery_concurrency;
  long retry_first_ms;
  long retry_max_ms;
  long keep_bodies_s;
  /* outbound TLS: extra trust anchors (NULL: the system's), a client
   * certificate and its key (mutual TLS), the lowest version accepted */
  char *ca_file;
  char *client_cert_file;
  char *client_key_file;
  enum okegw_tls_min tls_min_version;
  /* auth = oauth2: client credentials at token_url; the secret is read from
   * client_secret_file or client_secret_env at load time into
   * client_secret, which is never logged nor shown to plugins */
  char *token_url;
  char *client_id;
  char *client_secret_file;
  char *client_secret_env;
  char *oauth_scope; /* space separated; by role when not in the file */
  enum okegw_token_auth token_auth_method;
  char *client_secret;
  char *scripts;        /* Lua mapping folder, resolved */
  int scripts_explicit; /* set in the file: the folder must exist */
  /* Every key of the section, host keys and plugin keys alike. Plugin keys
   * are checked against the plugin's declared list after it is loaded. */
  okegw_conf_kv *kv;
  size_t nkv;
} okegw_conf_connector;

typedef struct okegw_conf {
  char *path;      /* the file this was read from */
  char sha256[65]; /* of the file's bytes, "" when parsed from a string */
  char *dir;       /* its directory, for resolving relative paths */
  char *listen_host;
  int listen_port; /* right after listen_host (set_hostport writes both) */
  /* TLS listener (OKE R1): NULL host = none */
  char *listen_tls_host;
  int listen_tls_port;
  char *tls_cert_file;
  char *tls_key_file;
  char *tls_min_version;    /* "1.3" or "1.2" */
  char *tls_client_ca_file; /* CAs of client certificates */
  int tls_client_auth;      /* enum okegw_tls_client_auth: off, optional, required */
  int tls_line;             /* where listen_tls was set (diagnostics), 0 = not */
  char *base_path;          /* "" or "/ooapi" style: leading slash, no trailing one */
  char *store;              /* SQLite file path, resolved against dir */
  char *store_sync;         /* SQLite synchronous: "full" or "normal" */
  int store_lease_s;        /* PostgreSQL: a resource's lease (store.h: leases) */
  char *control_socket;     /* okegw reload's Unix socket (admin/control.h) */
  /* the admin listener (ops/admin_server.h): /metrics, /healthz, /readyz,
   * the admin API and the dashboard. NULL host = none */
  char *admin_listen_host;
  int admin_listen_port;
  int admin_line;            /* where admin_listen was set (diagnostics) */
  char *admin_token;         /* bearer token it asks for; NULL = none (loopback only) */
  long delivery_retention_s; /* ended deliveries are forgotten after this */
  long audit_retention_s;    /* audit rows older than this are deleted; 0 = kept forever */
  long outbox_max_open;      /* undelivered pushes held at most; more get 503 */
  size_t max_header_bytes;
  size_t max_body_bytes;
  size_t max_document_bytes;
  long idle_timeout_ms;
  long header_timeout_ms;     /* first byte of a request to the end of its headers */
  size_t body_min_rate_bytes; /* per second, after a grace of header_timeout_ms */
  long send_timeout_ms;       /* an answer not taken at all for this long: closed */
  long request_timeout_ms;
  int max_connections;
  int workers; /* event loops serving requests; 0 = one per CPU (okegw_workers_count) */
  int catalogue_max_pages;
  char *log_level;
  char *log_format;  /* "auto" (text on a terminal, else JSON), "json" or "text" */
  char *scripts_lib; /* folder require() loads from */
  size_t lua_memory_bytes;
  long lua_instructions;
  long lua_time_ms; /* wall-clock limit of one mapping call; 0 = from lua_instructions */
  char *contact_email;
  char *documentation_url;
  char *specification_url;
  /* OAuth 2.0 in (auth/jwt.h, auth/jwks.h): callers may present JWT access
   * tokens of this issuer, for this audience, checked with the keys of the
   * file or of the URL (exactly one of the two) */
  char *oauth_issuer;
  char *oauth_audience;
  char *oauth_jwks_file; /* resolved against dir */
  int oauth_jwks_file_line;
  char *oauth_jwks_url;
  /* okegw as the token issuer (pipeline/token.h): POST {base}/oauth2/token */
  int token_endpoint; /* 0 off, 1 on */
  char *token_signing_key_file;
  long token_lifetime_s;
  okegw_conf_connector *connectors;
  size_t nconnectors;
} okegw_conf;

/* Collected diagnostics, each "FILE:LINE: message". */
typedef struct okegw_diag {
  char **msgs;
  size_t n;
} okegw_diag;

void okegw_diag_add(okegw_diag *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a message that already names its place (e.g. a Lua error). */
void okegw_diag_add_msg(okegw_diag *d, const char *msg);
void okegw_diag_free(okegw_diag *d);

/* Reads and validates FILE. Returns 0 and fills *out when there are no
 * errors; otherwise returns -1, fills diag and leaves *out empty. */
int okegw_conf_load(const char *file, okegw_conf *out, okegw_diag *diag);
/* okegw_conf_load for a command: every problem printed to stderr as
 * FILE:LINE: message. 0, or -1 (out is then not to be freed). */
int okegw_conf_load_cli(const char *file, okegw_conf *out);
/* Same, from a string (for tests); `name` is used in diagnostics. */
int okegw_conf_parse(const char *name, const char *text, okegw_conf *out, okegw_diag *diag);
void okegw_conf_free(okegw_conf *c);

/* The section of connector NAME, or NULL. */
const okegw_conf_connector *okegw_conf_section(const okegw_conf *c, const char *name);
/* The store_lease_s a connector needs with PostgreSQL: its timeout_ms plus
 * OKEGW_LEASE_MARGIN_MS, in whole seconds. */
long okegw_conf_lease_min_s(const okegw_conf_connector *cc);
/* The value of KEY in a connector section, or NULL. */
const char *okegw_conf_get(const okegw_conf_connector *c, const char *key);
const okegw_conf_kv *okegw_conf_find(const okegw_conf_connector *c, const char *key);
/* The key table: one row per host key, nginx ngx_command_t style. Parsing,
 * range checks, the defaults and `okegw config-keys` (the README reference)
 * all read it, so a key is added, checked and documented in one place. */
enum okegw_conf_section { OKEGW_CONF_GATEWAY = 0, OKEGW_CONF_CONNECTOR };
enum okegw_conf_type {
  OKEGW_CT_STRING,   /* text; min = least length (secret values are never echoed) */
  OKEGW_CT_PATH,     /* resolved against the config file's folder */
  OKEGW_CT_INT,      /* whole number from min to max; int or long field */
  OKEGW_CT_MS,       /* milliseconds, min to max */
  OKEGW_CT_S,        /* seconds, min to max */
  OKEGW_CT_BYTES,    /* bytes, min to max; size_t field */
  OKEGW_CT_KIB,      /* KiB in the file, bytes in the size_t field */
  OKEGW_CT_ENUM,     /* one of values; the field (an enum) gets the index */
  OKEGW_CT_CHOICE,   /* one of values; the field (char *) keeps the text */
  OKEGW_CT_SCOPES,   /* OKE scope names, space or comma separated */
  OKEGW_CT_HOSTPORT, /* HOST:PORT */
  OKEGW_CT_URL       /* http:// or https:// URL */
};

struct okegw_conf_key;
/* What a setter works on: FIELD is OBJ (the okegw_conf or the
 * okegw_conf_connector) plus the row's offset. On failure a setter writes
 * the reason, without the key's name, to ERR and returns -1. */
typedef struct okegw_conf_set {
  okegw_conf *conf;
  void *obj;
  void *field;
  int line;
  char *err;
  size_t errlen;
} okegw_conf_set;
typedef int (*okegw_conf_setter)(const struct okegw_conf_key *k, okegw_conf_set *s, const char *v);

typedef struct okegw_conf_key {
  const char *name;
  enum okegw_conf_section section;
  enum okegw_conf_type type;
  long min, max;             /* numbers: range; strings: least length */
  const char *const *values; /* ENUM, CHOICE: NULL-terminated */
  const char *def;           /* default as written in the file, set through the setter */
  const char *def_doc;       /* README text when there is no literal default */
  int secret;                /* a credential: never shown to plugins, scripts or logs */
  int unique;                /* no two connectors may share a value (it identifies one) */
  const char *help;          /* one line, Markdown */
  size_t offset, size;       /* the field it sets */
  okegw_conf_setter set;     /* NULL: the type's own */
} okegw_conf_key;

/* The table, ended by a row with name NULL. */
const okegw_conf_key *okegw_conf_keys(void);
/* Prints the reference: Markdown tables (the README's) or plain lines. */
void okegw_conf_print_keys(FILE *out, int markdown);

/* 1 when KEY is one the host itself understands in a connector section. */
int okegw_conf_is_host_key(const char *key);
/* 1 for keys holding credentials: never shown to plugins' config lookups,
 * scripts or logs. */
int okegw_conf_is_secret(const char *key);

const char *okegw_role_name(enum okegw_role r);
const char *okegw_phase_name(enum okegw_phase p);
/* 1 when the UUID id is in a pilot list (" uuid uuid ", lower case) or the
 * list is NULL (no limit). */
int okegw_conf_listed(const char *list, const char *id);

#endif
