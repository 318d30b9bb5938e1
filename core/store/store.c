/* The store's handle, its thread and the routes table; deliveries are in
 * store_deliveries.c, the audit trail in store_audit.c (see store.h). */
#include "store/store_db.h"
#include "store/pg.h"
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"
#include "ops/metrics.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum job_kind {
  JOB_LOOKUP,
  JOB_BIND,
  JOB_PUT,
  JOB_CLAIM,
  JOB_FACTS,
  JOB_CONFIRM,
  JOB_AUDIT,
  JOB_DADD,
  JOB_DUPDATE,
  JOB_DLOAD,
  JOB_DREQUEUE,
  JOB_DGET,
  JOB_DPRUNE,
  JOB_LRELEASE, /* PostgreSQL: let a resource's lease go (connector, id) */
  JOB_APRUNE,
  JOB_PRECORD,
  JOB_PLAST
};

/* A unit of work for the store thread. Strings are owned by the job. The
 * queues are intrusive singly linked FIFOs guarded by the store mutex. */
typedef struct okegw_store_job job;
struct okegw_store_job {
  job *next;
  okegw_store_port *port; /* where it goes back to (store.h: ports) */
  enum job_kind kind;
  int ran; /* the writer ran it (a failed batch stops at the failure) */
  char *rkind, *id, *parent_kind, *parent_id, *connector, *owner, *facts;
  char **ids;
  size_t nids;
  char *audit[OKEGW_AUDIT_TEXTS]; /* JOB_AUDIT strings, in okegw_audit_rec order */
  int has_audit;                  /* JOB_AUDIT, or a JOB_DUPDATE that writes a row too */
  char **factsv;                  /* JOB_PUT: facts per id (entries may be NULL) */
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
  int with_body; /* DGET: read the body too */
  long long num; /* DGET: the id; DPRUNE: the cut-off */
  okegw_delivery_rec *recs;
  size_t nrecs;
  int drc;
  long long did;
  int lease;   /* DADD (PostgreSQL): OKEGW_LEASE_* of its resource (pg_db.h) */
  uint64_t t0; /* DLOAD, DREQUEUE (PostgreSQL): uv_hrtime when it began */
  okegw_delivery_cb dcb;
  okegw_route_write *writes; /* DUPDATE: route writes in its transaction */
  size_t nwrites;
  /* phase history: the rows to write (PRECORD) or read (PLAST); rc in drc */
  okegw_phase_rec *phases;
  size_t nphases;
  okegw_phase_cb pcb;
};

typedef okegw_store_queue queue;

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
  free(j->owner);
  free(j->facts);
  free(j->writes);
  for (size_t i = 0; i < j->nids; i++) {
    free(j->ids[i]);
    if (j->factsv)
      free(j->factsv[i]);
  }
  free(j->factsv);
  free(j->ids);
  for (size_t i = 0; i < sizeof j->audit / sizeof j->audit[0]; i++)
    free(j->audit[i]);
  okegw_delivery_rec_free(&j->dcopy);
  for (size_t i = 0; i < j->nrecs; i++)
    okegw_delivery_rec_free(&j->recs[i]);
  free(j->recs);
  for (size_t i = 0; i < j->nphases; i++)
    okegw_phase_rec_free(&j->phases[i]);
  free(j->phases);
  free(j);
}

/* A list of jobs whose callbacks will not run. */
static void jobs_free(job *list) {
  for (job *j = list, *next; j; j = next) {
    next = j->next;
    job_free(j);
  }
}

/* Jobs that only read: a batch of them alone needs no transaction, and a
 * failed batch does not make their result an error. */
static int job_reads(const job *j) {
  return j->kind == JOB_LOOKUP || j->kind == JOB_DGET || j->kind == JOB_PLAST;
}

/* Writes whose caller is told nothing that needs them on disk: audit rows
 * (written after the answer anyway) and the route bound or claimed for a
 * push, which is made durable by the push's own delivery row, queued right
 * after it. A batch of only these leaves its transaction open, and the next
 * write that must be durable commits them together: two commits per push
 * instead of four. */
static int job_deferrable(const okegw_store *s, const job *j) {
  /* With PostgreSQL an open transaction can be lost with its connection
   * while later writes commit on the next one: a route must not wait there
   * for its push (the push would be acknowledged without it). */
  if (s->pg && (j->kind == JOB_BIND || j->kind == JOB_CLAIM))
    return 0;
  return j->kind == JOB_AUDIT || j->kind == JOB_APRUNE || j->kind == JOB_BIND ||
         j->kind == JOB_CLAIM || j->kind == JOB_LRELEASE;
}

/* Jobs that write routes: lookups wait for them on the writer's queue. */
static int job_writes_routes(const job *j) {
  return j->kind == JOB_PUT || j->kind == JOB_BIND || j->kind == JOB_CLAIM ||
         j->kind == JOB_FACTS || j->kind == JOB_CONFIRM || (j->kind == JOB_DUPDATE && j->nwrites);
}

/* How long deferred writes wait for a commit at most (ns). */
#define DEFER_NS (20 * 1000 * 1000ULL)

/* Prepares a statement once, on the thread that owns the connection. */
sqlite3_stmt *okegw_store__stmt(okegw_store *s, sqlite3_stmt **slot, const char *sql) {
  if (!*slot &&
      sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s", sqlite3_errmsg(s->db));
    return NULL;
  }
  sqlite3_reset(*slot);
  sqlite3_clear_bindings(*slot);
  return *slot;
}

void okegw_store__bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

