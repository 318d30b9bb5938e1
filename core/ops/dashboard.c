/* See dashboard.h. */
#include "ops/dashboard.h"
#include "base/util.h"
#include "ops/dashboard_files.h"

#include <stdio.h>
#include <string.h>

static const char *content_type(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot && strcmp(dot, ".html") == 0)
    return "text/html; charset=utf-8";
  if (dot && strcmp(dot, ".js") == 0)
    return "text/javascript; charset=utf-8";
  if (dot && strcmp(dot, ".css") == 0)
    return "text/css; charset=utf-8";
  return "application/octet-stream";
}

/* The page only talks to its own origin; the acceptance report it opens
 * (a blob of the page's origin) carries its own inline style. */
#define SECURITY_HEADERS                                                                           \
  "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self' "              \
  "'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "      \
  "base-uri 'none'; form-action 'none'\r\n"                                                        \
  "X-Content-Type-Options: nosniff\r\n"                                                            \
  "Referrer-Policy: no-referrer\r\n"                                                               \
  "X-Frame-Options: DENY\r\n"

void okegw_dashboard_serve(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)g;
  if (strcmp(req->method, "GET") != 0) {
    okegw_respond_problem(req, 405, "Method Not Allowed", "the dashboard's files take GET");
    return;
  }
  const char *name = *rest ? rest : "index.html";
  const okegw_dashboard_file *f = okegw_dashboard_files;
  while (f->name && strcmp(f->name, name) != 0)
    f++;
  if (!f->name) {
    okegw_respond_problem(req, 404, "Not Found",
                          "the dashboard is at /admin/ and its API under /admin/api/");
    return;
  }
  /* revalidated on every load (no-cache), so a new okegw never runs with
   * an old page; unchanged files cost a 304 */
  char headers[640];
  snprintf(headers, sizeof headers, "Cache-Control: no-cache\r\nETag: %s\r\n" SECURITY_HEADERS,
           f->etag);
  const char *inm = okegw_req_header(req, "If-None-Match");
  if (inm && strstr(inm, f->etag)) {
    okegw_respond(req, 304, NULL, "", 0, headers);
    return;
  }
  okegw_respond(req, 200, content_type(f->name), (const char *)f->data, f->len, headers);
}
