/* The deliveries table: the only code that reads or writes it, for the
 * store thread (the outbox's jobs) and for operator commands (direct). One
 * column list, one reader of a row. */
#include "store/store_db.h"
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

static const char *const state_names[OKEGW_DLV_NSTATES] = {[OKEGW_DLV_PENDING] = "pending",
                                                           [OKEGW_DLV_DELIVERED] = "delivered",
                                                           [OKEGW_DLV_FAILED] = "failed",
                                                           [OKEGW_DLV_DEAD] = "dead",
                                                           [OKEGW_DLV_DROPPED] = "dropped"};

const char *okegw_delivery_state_name(okegw_delivery_state s) {
  return (unsigned)s < OKEGW_DLV_NSTATES ? state_names[s] : "?";
}

int okegw_delivery_state_from_name(const char *name, okegw_delivery_state *out) {
  for (int i = 0; name && i < OKEGW_DLV_NSTATES; i++)
    if (strcmp(name, state_names[i]) == 0) {
      *out = (okegw_delivery_state)i;
      return 0;
    }
  return -1;
}

/* The record's strings, the body last (it has a length, not a NUL). */
#define REC_STRINGS(r)                                                                             \
  {                                                                                                \
    &(r)->connector, &(r)->caller, &(r)->interaction, &(r)->resource, &(r)->resource_id,           \
        &(r)->request_id, &(r)->method, &(r)->path, &(r)->query, &(r)->content_type,               \
        &(r)->body_sha256, &(r)->last_error, &(r)->body                                            \
  }

void okegw_delivery_rec_free(okegw_delivery_rec *r) {
  char **strs[] = REC_STRINGS(r);
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
}

int okegw_delivery_rec_copy(okegw_delivery_rec *dst, const okegw_delivery_rec *src) {
  *dst = *src;
  char **to[] = REC_STRINGS(dst);
  size_t n = sizeof to / sizeof to[0], i = 0;
  for (; i + 1 < n; i++)
    if (*to[i] && !(*to[i] = okegw_strdup(*to[i])))
      break;
  if (i + 1 == n && (!src->body || (dst->body = okegw_strndup(src->body, src->body_len))))
    i++;
  if (i == n)
    return 0;
  for (size_t k = i + 1; k < n; k++)
    *to[k] = NULL; /* not copied: still the source's */
  okegw_delivery_rec_free(dst);
  return -1;
}

static char *col_str(sqlite3_stmt *st, int i) {
  const char *v = (const char *)sqlite3_column_text(st, i);
  return v ? okegw_strdup(v) : NULL;
}

/* Reads the row under st (DELIVERY_COLUMNS, then the body when with_body).
 * ERROR when out of memory or the row is not one okegw wrote (free r
 * either way). */
static int read_delivery(sqlite3_stmt *st, okegw_delivery_rec *r, int with_body) {
  memset(r, 0, sizeof *r);
  r->id = sqlite3_column_int64(st, 0);
  long long *ms[] = {&r->created_ms, &r->updated_ms,   &r->since_ms,
                     &r->next_ms,    &r->delivered_ms, &r->keep_until_ms};
  for (int i = 0; i < 6; i++)
    *ms[i] = sqlite3_column_int64(st, 1 + i);
  char **strs[] = {&r->connector,   &r->caller,       &r->interaction, &r->resource,
                   &r->resource_id, &r->request_id,   &r->method,      &r->path,
                   &r->query,       &r->content_type, &r->body_sha256, &r->last_error};
  for (int i = 0; i < 12; i++)
    *strs[i] = col_str(st, 7 + i);
  if (okegw_delivery_state_from_name((const char *)sqlite3_column_text(st, 19), &r->state) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: delivery %lld has an unknown state '%s'", r->id,
              sqlite3_column_text(st, 19) ? (const char *)sqlite3_column_text(st, 19) : "");
    return OKEGW_STORE_ERROR;
  }
  r->attempts = sqlite3_column_int(st, 20);
  r->last_status = sqlite3_column_int(st, 21);
  r->requeue = sqlite3_column_int(st, 22) != 0;
  r->body_kept = sqlite3_column_int(st, 23) != 0;
  if (with_body && sqlite3_column_type(st, DELIVERY_NCOLUMNS) != SQLITE_NULL) {
    const void *b = sqlite3_column_blob(st, DELIVERY_NCOLUMNS);
    r->body_len = (size_t)sqlite3_column_bytes(st, DELIVERY_NCOLUMNS);
    r->body = okegw_strndup(b ? b : "", r->body_len);
    if (!r->body)
      return OKEGW_STORE_ERROR;
  }
  /* NOT NULL columns: NULL here means out of memory */
  if (!r->connector || !r->interaction || !r->resource || !r->method || !r->path)
    return OKEGW_STORE_ERROR;
  return OKEGW_STORE_OK;
}