void okegw_store__bind_ms(sqlite3_stmt *st, int i, long long v) {
  if (v)
    sqlite3_bind_int64(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

void okegw_store__err(okegw_store *s, char **err, const char *what) {
  if (err)
    *err = what ? okegw_asprintf("%s: %s", what, sqlite3_errmsg(s->db))
                : okegw_strdup(sqlite3_errmsg(s->db));
}

static int apply_writes(okegw_store *s, const okegw_route_write *w, size_t n);
static int audit_write(okegw_store *s, job *j);

static int run_delivery_job(okegw_store *s, job *j) {
  switch (j->kind) {
  case JOB_DADD: return okegw_store__delivery_add(s, j->drec, j->lease, &j->did);
  case JOB_DUPDATE: {
    /* NOTFOUND: another instance took the resource over; what the attempt
     * opened and its audit row are written all the same (the peer has it) */
    int rc = okegw_store__delivery_update(s, &j->dcopy, j->drop_body), wrc = OKEGW_STORE_OK;
    if (rc == OKEGW_STORE_OK || rc == OKEGW_STORE_NOTFOUND)
      wrc = apply_writes(s, j->writes, j->nwrites);
    if (wrc == OKEGW_STORE_OK && rc != OKEGW_STORE_ERROR && j->has_audit)
      wrc = audit_write(s, j);
    return wrc != OKEGW_STORE_OK ? wrc : rc;
  }
  case JOB_DLOAD:
  case JOB_DREQUEUE:
    j->t0 = uv_hrtime();
    return okegw_store__deliveries_read(s, j->kind == JOB_DREQUEUE, &j->recs, &j->nrecs);
  case JOB_LRELEASE: return okegw_pg__lease_release(s, j->connector, j->id);
  case JOB_DGET: {
    if (!(j->recs = calloc(1, sizeof *j->recs)))
      return OKEGW_STORE_ERROR;
    int rc = okegw_store__delivery_get(s, j->num, j->with_body, j->recs);
    if (rc == OKEGW_STORE_OK) {
      j->nrecs = 1;
    } else {
      free(j->recs);
      j->recs = NULL;
    }
    return rc;
  }
  case JOB_DPRUNE: return okegw_store__delivery_prune(s, j->num);
  default: return OKEGW_STORE_ERROR;
  }
}

/* SQL okegw_lower_uuids(text): the text with every UUID in lower case. */
static void sql_lower_uuids(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const unsigned char *t = sqlite3_value_text(argv[0]);
  if (!t) {
    sqlite3_result_null(ctx);
    return;
  }
  char *copy = okegw_strdup((const char *)t);
  if (!copy) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  okegw_uuids_lower_in(copy);
  sqlite3_result_text(ctx, copy, -1, free);
}

/* Schema 5 names the ended deliveries without an IN list of three: SQLite
 * evaluates such a list in a partial index's predicate by building a
 * temporary b-tree, on every insert and on both sides of every update of a
 * delivery. The index is made again with the cheaper, equal predicate. */
static int migrate_5(sqlite3 *db, char **msg) {
  int rc = sqlite3_exec(db,
                        "BEGIN IMMEDIATE;"
                        "CREATE TEMP TABLE okegw_v AS SELECT value FROM meta "
                        "  WHERE key = 'schema_version' AND value IN ('1', '2', '3', '4');",
                        NULL, NULL, msg);
  sqlite3_stmt *st = NULL;
  int old = 0;
  if (rc == SQLITE_OK &&
      (rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM temp.okegw_v", -1, &st, NULL)) ==
          SQLITE_OK &&
      (rc = sqlite3_step(st)) == SQLITE_ROW) {
    old = sqlite3_column_int(st, 0) > 0;
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_OK && old)
    rc = sqlite3_exec(db,
                      "DROP INDEX IF EXISTS deliveries_ended;"
                      "CREATE INDEX deliveries_ended ON deliveries(updated_ms) "
                      "  WHERE " OKEGW_DLV_ENDED_SQL ";"
                      "UPDATE meta SET value = '5' WHERE key = 'schema_version';",
                      NULL, NULL, msg);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "DROP TABLE temp.okegw_v; COMMIT;", NULL, NULL, msg);
  if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* Schema 3 records phase changes: the table phase_history (made with the
 * schema, empty in a store from before) and audit.phase, the phase each
 * exchange ran under (NULL in older rows), and audit.differences, where a
 * shadow connector's mirrored answer differed from the live one.
 * Schema 4 keeps the acceptance evidence: the tables accept_runs and
 * accept_steps (made with the schema) and audit.violations and
 * audit.mapping_error (NULL in older rows). */
static int migrate_3(sqlite3 *db, char **msg) {
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, msg);
  if (rc != SQLITE_OK)
    return rc;
  static const char *const cols[] = {"phase", "differences", "violations", "mapping_error"};
  for (size_t i = 0; rc == SQLITE_OK && i < sizeof cols / sizeof cols[0]; i++) {
    sqlite3_stmt *st = NULL;
    int has = 0;
    char *q = sqlite3_mprintf("SELECT count(*) FROM pragma_table_info('audit') WHERE name = '%q'",
                              cols[i]);
    rc = q ? sqlite3_prepare_v2(db, q, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(q);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      has = sqlite3_column_int(st, 0) > 0;
      rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    char *alter = rc == SQLITE_OK && !has
                      ? sqlite3_mprintf("ALTER TABLE audit ADD COLUMN %s TEXT", cols[i])
                      : NULL;
    if (alter)
      rc = sqlite3_exec(db, alter, NULL, NULL, msg);
    sqlite3_free(alter);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db,
                      "UPDATE meta SET value = '4' WHERE key = 'schema_version' AND value "
                      "IN ('1', '2', '3');"
                      "COMMIT;",
                      NULL, NULL, msg);
  if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc == SQLITE_OK ? migrate_5(db, msg) : rc;
}

/* Schema 2 keeps every id in lower case, the form lookups use (a UUID's
 * case carries no meaning). A store of schema 1 may hold upper-case ids:
 * they are lowered once; where the lower-case form was written since, that
 * newer row stays. Open deliveries keep their order with later pushes of
 * the same resource. The audit trail stays as it happened. */
static int migrate(sqlite3 *db, char **msg) {
  int rc = sqlite3_create_function(db, "okegw_lower_uuids", 1,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                                   sql_lower_uuids, NULL, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_exec(
      db,
      "BEGIN IMMEDIATE;"
      "CREATE TEMP TABLE okegw_v AS SELECT value FROM meta WHERE key = 'schema_version';"
      "UPDATE OR IGNORE routes SET id = okegw_lower_uuids(id), parent = okegw_lower_uuids(parent) "
      "  WHERE (SELECT value FROM okegw_v) = '1' AND (id GLOB '*[A-F]*' OR parent GLOB '*[A-F]*');"
      "DELETE FROM routes WHERE (SELECT value FROM okegw_v) = '1' AND id GLOB '*[A-F]*' AND "
      "  id <> okegw_lower_uuids(id);"
      "UPDATE deliveries SET resource = okegw_lower_uuids(resource), "
      "  resource_id = okegw_lower_uuids(resource_id) "
      "  WHERE (SELECT value FROM okegw_v) = '1' AND state IN ('pending', 'dead') AND "
      "  (resource GLOB '*[A-F]*' OR resource_id GLOB '*[A-F]*');"
      "UPDATE meta SET value = '2' WHERE key = 'schema_version' AND value = '1';"
      "DROP TABLE temp.okegw_v;"
      "COMMIT;",
      NULL, NULL, msg);
  if (rc != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return migrate_3(db, msg);
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
    "  owner TEXT,"
    "  facts TEXT,"
    "  PRIMARY KEY (kind, id)) WITHOUT ROWID;"
    /* One row per exchange: who, what, when, how it ended, which mapping;
     * a body digest, never the body (personal data). */
    "CREATE TABLE IF NOT EXISTS audit("
    "  id INTEGER PRIMARY KEY,"
    "  at TEXT NOT NULL,"
    "  request_id TEXT, flow INTEGER, interaction TEXT, caller TEXT, connector TEXT,"
    "  method TEXT, path TEXT, resource_id TEXT, status INTEGER, latency_ms REAL,"
    "  attempts INTEGER NOT NULL DEFAULT 1, mapping TEXT, body_sha256 TEXT, delivery_id TEXT,"
    "  event TEXT, rules TEXT,"
    "  phase TEXT,"          /* the connector's phase then: off, shadow, pilot, live */
    "  differences TEXT,"    /* a mirror: where its answer differed (JSON) */
    "  violations TEXT,"     /* profile violations: [{rule, pointer, side}] (JSON) */
    "  mapping_error TEXT);" /* where a Lua mapping failed: "script.lua:12: message" */
    "CREATE INDEX IF NOT EXISTS audit_resource ON audit(resource_id, at);"
    "CREATE INDEX IF NOT EXISTS audit_at ON audit(at);"
    /* Every phase change a start or reload applied (DESIGN §8), only ever
     * added to: acceptance evidence. from_phase NULL: the connector was new;
     * reason: its section's phase_reason; config_sha256: hex SHA-256 of the
     * configuration file that made the change; instance: which okegw
     * applied it, NULL while there is one. */
    "CREATE TABLE IF NOT EXISTS phase_history("
    "  id INTEGER PRIMARY KEY,"
    "  at_ms INTEGER NOT NULL,"
    "  connector TEXT NOT NULL,"
    "  from_phase TEXT,"
    "  to_phase TEXT NOT NULL,"
    "  reason TEXT,"
    "  config_sha256 TEXT,"
    "  instance TEXT);"
    "CREATE INDEX IF NOT EXISTS phase_history_connector ON phase_history(connector, id);"
    /* Acceptance runs (`okegw accept`): one row per run against a
     * connector, one per step it ran. Only ever added to: evidence. mode:
     * "gateway" (through the school's gateway) or "conformance" (the kit
     * against a supplier's API); outcome: passed, failed or incomplete
     * (the run did not end). */
    "CREATE TABLE IF NOT EXISTS accept_runs("
    "  id INTEGER PRIMARY KEY,"
    "  connector TEXT NOT NULL,"
    "  mode TEXT NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  passed INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  skipped INTEGER NOT NULL DEFAULT 0,"
    "  outcome TEXT NOT NULL DEFAULT 'incomplete',"
    "  config_sha256 TEXT);"
    "CREATE INDEX IF NOT EXISTS accept_runs_connector ON accept_runs(connector, id);"
    "CREATE TABLE IF NOT EXISTS accept_steps("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL,"
    "  scenario TEXT NOT NULL,"
    "  scenario_name TEXT,"
    "  step INTEGER,"
    "  name TEXT,"
    "  outcome TEXT NOT NULL," /* ok, failed, skipped */
    "  detail TEXT,"
    "  method TEXT, path TEXT, status INTEGER, ms REAL);"
    "CREATE INDEX IF NOT EXISTS accept_steps_run ON accept_steps(run_id, id);"
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
    "  WHERE " OKEGW_DLV_ENDED_SQL ";";

/* A route by (kind, id): what read_route reads, on either connection. */
#define ROUTE_GET_SQL                                                                              \
  "SELECT connector, parent, confirmed, owner, facts FROM routes WHERE kind = ?1 AND id = ?2"

/* Reads a route with st (the writer's st_get or the reader's rst_get).
 * Returns OK/NOTFOUND/ERROR and fills what is asked for (connector, then
 * r's parent, confirmed, owner and facts when r is given). */
static int read_route(sqlite3_stmt *st, const char *kind, const char *id, char *out,
                      okegw_route *r) {
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  int res = OKEGW_STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    const char *c = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, OKEGW_NAME_MAX, "%s", c ? c : "");
    if (r) {
      const char *p = (const char *)sqlite3_column_text(st, 1);
      snprintf(r->parent, sizeof r->parent, "%s", p ? p : "");
      r->confirmed = sqlite3_column_int(st, 2);
      const char *o = (const char *)sqlite3_column_text(st, 3);
      snprintf(r->owner, sizeof r->owner, "%s", o ? o : "");
      const char *f = (const char *)sqlite3_column_text(st, 4);
      snprintf(r->facts, sizeof r->facts, "%s", f ? f : "");
    }
    res = OKEGW_STORE_OK;
  } else if (rc != SQLITE_DONE) {
    res = OKEGW_STORE_ERROR;
  }
  sqlite3_reset(st);
  return res;
}

static int get_route(okegw_store *s, const char *kind, const char *id, char *out, okegw_route *r) {
  if (s->pg)
    return okegw_pg__route_get(s, kind, id, out, r);
  return read_route(s->st_get, kind, id, out, r);
}

static int put_route(okegw_store *s, const char *kind, const char *id, const char *connector,
                     const char *parent, int confirmed, const char *owner, const char *facts) {
  if (s->pg)
    return okegw_pg__route_put(s, kind, id, connector, parent, confirmed, owner, facts);
  sqlite3_stmt *st = s->st_upsert;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, connector, -1, SQLITE_STATIC);
  okegw_store__bind_text(st, 4, parent);
  sqlite3_bind_int(st, 5, confirmed);
  okegw_store__bind_text(st, 6, owner);
  okegw_store__bind_text(st, 7, facts);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

/* INSERT unless (kind, id) is there: 1 inserted, 0 there already, or ERROR. */
static int claim_route(okegw_store *s, const char *kind, const char *id, const char *connector,
                       const char *owner) {
  if (s->pg)
    return okegw_pg__route_claim(s, kind, id, connector, owner);
  sqlite3_stmt *st = okegw_store__stmt(s, &s->st_claim,
                                       "INSERT INTO routes(kind, id, connector, confirmed, owner) "
                                       "VALUES (?1,?2,?3,1,?4) ON CONFLICT(kind, id) DO NOTHING");
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, connector, -1, SQLITE_STATIC);
  okegw_store__bind_text(st, 4, owner);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc != SQLITE_DONE ? OKEGW_STORE_ERROR : sqlite3_changes(s->db) > 0;
}

static int set_facts(okegw_store *s, const char *kind, const char *id, const char *facts) {
  if (s->pg)
    return okegw_pg__route_facts(s, kind, id, facts);
  sqlite3_stmt *st =
      okegw_store__stmt(s, &s->st_facts,
                        "UPDATE routes SET facts = json_patch(coalesce(facts, '{}'), ?3) "
                        "WHERE kind = ?1 AND id = ?2");
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  okegw_store__bind_text(st, 3, facts);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return OKEGW_STORE_ERROR;
  return sqlite3_changes(s->db) > 0 ? OKEGW_STORE_OK : OKEGW_STORE_NOTFOUND;
}

static int confirm_route(okegw_store *s, const char *kind, const char *id) {
  if (s->pg)
    return okegw_pg__route_confirm(s, kind, id);
  sqlite3_stmt *st = s->st_confirm;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  sqlite3_reset(st);
  return rc;
}

/* A canceled deelname no longer lets its TA read its person's enrolments,
 * unless another open deelname of that person is with the same TA. */
static int unlink_person(okegw_store *s, const char *id, const char *connector) {
  if (s->pg)
    return okegw_pg__unlink_person(s, id, connector);
  sqlite3_stmt *st = okegw_store__stmt(
      s, &s->st_unlink,
      "DELETE FROM routes WHERE kind = 'ta_person' AND id = (SELECT json_extract(facts, "
      "'$.person') || '@' || ?2 FROM routes WHERE kind = 'association' AND id = ?1) AND NOT "
      "EXISTS (SELECT 1 FROM routes o, routes a WHERE a.kind = 'association' AND a.id = ?1 AND "
      "o.kind = 'association' AND o.id <> ?1 AND o.connector = ?2 AND json_extract(o.facts, "
      "'$.person') = json_extract(a.facts, '$.person') AND json_extract(o.facts, '$.canceled') "
      "IS NOT 1)");
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, connector, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

/* The route writes that travel with a delivery's end. A missing route for
 * facts is no error: the id may have been pruned meanwhile. */
static int apply_writes(okegw_store *s, const okegw_route_write *w, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int rc = OKEGW_STORE_OK;
    switch (w[i].op) {
    case OKEGW_RW_PUT:
      rc = put_route(s, w[i].kind, w[i].id, w[i].connector, NULL, 1, NULL, NULL);
      break;
    case OKEGW_RW_CONFIRM: rc = confirm_route(s, w[i].kind, w[i].id); break;
    case OKEGW_RW_FACTS:
      rc = set_facts(s, w[i].kind, w[i].id, w[i].facts);
      if (rc == OKEGW_STORE_NOTFOUND)
        rc = OKEGW_STORE_OK;
      break;
    case OKEGW_RW_UNLINK_PERSON: rc = unlink_person(s, w[i].id, w[i].connector); break;
    }
    if (rc != OKEGW_STORE_OK)
      return rc;
  }
  return OKEGW_STORE_OK;
}

static void run_job(okegw_store *s, job *j) {
  okegw_route *r = &j->result;
  switch (j->kind) {
  case JOB_LOOKUP:
    r->rc = get_route(s, j->rkind, j->id, r->connector, r);
    r->existed = r->rc == OKEGW_STORE_OK;
    break;
  case JOB_BIND: {
    int had = get_route(s, j->rkind, j->id, r->prev_connector, r);
    if (had == OKEGW_STORE_ERROR) {
      r->rc = had;
      break;
    }
    r->existed = had == OKEGW_STORE_OK;
    if (!r->existed)
      snprintf(r->owner, sizeof r->owner, "%s", j->owner ? j->owner : "");
    r->rc = get_route(s, j->parent_kind, j->parent_id, r->connector, NULL);
    if (r->rc != OKEGW_STORE_OK)
      break;
    /* A known id needs no write: the common case of a repeated PUT costs
     * two indexed reads. */
    if (!r->existed)
      r->rc = put_route(s, j->rkind, j->id, r->connector, j->parent_id, 0, j->owner, j->facts);
    else if (j->facts && strcmp(r->facts, j->facts) != 0)
      r->rc = set_facts(s, j->rkind, j->id, j->facts);
    break;
  }
  case JOB_CLAIM:
    r->rc = OKEGW_STORE_OK;
    for (size_t i = 0; i < j->nids && r->rc == OKEGW_STORE_OK; i++) {
      int ins = claim_route(s, j->rkind, j->ids[i], j->connector, j->owner), mine = ins == 1;
      if (ins < 0) {
        r->rc = ins;
      } else if (!ins) {
        char had[OKEGW_NAME_MAX];
        if (get_route(s, j->rkind, j->ids[i], had, NULL) == OKEGW_STORE_OK) {
          mine = strcmp(had, j->connector) == 0;
          if (!mine && !r->existed) {
            r->existed = 1;
            snprintf(r->prev_connector, sizeof r->prev_connector, "%s", had);
          }
        }
      }
      if (mine && j->facts && r->rc == OKEGW_STORE_OK)
        r->rc = set_facts(s, j->rkind, j->ids[i], j->facts);
    }
    snprintf(r->connector, sizeof r->connector, "%s", j->connector);
    break;
  case JOB_FACTS: r->rc = set_facts(s, j->rkind, j->id, j->facts); break;
  case JOB_CONFIRM: r->rc = confirm_route(s, j->rkind, j->id); break;
  case JOB_AUDIT: r->rc = audit_write(s, j); break;
  case JOB_APRUNE: r->rc = okegw_store__audit_prune(s, j->at); break;
  case JOB_DADD:
  case JOB_DUPDATE:
  case JOB_DLOAD:
  case JOB_DREQUEUE:
  case JOB_DGET:
  case JOB_LRELEASE:
  case JOB_DPRUNE: j->drc = run_delivery_job(s, j); break;
  case JOB_PRECORD: j->drc = okegw_store__phases_add(s, j->phases, j->nphases); break;
  case JOB_PLAST: j->drc = okegw_store__phases_last(s, &j->phases, &j->nphases); break;
  case JOB_PUT:
    r->rc = OKEGW_STORE_OK;
    for (size_t i = 0; i < j->nids && r->rc == OKEGW_STORE_OK; i++) {
      r->rc = put_route(s, j->rkind, j->ids[i], j->connector, NULL, 1, NULL,
                        j->factsv ? j->factsv[i] : NULL);
    }
    snprintf(r->connector, sizeof r->connector, "%s", j->connector);
    break;
  }
}

static void exec_simple(okegw_store *s, const char *sql) {
  if (s->pg) {
    okegw_pg__exec(s, sql, sql, NULL);
    return;
  }
  char *err = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s: %s", sql, err ? err : "?");
    sqlite3_free(err);
  }
}

/* A failed batch: nothing of it was written. */
static void rollback(okegw_store *s, job *batch) {
  if (s->pg) {
    /* the failed statement was logged; a broken connection has no
     * transaction left to roll back */
    if (PQstatus(s->pg) == CONNECTION_OK && PQtransactionStatus(s->pg) != PQTRANS_IDLE)
      exec_simple(s, "ROLLBACK");
  } else {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: transaction failed: %s", sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db))
      exec_simple(s, "ROLLBACK");
  }
  /* a read that ran keeps its answer (job_reads); one after the failure
   * never ran and must not look like "not found" */
  for (job *j = batch; j; j = j->next)
    if (!job_reads(j) || !j->ran)
      j->result.rc = j->drc = OKEGW_STORE_ERROR;
}

/* 0 when the path still names the file okegw opened. A store file deleted
 * or replaced under a running okegw would take writes into nothing: they
 * would be gone at the next start. */
static int same_file(okegw_store *s) {
  if (s->pg)
    return 0; /* a database, not a file */
  struct stat st;
  return stat(s->path, &st) == 0 && (unsigned long long)st.st_dev == s->dev &&
                 (unsigned long long)st.st_ino == s->ino
             ? 0
             : -1;
}

/* Why writes fail, as far as the store can tell. */
static const char *write_failed(const okegw_store *s) {
  return s->pg ? "a write failed (PostgreSQL's words are above)"
               : "a write failed (disk full or I/O error?)";
}

static void set_healthy(okegw_store *s, int ok, const char *why) {
  if (__atomic_load_n(&s->healthy, __ATOMIC_RELAXED) == ok)
    return;
  __atomic_store_n(&s->healthy, ok, __ATOMIC_RELAXED);
  if (ok)
    okegw_log(OKEGW_LOG_INFO, NULL, "store %s takes writes again", s->path);
  else
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "store %s: %s; pushes are refused (503) until it takes writes again", s->path, why);
}

/* The writer session's timeouts: a row an operator's command holds, or a
 * statement stuck on the server, fails its batch (503) instead of stopping
 * every push. 0, or -1 (logged, *err set when given). */
static int pg_session(okegw_store *s, char **err) {
  static const char *const sets[] = {"SET lock_timeout = '5s'", "SET statement_timeout = '60s'"};
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
    if (okegw_pg__exec(s, "cannot set the session's timeouts", sets[i], err) != OKEGW_STORE_OK)
      return -1;
  return 0;
}

/* A session of the store's (the writer's: s; the reader's: s->rpg) that
 * broke is made again, at most once a second (*retry_at), with its settings
 * (setup): the old session took them, and its prepared statements, along.
 * 0 when it is usable, 1 when it was made again just now, -1 while it is
 * not time to try, -2 when the try failed (PQerrorMessage says why when it
 * did not connect). */
static int pg_reconnect(okegw_store *c, uint64_t *retry_at, int (*setup)(okegw_store *)) {
  if (!c->pg_broken && PQstatus(c->pg) == CONNECTION_OK)
    return 0;
  uint64_t now = uv_hrtime();
  if (*retry_at && now < *retry_at)
    return -1;
  *retry_at = now + 1000 * 1000 * 1000ULL;
  PQreset(c->pg);
  okegw_pg__forget_prepared(c);
  c->pg_broken = PQstatus(c->pg) != CONNECTION_OK || setup(c) < 0;
  if (c->pg_broken)
    return -2;
  *retry_at = 0;
  return 1;
}

static int writer_setup(okegw_store *s) { return pg_session(s, NULL); }

/* On the store thread before a batch: a connection that broke is made
 * again (pg_reconnect). 0 when there is a connection to run the batch on. */
static int pg_ready(okegw_store *s) {
  if (!s->pg_broken && PQstatus(s->pg) == CONNECTION_OK)
    return 0;
  if (s->tx_open)
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "store %s: the connection broke with a transaction open: its deferred writes "
              "(audit rows) are lost",
              s->path);
  s->tx_open = 0; /* what an open transaction held is gone with the connection */
  int rc = pg_reconnect(s, &s->pg_retry_at, writer_setup);
  if (rc == 1) {
    okegw_log(OKEGW_LOG_INFO, NULL, "store %s: connected again", s->path);
    return 0;
  }
  if (rc == -2 && PQstatus(s->pg) != CONNECTION_OK) {
    const char *m = PQerrorMessage(s->pg);
    char *why = okegw_asprintf("cannot reach PostgreSQL (%.*s)", (int)strcspn(m, "\n"), m);
    set_healthy(s, 0, why ? why : "cannot reach PostgreSQL");
    free(why);
  }
  return -1;
}

