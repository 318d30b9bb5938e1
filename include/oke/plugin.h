/*
 * okegw connector plugin SDK, ABI 1.2.
 *
 * A connector plugin is a shared object built against include/oke/ alone. It
 * exports one symbol, OKE_PLUGIN_ENTRY_SYMBOL ("oke_plugin_entry"), a function
 * that returns a pointer to a static oke_plugin descriptor (fill its head with
 * OKE_PLUGIN_INIT). The host checks the descriptor's ABI major and struct
 * size before it touches anything else.
 *
 * Versions, and what a plugin may use:
 *   - Same major = binary compatible. A host refuses a plugin of another
 *     major, with a message naming both versions.
 *   - A minor version only adds members, taken from the reserved slots at the
 *     end of oke_host / oke_plugin / oke_http_response; sizes never change, so
 *     struct_size says nothing about the minor. The minor is the test:
 *     before it uses a member added in 1.N, a plugin checks
 *     host->abi_minor >= N, or simply OKE_HOST_HAS(host, member, N).
 *   - Every member a host does not have is NULL (a host fills the slots it
 *     knows and leaves the rest zero). Likewise the host reads a descriptor
 *     member added in 1.N only from a plugin whose abi_minor >= N.
 *   - OKE_ABI_HISTORY below lists what each minor added.
 *
 * Threading: every callback runs on the gateway's event-loop thread, and every
 * host service must be called from that thread. A callback must never block
 * (no disk, no DNS, no synchronous network I/O): use host->http_request and
 * host->timer_start.
 *
 * Memory: strings and buffers the host passes in are valid only for the
 * duration of the callback unless stated otherwise; copy what you keep.
 * Buffers the plugin passes to the host are copied by the host before the
 * call returns.
 *
 * Life of a connector: init, then deliver (any number, concurrently) and
 * health (periodically); when the gateway stops, it takes no new exchanges,
 * waits until every exchange is answered and every host HTTP request of the
 * connector has ended, stops the connector's timers, and only then calls
 * fini.
 */
#ifndef OKE_PLUGIN_H
#define OKE_PLUGIN_H

#include <oke/interactions.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OKE_ABI_MAJOR 1
#define OKE_ABI_MINOR 2
/* OKE_ABI_HISTORY
 *   1.0  first release.
 *   1.1  interactions 11-32 (flows 1, 3, 4, 5, 6 and documents); a 1.0
 *        plugin answers them with OKE_EUNSUP, so 1.0 plugins keep working.
 *        oke_host: http_stream, respond_begin, respond_write, respond_end,
 *        respond_header. oke_http_response: retry_after.
 *   1.2  oke_host: json_first, json_next, json_key (walking an object's
 *        members), json_new_bool, json_new_null, query_get, timer_start,
 *        timer_stop. oke_plugin: health_interval_ms. The host now calls
 *        health periodically and fini only after in-flight work ended.
 *        Header only: oke_strerror, OKE_HOST_HAS, OKE_PLUGIN_INIT,
 *        <oke/interactions.h> and oke_interaction_name/method/path. */

/* Whether host h has `member`, which ABI 1.`minor` added: the host speaks
 * that minor (or newer) and filled the member in. */
#define OKE_HOST_HAS(h, member, minor)                                                             \
  ((h)->abi_major == OKE_ABI_MAJOR && (h)->abi_minor >= (minor) && (h)->member != NULL)

/* The exported entry point of a dynamically loaded plugin. */
#define OKE_PLUGIN_ENTRY_SYMBOL "oke_plugin_entry"

/* Plugins compiled into the gateway itself define OKE_PLUGIN_BUILTIN_NAME so
 * that several of them can live in one binary; a .so uses the plain name. */
#ifdef OKE_PLUGIN_BUILTIN_NAME
#define OKE_PLUGIN_CAT_(a, b) a##b
#define OKE_PLUGIN_CAT(a, b) OKE_PLUGIN_CAT_(a, b)
#define OKE_PLUGIN_ENTRY OKE_PLUGIN_CAT(oke_plugin_entry_, OKE_PLUGIN_BUILTIN_NAME)
#else
#define OKE_PLUGIN_ENTRY oke_plugin_entry
#endif

#if defined(__GNUC__)
#define OKE_EXPORT __attribute__((visibility("default")))
#define OKE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define OKE_EXPORT
#define OKE_PRINTF(f, a)
#endif

/* Error codes: 0 is success, failures are negative. */
enum {
  OKE_OK = 0,
  OKE_EINVAL = -1, /* bad argument */
  OKE_ENOMEM = -2, /* out of memory */
  OKE_ESTATE = -3, /* call not valid in the current state */
  OKE_EUNSUP = -4, /* interaction or feature not supported */
  OKE_EIO = -5     /* transport failure */
};

