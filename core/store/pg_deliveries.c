/* The deliveries table in PostgreSQL: the twins of store_deliveries.c (see
 * pg_db.h), with its statements, return codes and messages. One column list
 * (store_db.h, shared with SQLite), one reader of a row. What several
 * instances add to it (leases) is pg_leases.c's. */
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a direct call says when a row does not read (store_deliveries.c's
 * words). */
#define BAD_ROW "out of memory, or a delivery of an unknown state"

/* Replaces *err (err may be NULL) with msg, which it takes. */
static void give_err(char **err, char *msg) {
  if (err) {
    free(*err);
    *err = msg;
  } else {
    free(msg);
  }
}

/* Reads row `row` of res (DELIVERY_COLUMNS, then the body when with_body).
 * ERROR when out of memory or the row is not one okegw wrote (free r
 * either way). */
static int read_delivery(const PGresult *res, int row, okegw_delivery_rec *r, int with_body) {
  memset(r, 0, sizeof *r);
  r->id = okegw_pg__ll_at(res, row, 0);
  long long *ms[] = {&r->created_ms, &r->updated_ms,   &r->since_ms,
                     &r->next_ms,    &r->delivered_ms, &r->keep_until_ms};
  for (int i = 0; i < 6; i++)
    *ms[i] = okegw_pg__ll_at(res, row, 1 + i);
  char **strs[] = {&r->connector,   &r->caller,       &r->interaction, &r->resource,
                   &r->resource_id, &r->request_id,   &r->method,      &r->path,
                   &r->query,       &r->content_type, &r->body_sha256, &r->last_error};
  for (int i = 0; i < 12; i++)
    if (okegw_pg__dup(res, row, 7 + i, strs[i]) < 0)
      return OKEGW_STORE_ERROR;
  const char *state = PQgetisnull(res, row, 19) ? NULL : PQgetvalue(res, row, 19);
  if (okegw_delivery_state_from_name(state, &r->state) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: delivery %lld has an unknown state '%s'", r->id,
              state ? state : "");
    return OKEGW_STORE_ERROR;
  }
  r->attempts = (int)okegw_pg__ll_at(res, row, 20);
  r->last_status = (int)okegw_pg__ll_at(res, row, 21);
  r->requeue = (int)okegw_pg__ll_at(res, row, 22);
  r->body_kept = PQgetvalue(res, row, 23)[0] == 't'; /* a boolean: 't' or 'f' */
  if (with_body && !PQgetisnull(res, row, DELIVERY_NCOLUMNS)) {
    /* BYTEA in text format (hex); the rest of okegw frees with free() and
     * wants a NUL after it, so it is copied */
    size_t len = 0;
    unsigned char *b =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, DELIVERY_NCOLUMNS), &len);
    if (!b)
      return OKEGW_STORE_ERROR;
    r->body = okegw_strndup((const char *)b, len);
    PQfreemem(b);
    if (!r->body)
      return OKEGW_STORE_ERROR;
    r->body_len = len;
  }
  return OKEGW_STORE_OK;
}

