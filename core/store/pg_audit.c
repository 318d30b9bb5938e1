/* The audit table on PostgreSQL: the twins of store_audit.c (see pg_db.h),
 * with the same columns, filters, order and JSON rows. Every column the
 * SQLite store may lack in an older file (phase, differences, violations,
 * mapping_error) is in PostgreSQL's schema from its first migration, so
 * there is no column check here. */
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_COLS 21

/* "INSERT INTO audit(...) VALUES ($1, ..., $21), ..." for k rows (1 <=
 * k <= OKEGW_PG_AUDIT_ROWS), made once: the statements of a group commit's
 * audit rows, prepared once each (pg_db.c). */
static char *insert_sql[OKEGW_PG_AUDIT_ROWS];
static pthread_once_t insert_once = PTHREAD_ONCE_INIT;

static void insert_sql_make(void) {
  static const char head[] =
      "INSERT INTO audit(at, request_id, interaction, caller, connector, method, path, "
      "resource_id, mapping, body_sha256, flow, status, latency_ms, event, delivery_id, "
      "attempts, rules, phase, differences, violations, mapping_error) VALUES ";
  for (int k = 1; k <= OKEGW_PG_AUDIT_ROWS; k++) {
    size_t cap = sizeof head + (size_t)k * AUDIT_COLS * 8;
    char *sql = malloc(cap);
    if (!sql)
      continue; /* that size is written in smaller statements */
    size_t at = (size_t)snprintf(sql, cap, "%s", head);
    for (int i = 0; i < k; i++)
      for (int c = 0; c < AUDIT_COLS; c++)
        at += (size_t)snprintf(sql + at, cap - at, "%s$%d%s",
                               c   ? ", "
                               : i ? ", ("
                                   : "(",
                               i * AUDIT_COLS + c + 1, c == AUDIT_COLS - 1 ? ")" : "");
    insert_sql[k - 1] = sql;
  }
}

/* Row r's 21 values into v; the numbers' text into num (4 x 40 bytes). */
static void audit_values(const okegw_pg_audit_row *r, const char **v, char num[4][40]) {
  /* "flow3.patch_association" -> 3 */
  const char *in = r->a[1];
  num[0][0] = in && strncmp(in, "flow", 4) == 0 && in[4] >= '0' && in[4] <= '9' ? in[4] : '\0';
  num[0][1] = '\0';
  /* latency cut to whole microseconds as store_audit.c does (%.17g carries
   * that double exactly); delivery_id is text, NULL for none */
  snprintf(num[1], 40, "%.17g", (double)(long long)(r->latency_ms * 1000) / 1000.0);
  const char *src[AUDIT_COLS] = {r->at,
                                 r->a[0],
                                 r->a[1],
                                 r->a[2],
                                 r->a[3],
                                 r->a[4],
                                 r->a[5],
                                 r->a[6],
                                 r->a[7],
                                 r->a[8],
                                 num[0][0] ? num[0] : NULL,
                                 okegw_pg__ll(num[2], r->status, 0),
                                 num[1],
                                 r->a[9],
                                 okegw_pg__ll(num[3], r->delivery_id, 1),
                                 NULL,
                                 r->a[10],
                                 r->a[11],
                                 r->a[12],
                                 r->a[13],
                                 r->a[14]};
  memcpy(v, src, sizeof src);
}

int okegw_pg__audit_rows(okegw_store *s, const okegw_pg_audit_row *rows, size_t n) {
  pthread_once(&insert_once, insert_sql_make);
  const char *v[OKEGW_PG_AUDIT_ROWS * AUDIT_COLS];
  char num[OKEGW_PG_AUDIT_ROWS][4][40], att[OKEGW_PG_AUDIT_ROWS][24];
  while (n) {
    size_t k = n < OKEGW_PG_AUDIT_ROWS ? n : OKEGW_PG_AUDIT_ROWS;
    while (k > 1 && !insert_sql[k - 1])
      k--;
    if (!insert_sql[k - 1])
      return OKEGW_STORE_ERROR; /* out of memory when they were made */
    for (size_t i = 0; i < k; i++) {
      audit_values(&rows[i], &v[i * AUDIT_COLS], num[i]);
      v[i * AUDIT_COLS + 15] = okegw_pg__ll(att[i], rows[i].attempts ? rows[i].attempts : 1, 0);
    }
    PGresult *r =
        okegw_pg__q(s, "writing an audit row", insert_sql[k - 1], (int)(k * AUDIT_COLS), v, NULL);
    PQclear(r);
    if (!r)
      return OKEGW_STORE_ERROR;
    rows += k;
    n -= k;
  }
  return OKEGW_STORE_OK;
}

int okegw_pg__audit_add(okegw_store *s, const char *at, char *const a[OKEGW_AUDIT_TEXTS],
                        int status, double latency_ms, long long delivery_id, int attempts) {
  okegw_pg_audit_row row = {.at = at,
                            .a = a,
                            .status = status,
                            .latency_ms = latency_ms,
                            .delivery_id = delivery_id,
                            .attempts = attempts};
  return okegw_pg__audit_rows(s, &row, 1);
}

/* The columns of a row, in store_audit.c's order, typed as SQLite's
 * sqlite3_column_type gives them there (PostgreSQL's values come as text).
 * delivery_id is text in the table and a number in the row: SQLite's
 * CAST(delivery_id AS INTEGER), a leading integer or 0, is strtoll's. */
