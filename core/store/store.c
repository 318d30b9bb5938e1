#include "store/store.h"
#include "base/log.h"
#include "base/util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum job_kind {
  JOB_LOOKUP,
  JOB_BIND,
  JOB_PUT,
  JOB_CONFIRM,
  JOB_AUDIT,
  JOB_DADD,
  JOB_DUPDATE,
  JOB_DLOAD,
  JOB_DREQUEUE,
  JOB_DGET,
  JOB_DPRUNE
};

/* A unit of work for the store thread. Strings are owned by the job. The
 * queues are intrusive singly linked FIFOs guarded by the store mutex. */
typedef struct job {
  struct job *next;
  enum job_kind kind;
  char *rkind, *id, *parent_kind, *parent_id, *connector;
  char **ids;
  size_t nids;
  int rebind;
  char *audit[10]; /* JOB_AUDIT strings, in okegw_audit_rec order */
  int status;
  double latency_ms;
  long long delivery_id;
  int attempts;
  char at[32];
  okegw_route result;
  okegw_route_cb cb;
  void *ud;
  /* deliveries: the record to write (borrowed for DADD, owned for
   * DUPDATE), what was read, and the callback */
  const okegw_delivery_rec *drec;
  okegw_delivery_rec dcopy;
  int drop_body;
  long long num; /* DGET: the id; DPRUNE: the cut-off */
  okegw_delivery_rec *recs;
  size_t nrecs;
  int drc;
  long long did;
  okegw_delivery_cb dcb;
} job;

typedef struct queue {
  job *head, *tail;
} queue;

struct okegw_store {
  uv_loop_t *loop;
  sqlite3 *db;
  sqlite3_stmt *st_get, *st_upsert, *st_confirm, *st_audit;
  sqlite3_stmt *st_dadd, *st_dupdate, *st_dget; /* prepared on first use */
  sqlite3_stmt *st_begin, *st_commit;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cond;
  queue todo, done;
  int stopping;
  uv_async_t async;
  void (*closed)(void *);
  void *closed_arg;
};

static void q_push(queue *q, job *j) {
  j->next = NULL;
  if (q->tail)
    q->tail->next = j;
  else
    q->head = j;
  q->tail = j;
}

static job *q_take_all(queue *q) {
  job *h = q->head;
  q->head = q->tail = NULL;
  return h;
}

static void job_free(job *j) {
  free(j->rkind);
  free(j->id);
  free(j->parent_kind);
  free(j->parent_id);
  free(j->connector);
  for (size_t i = 0; i < j->nids; i++)
    free(j->ids[i]);
  free(j->ids);
  for (size_t i = 0; i < sizeof j->audit / sizeof j->audit[0]; i++)
    free(j->audit[i]);
  okegw_delivery_rec_free(&j->dcopy);
  for (size_t i = 0; i < j->nrecs; i++)
    okegw_delivery_rec_free(&j->recs[i]);
  free(j->recs);
  free(j);
}

void okegw_delivery_rec_free(okegw_delivery_rec *r) {
  char **strs[] = {&r->connector,   &r->caller,     &r->interaction, &r->resource, &r->resource_id,
                   &r->request_id,  &r->method,     &r->path,        &r->query,    &r->content_type,
                   &r->body_sha256, &r->last_error, &r->body};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
}

