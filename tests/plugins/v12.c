/* A plugin of ABI 1.2, for the loader tests. It forwards every exchange to
 * base_url like ooapi, but
 *   - copies a JSON answer member by member (json_first/next/key) before it
 *     relays it, so the answer is only right when the walk is;
 *   - answers through a one-shot timer, answer_delay_ms after the peer did,
 *     so the answer only arrives when timers work (and stays in flight for a
 *     while: the gateway must not call fini before it is out);
 *   - keeps a repeating timer, which the host must stop before fini;
 *   - says it is unhealthy on its 2nd and 3rd health checks only, every
 *     200 ms, so the log must show one change each way;
 *   - logs what it sees in fini: "v12 fini: pending=P answered=A stop=S"
 *     (S: timer_stop of its repeating timer, which must be gone already).
 * At init it logs "v12 selftest: {...}" built with the other 1.2 helpers. */
#include <oke/forward.h>
#include <oke/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct v12 {
  oke_conn *conn;
  const oke_host *host;
  const char *base_url;
  long delay_ms;
  long tick_id;
  long ticks;
  int health_calls;
  int pending;
  int answered;
} v12;

typedef struct fwd {
  v12 *p;
  oke_exchange *x;
  char *url;
  char hdr_buf[512];
  const char *hdrs[16];
  int status;
  char *ctype;
  char *body; /* the answer to give, when the timer fires */
} fwd;

static char *dup_str(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static void fwd_free(fwd *f) {
  free(f->url);
  free(f->ctype);
  free(f->body);
  free(f);
}

/* A copy of an object made by walking its members; other values are
 * duplicated whole. */
static oke_json *walk_copy(const oke_host *h, const oke_json *j) {
  if (h->json_type(j) != OKE_JSON_OBJECT)
    return h->json_duplicate(j);
  oke_json *o = h->json_new_object();
  for (oke_json *m = h->json_first(j); o && m; m = h->json_next(m)) {
    if (h->json_set(o, h->json_key(m), walk_copy(h, m)) != OKE_OK) {
      h->json_free(o);
      return NULL;
    }
  }
  return o;
}

static void on_delay(void *ud) {
  fwd *f = ud;
  v12 *p = f->p;
  p->host->respond(f->x, f->status, f->ctype, f->body, f->body ? strlen(f->body) : 0);
  p->pending--;
  p->answered++;
  p->host->log(p->conn, OKE_LOG_INFO, "v12 answered: pending=%d", p->pending);
  fwd_free(f);
}

static void on_answer(void *ud, const oke_http_response *res) {
  fwd *f = ud;
  const oke_host *h = f->p->host;
  f->status = res->status ? res->status : 502;
  f->ctype = res->content_type ? dup_str(res->content_type, strlen(res->content_type)) : NULL;
  oke_json *j = res->body_len ? h->json_parse(res->body, res->body_len) : NULL;
  oke_json *copy = j ? walk_copy(h, j) : NULL;
  if (copy) {
    char *text = h->json_print(copy);
    f->body = text ? dup_str(text, strlen(text)) : NULL;
    h->free(text);
  } else if (res->body_len) {
    f->body = dup_str(res->body, res->body_len);
  }
  h->json_free(copy);
  h->json_free(j);
  if (h->timer_start(f->p->conn, (uint64_t)f->p->delay_ms, 0, on_delay, f) < 0) {
    h->respond_problem(f->x, 500, "Internal Server Error", "no timer");
    f->p->pending--;
    fwd_free(f);
  }
}

static void on_tick(void *ud) {
  v12 *p = ud;
  p->ticks++;
}

/* One log line built with the 1.2 helpers; the test compares it. */
static void selftest(const oke_host *h, oke_conn *c) {
  static const char sample[] = "{\"a\":1,\"b\":[true],\"c\":\"x\"}";
  oke_json *in = h->json_parse(sample, strlen(sample));
  char keys[64] = "";
  for (oke_json *m = h->json_first(in); m; m = h->json_next(m))
    snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", keys[0] ? "," : "",
             h->json_key(m));
  h->json_free(in);
  char q[32], none[8];
  int found = h->query_get("x=1&name=a%20b+c&name=2", "name", q, sizeof q);
  int absent = h->query_get("x=1", "name", none, sizeof none);
  int too_long = h->query_get("name=0123456789", "name", none, sizeof none);
  oke_json *o = h->json_new_object();
  h->json_set(o, "keys", h->json_new_string(keys));
  h->json_set(o, "t", h->json_new_bool(1));
  h->json_set(o, "f", h->json_new_bool(0));
  h->json_set(o, "n", h->json_new_null());
  h->json_set(o, "q", h->json_new_string(found == 1 ? q : "?"));
  h->json_set(o, "absent", h->json_new_number(absent));
  h->json_set(o, "too_long", h->json_new_number(too_long));
  h->json_set(o, "name", h->json_new_string(oke_interaction_name(OKE_I_FLOW2_PUT_OFFERING)));
  h->json_set(o, "err", h->json_new_string(oke_strerror(OKE_EIO)));
  char *text = h->json_print(o);
  h->log(c, OKE_LOG_INFO, "v12 selftest: %s", text ? text : "?");
  h->free(text);
  h->json_free(o);
}

