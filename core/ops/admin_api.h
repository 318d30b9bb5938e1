/* The admin listener's admin api (see ops/admin_server.h). */
#ifndef OKEGW_OPS_ADMIN_API_H
#define OKEGW_OPS_ADMIN_API_H

#include "ops/admin_server.h"

void okegw_admin_api_serve(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