/* Prepares a statement once, on the store thread. */
static sqlite3_stmt *stmt(okegw_store *s, sqlite3_stmt **slot, const char *sql) {
  if (!*slot &&
      sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s", sqlite3_errmsg(s->db));
    return NULL;
  }
  sqlite3_reset(*slot);
  sqlite3_clear_bindings(*slot);
  return *slot;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static void bind_ms(sqlite3_stmt *st, int i, long long v) {
  if (v)
    sqlite3_bind_int64(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

static char *col_str(sqlite3_stmt *st, int i) {
  const char *v = (const char *)sqlite3_column_text(st, i);
  return v ? okegw_strdup(v) : NULL;
}

#define DELIVERY_COLUMNS                                                                           \
  "id, created_ms, updated_ms, since_ms, next_ms, delivered_ms, keep_until_ms, connector, "        \
  "caller, interaction, resource, resource_id, request_id, method, path, query, "                  \
  "content_type, body_sha256, last_error, state, attempts, last_status"

/* Reads one row selected with DELIVERY_COLUMNS (and the body after them
 * when with_body). Returns 0 or -1 (out of memory). */
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
  const char *state = (const char *)sqlite3_column_text(st, 19);
  snprintf(r->state, sizeof r->state, "%s", state ? state : "");
  r->attempts = sqlite3_column_int(st, 20);
  r->last_status = sqlite3_column_int(st, 21);
  if (with_body && sqlite3_column_type(st, 22) != SQLITE_NULL) {
    const void *b = sqlite3_column_blob(st, 22);
    r->body_len = (size_t)sqlite3_column_bytes(st, 22);
    r->body = okegw_strndup(b ? b : "", r->body_len);
    if (!r->body)
      return -1;
  }
  if (!r->connector || !r->interaction || !r->resource || !r->method || !r->path)
    return -1;
  return 0;
}

/* Runs a SELECT of DELIVERY_COLUMNS (+ body) into j->recs. */
static int read_deliveries(sqlite3_stmt *st, job *j, int with_body) {
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (j->nrecs == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      okegw_delivery_rec *n = realloc(j->recs, ncap * sizeof *n);
      if (!n)
        return OKEGW_STORE_ERROR;
      j->recs = n;
      cap = ncap;
    }
    if (read_delivery(st, &j->recs[j->nrecs], with_body) < 0) {
      okegw_delivery_rec_free(&j->recs[j->nrecs]);
      return OKEGW_STORE_ERROR;
    }
    j->nrecs++;
  }
  return rc == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

static int run_delivery_job(okegw_store *s, job *j) {
  sqlite3_stmt *st;
  const okegw_delivery_rec *r = j->drec;
  switch (j->kind) {
  case JOB_DADD:
    st = stmt(s, &s->st_dadd,
              "INSERT INTO deliveries(created_ms, updated_ms, since_ms, next_ms, connector, "
              "caller, interaction, resource, resource_id, request_id, method, path, query, "
              "content_type, body, body_sha256, state, attempts) VALUES "
              "(?1,?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,'pending',0)");
    if (!st)
      return OKEGW_STORE_ERROR;
    sqlite3_bind_int64(st, 1, r->created_ms);
    sqlite3_bind_int64(st, 2, r->since_ms);
    bind_ms(st, 3, r->next_ms);
    const char *txt[] = {r->connector,  r->caller, r->interaction, r->resource, r->resource_id,
                         r->request_id, r->method, r->path,        r->query,    r->content_type};
    for (int i = 0; i < 10; i++)
      bind_text(st, 4 + i, txt[i]);
    sqlite3_bind_blob(st, 14, r->body ? r->body : "", (int)r->body_len, SQLITE_STATIC);
    bind_text(st, 15, r->body_sha256);
    if (sqlite3_step(st) != SQLITE_DONE)
      return OKEGW_STORE_ERROR;
    j->did = sqlite3_last_insert_rowid(s->db);
    return OKEGW_STORE_OK;
  case JOB_DUPDATE:
    /* an operator's drop (okegw deliveries drop) is not undone by an
     * attempt that was already under way */
    r = &j->dcopy;
    st = stmt(s, &s->st_dupdate,
              "UPDATE deliveries SET updated_ms = ?2, state = ?3, attempts = ?4, next_ms = ?5, "
              "since_ms = ?6, last_status = ?7, last_error = ?8, delivered_ms = ?9, "
              "keep_until_ms = ?10, body = CASE WHEN ?11 THEN NULL ELSE body END WHERE id = ?1 "
              "AND state <> 'dropped'");
    if (!st)
      return OKEGW_STORE_ERROR;
    sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_int64(st, 2, okegw_wall_ms());
    bind_text(st, 3, r->state);
    sqlite3_bind_int(st, 4, r->attempts);
    bind_ms(st, 5, r->next_ms);
    sqlite3_bind_int64(st, 6, r->since_ms);
    if (r->last_status)
      sqlite3_bind_int(st, 7, r->last_status);
    bind_text(st, 8, r->last_error);
    bind_ms(st, 9, r->delivered_ms);
    bind_ms(st, 10, r->keep_until_ms);
    sqlite3_bind_int(st, 11, j->drop_body);
    return sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  case JOB_DLOAD:
  case JOB_DREQUEUE: {
    /* not kept prepared: the load runs at startup, the requeue read once a
     * second and finds nothing most of the time */
    const char *sql = j->kind == JOB_DLOAD
                          ? "SELECT " DELIVERY_COLUMNS ", body FROM deliveries WHERE state IN "
                            "('pending', 'dead') ORDER BY id"
                          : "SELECT " DELIVERY_COLUMNS ", body FROM deliveries WHERE requeue = 1 "
                            "ORDER BY id";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
      return OKEGW_STORE_ERROR;
    int rc = read_deliveries(st, j, 1);
    sqlite3_finalize(st);
    if (rc == OKEGW_STORE_OK && j->kind == JOB_DREQUEUE && j->nrecs)
      rc = sqlite3_exec(s->db, "UPDATE deliveries SET requeue = 0 WHERE requeue = 1", NULL, NULL,
                        NULL) == SQLITE_OK
               ? OKEGW_STORE_OK
               : OKEGW_STORE_ERROR;
    return rc;
  }
  case JOB_DGET: {
    st = stmt(s, &s->st_dget, "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE id = ?1");
    if (!st)
      return OKEGW_STORE_ERROR;
    sqlite3_bind_int64(st, 1, j->num);
    int rc = read_deliveries(st, j, 0);
    sqlite3_reset(st);
    return rc == OKEGW_STORE_OK && !j->nrecs ? OKEGW_STORE_NOTFOUND : rc;
  }
  case JOB_DPRUNE: {
    /* retention never touches what is still to be delivered (pending) or
     * waits for an operator (dead) */
    if (sqlite3_prepare_v2(
            s->db,
            "UPDATE deliveries SET body = NULL WHERE body IS NOT NULL AND keep_until_ms IS "
            "NOT NULL AND keep_until_ms < ?1 AND state IN ('delivered', 'failed', "
            "'dropped')",
            -1, &st, NULL) != SQLITE_OK)
      return OKEGW_STORE_ERROR;
    sqlite3_bind_int64(st, 1, okegw_wall_ms());
    int rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
    sqlite3_finalize(st);
    if (rc != OKEGW_STORE_OK ||
        sqlite3_prepare_v2(s->db,
                           "DELETE FROM deliveries WHERE state IN ('delivered', 'failed', "
                           "'dropped') AND updated_ms < ?1",
                           -1, &st, NULL) != SQLITE_OK)
      return OKEGW_STORE_ERROR;
    sqlite3_bind_int64(st, 1, j->num);
    rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
    j->did = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    return rc;
  }
  default: return OKEGW_STORE_ERROR;
  }
}

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');"
    /* Correlation of OKE ids with the connector that owns them. */
    "CREATE TABLE IF NOT EXISTS routes("
    "  kind TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  connector TEXT NOT NULL,"
    "  parent TEXT,"
    "  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
    "  confirmed INTEGER NOT NULL DEFAULT 1,"
    "  PRIMARY KEY (kind, id)) WITHOUT ROWID;"
    /* One row per exchange: who, what, when, how it ended, which mapping;
     * a body digest, never the body (personal data). */
    "CREATE TABLE IF NOT EXISTS audit("
    "  id INTEGER PRIMARY KEY,"
    "  at TEXT NOT NULL,"
    "  request_id TEXT, flow INTEGER, interaction TEXT, caller TEXT, connector TEXT,"
    "  method TEXT, path TEXT, resource_id TEXT, status INTEGER, latency_ms REAL,"
    "  attempts INTEGER NOT NULL DEFAULT 1, mapping TEXT, body_sha256 TEXT, delivery_id TEXT,"
    "  event TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_resource ON audit(resource_id, at);"
    "CREATE INDEX IF NOT EXISTS audit_at ON audit(at);"
    /* The outbox: every push (PUT/PATCH of flows 1-5) is a row here before
     * its sender hears anything. `resource` orders deliveries: the same
     * resource at the same connector leaves in id order. Times *_ms are Unix
     * milliseconds. `requeue` is set by `okegw deliveries retry|drop` so the
     * running gateway picks the change up. */
    "CREATE TABLE IF NOT EXISTS deliveries("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL,"
    "  connector TEXT NOT NULL, caller TEXT, interaction TEXT NOT NULL,"
    "  resource TEXT NOT NULL, resource_id TEXT, request_id TEXT,"
    "  method TEXT NOT NULL, path TEXT NOT NULL, query TEXT, content_type TEXT,"
    "  body BLOB, body_sha256 TEXT,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_ms INTEGER, last_status INTEGER, last_error TEXT, delivered_ms INTEGER,"
    "  keep_until_ms INTEGER,"
    "  requeue INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(state, id) "
    "  WHERE state IN ('pending', 'dead');"
    "CREATE INDEX IF NOT EXISTS deliveries_requeue ON deliveries(id) WHERE requeue = 1;"
    "CREATE INDEX IF NOT EXISTS deliveries_kept ON deliveries(keep_until_ms) "
    "  WHERE body IS NOT NULL AND keep_until_ms IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS deliveries_ended ON deliveries(updated_ms) "
    "  WHERE state IN ('delivered', 'failed', 'dropped');";

/* Returns OK/NOTFOUND/ERROR and fills out (size OKEGW_NAME_MAX). */
static int get_route(okegw_store *s, const char *kind, const char *id, char *out, char *parent,
                     int *confirmed) {
  sqlite3_stmt *st = s->st_get;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  int res = OKEGW_STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    const char *c = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, OKEGW_NAME_MAX, "%s", c ? c : "");
    const char *p = (const char *)sqlite3_column_text(st, 1);
    if (parent)
      snprintf(parent, 64, "%s", p ? p : "");
    if (confirmed)
      *confirmed = sqlite3_column_int(st, 2);
    res = OKEGW_STORE_OK;
  } else if (rc != SQLITE_DONE) {
    res = OKEGW_STORE_ERROR;
  }
  sqlite3_reset(st);
  return res;
}

