/* The web dashboard at /admin/ (see ops/admin_server.h): index.html, app.js
 * and style.css from dashboard/, built into the binary (dashboard_files.h),
 * served with their content types, an ETag and Cache-Control: no-cache.
 * The files are served without the admin token (they hold no data); the
 * page reads everything through the admin API, which asks for it. */
#ifndef OKEGW_OPS_DASHBOARD_H
#define OKEGW_OPS_DASHBOARD_H

#include "ops/admin_server.h"

void okegw_dashboard_serve(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
