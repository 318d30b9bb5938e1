/* Inside the store (core/store only): the PostgreSQL side's helpers, for
 * the PostgreSQL twins of store.c, store_deliveries.c, store_audit.c,
 * store_phases.c and store_accept.c (pg_*.c). Each store_*.c function that
 * runs SQL starts with `if (s->pg) return okegw_pg__...(...)`, with the
 * same arguments and the same meaning (store_db.h, store.h): the two
 * backends answer alike. Everything here runs on the thread that owns the
 * connection. Values go as text parameters ($1, $2, ...), a body as a
 * binary one (BYTEA); results are read in text format except a body. */
#ifndef OKEGW_PG_DB_H
#define OKEGW_PG_DB_H

#include "store/store_db.h"

#include <libpq-fe.h>

/* Runs sql with n parameters: vals[i] NULL is SQL NULL; lens and fmts may
 * be NULL (all text), else fmts[i] 1 marks a binary value of lens[i]
 * bytes. In the gateway a statement with parameters is prepared once per
 * session and executed by name from then on (parsed and planned once, not
 * at every push). Returns the result when it succeeded (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK; PQclear it), else NULL: the failure is logged, set in
 * *err when err is given ("what: PostgreSQL's words"), and the store is
 * marked for a reconnect when the connection broke. */
PGresult *okegw_pg__run(okegw_store *s, const char *what, const char *sql, int n,
                        const char *const *vals, const int *lens, const int *fmts, char **err);
/* Runs sql without parameters for its effect: OK, or ERROR (as
 * okegw_pg__run). */
int okegw_pg__exec(okegw_store *s, const char *what, const char *sql, char **err);
/* Replaces *err (err may be NULL) with a copy of msg. */
void okegw_pg__set_err(char **err, const char *msg);

/* Walks the rows of `select` (n text parameters) through a cursor, 256 at
 * a time, so they are never all in memory at once (as SQLite steps them):
 * row(ud, r, i) for each; a negative return stops the walk and is what the
 * walk returns. A cursor lives in a transaction: a read-only one of its
 * own when none is open (a direct store's connection), else the caller's,
 * where the cursor is closed after. OK, or ERROR with *err set. */
typedef int (*okegw_pg_row_fn)(void *ud, const PGresult *r, int i);
int okegw_pg__walk(okegw_store *s, const char *what, const char *select, int n,
                   const char *const *vals, okegw_pg_row_fn row, void *ud, char **err);

/* A new session (a reconnect): the statements prepared on the old one are
 * gone with it. */
void okegw_pg__forget_prepared(okegw_store *s);

/* okegw_pg__run with text parameters only. */
PGresult *okegw_pg__q(okegw_store *s, const char *what, const char *sql, int n,
                      const char *const *vals, char **err);

/* v as decimal text in buf; NULL (SQL NULL) when v is 0 and zero_is_null. */
const char *okegw_pg__ll(char buf[24], long long v, int zero_is_null);

/* Column col of row: NULL when SQL NULL; else a copy (malloc) into *out,
 * -1 when out of memory. */
int okegw_pg__dup(const PGresult *r, int row, int col, char **out);
/* Column col of row as a number; 0 when SQL NULL. */
long long okegw_pg__ll_at(const PGresult *r, int row, int col);
double okegw_pg__double_at(const PGresult *r, int row, int col);

/* ---- the twins, one per SQLite function (same arguments and returns) ---- */

/* pg_routes.c (store.c's route functions) */
int okegw_pg__route_get(okegw_store *s, const char *kind, const char *id, char *out,
                        okegw_route *rt);
int okegw_pg__route_put(okegw_store *s, const char *kind, const char *id, const char *connector,
                        const char *parent, int confirmed, const char *owner, const char *facts);
int okegw_pg__route_claim(okegw_store *s, const char *kind, const char *id, const char *connector,
                          const char *owner);
int okegw_pg__route_facts(okegw_store *s, const char *kind, const char *id, const char *facts);
int okegw_pg__route_confirm(okegw_store *s, const char *kind, const char *id);
int okegw_pg__unlink_person(okegw_store *s, const char *id, const char *connector);

/* pg_deliveries.c (store_deliveries.c) */
int okegw_pg__delivery_add(okegw_store *s, const okegw_delivery_rec *r, int lease, long long *id);
int okegw_pg__delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body);
int okegw_pg__deliveries_read(okegw_store *s, int requeued, okegw_delivery_rec **recs, size_t *n);
int okegw_pg__delivery_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out);
int okegw_pg__delivery_prune(okegw_store *s, long long ended_before_ms);
int okegw_pg__deliveries_list(okegw_store *s, const okegw_delivery_filter *f,
                              okegw_delivery_row_cb cb, void *ud, char **err);
