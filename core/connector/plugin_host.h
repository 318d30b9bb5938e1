/* Connector instances: loading a plugin (built-in or .so), checking its ABI,
 * the host services table handed to it, and exchanges (one request carried
 * by one connector, answered exactly once). */
#ifndef OKEGW_PLUGIN_HOST_H
#define OKEGW_PLUGIN_HOST_H

#include "base/conf.h"
#include "http/http_client.h"
#include "oke/interaction.h"
#include "connector/mapping.h"

#include <cjson/cJSON.h>

#include <oke/plugin.h>
#include <uv.h>

/* The host side of an oke_conn. Points into the okegw_conf it came from,
 * which must outlive it. */
struct oke_conn {
  /* Its section in the configuration now running: a reload that keeps the
   * instance (only host settings such as the phase or tokens changed)
   * points it at the new file's section */
  const okegw_conf_connector *conf;
  /* the section the plugin was started with: what config() and the
   * outbound credentials read, valid as long as the connector */
  const okegw_conf_connector *born;
  void *home;    /* the gateway's hold on born's configuration */
  void *here;    /* and on conf's (the same until a reload re-points conf) */
  unsigned gens; /* gateway generations that hold it; at 0 it drains */
  /* okegw_connector_unload found work still in flight past the drain's
   * deadline: the plugin stays loaded, and this struct must never be freed */
  int abandoned;
  const oke_plugin *plugin;
  void *dl;        /* dlopen handle, NULL for a built-in */
  void *state;     /* the plugin's per-instance state */
  int ready;       /* loaded and initialised */
  int initialised; /* init was called (ready or refused) */
  char *error;     /* why not ready */
  char **auth;     /* NULL-terminated header lines */
  okegw_http *http;
  uv_loop_t *loop;
  uint64_t guard_ms;         /* an exchange not answered by then gets 504 */
  uint64_t push_guard_ms;    /* same for a PUT/PATCH: never before timeout_ms has passed */
  size_t max_document_bytes; /* largest streamed answer (documents) */
  size_t in_flight;          /* exchanges the plugin has not answered yet */
  size_t http_pending;       /* host HTTP requests of the plugin still running */
  okegw_mapset *maps;        /* current Lua mappings (a reload swaps them) */
  /* The plugin's last health() answer: 0 healthy (also before the first
   * check, and for a plugin without health), else its OKE_E* code. */
  int health;
  uint64_t health_at_ms; /* uv_now of that answer, 0 = not asked yet */
  /* auth = oauth2: the connector's access tokens; while its token endpoint
   * fails, health is OKE_EIO whatever the plugin says */
  struct okegw_oauth *oauth;
  int token_failing;
  int plugin_health; /* the plugin's own last answer */
  /* the counters of its name in the gateway's metrics (ops/metrics.h), kept
   * across reloads; NULL outside a gateway (okegw -t) */
  struct okegw_conn_metrics *metrics;
  /* the instance of a worker loop ([gateway] workers): its changes of
   * health and its lifecycle are logged at debug, loop 0's instance says
   * them at info */
  int quiet;
  /* private */
  struct okegw_conn_timer *timers; /* the plugin's timers (timer_start) */
  struct okegw_conn_timer *health_timer;
  long next_timer_id;
  int closing;               /* draining for unload: no new exchanges */
  struct okegw_drain *drain; /* the drain this connector is part of */
};
typedef struct oke_conn okegw_connector;

/* Who made an answer. The outbox retries only what may succeed later. */
enum okegw_answer_origin {
  OKEGW_ANSWER_PEER = 0, /* the peer's answer, or the plugin's word on the transport */
  OKEGW_ANSWER_HOST,     /* okegw itself: connector unavailable, no answer in time, no memory */
  OKEGW_ANSWER_UNSENT,   /* nothing left and trying again will not help: the mapping to the
                            peer failed, or the plugin does not carry the interaction */
  OKEGW_ANSWER_UNMAPPED  /* the peer answered peer_status, but the mapping back failed */
};

/* The connector's answer to one exchange, already mapped back. Everything
 * is owned by the host and valid only during the done callback. */
