/* Prometheus metrics (text exposition format 0.0.4), served as /metrics on
 * the admin listener (see ops/admin_server.h).
 *
 * The gateway owns one registry (okegw_gateway.metrics). Each fact is
 * counted by the stage that owns it (the answer stage counts requests, the
 * outbox deliveries, the connector host exchanges and mappings, ...) on
 * whichever loop thread (worker) handled it. The registry has one mutex:
 * every update and every read of it and of its connector slots (making a
 * slot, counters, minute buckets, histograms, violations) takes it, so any
 * thread may update, and any thread may scrape (okegw_metrics_render,
 * okegw_metrics_recent, okegw_metrics_traffic_json). Two counters are
 * atomics instead: the store's commit latency, observed on the store
 * thread, and the TLS handshake counts http/server.c adds to. Counters per
 * connector live in a slot per connector *name* that the connector
 * instance points at (okegw_connector.metrics), so a reload keeps them and
 * an increment is a pointer and the lock away. Gauges (outbox depth, phase,
 * health) are read from their owners when scraped, outside the lock.
 * Every label value comes from a finite set: connector names of the
 * configuration, interaction ids, rule names, fixed outcomes.
 *
 * A slot also keeps its connector's last hour in minute buckets (wall-clock
 * minutes), with two counts a minute because two questions are asked:
 *  - traffic (the admin API's connector list and the dashboard's chart): the
 *    callers' requests the connector carried (or, carrying none, made) and
 *    the outbox's delivery attempts to it; an error is a 5xx answer or a
 *    refusal (401, 403, 429);
 *  - exchanges (the live error rate of /readyz, okegw_connector_up): what
 *    the connector host exchanged with the peer; a failure is a 5xx answer
 *    (okegw's own 502/504 too) or none (status 0).
 * The 5-minute window of the second is the last 5 buckets. Kept in memory:
 * a restart starts empty (the audit trail in the store is the lasting
 * record). */
#ifndef OKEGW_OPS_METRICS_H
#define OKEGW_OPS_METRICS_H

#include "base/util.h"
#include "ops/admin_server.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct okegw_metrics okegw_metrics;
/* One connector name's counters; lives as long as the registry. */
typedef struct okegw_conn_metrics okegw_conn_metrics;

/* A histogram over a fixed set of bucket bounds (seconds). counts[i] counts
 * the observations in bucket i alone (cumulated when printed); sum in
 * nanoseconds so that it can be added to atomically. */
#define OKEGW_HIST_BUCKETS 12
typedef struct okegw_hist {
  uint64_t counts[OKEGW_HIST_BUCKETS + 1]; /* the last one: above every bound */
  uint64_t count;
  uint64_t sum_ns;
} okegw_hist;

/* The minute buckets a connector slot keeps: the last hour. */
#define OKEGW_METRICS_MINUTES 60

/* NULL when out of memory (the gateway then runs without metrics). */
okegw_metrics *okegw_metrics_new(void);
/* Tests: the wall clock (Unix ms) the minute buckets follow instead of
 * okegw_wall_ms (NULL: okegw_wall_ms again). */
void okegw_metrics_set_clock(okegw_metrics *m, long long (*wall_ms)(void));
void okegw_metrics_free(okegw_metrics *m);

/* The slot of a connector name, made on first ask; NULL when m is NULL or
 * out of memory (every function below takes NULL and then does nothing). */
okegw_conn_metrics *okegw_metrics_connector(okegw_metrics *m, const char *name);

/* ---- instrumentation points --------------------------------------------- */

/* The answer stage: a caller's request answered (cm NULL: no connector
 * carried it; interaction 0: none was settled). One with an interaction
 * (an audited exchange) is also traffic of cm or, when no connector
 * carried it, of the caller (its slot; NULL: anonymous, not counted). */
void okegw_metrics_request(okegw_metrics *m, okegw_conn_metrics *cm, okegw_conn_metrics *caller,
                           int interaction, int status, double seconds);