static int put_route(okegw_store *s, const char *kind, const char *id, const char *connector,
                     const char *parent, int confirmed) {
  sqlite3_stmt *st = s->st_upsert;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, connector, -1, SQLITE_STATIC);
  if (parent)
    sqlite3_bind_text(st, 4, parent, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 4);
  sqlite3_bind_int(st, 5, confirmed);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

static void run_job(okegw_store *s, job *j) {
  okegw_route *r = &j->result;
  switch (j->kind) {
  case JOB_LOOKUP:
    r->rc = get_route(s, j->rkind, j->id, r->connector, r->parent, &r->confirmed);
    r->existed = r->rc == OKEGW_STORE_OK;
    break;
  case JOB_BIND: {
    int had = get_route(s, j->rkind, j->id, r->prev_connector, NULL, NULL);
    if (had == OKEGW_STORE_ERROR) {
      r->rc = had;
      break;
    }
    r->existed = had == OKEGW_STORE_OK;
    r->rc = get_route(s, j->parent_kind, j->parent_id, r->connector, NULL, NULL);
    if (r->rc != OKEGW_STORE_OK)
      break;
    /* A known id with the same owner needs no write: the common case of a
     * repeated PUT costs two indexed reads. */
    if (!r->existed || (j->rebind && strcmp(r->prev_connector, r->connector) != 0))
      r->rc = put_route(s, j->rkind, j->id, r->connector, j->parent_id, 0);
    break;
  }
  case JOB_CONFIRM: {
    sqlite3_stmt *st = s->st_confirm;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, j->rkind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->id, -1, SQLITE_STATIC);
    r->rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
    sqlite3_reset(st);
    break;
  }
  case JOB_AUDIT: {
    sqlite3_stmt *st = s->st_audit;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, j->at, -1, SQLITE_STATIC);
    for (int i = 0; i < 9; i++)
      bind_text(st, 2 + i, j->audit[i]);
    /* "flow3.patch_association" -> 3 */
    const char *in = j->audit[1];
    if (in && strncmp(in, "flow", 4) == 0 && in[4] >= '0' && in[4] <= '9')
      sqlite3_bind_int(st, 11, in[4] - '0');
    else
      sqlite3_bind_null(st, 11);
    sqlite3_bind_int(st, 12, j->status);
    sqlite3_bind_double(st, 13, (double)(long long)(j->latency_ms * 1000) / 1000.0);
    bind_text(st, 14, j->audit[9]);
    if (j->delivery_id) {
      char did[24];
      snprintf(did, sizeof did, "%lld", j->delivery_id);
      sqlite3_bind_text(st, 15, did, -1, SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(st, 15);
    }
    sqlite3_bind_int(st, 16, j->attempts ? j->attempts : 1);
    r->rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
    sqlite3_reset(st);
    break;
  }
  case JOB_DADD:
  case JOB_DUPDATE:
  case JOB_DLOAD:
  case JOB_DREQUEUE:
  case JOB_DGET:
  case JOB_DPRUNE: j->drc = run_delivery_job(s, j); break;
  case JOB_PUT:
    r->rc = OKEGW_STORE_OK;
    for (size_t i = 0; i < j->nids && r->rc == OKEGW_STORE_OK; i++)
      r->rc = put_route(s, j->rkind, j->ids[i], j->connector, NULL, 1);
    snprintf(r->connector, sizeof r->connector, "%s", j->connector);
    break;
  }
}