/* A short text for an OKE_E* code, for log lines (static, never NULL). */
static inline const char *oke_strerror(int code) {
  switch (code) {
  case OKE_OK: return "success";
  case OKE_EINVAL: return "invalid argument";
  case OKE_ENOMEM: return "out of memory";
  case OKE_ESTATE: return "not valid in the current state";
  case OKE_EUNSUP: return "not supported";
  case OKE_EIO: return "transport failure";
  default: return "unknown error";
  }
}

enum oke_log_level { OKE_LOG_DEBUG = 0, OKE_LOG_INFO, OKE_LOG_WARN, OKE_LOG_ERROR };

/* The OKE interactions a connector may be asked to carry (the list, with
 * ids, methods and paths, is in <oke/interactions.h>). Numbers are part of
 * the ABI: new ones are only appended. */
#define OKE_I_ENUM_(sym, num, id, method, path) OKE_I_##sym = num,
enum oke_interaction { OKE_I_UNKNOWN = 0, OKE_INTERACTIONS(OKE_I_ENUM_) };
#undef OKE_I_ENUM_

/* "flow2.put_offering" for OKE_I_FLOW2_PUT_OFFERING (the name of its Lua
 * mapping file, and of its route.<id> key in the rest plugin); NULL for a
 * number the list does not hold. */
static inline const char *oke_interaction_name(int interaction) {
#define OKE_I_NAME_(sym, num, id, method, path)                                                    \
  case num: return id;
  switch (interaction) { OKE_INTERACTIONS(OKE_I_NAME_) default : return NULL; }
#undef OKE_I_NAME_
}

/* The OKE request of an interaction: "PUT" and "/offerings/{id}"; NULL for a
 * number the list does not hold. */
static inline const char *oke_interaction_method(int interaction) {
#define OKE_I_METHOD_(sym, num, id, method, path)                                                  \
  case num: return method;
  switch (interaction) { OKE_INTERACTIONS(OKE_I_METHOD_) default : return NULL; }
#undef OKE_I_METHOD_
}

static inline const char *oke_interaction_path(int interaction) {
#define OKE_I_PATH_(sym, num, id, method, path)                                                    \
  case num: return path;
  switch (interaction) { OKE_INTERACTIONS(OKE_I_PATH_) default : return NULL; }
#undef OKE_I_PATH_
}

typedef struct oke_conn oke_conn;         /* a connector instance (host-owned) */
typedef struct oke_exchange oke_exchange; /* one request handed to a plugin */
typedef struct oke_json oke_json;         /* a JSON value (host-owned tree) */

/* What the host asks a connector to carry. All pointers are host-owned and
 * stay valid until the plugin calls host->respond() for this exchange. */
typedef struct oke_request {
  int interaction;    /* enum oke_interaction */
  const char *method; /* "GET", "PUT", "PATCH" */
  const char *path;   /* OKE path below the base, e.g. "/offerings/<id>" */
  const char *query;  /* raw query string without '?', "" if none */
  const char *id;     /* the path id, "" if none */
  const char *body;   /* request body, NULL if none */
  size_t body_len;
  const char *content_type; /* of body, NULL if none */
  const char *request_id;   /* for log correlation */
  void *reserved[8];
} oke_request;

/* An outbound HTTP request (host->http_request). The URL must be absolute. */
typedef struct oke_http_request {
  const char *method;
  const char *url;
  const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
  const char *body;           /* may be NULL */
  size_t body_len;
  long connect_timeout_ms; /* 0 = the connector's configured value */
  long timeout_ms;         /* 0 = the connector's configured value */
  void *reserved[8];
} oke_http_request;

/* The outcome of an outbound HTTP request. status is the HTTP status, or 0
 * when the transport failed, in which case error says why. Valid only during
 * the callback. */
typedef struct oke_http_response {
  int status;
  const char *content_type; /* may be NULL */
  const char *body;         /* may be NULL when body_len is 0 */
  size_t body_len;
  const char *error; /* NULL unless status == 0 */
  int timed_out;     /* 1 when the failure was a timeout */
  double total_ms;
  const char *retry_after; /* ABI 1.1: the peer's Retry-After header, or NULL */
  void *reserved[7];
} oke_http_response;

typedef void (*oke_http_cb)(void *ud, const oke_http_response *res);

/* A timer's callback (ABI 1.2, host->timer_start). */
typedef void (*oke_timer_cb)(void *ud);

/* Streaming outbound HTTP (ABI 1.1, host->http_stream): on_head runs once,
 * when the peer's status and content type are known; on_data for each piece
 * of the answer body as it arrives (data valid only during the call; return
 * 0 to go on, non-zero to abort the transfer). The final oke_http_cb then
 * runs as for http_request, with body NULL. */
typedef void (*oke_http_head_cb)(void *ud, int status, const char *content_type);
typedef int (*oke_http_data_cb)(void *ud, const char *data, size_t len);

