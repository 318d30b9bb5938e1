/* The phase_history table: the only code that writes (store thread) or
 * reads it (the gateway at start, okegw phases), and its JSON shape. Rows
 * are only ever added: the history is acceptance evidence. */
#include "base/json.h"
#include "store/store_db.h"
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHASE_COLUMNS "id, at_ms, connector, from_phase, to_phase, reason, config_sha256, instance"

void okegw_phase_rec_free(okegw_phase_rec *r) {
  if (!r)
    return;
  free(r->connector);
  free(r->from);
  free(r->to);
  free(r->reason);
  free(r->config_sha256);
  free(r->instance);
  memset(r, 0, sizeof *r);
}

/* A copy of column i, NULL for SQL NULL; -1 when out of memory. */
static int column_dup(sqlite3_stmt *st, int i, char **out) {
  const unsigned char *v = sqlite3_column_text(st, i);
  *out = v ? okegw_strdup((const char *)v) : NULL;
  return v && !*out ? -1 : 0;
}

/* The row under st (PHASE_COLUMNS) into r; ERROR when out of memory (r is
 * freed then). */
static int read_rec(sqlite3_stmt *st, okegw_phase_rec *r) {
  memset(r, 0, sizeof *r);
  r->id = sqlite3_column_int64(st, 0);
  r->at_ms = sqlite3_column_int64(st, 1);
  char **cols[] = {&r->connector, &r->from, &r->to, &r->reason, &r->config_sha256, &r->instance};
  for (int i = 0; i < 6; i++)
    if (column_dup(st, 2 + i, cols[i]) < 0) {
      okegw_phase_rec_free(r);
      return OKEGW_STORE_ERROR;
    }
  return OKEGW_STORE_OK;
}

int okegw_store__phases_add(okegw_store *s, okegw_phase_rec *recs, size_t n) {
  if (s->pg)
    return okegw_pg__phases_add(s, recs, n);
  sqlite3_stmt *st = okegw_store__stmt(
      s, &s->st_phase_add,
      "INSERT INTO phase_history(at_ms, connector, from_phase, to_phase, reason, config_sha256, "
      "instance) VALUES (?1,?2,?3,?4,?5,?6,?7)");
  if (!st)
    return OKEGW_STORE_ERROR;
  /* all or nothing within the group commit's transaction */
  if (sqlite3_exec(s->db, "SAVEPOINT okegw_phases", NULL, NULL, NULL) != SQLITE_OK)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_OK;
  long long now = okegw_wall_ms();
  for (size_t i = 0; i < n && rc == OKEGW_STORE_OK; i++) {
    okegw_phase_rec *r = &recs[i];
    if (!r->at_ms)
      r->at_ms = now;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_int64(st, 1, r->at_ms);
    okegw_store__bind_text(st, 2, r->connector);
    okegw_store__bind_text(st, 3, r->from);
    okegw_store__bind_text(st, 4, r->to);
    okegw_store__bind_text(st, 5, r->reason);
    okegw_store__bind_text(st, 6, r->config_sha256);
    okegw_store__bind_text(st, 7, r->instance);
    if (sqlite3_step(st) == SQLITE_DONE) {
      r->id = sqlite3_last_insert_rowid(s->db);
    } else {
      okegw_log(OKEGW_LOG_ERROR, NULL,
                "store: cannot record the phase change of connector %s (%zu changes not "
                "recorded): %s",
                r->connector, n, sqlite3_errmsg(s->db));
      rc = OKEGW_STORE_ERROR;
    }
  }
  sqlite3_reset(st);
  if (rc != OKEGW_STORE_OK) {
    /* may fail when SQLite rolled the whole transaction back itself; the
     * store thread sees that */
    sqlite3_exec(s->db, "ROLLBACK TO okegw_phases", NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++)
      recs[i].id = 0;
  }
  sqlite3_exec(s->db, "RELEASE okegw_phases", NULL, NULL, NULL);
  return rc;
}