/* Ends the open transaction. Jobs run in it earlier were answered already
 * (they were deferrable); when it fails now, what they wrote is lost, which
 * is logged. */
static int commit_open(okegw_store *s) {
  uint64_t t0 = uv_hrtime(); /* the commit itself: deferred writes may have waited before */
  int lost;
  if (s->pg) {
    PGresult *r = okegw_pg__q(s, "commit failed", "COMMIT", 0, NULL, NULL);
    /* a COMMIT of an aborted transaction "succeeds" as a ROLLBACK */
    lost = !r || strcmp(PQcmdStatus(r), "COMMIT") != 0;
    if (r && lost)
      okegw_log(OKEGW_LOG_ERROR, NULL, "store %s: commit failed: the transaction had failed",
                s->path);
    PQclear(r);
    if (lost && PQstatus(s->pg) == CONNECTION_OK && PQtransactionStatus(s->pg) != PQTRANS_IDLE)
      exec_simple(s, "ROLLBACK");
  } else {
    sqlite3_step(s->st_commit);
    lost = sqlite3_reset(s->st_commit) != SQLITE_OK || sqlite3_get_autocommit(s->db) == 0;
    if (lost) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "store: commit failed: %s", sqlite3_errmsg(s->db));
      if (!sqlite3_get_autocommit(s->db))
        exec_simple(s, "ROLLBACK");
    }
  }
  if (!lost) {
    okegw_hist_observe_atomic(__atomic_load_n(&s->commit_hist, __ATOMIC_ACQUIRE),
                              (double)(uv_hrtime() - t0) / 1e9);
  }
  s->tx_open = 0;
  return lost ? -1 : 0;
}