static int v12_init(oke_conn *c, const oke_host *h, void **state) {
  if (!OKE_HOST_HAS(h, timer_start, 2) || !OKE_HOST_HAS(h, json_first, 2))
    return OKE_EUNSUP;
  const char *base = oke_forward_base_url(h, c, "v12");
  if (!base)
    return OKE_EINVAL;
  v12 *p = calloc(1, sizeof *p);
  if (!p)
    return OKE_ENOMEM;
  p->conn = c;
  p->host = h;
  p->base_url = base;
  const char *d = h->config(c, "answer_delay_ms");
  p->delay_ms = d ? atol(d) : 0;
  selftest(h, c);
  p->tick_id = h->timer_start(c, 50, 50, on_tick, p);
  if (p->tick_id < 0 && p->tick_id != OKE_ESTATE) { /* okegw -t has no loop */
    int rc = (int)p->tick_id;
    free(p);
    return rc;
  }
  *state = p;
  return OKE_OK;
}

static int v12_deliver(void *state, oke_exchange *x, const oke_request *req) {
  v12 *p = state;
  fwd *f = calloc(1, sizeof *f);
  if (!f)
    return OKE_ENOMEM;
  f->p = p;
  f->x = x;
  int has_query = req->query && *req->query;
  size_t n = strlen(p->base_url) + strlen(req->path) + 2 + strlen(req->query ? req->query : "");
  f->url = malloc(n);
  if (!f->url || oke_forward_headers(p->host, p->conn, req, f->hdr_buf, sizeof f->hdr_buf, f->hdrs,
                                     sizeof f->hdrs / sizeof f->hdrs[0]) < 0) {
    fwd_free(f);
    return OKE_ENOMEM;
  }
  snprintf(f->url, n, "%s%s%s%s", p->base_url, req->path, has_query ? "?" : "",
           has_query ? req->query : "");
  oke_http_request hr = {.method = req->method,
                         .url = f->url,
                         .headers = f->hdrs,
                         .body = req->body,
                         .body_len = req->body_len};
  int rc = p->host->http_request(p->conn, &hr, on_answer, f);
  if (rc != OKE_OK) {
    fwd_free(f);
    return rc;
  }
  p->pending++;
  return OKE_OK;
}

static int v12_health(void *state) {
  v12 *p = state;
  p->health_calls++;
  return p->health_calls == 2 || p->health_calls == 3 ? OKE_EIO : OKE_OK;
}

static void v12_fini(void *state) {
  v12 *p = state;
  int stop = p->host->timer_stop(p->conn, p->tick_id);
  p->host->log(p->conn, OKE_LOG_INFO, "v12 fini: pending=%d answered=%d stop=%d ticked=%d",
               p->pending, p->answered, stop, p->ticks > 0);
  free(p);
}

static const oke_config_key v12_keys[] = {
    {"answer_delay_ms", "how long an answer waits on a timer (default 0)"}, {NULL, NULL}};

static const oke_plugin plugin = {
    OKE_PLUGIN_INIT("v12", "1.2.0"),
    .description = "test plugin of ABI 1.2: timers, member walks, health, fini after work",
    .config_keys = v12_keys,
    .init = v12_init,
    .deliver = v12_deliver,
    .health = v12_health,
    .fini = v12_fini,
    .health_interval_ms = 200,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &plugin; }
