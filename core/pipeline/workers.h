/* Event loops: [gateway] workers = N.
 *
 * Loop 0 (the main thread) runs the gateway as with one loop, and owns what
 * is one for the whole process: the store and its writer, the outbox (so
 * order per resource, delivery_concurrency and outbox_max_open hold across
 * loops), metrics, the token issuer, the control socket, the admin
 * listener and the audit prune. Loops 1 .. N-1 are threads, each with a
 * gateway of its own (request.h): listeners on the same addresses with
 * SO_REUSEPORT (the kernel spreads new connections over the loops), a TLS
 * context, an HTTP client, a JWKS source, a store port and a generation of
 * its own: its own connector instances (plugin init runs once per loop)
 * and Lua states. Every stage of a request runs on the loop that accepted
 * it, except the outbox.
 *
 * Loops talk by messages (a list under a mutex and a uv_async that wakes
 * the loop):
 *  - a worker's push goes to loop 0's outbox, and its result comes back;
 *  - a reload is built by every loop, then installed by all or dropped by
 *    all (two steps);
 *  - a stop drains every loop before loop 0 closes the outbox and the
 *    store.
 * Loop 0 waits for the workers (blocks) only at start and in the two steps
 * of a reload, never for traffic. */
#ifndef OKEGW_WORKERS_H
#define OKEGW_WORKERS_H

#include "pipeline/request.h"

typedef struct okegw_workers okegw_workers;
typedef struct okegw_worker okegw_worker;

/* The event loops conf asks for: workers, or with 0 one per CPU okegw may
 * run on (at most 64). */
int okegw_workers_count(const okegw_conf *conf);

/* Starts loops 1 .. n-1 for g (loop 0, listening already, with
 * SO_REUSEPORT), and returns once each has started or failed. 0, or -1
 * when one did not start (logged): g must then be stopped, which stops the
 * others too. */
int okegw_workers_start(okegw_gateway *g, int n);

/* A reload, step 1: every worker builds a generation for the configuration
 * of gen (loop 0's, built and not installed). 0 when every one did; -1
 * with their problems in report when one did not (none of them is kept). */
int okegw_workers_prepare(okegw_gateway *g, const okegw_gen *gen, okegw_diag *report);
/* Step 2: every worker installs what step 1 built (commit), or drops it.
 * Returns once every worker did. */
void okegw_workers_finish(okegw_gateway *g, int commit);

/* A stop: every worker drains its requests and ends; done(g) then runs on
 * loop 0 (at once when there is no worker left). */
void okegw_workers_stop(okegw_gateway *g, void (*done)(okegw_gateway *g));
/* After done: joins the threads and frees them. */
void okegw_workers_free(okegw_gateway *g);

/* 1 .. n-1 for a worker loop's gateway, 0 for loop 0's. */
int okegw_worker_index(const okegw_gateway *g);

/* On a worker's loop, its gateway's last step at a stop: once the results
 * of its pushes at loop 0 are all back, closes its store port; done(arg)
 * runs after. */
void okegw_worker_release(okegw_gateway *g, void (*done)(void *), void *arg);

/* The outbox from any loop. okegw_gateway_push is okegw_outbox_push (the
 * connector is the calling loop's instance); on a worker it always
 * returns 0 and a refusal (OKEGW_OUTBOX_FULL, or -1 not stored) comes to
 * cb as r->rc. `parsed` is read on loop 0 until cb runs. */
int okegw_gateway_push(okegw_gateway *g, okegw_connector *conn, const okegw_push *p,
                       const cJSON *parsed, okegw_push_cb cb, void *ud);
/* How many more pushes before outbox_max_open; 0 when full. */
long okegw_gateway_outbox_room(const okegw_gateway *g);
int okegw_gateway_outbox_full(const okegw_gateway *g);
size_t okegw_gateway_outbox_depth(const okegw_gateway *g);

#endif
