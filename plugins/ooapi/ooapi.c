/* ooapi: the generic connector for a supplier that speaks OKE itself. It
 * forwards each exchange to {base_url}{path}?{query} with the supplier's
 * credentials and relays the answer unchanged. Built against include/ only. */
#include <oke/forward.h>
#include <oke/plugin.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ooapi {
  oke_conn *conn;
  const oke_host *host;
  const char *base_url;
  /* R31: the supplier's GET / (service metadata), asked at first contact
   * and then every VERSION_CHECK_MS: 1 it declares v5 and nl-test-admin,
   * 0 it does not (unhealthy), -1 not known yet */
  int version_ok;
  int checking;
  char *root_url;
  char hdr_buf[256];
  const char *hdrs[12];
} ooapi;

#define VERSION_CHECK_MS (15u * 60u * 1000u)

/* One forwarded exchange; owns its URL and header lines. */
typedef struct fwd {
  ooapi *o;
  oke_exchange *x;
  char *url;
  char hdr_buf[512];
  const char *hdrs[16];
  int begun; /* a streamed answer has started */
} fwd;

static const oke_config_key ooapi_keys[] = {{NULL, NULL}};

static void fwd_free(fwd *f) {
  free(f->url);
  free(f);
}

static char *dup_printf(const char *fmt, ...) OKE_PRINTF(1, 2);

static char *dup_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s) {
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return s;
}

/* Documents stream through (ABI 1.1): head, pieces, end. */
static void on_doc_head(void *ud, int status, const char *content_type) {
  fwd *f = ud;
  f->o->host->respond_begin(f->x, status, content_type);
  f->begun = 1;
}

static int on_doc_data(void *ud, const char *data, size_t len) {
  fwd *f = ud;
  return f->o->host->respond_write(f->x, data, len) == OKE_OK ? 0 : 1;
}

static void on_doc_done(void *ud, const oke_http_response *res) {
  fwd *f = ud;
  const oke_host *h = f->o->host;
  if (f->begun) {
    h->respond_end(f->x, res->status != 0);
  } else {
    char detail[512];
    snprintf(detail, sizeof detail, "supplier at %s: %s", f->o->base_url,
             res->error ? res->error : "transport error");
    h->respond_problem(f->x, res->timed_out ? 504 : 502,
                       res->timed_out ? "Gateway Timeout" : "Bad Gateway", detail);
  }
  fwd_free(f);
}

static void on_answer(void *ud, const oke_http_response *res) {
  fwd *f = ud;
  oke_forward_answer(f->o->host, f->o->conn, f->x, f->o->base_url, res);
  fwd_free(f);
}

/* supportedVersions holds "v5" and supportedConsumers an nl-test-admin
 * entry (digest R31). */
static int declares_oke(const oke_host *h, const oke_json *meta) {
  int v5 = 0, consumer = 0;
  const oke_json *versions = h->json_get(meta, "supportedVersions");
  for (size_t i = 0; versions && i < h->json_size(versions); i++) {
    const char *v = h->json_string(h->json_at(versions, i));
    v5 |= v && strcmp(v, "v5") == 0;
  }
  const oke_json *consumers = h->json_get(meta, "supportedConsumers");
  for (size_t i = 0; consumers && i < h->json_size(consumers); i++) {
    const char *k = h->json_string(h->json_get(h->json_at(consumers, i), "consumerKey"));
    consumer |= k && strcmp(k, "nl-test-admin") == 0;
  }
  return v5 && consumer;
}

static void on_metadata(void *ud, const oke_http_response *res) {
  ooapi *o = ud;
  const oke_host *h = o->host;
  o->checking = 0;
  oke_json *meta = res->status == 200 && res->body ? h->json_parse(res->body, res->body_len) : NULL;
  int ok = meta && declares_oke(h, meta);
  h->json_free(meta);
  if (res->status == 0) /* unreachable: the exchanges will say so; nothing learnt */
    return;
  if (ok != o->version_ok)
    h->log(o->conn, ok ? OKE_LOG_INFO : OKE_LOG_WARN,
           ok ? "supplier at %s declares OOAPI v5 with the nl-test-admin consumer (R31)"
              : "supplier at %s does not declare OOAPI v5 with the nl-test-admin consumer in its "
                "GET / (status %d; R31): it may not speak this version of OKE",
           o->base_url, res->status);
  o->version_ok = ok;
}