static int lease_cmp(const void *a, const void *b) {
  const job *x = *(job *const *)a, *y = *(job *const *)b;
  int c = strcmp(x->drec->connector, y->drec->connector);
  return c ? c : strcmp(x->drec->resource, y->drec->resource);
}

/* PostgreSQL: the leases of the batch's pushes, taken before any of them is
 * written and in key order, as every instance takes them: two batches of
 * pushes never wait for each other's lease rows in a circle (a takeover in
 * the same batch may; PostgreSQL then fails one of them, pg_leases.c). OK,
 * or ERROR (the batch fails). */
static int take_leases(okegw_store *s, job *batch) {
  size_t n = 0;
  for (job *j = batch; j; j = j->next)
    n += j->kind == JOB_DADD;
  if (!n)
    return OKEGW_STORE_OK;
  job **v = malloc(n * sizeof *v);
  if (!v)
    return OKEGW_STORE_ERROR;
  n = 0;
  for (job *j = batch; j; j = j->next)
    if (j->kind == JOB_DADD)
      v[n++] = j;
  qsort(v, n, sizeof *v, lease_cmp);
  int rc = OKEGW_STORE_OK;
  for (size_t i = 0; i < n && rc == OKEGW_STORE_OK; i++)
    if (i && lease_cmp(&v[i - 1], &v[i]) == 0)
      v[i]->lease = v[i - 1]->lease == OKEGW_LEASE_NEW ? OKEGW_LEASE_HELD : v[i - 1]->lease;
    else
      rc = okegw_pg__lease_take(s, v[i]->drec->connector, v[i]->drec->resource, &v[i]->lease);
  free(v);
  return rc;
}

/* PostgreSQL: the batch's audit rows, several to a statement (a round trip
 * to the server each): under load a group commit carries a few per push.
 * OK, or ERROR (the transaction is lost). */
static int audits_together(okegw_store *s, job *batch) {
  okegw_pg_audit_row rows[64];
  job *jobs[64];
  size_t n = 0;
  int rc = OKEGW_STORE_OK;
  for (job *j = batch;; j = j->next) {
    if (j && j->kind == JOB_AUDIT) {
      jobs[n] = j;
      rows[n++] = (okegw_pg_audit_row){.at = j->at,
                                       .a = j->audit,
                                       .status = j->status,
                                       .latency_ms = j->latency_ms,
                                       .delivery_id = j->delivery_id,
                                       .attempts = j->attempts};
    }
    if (n && (!j || n == sizeof rows / sizeof rows[0])) {
      rc = okegw_pg__audit_rows(s, rows, n);
      for (size_t i = 0; i < n; i++)
        jobs[i]->result.rc = rc;
      n = 0;
    }
    if (!j || rc != OKEGW_STORE_OK)
      return rc;
  }
}

/* PostgreSQL, after a COMMIT: a load or poll that began at t0 renewed the
 * leases until t0 + the lease at least (the database wrote its own clock's
 * later now); one that began after the last renewal ran out is a lapse. */
static void leases_renewed(okegw_store *s, const job *batch) {
  for (const job *j = batch; j; j = j->next) {
    if ((j->kind != JOB_DLOAD && j->kind != JOB_DREQUEUE) || j->drc != OKEGW_STORE_OK)
      continue;
    long long t0 = (long long)(j->t0 / 1000000), until = s->lease_until;
    if (until && t0 >= until)
      __atomic_fetch_add(&s->lease_lapses, 1, __ATOMIC_RELEASE);
    if (t0 + s->lease_ttl_ms > until)
      __atomic_store_n(&s->lease_until, t0 + s->lease_ttl_ms, __ATOMIC_RELEASE);
  }
}

/* Runs a batch with writes: in the open transaction, or a new one; commits
 * unless every write in it may wait (job_deferrable). */
static void run_writes(okegw_store *s, job *batch) {
  if (!s->tx_open) {
    if (same_file(s) < 0) {
      set_healthy(s, 0,
                  "the file was deleted or replaced while okegw runs (restart okegw once it "
                  "is back where it was)");
      for (job *j = batch; j; j = j->next)
        j->result.rc = j->drc = OKEGW_STORE_ERROR;
      return;
    }
    int began;
    if (s->pg) {
      PGresult *r = okegw_pg__q(s, "cannot begin", "BEGIN", 0, NULL, NULL);
      began = r != NULL;
      PQclear(r);
    } else {
      sqlite3_step(s->st_begin);
      began = sqlite3_reset(s->st_begin) == SQLITE_OK;
      if (!began)
        okegw_log(OKEGW_LOG_ERROR, NULL, "store: cannot begin: %s", sqlite3_errmsg(s->db));
    }
    if (!began) {
      set_healthy(s, 0, "cannot begin a transaction");
      for (job *j = batch; j; j = j->next)
        j->result.rc = j->drc = OKEGW_STORE_ERROR;
      return;
    }
    s->tx_open = 1;
    s->tx_deadline = uv_hrtime() + DEFER_NS;
  }
  /* after a disk-full or I/O error SQLite may have rolled the whole
   * transaction back itself: then the rest must not run outside it */
  int lost = s->pg && take_leases(s, batch) != OKEGW_STORE_OK, must_commit = 0;
  for (job *j = batch; j && !lost; j = j->next) {
    if (!(s->pg && j->kind == JOB_AUDIT)) /* on PostgreSQL: all together, below */
      run_job(s, j);
    j->ran = 1;
    lost = s->pg ? okegw_pg__tx_lost(s) : sqlite3_get_autocommit(s->db);
    must_commit |= !job_reads(j) && !job_deferrable(s, j);
  }
  if (!lost && s->pg)
    lost = audits_together(s, batch) != OKEGW_STORE_OK;
  if (!lost && (must_commit || uv_hrtime() >= s->tx_deadline))
    lost = commit_open(s) < 0;
  if (lost) {
    s->tx_open = 0;
    rollback(s, batch);
  } else if (s->pg && !s->tx_open) {
    leases_renewed(s, batch);
  }
  set_healthy(s, !lost, write_failed(s));
}