enum oke_json_type {
  OKE_JSON_INVALID = 0,
  OKE_JSON_NULL,
  OKE_JSON_FALSE,
  OKE_JSON_TRUE,
  OKE_JSON_NUMBER,
  OKE_JSON_STRING,
  OKE_JSON_ARRAY,
  OKE_JSON_OBJECT
};

/* Services the host offers a plugin. Passed to init() and valid until fini()
 * returns. */
typedef struct oke_host {
  uint32_t abi_major;
  uint32_t abi_minor;
  size_t struct_size; /* sizeof(oke_host) in the host */

  /* Logging: one JSON line tagged with the connector's name. */
  void (*log)(oke_conn *c, int level, const char *fmt, ...) OKE_PRINTF(3, 4);

  /* Configuration: a value from the connector's section (host keys such as
   * "base_url" and the plugin's own declared keys), or NULL when unset. The
   * string lives as long as the connector. */
  const char *(*config)(oke_conn *c, const char *key);
  /* The connector's instance name as written in plugins.conf. */
  const char *(*name)(oke_conn *c);

  /* Asynchronous outbound HTTP on the gateway's loop. cb runs exactly once,
   * later, on the loop thread (never from within this call). Returns 0 or a
   * negative OKE_E* code, in which case cb will not run. The connector's
   * outbound credentials are NOT added implicitly: use auth_headers (with
   * auth = oauth2 it has none: the host adds the current access token to
   * every request itself, and replaces an Authorization line of the
   * plugin's). */
  int (*http_request)(oke_conn *c, const oke_http_request *req, oke_http_cb cb, void *ud);
  /* The "Name: value" header lines carrying the connector's outbound
   * credentials (bearer token or API key), NULL-terminated; may be empty. */
  const char *const *(*auth_headers)(oke_conn *c);

  /* Finish an exchange: status, optional content type and body (copied).
   * After this call the exchange and its request are gone. Must be called
   * exactly once per deliver() that returned OKE_OK. */
  int (*respond)(oke_exchange *x, int status, const char *content_type, const char *body,
                 size_t body_len);
  /* Finish an exchange with an application/problem+json answer. */
  int (*respond_problem)(oke_exchange *x, int status, const char *title, const char *detail);

  /* JSON helpers (the host's parser), so a plugin needs no JSON library.
   * Trees from json_parse / json_new_* are owned by the caller and freed with
   * json_free; a value obtained from json_get/json_at belongs to its parent.
   * json_print returns a string to release with host->free. */
  oke_json *(*json_parse)(const char *text, size_t len);
  char *(*json_print)(const oke_json *j);
  void (*json_free)(oke_json *j);
  int (*json_type)(const oke_json *j);
  oke_json *(*json_get)(const oke_json *obj, const char *key);
  oke_json *(*json_at)(const oke_json *arr, size_t index);
  size_t (*json_size)(const oke_json *arr);
  const char *(*json_string)(const oke_json *j); /* NULL if not a string */
  double (*json_number)(const oke_json *j);
  oke_json *(*json_new_object)(void);
  oke_json *(*json_new_array)(void);
  oke_json *(*json_new_string)(const char *s);
  oke_json *(*json_new_number)(double n);
  oke_json *(*json_duplicate)(const oke_json *j);
  /* Takes ownership of item, also on failure. Replaces an existing key. */
  int (*json_set)(oke_json *obj, const char *key, oke_json *item);
  /* Takes ownership of item, also on failure. */
  int (*json_append)(oke_json *arr, oke_json *item);
  void (*json_remove)(oke_json *obj, const char *key);

  void (*free)(void *p);

  /* ABI 1.1: streaming, for documents that must not be held whole in
   * memory. Check OKE_HOST_HAS(h, http_stream, 1) before use. An exchange is answered either by
   * respond/respond_problem or by respond_begin, respond_write..., and
   * respond_end (ok = 0 aborts: the caller sees a cut-off answer).
   * respond_write returns non-zero when the caller is gone: stop then. */
  int (*http_stream)(oke_conn *c, const oke_http_request *req, oke_http_head_cb on_head,
                     oke_http_data_cb on_data, oke_http_cb done, void *ud);
  int (*respond_begin)(oke_exchange *x, int status, const char *content_type);
  int (*respond_write)(oke_exchange *x, const char *data, size_t len);
  int (*respond_end)(oke_exchange *x, int ok);
  /* ABI 1.1: a header for the answer, before respond/respond_begin. Only
   * headers a caller may act on are passed (Retry-After); others are
   * refused with OKE_EINVAL. */
  int (*respond_header)(oke_exchange *x, const char *name, const char *value);

  /* ABI 1.2: walking a container in order, without knowing its keys:
   *   for (oke_json *m = h->json_first(obj); m; m = h->json_next(m))
   *     ... h->json_key(m) is the member's name, m its value ...
   * json_first gives the first member of an object or element of an array
   * (NULL when empty or not a container); json_next the one after it;
   * json_key the name of an object member (NULL for an array element).
   * Removing the member you stand on ends the walk: take json_next first. */
  oke_json *(*json_first)(const oke_json *container);
  oke_json *(*json_next)(const oke_json *item);
  const char *(*json_key)(const oke_json *item);
  /* ABI 1.2: true/false and null (owned by the caller, like json_new_*). */
  oke_json *(*json_new_bool)(int b);
  oke_json *(*json_new_null)(void);

  /* ABI 1.2: the first value of parameter `name` in a query string such as
   * req->query ("a=1&b=x%20y"), percent-decoded ('+' is a space) into out.
   * Returns 1 when found, 0 when absent (out is then ""), OKE_EINVAL when
   * the value is malformed or does not fit in outsz. */
  int (*query_get)(const char *query, const char *name, char *out, size_t outsz);

  /* ABI 1.2: a timer on the gateway's loop, for this connector. cb(ud)
   * runs first after `ms` milliseconds, then every `repeat_ms` (0: once),
   * always later on the loop thread, never from within timer_start.
   * Returns a positive id, or a negative OKE_E* code (OKE_ESTATE when the
   * host runs without a loop, e.g. okegw -t). timer_stop: the callback does
   * not run again; OKE_EINVAL for an id that is unknown or finished (a
   * one-shot timer is finished once its callback has started). All timers
   * of a connector are stopped before fini. */
  long (*timer_start)(oke_conn *c, uint64_t ms, uint64_t repeat_ms, oke_timer_cb cb, void *ud);
  int (*timer_stop)(oke_conn *c, long id);

  void *reserved[19];
} oke_host;

