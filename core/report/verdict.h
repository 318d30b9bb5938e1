/* The verdict on a connector's acceptance evidence: its accept_* criteria
 * (plugins.conf) weighed against the document evidence.c gathered, like a
 * canary analysis. GO when every criterion passed, NO-GO when one failed
 * (each failed one with the evidence behind it), INCONCLUSIVE when none
 * failed but there is not enough evidence yet. A verdict advises the people
 * who decide: okegw never changes a phase by itself. */
#ifndef OKEGW_VERDICT_H
#define OKEGW_VERDICT_H

#include "base/conf.h"

#include <cjson/cJSON.h>

/* Adds "verdict", "reasons" and "criteria" to doc (see
 * docs/acceptance-report.md). 0, or -1 when out of memory (doc may then
 * hold part of them). */
int okegw_verdict_judge(cJSON *doc, const okegw_conf_connector *cc);

#endif