/* Hands a finished batch to the loops that submitted it, which run the
 * callbacks (on_async). A job whose port closed meanwhile is dropped. Called
 * with s->mu held; releases it. The wake-ups happen under mu: a port closes
 * under mu too, so no uv_async_send can reach a closing handle. */
static void hand_back(okegw_store *s, job *batch) {
  job *dropped = NULL;
  for (job *j = batch, *next; j; j = next) {
    next = j->next;
    if (j->port->closed) {
      j->next = dropped;
      dropped = j;
    } else {
      q_push(&j->port->done, j);
    }
  }
  for (okegw_store_port *p = &s->port; p; p = p == &s->port ? s->ports : p->next)
    if (p->done.head)
      uv_async_send(&p->async);
  uv_mutex_unlock(&s->mu);
  jobs_free(dropped);
}

static void store_thread(void *arg) {
  okegw_store *s = arg;
  pthread_setname_np(pthread_self(), "okegw-store-w"); /* top -H, perf: who works */
  for (;;) {
    uv_mutex_lock(&s->mu);
    int expired = 0;
    while (!s->todo.head && !s->stopping && !expired) {
      if (!s->tx_open) {
        uv_cond_wait(&s->cond, &s->mu);
        continue;
      }
      uint64_t now = uv_hrtime();
      expired = now >= s->tx_deadline ||
                uv_cond_timedwait(&s->cond, &s->mu, s->tx_deadline - now) == UV_ETIMEDOUT;
    }
    job *batch = q_take_all(&s->todo);
    int stop = s->stopping && !batch;
    uv_mutex_unlock(&s->mu);
    if (!batch) { /* deferred writes waited long enough, or okegw stops */
      if (s->tx_open)
        set_healthy(s, commit_open(s) == 0, write_failed(s));
      uv_mutex_lock(&s->mu);
      s->route_writes -= s->tx_route_writes; /* committed (or lost): no longer pending */
      s->tx_route_writes = 0;
      uv_mutex_unlock(&s->mu);
      if (stop) {
        if (s->pg && !s->pg_broken && PQstatus(s->pg) == CONNECTION_OK)
          okegw_pg__leases_leave(s);
        break;
      }
      continue;
    }
    /* Group commit: everything that queued up while we were busy goes into
     * one transaction, so one fsync serves many requests. Reads alone need
     * none: each runs on its own snapshot (or in the open transaction, which
     * sees what it wrote). */
    int writes = 0;
    for (job *j = batch; j && !writes; j = j->next)
      writes = !job_reads(j);
    if (s->pg && pg_ready(s) < 0) {
      /* PostgreSQL cannot be reached: the batch fails as a whole (pushes
       * get 503), the next one tries again */
      for (job *j = batch; j; j = j->next)
        j->result.rc = j->drc = OKEGW_STORE_ERROR;
    } else if (writes) {
      run_writes(s, batch);
    } else {
      for (job *j = batch; j; j = j->next)
        run_job(s, j);
      /* a failed read aborts a PostgreSQL transaction left open for
       * deferred writes: end it now rather than at its deadline */
      if (s->pg && s->tx_open && okegw_pg__tx_lost(s)) {
        okegw_log(OKEGW_LOG_ERROR, NULL,
                  "store %s: a failed read aborted the open transaction: its deferred writes "
                  "(audit rows) are lost",
                  s->path);
        if (PQstatus(s->pg) == CONNECTION_OK)
          exec_simple(s, "ROLLBACK");
        s->tx_open = 0;
      }
    }
    long rw = 0;
    for (job *j = batch; j; j = j->next)
      rw += job_writes_routes(j);
    uv_mutex_lock(&s->mu);
    if (s->tx_open) { /* written, not yet committed: lookups still wait for them */
      s->tx_route_writes += rw;
    } else {
      s->route_writes -= rw + s->tx_route_writes;
      s->tx_route_writes = 0;
    }
    hand_back(s, batch);
  }
}

static int has_reader(const okegw_store *s) { return s->rdb || s->rpg; }

/* The PostgreSQL reader's session: read-only, the writer's timeouts. 0, or
 * -1 (logged). */
static int reader_pg_session(okegw_store *r) {
  return pg_session(r, NULL) < 0 ||
                 okegw_pg__exec(r, "cannot make the reader's session read-only",
                                "SET default_transaction_read_only = on", NULL) != OKEGW_STORE_OK
             ? -1
             : 0;
}

/* Before the reader's batch (pg_reconnect): -1 while there is no session
 * (the batch's lookups fail, as the writer's would). */
static int reader_pg_ready(okegw_store *s) {
  return pg_reconnect(s->rpg, &s->rpg_retry_at, reader_pg_session) < 0 ? -1 : 0;
}

static void reader_thread(void *arg) {
  okegw_store *s = arg;
  pthread_setname_np(pthread_self(), "okegw-store-r");
  for (;;) {
    uv_mutex_lock(&s->mu);
    while (!s->rtodo.head && !s->stopping)
      uv_cond_wait(&s->rcond, &s->mu);
    job *batch = q_take_all(&s->rtodo);
    uv_mutex_unlock(&s->mu);
    if (!batch)
      break; /* stopping, and nothing left to read */
    int down = s->rpg && reader_pg_ready(s) < 0, again = 1;
    for (job *j = batch; j; j = j->next) {
      okegw_route *r = &j->result;
      r->rc = down     ? OKEGW_STORE_ERROR
              : s->rpg ? okegw_pg__route_get(s->rpg, j->rkind, j->id, r->connector, r)
                       : read_route(s->rst_get, j->rkind, j->id, r->connector, r);
      /* a session the server ended (a restart, a failover) is found out by
       * its next query: connect again at once and read again (once) */
      if (r->rc == OKEGW_STORE_ERROR && !down && s->rpg && s->rpg->pg_broken && again) {
        again = 0;
        s->rpg_retry_at = 0;
        down = reader_pg_ready(s) < 0;
        if (!down)
          r->rc = okegw_pg__route_get(s->rpg, j->rkind, j->id, r->connector, r);
      }
      r->existed = r->rc == OKEGW_STORE_OK;
    }
    uv_mutex_lock(&s->mu);
    hand_back(s, batch);
  }
}

static void reader_close(okegw_store *s) {
  if (s->rpg) {
    okegw_pg__forget_prepared(s->rpg);
    PQfinish(s->rpg->pg);
    free(s->rpg);
    s->rpg = NULL;
  }
  sqlite3_finalize(s->rst_get);
  s->rst_get = NULL;
  sqlite3_close(s->rdb);
  s->rdb = NULL;
}

/* The reader's connection; without it (it does not open) lookups stay with
 * the writer, which is slower under load but as correct. */
static void reader_open(okegw_store *s) {
  if (s->pg) {
    char *err = NULL;
    okegw_store *r = calloc(1, sizeof *r);
    if (r) {
      r->loop = s->loop; /* a gateway's: its statements are prepared */
      r->path = s->path;
    }
    if (r && okegw_pg_connect(s->pg_uri, &r->pg, &err) == 0 && reader_pg_session(r) == 0) {
      s->rpg = r;
      return;
    }
    okegw_log(OKEGW_LOG_WARN, NULL, "store %s: no reader connection (%s); lookups wait for writes",
              s->path,
              err ? err
              : r ? "its session could not be set up"
                  : "out of memory");
    free(err);
    if (r)
      PQfinish(r->pg);
    free(r);
    return;
  }
  if (sqlite3_open_v2(s->path, &s->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
          SQLITE_OK &&
      sqlite3_busy_timeout(s->rdb, 5000) == SQLITE_OK &&
      sqlite3_exec(s->rdb, "PRAGMA query_only = 1", NULL, NULL, NULL) == SQLITE_OK &&
      sqlite3_prepare_v3(s->rdb, ROUTE_GET_SQL, -1, SQLITE_PREPARE_PERSISTENT, &s->rst_get, NULL) ==
          SQLITE_OK)
    return;
  okegw_log(OKEGW_LOG_WARN, NULL, "store %s: no reader connection (%s); lookups wait for writes",
            s->path, s->rdb ? sqlite3_errmsg(s->rdb) : "out of memory");
  reader_close(s);
}

static void on_async(uv_async_t *a) {
  okegw_store_port *p = a->data;
  okegw_store *s = p->store;
  if (!s)
    return; /* the store closed before this port */
  uv_mutex_lock(&s->mu);
  job *list = q_take_all(&p->done);
  uv_mutex_unlock(&s->mu);
  for (job *j = list, *next; j; j = next) {
    next = j->next;
    if (j->dcb) {
      j->dcb(j->ud, j->drc, j->did, j->recs, j->nrecs);
      j->recs = NULL; /* the callback owns them */
      j->nrecs = 0;
    } else if (j->pcb) {
      /* a failed write hands back no rows */
      int ok = j->drc == OKEGW_STORE_OK;
      j->pcb(j->ud, j->drc, ok ? j->phases : NULL, ok ? j->nphases : 0);
    } else if (j->cb) {
      j->cb(j->ud, &j->result);
    }
    job_free(j);
  }
}

static void finalize_all(okegw_store *s) {
  sqlite3_stmt **all[] = {&s->st_get,    &s->st_upsert,   &s->st_confirm, &s->st_audit,
                          &s->st_dadd,   &s->st_dupdate,  &s->st_dget,    &s->st_dget_body,
                          &s->st_begin,  &s->st_commit,   &s->st_claim,   &s->st_facts,
                          &s->st_unlink, &s->st_phase_add};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    sqlite3_finalize(*all[i]);
    *all[i] = NULL;
  }
  okegw_pg__forget_prepared(s);
  PQfinish(s->pg);
  s->pg = NULL;
  free(s->pg_uri);
  s->pg_uri = NULL;
}

