#include "connector/plugin_host.h"
#include "base/json.h"
#include "connector/oauth_client.h"
#include "base/log.h"
#include "oke/problem.h"
#include "base/util.h"
#include "ops/metrics.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Built-in plugins: the same sources as the .so builds, compiled with
 * OKE_PLUGIN_BUILTIN_NAME so their entry points do not clash. */
const oke_plugin *oke_plugin_entry_ooapi(void);
const oke_plugin *oke_plugin_entry_sim(void);
const oke_plugin *oke_plugin_entry_rest(void);

static const struct {
  const char *name;
  oke_plugin_entry_fn entry;
} builtins[] = {{"ooapi", oke_plugin_entry_ooapi},
                {"sim", oke_plugin_entry_sim},
                {"rest", oke_plugin_entry_rest}};

const char *okegw_builtin_plugins(void) { return OKEGW_BUILTINS; }

/* How often a plugin's health runs unless its descriptor says otherwise
 * (ABI 1.2 health_interval_ms); a host constant for now, a per-connector
 * key once the configuration table has room for it. */
#define HEALTH_INTERVAL_MS 30000
#define HEALTH_INTERVAL_MIN_MS 100
#define HEALTH_INTERVAL_MAX_MS 3600000

/* A timer of a connector: the plugin's (timer_start) or the health check.
 * Heap-allocated and freed in its close callback, so a connector can be
 * unloaded while the loop still has to close it. */
typedef struct okegw_conn_timer {
  uv_timer_t h;
  okegw_connector *c;
  long id;
  oke_timer_cb cb;
  void *ud;
  uint64_t repeat_ms;
  struct okegw_conn_timer *next;
} okegw_conn_timer;

static void drain_kick(okegw_connector *c);

/* ---- exchanges --------------------------------------------------------- */

/* One request in the hands of a plugin. Freed when the plugin responds; if
 * the guard timer fired first, the caller already got a 504 and the late
 * answer is dropped. The exchange keeps the mapping set it started with. */
struct oke_exchange {
  okegw_connector *conn;
  okegw_exchange_done done;
  void *ud;
  uint64_t guard_ms;
  int answered;  /* done() ran */
  int responded; /* the plugin called respond */
  uv_timer_t guard;
  oke_request req;
  char *strs[7];
  okegw_mapset *maps;
  /* streaming: ops of the receiver (NULL: collect into buf and answer whole) */
  const okegw_stream_ops *ops;
  int begun;         /* respond_begin ran */
  int sink;          /* the receiver is gone: writes are refused */
  int st_status;     /* collected answer (no ops) */
  okegw_buf headers; /* respond_header lines */
  int retry_after_s; /* respond_header("Retry-After"), in seconds */
  char *st_ctype;
  okegw_buf st_buf;
};

static void exchange_closed(uv_handle_t *h) {
  oke_exchange *x = h->data;
  free(x->st_ctype);
  okegw_buf_free(&x->st_buf);
  okegw_buf_free(&x->headers);
  for (size_t i = 0; i < sizeof x->strs / sizeof x->strs[0]; i++)
    free(x->strs[i]);
  okegw_mapset_unref(x->maps);
  free(x);
}

cJSON *okegw_answer_json(const okegw_answer *a) {
  /* the cache is the one part of an answer a reader may fill in */
  okegw_answer *m = (okegw_answer *)a;
  if (!m->json_tried_) {
    m->json_tried_ = 1;
    if (!m->json_ && m->body && m->body_len)
      m->json_ = cJSON_ParseWithLength(m->body, m->body_len);
  }
  return m->json_;
}

#define ANSWER_STRINGS(a)                                                                          \
  { &(a)->content_type, &(a)->mapping, &(a)->extra_headers, &(a)->mapping_error }

int okegw_answer_copy(okegw_answer *dst, const okegw_answer *src) {
  *dst = (okegw_answer){.conn = src->conn,
                        .status = src->status,
                        .body_len = src->body ? src->body_len : 0,
                        .origin = src->origin,
                        .peer_status = src->peer_status,
                        .retry_after_s = src->retry_after_s};
  const char **to[] = ANSWER_STRINGS(dst);
  const char *const *from[] = ANSWER_STRINGS(src);
  int ok = 1;
  for (size_t i = 0; i < sizeof to / sizeof to[0]; i++)
    if (*from[i] && !(*to[i] = okegw_strdup(*from[i])))
      ok = 0;
  char *body = src->body ? okegw_strndup(src->body, src->body_len) : NULL;
  dst->body = body;
  if (ok && (!src->body || body))
    return 0;
  okegw_answer_copy_free(dst);
  return -1;
}

void okegw_answer_copy_free(okegw_answer *a) {
  const char **s[] = ANSWER_STRINGS(a);
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    free((char *)*s[i]);
  free((char *)a->body);
  cJSON_Delete(a->json_);
  *a = (okegw_answer){0};
}

/* Hands the answer over; what it parsed on the way dies with it. */
static void answer_done(okegw_exchange_done done, void *ud, okegw_answer *a) {
  okegw_metrics_exchange(a->conn ? a->conn->metrics : NULL,
                         a->origin == OKEGW_ANSWER_UNMAPPED ? a->peer_status : a->status);
  done(ud, a);
  cJSON_Delete(a->json_);
}

/* A problem answer made here, not by the peer; origin and peer_status tell
 * the outbox whether trying again can help; mapping_error names the mapping
 * that failed, if that was why. */
static void answer_failure_mapped(okegw_exchange_done done, void *ud, okegw_connector *c,
                                  okegw_mapset *maps, int status, const char *detail,
                                  enum okegw_answer_origin origin, int peer_status,
                                  const char *mapping_error) {
  char *body = okegw_problem_json(status, okegw_status_text(status), detail, c->conf->name);
  okegw_answer a = {.conn = c,
                    .status = status,
                    .content_type = OKEGW_PROBLEM_TYPE,
                    .body = body,
                    .body_len = body ? strlen(body) : 0,
                    .mapping = okegw_mapset_hash(maps),
                    .origin = origin,
                    .peer_status = peer_status,
                    .mapping_error = mapping_error};
  answer_done(done, ud, &a);
  free(body);
}

static void answer_failure(okegw_exchange_done done, void *ud, okegw_connector *c,
                           okegw_mapset *maps, int status, const char *detail,
                           enum okegw_answer_origin origin, int peer_status) {
  answer_failure_mapped(done, ud, c, maps, status, detail, origin, peer_status, NULL);
}

static void answer_problem(okegw_exchange_done done, void *ud, okegw_connector *c,
                           okegw_mapset *maps, int status, const char *detail) {
  answer_failure(done, ud, c, maps, status, detail, OKEGW_ANSWER_PEER, 0);
}

