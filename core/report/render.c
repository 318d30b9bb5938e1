/* See render.h. */
#include "report/render.h"
#include <stdlib.h>
int okegw_report_text(const cJSON *report, FILE *out) {
  char *s = cJSON_Print(report);
  int rc = s && fputs(s, out) >= 0 ? 0 : -1;
  free(s);
  return rc;
}
int okegw_report_html(const cJSON *report, FILE *out) { return okegw_report_text(report, out); }