/* The connector host: one HTTP request of the connector's plugin to its
 * peer ended (status 0: transport failure or timeout). */
void okegw_metrics_peer_request(okegw_conn_metrics *cm, double seconds);
/* The connector host: one exchange answered (for the live error rate of
 * /readyz: 5xx, including okegw's own 502/504, counts as an error). */
void okegw_metrics_exchange(okegw_conn_metrics *cm, int status);

enum okegw_attempt_outcome {
  OKEGW_ATTEMPT_DELIVERED = 0, /* 2xx */
  OKEGW_ATTEMPT_FAILED,        /* final refusal (4xx, mapping error) */
  OKEGW_ATTEMPT_RETRY,         /* tried again later */
  OKEGW_ATTEMPT_DEAD,          /* out of time: dead-lettered */
  OKEGW_ATTEMPT_OUTCOMES
};
/* The outbox: one delivery attempt ended (DEAD also counts a dead letter)
 * with the peer's status (or okegw's, 0 for none); it is traffic of cm. */
void okegw_metrics_delivery_attempt(okegw_conn_metrics *cm, enum okegw_attempt_outcome o,
                                    int status);

/* The gateway and answer stages: one profile violation (rule "R10", side
 * "request" or "answer"). rule must be a static string. */
void okegw_metrics_violation(okegw_metrics *m, int interaction, const char *rule, const char *side);
/* The connector host: a Lua mapping failed; killed when it was stopped by
 * its memory, instruction or time budget. */
void okegw_metrics_mapping_error(okegw_conn_metrics *cm, int interaction, int killed);
/* The OAuth client: a token request ended. */
void okegw_metrics_token_refresh(okegw_conn_metrics *cm, int ok);

/* The answer stage: event loop `loop` (0 .. OKEGW_METRICS_LOOPS - 1)
 * answered a caller's request. Counted with an atomic. */
#define OKEGW_METRICS_LOOPS 64
void okegw_metrics_loop_request(okegw_metrics *m, int loop);
/* How many loops run (a row each in the exposition, 0 included). */
void okegw_metrics_set_loops(okegw_metrics *m, int n);

/* The TLS listener's handshake counters: [0] ok, [1] failed, incremented
 * by http/server.c with __atomic_fetch_add (relaxed), from any thread.
 * listener is a static string ("listen_tls"). */
uint64_t *okegw_metrics_tls_handshakes(okegw_metrics *m, const char *listener);
/* The store's commit latency; the store thread observes it with
 * okegw_hist_observe_atomic. */
okegw_hist *okegw_metrics_store_commit(okegw_metrics *m);
void okegw_hist_observe_atomic(okegw_hist *h, double seconds);

/* ---- read back ------------------------------------------------------------ */

/* The last five minutes (this minute and the 4 before) of a connector's
 * exchanges and how many failed (5xx or no answer); 0 and 0 for NULL. */
void okegw_metrics_recent(const okegw_conn_metrics *cm, unsigned long *requests,
                          unsigned long *errors);

/* Adds to o a connector's traffic of the last hour: "requests" and
 * "errors" (5xx and refusals: 401, 403, 429) in total and "perMinute":
 * [{"minute": RFC 3339, "requests", "errors"}, ...], OKEGW_METRICS_MINUTES
 * entries oldest first, ending with the current minute (all 0 for cm
 * NULL). 0, or -1 out of memory. */
int okegw_metrics_traffic_json(const okegw_conn_metrics *cm, cJSON *o);

/* Appends s to out as a label value of the text format: backslash, double
 * quote and newline escaped. Returns 0 or -1 (out of memory). */
int okegw_metrics_escape(okegw_buf *out, const char *s);

/* The exposition of everything (the body of /metrics) into out. */
int okegw_metrics_render(okegw_gateway *g, okegw_buf *out);

void okegw_metrics_serve(okegw_gateway *g, okegw_req *req, const char *rest);

#endif
