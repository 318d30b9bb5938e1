/* The admin API under /admin/api/ (see ops/admin_server.h): JSON for the
 * dashboard and for tools. connectors (phase, health, traffic of the last
 * hour, mapping hash), deliveries (list, show, retry, drop: the JSON of
 * okegw deliveries), the audit trail newest first, reload, and the
 * acceptance report. Reading the store, and the operator's changes to the
 * outbox, run on a libuv worker thread with their own direct connection to
 * the store (as the okegw commands do; two at a time, the rest wait), never
 * on the loop. Errors are application/problem+json. The endpoints are
 * documented in README.md ("The dashboard and the admin API"). */
#ifndef OKEGW_OPS_ADMIN_API_H
#define OKEGW_OPS_ADMIN_API_H

#include "ops/admin_server.h"

void okegw_admin_api_serve(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