static void map_ctx(const okegw_connector *c, const oke_request *req, okegw_map_ctx *ctx) {
  *ctx = (okegw_map_ctx){.connector = c->conf->name,
                         .interaction = okegw_interaction_name(req->interaction),
                         .id = req->id,
                         .phase = okegw_phase_name(c->conf->phase),
                         .conf = c->conf};
}

/* Maps a JSON body in one direction. Returns 0 with *out set to a new body
 * (or NULL: unchanged), or -1 with err set. When tree_out is given it gets
 * the tree the body now stands for (the mapped one, or the body parsed
 * here), or NULL when nothing was parsed. */
static int map_body(okegw_connector *c, okegw_mapset *maps, const oke_request *req, int from_peer,
                    int status, const cJSON *parsed, const char *body, size_t len, char **out,
                    cJSON **tree_out, char *err, size_t errsz) {
  *out = NULL;
  if (tree_out)
    *tree_out = NULL;
  const char *id = okegw_interaction_name(req->interaction);
  if (!okegw_mapset_has(maps, id, from_peer) || (!parsed && (!body || !len)))
    return 0;
  cJSON *tree = NULL;
  if (!parsed) {
    tree = cJSON_ParseWithLength(body, len);
    if (!tree) {
      if (from_peer)
        return 0; /* not JSON (a document, a plain answer): nothing to map */
      snprintf(err, errsz, "the body is not JSON, so %s/%s.lua cannot map it",
               okegw_mapset_dir(maps), id);
      return -1;
    }
    parsed = tree;
  }
  okegw_map_ctx ctx;
  map_ctx(c, req, &ctx);
  ctx.status = status;
  cJSON *mapped = NULL;
  /* a body only sent on needs its text, not a tree */
  int rc = tree_out ? okegw_mapset_run(maps, id, from_peer, parsed, &ctx, &mapped, err, errsz)
                    : okegw_mapset_run_text(maps, id, from_peer, parsed, &ctx, out, err, errsz);
  if (rc < 0) {
    okegw_metrics_mapping_error(c->metrics, req->interaction, rc == OKEGW_MAP_KILLED);
    cJSON_Delete(tree);
    return -1;
  }
  if (mapped) {
    cJSON_Delete(tree);
    tree = NULL;
    *out = okegw_json_print(mapped);
    if (!*out) {
      cJSON_Delete(mapped);
      snprintf(err, errsz, "out of memory after mapping");
      return -1;
    }
  }
  cJSON *keep = mapped ? mapped : tree;
  if (tree_out)
    *tree_out = keep;
  else
    cJSON_Delete(keep);
  return 0;
}

static void exchange_answer(oke_exchange *x, int status, const char *ctype, const char *body,
                            size_t len) {
  if (x->answered)
    return;
  x->answered = 1;
  char *mapped = NULL;
  cJSON *tree = NULL;
  char err[1024];
  if (map_body(x->conn, x->maps, &x->req, 1, status, NULL, body, len, &mapped, &tree, err,
               sizeof err) < 0) {
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = x->conn->conf->name,
                                  .interaction = okegw_interaction_name(x->req.interaction),
                                  .request_id = x->req.request_id,
                                  .latency_ms = -1},
              "mapping of the answer failed: %s", err);
    answer_failure_mapped(x->done, x->ud, x->conn, x->maps, 502, err, OKEGW_ANSWER_UNMAPPED, status,
                          err);
    return;
  }
  okegw_answer a = {.conn = x->conn,
                    .status = status,
                    .content_type = mapped ? "application/json" : ctype,
                    .body = mapped ? mapped : body,
                    .body_len = mapped ? strlen(mapped)
                                : body ? len
                                       : 0,
                    .mapping = okegw_mapset_hash(x->maps),
                    .extra_headers = x->headers.data,
                    .retry_after_s = x->retry_after_s,
                    .json_ = tree,
                    .json_tried_ = tree != NULL};
  answer_done(x->done, x->ud, &a);
  free(mapped);
}

static void exchange_release(oke_exchange *x) {
  x->conn->in_flight--;
  uv_timer_stop(&x->guard);
  uv_close((uv_handle_t *)&x->guard, exchange_closed);
  drain_kick(x->conn);
}

static int h_respond(oke_exchange *x, int status, const char *ctype, const char *body, size_t len) {
  if (!x || x->responded)
    return OKE_ESTATE;
  if (status < 100 || status > 599)
    return OKE_EINVAL;
  x->responded = 1;
  exchange_answer(x, status, ctype, body, body ? len : 0);
  exchange_release(x);
  return OKE_OK;
}

static int h_respond_problem(oke_exchange *x, int status, const char *title, const char *detail) {
  if (!x)
    return OKE_EINVAL;
  char *body = okegw_problem_json(status, title, detail, x->conn->conf->name);
  int rc = h_respond(x, status, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0);
  free(body);
  return rc;
}

static void on_guard(uv_timer_t *t) {
  oke_exchange *x = t->data;
  char detail[256];
  snprintf(detail, sizeof detail, "connector '%s' did not answer within %llu ms",
           x->conn->conf->name, (unsigned long long)x->guard_ms);
  if (x->begun && x->ops && !x->sink) {
    /* a stream that stalled: cut it off; later writes go nowhere */
    x->sink = 1;
    x->ops->end(x->ud, 0);
    return;
  }
  if (!x->answered) {
    x->answered = 1;
    answer_failure(x->done, x->ud, x->conn, x->maps, 504, detail, OKEGW_ANSWER_HOST, 0);
  }
}

static int h_respond_header(oke_exchange *x, const char *name, const char *value) {
  if (!x || x->responded || x->begun)
    return OKE_ESTATE;
  /* only what a caller may act on, and nothing that could split headers */
  if (!name || !value || strcasecmp(name, "Retry-After") != 0 || strpbrk(value, "\r\n") ||
      strlen(value) > 64)
    return OKE_EINVAL;
  /* delta-seconds (RFC 9110); an HTTP-date is passed on but not acted on */
  char *end;
  long s = strtol(value, &end, 10);
  if (end != value && !*end && s > 0 && s < 86400)
    x->retry_after_s = (int)s;
  return okegw_buf_printf(&x->headers, "%s: %s\r\n", "Retry-After", value) < 0 ? OKE_ENOMEM
                                                                               : OKE_OK;
}

/* ---- streamed answers (ABI 1.1) ---------------------------------------- */

#define STREAM_COLLECT_MAX ((size_t)64 << 20)