static void check_version(void *ud) {
  ooapi *o = ud;
  if (o->checking)
    return;
  oke_request none = {.method = "GET", .path = "/", .query = "", .id = ""};
  if (oke_forward_headers(o->host, o->conn, &none, o->hdr_buf, sizeof o->hdr_buf, o->hdrs,
                          sizeof o->hdrs / sizeof o->hdrs[0]) < 0)
    return;
  oke_http_request hr = {.method = "GET", .url = o->root_url, .headers = o->hdrs};
  if (o->host->http_request(o->conn, &hr, on_metadata, o) == OKE_OK)
    o->checking = 1;
}

static int ooapi_health(void *state) {
  ooapi *o = state;
  return o->version_ok == 0 ? OKE_EIO : OKE_OK;
}

static int ooapi_init(oke_conn *c, const oke_host *host, void **state) {
  const char *base = oke_forward_base_url(host, c, "ooapi");
  if (!base)
    return OKE_EINVAL;
  ooapi *o = calloc(1, sizeof *o);
  if (!o)
    return OKE_ENOMEM;
  o->conn = c;
  o->host = host;
  o->base_url = base;
  o->version_ok = -1;
  o->root_url = dup_printf("%s/", base);
  if (!o->root_url) {
    free(o);
    return OKE_ENOMEM;
  }
  /* the version check at first contact and now and then (R31); a host
   * without a loop (okegw -t) has no timers, and then there is none */
  if (OKE_HOST_HAS(host, timer_start, 2))
    host->timer_start(c, 0, VERSION_CHECK_MS, check_version, o);
  *state = o;
  return OKE_OK;
}

static int ooapi_deliver(void *state, oke_exchange *x, const oke_request *req) {
  ooapi *o = state;
  fwd *f = calloc(1, sizeof *f);
  if (!f)
    return OKE_ENOMEM;
  f->o = o;
  f->x = x;
  int has_query = req->query && *req->query;
  f->url = dup_printf("%s%s%s%s", o->base_url, req->path, has_query ? "?" : "",
                      has_query ? req->query : "");
  if (oke_forward_headers(o->host, o->conn, req, f->hdr_buf, sizeof f->hdr_buf, f->hdrs,
                          sizeof f->hdrs / sizeof f->hdrs[0]) < 0) {
    fwd_free(f);
    return OKE_EINVAL;
  }
  if (!f->url) {
    fwd_free(f);
    return OKE_ENOMEM;
  }
  oke_http_request hr = {.method = req->method,
                         .url = f->url,
                         .headers = f->hdrs,
                         .body = req->body,
                         .body_len = req->body_len};
  int stream = req->interaction == OKE_I_GET_DOCUMENT && OKE_HOST_HAS(o->host, http_stream, 1);
  int rc = stream ? o->host->http_stream(o->conn, &hr, on_doc_head, on_doc_data, on_doc_done, f)
                  : o->host->http_request(o->conn, &hr, on_answer, f);
  if (rc != OKE_OK) {
    fwd_free(f);
    return rc;
  }
  return OKE_OK;
}

static void ooapi_fini(void *state) {
  ooapi *o = state;
  free(o->root_url);
  free(o);
}

static const oke_plugin ooapi_plugin = {
    OKE_PLUGIN_INIT("ooapi", "1.0.0"),
    .description = "Forwards OKE interactions to a supplier that speaks OKE (OOAPI v5)",
    .config_keys = ooapi_keys,
    .init = ooapi_init,
    .deliver = ooapi_deliver,
    .health = ooapi_health,
    .fini = ooapi_fini,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &ooapi_plugin; }