int okegw_pg__delivery_add(okegw_store *s, const okegw_delivery_rec *r, int lease, long long *id) {
  if (r->body_len > INT_MAX) {
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "store: cannot add a delivery: its body of %zu bytes is "
              "too large",
              r->body_len);
    return OKEGW_STORE_ERROR;
  }
  char created[24], since[24], next[24];
  /* the body is always written, "" when there is none, as SQLite binds it */
  const char *v[16] = {okegw_pg__ll(created, r->created_ms, 0),
                       okegw_pg__ll(since, r->since_ms, 0),
                       okegw_pg__ll(next, r->next_ms, 1),
                       r->connector,
                       r->caller,
                       r->interaction,
                       r->resource,
                       r->resource_id,
                       r->request_id,
                       r->method,
                       r->path,
                       r->query,
                       r->content_type,
                       r->body ? r->body : "",
                       r->body_sha256,
                       lease == OKEGW_LEASE_ELSEWHERE ? "e"
                       : lease == OKEGW_LEASE_NEW     ? "n"
                                                      : "h"};
  int lens[16] = {0}, fmts[16] = {0};
  lens[13] = (int)r->body_len;
  fmts[13] = 1; /* BYTEA, binary */
  /* The push goes behind what its instance does not hold in memory (handed
   * over, requeue 2): pushes stored through another instance that its poll
   * has not read yet, and, when the lease is newly its own ('n'), every open
   * delivery of a former holder (marked here). Another instance's resource
   * ('e'): it is that one's to send. A statement of its own after the
   * lease's, so it sees what other instances committed before the lock. */
  PGresult *res = okegw_pg__run(
      s, "cannot add a delivery",
      "WITH mark AS (UPDATE deliveries SET " OKEGW_PG_HAND_OVER_SQL " WHERE connector = $4 AND "
      "resource = $7 AND state IN ('pending', 'dead') AND $16 <> 'e' AND ($16 = 'n' OR requeue "
      "= 2) RETURNING 1) INSERT INTO deliveries(created_ms, updated_ms, since_ms, next_ms, "
      "connector, caller, interaction, resource, resource_id, request_id, method, path, query, "
      "content_type, body, body_sha256, state, attempts, requeue) VALUES "
      "($1,$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,'pending',0,CASE WHEN $16 = 'e' OR "
      "EXISTS (SELECT 1 FROM mark) THEN 2 ELSE 0 END) RETURNING id, requeue",
      16, v, lens, fmts, NULL);
  if (!res)
    return OKEGW_STORE_ERROR;
  int ok = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
  int handed = ok && okegw_pg__ll_at(res, 0, 1) == 2;
  if (ok)
    *id = okegw_pg__ll_at(res, 0, 0);
  else
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: cannot add a delivery: no id came back");
  PQclear(res);
  return !ok ? OKEGW_STORE_ERROR : handed ? OKEGW_STORE_HANDED : OKEGW_STORE_OK;
}

int okegw_pg__delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body) {
  char id[24], now[24], attempts[24], next[24], since[24], status[24], delivered[24], keep[24];
  const char *v[12] = {okegw_pg__ll(id, r->id, 0),
                       okegw_pg__ll(now, okegw_wall_ms(), 0),
                       okegw_delivery_state_name(r->state),
                       okegw_pg__ll(attempts, r->attempts, 0),
                       okegw_pg__ll(next, r->next_ms, 1),
                       okegw_pg__ll(since, r->since_ms, 0),
                       okegw_pg__ll(status, r->last_status, 1),
                       r->last_error,
                       okegw_pg__ll(delivered, r->delivered_ms, 1),
                       okegw_pg__ll(keep, r->keep_until_ms, 1),
                       drop_body ? "true" : "false",
                       s->lease_owner};
  /* An operator's drop (okegw deliveries drop) is not undone by an attempt
   * that was already under way. Only the holder of the resource's lease
   * writes (pg_leases.c): `mine` is false once another instance took it
   * over, and the delivery is that one's now. */
  PGresult *res = okegw_pg__q(
      s, "cannot update a delivery",
      "WITH mine AS (SELECT EXISTS (SELECT 1 FROM deliveries d JOIN okegw_leases l ON "
      "l.connector = d.connector AND l.resource = d.resource WHERE d.id = $1 AND l.owner = $12) "
      "AS m), up AS (UPDATE deliveries SET updated_ms = $2, state = $3, attempts = $4, "
      "next_ms = $5, since_ms = $6, last_status = $7, last_error = $8, delivered_ms = $9, "
      "keep_until_ms = $10, body = CASE WHEN $11 THEN NULL ELSE body END WHERE id = $1 AND state "
      "<> 'dropped' AND (SELECT m FROM mine) RETURNING 1) SELECT m FROM mine",
      12, v, NULL);
  if (!res)
    return OKEGW_STORE_ERROR;
  int mine = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return mine ? OKEGW_STORE_OK : OKEGW_STORE_NOTFOUND;
}

/* Reads every row of res into a new array (without bodies). On ERROR what
 * was read stays in *recs, *n for the caller to free. */
