/*
 * okegw connector plugin SDK, ABI v1.
 *
 * A connector plugin is a shared object built against this header alone. It
 * exports one symbol, OKE_PLUGIN_ENTRY_SYMBOL ("oke_plugin_entry"), a function
 * that returns a pointer to a static oke_plugin descriptor. The host checks
 * the descriptor's ABI major and struct size before it touches anything else.
 *
 * Threading: every callback runs on the gateway's event-loop thread, and every
 * host service must be called from that thread. A callback must never block
 * (no disk, no DNS, no synchronous network I/O): use host->http_request.
 *
 * Memory: strings and buffers the host passes in are valid only for the
 * duration of the callback unless stated otherwise; copy what you keep.
 * Buffers the plugin passes to the host are copied by the host before the
 * call returns.
 *
 * Versioning: same major = binary compatible. A minor bump only appends
 * members at the end of oke_host / oke_plugin (taken from the reserved slots),
 * so a plugin must check host->struct_size (or host->abi_minor) before using
 * a member newer than the minor it was built for.
 */
#ifndef OKE_PLUGIN_H
#define OKE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OKE_ABI_MAJOR 1
#define OKE_ABI_MINOR 1
/* ABI history:
 *   1.0  first release.
 *   1.1  interactions 11-32 (flows 1, 3, 4, 5, 6 and documents) added; a 1.0
 *        plugin answers them with OKE_EUNSUP, so 1.0 plugins keep working.
 *        oke_host gained http_stream, respond_begin/write/end and
 *        respond_header in five of its reserved slots, oke_http_response
 *        gained retry_after in one of its own (sizes unchanged). */

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

enum oke_log_level { OKE_LOG_DEBUG = 0, OKE_LOG_INFO, OKE_LOG_WARN, OKE_LOG_ERROR };

/* The OKE interactions a connector may be asked to carry. Numbers are part of
 * the ABI: new ones are only appended. */
enum oke_interaction {
  OKE_I_UNKNOWN = 0,
  OKE_I_FLOW0_LIST_COMPONENTS = 1,      /* GET /components (one page) */
  OKE_I_FLOW0_GET_COMPONENT = 2,        /* GET /components/{id} */
  OKE_I_FLOW2_PUT_OFFERING = 3,         /* PUT /offerings/{id} */
  OKE_I_FLOW2_PATCH_OFFERING = 4,       /* PATCH /offerings/{id} */
  OKE_I_FLOW2_GET_OFFERING = 5,         /* GET /offerings/{id} */
  OKE_I_FLOW2_LIST_ASSOCIATIONS = 6,    /* GET /offerings/{id}/associations */
  OKE_I_FLOW2_PUT_ASSOCIATION = 7,      /* PUT /associations/{id} */
  OKE_I_FLOW2_PATCH_ASSOCIATION = 8,    /* PATCH /associations/{id} */
  OKE_I_FLOW2_GET_ASSOCIATION = 9,      /* GET /associations/{id} */
  OKE_I_FLOW2_GET_ASSOCIATION_URL = 10, /* GET /associations/{id}/url */
  /* ABI 1.1: the other flows. A TA-side read of flow 3/4 (GET offering,
   * its associations, one association) is the flow-2 interaction. */
  OKE_I_FLOW3_PATCH_ASSOCIATION = 11,       /* PATCH /associations/{id} at a TPL: result */
  OKE_I_GET_DOCUMENT = 12,                  /* GET /documents/{id} (flows 3, 4, 5) */
  OKE_I_FLOW4_PATCH_OFFERING = 13,          /* PATCH /offerings/{id} at a TPL: session report */
  OKE_I_FLOW1_LIST_OFFERINGS = 14,          /* GET /offerings at a DR */
  OKE_I_FLOW1_GET_OFFERING = 15,            /* GET /offerings/{id} at a DR */
  OKE_I_FLOW1_LIST_ASSOCIATIONS = 16,       /* GET /offerings/{id}/associations at a DR */
  OKE_I_FLOW1_GET_ASSOCIATION = 17,         /* GET /associations/{id} at a DR */
  OKE_I_FLOW1_GET_ORGANIZATION = 18,        /* GET /organizations/{id} at a DR */
  OKE_I_FLOW1_GET_PERSON = 19,              /* GET /persons/{id} at a DR */
  OKE_I_FLOW1_LIST_GROUPS = 20,             /* GET /groups at a DR */
  OKE_I_FLOW1_GET_GROUP = 21,               /* GET /groups/{id} at a DR */
  OKE_I_FLOW1_LIST_GROUP_MEMBERS = 22,      /* GET /groups/{id}/members at a DR */
  OKE_I_FLOW1_PUT_OFFERING = 23,            /* PUT /offerings/{id} at a TPL */
  OKE_I_FLOW1_PATCH_OFFERING = 24,          /* PATCH /offerings/{id} at a TPL */
  OKE_I_FLOW1_PUT_ASSOCIATION = 25,         /* PUT /associations/{id} at a TPL */
  OKE_I_FLOW1_PATCH_ASSOCIATION = 26,       /* PATCH /associations/{id} at a TPL */
  OKE_I_FLOW1_PUT_PERSON = 27,              /* PUT /persons/{id} at a TPL */
  OKE_I_FLOW1_PUT_GROUP = 28,               /* PUT /groups/{id} at a TPL */
  OKE_I_FLOW1_PUT_GROUP_MEMBER = 29,        /* PUT /groups/{id}/members/{personId} at a TPL */
  OKE_I_FLOW5_PATCH_ASSOCIATION = 30,       /* PATCH /associations/{id} at a DR: result */
  OKE_I_FLOW5_PUT_ASSOCIATION = 31,         /* PUT /associations/{id} at a DR: extra attempt */
  OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS = 32 /* GET /persons/{id}/associations at a DR */
};

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
   * outbound credentials are NOT added implicitly: use auth_headers. */
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
   * memory. Check struct_size before use. An exchange is answered either by
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

  void *reserved[27];
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
   * connector (the others keep running). */
  int (*init)(oke_conn *c, const oke_host *host, void **state);
  /* Carry one exchange. Return OKE_OK and call host->respond later (or now),
   * or return an error (the host then answers for the plugin). */
  int (*deliver)(void *state, oke_exchange *x, const oke_request *req);
  /* Optional: 0 when the connector is healthy. */
  int (*health)(void *state);
  /* Called after all in-flight exchanges ended. Free the state. */
  void (*fini)(void *state);

  void *reserved[16];
} oke_plugin;

typedef const oke_plugin *(*oke_plugin_entry_fn)(void);

/* The entry point every plugin defines:
 *   OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &my_plugin; } */
OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void);

#ifdef __cplusplus
}
#endif
#endif /* OKE_PLUGIN_H */