static void on_async_closed(uv_handle_t *h);

/* The lock, conditions and the opening loop's port of a store about to
 * start its thread(s); either backend. */
static void handles_init(okegw_store *s, uv_loop_t *loop) {
  uv_mutex_init(&s->mu);
  uv_cond_init(&s->cond);
  uv_cond_init(&s->rcond);
  s->port.store = s;
  uv_async_init(loop, &s->port.async, on_async);
  s->port.async.data = &s->port;
}

/* A store whose thread did not start: its connection goes now, its memory
 * once the loop has closed the handle that points into it. */
static void open_failed(okegw_store *s) {
  finalize_all(s);
  sqlite3_close(s->db);
  s->db = NULL;
  s->closed = NULL;
  uv_close((uv_handle_t *)&s->port.async, on_async_closed);
}

/* The reader (when its connection opens) and the store thread. -1 (with
 * *err, the store freed) when the store thread does not start. */
static int threads_start(okegw_store *s, char **err) {
  reader_open(s);
  if (has_reader(s) && uv_thread_create(&s->rthread, reader_thread, s) != 0)
    reader_close(s);
  if (uv_thread_create(&s->thread, store_thread, s) == 0)
    return 0;
  *err = okegw_strdup("cannot start the store thread");
  if (has_reader(s)) {
    uv_mutex_lock(&s->mu);
    s->stopping = 1;
    uv_cond_signal(&s->rcond);
    uv_mutex_unlock(&s->mu);
    uv_thread_join(&s->rthread);
    reader_close(s);
  }
  open_failed(s);
  return -1;
}

/* This instance's name in okegw_leases: host, pid and a random part, so a
 * restarted instance (or one in another container with the same pid) never
 * takes a lease for its own that it does not carry. */
