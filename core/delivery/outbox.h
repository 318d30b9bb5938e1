/* The outbox: durable delivery of pushes (PUT/PATCH of flows 1-5).
 *
 * A push is a row in the store before its sender hears anything. Delivery
 * runs from there: tried at once; the sender gets the peer's answer when the
 * delivery ends within the connector's delivery_wait_ms, else 202 and the
 * delivery id. Deliveries of one resource (same path at the same connector)
 * leave one at a time in the order received, the next only once the end of
 * the previous one is durable, so a repeat after a crash is never a reorder.
 * Different resources go in parallel, up to delivery_concurrency per
 * connector. 5xx, 408, 425, 429, timeouts and transport errors are retried with
 * exponential backoff and jitter until delivery_max_age_s, then the delivery
 * is dead and holds back later ones of its resource until an operator
 * retries or drops it (`okegw deliveries`). Other 4xx and mapping errors
 * are final (failed).
 *
 * Return codes as in store.h: 0 on success, negative on failure (-1, or
 * OKEGW_OUTBOX_FULL); an rc in a result is an OKEGW_STORE_* code. */
#ifndef OKEGW_OUTBOX_H
#define OKEGW_OUTBOX_H

#include "base/conf.h"
#include "connector/plugin_host.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <uv.h>

typedef struct okegw_outbox okegw_outbox;

/* A push as the gateway hands it over. Strings are copied. */
typedef struct okegw_push {
  int interaction;
  const char *caller;      /* the sender's connector name, NULL = anonymous */
  const char *resource_id; /* the OKE id in the path */
  /* the key its order is kept under (one at a time per key and connector);
   * NULL: the path */
  const char *resource;
  const char *method, *path, *query, *content_type;
  const char *body;
  size_t body_len;
  const char *body_sha256;
  const char *request_id;
} okegw_push;

/* What the sender hears, exactly once. */
typedef struct okegw_push_result {
  int rc;                        /* OKEGW_STORE_OK, or _ERROR: not stored, not accepted */
  long long id;                  /* the delivery id */
  const okegw_answer *answer;    /* ended in time: the peer's answer; NULL: under way */
  const okegw_delivery_rec *rec; /* state, attempts, last status and error, next try */
} okegw_push_result;

typedef void (*okegw_push_cb)(void *ud, const okegw_push_result *r);

/* The most route writes a delivery's end carries. */
#define OKEGW_DELIVERED_WRITES 4

/* Runs when a delivery reached its peer (2xx), before its end is written:
 * what that opens (flow 2 return routes, the person's deelname, who planned
 * it, the resource's facts) goes into `out` (room for
 * OKEGW_DELIVERED_WRITES) and is written in the same transaction as the
 * end, retried with it when that fails. `body` is the delivered body
 * parsed, or NULL. Returns the number of writes. */
typedef size_t (*okegw_delivered_fn)(void *ud, okegw_connector *conn, const okegw_delivery_rec *d,
                                     const cJSON *body, okegw_route_write *out);

/* Starts the outbox over conns and loads what is still open in the store;
 * deliveries start once that is loaded. Returns 0, or -1 when out of
 * memory. */
int okegw_outbox_start(uv_loop_t *loop, okegw_store *store, const okegw_conf *conf,
                       okegw_connector *const *conns, size_t nconns, okegw_delivered_fn delivered,
                       void *ud, okegw_outbox **out);
/* A reload: deliveries go to these instances from now on, matched by
 * connector name (attempts under way end on the instance they started
 * on). A connector no longer there keeps its deliveries waiting; one that
 * appears gets those left in the store. conf and the connectors must stay
 * valid until the next call (or close). */
void okegw_outbox_use(okegw_outbox *ob, const okegw_conf *conf, okegw_connector *const *conns,
                      size_t nconns);
enum { OKEGW_OUTBOX_FULL = -2 };

/* Makes p durable and starts delivering it; cb runs once, later. `parsed`
 * is p->body parsed (or NULL); it is used only before this returns or while
 * cb has not run. Returns -1 (cb will not run) when the store refuses, and
 * OKEGW_OUTBOX_FULL when outbox_max_open pushes are undelivered already. */
int okegw_outbox_push(okegw_outbox *ob, okegw_connector *conn, const okegw_push *p,
                      const cJSON *parsed, okegw_push_cb cb, void *ud);
/* Deliveries held in memory (pending, in flight, dead). */
size_t okegw_outbox_depth(const okegw_outbox *ob);
/* What counts against outbox_max_open: deliveries held and pushes being
 * stored; safe from any loop's thread. A gateway asks through
 * okegw_gateway_outbox_room/full (pipeline/workers.h) before it records
 * anything. */
size_t okegw_outbox_used(const okegw_outbox *ob);
/* Where the deliveries held in memory are, by connector name (for the
 * okegw_outbox_deliveries gauge): queued behind an earlier one of their
 * resource, pending (to be tried), retrying (waiting for their next try),
 * in_flight (an attempt or its end is under way), dead. cb runs once per
 * connector name the outbox knows, with OKEGW_OUTBOX_NSTATES counts. */
enum {
  OKEGW_OUTBOX_QUEUED,
  OKEGW_OUTBOX_PENDING,
  OKEGW_OUTBOX_RETRYING,
  OKEGW_OUTBOX_IN_FLIGHT,
  OKEGW_OUTBOX_DEAD,
  OKEGW_OUTBOX_NSTATES
};
const char *okegw_outbox_state_label(int state);
void okegw_outbox_census(const okegw_outbox *ob,
                         void (*cb)(void *ud, const char *connector, const size_t *counts),
                         void *ud);
/* Stops timers and frees what is idle; attempts in flight end later
 * without touching the store (their deliveries stay pending there). */
void okegw_outbox_close(okegw_outbox *ob);

#endif
