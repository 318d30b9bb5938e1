/* The admin listener's metrics (see ops/admin_server.h). */
#ifndef OKEGW_OPS_METRICS_H
#define OKEGW_OPS_METRICS_H

#include "ops/admin_server.h"

void okegw_metrics_serve(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