int okegw_store__delivery_add(okegw_store *s, const okegw_delivery_rec *r, int lease,
                              long long *id) {
  if (s->pg)
    return okegw_pg__delivery_add(s, r, lease, id);
  sqlite3_stmt *st = okegw_store__stmt(
      s, &s->st_dadd,
      "INSERT INTO deliveries(created_ms, updated_ms, since_ms, next_ms, connector, "
      "caller, interaction, resource, resource_id, request_id, method, path, query, "
      "content_type, body, body_sha256, state, attempts) VALUES "
      "(?1,?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,'pending',0)");
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_int64(st, 1, r->created_ms);
  sqlite3_bind_int64(st, 2, r->since_ms);
  okegw_store__bind_ms(st, 3, r->next_ms);
  const char *txt[] = {r->connector,  r->caller, r->interaction, r->resource, r->resource_id,
                       r->request_id, r->method, r->path,        r->query,    r->content_type};
  for (int i = 0; i < 10; i++)
    okegw_store__bind_text(st, 4 + i, txt[i]);
  sqlite3_bind_blob(st, 14, r->body ? r->body : "", (int)r->body_len, SQLITE_STATIC);
  okegw_store__bind_text(st, 15, r->body_sha256);
  (void)lease; /* one instance: every push is its own */
  if (sqlite3_step(st) != SQLITE_DONE)
    return OKEGW_STORE_ERROR;
  *id = sqlite3_last_insert_rowid(s->db);
  return OKEGW_STORE_OK;
}

int okegw_store__delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body) {
  if (s->pg)
    return okegw_pg__delivery_update(s, r, drop_body);
  /* an operator's drop (okegw deliveries drop) is not undone by an attempt
   * that was already under way */
  sqlite3_stmt *st = okegw_store__stmt(
      s, &s->st_dupdate,
      "UPDATE deliveries SET updated_ms = ?2, state = ?3, attempts = ?4, next_ms = ?5, "
      "since_ms = ?6, last_status = ?7, last_error = ?8, delivered_ms = ?9, "
      "keep_until_ms = ?10, body = CASE WHEN ?11 THEN NULL ELSE body END WHERE id = ?1 "
      "AND state <> 'dropped'");
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_int64(st, 1, r->id);
  sqlite3_bind_int64(st, 2, okegw_wall_ms());
  sqlite3_bind_text(st, 3, okegw_delivery_state_name(r->state), -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, r->attempts);
  okegw_store__bind_ms(st, 5, r->next_ms);
  sqlite3_bind_int64(st, 6, r->since_ms);
  if (r->last_status)
    sqlite3_bind_int(st, 7, r->last_status);
  okegw_store__bind_text(st, 8, r->last_error);
  okegw_store__bind_ms(st, 9, r->delivered_ms);
  okegw_store__bind_ms(st, 10, r->keep_until_ms);
  sqlite3_bind_int(st, 11, drop_body);
  return sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

/* Steps st, reading every row into a new array. */
static int read_all(sqlite3_stmt *st, int with_body, okegw_delivery_rec **recs, size_t *n) {
  size_t cap = 0;
  int rc;
  *recs = NULL;
  *n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      okegw_delivery_rec *more = realloc(*recs, ncap * sizeof *more);
      if (!more)
        return OKEGW_STORE_ERROR;
      *recs = more;
      cap = ncap;
    }
    if (read_delivery(st, &(*recs)[*n], with_body) != OKEGW_STORE_OK) {
      okegw_delivery_rec_free(&(*recs)[*n]);
      return OKEGW_STORE_ERROR;
    }
    (*n)++;
  }
  return rc == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_store__deliveries_read(okegw_store *s, int requeued, okegw_delivery_rec **recs,
                                 size_t *n) {
  if (s->pg)
    return okegw_pg__deliveries_read(s, requeued, recs, n);
  /* not kept prepared: the load runs at startup, the requeue read once a
   * second and finds nothing most of the time. No bodies: the outbox reads
   * one when it attempts its delivery, so what it holds does not grow with
   * them. */
  const char *sql = !requeued ? "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE state IN "
                                "('pending', 'dead') ORDER BY id"
                              : "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE "
                                "requeue = 1 ORDER BY id";
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return OKEGW_STORE_ERROR;
  int rc = read_all(st, 0, recs, n);
  sqlite3_finalize(st);
  if (rc == OKEGW_STORE_OK && requeued && *n)
    rc = sqlite3_exec(s->db, "UPDATE deliveries SET requeue = 0 WHERE requeue = 1", NULL, NULL,
                      NULL) == SQLITE_OK
             ? OKEGW_STORE_OK
             : OKEGW_STORE_ERROR;
  return rc; /* on ERROR the caller frees what was read */
}

