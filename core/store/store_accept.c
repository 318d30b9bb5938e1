/* The acceptance runs (tables accept_runs, accept_steps): the only code that
 * writes or reads them. Written by `okegw accept` on a store it opened
 * directly, one short transaction per write, so a run shows step by step
 * next to a running gateway; only ever added to (evidence). */
#include "base/json.h"
#include "base/util.h"
#include "store/pg_db.h"
#include "store/store_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs one statement with the binds done by the caller; ERROR with *err. */
static int step_done(okegw_store *s, sqlite3_stmt *st, char **err) {
  int rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  if (rc != OKEGW_STORE_OK)
    okegw_store__err(s, err, "recording the acceptance run");
  sqlite3_finalize(st);
  return rc;
}

static sqlite3_stmt *prepare(okegw_store *s, const char *sql, char **err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    if (err)
      *err = okegw_asprintf("%s (is this an okegw store of schema 4 or later? start the gateway "
                            "once to upgrade it)",
                            sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

int okegw_store_accept_begin(okegw_store *s, const char *connector, const char *mode,
                             const char *config_sha256, long long *run, char **err) {
  if (s->pg)
    return okegw_pg__accept_begin(s, connector, mode, config_sha256, run, err);
  sqlite3_stmt *st = prepare(s,
                             "INSERT INTO accept_runs(connector, mode, started_ms, config_sha256) "
                             "VALUES (?1, ?2, ?3, ?4)",
                             err);
  if (!st)
    return OKEGW_STORE_BADFILE;
  okegw_store__bind_text(st, 1, connector);
  okegw_store__bind_text(st, 2, mode);
  sqlite3_bind_int64(st, 3, okegw_wall_ms());
  okegw_store__bind_text(st, 4, config_sha256);
  int rc = step_done(s, st, err);
  if (rc == OKEGW_STORE_OK)
    *run = sqlite3_last_insert_rowid(s->db);
  return rc;
}

int okegw_store_accept_step(okegw_store *s, long long run, const okegw_accept_step *a, char **err) {
  if (s->pg)
    return okegw_pg__accept_step(s, run, a, err);
  sqlite3_stmt *st =
      prepare(s,
              "INSERT INTO accept_steps(run_id, scenario, scenario_name, step, name, outcome, "
              "detail, method, path, status, ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
              err);
  if (!st)
    return OKEGW_STORE_BADFILE;
  sqlite3_bind_int64(st, 1, run);
  okegw_store__bind_text(st, 2, a->scenario ? a->scenario : "?");
  okegw_store__bind_text(st, 3, a->scenario_name);
  if (a->step > 0)
    sqlite3_bind_int(st, 4, a->step);
  okegw_store__bind_text(st, 5, a->name);
  okegw_store__bind_text(st, 6, a->outcome ? a->outcome : "failed");
  okegw_store__bind_text(st, 7, a->detail);
  okegw_store__bind_text(st, 8, a->method);
  okegw_store__bind_text(st, 9, a->path);
  if (a->status > 0)
    sqlite3_bind_int(st, 10, a->status);
  if (a->ms >= 0)
    sqlite3_bind_double(st, 11, a->ms);
  return step_done(s, st, err);
}

int okegw_store_accept_end(okegw_store *s, long long run, int passed, int failed, int skipped,
                           const char *outcome, char **err) {
  if (s->pg)
    return okegw_pg__accept_end(s, run, passed, failed, skipped, outcome, err);
  sqlite3_stmt *st = prepare(s,
                             "UPDATE accept_runs SET finished_ms = ?2, passed = ?3, failed = ?4, "
                             "skipped = ?5, outcome = ?6 WHERE id = ?1",
                             err);
  if (!st)
    return OKEGW_STORE_BADFILE;
  sqlite3_bind_int64(st, 1, run);
  sqlite3_bind_int64(st, 2, okegw_wall_ms());
  sqlite3_bind_int(st, 3, passed);
  sqlite3_bind_int(st, 4, failed);
  sqlite3_bind_int(st, 5, skipped);
  okegw_store__bind_text(st, 6, outcome);
  return step_done(s, st, err);
}

int okegw_store__json_time(cJSON *o, const char *name, long long ms) {
  if (ms <= 0)
    return cJSON_AddNullToObject(o, name) != NULL;
  char t[40];
  okegw_format_rfc3339(ms, 1, t, sizeof t);
  return cJSON_AddStringToObject(o, name, t) != NULL;
}

static const char *col(sqlite3_stmt *st, int i) {
  const unsigned char *v = sqlite3_column_text(st, i);
  return v ? (const char *)v : NULL;
}

/* The steps of one run into run["scenarios"], grouped in the order they ran. */
static int run_steps(okegw_store *s, cJSON *run, long long id, char **err) {
  cJSON *scenarios = cJSON_AddArrayToObject(run, "scenarios");
  sqlite3_stmt *st = prepare(s,
                             "SELECT scenario, scenario_name, step, name, outcome, detail FROM "
                             "accept_steps WHERE run_id = ?1 ORDER BY id",
                             err);
  if (!scenarios || !st) {
    sqlite3_finalize(st);
    return OKEGW_STORE_ERROR;
  }
  sqlite3_bind_int64(st, 1, id);
  cJSON *cur = NULL, *steps = NULL;
  int rc = OKEGW_STORE_OK, r;
  while (rc == OKEGW_STORE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
    const char *sc = col(st, 0);
    cJSON *cid = cur ? cJSON_GetObjectItemCaseSensitive(cur, "id") : NULL;
    if (!cid || strcmp(cid->valuestring, sc) != 0) {
      cur = cJSON_CreateObject();
      if (!cur || !cJSON_AddItemToArray(scenarios, cur)) {
        cJSON_Delete(cur);
        rc = OKEGW_STORE_ERROR;
        break;
      }
      if (!cJSON_AddStringToObject(cur, "id", sc) ||
          okegw_json_add_text(cur, "name", col(st, 1), 0) < 0 ||
          !cJSON_AddNumberToObject(cur, "passed", 0) ||
          !cJSON_AddNumberToObject(cur, "failed", 0) ||
          !cJSON_AddNumberToObject(cur, "skipped", 0) ||
          !(steps = cJSON_AddArrayToObject(cur, "steps"))) {
        rc = OKEGW_STORE_ERROR;
        break;
      }
    }
    const char *outcome = col(st, 4);
    const char *count = strcmp(outcome, "ok") == 0        ? "passed"
                        : strcmp(outcome, "skipped") == 0 ? "skipped"
                                                          : "failed";
    cJSON *n = cJSON_GetObjectItemCaseSensitive(cur, count);
    cJSON_SetNumberValue(n, n->valuedouble + 1);
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(steps, e) ||
        (sqlite3_column_type(st, 2) == SQLITE_NULL
             ? !cJSON_AddNullToObject(e, "step")
             : !cJSON_AddNumberToObject(e, "step", sqlite3_column_int(st, 2))) ||
        okegw_json_add_text(e, "name", col(st, 3), 0) < 0 ||
        !cJSON_AddStringToObject(e, "outcome", outcome) ||
        !cJSON_AddStringToObject(e, "detail", col(st, 5) ? col(st, 5) : ""))
      rc = OKEGW_STORE_ERROR;
  }
  if (rc == OKEGW_STORE_ERROR && err && !*err)
    *err = okegw_strdup("out of memory");
  sqlite3_finalize(st);
  return rc;
}

int okegw_store_accept_runs(okegw_store *s, const char *connector, long limit, cJSON **out,
                            char **err) {
  if (s->pg)
    return okegw_pg__accept_runs(s, connector, limit, out, err);
  *out = cJSON_CreateArray();
  if (!*out)
    return OKEGW_STORE_ERROR;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT id, started_ms, finished_ms, mode, passed, failed, skipped, "
                         "outcome FROM accept_runs WHERE connector = ?1 ORDER BY id DESC LIMIT ?2",
                         -1, &st, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return OKEGW_STORE_OK; /* a store from before acceptance runs: none */
  }
  okegw_store__bind_text(st, 1, connector);
  sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
  int rc = OKEGW_STORE_OK, r = SQLITE_DONE;
  while (rc == OKEGW_STORE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *run = cJSON_CreateObject();
    if (!run || !cJSON_AddItemToArray(*out, run) ||
        !cJSON_AddNumberToObject(run, "id", (double)sqlite3_column_int64(st, 0)) ||
        !okegw_store__json_time(run, "startedAt", sqlite3_column_int64(st, 1)) ||
        !okegw_store__json_time(run, "finishedAt", sqlite3_column_int64(st, 2)) ||
        okegw_json_add_text(run, "mode", col(st, 3), 0) < 0 ||
        !cJSON_AddNumberToObject(run, "passed", sqlite3_column_int(st, 4)) ||
        !cJSON_AddNumberToObject(run, "failed", sqlite3_column_int(st, 5)) ||
        !cJSON_AddNumberToObject(run, "skipped", sqlite3_column_int(st, 6)) ||
        okegw_json_add_text(run, "outcome", col(st, 7), 0) < 0) {
      rc = OKEGW_STORE_ERROR;
      if (err)
        *err = okegw_strdup("out of memory");
      break;
    }
    rc = run_steps(s, run, sqlite3_column_int64(st, 0), err);
  }
  if (rc == OKEGW_STORE_OK && r != SQLITE_DONE) {
    okegw_store__err(s, err, NULL);
    rc = OKEGW_STORE_ERROR;
  }
  sqlite3_finalize(st);
  if (rc != OKEGW_STORE_OK) {
    cJSON_Delete(*out);
    *out = NULL;
  }
  return rc;
}