int okegw_pg__deliveries_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out,
                             char **err);
int okegw_pg__deliveries_retry(okegw_store *s, const long long *ids, size_t n,
                               const char *connector, okegw_delivery_state state,
                               okegw_dlv_change_cb cb, void *ud, char **err);
int okegw_pg__deliveries_drop(okegw_store *s, const long long *ids, size_t n,
                              okegw_dlv_change_cb cb, void *ud, char **err);

/* pg_leases.c: the outbox's leases (no SQLite twin: one instance needs
 * none). take: the lease of (connector, resource) for a push about to be
 * written, locked until COMMIT: *lease HELD (this instance's before), NEW
 * (its own from now: a former holder's open deliveries go first) or
 * ELSEWHERE (another instance holds it); okegw_pg__delivery_add decides
 * from that whether the push is left to the poll. release: let go once the
 * resource has no open delivery. load and poll: renew this instance, take
 * the free leases, and give the rows for okegw_pg__deliveries_read
 * (PQclear them). */
enum { OKEGW_LEASE_NONE = 0, OKEGW_LEASE_HELD, OKEGW_LEASE_NEW, OKEGW_LEASE_ELSEWHERE };
int okegw_pg__lease_take(okegw_store *s, const char *connector, const char *resource, int *lease);
/* Marks rows handed over (requeue 2), keeping an operator's mark (1). */
#define OKEGW_PG_HAND_OVER_SQL "requeue = CASE WHEN requeue = 1 THEN 1 ELSE 2 END"
int okegw_pg__lease_release(okegw_store *s, const char *connector, const char *resource);
int okegw_pg__leases_load(okegw_store *s, PGresult **rows);
int okegw_pg__leases_poll(okegw_store *s, PGresult **rows);
/* With the retention prune: forgets the leases nobody needs (dead owner,
 * nothing open) and instances dead for a day. */
int okegw_pg__leases_tidy(okegw_store *s);
/* At a clean stop, after the last batch: this instance is gone, its leases
 * free at once. */
int okegw_pg__leases_leave(okegw_store *s);

/* pg_audit.c (store_audit.c); okegw_pg__audit_rows writes n rows with
 * statements of up to OKEGW_PG_AUDIT_ROWS rows each (a group commit's audit
 * rows, store.c) */
#define OKEGW_PG_AUDIT_ROWS 8
typedef struct okegw_pg_audit_row {
  const char *at;
  char *const *a; /* OKEGW_AUDIT_TEXTS of them */
  int status;
  double latency_ms;
  long long delivery_id;
  int attempts;
} okegw_pg_audit_row;
int okegw_pg__audit_rows(okegw_store *s, const okegw_pg_audit_row *rows, size_t n);
int okegw_pg__audit_add(okegw_store *s, const char *at, char *const a[OKEGW_AUDIT_TEXTS],
                        int status, double latency_ms, long long delivery_id, int attempts);
int okegw_pg__audit_prune(okegw_store *s, const char *before);
int okegw_pg__audit_query(okegw_store *s, const okegw_audit_filter *f, okegw_audit_row_cb cb,
                          void *ud, char **err);

/* pg_phases.c (store_phases.c) */
int okegw_pg__phases_add(okegw_store *s, okegw_phase_rec *recs, size_t n);
int okegw_pg__phases_last(okegw_store *s, okegw_phase_rec **recs, size_t *n);
int okegw_pg__phases_list(okegw_store *s, const okegw_phase_filter *f, okegw_phase_row_cb cb,
                          void *ud, char **err);

/* pg_accept.c (store_accept.c) */
int okegw_pg__accept_begin(okegw_store *s, const char *connector, const char *mode,
                           const char *config_sha256, long long *run, char **err);
int okegw_pg__accept_step(okegw_store *s, long long run, const okegw_accept_step *a, char **err);
int okegw_pg__accept_end(okegw_store *s, long long run, int passed, int failed, int skipped,
                         const char *outcome, char **err);
int okegw_pg__accept_runs(okegw_store *s, const char *connector, long limit, cJSON **out,
                          char **err);

/* The lost-transaction check of store.c: 1 when the connection is not in a
 * usable transaction any more (an error aborted it, or it broke). */
int okegw_pg__tx_lost(okegw_store *s);

#endif