int okegw_store__delivery_get(okegw_store *s, long long id, int with_body,
                              okegw_delivery_rec *out) {
  if (s->pg)
    return okegw_pg__delivery_get(s, id, with_body, out);
  sqlite3_stmt *st =
      with_body
          ? okegw_store__stmt(s, &s->st_dget_body,
                              "SELECT " DELIVERY_COLUMNS ", body FROM deliveries WHERE id = ?1")
          : okegw_store__stmt(s, &s->st_dget,
                              "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE id = ?1");
  memset(out, 0, sizeof *out);
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st), rc;
  if (step == SQLITE_ROW)
    rc = read_delivery(st, out, with_body);
  else
    rc = step == SQLITE_DONE ? OKEGW_STORE_NOTFOUND : OKEGW_STORE_ERROR;
  sqlite3_reset(st);
  if (rc != OKEGW_STORE_OK)
    okegw_delivery_rec_free(out);
  return rc;
}

int okegw_store__delivery_prune(okegw_store *s, long long ended_before_ms) {
  if (s->pg)
    return okegw_pg__delivery_prune(s, ended_before_ms);
  /* retention never touches what is still to be delivered (pending) or
   * waits for an operator (dead) */
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(
          s->db,
          "UPDATE deliveries SET body = NULL WHERE body IS NOT NULL AND "
          "keep_until_ms IS NOT NULL AND keep_until_ms < ?1 AND " OKEGW_DLV_ENDED_SQL,
          -1, &st, NULL) != SQLITE_OK)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_int64(st, 1, okegw_wall_ms());
  int rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  sqlite3_finalize(st);
  st = NULL;
  if (rc != OKEGW_STORE_OK ||
      sqlite3_prepare_v2(s->db,
                         "DELETE FROM deliveries WHERE " OKEGW_DLV_ENDED_SQL " AND updated_ms < ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_int64(st, 1, ended_before_ms);
  rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  sqlite3_finalize(st);
  return rc;
}

/* ---- direct use ---------------------------------------------------------- */

/* A statement of a direct call; BADFILE (with the message) when it does not
 * prepare: the tables are not there. */
static int prepare_direct(okegw_store *s, const char *sql, sqlite3_stmt **st, char **err) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK)
    return OKEGW_STORE_OK;
  if (err)
    *err = okegw_asprintf("%s (is this an okegw store?)", sqlite3_errmsg(s->db));
  return OKEGW_STORE_BADFILE;
}

