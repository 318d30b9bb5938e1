/* The audit table: the only code that writes (store thread) or reads it
 * (okegw audit). */
#include "store/store_db.h"
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int okegw_store__audit_add(okegw_store *s, const char *at, char *const a[OKEGW_AUDIT_TEXTS],
                           int status, double latency_ms, long long delivery_id, int attempts) {
  if (s->pg)
    return okegw_pg__audit_add(s, at, a, status, latency_ms, delivery_id, attempts);
  sqlite3_stmt *st = okegw_store__stmt(
      s, &s->st_audit,
      "INSERT INTO audit(at, request_id, interaction, caller, connector, method, path, "
      "resource_id, mapping, body_sha256, flow, status, latency_ms, event, delivery_id, "
      "attempts, rules, phase, differences, violations, mapping_error) VALUES (?1,?2,?3,?4,?5,"
      "?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)");
  if (!st)
    return OKEGW_STORE_ERROR;
  sqlite3_bind_text(st, 1, at, -1, SQLITE_STATIC);
  for (int i = 0; i < 9; i++)
    okegw_store__bind_text(st, 2 + i, a[i]);
  /* "flow3.patch_association" -> 3 */
  const char *in = a[1];
  if (in && strncmp(in, "flow", 4) == 0 && in[4] >= '0' && in[4] <= '9')
    sqlite3_bind_int(st, 11, in[4] - '0');
  else
    sqlite3_bind_null(st, 11);
  sqlite3_bind_int(st, 12, status);
  sqlite3_bind_double(st, 13, (double)(long long)(latency_ms * 1000) / 1000.0);
  okegw_store__bind_text(st, 14, a[9]);
  if (delivery_id) {
    char did[24];
    snprintf(did, sizeof did, "%lld", delivery_id);
    sqlite3_bind_text(st, 15, did, -1, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_null(st, 15);
  }
  sqlite3_bind_int(st, 16, attempts ? attempts : 1);
  okegw_store__bind_text(st, 17, a[10]);
  okegw_store__bind_text(st, 18, a[11]);
  okegw_store__bind_text(st, 19, a[12]);
  okegw_store__bind_text(st, 20, a[13]);
  okegw_store__bind_text(st, 21, a[14]);
  int rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  sqlite3_reset(st);
  return rc;
}

/* The row under st as an object of its columns, NULL ones left out except
 * phase (null: the row is from before phases were recorded). */
static cJSON *audit_row(sqlite3_stmt *st) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < sqlite3_column_count(st); i++) {
    const char *name = sqlite3_column_name(st, i);
    cJSON *v = NULL;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: v = cJSON_CreateNumber((double)sqlite3_column_int64(st, i)); break;
    case SQLITE_FLOAT: v = cJSON_CreateNumber(sqlite3_column_double(st, i)); break;
    case SQLITE_TEXT:
      /* differences and violations are JSON themselves */
      v = strcmp(name, "differences") == 0 || strcmp(name, "violations") == 0
              ? cJSON_Parse((const char *)sqlite3_column_text(st, i))
              : NULL;
      if (!v)
        v = cJSON_CreateString((const char *)sqlite3_column_text(st, i));
      break;
    default:
      if (strcmp(name, "phase") != 0)
        continue; /* NULL */
      v = cJSON_CreateNull();
    }
    if (!v || !cJSON_AddItemToObject(o, name, v)) {
      cJSON_Delete(v);
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

/* 1 when the audit table has the column: a store that no gateway of the
 * schema that added it has opened yet lacks it (and is read-only here). */
static int has_column(okegw_store *s, const char *col) {
  sqlite3_stmt *st = NULL;
  int has = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM pragma_table_info('audit') WHERE name = ?1",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_bind_text(st, 1, col, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    has = sqlite3_column_int(st, 0) > 0;
  sqlite3_finalize(st);
  return has;
}

int okegw_store_audit_query(okegw_store *s, const okegw_audit_filter *f, okegw_audit_row_cb cb,
                            void *ud, char **err) {
  if (s->pg)
    return okegw_pg__audit_query(s, f, cb, ud, err);
  /* `until` is inclusive of its prefix: 2026-06-16 covers the whole day */
  char *sql = okegw_asprintf(
      "SELECT at, request_id, flow, interaction, caller, connector, method, path, resource_id, "
      "status, latency_ms, attempts, mapping, body_sha256, CAST(delivery_id AS INTEGER) AS "
      "delivery_id, event, rules, %s AS phase, %s AS differences, %s AS violations, "
      "%s AS mapping_error FROM audit "
      "WHERE (?1 IS NULL OR resource_id = ?1) AND (?2 IS NULL OR at >= ?2) "
      "AND (?3 IS NULL OR at < ?3 || '~') AND (?5 IS NULL OR connector = ?5 OR caller = ?5) "
      "ORDER BY id %s LIMIT ?4",
      has_column(s, "phase") ? "phase" : "NULL",
      has_column(s, "differences") ? "differences" : "NULL",
      has_column(s, "violations") ? "violations" : "NULL",
      has_column(s, "mapping_error") ? "mapping_error" : "NULL", f->newest_first ? "DESC" : "ASC");
  if (!sql) {
    if (err)
      *err = okegw_strdup("out of memory");
    return OKEGW_STORE_ERROR;
  }
  sqlite3_stmt *st = NULL;
  int prepared = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  free(sql);
  if (prepared != SQLITE_OK) {
    if (err)
      *err = okegw_asprintf("%s (is this an okegw store?)", sqlite3_errmsg(s->db));
    return OKEGW_STORE_BADFILE;
  }
  okegw_store__bind_text(st, 1, f->resource_id);
  okegw_store__bind_text(st, 2, f->since);
  okegw_store__bind_text(st, 3, f->until);
  sqlite3_bind_int64(st, 4, f->limit > 0 ? f->limit : -1);
  okegw_store__bind_text(st, 5, f->connector);
  int step = SQLITE_DONE, rc = OKEGW_STORE_OK;
  while (rc >= 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *o = audit_row(st);
    if (!o) {
      if (err)
        *err = okegw_strdup("out of memory");
      rc = OKEGW_STORE_ERROR;
      break;
    }
    rc = cb(ud, o);
    cJSON_Delete(o);
  }
  if (rc >= 0 && step != SQLITE_DONE) {
    okegw_store__err(s, err, NULL);
    rc = OKEGW_STORE_ERROR;
  }
  sqlite3_finalize(st);
  return rc < 0 ? rc : OKEGW_STORE_OK;
}

int okegw_store__audit_prune(okegw_store *s, const char *before) {
  if (s->pg)
    return okegw_pg__audit_prune(s, before);
  /* `at` is RFC 3339 UTC with milliseconds throughout, so text order is time
   * order and the audit_at index serves the range */
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, "DELETE FROM audit WHERE at < ?1", -1, &st, NULL) != SQLITE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: audit retention: %s", sqlite3_errmsg(s->db));
    return OKEGW_STORE_ERROR;
  }
  sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
  if (rc != OKEGW_STORE_OK)
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: audit retention: %s", sqlite3_errmsg(s->db));
  else if (sqlite3_changes(s->db) > 0)
    okegw_log(OKEGW_LOG_INFO, NULL,
              "audit retention: %d row(s) written before %s deleted (audit_retention_s)",
              sqlite3_changes(s->db), before);
  sqlite3_finalize(st);
  return rc;
}
