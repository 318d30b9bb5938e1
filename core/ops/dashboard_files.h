/* The dashboard's files (dashboard/ in the source tree), built into the
 * binary by cmake/EmbedFiles.cmake so an installed okegw needs nothing
 * beside it and serves exactly the page it was built with. */
#ifndef OKEGW_OPS_DASHBOARD_FILES_H
#define OKEGW_OPS_DASHBOARD_FILES_H

#include <stddef.h>

typedef struct okegw_dashboard_file {
  const char *name; /* "index.html", relative to dashboard/; NULL ends the table */
  const unsigned char *data;
  size_t len;
  const char *etag; /* "\"<sha-256 hex>\"" */
} okegw_dashboard_file;

extern const okegw_dashboard_file okegw_dashboard_files[];

#endif