static int h_respond_begin(oke_exchange *x, int status, const char *ctype) {
  if (!x || x->responded || x->begun)
    return OKE_ESTATE;
  if (status < 100 || status > 599)
    return OKE_EINVAL;
  x->begun = 1;
  if (x->answered) { /* the guard answered already */
    x->sink = 1;
    return OKE_OK;
  }
  x->answered = 1;
  if (x->ops) {
    x->ops->begin(x->ud, x->conn, status, ctype);
    return OKE_OK;
  }
  x->st_status = status;
  x->st_ctype = ctype ? okegw_strdup(ctype) : NULL;
  return OKE_OK;
}

static int h_respond_write(oke_exchange *x, const char *data, size_t len) {
  if (!x || x->responded || !x->begun)
    return OKE_ESTATE;
  if (x->sink)
    return OKE_EIO;
  if (x->ops) {
    if (x->ops->write(x->ud, data, len) != 0) {
      x->sink = 1;
      return OKE_EIO;
    }
    /* progress: a slow but moving stream is fine */
    uv_timer_start(&x->guard, on_guard, x->guard_ms, 0);
    return OKE_OK;
  }
  if (x->st_buf.len + len > STREAM_COLLECT_MAX || okegw_buf_append(&x->st_buf, data, len) < 0) {
    x->sink = 1;
    return OKE_ENOMEM;
  }
  return OKE_OK;
}

static int h_respond_end(oke_exchange *x, int ok) {
  if (!x || x->responded || !x->begun)
    return OKE_ESTATE;
  x->responded = 1;
  if (x->ops && !x->sink) {
    x->ops->end(x->ud, ok);
  } else if (!x->ops && !x->sink) {
    if (ok) {
      okegw_answer a = {.conn = x->conn,
                        .status = x->st_status,
                        .content_type = x->st_ctype,
                        .body = x->st_buf.data ? x->st_buf.data : "",
                        .body_len = x->st_buf.len,
                        .mapping = okegw_mapset_hash(x->maps)};
      answer_done(x->done, x->ud, &a);
    } else {
      answer_problem(x->done, x->ud, x->conn, x->maps, 502, "the connector's answer broke off");
    }
  } else if (!x->ops && x->sink && x->st_status) {
    answer_problem(x->done, x->ud, x->conn, x->maps, 502, "the answer is too large to collect");
  }
  exchange_release(x);
  return OKE_OK;
}

static void deliver(okegw_connector *c, const oke_request *req, const cJSON *parsed,
                    okegw_exchange_done done, const okegw_stream_ops *ops, void *ud);

void okegw_connector_deliver(okegw_connector *c, const oke_request *req, const cJSON *parsed,
                             okegw_exchange_done done, void *ud) {
  deliver(c, req, parsed, done, NULL, ud);
}

void okegw_connector_deliver_stream(okegw_connector *c, const oke_request *req,
                                    okegw_exchange_done done, const okegw_stream_ops *ops,
                                    void *ud) {
  deliver(c, req, NULL, done, ops, ud);
}

static void deliver(okegw_connector *c, const oke_request *req, const cJSON *parsed,
                    okegw_exchange_done done, const okegw_stream_ops *ops, void *ud) {
  char detail[1024];
  if (!c->ready || c->closing) {
    snprintf(detail, sizeof detail, "connector '%s' is not available: %s", c->conf->name,
             c->closing ? "it is being unloaded"
             : c->error ? c->error
                        : "not initialised");
    answer_failure(done, ud, c, NULL, 503, detail, OKEGW_ANSWER_HOST, 0);
    return;
  }
  /* The way to the peer is mapped before the plugin sees the request, with
   * the mapping set current now; the way back uses the same set. */
  okegw_mapset *maps = okegw_mapset_ref(c->maps);
  char *mapped = NULL;
  if (map_body(c, maps, req, 0, 0, parsed, req->body, req->body_len, &mapped, NULL, detail,
               sizeof detail) < 0) {
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = c->conf->name,
                                  .interaction = okegw_interaction_name(req->interaction),
                                  .request_id = req->request_id,
                                  .latency_ms = -1},
              "mapping to the peer failed: %s", detail);
    answer_failure_mapped(done, ud, c, maps, 502, detail, OKEGW_ANSWER_UNSENT, 0, detail);
    okegw_mapset_unref(maps);
    return;
  }
  oke_exchange *x = calloc(1, sizeof *x);
  if (!x) {
    answer_failure(done, ud, c, maps, 503, "out of memory", OKEGW_ANSWER_HOST, 0);
    okegw_mapset_unref(maps);
    free(mapped);
    return;
  }
  x->conn = c;
  x->done = done;
  x->ud = ud;
  x->ops = ops;
  x->maps = maps;
  x->req = *req;
  const char *src[7] = {req->method, req->path,         req->query,     req->id,
                        req->body,   req->content_type, req->request_id};
  for (int i = 0; i < 7; i++) {
    if (i == 4 && mapped) {
      x->strs[i] = mapped;
      x->req.body_len = strlen(mapped);
      continue;
    }
    size_t len = i == 4 ? req->body_len : src[i] ? strlen(src[i]) : 0;
    x->strs[i] = src[i] || i < 4 ? okegw_strndup(src[i] ? src[i] : "", len) : NULL;
  }
  x->req.method = x->strs[0];
  x->req.path = x->strs[1];
  x->req.query = x->strs[2];
  x->req.id = x->strs[3];
  x->req.body = x->strs[4];
  x->req.content_type = mapped ? "application/json" : x->strs[5];
  x->req.request_id = x->strs[6] ? x->strs[6] : "";
  uv_timer_init(c->loop, &x->guard);
  x->guard.data = x;
  c->in_flight++;
  /* The plugin has its own timeouts; the guard only catches a plugin that
   * never answers, so a slow connector can never hang a caller. */
  x->guard_ms =
      strcmp(req->method, "PUT") && strcmp(req->method, "PATCH") ? c->guard_ms : c->push_guard_ms;
  uv_timer_start(&x->guard, on_guard, x->guard_ms, 0);
  int rc = c->plugin->deliver(c->state, x, &x->req);
  if (rc != OKE_OK && !x->responded) {
    int status = rc == OKE_EUNSUP ? 501 : 502;
    snprintf(detail, sizeof detail, "connector '%s' (plugin %s) %s %s", c->conf->name,
             c->plugin->name, rc == OKE_EUNSUP ? "does not support" : "failed to carry",
             okegw_interaction_name(req->interaction));
    if (rc == OKE_EUNSUP && !x->answered) {
      /* nothing left, and trying again will not change that */
      x->responded = x->answered = 1;
      answer_failure(done, ud, c, x->maps, 501, detail, OKEGW_ANSWER_UNSENT, 0);
      exchange_release(x);
    } else {
      h_respond_problem(x, status, okegw_status_text(status), detail);
    }
  }
}