static void exec_simple(okegw_store *s, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s: %s", sql, err ? err : "?");
    sqlite3_free(err);
  }
}

/* A failed batch: nothing of it was written. */
static void rollback(okegw_store *s, job *batch) {
  okegw_log(OKEGW_LOG_ERROR, NULL, "store: transaction failed: %s", sqlite3_errmsg(s->db));
  if (!sqlite3_get_autocommit(s->db))
    exec_simple(s, "ROLLBACK");
  for (job *j = batch; j; j = j->next)
    if (j->kind != JOB_LOOKUP && j->kind != JOB_DGET)
      j->result.rc = j->drc = OKEGW_STORE_ERROR;
}

static void store_thread(void *arg) {
  okegw_store *s = arg;
  for (;;) {
    uv_mutex_lock(&s->mu);
    while (!s->todo.head && !s->stopping)
      uv_cond_wait(&s->cond, &s->mu);
    job *batch = q_take_all(&s->todo);
    int stop = s->stopping && !batch;
    uv_mutex_unlock(&s->mu);
    if (stop)
      break;
    /* Group commit: everything that queued up while we were busy goes into
     * one transaction, so one fsync serves many requests. Reads alone need
     * none: each runs on its own snapshot. */
    int writes = 0;
    for (job *j = batch; j && !writes; j = j->next)
      writes = j->kind != JOB_LOOKUP && j->kind != JOB_DGET;
    if (!writes) {
      for (job *j = batch; j; j = j->next)
        run_job(s, j);
    } else if (sqlite3_step(s->st_begin), sqlite3_reset(s->st_begin) != SQLITE_OK) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "store: cannot begin: %s", sqlite3_errmsg(s->db));
      for (job *j = batch; j; j = j->next)
        j->result.rc = j->drc = OKEGW_STORE_ERROR;
    } else {
      /* after a disk-full or I/O error SQLite may have rolled the whole
       * transaction back itself: then the rest must not run outside it */
      int lost = 0;
      for (job *j = batch; j && !lost; j = j->next) {
        run_job(s, j);
        lost = sqlite3_get_autocommit(s->db);
      }
      if (!lost) {
        sqlite3_step(s->st_commit);
        lost = sqlite3_reset(s->st_commit) != SQLITE_OK;
      }
      if (lost)
        rollback(s, batch);
    }
    uv_mutex_lock(&s->mu);

    for (job *j = batch, *next; j; j = next) {
      next = j->next;
      q_push(&s->done, j);
    }
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
  }
}