/* Appends the row under st to *recs (n of them, cap room). */
static int append_rec(sqlite3_stmt *st, okegw_phase_rec **recs, size_t *n, size_t *cap) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    okegw_phase_rec *p = realloc(*recs, c * sizeof *p);
    if (!p)
      return OKEGW_STORE_ERROR;
    *recs = p;
    *cap = c;
  }
  if (read_rec(st, &(*recs)[*n]) != OKEGW_STORE_OK)
    return OKEGW_STORE_ERROR;
  (*n)++;
  return OKEGW_STORE_OK;
}

int okegw_store__phases_last(okegw_store *s, okegw_phase_rec **recs, size_t *n) {
  if (s->pg)
    return okegw_pg__phases_last(s, recs, n);
  *recs = NULL;
  *n = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT " PHASE_COLUMNS " FROM phase_history WHERE id IN "
                         "(SELECT max(id) FROM phase_history GROUP BY connector) "
                         "ORDER BY connector",
                         -1, &st, NULL) != SQLITE_OK)
    return OKEGW_STORE_ERROR;
  size_t cap = 0;
  int step, rc = OKEGW_STORE_OK;
  while ((step = sqlite3_step(st)) == SQLITE_ROW && rc == OKEGW_STORE_OK)
    rc = append_rec(st, recs, n, &cap);
  if (rc == OKEGW_STORE_OK && step != SQLITE_DONE)
    rc = OKEGW_STORE_ERROR;
  sqlite3_finalize(st);
  if (rc != OKEGW_STORE_OK) {
    for (size_t i = 0; i < *n; i++)
      okegw_phase_rec_free(&(*recs)[i]);
    free(*recs);
    *recs = NULL;
    *n = 0;
  }
  return rc;
}

/* The schema version the store says it has, 0 when it says none. */
static int schema_version(okegw_store *s) {
  sqlite3_stmt *st = NULL;
  int v = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

int okegw_store_phases_list(okegw_store *s, const okegw_phase_filter *f, okegw_phase_row_cb cb,
                            void *ud, char **err) {
  if (s->pg)
    return okegw_pg__phases_list(s, f, cb, ud, err);
  /* the last `limit` changes, oldest first */
  const char *sql = "SELECT * FROM (SELECT " PHASE_COLUMNS " FROM phase_history "
                    "WHERE ?1 IS NULL OR connector = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id";
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    int v = schema_version(s);
    if (v == 1 || v == 2)
      return OKEGW_STORE_OK; /* before phase history: nothing was recorded */
    if (err)
      *err = okegw_asprintf("%s (is this an okegw store?)", sqlite3_errmsg(s->db));
    return OKEGW_STORE_BADFILE;
  }
  okegw_store__bind_text(st, 1, f->connector);
  sqlite3_bind_int64(st, 2, f->limit > 0 ? f->limit : -1);
  int step = SQLITE_DONE, rc = OKEGW_STORE_OK;
  while (rc >= 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    okegw_phase_rec r;
    if (read_rec(st, &r) != OKEGW_STORE_OK) {
      if (err)
        *err = okegw_strdup("out of memory");
      rc = OKEGW_STORE_ERROR;
      break;
    }
    rc = cb(ud, &r);
    okegw_phase_rec_free(&r);
  }
  if (rc >= 0 && step != SQLITE_DONE) {
    okegw_store__err(s, err, NULL);
    rc = OKEGW_STORE_ERROR;
  }
  sqlite3_finalize(st);
  return rc < 0 ? rc : OKEGW_STORE_OK;
}

/* A string member, null for NULL (U+FFFD for invalid UTF-8). */
static int add_text(cJSON *o, const char *name, const char *v) {
  return okegw_json_add_text(o, name, v, 0);
}

cJSON *okegw_phase_json(const okegw_phase_rec *r) {
  cJSON *o = cJSON_CreateObject();
  char at[40];
  okegw_format_rfc3339(r->at_ms, 1, at, sizeof at);
  if (!o || add_text(o, "at", at) < 0 || add_text(o, "connector", r->connector) < 0 ||
      add_text(o, "from", r->from && *r->from ? r->from : NULL) < 0 ||
      add_text(o, "to", r->to) < 0 || add_text(o, "reason", r->reason) < 0 ||
      add_text(o, "configSha256", r->config_sha256) < 0 ||
      (r->instance && *r->instance && add_text(o, "instance", r->instance) < 0)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}