/* ---- host services ----------------------------------------------------- */

static void h_log(oke_conn *c, int level, const char *fmt, ...) {
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.connector = c ? c->conf->name : NULL;
  va_list ap;
  va_start(ap, fmt);
  okegw_logv(level < OKE_LOG_DEBUG   ? OKE_LOG_DEBUG
             : level > OKE_LOG_ERROR ? OKE_LOG_ERROR
                                     : level,
             &f, fmt, ap);
  va_end(ap);
}

static const char *h_config(oke_conn *c, const char *key) {
  if (!c || !key)
    return NULL;
  /* from the section the plugin started with: its strings live as long as
   * the connector, whatever reloads do to the host's own settings */
  if (strcmp(key, "base_url") == 0)
    return c->born->base_url;
  if (strcmp(key, "test_system") == 0)
    return c->born->test_system;
  /* Secrets are reachable only through auth_headers. */
  if (okegw_conf_is_secret(key))
    return NULL;
  return okegw_conf_get(c->born, key);
}

static const char *h_name(oke_conn *c) { return c ? c->conf->name : NULL; }

typedef struct http_call {
  okegw_connector *c;
  oke_http_cb cb;
  void *ud;
  int push; /* not a read: a 2xx answer too large to keep still counts */
} http_call;

/* A host HTTP request of the plugin has ended (after its callback). */
static void http_ended(okegw_connector *c) {
  c->http_pending--;
  drain_kick(c);
}

/* A plugin's request as the client takes it, with the connector's
 * timeouts where the plugin set none. */
static okegw_http_opts request_opts(const okegw_connector *c, const oke_http_request *req) {
  return (okegw_http_opts){.method = req->method,
                           .url = req->url,
                           .headers = req->headers,
                           .body = req->body,
                           .body_len = req->body_len,
                           .connect_timeout_ms = req->connect_timeout_ms
                                                     ? req->connect_timeout_ms
                                                     : c->conf->connect_timeout_ms,
                           .timeout_ms = req->timeout_ms ? req->timeout_ms : c->conf->timeout_ms,
                           .ca_file = c->conf->ca_file,
                           .client_cert_file = c->conf->client_cert_file,
                           .client_key_file = c->conf->client_key_file,
                           .tls_min_1_2 = c->conf->tls_min_version == OKEGW_TLS_1_2};
}

/* The client's result as the SDK hands it to a plugin. */
static oke_http_response sdk_response(const okegw_http_result *r) {
  return (oke_http_response){.status = r->status,
                             .content_type = r->content_type,
                             .body = r->body,
                             .body_len = r->body_len,
                             .error = r->error,
                             .timed_out = r->timed_out,
                             .total_ms = r->total_ms,
                             .retry_after = r->retry_after};
}

static void on_http_done(void *ud, const okegw_http_result *r) {
  http_call *call = ud;
  okegw_metrics_peer_request(call->c->metrics, r->total_ms / 1000);
  oke_http_response res = sdk_response(r);
  if (r->too_large && !call->push) {
    /* a read needs its body: as before, a failure */
    res.status = 0;
  } else if (r->too_large) {
    /* the peer accepted the push; its answer's body is not needed */
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){
                  .connector = call->c->conf->name, .status = r->status, .latency_ms = -1},
              "the peer accepted (%d) with an answer too large to keep; its body is dropped",
              r->status);
  }
  okegw_connector *c = call->c;
  call->cb(call->ud, &res);
  free(call);
  http_ended(c);
}

/* ---- requests of an oauth2 connector ------------------------------------ */

/* A host HTTP request of a plugin whose connector uses auth = oauth2: it
 * waits for an access token when none is valid, goes out with it, and on a
 * 401 gets one new token and is sent once more. It keeps its own copy of
 * the request for that. */
typedef struct oauth_call {
  okegw_connector *c;
  oke_http_cb cb;
  oke_http_head_cb on_head; /* a stream (h_http_stream), else NULL */
  oke_http_data_cb on_data;
  void *ud;
  int push;
  int retried; /* the one new token and second try after a 401 were used */
  int swallow; /* a stream's 401 that is tried again: not passed on */
  char *token; /* the token this attempt carries */
  char *method, *url, *body;
  size_t body_len;
  char **headers; /* the plugin's lines, without any Authorization */
  long connect_timeout_ms, timeout_ms;
} oauth_call;

static void oauth_call_free(oauth_call *oc) {
  free(oc->token);
  free(oc->method);
  free(oc->url);
  free(oc->body);
  for (char **p = oc->headers; p && *p; p++)
    free(*p);
  free(oc->headers);
  free(oc);
}

/* Hands the plugin its result and ends the call. */
static void oauth_call_end(oauth_call *oc, const okegw_http_result *r) {
  okegw_connector *c = oc->c;
  oke_http_response res = sdk_response(r);
  if (oc->on_head) {
    res.body = NULL;
    res.body_len = 0;
    if (r->too_large)
      res.status = 0;
  } else if (r->too_large && !oc->push) {
    res.status = 0;
  }
  oc->cb(oc->ud, &res);
  oauth_call_free(oc);
  http_ended(c);
}

static void oauth_call_fail(oauth_call *oc, const char *error) {
  okegw_http_result r = {.status = 0, .error = error};
  oauth_call_end(oc, &r);
}

static void on_oauth_head(void *ud, int status, const char *ctype) {
  oauth_call *oc = ud;
  if (status == 401 && !oc->retried) {
    oc->swallow = 1;
    return;
  }
  oc->on_head(oc->ud, status, ctype);
}

static int on_oauth_data(void *ud, const char *data, size_t len) {
  oauth_call *oc = ud;
  return oc->swallow ? 0 : oc->on_data(oc->ud, data, len);
}

static int oauth_send(oauth_call *oc);

static void on_oauth_done(void *ud, const okegw_http_result *r) {
  oauth_call *oc = ud;
  okegw_connector *c = oc->c;
  okegw_metrics_peer_request(c->metrics, r->total_ms / 1000);
  if (r->status == 401 && !oc->retried) {
    /* the token may have been revoked or the peer's clock differs: one new
     * token, one more try; a second 401 goes to the plugin */
    oc->retried = 1;
    oc->swallow = 0;
    okegw_log(OKEGW_LOG_INFO,
              &(okegw_log_fields){.connector = c->conf->name, .status = 401, .latency_ms = -1},
              "the peer refused the OAuth access token (401): getting a new one and trying "
              "%s %s once more",
              oc->method, oc->url);
    if (c->oauth)
      okegw_oauth_invalidate(c->oauth, oc->token);
    if (oauth_send(oc) < 0)
      oauth_call_fail(oc, "no OAuth access token: out of memory or the connector is unloading");
    return;
  }
  oauth_call_end(oc, r);
}

