/* The acceptance runs in PostgreSQL: the twins of store_accept.c (same
 * rows, same messages, same JSON). Called by `okegw accept` on a direct
 * store outside any transaction: each write is one statement, committed on
 * its own, so a run shows step by step next to a running gateway. */
#include "base/json.h"
#include "base/util.h"
#include "store/pg_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What failed, for *err: store_accept.c's words. */
#define RECORDING "recording the acceptance run"

int okegw_pg__accept_begin(okegw_store *s, const char *connector, const char *mode,
                           const char *config_sha256, long long *run, char **err) {
  char started[24];
  const char *v[] = {connector, mode, okegw_pg__ll(started, okegw_wall_ms(), 0), config_sha256};
  PGresult *r = okegw_pg__q(s, RECORDING,
                            "INSERT INTO accept_runs(connector, mode, started_ms, config_sha256) "
                            "VALUES ($1, $2, $3, $4) RETURNING id",
                            4, v, err);
  if (!r)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_OK;
  if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
    *run = okegw_pg__ll_at(r, 0, 0);
  } else {
    okegw_pg__set_err(err, RECORDING ": the database returned no run id");
    rc = OKEGW_STORE_ERROR;
  }
  PQclear(r);
  return rc;
}

int okegw_pg__accept_step(okegw_store *s, long long run, const okegw_accept_step *a, char **err) {
  char run_s[24], step_s[24], status_s[24], ms_s[32];
  /* %.17g: the double PostgreSQL parses back is the one measured (okegw
   * never sets LC_NUMERIC, so the point is a point) */
  if (a->ms >= 0)
    snprintf(ms_s, sizeof ms_s, "%.17g", a->ms);
  /* the defaults and NULLs of store_accept.c: step 0, status 0 and ms < 0
   * are "none" */
  const char *v[] = {okegw_pg__ll(run_s, run, 0),
                     a->scenario ? a->scenario : "?",
                     a->scenario_name,
                     a->step > 0 ? okegw_pg__ll(step_s, a->step, 0) : NULL,
                     a->name,
                     a->outcome ? a->outcome : "failed",
                     a->detail,
                     a->method,
                     a->path,
                     a->status > 0 ? okegw_pg__ll(status_s, a->status, 0) : NULL,
                     a->ms >= 0 ? ms_s : NULL};
  PGresult *r = okegw_pg__q(s, RECORDING,
                            "INSERT INTO accept_steps(run_id, scenario, scenario_name, step, name, "
                            "outcome, detail, method, path, status, ms) "
                            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                            11, v, err);
  if (!r)
    return OKEGW_STORE_ERROR;
  PQclear(r);
  return OKEGW_STORE_OK;
}

int okegw_pg__accept_end(okegw_store *s, long long run, int passed, int failed, int skipped,
                         const char *outcome, char **err) {
  char run_s[24], now_s[24], passed_s[24], failed_s[24], skipped_s[24];
  const char *v[] = {okegw_pg__ll(run_s, run, 0),         okegw_pg__ll(now_s, okegw_wall_ms(), 0),
                     okegw_pg__ll(passed_s, passed, 0),   okegw_pg__ll(failed_s, failed, 0),
                     okegw_pg__ll(skipped_s, skipped, 0), outcome};
  PGresult *r = okegw_pg__q(s, RECORDING,
                            "UPDATE accept_runs SET finished_ms = $2, passed = $3, failed = $4, "
                            "skipped = $5, outcome = $6 WHERE id = $1",
                            6, v, err);
  if (!r)
    return OKEGW_STORE_ERROR;
  PQclear(r);
  return OKEGW_STORE_OK;
}

/* The runs and their steps in one statement, so in one snapshot, as the
 * SQLite side reads them in one read transaction: a row per step (run
 * columns repeated), or one with NULL step columns for a run without steps;
 * newest run first, its steps in the order they ran. LIMIT NULL: all. */
static const char RUNS_SQL[] =
    "SELECT r.id, r.started_ms, r.finished_ms, r.mode, r.passed, r.failed, r.skipped, "
    "r.outcome, s.scenario, s.scenario_name, s.step, s.name, s.outcome, s.detail "
    "FROM (SELECT * FROM accept_runs WHERE connector = $1 ORDER BY id DESC LIMIT $2) r "
    "LEFT JOIN accept_steps s ON s.run_id = r.id "
    "ORDER BY r.id DESC, s.id";

enum {
  C_ID,
  C_STARTED,
  C_FINISHED,
  C_MODE,
  C_PASSED,
  C_FAILED,
  C_SKIPPED,
  C_OUTCOME,
  C_SCENARIO, /* NOT NULL in the table: NULL here is a run without steps */
  C_SCENARIO_NAME,
  C_STEP,
  C_NAME,
  C_STEP_OUTCOME,
  C_DETAIL
};

/* Column col of row i as a C string; NULL when SQL NULL. */
static const char *text_at(const PGresult *r, int i, int col) {
  return PQgetisnull(r, i, col) ? NULL : PQgetvalue(r, i, col);
}

/* Where the steps of the run being built go. */
typedef struct run_cursor {
  cJSON *scenarios; /* the run's "scenarios" */
  cJSON *cur;       /* its last scenario, NULL before the first */
  cJSON *steps;     /* cur's "steps" */
} run_cursor;