int okegw_store_deliveries_list(okegw_store *s, const okegw_delivery_filter *f,
                                okegw_delivery_row_cb cb, void *ud, char **err) {
  if (s->pg)
    return okegw_pg__deliveries_list(s, f, cb, ud, err);
  const char *sql = f->with_body
                        ? "SELECT " DELIVERY_COLUMNS ", body FROM deliveries "
                          "WHERE (?1 IS NULL OR connector = ?1) AND (?2 IS NULL OR state = ?2) "
                          "ORDER BY id LIMIT ?3"
                        : "SELECT " DELIVERY_COLUMNS " FROM deliveries "
                          "WHERE (?1 IS NULL OR connector = ?1) AND (?2 IS NULL OR state = ?2) "
                          "ORDER BY id LIMIT ?3";
  sqlite3_stmt *st = NULL;
  int rc = prepare_direct(s, sql, &st, err);
  if (rc != OKEGW_STORE_OK)
    return rc;
  okegw_store__bind_text(st, 1, f->connector);
  okegw_store__bind_text(st, 2, f->state >= 0 ? okegw_delivery_state_name(f->state) : NULL);
  sqlite3_bind_int64(st, 3, f->limit > 0 ? f->limit : -1);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    okegw_delivery_rec r;
    rc = read_delivery(st, &r, f->with_body);
    if (rc == OKEGW_STORE_OK)
      rc = cb(ud, &r);
    else if (err)
      *err = okegw_strdup("out of memory, or a delivery of an unknown state");
    okegw_delivery_rec_free(&r);
    if (rc < 0)
      break;
  }
  if (rc >= 0 && step != SQLITE_DONE) {
    okegw_store__err(s, err, NULL);
    rc = OKEGW_STORE_ERROR;
  }
  sqlite3_finalize(st);
  return rc < 0 ? rc : OKEGW_STORE_OK;
}

int okegw_store_deliveries_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out,
                               char **err) {
  if (s->pg)
    return okegw_pg__deliveries_get(s, id, with_body, out, err);
  memset(out, 0, sizeof *out);
  sqlite3_stmt *probe = NULL;
  /* the slot's statement is prepared quietly: say what is wrong instead */
  int rc =
      prepare_direct(s, "SELECT " DELIVERY_COLUMNS ", body FROM deliveries LIMIT 0", &probe, err);
  sqlite3_finalize(probe);
  if (rc != OKEGW_STORE_OK)
    return rc;
  rc = okegw_store__delivery_get(s, id, with_body, out);
  if (rc == OKEGW_STORE_ERROR)
    okegw_store__err(s, err, NULL);
  return rc;
}

typedef struct change_ctx {
  int retry;
  long long now;
  sqlite3_stmt *upd;
  okegw_dlv_change_cb cb;
  void *ud;
} change_ctx;

/* Retries or drops one delivery inside the transaction. */
static int change_one(okegw_store *s, change_ctx *x, long long id) {
  okegw_delivery_rec r;
  okegw_dlv_change c = {.id = id};
  int rc = okegw_store__delivery_get(s, id, 0, &r);
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
    sqlite3_reset(x->upd);
    sqlite3_bind_int64(x->upd, 1, id);
    sqlite3_bind_int64(x->upd, 2, x->now);
    if (sqlite3_step(x->upd) != SQLITE_DONE)
      return OKEGW_STORE_ERROR;
  }
  x->cb(x->ud, &c);
  return OKEGW_STORE_OK;
}

okegw_dlv_change_outcome okegw_store__change_check(int retry, long long now,
                                                   const okegw_delivery_rec *r,
                                                   okegw_dlv_change *c) {
  c->was = r->state;
  c->body_kept = r->body_kept;
  c->kept_until_ms = r->keep_until_ms > now ? r->keep_until_ms : 0;
  int may =
      retry ? c->was == OKEGW_DLV_DEAD || c->was == OKEGW_DLV_FAILED
            : c->was == OKEGW_DLV_PENDING || c->was == OKEGW_DLV_DEAD || c->was == OKEGW_DLV_FAILED;
  if (!may)
    return OKEGW_DLV_CHANGE_WRONG_STATE;
  return retry && !c->body_kept ? OKEGW_DLV_CHANGE_NO_BODY : OKEGW_DLV_CHANGE_DONE;
}