/* Sends the call with TOKEN. Returns 0 or -1 (not sent). */
static int oauth_send_with(oauth_call *oc, const char *token) {
  okegw_connector *c = oc->c;
  size_t n = 0;
  while (oc->headers && oc->headers[n])
    n++;
  const char **h = calloc(n + 2, sizeof *h);
  char *auth = okegw_asprintf("Authorization: Bearer %s", token);
  free(oc->token);
  oc->token = okegw_strdup(token);
  int rc = -1;
  if (h && auth && oc->token) {
    for (size_t i = 0; i < n; i++)
      h[i] = oc->headers[i];
    h[n] = auth;
    oke_http_request req = {.method = oc->method,
                            .url = oc->url,
                            .body = oc->body,
                            .body_len = oc->body_len,
                            .connect_timeout_ms = oc->connect_timeout_ms,
                            .timeout_ms = oc->timeout_ms};
    okegw_http_opts o = request_opts(c, &req);
    o.headers = h;
    if (oc->on_head) {
      o.max_response_bytes = c->max_document_bytes;
      o.on_head = on_oauth_head;
      o.on_data = on_oauth_data;
    }
    rc = okegw_http_request(c->http, &o, on_oauth_done, oc);
  }
  free(h);
  free(auth);
  return rc;
}

static void on_oauth_token(void *ud, const char *token, const char *error) {
  oauth_call *oc = ud;
  if (!token) {
    oauth_call_fail(oc, error ? error : "no OAuth access token");
    return;
  }
  if (oauth_send_with(oc, token) < 0)
    oauth_call_fail(oc, "the HTTP client refused the request");
}

/* With the current token at once, or once one is there. Returns 0 or -1. */
static int oauth_send(oauth_call *oc) {
  okegw_connector *c = oc->c;
  if (!c->oauth)
    return -1;
  const char *token = okegw_oauth_token(c->oauth);
  if (token)
    return oauth_send_with(oc, token);
  return okegw_oauth_wait(c->oauth, on_oauth_token, oc);
}

/* The plugin's request copied into a call; NULL when out of memory. */
static oauth_call *oauth_call_new(okegw_connector *c, const oke_http_request *req) {
  oauth_call *oc = calloc(1, sizeof *oc);
  if (!oc)
    return NULL;
  oc->c = c;
  oc->push = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
  oc->method = okegw_strdup(req->method);
  oc->url = okegw_strdup(req->url);
  oc->body = req->body ? okegw_strndup(req->body, req->body_len) : NULL;
  oc->body_len = req->body ? req->body_len : 0;
  oc->connect_timeout_ms = req->connect_timeout_ms;
  oc->timeout_ms = req->timeout_ms;
  size_t n = 0;
  while (req->headers && req->headers[n])
    n++;
  oc->headers = calloc(n + 1, sizeof *oc->headers);
  int bad = !oc->method || !oc->url || (req->body && !oc->body) || !oc->headers;
  for (size_t i = 0, j = 0; !bad && i < n; i++) {
    /* the host carries the credentials: a line of the plugin's own could be
     * a stale token */
    if (strncasecmp(req->headers[i], "Authorization:", 14) == 0)
      continue;
    if (!(oc->headers[j++] = okegw_strdup(req->headers[i])))
      bad = 1;
  }
  if (bad) {
    oauth_call_free(oc);
    return NULL;
  }
  return oc;
}

/* Starts a request of an oauth2 connector (stream when on_head is set). */
static int oauth_request(okegw_connector *c, const oke_http_request *req, oke_http_head_cb on_head,
                         oke_http_data_cb on_data, oke_http_cb cb, void *ud) {
  oauth_call *oc = oauth_call_new(c, req);
  if (!oc)
    return OKE_ENOMEM;
  oc->cb = cb;
  oc->on_head = on_head;
  oc->on_data = on_data;
  oc->ud = ud;
  c->http_pending++;
  if (oauth_send(oc) < 0) {
    c->http_pending--;
    oauth_call_free(oc);
    return OKE_EIO;
  }
  return OKE_OK;
}

static int h_http_request(oke_conn *c, const oke_http_request *req, oke_http_cb cb, void *ud) {
  if (!c || !req || !req->method || !req->url || !cb)
    return OKE_EINVAL;
  if (!c->http)
    return OKE_ESTATE; /* okegw -t: no network */
  if (c->oauth)
    return oauth_request(c, req, NULL, NULL, cb, ud);
  http_call *call = malloc(sizeof *call);
  if (!call)
    return OKE_ENOMEM;
  call->c = c;
  call->cb = cb;
  call->ud = ud;
  call->push = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
  okegw_http_opts o = request_opts(c, req);
  c->http_pending++;
  if (okegw_http_request(c->http, &o, on_http_done, call) < 0) {
    c->http_pending--;
    free(call);
    return OKE_EIO;
  }
  return OKE_OK;
}

typedef struct stream_call {
  okegw_connector *c;
  oke_http_head_cb on_head;
  oke_http_data_cb on_data;
  oke_http_cb cb;
  void *ud;
} stream_call;

static void on_stream_head(void *ud, int status, const char *ctype) {
  stream_call *sc = ud;
  sc->on_head(sc->ud, status, ctype);
}

static int on_stream_data(void *ud, const char *data, size_t len) {
  stream_call *sc = ud;
  return sc->on_data(sc->ud, data, len);
}

static void on_stream_done(void *ud, const okegw_http_result *r) {
  stream_call *sc = ud;
  okegw_metrics_peer_request(sc->c->metrics, r->total_ms / 1000);
  oke_http_response res = sdk_response(r);
  res.body = NULL; /* the body went piece by piece */
  res.body_len = 0;
  if (r->too_large) /* a document cut off is a failure */
    res.status = 0;
  okegw_connector *c = sc->c;
  sc->cb(sc->ud, &res);
  free(sc);
  http_ended(c);
}

