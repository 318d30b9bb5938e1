/* A plugin as it was written for ABI 1.0: it says minor 0, fills its
 * descriptor by hand, checks the host the 1.0 way and uses only 1.0 host
 * members (forwarding to base_url like ooapi). A 1.2 host must load and
 * serve it unchanged, and never read descriptor members newer than 1.0. */
#include <oke/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct v10 {
  oke_conn *conn;
  const oke_host *host;
  const char *base_url;
} v10;

typedef struct fwd {
  v10 *p;
  oke_exchange *x;
  char url[1024];
} fwd;

static void on_answer(void *ud, const oke_http_response *res) {
  fwd *f = ud;
  const oke_host *h = f->p->host;
  if (res->status == 0)
    h->respond_problem(f->x, 502, "Bad Gateway", res->error ? res->error : "transport error");
  else
    h->respond(f->x, res->status, res->content_type, res->body, res->body_len);
  free(f);
}

static int v10_init(oke_conn *c, const oke_host *h, void **state) {
  if (h->abi_major != 1)
    return OKE_EINVAL;
  v10 *p = calloc(1, sizeof *p);
  if (!p)
    return OKE_ENOMEM;
  p->conn = c;
  p->host = h;
  p->base_url = h->config(c, "base_url");
  if (!p->base_url) {
    free(p);
    return OKE_EINVAL;
  }
  h->log(c, OKE_LOG_INFO, "v10 plugin up (host ABI %u.%u)", h->abi_major, h->abi_minor);
  *state = p;
  return OKE_OK;
}

static int v10_deliver(void *state, oke_exchange *x, const oke_request *req) {
  v10 *p = state;
  fwd *f = calloc(1, sizeof *f);
  if (!f)
    return OKE_ENOMEM;
  f->p = p;
  f->x = x;
  int has_query = req->query && *req->query;
  snprintf(f->url, sizeof f->url, "%s%s%s%s", p->base_url, req->path, has_query ? "?" : "",
           has_query ? req->query : "");
  static const char *const hdrs[] = {"Accept: application/json", "Content-Type: application/json",
                                     NULL};
  oke_http_request hr = {.method = req->method,
                         .url = f->url,
                         .headers = hdrs,
                         .body = req->body,
                         .body_len = req->body_len};
  int rc = p->host->http_request(p->conn, &hr, on_answer, f);
  if (rc != OKE_OK)
    free(f);
  return rc;
}

static void v10_fini(void *state) { free(state); }

/* Every member after fini is a reserved slot for a 1.0 build: zero. */
static const oke_plugin plugin = {
    .abi_major = 1,
    .abi_minor = 0,
    .struct_size = sizeof(oke_plugin),
    .name = "v10",
    .version = "1.0.0",
    .init = v10_init,
    .deliver = v10_deliver,
    .fini = v10_fini,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &plugin; }
