/* See health.h. */
#include "ops/health.h"
#include "delivery/outbox.h"
#include "pipeline/request.h"
#include "store/store.h"

#include <stdio.h>

void okegw_health_serve_alive(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)g;
  (void)rest;
  static const char body[] = "{\"status\":\"alive\"}";
  okegw_respond(req, 200, "application/json", body, sizeof body - 1, NULL);
}

void okegw_health_serve_ready(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)rest;
  int store_ok = okegw_store_healthy(g->store), ok = store_ok && !g->stopping && g->gen;
  char body[192];
  int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"store\":\"%s\",\"outbox\":%zu}",
                   ok ? "ready" : "not ready", store_ok ? "ok" : "failing",
                   okegw_outbox_depth(g->outbox));
  okegw_respond(req, ok ? 200 : 503, "application/json", body, (size_t)n,
                ok ? NULL : "Retry-After: 5\r\n");
}