static int h_http_stream(oke_conn *c, const oke_http_request *req, oke_http_head_cb on_head,
                         oke_http_data_cb on_data, oke_http_cb cb, void *ud) {
  if (!c || !req || !req->method || !req->url || !on_head || !on_data || !cb)
    return OKE_EINVAL;
  if (!c->http)
    return OKE_ESTATE;
  if (c->oauth)
    return oauth_request(c, req, on_head, on_data, cb, ud);
  stream_call *sc = malloc(sizeof *sc);
  if (!sc)
    return OKE_ENOMEM;
  *sc = (stream_call){c, on_head, on_data, cb, ud};
  okegw_http_opts o = request_opts(c, req);
  o.max_response_bytes = c->max_document_bytes;
  o.on_head = on_stream_head;
  o.on_data = on_stream_data;
  c->http_pending++;
  if (okegw_http_request(c->http, &o, on_stream_done, sc) < 0) {
    c->http_pending--;
    free(sc);
    return OKE_EIO;
  }
  return OKE_OK;
}

static const char *const *h_auth_headers(oke_conn *c) {
  static const char *const none[] = {NULL};
  return c && c->auth ? (const char *const *)c->auth : none;
}

/* ---- JSON and query helpers (ABI 1.2) ---------------------------------- */

/* An oke_json is a cJSON (see base/json.h). */
static oke_json *j_first(const oke_json *j) {
  const cJSON *c = (const cJSON *)j;
  return cJSON_IsArray(c) || cJSON_IsObject(c) ? (oke_json *)c->child : NULL;
}
static oke_json *j_next(const oke_json *j) {
  return j ? (oke_json *)((const cJSON *)j)->next : NULL;
}
static const char *j_key(const oke_json *j) { return j ? ((const cJSON *)j)->string : NULL; }
static oke_json *j_new_bool(int b) { return (oke_json *)cJSON_CreateBool(b != 0); }
static oke_json *j_new_null(void) { return (oke_json *)cJSON_CreateNull(); }

static int h_query_get(const char *query, const char *name, char *out, size_t outsz) {
  if (!name || !out || !outsz)
    return OKE_EINVAL;
  out[0] = '\0';
  size_t nlen = strlen(name);
  for (const char *p = query ? query : ""; *p;) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    char key[256];
    if (klen < sizeof key && okegw_url_decode(p, klen, key, sizeof key, 1) == (long)nlen &&
        memcmp(key, name, nlen) == 0) {
      if (okegw_url_decode(eq ? eq + 1 : "", eq ? len - klen - 1 : 0, out, outsz, 1) < 0) {
        out[0] = '\0';
        return OKE_EINVAL;
      }
      return 1;
    }
    p += len + (amp ? 1 : 0);
  }
  return 0;
}

/* ---- timers (ABI 1.2) --------------------------------------------------- */

static void conn_timer_closed(uv_handle_t *h) { free(h->data); }

/* Unlinks t from its connector's list (if there) and closes it. */
static void conn_timer_end(okegw_conn_timer *t) {
  for (okegw_conn_timer **p = &t->c->timers; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      break;
    }
  uv_timer_stop(&t->h);
  uv_close((uv_handle_t *)&t->h, conn_timer_closed);
}

static void on_conn_timer(uv_timer_t *h) {
  okegw_conn_timer *t = h->data;
  oke_timer_cb cb = t->cb;
  void *ud = t->ud;
  if (!t->repeat_ms)
    conn_timer_end(t); /* finished once its callback starts */
  cb(ud);
}

static long h_timer_start(oke_conn *c, uint64_t ms, uint64_t repeat_ms, oke_timer_cb cb, void *ud) {
  if (!c || !cb)
    return OKE_EINVAL;
  if (!c->loop || c->closing > 1)
    return OKE_ESTATE; /* okegw -t, or fini is near */
  okegw_conn_timer *t = calloc(1, sizeof *t);
  if (!t)
    return OKE_ENOMEM;
  if (uv_timer_init(c->loop, &t->h) < 0) {
    free(t);
    return OKE_ESTATE;
  }
  t->h.data = t;
  t->c = c;
  t->id = ++c->next_timer_id;
  t->cb = cb;
  t->ud = ud;
  t->repeat_ms = repeat_ms;
  t->next = c->timers;
  c->timers = t;
  uv_timer_start(&t->h, on_conn_timer, ms, repeat_ms);
  return t->id;
}

static int h_timer_stop(oke_conn *c, long id) {
  for (okegw_conn_timer *t = c ? c->timers : NULL; t; t = t->next)
    if (t->id == id) {
      conn_timer_end(t);
      return OKE_OK;
    }
  return OKE_EINVAL;
}

static oke_host host_table;

static const oke_host *host(void) {
  if (!host_table.struct_size) {
    host_table.abi_major = OKE_ABI_MAJOR;
    host_table.abi_minor = OKE_ABI_MINOR;
    host_table.struct_size = sizeof host_table;
    host_table.log = h_log;
    host_table.config = h_config;
    host_table.name = h_name;
    host_table.http_request = h_http_request;
    host_table.auth_headers = h_auth_headers;
    host_table.respond = h_respond;
    host_table.respond_problem = h_respond_problem;
    host_table.http_stream = h_http_stream;
    host_table.respond_begin = h_respond_begin;
    host_table.respond_write = h_respond_write;
    host_table.respond_end = h_respond_end;
    host_table.respond_header = h_respond_header;
    okegw_json_fill_host(&host_table);
    host_table.json_first = j_first;
    host_table.json_next = j_next;
    host_table.json_key = j_key;
    host_table.json_new_bool = j_new_bool;
    host_table.json_new_null = j_new_null;
    host_table.query_get = h_query_get;
    host_table.timer_start = h_timer_start;
    host_table.timer_stop = h_timer_stop;
  }
  return &host_table;
}

/* ---- loading ----------------------------------------------------------- */

/* The members of ABI 1.0 end with fini; members since come out of the
 * reserved slots, so the sizes of 1.0 and 1.1 builds still hold. */
#define DESCRIPTOR_1_0_SIZE (offsetof(oke_plugin, fini) + sizeof(void (*)(void *)))
_Static_assert(sizeof(oke_plugin) == DESCRIPTOR_1_0_SIZE + 16 * sizeof(void *),
               "oke_plugin changed size: take new members from reserved[]");
_Static_assert(sizeof(oke_host) == offsetof(oke_host, free) + 33 * sizeof(void *),
               "oke_host changed size: take new members from reserved[]");

static int load_fail(okegw_connector *c, okegw_diag *diag, const char *file, int line,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int load_fail(okegw_connector *c, okegw_diag *diag, const char *file, int line,
                     const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!c->error)
    c->error = okegw_strdup(msg);
  if (diag)
    okegw_diag_add(diag, file, line, "[connector %s] %s", c->conf->name, msg);
  return -1;
}

static int key_declared(const oke_plugin *p, const char *key) {
  for (const oke_config_key *k = p->config_keys; k && k->name; k++)
    if (strcmp(k->name, key) == 0)
      return 1;
  return 0;
}

