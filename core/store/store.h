/* The embedded store: one SQLite file (WAL) owned by a dedicated thread.
 * The loop thread never touches SQLite after startup: it queues jobs, the
 * store thread runs every queued job in one transaction (group commit) and
 * hands the results back through a uv_async. */
#ifndef OKEGW_STORE_H
#define OKEGW_STORE_H

#include <stddef.h>
#include <uv.h>

typedef struct okegw_store okegw_store;

#define OKEGW_NAME_MAX 64 /* connector names, incl. NUL */

enum { OKEGW_STORE_OK = 0, OKEGW_STORE_NOTFOUND = 1, OKEGW_STORE_ERROR = -1 };

/* What a routing job found. */
typedef struct okegw_route {
  int rc;                              /* OKEGW_STORE_* */
  int existed;                         /* the id was already routed */
  char connector[OKEGW_NAME_MAX];      /* the id's connector */
  char prev_connector[OKEGW_NAME_MAX]; /* bind: the id's connector before, if existed */
  char parent[64];                     /* lookup: the id it was bound under, "" if none */
  int confirmed;                       /* lookup: the peer accepted it (okegw_store_confirm) */
} okegw_route;

typedef void (*okegw_route_cb)(void *ud, const okegw_route *r);

/* Opens (creating the schema when new) and starts the store thread. sync
 * is SQLite's synchronous setting for the commits: "full" (each group commit
 * is on disk before its callbacks run: survives a power cut) or "normal"
 * (survives a crash of okegw, not of the machine). On failure returns -1
 * with a message in *err (free it). */
int okegw_store_open(uv_loop_t *loop, const char *path, const char *sync, okegw_store **out,
                     char **err);
/* Finishes queued jobs, stops the thread, closes the database. `done` runs
 * on the loop once everything is closed. */
void okegw_store_close(okegw_store *s, void (*done)(void *), void *arg);

/* kind is "component", "offering" or "association". */
int okegw_store_lookup(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                       void *ud);
/* Routes (kind, id) to the connector that owns (parent_kind, parent_id) and
 * records it durably before cb runs. r->connector is the parent's connector
 * (NOTFOUND when the parent is unknown); r->existed/prev_connector tell
 * whether the id was routed before and where. A known id is re-routed only
 * when `rebind` is set. */
int okegw_store_bind(okegw_store *s, const char *kind, const char *id, const char *parent_kind,
                     const char *parent_id, int rebind, okegw_route_cb cb, void *ud);
/* Marks (kind, id) as accepted by its peer; a bound id starts unconfirmed.
 * cb may be NULL. */
int okegw_store_confirm(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                        void *ud);
/* One exchange for the audit trail (aantoonbaarheid). No bodies: only the
 * SHA-256 of the request body. Strings may be NULL; all are copied. */
typedef struct okegw_audit_rec {
  const char *request_id;
  const char *interaction; /* "flow3.patch_association" */
  const char *caller;      /* connector whose credential was presented */
  const char *connector;   /* the connector that carried it */
  const char *method;
  const char *path;
  const char *resource_id; /* the OKE id it was about */
  const char *mapping;     /* content hash of the Lua mappings used */
  const char *body_sha256; /* of the request body as received */
  const char *event;       /* "request" (a caller's exchange) or "delivery" (an attempt) */
  int status;
  double latency_ms;
  long long delivery_id; /* the outbox delivery it was, 0 = none */
  int attempts;          /* delivery: which attempt this was */
} okegw_audit_rec;

/* Appends an audit row (written with the next group commit). */
int okegw_store_audit(okegw_store *s, const okegw_audit_rec *r);

/* ---- the outbox ---------------------------------------------------------- */

/* One row of the deliveries table (see the schema in store.c). Times are
 * Unix milliseconds, 0 = none. Strings are NUL-terminated and owned by the
 * record (okegw_delivery_rec_free), except where a function says it
 * borrows them. */
typedef struct okegw_delivery_rec {
  long long id;
  long long created_ms, updated_ms, since_ms, next_ms, delivered_ms, keep_until_ms;
  char *connector, *caller, *interaction, *resource, *resource_id, *request_id;
  char *method, *path, *query, *content_type, *body_sha256, *last_error;
  char *body; /* NULL once it is not kept */
  size_t body_len;
  char state[12]; /* pending | delivered | failed | dead | dropped */
  int attempts, last_status;
} okegw_delivery_rec;

void okegw_delivery_rec_free(okegw_delivery_rec *r);

/* Results of delivery jobs. `recs` (n of them) belong to the callback, which
 * frees each with okegw_delivery_rec_free and the array with free(). */
typedef void (*okegw_delivery_cb)(void *ud, int rc, long long id, okegw_delivery_rec *recs,
                                  size_t n);

/* Inserts r as a new pending delivery; cb gets its id once it is durable.
 * r is borrowed: it must stay unchanged until cb runs. */
int okegw_store_delivery_add(okegw_store *s, const okegw_delivery_rec *r, okegw_delivery_cb cb,
                             void *ud);
/* Writes r's state, attempts, next_ms, since_ms, last_status, last_error,
 * delivered_ms and keep_until_ms (updated_ms = now); drops the body when
 * drop_body. r is copied. cb may be NULL. */
int okegw_store_delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body,
                                okegw_delivery_cb cb, void *ud);
/* Every delivery still open (pending or dead), oldest first, with bodies. */
int okegw_store_delivery_load_open(okegw_store *s, okegw_delivery_cb cb, void *ud);
/* Deliveries an operator changed (`okegw deliveries retry|drop`); their
 * mark is cleared in the same transaction. */
int okegw_store_delivery_requeued(okegw_store *s, okegw_delivery_cb cb, void *ud);
/* One delivery by id (without its body); NOTFOUND when there is none. */
int okegw_store_delivery_get(okegw_store *s, long long id, okegw_delivery_cb cb, void *ud);
/* Retention: forgets bodies whose keep_until_ms passed and deletes ended
 * deliveries (delivered, failed, dropped) last changed before
 * ended_before_ms. Pending and dead deliveries are never touched. */
int okegw_store_delivery_prune(okegw_store *s, long long ended_before_ms);

/* Records that `connector` owns every id of `ids` (count n) of `kind`;
 * cb may be NULL. */
int okegw_store_put(okegw_store *s, const char *kind, const char *const *ids, size_t n,
                    const char *connector, okegw_route_cb cb, void *ud);

#endif