static void on_async(uv_async_t *a) {
  okegw_store *s = a->data;
  uv_mutex_lock(&s->mu);
  job *list = q_take_all(&s->done);
  uv_mutex_unlock(&s->mu);
  for (job *j = list, *next; j; j = next) {
    next = j->next;
    if (j->dcb) {
      j->dcb(j->ud, j->drc, j->did, j->recs, j->nrecs);
      j->recs = NULL; /* the callback owns them */
      j->nrecs = 0;
    } else if (j->cb) {
      j->cb(j->ud, &j->result);
    }
    job_free(j);
  }
}

static void finalize_all(okegw_store *s) {
  sqlite3_stmt **all[] = {&s->st_get,     &s->st_upsert, &s->st_confirm, &s->st_audit, &s->st_dadd,
                          &s->st_dupdate, &s->st_dget,   &s->st_begin,   &s->st_commit};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    sqlite3_finalize(*all[i]);
    *all[i] = NULL;
  }
}

int okegw_store_open(uv_loop_t *loop, const char *path, const char *sync, okegw_store **out,
                     char **err) {
  if (strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0) {
    *err = okegw_asprintf("store: synchronous must be full or normal, not '%s'", sync);
    return -1;
  }
  okegw_store *s = calloc(1, sizeof *s);
  if (!s) {
    *err = okegw_strdup("out of memory");
    return -1;
  }
  s->loop = loop;
  /* Startup may block: nothing is being served yet. */
  int rc = sqlite3_open_v2(path, &s->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  char *msg = NULL;
  if (rc == SQLITE_OK)
    sqlite3_busy_timeout(s->db, 5000);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(s->db, schema, NULL, NULL, &msg);
  if (rc == SQLITE_OK) {
    /* stores made before routes had `confirmed`: add it (an error only says
     * it is there already) */
    sqlite3_exec(s->db, "ALTER TABLE routes ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 1", NULL,
                 NULL, NULL);
    sqlite3_exec(s->db, "ALTER TABLE audit ADD COLUMN event TEXT", NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK) {
    char *sql = okegw_asprintf("PRAGMA synchronous=%s", sync);
    rc = sql ? sqlite3_exec(s->db, sql, NULL, NULL, &msg) : SQLITE_NOMEM;
    free(sql);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(
        s->db, "SELECT connector, parent, confirmed FROM routes WHERE kind = ?1 AND id = ?2", -1,
        SQLITE_PREPARE_PERSISTENT, &s->st_get, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(
        s->db,
        "INSERT INTO routes(kind, id, connector, parent, confirmed) VALUES (?1,?2,?3,?4,?5) "
        "ON CONFLICT(kind, id) DO UPDATE SET connector = excluded.connector, "
        "parent = coalesce(excluded.parent, parent), updated_at = "
        "strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE connector <> "
        "excluded.connector OR parent IS NOT excluded.parent",
        -1, SQLITE_PREPARE_PERSISTENT, &s->st_upsert, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(s->db,
                            "UPDATE routes SET confirmed = 1 WHERE kind = ?1 AND id = ?2 AND "
                            "confirmed = 0",
                            -1, SQLITE_PREPARE_PERSISTENT, &s->st_confirm, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(
        s->db,
        "INSERT INTO audit(at, request_id, interaction, caller, connector, method, path, "
        "resource_id, mapping, body_sha256, flow, status, latency_ms, event, delivery_id, "
        "attempts) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
        -1, SQLITE_PREPARE_PERSISTENT, &s->st_audit, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(s->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &s->st_begin,
                            NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(s->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &s->st_commit, NULL);
  if (rc != SQLITE_OK) {
    *err = okegw_asprintf("store %s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    finalize_all(s);
    sqlite3_close(s->db);
    free(s);
    return -1;
  }
  uv_mutex_init(&s->mu);
  uv_cond_init(&s->cond);
  uv_async_init(loop, &s->async, on_async);
  s->async.data = s;
  if (uv_thread_create(&s->thread, store_thread, s) != 0) {
    *err = okegw_strdup("cannot start the store thread");
    uv_close((uv_handle_t *)&s->async, NULL);
    finalize_all(s);
    sqlite3_close(s->db);
    uv_mutex_destroy(&s->mu);
    uv_cond_destroy(&s->cond);
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

static int submit(okegw_store *s, job *j) {
  uv_mutex_lock(&s->mu);
  if (s->stopping) {
    uv_mutex_unlock(&s->mu);
    job_free(j);
    return -1;
  }
  q_push(&s->todo, j);
  uv_cond_signal(&s->cond);
  uv_mutex_unlock(&s->mu);
  return 0;
}

static job *job_new(enum job_kind k, const char *rkind, const char *id, okegw_route_cb cb,
                    void *ud) {
  job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->kind = k;
  j->rkind = okegw_strdup(rkind);
  j->id = okegw_strdup(id ? id : "");
  j->cb = cb;
  j->ud = ud;
  if (!j->rkind || !j->id) {
    job_free(j);
    return NULL;
  }
  return j;
}

int okegw_store_lookup(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                       void *ud) {
  job *j = job_new(JOB_LOOKUP, kind, id, cb, ud);
  return j ? submit(s, j) : -1;
}

int okegw_store_bind(okegw_store *s, const char *kind, const char *id, const char *parent_kind,
                     const char *parent_id, int rebind, okegw_route_cb cb, void *ud) {
  job *j = job_new(JOB_BIND, kind, id, cb, ud);
  if (!j)
    return -1;
  j->parent_kind = okegw_strdup(parent_kind);
  j->parent_id = okegw_strdup(parent_id);
  j->rebind = rebind;
  if (!j->parent_kind || !j->parent_id) {
    job_free(j);
    return -1;
  }
  return submit(s, j);
}

int okegw_store_audit(okegw_store *s, const okegw_audit_rec *a) {
  job *j = job_new(JOB_AUDIT, "audit", NULL, NULL, NULL);
  if (!j)
    return -1;
  const char *src[10] = {
      a->request_id, a->interaction, a->caller,  a->connector,   a->method,
      a->path,       a->resource_id, a->mapping, a->body_sha256, a->event ? a->event : "request"};
  for (int i = 0; i < 10; i++)
    j->audit[i] = src[i] && *src[i] ? okegw_strdup(src[i]) : NULL;
  j->delivery_id = a->delivery_id;
  j->attempts = a->attempts;
  j->status = a->status;
  j->latency_ms = a->latency_ms;
  /* the time it ended, as RFC 3339 UTC with milliseconds */
  okegw_format_rfc3339(okegw_wall_ms(), 1, j->at, sizeof j->at);
  return submit(s, j);
}

int okegw_store_confirm(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                        void *ud) {
  job *j = job_new(JOB_CONFIRM, kind, id, cb, ud);
  return j ? submit(s, j) : -1;
}

static job *delivery_job(enum job_kind k, okegw_delivery_cb cb, void *ud) {
  job *j = job_new(k, "delivery", NULL, NULL, ud);
  if (j)
    j->dcb = cb;
  return j;
}

int okegw_store_delivery_add(okegw_store *s, const okegw_delivery_rec *r, okegw_delivery_cb cb,
                             void *ud) {
  job *j = delivery_job(JOB_DADD, cb, ud);
  if (!j)
    return -1;
  j->drec = r;
  return submit(s, j);
}

int okegw_store_delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body,
                                okegw_delivery_cb cb, void *ud) {
  job *j = delivery_job(JOB_DUPDATE, cb, ud);
  if (!j)
    return -1;
  /* only what the UPDATE writes */
  okegw_delivery_rec *c = &j->dcopy;
  c->id = r->id;
  memcpy(c->state, r->state, sizeof c->state);
  c->attempts = r->attempts;
  c->next_ms = r->next_ms;
  c->since_ms = r->since_ms;
  c->last_status = r->last_status;
  c->delivered_ms = r->delivered_ms;
  c->keep_until_ms = r->keep_until_ms;
  j->drop_body = drop_body;
  if (r->last_error && !(c->last_error = okegw_strdup(r->last_error))) {
    job_free(j);
    return -1;
  }
  return submit(s, j);
}

int okegw_store_delivery_load_open(okegw_store *s, okegw_delivery_cb cb, void *ud) {
  job *j = delivery_job(JOB_DLOAD, cb, ud);
  return j ? submit(s, j) : -1;
}

int okegw_store_delivery_requeued(okegw_store *s, okegw_delivery_cb cb, void *ud) {
  job *j = delivery_job(JOB_DREQUEUE, cb, ud);
  return j ? submit(s, j) : -1;
}

int okegw_store_delivery_get(okegw_store *s, long long id, okegw_delivery_cb cb, void *ud) {
  job *j = delivery_job(JOB_DGET, cb, ud);
  if (!j)
    return -1;
  j->num = id;
  return submit(s, j);
}

int okegw_store_delivery_prune(okegw_store *s, long long ended_before_ms) {
  job *j = delivery_job(JOB_DPRUNE, NULL, NULL);
  if (!j)
    return -1;
  j->num = ended_before_ms;
  return submit(s, j);
}

int okegw_store_put(okegw_store *s, const char *kind, const char *const *ids, size_t n,
                    const char *connector, okegw_route_cb cb, void *ud) {
  job *j = job_new(JOB_PUT, kind, NULL, cb, ud);
  if (!j)
    return -1;
  j->connector = okegw_strdup(connector);
  j->ids = calloc(n ? n : 1, sizeof *j->ids);
  if (!j->connector || !j->ids) {
    job_free(j);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (!(j->ids[i] = okegw_strdup(ids[i]))) {
      job_free(j);
      return -1;
    }
    j->nids++;
  }
  return submit(s, j);
}

static void on_async_closed(uv_handle_t *h) {
  okegw_store *s = h->data;
  void (*cb)(void *) = s->closed;
  void *arg = s->closed_arg;
  uv_mutex_destroy(&s->mu);
  uv_cond_destroy(&s->cond);
  free(s);
  if (cb)
    cb(arg);
}

void okegw_store_close(okegw_store *s, void (*done)(void *), void *arg) {
  if (!s) {
    if (done)
      done(arg);
    return;
  }
  uv_mutex_lock(&s->mu);
  s->stopping = 1;
  uv_cond_signal(&s->cond);
  uv_mutex_unlock(&s->mu);
  uv_thread_join(&s->thread);
  on_async(&s->async); /* deliver the last results */
  finalize_all(s);
  sqlite3_close(s->db);
  s->closed = done;
  s->closed_arg = arg;
  uv_close((uv_handle_t *)&s->async, on_async_closed);
}