int okegw_connector_load(okegw_connector *c, const okegw_conf *conf, const okegw_conf_connector *cc,
                         okegw_diag *diag) {
  memset(c, 0, sizeof *c);
  c->conf = c->born = cc;
  const char *file = conf->path;
  int line = cc->plugin_line ? cc->plugin_line : cc->line;
  if (!cc->plugin)
    return load_fail(c, diag, file, line, "no plugin");

  oke_plugin_entry_fn entry = NULL;
  if (!strchr(cc->plugin, '/')) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
      if (strcmp(builtins[i].name, cc->plugin) == 0)
        entry = builtins[i].entry;
    if (!entry)
      return load_fail(c, diag, file, line,
                       "plugin '%s' is not a built-in (built-ins: %s); give a path to a .so",
                       cc->plugin, okegw_builtin_plugins());
  } else {
    c->dl = dlopen(cc->plugin, RTLD_NOW | RTLD_LOCAL);
    if (!c->dl)
      return load_fail(c, diag, file, line, "cannot load plugin: %s", dlerror());
    *(void **)&entry = dlsym(c->dl, OKE_PLUGIN_ENTRY_SYMBOL);
    if (!entry)
      return load_fail(c, diag, file, line, "plugin %s does not export %s", cc->plugin,
                       OKE_PLUGIN_ENTRY_SYMBOL);
  }
  const oke_plugin *p = entry();
  if (!p)
    return load_fail(c, diag, file, line, "plugin %s returned no descriptor", cc->plugin);
  if (p->abi_major != OKE_ABI_MAJOR)
    return load_fail(c, diag, file, line,
                     "plugin %s was built for plugin ABI %u.%u, this okegw speaks ABI %d.%d "
                     "(major versions must match): rebuild it against this okegw's include/",
                     cc->plugin, p->abi_major, p->abi_minor, OKE_ABI_MAJOR, OKE_ABI_MINOR);
  /* Every 1.x descriptor holds at least the members of 1.0; later ones are
   * read only from a plugin whose minor has them. */
  if (p->struct_size < DESCRIPTOR_1_0_SIZE)
    return load_fail(c, diag, file, line,
                     "plugin %s descriptor is %zu bytes, ABI %d.%d needs at least %zu: it is "
                     "not binary compatible",
                     cc->plugin, p->struct_size, OKE_ABI_MAJOR, OKE_ABI_MINOR, DESCRIPTOR_1_0_SIZE);
  if (!p->name || !p->init || !p->deliver)
    return load_fail(c, diag, file, line, "plugin %s lacks a name, init or deliver callback",
                     cc->plugin);
  c->plugin = p;
  char accepted[512] = "";
  for (const oke_config_key *k = p->config_keys; k && k->name; k++) {
    size_t used = strlen(accepted);
    snprintf(accepted + used, sizeof accepted - used, "%s%s", used ? ", " : "", k->name);
  }
  int bad = 0;
  for (size_t i = 0; i < cc->nkv; i++) {
    if (okegw_conf_is_host_key(cc->kv[i].key) || key_declared(p, cc->kv[i].key))
      continue;
    load_fail(c, diag, file, cc->kv[i].line, "unknown key '%s' (plugin %s adds: %s)", cc->kv[i].key,
              p->name, accepted[0] ? accepted : "no keys");
    bad = 1;
  }
  return bad ? -1 : 0;
}

static char **make_auth(const okegw_conf_connector *cc) {
  char **h = calloc(2, sizeof *h);
  if (!h)
    return NULL;
  if (cc->auth == OKEGW_AUTH_BEARER)
    h[0] = okegw_asprintf("Authorization: Bearer %s", cc->token);
  else if (cc->auth == OKEGW_AUTH_APIKEY)
    h[0] = okegw_asprintf("%s: %s", cc->api_key_header, cc->api_key);
  /* oauth2: none; the host adds the current token to each request itself */
  return h;
}

/* ---- health ------------------------------------------------------------- */

static void on_health(uv_timer_t *h) {
  okegw_conn_timer *t = h->data;
  okegw_connector *c = t->c;
  int rc = c->plugin->health(c->state);
  int was = c->health;
  c->plugin_health = rc;
  if (c->token_failing)
    return; /* stays unhealthy until a token comes (on_token_state) */
  c->health = rc;
  c->health_at_ms = uv_now(c->loop);
  /* changes only: a steady state is not worth a line per tick */
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.connector = c->conf->name;
  if (rc != OKE_OK && was == OKE_OK)
    okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_WARN, &f,
              "connector '%s' is unhealthy: its plugin's health check says %d (%s)", c->conf->name,
              rc, oke_strerror(rc));
  else if (rc == OKE_OK && was != OKE_OK)
    okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO, &f, "connector '%s' is healthy again",
              c->conf->name);
}

/* The token endpoint failed or works again. */
static void on_token_state(void *ud, int ok, const char *why) {
  okegw_connector *c = ud;
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.connector = c->conf->name;
  c->token_failing = !ok;
  if (!ok) {
    if (c->health == OKE_OK)
      okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_WARN, &f, "connector '%s' is unhealthy: %s",
                c->conf->name, why);
    c->health = OKE_EIO;
    return;
  }
  c->health = c->plugin_health;
  okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO, &f,
            "connector '%s' has an OAuth access token%s", c->conf->name,
            c->health == OKE_OK ? "; healthy again" : "");
}

static void health_stop(okegw_connector *c) {
  if (!c->health_timer)
    return;
  uv_timer_stop(&c->health_timer->h);
  uv_close((uv_handle_t *)&c->health_timer->h, conn_timer_closed);
  c->health_timer = NULL;
}

static void health_start(okegw_connector *c) {
  if (!c->loop || !c->plugin->health)
    return;
  uint64_t every = HEALTH_INTERVAL_MS;
  if (c->plugin->abi_minor >= 2 && c->plugin->struct_size >= offsetof(oke_plugin, reserved) &&
      c->plugin->health_interval_ms) {
    every = c->plugin->health_interval_ms;
    every = every < HEALTH_INTERVAL_MIN_MS   ? HEALTH_INTERVAL_MIN_MS
            : every > HEALTH_INTERVAL_MAX_MS ? HEALTH_INTERVAL_MAX_MS
                                             : every;
  }
  okegw_conn_timer *t = calloc(1, sizeof *t);
  if (!t || uv_timer_init(c->loop, &t->h) < 0) {
    free(t);
    okegw_log(OKEGW_LOG_WARN, &(okegw_log_fields){.connector = c->conf->name, .latency_ms = -1},
              "no health checks for connector '%s': out of memory", c->conf->name);
    return;
  }
  t->h.data = t;
  t->c = c;
  t->repeat_ms = every;
  c->health_timer = t;
  uv_timer_start(&t->h, on_health, every, every);
}