static void lease_owner_init(okegw_store *s) {
  char host[64] = "";
  unsigned char rnd[6] = {0};
  gethostname(host, sizeof host - 1);
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    uint64_t t = uv_hrtime();
    memcpy(rnd, &t, sizeof rnd);
  }
  snprintf(s->lease_owner, sizeof s->lease_owner, "%s/%ld/%02x%02x%02x%02x%02x%02x", host,
           (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
  s->lease_ttl_ms = OKEGW_STORE_LEASE_S * 1000LL;
}

/* okegw_store_open for store = postgresql://...: connects, creates or
 * migrates the schema, and starts the store thread and the reader (a
 * session of its own for lookups, as with SQLite: they never wait behind
 * a group commit). Durability is the server's: okegw
 * acknowledges a push once COMMIT returned, which with the default
 * synchronous_commit = on means it is on the server's disk. */
static int open_pg(uv_loop_t *loop, const char *uri, okegw_store **out, char **err) {
  okegw_store *s = calloc(1, sizeof *s);
  if (!s || !(s->pg_uri = okegw_strdup(uri)) || !(s->path = okegw_pg_redact(uri))) {
    if (s) {
      free(s->pg_uri);
      free(s);
    }
    *err = okegw_strdup("out of memory");
    return OKEGW_STORE_ERROR;
  }
  s->loop = loop;
  int version = 0;
  if (okegw_pg_connect(uri, &s->pg, err) < 0 || okegw_pg_migrate(s->pg, &version, err) < 0 ||
      pg_session(s, err) < 0) {
    PQfinish(s->pg);
    free(s->pg_uri);
    free(s->path);
    free(s);
    return OKEGW_STORE_ERROR;
  }
  if (version < OKEGW_PG_SCHEMA_VERSION)
    okegw_log(OKEGW_LOG_INFO, NULL, "store %s: okegw schema version %d made (was %d)", s->path,
              OKEGW_PG_SCHEMA_VERSION, version);
  s->healthy = 1;
  lease_owner_init(s);
  handles_init(s, loop);
  if (threads_start(s, err) < 0)
    return OKEGW_STORE_ERROR;
  *out = s;
  return OKEGW_STORE_OK;
}

int okegw_store_open(uv_loop_t *loop, const char *path, const char *sync, okegw_store **out,
                     char **err) {
  if (okegw_pg_is_uri(path))
    return open_pg(loop, path, out, err);
  if (strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0) {
    *err = okegw_asprintf("store: synchronous must be full or normal, not '%s'", sync);
    return OKEGW_STORE_ERROR;
  }
  okegw_store *s = calloc(1, sizeof *s);
  if (!s) {
    *err = okegw_strdup("out of memory");
    return OKEGW_STORE_ERROR;
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
  struct stat st;
  if (rc == SQLITE_OK && (!(s->path = okegw_strdup(path)) || stat(path, &st) != 0))
    rc = SQLITE_CANTOPEN;
  if (rc == SQLITE_OK) {
    s->dev = (unsigned long long)st.st_dev;
    s->ino = (unsigned long long)st.st_ino;
    s->healthy = 1;
  }
  if (rc == SQLITE_OK) {
    /* stores made before routes had `confirmed`: add it (an error only says
     * it is there already) */
    sqlite3_exec(s->db, "ALTER TABLE routes ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 1", NULL,
                 NULL, NULL);
    sqlite3_exec(s->db, "ALTER TABLE audit ADD COLUMN event TEXT", NULL, NULL, NULL);
    sqlite3_exec(s->db, "ALTER TABLE routes ADD COLUMN owner TEXT", NULL, NULL, NULL);
    sqlite3_exec(s->db, "ALTER TABLE routes ADD COLUMN facts TEXT", NULL, NULL, NULL);
    sqlite3_exec(s->db, "ALTER TABLE audit ADD COLUMN rules TEXT", NULL, NULL, NULL);
    rc = migrate(s->db, &msg);
  }
  if (rc == SQLITE_OK) {
    char *sql = okegw_asprintf("PRAGMA synchronous=%s", sync);
    rc = sql ? sqlite3_exec(s->db, sql, NULL, NULL, &msg) : SQLITE_NOMEM;
    free(sql);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(s->db, ROUTE_GET_SQL, -1, SQLITE_PREPARE_PERSISTENT, &s->st_get, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(
        s->db,
        "INSERT INTO routes(kind, id, connector, parent, confirmed, owner, facts) "
        "VALUES (?1,?2,?3,?4,?5,?6,?7) "
        "ON CONFLICT(kind, id) DO UPDATE SET connector = excluded.connector, "
        "parent = coalesce(excluded.parent, parent), facts = "
        "coalesce(excluded.facts, facts), updated_at = "
        "strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE connector <> "
        "excluded.connector OR parent IS NOT excluded.parent OR "
        "(excluded.facts IS NOT NULL AND facts IS NOT excluded.facts)",
        -1, SQLITE_PREPARE_PERSISTENT, &s->st_upsert, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(s->db,
                            "UPDATE routes SET confirmed = 1 WHERE kind = ?1 AND id = ?2 AND "
                            "confirmed = 0",
                            -1, SQLITE_PREPARE_PERSISTENT, &s->st_confirm, NULL);
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
    free(s->path);
    free(s);
    return OKEGW_STORE_ERROR;
  }
  handles_init(s, loop);
  if (threads_start(s, err) < 0)
    return OKEGW_STORE_ERROR;
  *out = s;
  return OKEGW_STORE_OK;
}

/* okegw_store_open_direct on PostgreSQL: the schema must be there and
 * current (a command never makes it); read-only unless writable. */
static int open_direct_pg(okegw_store *s, const char *uri, int writable, char **err) {
  if (!(s->pg_uri = okegw_strdup(uri)) || !(s->path = okegw_pg_redact(uri))) {
    *err = okegw_strdup("out of memory");
    return OKEGW_STORE_ERROR;
  }
  if (okegw_pg_connect(uri, &s->pg, err) < 0)
    return OKEGW_STORE_ERROR;
  PGresult *r = okegw_pg__q(s, "reading okegw's schema version",
                            "SELECT coalesce((SELECT max(version) FROM okegw_migrations), 0) WHERE "
                            "to_regclass('okegw_migrations') IS NOT NULL UNION ALL SELECT 0 WHERE "
                            "to_regclass('okegw_migrations') IS NULL",
                            0, NULL, err);
  int v = r && PQntuples(r) == 1 ? (int)okegw_pg__ll_at(r, 0, 0) : -1;
  PQclear(r);
  if (v < 0)
    return OKEGW_STORE_ERROR;
  if (v != OKEGW_PG_SCHEMA_VERSION) {
    *err = v == 0 ? okegw_asprintf("store %s holds no okegw schema (okegw makes it when the "
                                   "gateway first starts with this configuration)",
                                   s->path)
                  : okegw_asprintf("store %s holds okegw schema version %d; this okegw reads "
                                   "version %d",
                                   s->path, v, OKEGW_PG_SCHEMA_VERSION);
    return OKEGW_STORE_ERROR;
  }
  if (!writable) {
    r = okegw_pg__q(s, "cannot make the session read-only",
                    "SET default_transaction_read_only = on", 0, NULL, err);
    PQclear(r);
    if (!r)
      return OKEGW_STORE_ERROR;
  }
  return OKEGW_STORE_OK;
}

int okegw_store_open_direct(const char *path, int writable, okegw_store **out, char **err) {
  okegw_store *s = calloc(1, sizeof *s);
  if (!s) {
    *err = okegw_strdup("out of memory");
    return OKEGW_STORE_ERROR;
  }
  if (okegw_pg_is_uri(path)) {
    if (open_direct_pg(s, path, writable, err) != OKEGW_STORE_OK) {
      PQfinish(s->pg);
      free(s->pg_uri);
      free(s->path);
      free(s);
      return OKEGW_STORE_ERROR;
    }
    *out = s;
    return OKEGW_STORE_OK;
  }
  /* never SQLITE_OPEN_CREATE: a command on a missing store is a mistake */
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    *err = okegw_asprintf("cannot open the store %s: there is no such file (okegw makes it when "
                          "the gateway first starts with this configuration)",
                          path);
    free(s);
    return OKEGW_STORE_ERROR;
  }
  if (sqlite3_open_v2(path, &s->db, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                      NULL) != SQLITE_OK) {
    *err = okegw_asprintf("cannot open the store %s: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_close(s->db);
    free(s);
    return OKEGW_STORE_ERROR;
  }
  /* the gateway may hold the write lock for a group commit */
  sqlite3_busy_timeout(s->db, 5000);
  *out = s;
  return OKEGW_STORE_OK;
}

/* The port jobs submitted on this thread go back to (store.h: ports). */
static _Thread_local okegw_store_port *bound_port;

void okegw_store_port_bind(okegw_store_port *p) { bound_port = p; }

int okegw_store_port_open(okegw_store *s, uv_loop_t *loop, okegw_store_port **out) {
  okegw_store_port *p = calloc(1, sizeof *p);
  if (!p || !s->loop)
    goto fail;
  p->store = s;
  if (uv_async_init(loop, &p->async, on_async) != 0)
    goto fail;
  p->async.data = p;
  uv_mutex_lock(&s->mu);
  p->next = s->ports;
  s->ports = p;
  uv_mutex_unlock(&s->mu);
  *out = p;
  return OKEGW_STORE_OK;
fail:
  free(p);
  return OKEGW_STORE_ERROR;
}

static void on_port_closed(uv_handle_t *h) {
  okegw_store_port *p = h->data;
  void (*cb)(void *) = p->closed_cb;
  void *arg = p->closed_arg;
  if (!p->store) /* the store closed first and left it to us */
    free(p);
  if (cb)
    cb(arg);
}

/* The port stays in the store's list (jobs under way point at it) until the
 * store closes; only its handle goes now. */
void okegw_store_port_close(okegw_store_port *p, void (*done)(void *), void *arg) {
  okegw_store *s = p->store;
  if (bound_port == p)
    bound_port = NULL;
  p->closed_cb = done;
  p->closed_arg = arg;
  if (!s) {
    uv_close((uv_handle_t *)&p->async, on_port_closed);
    return;
  }
  uv_mutex_lock(&s->mu);
  p->closed = 1;
  job *left = q_take_all(&p->done);
  uv_mutex_unlock(&s->mu);
  jobs_free(left);
  uv_close((uv_handle_t *)&p->async, on_port_closed);
}

/* Queues j (which it owns from here). */
static int submit(okegw_store *s, job *j) {
  if (!j)
    return OKEGW_STORE_ERROR;
  if (!s->loop) { /* a direct store has no thread to run it */
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  j->port = bound_port && bound_port->store == s ? bound_port : &s->port;
  uv_mutex_lock(&s->mu);
  if (s->stopping || j->port->closed) {
    uv_mutex_unlock(&s->mu);
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  if (j->kind == JOB_LOOKUP && has_reader(s) && s->route_writes == 0) {
    q_push(&s->rtodo, j);
    uv_cond_signal(&s->rcond);
  } else {
    s->route_writes += job_writes_routes(j);
    q_push(&s->todo, j);
    uv_cond_signal(&s->cond);
  }
  uv_mutex_unlock(&s->mu);
  return OKEGW_STORE_OK;
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
  return submit(s, job_new(JOB_LOOKUP, kind, id, cb, ud));
}

int okegw_store_bind(okegw_store *s, const char *kind, const char *id, const char *parent_kind,
                     const char *parent_id, const char *owner, const char *facts, okegw_route_cb cb,
                     void *ud) {
  job *j = job_new(JOB_BIND, kind, id, cb, ud);
  if (!j)
    return OKEGW_STORE_ERROR;
  j->parent_kind = okegw_strdup(parent_kind);
  j->parent_id = okegw_strdup(parent_id);
  j->owner = owner ? okegw_strdup(owner) : NULL;
  j->facts = facts ? okegw_strdup(facts) : NULL;
  if (!j->parent_kind || !j->parent_id || (owner && !j->owner) || (facts && !j->facts)) {
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  return submit(s, j);
}

/* Copies audit row a into j (j->has_audit); the time is now. */
static int audit_fill(job *j, const okegw_audit_rec *a) {
  const char *src[OKEGW_AUDIT_TEXTS] = {a->request_id,   a->interaction,
                                        a->caller,       a->connector,
                                        a->method,       a->path,
                                        a->resource_id,  a->mapping,
                                        a->body_sha256,  a->event ? a->event : "request",
                                        a->rules,        a->phase,
                                        a->differences,  a->violations,
                                        a->mapping_error};
  for (int i = 0; i < OKEGW_AUDIT_TEXTS; i++)
    if (src[i] && *src[i] && !(j->audit[i] = okegw_strdup(src[i])))
      return OKEGW_STORE_ERROR;
  j->delivery_id = a->delivery_id;
  j->attempts = a->attempts;
  j->status = a->status;
  j->latency_ms = a->latency_ms;
  /* the time it ended, as RFC 3339 UTC with milliseconds */
  okegw_format_rfc3339(okegw_wall_ms(), 1, j->at, sizeof j->at);
  j->has_audit = 1;
  return OKEGW_STORE_OK;
}

static int audit_write(okegw_store *s, job *j) {
  return okegw_store__audit_add(s, j->at, j->audit, j->status, j->latency_ms, j->delivery_id,
                                j->attempts);
}

int okegw_store_audit(okegw_store *s, const okegw_audit_rec *a) {
  job *j = job_new(JOB_AUDIT, "audit", NULL, NULL, NULL);
  if (!j)
    return OKEGW_STORE_ERROR;
  if (audit_fill(j, a) != OKEGW_STORE_OK) {
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  return submit(s, j);
}

int okegw_store_audit_prune(okegw_store *s, long long before_ms) {
  job *j = job_new(JOB_APRUNE, "audit", NULL, NULL, NULL);
  if (!j)
    return OKEGW_STORE_ERROR;
  okegw_format_rfc3339(before_ms, 1, j->at, sizeof j->at);
  return submit(s, j);
}

int okegw_store_confirm(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                        void *ud) {
  return submit(s, job_new(JOB_CONFIRM, kind, id, cb, ud));
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
    return OKEGW_STORE_ERROR;
  j->drec = r;
  return submit(s, j);
}

int okegw_store_delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body,
                                const okegw_route_write *w, size_t n, const okegw_audit_rec *audit,
                                okegw_delivery_cb cb, void *ud) {
  job *j = delivery_job(JOB_DUPDATE, cb, ud);
  if (!j)
    return OKEGW_STORE_ERROR;
  if (audit && audit_fill(j, audit) != OKEGW_STORE_OK) {
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  if (n) {
    if (!(j->writes = malloc(n * sizeof *w))) {
      job_free(j);
      return OKEGW_STORE_ERROR;
    }
    memcpy(j->writes, w, n * sizeof *w);
    j->nwrites = n;
  }
  /* only what the UPDATE writes */
  okegw_delivery_rec *c = &j->dcopy;
  c->id = r->id;
  c->state = r->state;
  c->attempts = r->attempts;
  c->next_ms = r->next_ms;
  c->since_ms = r->since_ms;
  c->last_status = r->last_status;
  c->delivered_ms = r->delivered_ms;
  c->keep_until_ms = r->keep_until_ms;
  j->drop_body = drop_body;
  if (r->last_error && !(c->last_error = okegw_strdup(r->last_error))) {
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  return submit(s, j);
}

int okegw_store_delivery_load_open(okegw_store *s, okegw_delivery_cb cb, void *ud) {
  return submit(s, delivery_job(JOB_DLOAD, cb, ud));
}

int okegw_store_delivery_requeued(okegw_store *s, okegw_delivery_cb cb, void *ud) {
  return submit(s, delivery_job(JOB_DREQUEUE, cb, ud));
}

int okegw_store_lease_release(okegw_store *s, const char *connector, const char *resource) {
  if (!s->pg)
    return OKEGW_STORE_OK; /* one instance: nothing to let go */
  job *j = job_new(JOB_LRELEASE, "lease", resource, NULL, NULL);
  if (j && !(j->connector = okegw_strdup(connector))) {
    job_free(j);
    j = NULL;
  }
  return submit(s, j);
}

void okegw_store_lease_state(const okegw_store *s, long long *until_ms, unsigned *lapses) {
  if (!s->pg) {
    *until_ms = LLONG_MAX;
    *lapses = 0;
    return;
  }
  /* until first: a renewal after a lapse counts the lapse before it moves
   * until (leases_renewed), so a new until is never seen with an old count */
  *until_ms = __atomic_load_n(&s->lease_until, __ATOMIC_ACQUIRE);
  *lapses = __atomic_load_n(&s->lease_lapses, __ATOMIC_ACQUIRE);
}

void okegw_store_set_lease(okegw_store *s, long ttl_s) {
  if (ttl_s > 0)
    s->lease_ttl_ms = ttl_s * 1000LL; /* before the outbox starts: read by the store thread */
}

int okegw_store_lease_carry(okegw_store *s, const char *const *connectors, size_t n) {
  if (!s->pg)
    return OKEGW_STORE_OK;
  okegw_buf b = {0};
  int oom = okegw_buf_append(&b, "{", 1) < 0;
  for (size_t i = 0; i < n && !oom; i++) {
    oom |= okegw_buf_append(&b, i ? ",\"" : "\"", i ? 2 : 1) < 0;
    for (const char *c = connectors[i]; *c && !oom; c++)
      oom |= ((*c == '"' || *c == '\\') && okegw_buf_append(&b, "\\", 1) < 0) ||
             okegw_buf_append(&b, c, 1) < 0;
    oom |= okegw_buf_append(&b, "\"", 1) < 0;
  }
  oom |= okegw_buf_append(&b, "}", 2) < 0; /* with its NUL */
  if (oom) {
    free(b.data);
    return OKEGW_STORE_ERROR;
  }
  uv_mutex_lock(&s->mu);
  free(s->carried);
  s->carried = b.data;
  uv_mutex_unlock(&s->mu);
  return OKEGW_STORE_OK;
}

const char *okegw_store_instance(const okegw_store *s) { return s->pg ? s->lease_owner : NULL; }

int okegw_store_delivery_get(okegw_store *s, long long id, int with_body, okegw_delivery_cb cb,
                             void *ud) {
  job *j = delivery_job(JOB_DGET, cb, ud);
  if (!j)
    return OKEGW_STORE_ERROR;
  j->num = id;
  j->with_body = with_body;
  return submit(s, j);
}

int okegw_store_delivery_prune(okegw_store *s, long long ended_before_ms) {
  job *j = delivery_job(JOB_DPRUNE, NULL, NULL);
  if (!j)
    return OKEGW_STORE_ERROR;
  j->num = ended_before_ms;
  return submit(s, j);
}

static job *phase_job(enum job_kind k, okegw_phase_cb cb, void *ud) {
  job *j = job_new(k, "phase", NULL, NULL, ud);
  if (j)
    j->pcb = cb;
  return j;
}

/* A copy of v, NULL for NULL (and for "" when empty_is_null); -1 when out
 * of memory. */
static int dup_or_null(const char *v, int empty_is_null, char **out) {
  *out = v && (*v || !empty_is_null) ? okegw_strdup(v) : NULL;
  return *out || !v || (!*v && empty_is_null) ? 0 : -1;
}

int okegw_store_phase_record(okegw_store *s, const okegw_phase_change *changes, size_t n,
                             okegw_phase_cb cb, void *ud) {
  for (size_t i = 0; i < n; i++)
    if (!changes[i].connector || !*changes[i].connector || !changes[i].to || !*changes[i].to) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "store: a phase change without its connector or phase");
      return OKEGW_STORE_ERROR;
    }
  job *j = phase_job(JOB_PRECORD, cb, ud);
  if (!j)
    return OKEGW_STORE_ERROR;
  if (n && !(j->phases = calloc(n, sizeof *j->phases))) {
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  for (size_t i = 0; i < n; i++) {
    const okegw_phase_change *c = &changes[i];
    okegw_phase_rec *r = &j->phases[i];
    j->nphases++;
    r->at_ms = c->at_ms;
    if (dup_or_null(c->connector, 0, &r->connector) < 0 || dup_or_null(c->from, 1, &r->from) < 0 ||
        dup_or_null(c->to, 0, &r->to) < 0 || dup_or_null(c->reason, 1, &r->reason) < 0 ||
        dup_or_null(c->config_sha256, 1, &r->config_sha256) < 0 ||
        dup_or_null(c->instance, 1, &r->instance) < 0) {
      job_free(j);
      return OKEGW_STORE_ERROR;
    }
  }
  return submit(s, j);
}

int okegw_store_phase_last(okegw_store *s, okegw_phase_cb cb, void *ud) {
  return submit(s, phase_job(JOB_PLAST, cb, ud));
}

/* A job over many ids of one kind for one connector (put, claim). */
static job *ids_job(enum job_kind k, const char *kind, const char *const *ids, size_t n,
                    const char *connector, const char *owner, okegw_route_cb cb, void *ud) {
  job *j = job_new(k, kind, NULL, cb, ud);
  if (!j)
    return NULL;
  j->connector = okegw_strdup(connector);
  j->owner = owner ? okegw_strdup(owner) : NULL;
  j->ids = calloc(n ? n : 1, sizeof *j->ids);
  if (!j->connector || !j->ids || (owner && !j->owner)) {
    job_free(j);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if (!(j->ids[i] = okegw_strdup(ids[i]))) {
      job_free(j);
      return NULL;
    }
    j->nids++;
  }
  return j;
}

int okegw_store_put(okegw_store *s, const char *kind, const char *const *ids, size_t n,
                    const char *connector, const char *const *facts, okegw_route_cb cb, void *ud) {
  job *j = ids_job(JOB_PUT, kind, ids, n, connector, NULL, cb, ud);
  if (j && facts) {
    if (!(j->factsv = calloc(n ? n : 1, sizeof *j->factsv))) {
      job_free(j);
      return OKEGW_STORE_ERROR;
    }
    for (size_t i = 0; i < n; i++)
      if (facts[i] && !(j->factsv[i] = okegw_strdup(facts[i]))) {
        job_free(j);
        return OKEGW_STORE_ERROR;
      }
  }
  return submit(s, j);
}

int okegw_store_claim(okegw_store *s, const char *kind, const char *const *ids, size_t n,
                      const char *connector, const char *owner, const char *facts,
                      okegw_route_cb cb, void *ud) {
  job *j = ids_job(JOB_CLAIM, kind, ids, n, connector, owner, cb, ud);
  if (j && facts && !(j->facts = okegw_strdup(facts))) {
    job_free(j);
    return OKEGW_STORE_ERROR;
  }
  return submit(s, j);
}

int okegw_store_set_facts(okegw_store *s, const char *kind, const char *id, const char *facts,
                          okegw_route_cb cb, void *ud) {
  job *j = job_new(JOB_FACTS, kind, id, cb, ud);
  if (j && !(j->facts = okegw_strdup(facts))) {
    job_free(j);
    j = NULL;
  }
  return submit(s, j);
}

void okegw_store_commit_histogram(okegw_store *s, struct okegw_hist *h) {
  __atomic_store_n(&s->commit_hist, h, __ATOMIC_RELEASE);
}

int okegw_store_healthy(const okegw_store *s) {
  return __atomic_load_n(&s->healthy, __ATOMIC_RELAXED);
}

static void on_async_closed(uv_handle_t *h) {
  okegw_store *s = ((okegw_store_port *)h->data)->store;
  void (*cb)(void *) = s->closed;
  void *arg = s->closed_arg;
  uv_mutex_destroy(&s->mu);
  uv_cond_destroy(&s->cond);
  uv_cond_destroy(&s->rcond);
  free(s->carried);
  free(s->path);
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
  if (!s->loop) {
    int pg = s->pg != NULL;
    finalize_all(s);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
    /* libpq's TLS and SCRAM left OpenSSL state on this thread; a thread of
     * libuv's pool (the admin API) never ends, so it would stay for good */
    if (pg)
      OPENSSL_thread_stop();
    if (done)
      done(arg);
    return;
  }
  uv_mutex_lock(&s->mu);
  s->stopping = 1;
  uv_cond_signal(&s->cond);
  uv_cond_signal(&s->rcond);
  uv_mutex_unlock(&s->mu);
  uv_thread_join(&s->thread);
  if (has_reader(s)) {
    uv_thread_join(&s->rthread);
    reader_close(s);
  }
  on_async(&s->port.async); /* deliver the last results */
  /* ports closed before (store.h); a port left open loses its last results */
  for (okegw_store_port *p = s->ports, *next; p; p = next) {
    next = p->next;
    jobs_free(q_take_all(&p->done));
    if (p->closed)
      free(p);
    else
      p->store = NULL; /* its loop closes it: on_async must not run any more */
  }
  finalize_all(s);
  sqlite3_close(s->db);
  s->closed = done;
  s->closed_arg = arg;
  uv_close((uv_handle_t *)&s->port.async, on_async_closed);
}
