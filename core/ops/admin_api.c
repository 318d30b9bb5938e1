/* See admin_api.h. */
#include "ops/admin_api.h"

void okegw_admin_api_serve(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)g;
  (void)rest;
  okegw_respond_problem(req, 501, "Not Implemented", "not built yet");
}