/* Appends the run of row i to out; 0, or -1 when out of memory. */
static int add_run(cJSON *out, const PGresult *r, int i, run_cursor *rc) {
  cJSON *run = cJSON_CreateObject();
  if (!run || !cJSON_AddItemToArray(out, run)) {
    cJSON_Delete(run);
    return -1;
  }
  *rc = (run_cursor){0};
  if (!cJSON_AddNumberToObject(run, "id", (double)okegw_pg__ll_at(r, i, C_ID)) ||
      !okegw_store__json_time(run, "startedAt", okegw_pg__ll_at(r, i, C_STARTED)) ||
      !okegw_store__json_time(run, "finishedAt", okegw_pg__ll_at(r, i, C_FINISHED)) ||
      okegw_json_add_text(run, "mode", text_at(r, i, C_MODE), 0) < 0 ||
      !cJSON_AddNumberToObject(run, "passed", (int)okegw_pg__ll_at(r, i, C_PASSED)) ||
      !cJSON_AddNumberToObject(run, "failed", (int)okegw_pg__ll_at(r, i, C_FAILED)) ||
      !cJSON_AddNumberToObject(run, "skipped", (int)okegw_pg__ll_at(r, i, C_SKIPPED)) ||
      okegw_json_add_text(run, "outcome", text_at(r, i, C_OUTCOME), 0) < 0 ||
      !(rc->scenarios = cJSON_AddArrayToObject(run, "scenarios")))
    return -1;
  return 0;
}

/* Adds the step of row i to the run, in a new scenario when its scenario is
 * not the last one's (grouped in the order they ran, as store_accept.c
 * does); 0, or -1 when out of memory. */
static int add_step(const PGresult *r, int i, run_cursor *rc) {
  const char *sc = text_at(r, i, C_SCENARIO);
  cJSON *cid = rc->cur ? cJSON_GetObjectItemCaseSensitive(rc->cur, "id") : NULL;
  if (!cid || strcmp(cid->valuestring, sc) != 0) {
    rc->cur = cJSON_CreateObject();
    if (!rc->cur || !cJSON_AddItemToArray(rc->scenarios, rc->cur)) {
      cJSON_Delete(rc->cur);
      rc->cur = NULL;
      return -1;
    }
    if (!cJSON_AddStringToObject(rc->cur, "id", sc) ||
        okegw_json_add_text(rc->cur, "name", text_at(r, i, C_SCENARIO_NAME), 0) < 0 ||
        !cJSON_AddNumberToObject(rc->cur, "passed", 0) ||
        !cJSON_AddNumberToObject(rc->cur, "failed", 0) ||
        !cJSON_AddNumberToObject(rc->cur, "skipped", 0) ||
        !(rc->steps = cJSON_AddArrayToObject(rc->cur, "steps")))
      return -1;
  }
  const char *outcome = text_at(r, i, C_STEP_OUTCOME);
  const char *count = strcmp(outcome, "ok") == 0        ? "passed"
                      : strcmp(outcome, "skipped") == 0 ? "skipped"
                                                        : "failed";
  cJSON *n = cJSON_GetObjectItemCaseSensitive(rc->cur, count);
  cJSON_SetNumberValue(n, n->valuedouble + 1);
  const char *detail = text_at(r, i, C_DETAIL);
  cJSON *e = cJSON_CreateObject();
  if (!e || !cJSON_AddItemToArray(rc->steps, e)) {
    cJSON_Delete(e);
    return -1;
  }
  if ((PQgetisnull(r, i, C_STEP)
           ? !cJSON_AddNullToObject(e, "step")
           : !cJSON_AddNumberToObject(e, "step", (int)okegw_pg__ll_at(r, i, C_STEP))) ||
      okegw_json_add_text(e, "name", text_at(r, i, C_NAME), 0) < 0 ||
      !cJSON_AddStringToObject(e, "outcome", outcome) ||
      !cJSON_AddStringToObject(e, "detail", detail ? detail : ""))
    return -1;
  return 0;
}

int okegw_pg__accept_runs(okegw_store *s, const char *connector, long limit, cJSON **out,
                          char **err) {
  *out = cJSON_CreateArray();
  if (!*out)
    return OKEGW_STORE_ERROR;
  char lim[24];
  const char *v[] = {connector, limit > 0 ? okegw_pg__ll(lim, limit, 0) : NULL};
  PGresult *r = okegw_pg__q(s, "reading the acceptance runs", RUNS_SQL, 2, v, err);
  if (!r) {
    cJSON_Delete(*out);
    *out = NULL;
    return OKEGW_STORE_ERROR;
  }
  int rc = OKEGW_STORE_OK, rows = PQntuples(r);
  run_cursor cur = {0};
  long long last = 0; /* the run being built (ids start at 1) */
  for (int i = 0; i < rows && rc == OKEGW_STORE_OK; i++) {
    long long id = okegw_pg__ll_at(r, i, C_ID);
    if (id != last && add_run(*out, r, i, &cur) < 0)
      rc = OKEGW_STORE_ERROR;
    last = id;
    if (rc == OKEGW_STORE_OK && !PQgetisnull(r, i, C_SCENARIO) && add_step(r, i, &cur) < 0)
      rc = OKEGW_STORE_ERROR;
  }
  PQclear(r);
  if (rc != OKEGW_STORE_OK) {
    okegw_pg__set_err(err, "out of memory");
    cJSON_Delete(*out);
    *out = NULL;
  }
  return rc;
}
