/* Inside the store (core/store only): the handle and the SQL helpers that
 * store.c (the thread, routes), store_deliveries.c and store_audit.c share.
 * Everything here runs on the thread that owns the connection: the store
 * thread, or the caller of a direct function. Returns follow store.h. */
#ifndef OKEGW_STORE_DB_H
#define OKEGW_STORE_DB_H

#include "store/store.h"

#include <libpq-fe.h>
#include <sqlite3.h>

typedef struct okegw_store_job okegw_store_job;

typedef struct okegw_store_queue {
  okegw_store_job *head, *tail;
} okegw_store_queue;

/* Where finished jobs go back to (store.h: ports). The store thread and the
 * reader fill done under the store's mu; the port's loop empties it. */
struct okegw_store_port {
  okegw_store *store;
  okegw_store_queue done;
  uv_async_t async;
  int signalled; /* under mu: this batch already woke it */
  int closed;    /* under mu: jobs handed back from now on are dropped */
  void (*closed_cb)(void *);
  void *closed_arg;
  okegw_store_port *next; /* the store's list of open ports (under mu) */
};

struct okegw_store {
  uv_loop_t *loop; /* NULL: opened direct, no thread */
  sqlite3 *db;     /* NULL with PostgreSQL */
  /* PostgreSQL (store = postgresql://..., pg_db.h): the writer's
   * connection, NULL with SQLite; its URI to connect again; pg_broken: the
   * connection broke, the next batch connects again first */
  PGconn *pg;
  char *pg_uri;
  int pg_broken;
  uint64_t pg_retry_at; /* uv_hrtime: no new connection before then */
  /* Leases (pg_leases.c): this instance's name in okegw_leases (host,
   * pid and a random part: a restarted instance is another owner), how long
   * a lease lasts, and until when (uv_hrtime ms) the leases surely hold:
   * the start of the last renewal that worked plus the lease. lease_until
   * and lease_lapses (renewals that came after lease_until) are written by
   * the store thread and read on the loop: __atomic. */
  /* The statements prepared on the writer's session (pg_db.c): each SQL
   * text (a copy) once per session, as okegw_1, okegw_2, ...; forgotten with
   * the session (okegw_pg__forget_prepared). */
  struct okegw_pg_prepared {
    char *sql;
    unsigned name;
  } pg_prep[128];
  unsigned pg_nprep;
  char lease_owner[128];
  /* the connectors the gateway carries as a PostgreSQL text array
   * ({"a","b"}): leases are taken over for their resources only; under mu;
   * NULL: all */
  char *carried;
  long long lease_ttl_ms;
  long long lease_until;
  unsigned lease_lapses;
  sqlite3_stmt *st_get, *st_upsert, *st_confirm, *st_audit;
  /* prepared on first use */
  sqlite3_stmt *st_dadd, *st_dupdate, *st_dget, *st_dget_body;
  sqlite3_stmt *st_begin, *st_commit;
  sqlite3_stmt *st_claim, *st_facts, *st_unlink;
  sqlite3_stmt *st_phase_add;
  char *path;                     /* the file, for the identity check */
  unsigned long long dev, ino;    /* the file opened */
  int healthy;                    /* read on the loop with __atomic_load_n */
  struct okegw_hist *commit_hist; /* set on the loop, read here: __atomic */
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cond;
  okegw_store_queue todo;
  okegw_store_port port;   /* the opening loop's (store.h: ports) */
  okegw_store_port *ports; /* the other loops' open ports, under mu */
  int stopping;
  /* store thread only: a transaction holds deferred writes (store.c
   * job_deferrable) until tx_deadline (uv_hrtime) */
  int tx_open;
  uint64_t tx_deadline;
  /* The reader: route lookups on a connection of their own, on a thread of
   * their own, so they never wait behind a group commit, its fsync or a
   * checkpoint (WAL readers do not block on the writer). A lookup goes
   * there only while no route write is pending (route_writes, under mu:
   * submitted and not yet committed), so it always sees what was written
   * before it was asked. */
  sqlite3 *rdb; /* NULL: lookups stay with the writer */
  sqlite3_stmt *rst_get;
  /* PostgreSQL: the reader's own session (its pg and prepared statements;
   * path borrowed from the store's; NULL: none), and when it may connect
   * again after it broke (uv_hrtime) */
  okegw_store *rpg;
  uint64_t rpg_retry_at;
  uv_thread_t rthread;
  uv_cond_t rcond;
  okegw_store_queue rtodo;
  long route_writes;    /* under mu */
  long tx_route_writes; /* store thread: those in the open transaction */
  void (*closed)(void *);
  void *closed_arg;
};

