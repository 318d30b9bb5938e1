/* Renders the acceptance report document as text or one HTML page
 * (placeholder: both print the JSON document until the renderers land). */
#ifndef OKEGW_RENDER_H
#define OKEGW_RENDER_H
#include <cjson/cJSON.h>
#include <stdio.h>
int okegw_report_text(const cJSON *report, FILE *out);
int okegw_report_html(const cJSON *report, FILE *out);
#endif
