/* See metrics.h. */
#include "ops/metrics.h"

void okegw_metrics_serve(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)g;
  (void)rest;
  okegw_respond_problem(req, 501, "Not Implemented", "not built yet");
}
