/* /healthz and /readyz on the admin listener (see ops/admin_server.h).
 * /healthz: the process is alive and its loop answers. /readyz: it can take
 * work: the store takes writes, a configuration is loaded, the listeners
 * are up; per connector its health (the plugin's health callback, live
 * error rates) is reported without making the gateway unready. */
#ifndef OKEGW_OPS_HEALTH_H
#define OKEGW_OPS_HEALTH_H

#include "ops/admin_server.h"

void okegw_health_serve_alive(okegw_gateway *g, okegw_req *req, const char *rest);
void okegw_health_serve_ready(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