static int read_all(const PGresult *res, okegw_delivery_rec **recs, size_t *n) {
  int rows = PQntuples(res);
  *recs = NULL;
  *n = 0;
  if (rows == 0)
    return OKEGW_STORE_OK;
  if (!(*recs = calloc((size_t)rows, sizeof **recs)))
    return OKEGW_STORE_ERROR;
  for (int i = 0; i < rows; i++) {
    if (read_delivery(res, i, &(*recs)[*n], 0) != OKEGW_STORE_OK) {
      okegw_delivery_rec_free(&(*recs)[*n]);
      return OKEGW_STORE_ERROR;
    }
    (*n)++;
  }
  return OKEGW_STORE_OK;
}

/* Clears the requeue mark of the n rows read, and of those only: a row
 * marked since the read keeps its mark for the next one. */
static int clear_requeue(okegw_store *s, const okegw_delivery_rec *recs, size_t n) {
  size_t cap = n * 21 + 3, at = 0; /* "{", n ids of up to 20 digits and signs, ",", "}" */
  char *ids = malloc(cap);
  if (!ids)
    return OKEGW_STORE_ERROR;
  ids[at++] = '{';
  for (size_t i = 0; i < n; i++)
    at += (size_t)snprintf(ids + at, cap - at, "%s%lld", i ? "," : "", recs[i].id);
  snprintf(ids + at, cap - at, "}");
  const char *v[1] = {ids};
  PGresult *res =
      okegw_pg__q(s, "cannot clear the requeue marks",
                  "UPDATE deliveries SET requeue = 0 WHERE id = ANY($1::bigint[])", 1, v, NULL);
  free(ids);
  PQclear(res);
  return res ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__deliveries_read(okegw_store *s, int requeued, okegw_delivery_rec **recs, size_t *n) {
  /* No bodies: the outbox reads one when it attempts its delivery. Only
   * the rows of resources whose lease this instance holds (pg_leases.c);
   * the marks of those read are cleared, as SQLite does. */
  *recs = NULL;
  *n = 0;
  PGresult *res = NULL;
  if ((requeued ? okegw_pg__leases_poll(s, &res) : okegw_pg__leases_load(s, &res)) !=
      OKEGW_STORE_OK)
    return OKEGW_STORE_ERROR;
  int rc = read_all(res, recs, n);
  PQclear(res);
  if (rc == OKEGW_STORE_OK && requeued && *n)
    rc = clear_requeue(s, *recs, *n);
  return rc; /* on ERROR the caller frees what was read */
}

/* One delivery by id into *out (free it either way), with its body or
 * not, locked for the transaction (FOR UPDATE) or not; NOTFOUND when there
 * is none. On ERROR the message goes to *err (err may be NULL). */
static int read_one(okegw_store *s, long long id, int with_body, int lock, okegw_delivery_rec *out,
                    char **err) {
#define ONE_SQL(body, tail) "SELECT " DELIVERY_COLUMNS body " FROM deliveries WHERE id = $1" tail
  static const char *const sql[2][2] = {{ONE_SQL("", ""), ONE_SQL("", " FOR UPDATE")},
                                        {ONE_SQL(", body", ""), ONE_SQL(", body", " FOR UPDATE")}};
#undef ONE_SQL
  char idb[24];
  const char *v[1] = {okegw_pg__ll(idb, id, 0)};
  memset(out, 0, sizeof *out);
  PGresult *res =
      okegw_pg__q(s, "cannot read a delivery", sql[with_body != 0][lock != 0], 1, v, err);
  if (!res)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_NOTFOUND;
  if (PQntuples(res) > 0 && (rc = read_delivery(res, 0, out, with_body)) != OKEGW_STORE_OK)
    give_err(err, okegw_strdup(BAD_ROW));
  PQclear(res);
  if (rc != OKEGW_STORE_OK)
    okegw_delivery_rec_free(out);
  return rc;
}

int okegw_pg__delivery_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out) {
  return read_one(s, id, with_body, 0, out, NULL);
}

