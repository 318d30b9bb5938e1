/* Traffic per connector over the last hour, in minute buckets: what the
 * admin API's connector list and the dashboard's charts show. Fed where an
 * exchange is audited: once per answered request (pipeline/answer.c) and
 * once per delivery attempt of the outbox (delivery/outbox.c), so a
 * supplier that is down shows its failed attempts. Read and written on the
 * loop thread only, so no locking. Kept in memory: a restart starts empty
 * (the audit trail in the store is the lasting record). */
#ifndef OKEGW_OPS_TRAFFIC_H
#define OKEGW_OPS_TRAFFIC_H

#include <cjson/cJSON.h>

#define OKEGW_TRAFFIC_MINUTES 60

/* One answered exchange of `connector` (NULL: not counted) with `status`.
 * Errors are 5xx answers and refusals (401, 403, 429). */
void okegw_traffic_note(const char *connector, int status);

/* Adds to o "requests" and "errors" (totals over the last hour) and
 * "perMinute": [{"minute": RFC 3339, "requests", "errors"}, ...] oldest
 * first, 60 entries ending with the current minute. 0, or -1 out of
 * memory. */
int okegw_traffic_json(const char *connector, cJSON *o);

/* Forgets everything (tests). */
void okegw_traffic_reset(void);

#endif
