/* The admin listener's dashboard (see ops/admin_server.h). */
#ifndef OKEGW_OPS_DASHBOARD_H
#define OKEGW_OPS_DASHBOARD_H

#include "ops/admin_server.h"

void okegw_dashboard_serve(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
