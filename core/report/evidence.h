/* The acceptance evidence on one connector: what the store recorded of its
 * traffic, deliveries, shadow comparisons, acceptance runs and phases,
 * gathered into the report document (docs/acceptance-report.md) that
 * verdict.c judges and render.c prints. Reads the store through its
 * interface only (a store opened with okegw_store_open_direct). */
#ifndef OKEGW_EVIDENCE_H
#define OKEGW_EVIDENCE_H

#include "base/conf.h"
#include "store/store.h"

#include <cjson/cJSON.h>

/* The window of evidence: RFC 3339 UTC times or prefixes of them (as
 * `okegw audit` takes them); until NULL = up to now. */
typedef struct okegw_evidence_window {
  const char *since;
  const char *until;
} okegw_evidence_window;

/* Builds the document for connector cc (its current settings) from the
 * store: every member of the report but verdict, reasons and criteria, plus
 * "deadLetters" (the dead deliveries, at most 10, for the verdict's
 * evidence). *out is the caller's. OKEGW_STORE_OK, or an error with *err. */
int okegw_evidence_gather(okegw_store *s, const okegw_conf_connector *cc,
                          const okegw_evidence_window *w, cJSON **out, char **err);

#endif