/* Retry (retry set) or drop, in one short transaction. */
static int change(okegw_store *s, int retry, const long long *given, size_t ngiven,
                  const char *connector, okegw_delivery_state state, okegw_dlv_change_cb cb,
                  void *ud, char **err) {
  const char *upd_sql =
      retry ? "UPDATE deliveries SET state = 'pending', since_ms = ?2, next_ms = ?2, "
              "updated_ms = ?2, requeue = 1 WHERE id = ?1"
            : "UPDATE deliveries SET state = 'dropped', updated_ms = ?2, requeue = 1, "
              "body = CASE WHEN keep_until_ms > ?2 THEN body ELSE NULL END WHERE id = ?1";
  change_ctx x = {.retry = retry, .now = okegw_wall_ms(), .cb = cb, .ud = ud};
  sqlite3_stmt *each = NULL, *probe = NULL;
  long long *found = NULL;
  const long long *ids = given;
  size_t n = ngiven;
  int rc = prepare_direct(s, upd_sql, &x.upd, err);
  if (rc == OKEGW_STORE_OK)
    rc = prepare_direct(s, "SELECT " DELIVERY_COLUMNS " FROM deliveries LIMIT 0", &probe, err);
  if (rc == OKEGW_STORE_OK && connector)
    rc = prepare_direct(s,
                        "SELECT id FROM deliveries WHERE connector = ?1 AND state = ?2 "
                        "ORDER BY id",
                        &each, err);
  sqlite3_finalize(probe);
  if (rc != OKEGW_STORE_OK)
    goto out;
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    okegw_store__err(s, err, "cannot write to the store");
    rc = OKEGW_STORE_ERROR;
    goto out;
  }
  if (connector) {
    size_t cap = 0;
    int step;
    n = 0;
    sqlite3_bind_text(each, 1, connector, -1, SQLITE_STATIC);
    sqlite3_bind_text(each, 2, okegw_delivery_state_name(state), -1, SQLITE_STATIC);
    while ((step = sqlite3_step(each)) == SQLITE_ROW) {
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        long long *more = realloc(found, cap * sizeof *found);
        if (!more) {
          if (err)
            *err = okegw_strdup("out of memory");
          rc = OKEGW_STORE_ERROR;
          goto rollback;
        }
        found = more;
      }
      found[n++] = sqlite3_column_int64(each, 0);
    }
    if (step != SQLITE_DONE)
      goto db_error;
    ids = found;
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = change_one(s, &x, ids[i])) != OKEGW_STORE_OK)
      goto db_error;
  sqlite3_finalize(each);
  each = NULL;
  sqlite3_reset(x.upd);
  if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    if (err)
      *err =
          okegw_asprintf("cannot save the changes: %s; nothing was changed", sqlite3_errmsg(s->db));
    rc = OKEGW_STORE_ERROR;
    goto rollback;
  }
  rc = OKEGW_STORE_OK;
  goto out;
db_error:
  if (err)
    *err = okegw_asprintf("%s; nothing was changed", sqlite3_errmsg(s->db));
  rc = OKEGW_STORE_ERROR;
rollback:
  sqlite3_finalize(each);
  each = NULL;
  sqlite3_reset(x.upd);
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
  free(found);
  sqlite3_finalize(each);
  sqlite3_finalize(x.upd);
  return rc;
}

int okegw_store_deliveries_retry(okegw_store *s, const long long *ids, size_t n,
                                 const char *connector, okegw_delivery_state state,
                                 okegw_dlv_change_cb cb, void *ud, char **err) {
  if (s->pg)
    return okegw_pg__deliveries_retry(s, ids, n, connector, state, cb, ud, err);
  return change(s, 1, ids, n, connector, state, cb, ud, err);
}

int okegw_store_deliveries_drop(okegw_store *s, const long long *ids, size_t n,
                                okegw_dlv_change_cb cb, void *ud, char **err) {
  if (s->pg)
    return okegw_pg__deliveries_drop(s, ids, n, cb, ud, err);
  return change(s, 0, ids, n, NULL, OKEGW_DLV_PENDING, cb, ud, err);
}
