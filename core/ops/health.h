/* /healthz and /readyz on the admin listener (see ops/admin_server.h).
 * /healthz: the process is alive and its loop answers. /readyz: it can take
 * work: the store takes writes, a configuration is loaded, the listeners
 * are up; per connector its health (the plugin's health callback, live
 * error rates) is reported without making the gateway unready: one
 * supplier down is that supplier's problem, not the school's gateway's. */
#ifndef OKEGW_OPS_HEALTH_H
#define OKEGW_OPS_HEALTH_H

#include "connector/plugin_host.h"
#include "ops/admin_server.h"

/* A connector's health as /readyz and okegw_connector_up report it. */
typedef struct okegw_conn_health {
  /* "down": not started, its plugin's last health check failed (or its
   * OAuth token endpoint fails), or at least half of at least
   * OKEGW_HEALTH_MIN_REQUESTS exchanges of the last 5 minutes failed (5xx,
   * no answer); "up": checked healthy, or carrying traffic well; "unknown":
   * neither checked yet nor any traffic */
  const char *health;
  char reason[256]; /* why down (or how it is known), "" when nothing to say */
  unsigned long requests_5m, errors_5m;
} okegw_conn_health;

#define OKEGW_HEALTH_MIN_REQUESTS 5

void okegw_health_connector(const okegw_connector *c, okegw_conn_health *out);

void okegw_health_serve_alive(okegw_gateway *g, okegw_req *req, const char *rest);
void okegw_health_serve_ready(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
