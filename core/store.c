#include "store.h"
#include "log.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

enum job_kind { JOB_LOOKUP, JOB_BIND, JOB_PUT, JOB_CONFIRM, JOB_AUDIT };

/* A unit of work for the store thread. Strings are owned by the job. The
 * queues are intrusive singly linked FIFOs guarded by the store mutex. */
typedef struct job {
  struct job *next;
  enum job_kind kind;
  char *rkind, *id, *parent_kind, *parent_id, *connector;
  char **ids;
  size_t nids;
  int rebind;
  char *audit[9]; /* JOB_AUDIT strings, in okegw_audit_rec order */
  int status;
  double latency_ms;
  char at[32];
  okegw_route result;
  okegw_route_cb cb;
  void *ud;
} job;

typedef struct queue {
  job *head, *tail;
} queue;

struct okegw_store {
  uv_loop_t *loop;
  sqlite3 *db;
  sqlite3_stmt *st_get, *st_upsert, *st_confirm, *st_audit;
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
  free(j);
}

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
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
    "  attempts INTEGER NOT NULL DEFAULT 1, mapping TEXT, body_sha256 TEXT, delivery_id TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_resource ON audit(resource_id, at);"
    "CREATE INDEX IF NOT EXISTS audit_at ON audit(at);";

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
    for (int i = 0; i < 9; i++) {
      if (j->audit[i])
        sqlite3_bind_text(st, 2 + i, j->audit[i], -1, SQLITE_STATIC);
      else
        sqlite3_bind_null(st, 2 + i);
    }
    /* "flow3.patch_association" -> 3 */
    const char *in = j->audit[1];
    if (in && strncmp(in, "flow", 4) == 0 && in[4] >= '0' && in[4] <= '9')
      sqlite3_bind_int(st, 11, in[4] - '0');
    else
      sqlite3_bind_null(st, 11);
    sqlite3_bind_int(st, 12, j->status);
    sqlite3_bind_double(st, 13, (double)(long long)(j->latency_ms * 1000) / 1000.0);
    r->rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
    sqlite3_reset(st);
    break;
  }
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
     * one transaction, so one fsync serves many requests. */
    exec_simple(s, "BEGIN IMMEDIATE");
    for (job *j = batch; j; j = j->next)
      run_job(s, j);
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "store: commit failed: %s", sqlite3_errmsg(s->db));
      exec_simple(s, "ROLLBACK");
      for (job *j = batch; j; j = j->next)
        if (j->kind != JOB_LOOKUP)
          j->result.rc = OKEGW_STORE_ERROR;
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
    if (j->cb)
      j->cb(j->ud, &j->result);
    job_free(j);
  }
}

int okegw_store_open(uv_loop_t *loop, const char *path, okegw_store **out, char **err) {
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
        "resource_id, mapping, body_sha256, flow, status, latency_ms) "
        "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        -1, SQLITE_PREPARE_PERSISTENT, &s->st_audit, NULL);
  if (rc != SQLITE_OK) {
    *err = okegw_asprintf("store %s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    sqlite3_finalize(s->st_get);
    sqlite3_finalize(s->st_upsert);
    sqlite3_finalize(s->st_confirm);
    sqlite3_finalize(s->st_audit);
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
    sqlite3_finalize(s->st_get);
    sqlite3_finalize(s->st_upsert);
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
  const char *src[9] = {a->request_id, a->interaction, a->caller,  a->connector,  a->method,
                        a->path,       a->resource_id, a->mapping, a->body_sha256};
  for (int i = 0; i < 9; i++)
    j->audit[i] = src[i] && *src[i] ? okegw_strdup(src[i]) : NULL;
  j->status = a->status;
  j->latency_ms = a->latency_ms;
  /* the time it ended, as RFC 3339 UTC with milliseconds */
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(j->at, sizeof j->at, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(j->at + n, sizeof j->at - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
  return submit(s, j);
}

int okegw_store_confirm(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                        void *ud) {
  job *j = job_new(JOB_CONFIRM, kind, id, cb, ud);
  return j ? submit(s, j) : -1;
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
  sqlite3_finalize(s->st_get);
  sqlite3_finalize(s->st_upsert);
  sqlite3_finalize(s->st_confirm);
  sqlite3_finalize(s->st_audit);
  sqlite3_close(s->db);
  s->closed = done;
  s->closed_arg = arg;
  uv_close((uv_handle_t *)&s->async, on_async_closed);
}