/* A statement prepared once per connection into *slot (reset, bindings
 * cleared); NULL when it does not prepare (logged). */
sqlite3_stmt *okegw_store__stmt(okegw_store *s, sqlite3_stmt **slot, const char *sql);
/* NULL binds SQL NULL; ms 0 binds NULL (no time). */
void okegw_store__bind_text(sqlite3_stmt *st, int i, const char *v);
void okegw_store__bind_ms(sqlite3_stmt *st, int i, long long ms);
/* A message "what: SQLite's words" for *err (err may be NULL). */
void okegw_store__err(okegw_store *s, char **err, const char *what);

/* ---- deliveries (store_deliveries.c, pg_deliveries.c) ---- */
/* The one column list of a delivery row, for both backends' readers, in
 * their order; `body` follows when a read wants it. */
#define DELIVERY_COLUMNS                                                                           \
  "id, created_ms, updated_ms, since_ms, next_ms, delivered_ms, keep_until_ms, connector, "        \
  "caller, interaction, resource, resource_id, request_id, method, path, query, "                  \
  "content_type, body_sha256, last_error, state, attempts, last_status, requeue, "                 \
  "body IS NOT NULL"
#define DELIVERY_NCOLUMNS 24
/* The ended states (delivered, failed, dropped) as SQL: the predicate of
 * the index deliveries_ended, and of every statement that should use it.
 * Not an IN list of three: see migrate_5 in store.c. */
#define OKEGW_DLV_ENDED_SQL "state NOT IN ('pending', 'dead')"

/* Inserts r as pending; its id in *id. OK, or (PostgreSQL, after the
 * lease was taken: lease is an OKEGW_LEASE_* of pg_db.h) OKEGW_STORE_HANDED:
 * marked for the resource's holder, or to go behind older ones
 * (pg_leases.c). SQLite: lease is 0. */
int okegw_store__delivery_add(okegw_store *s, const okegw_delivery_rec *r, int lease,
                              long long *id);
/* The UPDATE of okegw_store_delivery_update. NOTFOUND (PostgreSQL):
 * another instance holds the resource's lease now; nothing was written. */
int okegw_store__delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body);
/* Open deliveries (requeued = 0) or those an operator changed (requeued =
 * 1, their mark cleared), oldest first, with bodies, into a new array. */
int okegw_store__deliveries_read(okegw_store *s, int requeued, okegw_delivery_rec **recs,
                                 size_t *n);
int okegw_store__delivery_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out);
int okegw_store__delivery_prune(okegw_store *s, long long ended_before_ms);
/* An operator's retry (retry set) or drop of the delivery read as r, at
 * now: fills c's was, body_kept and kept_until_ms, and returns
 * OKEGW_DLV_CHANGE_DONE when it may be changed (the caller writes it), else
 * the outcome that refuses it. The one rule of both backends. */
okegw_dlv_change_outcome okegw_store__change_check(int retry, long long now,
                                                   const okegw_delivery_rec *r,
                                                   okegw_dlv_change *c);

/* ---- the audit trail (store_audit.c) ---- */
/* The text members of okegw_audit_rec, in its order (request_id ...
 * body_sha256, event, rules, phase, differences, violations,
 * mapping_error). */
#define OKEGW_AUDIT_TEXTS 15
/* Appends a row; a[] in okegw_audit_rec order, `at` RFC 3339. */
int okegw_store__audit_add(okegw_store *s, const char *at, char *const a[OKEGW_AUDIT_TEXTS],
                           int status, double latency_ms, long long delivery_id, int attempts);
/* Deletes the rows whose `at` (RFC 3339) is before `before`. */
int okegw_store__audit_prune(okegw_store *s, const char *before);

/* ---- acceptance runs (store_accept.c, pg_accept.c) ---- */
/* Adds name: RFC 3339 UTC with milliseconds of ms, or null when ms <= 0;
 * 0 when out of memory. */
int okegw_store__json_time(cJSON *o, const char *name, long long ms);

/* ---- phase history (store_phases.c) ---- */
/* Inserts the n rows (connector and to set; at_ms 0 = now, then filled in)
 * under a savepoint: all of them or, on ERROR, none; fills in their ids. */
int okegw_store__phases_add(okegw_store *s, okegw_phase_rec *recs, size_t n);
/* The last row per connector, by connector name, into a new array. */
int okegw_store__phases_last(okegw_store *s, okegw_phase_rec **recs, size_t *n);

#endif