int okegw_pg__delivery_prune(okegw_store *s, long long ended_before_ms) {
  /* retention never touches what is still to be delivered (pending) or
   * waits for an operator (dead) */
  char now[24], before[24];
  const char *v[1] = {okegw_pg__ll(now, okegw_wall_ms(), 0)};
  PGresult *res = okegw_pg__q(s, "cannot prune the delivery bodies",
                              "UPDATE deliveries SET body = NULL WHERE body IS NOT NULL AND "
                              "keep_until_ms IS NOT NULL AND keep_until_ms < $1 "
                              "AND " OKEGW_DLV_ENDED_SQL,
                              1, v, NULL);
  if (!res)
    return OKEGW_STORE_ERROR;
  PQclear(res);
  v[0] = okegw_pg__ll(before, ended_before_ms, 0);
  res = okegw_pg__q(s, "cannot prune the ended deliveries",
                    "DELETE FROM deliveries WHERE " OKEGW_DLV_ENDED_SQL " AND updated_ms < $1", 1,
                    v, NULL);
  PQclear(res);
  return res ? okegw_pg__leases_tidy(s) : OKEGW_STORE_ERROR;
}

/* ---- direct use ---------------------------------------------------------- */

/* okegw_pg__deliveries_list's walk. */
typedef struct list_walk {
  int with_body;
  okegw_delivery_row_cb cb;
  void *ud;
  char **err;
} list_walk;

static int list_row(void *arg, const PGresult *res, int i) {
  list_walk *w = arg;
  okegw_delivery_rec r;
  int rc = read_delivery(res, i, &r, w->with_body);
  if (rc == OKEGW_STORE_OK)
    rc = w->cb(w->ud, &r);
  else
    okegw_pg__set_err(w->err, BAD_ROW);
  okegw_delivery_rec_free(&r);
  return rc;
}

int okegw_pg__deliveries_list(okegw_store *s, const okegw_delivery_filter *f,
                              okegw_delivery_row_cb cb, void *ud, char **err) {
  /* LIMIT NULL: no limit */
#define LIST_SQL(body)                                                                             \
  "SELECT " DELIVERY_COLUMNS body " FROM deliveries WHERE ($1::text IS NULL OR connector = $1) "   \
  "AND ($2::text IS NULL OR state = $2) ORDER BY id LIMIT $3::bigint"
  char limit[24];
  const char *v[3] = {f->connector, f->state >= 0 ? okegw_delivery_state_name(f->state) : NULL,
                      okegw_pg__ll(limit, f->limit > 0 ? f->limit : 0, 1)};
  list_walk w = {.with_body = f->with_body, .cb = cb, .ud = ud, .err = err};
  return okegw_pg__walk(s, "cannot list the deliveries",
                        f->with_body ? LIST_SQL(", body") : LIST_SQL(""), 3, v, list_row, &w, err);
#undef LIST_SQL
}

int okegw_pg__deliveries_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out,
                             char **err) {
  return read_one(s, id, with_body, 0, out, err);
}

typedef struct change_ctx {
  int retry;
  long long now;
  okegw_dlv_change_cb cb;
  void *ud;
} change_ctx;

/* Retries or drops one delivery inside the transaction; the failure in
 * *why. */
static int change_one(okegw_store *s, change_ctx *x, long long id, char **why) {
  okegw_delivery_rec r;
  okegw_dlv_change c = {.id = id};
  /* locked until the transaction ends: a gateway's update of it waits,
   * then sees the change (an update never undoes a drop) */
  int rc = read_one(s, id, 0, 1, &r, why);
  if (rc == OKEGW_STORE_NOTFOUND) {
    c.outcome = OKEGW_DLV_CHANGE_MISSING;
    x->cb(x->ud, &c);
    return OKEGW_STORE_OK;
  }
  if (rc != OKEGW_STORE_OK)
    return rc;
  c.outcome = okegw_store__change_check(x->retry, x->now, &r, &c);
  okegw_delivery_rec_free(&r);
  if (c.outcome == OKEGW_DLV_CHANGE_DONE) {
    char idb[24], now[24];
    const char *v[2] = {okegw_pg__ll(idb, id, 0), okegw_pg__ll(now, x->now, 0)};
    PGresult *res =
        x->retry
            ? okegw_pg__q(s, "cannot retry a delivery",
                          "UPDATE deliveries SET state = 'pending', since_ms = $2, next_ms = $2, "
                          "updated_ms = $2, requeue = 1 WHERE id = $1",
                          2, v, why)
            : okegw_pg__q(s, "cannot drop a delivery",
                          "UPDATE deliveries SET state = 'dropped', updated_ms = $2, requeue = 1, "
                          "body = CASE WHEN keep_until_ms > $2 THEN body ELSE NULL END "
                          "WHERE id = $1",
                          2, v, why);
    if (!res)
      return OKEGW_STORE_ERROR;
    PQclear(res);
  }
  x->cb(x->ud, &c);
  return OKEGW_STORE_OK;
}

