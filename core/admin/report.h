/* okegw report: the acceptance evidence on one connector, with its verdict
 * (report/evidence.c, report/verdict.c), printed as text, JSON or one HTML
 * page (report/render.c). Reads the store directly, with or without a
 * running gateway. */
#ifndef OKEGW_ADMIN_REPORT_H
#define OKEGW_ADMIN_REPORT_H

#include "base/conf.h"
#include "store/store.h"

#include <stdio.h>

enum okegw_report_format { OKEGW_REPORT_TEXT = 0, OKEGW_REPORT_JSON, OKEGW_REPORT_HTML };

/* Builds the report on cc from s over the window (since NULL: the
 * connector's accept_window_s before now) and writes it in `format` to
 * out_path (NULL or "-": standard output; a file is written whole or not
 * at all). *verdict (may be NULL) gets "GO", "NO-GO" or "INCONCLUSIVE"
 * (static). Returns 0, or -1 after printing why to stderr. */
int okegw_report_write(okegw_store *s, const okegw_conf_connector *cc, const char *since,
                       enum okegw_report_format format, const char *out_path, const char **verdict);

/* The same report written to `out` (the admin API renders it into memory
 * on a worker thread, so nothing is printed): 0, or -1 with why in *why
 * (free it; NULL when out of memory). */
int okegw_report_stream(okegw_store *s, const okegw_conf_connector *cc, const char *since,
                        enum okegw_report_format format, FILE *out, const char **verdict,
                        char **why);

/* "text", "json", "html" -> format; -1 for another name. */
int okegw_report_format_from_name(const char *name);

/* okegw report -c FILE --connector NAME [--since TIME] [--format text|json|html] [-o FILE]
 * Exit code: 0 (whatever the verdict), 1 when the store cannot be read or
 * the file written, 2 for bad arguments. */
int okegw_admin_report(int argc, char **argv);

#endif