typedef struct okegw_answer {
  okegw_connector *conn;
  int status;
  const char *content_type; /* may be NULL */
  const char *body;
  size_t body_len;
  const char *mapping;       /* content hash of the mappings it ran with, "-" if none */
  const char *extra_headers; /* "Name: value\r\n" lines the plugin set, or NULL */
  enum okegw_answer_origin origin;
  int peer_status;   /* OKEGW_ANSWER_UNMAPPED: what the peer answered */
  int retry_after_s; /* the peer's Retry-After in seconds, 0 = none */
  /* a Lua mapping failed: where and why ("ta.lua:12: message", as the
   * mapping reported it), for the acceptance evidence; NULL otherwise */
  const char *mapping_error;
  /* private: the body parsed, read through okegw_answer_json */
  cJSON *json_;
  int json_tried_;
} okegw_answer;

/* The answer's body as a JSON tree, parsed at most once per answer (the
 * mapping's own result when a from_peer mapping ran), or NULL when it is
 * empty or not JSON. Owned by the answer: a reader may detach parts of it
 * (and owns those then), after which the tree no longer matches `body`. */
cJSON *okegw_answer_json(const okegw_answer *a);

/* A copy of src that owns its strings and body, for an answer that must
 * outlive its done callback (held until its delivery's end is written, or
 * handed to another event loop). The parsed tree is not copied: a reader
 * parses the body again. 0, or -1 out of memory (dst is then empty). */
int okegw_answer_copy(okegw_answer *dst, const okegw_answer *src);
void okegw_answer_copy_free(okegw_answer *a);

/* Called once per exchange. May run before okegw_connector_deliver returns. */
typedef void (*okegw_exchange_done)(void *ud, const okegw_answer *a);

/* Resolves and checks the plugin of `cc` (built-in name or .so path) and its
 * plugin-specific keys. On failure returns -1 and reports file:line problems
 * in diag; `c` then has `error` set and is not ready. Does not call init. */
int okegw_connector_load(okegw_connector *c, const okegw_conf *conf, const okegw_conf_connector *cc,
                         okegw_diag *diag);
/* Calls the plugin's init. An exchange gets 504 when the plugin has not
 * answered within the connector's timeout_ms plus a second, capped at
 * max_wait_ms. Returns 0 or -1 (error set). */
int okegw_connector_init(okegw_connector *c, uv_loop_t *loop, okegw_http *http, long max_wait_ms);
/* A streamed answer (documents): begin once, write pieces (return non-zero
 * when the receiver is gone), end once (ok = 0: cut off). When the plugin
 * streams, these replace the done callback; when it answers whole, done
 * runs as usual. */
typedef struct okegw_stream_ops {
  void (*begin)(void *ud, okegw_connector *c, int status, const char *content_type);
  int (*write)(void *ud, const char *data, size_t len);
  void (*end)(void *ud, int ok);
} okegw_stream_ops;

/* Like okegw_connector_deliver, for an answer that may be streamed. */
void okegw_connector_deliver_stream(okegw_connector *c, const oke_request *req,
                                    okegw_exchange_done done, const okegw_stream_ops *ops,
                                    void *ud);

/* Hands `req` to the connector: maps its body to the peer (Lua), lets the
 * plugin carry it, maps the answer back, and calls done. The request's
 * strings are copied. `parsed` is req->body already parsed, or NULL. */
void okegw_connector_deliver(okegw_connector *c, const oke_request *req, const cJSON *parsed,
                             okegw_exchange_done done, void *ud);
/* Calls fini (if init ran) and unloads, now. Meant for a connector with
 * nothing in flight (okegw -t, or after okegw_connectors_drain); one that
 * still has work is unloaded without fini (logged), since its plugin could
 * still be called. */
void okegw_connector_unload(okegw_connector *c);

/* Unloads n connectors once their work has ended: each takes no new
 * exchanges from now on, fini runs once it has no exchange in flight and no
 * host HTTP request running (its timers keep running until then, since an
 * answer may wait on one); a connector still busy after the longest
 * exchange guard (plus a second) is unloaded without fini. done(arg) runs
 * once all are unloaded, possibly before this returns. */
void okegw_connectors_drain(okegw_connector *const *cs, size_t n, void (*done)(void *), void *arg);

/* Space-separated names of the built-in plugins. */
const char *okegw_builtin_plugins(void);

#endif