int okegw_connector_init(okegw_connector *c, uv_loop_t *loop, okegw_http *http, long max_wait_ms) {
  if (!c->plugin)
    return -1;
  long guard = c->conf->timeout_ms + 1000;
  c->guard_ms = (uint64_t)(max_wait_ms > 0 && max_wait_ms < guard ? max_wait_ms : guard);
  /* a push the guard gave up on while the plugin still carries it would be
   * tried again by the outbox, and the second attempt could overtake the
   * first: its guard waits out the plugin's own timeout */
  c->push_guard_ms = (uint64_t)guard;
  c->loop = loop;
  c->http = http;
  c->auth = make_auth(c->born);
  if (!c->auth)
    return load_fail(c, NULL, NULL, 0, "out of memory");
  char why[512];
  if (okegw_oauth_check(c->born, why, sizeof why) < 0)
    return load_fail(c, NULL, NULL, 0, "%s", why);
  if (c->born->auth == OKEGW_AUTH_OAUTH2 && loop && http &&
      okegw_oauth_new(loop, http, c->born, on_token_state, c, &c->oauth) < 0)
    return load_fail(c, NULL, NULL, 0, "out of memory");
  okegw_oauth_count_into(c->oauth, c->metrics);
  c->initialised = 1;
  int rc = c->plugin->init(c, host(), &c->state);
  if (rc != OKE_OK) {
    /* no fini follows a refusal: timers it started must not outlive it */
    while (c->timers)
      conn_timer_end(c->timers);
    okegw_oauth_free(c->oauth);
    c->oauth = NULL;
    return load_fail(c, NULL, NULL, 0, "plugin %s refused to initialise (code %d: %s)",
                     c->plugin->name, rc, oke_strerror(rc));
  }
  c->ready = 1;
  health_start(c);
  return 0;
}

void okegw_connector_unload(okegw_connector *c) {
  /* requests waiting for a token fail now: their plugin is still loaded */
  okegw_oauth *oauth = c->oauth;
  c->oauth = NULL;
  okegw_oauth_free(oauth);
  int busy = c->in_flight || c->http_pending;
  c->closing = 2; /* timer_start refused from here on */
  health_stop(c);
  while (c->timers)
    conn_timer_end(c->timers);
  if (busy)
    /* the plugin could still be called: leave it loaded, without fini */
    okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = c->conf->name, .latency_ms = -1},
              "connector '%s' still has %zu exchange(s) and %zu HTTP request(s) in flight: its "
              "plugin is left loaded, fini is not called",
              c->conf->name, c->in_flight, c->http_pending);
  else if (c->ready && c->plugin->fini)
    c->plugin->fini(c->state);
  c->ready = 0;
  if (c->dl && !busy)
    dlclose(c->dl);
  if (c->auth) {
    for (char **p = c->auth; *p; p++)
      free(*p);
    free(c->auth);
  }
  free(c->error);
  okegw_mapset_unref(c->maps);
  if (busy) {
    /* what is in flight still points here: kept as it is, for good */
    c->maps = NULL;
    c->auth = NULL;
    c->error = NULL;
    c->abandoned = 1;
    return;
  }
  memset(c, 0, sizeof *c);
}

/* ---- draining before unload --------------------------------------------- */

typedef struct okegw_drain {
  uv_timer_t t;
  okegw_connector **cs;
  size_t n;
  uint64_t deadline;
  int logged;
  void (*done)(void *);
  void *arg;
} okegw_drain;

static void drain_closed(uv_handle_t *h) { free(h->data); }

/* Runs from the loop (never inside a plugin's call, which may still use its
 * state): unloads once nothing is in flight, or at the deadline. */
static void on_drain(uv_timer_t *t) {
  okegw_drain *d = t->data;
  size_t exchanges = 0, requests = 0;
  for (size_t i = 0; i < d->n; i++) {
    exchanges += d->cs[i]->in_flight;
    requests += d->cs[i]->http_pending;
  }
  uint64_t now = uv_now(t->loop);
  if ((exchanges || requests) && now < d->deadline) {
    if (!d->logged++)
      okegw_log(d->cs[0]->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO, NULL,
                "waiting for %zu exchange(s) and %zu HTTP request(s) of plugins before unloading",
                exchanges, requests);
    uv_timer_start(t, on_drain, d->deadline - now, 0);
    return;
  }
  for (size_t i = 0; i < d->n; i++) {
    d->cs[i]->drain = NULL;
    okegw_connector_unload(d->cs[i]);
  }
  free(d->cs);
  void (*done)(void *) = d->done;
  void *arg = d->arg;
  uv_close((uv_handle_t *)t, drain_closed);
  if (done)
    done(arg);
}

static void drain_kick(okegw_connector *c) {
  if (c->drain && !c->in_flight && !c->http_pending)
    uv_timer_start(&c->drain->t, on_drain, 0, 0);
}

void okegw_connectors_drain(okegw_connector *const *cs, size_t n, void (*done)(void *), void *arg) {
  uv_loop_t *loop = NULL;
  uint64_t wait_ms = 0;
  for (size_t i = 0; cs && i < n; i++) {
    if (cs[i]->loop)
      loop = cs[i]->loop;
    if (cs[i]->push_guard_ms > wait_ms)
      wait_ms = cs[i]->push_guard_ms;
    if (cs[i]->guard_ms > wait_ms)
      wait_ms = cs[i]->guard_ms;
  }
  okegw_drain *d = loop ? calloc(1, sizeof *d) : NULL;
  okegw_connector **copy = d ? calloc(n ? n : 1, sizeof *copy) : NULL;
  if (!d || !copy || uv_timer_init(loop, &d->t) < 0) {
    /* no loop (nothing can be in flight), or no memory: unload now */
    free(d);
    free(copy);
    for (size_t i = 0; cs && i < n; i++)
      okegw_connector_unload(cs[i]);
    if (done)
      done(arg);
    return;
  }
  for (size_t i = 0; i < n; i++)
    copy[i] = cs[i];
  d->t.data = d;
  d->cs = copy;
  d->n = n;
  d->deadline = uv_now(loop) + wait_ms + 1000;
  d->done = done;
  d->arg = arg;
  for (size_t i = 0; i < n; i++) {
    cs[i]->closing = 1;
    cs[i]->drain = d;
    health_stop(cs[i]);
  }
  uv_timer_start(&d->t, on_drain, 0, 0);
}
