/* The admin listener ([gateway] admin_listen): a second HTTP listener, apart
 * from the OKE one, for the people and tools that run okegw: Prometheus
 * /metrics (ops/metrics.c), /healthz and /readyz (ops/health.c), the admin
 * API under /admin/api/ (ops/admin_api.c) and the dashboard under /admin/
 * (ops/dashboard.c). Every request presents admin_token when one is set.
 * One route table here; each module answers its own paths. */
#ifndef OKEGW_ADMIN_SERVER_H
#define OKEGW_ADMIN_SERVER_H

#include "base/conf.h"
#include "http/server.h"

/* the gateway the listener belongs to (pipeline/request.h) */
typedef struct okegw_gateway okegw_gateway;

typedef struct okegw_admin_server okegw_admin_server;

/* A route's handler: answers req (okegw_respond...) exactly once. rest is
 * the path after the route's prefix. */
typedef void (*okegw_admin_handler)(okegw_gateway *g, okegw_req *req, const char *rest);

/* Listens on conf's admin_listen (nothing when it is unset: *out NULL, 0).
 * Returns 0, or -1 after logging why. */
int okegw_admin_server_start(okegw_gateway *g, const okegw_conf *conf, okegw_admin_server **out);
/* The port it listens on (for admin_listen = HOST:0). */
int okegw_admin_server_port(const okegw_admin_server *a);
/* Stops taking connections; done runs once open requests are answered. */
void okegw_admin_server_drain(okegw_admin_server *a, void (*done)(void *), void *arg);
void okegw_admin_server_free(okegw_admin_server *a);

#endif
