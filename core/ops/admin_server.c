/* The admin listener (see admin_server.h). */
#include "ops/admin_server.h"
#include "base/log.h"
#include "pipeline/request.h"
#include "base/util.h"
#include "ops/admin_api.h"
#include "ops/dashboard.h"
#include "ops/health.h"
#include "ops/metrics.h"
#include "pipeline/generation.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct okegw_admin_server {
  okegw_gateway *g;
  okegw_server *server;
};

/* The route table: a path equal to an exact route, or starting with a
 * prefix route, goes to its module. Anything else is 404. */
static const struct {
  const char *path;
  int prefix;
  /* answered without the admin token: liveness for a process supervisor;
   * the dashboard's own files, which hold no data (the page asks for the
   * token when the API answers 401) */
  int open;
  okegw_admin_handler handler;
} routes[] = {
    {"/healthz", 0, 1, okegw_health_serve_alive}, {"/readyz", 0, 0, okegw_health_serve_ready},
    {"/metrics", 0, 0, okegw_metrics_serve},      {"/admin/api/", 1, 0, okegw_admin_api_serve},
    {"/admin/", 1, 1, okegw_dashboard_serve},
};

static const char *header(const okegw_req *req, const char *name) {
  for (size_t i = 0; i < req->nheaders; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}

/* The admin token in constant time; 1 when none is configured. */
static int authorised(const okegw_gateway *g, const okegw_req *req) {
  const char *want = g->gen ? g->gen->conf->admin_token : NULL;
  if (!want)
    return 1;
  const char *auth = header(req, "Authorization");
  if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
    return 0;
  const char *got = auth + 7;
  size_t n = strlen(want);
  return strlen(got) == n && CRYPTO_memcmp(got, want, n) == 0;
}

static void handle(okegw_req *req, void *ud) {
  okegw_admin_server *a = ud;
  okegw_gateway *g = a->g;
  const char *path = req->path;
  if (strcmp(path, "/admin") == 0) { /* the dashboard's address as people type it */
    okegw_respond(req, 308, "text/plain", "", 0, "Location: /admin/\r\n");
    return;
  }
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    size_t n = strlen(routes[i].path);
    if (routes[i].prefix ? strncmp(path, routes[i].path, n) != 0
                         : strcmp(path, routes[i].path) != 0)
      continue;
    if (!routes[i].open && !authorised(g, req)) {
      okegw_respond_problem(req, 401, "Unauthorized",
                            "the admin listener asks for its admin_token: Authorization: Bearer "
                            "<token>");
      return;
    }
    if (!g->gen) {
      okegw_respond_problem(req, 503, "Service Unavailable", "the gateway is shutting down");
      return;
    }
    routes[i].handler(g, req, path + n);
    return;
  }
  okegw_respond_problem(req, 404, "Not Found",
                        "the admin listener serves /metrics, /healthz, /readyz, /admin/api/ and "
                        "the dashboard at /admin/");
}

int okegw_admin_server_start(okegw_gateway *g, const okegw_conf *conf, okegw_admin_server **out) {
  *out = NULL;
  if (!conf->admin_listen_host)
    return 0;
  okegw_admin_server *a = calloc(1, sizeof *a);
  if (!a)
    return -1;
  a->g = g;
  okegw_server_opts so = {.host = conf->admin_listen_host,
                          .port = conf->admin_listen_port,
                          .max_header_bytes = conf->max_header_bytes,
                          .max_body_bytes = 64 * 1024,
                          .idle_timeout_ms = conf->idle_timeout_ms,
                          .header_timeout_ms = conf->header_timeout_ms,
                          .body_min_rate_bytes = conf->body_min_rate_bytes,
                          .send_timeout_ms = conf->send_timeout_ms,
                          .max_connections = 64,
                          .handler = handle,
                          .ud = a};
  int rc = okegw_server_start(g->loop, &so, &a->server);
  if (rc < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot listen on %s:%d (admin_listen): %s",
              conf->admin_listen_host, conf->admin_listen_port, uv_strerror(rc));
    free(a);
    return -1;
  }
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.addr = conf->admin_listen_host;
  f.port = okegw_server_port(a->server);
  okegw_log(OKEGW_LOG_INFO, &f, "listening (admin)");
  *out = a;
  return 0;
}

int okegw_admin_server_port(const okegw_admin_server *a) {
  return a ? okegw_server_port(a->server) : 0;
}

void okegw_admin_server_drain(okegw_admin_server *a, void (*done)(void *), void *arg) {
  okegw_server_drain(a->server, done, arg);
}

void okegw_admin_server_free(okegw_admin_server *a) {
  if (!a)
    return;
  okegw_server_free(a->server);
  free(a);
}