enum col_kind { COL_TEXT, COL_INT, COL_REAL, COL_JSON };
static const struct audit_col {
  const char *name;
  enum col_kind kind;
} audit_cols[] = {
    {"at", COL_TEXT},          {"request_id", COL_TEXT},  {"flow", COL_INT},
    {"interaction", COL_TEXT}, {"caller", COL_TEXT},      {"connector", COL_TEXT},
    {"method", COL_TEXT},      {"path", COL_TEXT},        {"resource_id", COL_TEXT},
    {"status", COL_INT},       {"latency_ms", COL_REAL},  {"attempts", COL_INT},
    {"mapping", COL_TEXT},     {"body_sha256", COL_TEXT}, {"delivery_id", COL_INT},
    {"event", COL_TEXT},       {"rules", COL_TEXT},       {"phase", COL_TEXT},
    {"differences", COL_JSON}, {"violations", COL_JSON},  {"mapping_error", COL_TEXT},
};
#define AUDIT_NCOLS ((int)(sizeof audit_cols / sizeof audit_cols[0]))

/* Row `row` of r as an object of its columns, NULL ones left out except
 * phase (null: the row is from before phases were recorded). */
static cJSON *audit_row(const PGresult *r, int row) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < AUDIT_NCOLS; i++) {
    const char *name = audit_cols[i].name;
    const char *val = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
    cJSON *v = NULL;
    if (!val) {
      if (strcmp(name, "phase") != 0)
        continue;
      v = cJSON_CreateNull();
    } else {
      switch (audit_cols[i].kind) {
      case COL_INT: v = cJSON_CreateNumber((double)strtoll(val, NULL, 10)); break;
      case COL_REAL: v = cJSON_CreateNumber(strtod(val, NULL)); break;
      case COL_JSON:
        /* differences and violations are JSON themselves */
        v = cJSON_Parse(val);
        if (!v)
          v = cJSON_CreateString(val);
        break;
      case COL_TEXT: v = cJSON_CreateString(val); break;
      }
    }
    if (!v || !cJSON_AddItemToObject(o, name, v)) {
      cJSON_Delete(v);
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

/* The SELECT list of audit_cols into out (n bytes); -1 when it does not fit. */
static int select_list(char *out, size_t n) {
  size_t used = 0;
  for (int i = 0; i < AUDIT_NCOLS; i++) {
    int k = snprintf(out + used, n - used, "%s%s", i ? ", " : "", audit_cols[i].name);
    if (k < 0 || (size_t)k >= n - used)
      return -1;
    used += (size_t)k;
  }
  return 0;
}

/* okegw_pg__audit_query's walk. */
typedef struct audit_walk {
  okegw_audit_row_cb cb;
  void *ud;
  char **err;
} audit_walk;

static int audit_walk_row(void *arg, const PGresult *r, int i) {
  audit_walk *w = arg;
  cJSON *o = audit_row(r, i);
  if (!o) {
    okegw_pg__set_err(w->err, "out of memory");
    return OKEGW_STORE_ERROR;
  }
  int rc = w->cb(w->ud, o);
  cJSON_Delete(o);
  return rc;
}

int okegw_pg__audit_query(okegw_store *s, const okegw_audit_filter *f, okegw_audit_row_cb cb,
                          void *ud, char **err) {
  char cols[512], lim[24];
  if (select_list(cols, sizeof cols) < 0) {
    okegw_pg__set_err(err, "reading the audit trail: the column list does not fit"); /* a bug */
    return OKEGW_STORE_ERROR;
  }
  /* `at` is compared byte by byte (the column is COLLATE "C", as SQLite's
   * BINARY): in a database's own collation punctuation may weigh nothing or
   * sort before digits, and the '~' that makes `until` inclusive of its
   * prefix (2026-06-16 covers the whole day) would then end it too soon. No
   * limit is LIMIT NULL (SQLite's -1). */
  char *sql = okegw_asprintf("SELECT %s FROM audit "
                             "WHERE ($1::text IS NULL OR resource_id = $1) "
                             "AND ($2::text IS NULL OR at >= $2) "
                             "AND ($3::text IS NULL OR at < $3 || '~') "
                             "AND ($5::text IS NULL OR connector = $5 OR caller = $5) "
                             "ORDER BY id %s LIMIT $4::bigint",
                             cols, f->newest_first ? "DESC" : "ASC");
  if (!sql) {
    okegw_pg__set_err(err, "out of memory");
    return OKEGW_STORE_ERROR;
  }
  const char *v[5] = {f->resource_id, f->since, f->until,
                      f->limit > 0 ? okegw_pg__ll(lim, f->limit, 0) : NULL, f->connector};
  audit_walk w = {.cb = cb, .ud = ud, .err = err};
  int rc = okegw_pg__walk(s, "reading the audit trail", sql, 5, v, audit_walk_row, &w, err);
  free(sql);
  return rc;
}

int okegw_pg__audit_prune(okegw_store *s, const char *before) {
  /* `at` is COLLATE "C" (byte order, as SQLite): the audit_at index serves
   * the range */
  const char *v[] = {before};
  PGresult *r = okegw_pg__q(s, "audit retention", "DELETE FROM audit WHERE at < $1", 1, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  long long n = strtoll(PQcmdTuples(r), NULL, 10);
  if (n > 0)
    okegw_log(OKEGW_LOG_INFO, NULL,
              "audit retention: %lld row(s) written before %s deleted (audit_retention_s)", n,
              before);
  PQclear(r);
  return OKEGW_STORE_OK;
}