/* Retry (retry set) or drop, in one short transaction. */
static int change(okegw_store *s, int retry, const long long *given, size_t ngiven,
                  const char *connector, okegw_delivery_state state, okegw_dlv_change_cb cb,
                  void *ud, char **err) {
  change_ctx x = {.retry = retry, .now = okegw_wall_ms(), .cb = cb, .ud = ud};
  long long *found = NULL;
  const long long *ids = given;
  size_t n = ngiven;
  char *why = NULL;
  if (okegw_pg__exec(s, "cannot write to the store", "BEGIN", &why) != OKEGW_STORE_OK) {
    give_err(err, why);
    return OKEGW_STORE_ERROR;
  }
  int rc = OKEGW_STORE_OK, oom = 0;
  if (connector) {
    const char *v[2] = {connector, okegw_delivery_state_name(state)};
    PGresult *res = okegw_pg__q(s, "cannot read the deliveries to change",
                                "SELECT id FROM deliveries WHERE connector = $1 AND state = $2 "
                                "ORDER BY id FOR UPDATE",
                                2, v, &why);
    n = res ? (size_t)PQntuples(res) : 0;
    if (!res) {
      rc = OKEGW_STORE_ERROR;
    } else if (n && !(found = malloc(n * sizeof *found))) {
      why = okegw_strdup("out of memory");
      rc = OKEGW_STORE_ERROR;
      oom = 1;
    }
    for (size_t i = 0; found && i < n; i++)
      found[i] = okegw_pg__ll_at(res, (int)i, 0);
    PQclear(res);
    ids = found;
  }
  for (size_t i = 0; rc == OKEGW_STORE_OK && i < n; i++)
    rc = change_one(s, &x, ids[i], &why);
  if (rc == OKEGW_STORE_OK) {
    PGresult *res = okegw_pg__q(s, "cannot save the changes", "COMMIT", 0, NULL, &why);
    if (!res) {
      rc = OKEGW_STORE_ERROR;
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
      /* a transaction an error aborted answers COMMIT with ROLLBACK */
      give_err(&why, okegw_strdup("cannot save the changes: the database rolled them back"));
      rc = OKEGW_STORE_ERROR;
    }
    PQclear(res);
  }
  if (rc != OKEGW_STORE_OK) {
    if (PQtransactionStatus(s->pg) != PQTRANS_IDLE)
      okegw_pg__exec(s, "cannot roll back", "ROLLBACK", NULL);
    if (!oom) {
      char *msg = okegw_asprintf("%s; nothing was changed", why ? why : "the store failed");
      free(why);
      why = msg;
    }
    give_err(err, why);
  } else {
    free(why);
  }
  free(found);
  return rc;
}

int okegw_pg__deliveries_retry(okegw_store *s, const long long *ids, size_t n,
                               const char *connector, okegw_delivery_state state,
                               okegw_dlv_change_cb cb, void *ud, char **err) {
  return change(s, 1, ids, n, connector, state, cb, ud, err);
}

int okegw_pg__deliveries_drop(okegw_store *s, const long long *ids, size_t n,
                              okegw_dlv_change_cb cb, void *ud, char **err) {
  return change(s, 0, ids, n, NULL, OKEGW_DLV_PENDING, cb, ud, err);
}
