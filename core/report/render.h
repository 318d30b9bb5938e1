/* The acceptance report (the JSON document of `okegw report --format json`,
 * built by report/evidence.c) rendered for people: plain text for a
 * terminal, and one self-contained, printable HTML page for the exam
 * committee that decides go or no-go per supplier.
 *
 * Both are pure functions of the document: no store access, no allocation
 * that outlives the call. A member that is missing, null or of the wrong
 * type reads as "none", so a partial document still renders (a report that
 * cannot be shown helps nobody). Every string of the document is treated
 * as hostile: escaped in HTML, control characters replaced in text.
 * Both return 0, or -1 on a write error or when out of memory. */
#ifndef OKEGW_REPORT_RENDER_H
#define OKEGW_REPORT_RENDER_H

#include <cjson/cJSON.h>
#include <stdio.h>

/* Aligned columns, "-" for none. */
int okegw_report_text(const cJSON *report, FILE *out);
/* One HTML5 page: inline CSS and SVG only, no scripts, no external
 * references; A4 print styles. */
int okegw_report_html(const cJSON *report, FILE *out);

#endif