/* A configuration key a plugin accepts in its connector's section, on top of
 * the host's own keys. Unknown keys are configuration errors. */
typedef struct oke_config_key {
  const char *name;
  const char *help;
} oke_config_key;

/* The descriptor a plugin returns from its entry point. Must stay valid until
 * the plugin is unloaded (a static object is the usual choice). */
typedef struct oke_plugin {
  uint32_t abi_major;  /* OKE_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;  /* OKE_ABI_MINOR the plugin was built with */
  size_t struct_size;  /* sizeof(oke_plugin) the plugin was built with */
  const char *name;    /* short plugin name, e.g. "ooapi" */
  const char *version; /* the plugin's own version string */
  const char *description;
  const oke_config_key *config_keys; /* terminated by {NULL, NULL}; may be NULL */

  /* Called once per connector instance after the config is loaded. Store the
   * plugin's per-instance state in *state. Non-zero return refuses the
   * connector (the others keep running). With [gateway] workers = N the host
   * makes one instance per event loop (each called on its own loop's
   * thread); instances of one connector share nothing through the host, so
   * a plugin that keeps state in memory must share it itself across its
   * instances, thread-safely (host->name tells which connector an instance
   * belongs to). */
  int (*init)(oke_conn *c, const oke_host *host, void **state);
  /* Carry one exchange. Return OKE_OK and call host->respond later (or now),
   * or return an error (the host then answers for the plugin). */
  int (*deliver)(void *state, oke_exchange *x, const oke_request *req);
  /* Optional: 0 when the connector is healthy, else a negative OKE_E*
   * code. The host calls it every health_interval_ms (ABI 1.2) on the loop
   * thread, so it must answer at once (from what the plugin already knows,
   * e.g. how its last peer requests went); the host logs each change
   * between healthy and unhealthy and keeps the last answer for /readyz. */
  int (*health)(void *state);
  /* Called once no exchange of the connector is in flight, no host HTTP
   * request of it is running, and its timers are stopped. Free the state. */
  void (*fini)(void *state);

  /* ABI 1.2: how often health runs, in ms; 0 = the host's default (30 s).
   * The host keeps it within 100 ms .. 1 h. */
  uint32_t health_interval_ms;

  void *reserved[15];
} oke_plugin;

/* The head of a descriptor:
 *   static const oke_plugin my_plugin = {
 *       OKE_PLUGIN_INIT("mine", "1.0.0"),
 *       .init = my_init, .deliver = my_deliver, .fini = my_fini,
 *   }; */
#define OKE_PLUGIN_INIT(plugin_name, plugin_version)                                               \
  .abi_major = OKE_ABI_MAJOR, .abi_minor = OKE_ABI_MINOR, .struct_size = sizeof(oke_plugin),       \
  .name = (plugin_name), .version = (plugin_version)

typedef const oke_plugin *(*oke_plugin_entry_fn)(void);

/* The entry point every plugin defines:
 *   OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &my_plugin; } */
OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void);

#ifdef __cplusplus
}
#endif
#endif /* OKE_PLUGIN_H */
