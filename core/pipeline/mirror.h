/* Mirrors (part of the dispatch stage): a connector in phase shadow with
 * mirror_of = OTHER gets a copy of every request okegw sends to OTHER,
 * mapped with its own scripts. Only OTHER's answer reaches the caller; once
 * both answers are in, where they differ (status, fields by JSON pointer)
 * is logged and audited (event "mirror", phase shadow). Mirrored pushes are
 * outbox deliveries of their own, queued apart from OTHER's (their resource
 * key starts with "mirror:"), so a shadow peer that is down never holds
 * back or delays the live delivery; what they open (return routes, flow 6)
 * is not recorded. */
#ifndef OKEGW_MIRROR_H
#define OKEGW_MIRROR_H

#include "pipeline/request.h"

typedef struct okegw_mirror okegw_mirror;

/* The resource key prefix of a mirrored push. */
#define OKEGW_MIRROR_PREFIX "mirror:"

/* Sends copies of req (as it goes to c->target; push: through the outbox)
 * to the shadow connectors that mirror c->target, and sets c->mirror when
 * there are any. Nothing is answered to the caller here. */
void okegw_mirror_start(okegw_call *c, const oke_request *req, int push);
/* The live answer of c (status 0: none came; body: its parsed body or
 * NULL), handed over once; clears c->mirror. */
void okegw_mirror_live(okegw_call *c, int status, const cJSON *body);

/* The differences between two answers as a JSON array of {"pointer",
 * "change"} ("status", "value", "type", "only live", "only shadow"), at
 * most `max` entries; NULL when they are the same (or out of memory).
 * Exposed for the unit tests. */
char *okegw_mirror_diff(int live_status, const cJSON *live, int shadow_status, const cJSON *shadow,
                        size_t max, size_t *count);

#endif
