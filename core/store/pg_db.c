/* The PostgreSQL side's helpers (see pg_db.h). */
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL refuses text that is not valid UTF-8 (the database's
 * encoding), and the failed statement would abort a group commit's whole
 * transaction; SQLite keeps such bytes as given. So a text value that is
 * not UTF-8 (a raw request path, a Lua message, a phase_reason) goes in
 * with U+FFFD for each invalid byte: copy[] holds the values to send, the
 * cleaned ones also in owned[] (to free). -1 when out of memory. */
static int utf8_values(int n, const char *const *vals, const int *fmts, char **owned,
                       const char **copy) {
  int rc = 0;
  for (int i = 0; i < n; i++) {
    copy[i] = vals[i];
    owned[i] = NULL;
    if (rc < 0 || !vals[i] || (fmts && fmts[i]) || okegw_utf8_valid(vals[i], strlen(vals[i])))
      continue;
    if (!(owned[i] = okegw_utf8_clean(vals[i], 0, 0)))
      rc = -1;
    copy[i] = owned[i];
  }
  return rc;
}

#define MAX_PARAMS 192 /* a multi-row audit INSERT has 8 x 21 (pg_audit.c) */
#define NPREP (sizeof((okegw_store *)0)->pg_prep / sizeof((okegw_store *)0)->pg_prep[0])

void okegw_pg__forget_prepared(okegw_store *s) {
  for (unsigned i = 0; i < NPREP; i++) {
    free(s->pg_prep[i].sql);
    s->pg_prep[i].sql = NULL;
  }
  s->pg_nprep = 0;
}

/* The name sql is prepared under on this session ("okegw_N" in buf), after
 * preparing it when new; NULL when it is not prepared: a direct store's
 * (operator commands: short-lived, and their cursors are not preparable),
 * a full cache, or a PREPARE that failed (the statement then runs unprepared
 * and says why). FNV-1a of the text picks the slot; the text decides. */
static const char *prepared(okegw_store *s, const char *sql, int n, char buf[24]) {
  if (!s->loop || !n)
    return NULL;
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
    h = (h ^ *p) * 16777619u;
  for (unsigned k = 0; k < NPREP; k++) {
    struct okegw_pg_prepared *e = &s->pg_prep[(h + k) % NPREP];
    if (e->sql && strcmp(e->sql, sql) == 0) {
      snprintf(buf, 24, "okegw_%u", e->name);
      return buf;
    }
    if (e->sql)
      continue;
    if (s->pg_nprep >= NPREP * 3 / 4 || !(e->sql = okegw_strdup(sql)))
      return NULL;
    e->name = ++s->pg_nprep;
    snprintf(buf, 24, "okegw_%u", e->name);
    PGresult *r = PQprepare(s->pg, buf, sql, n, NULL);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) /* said here: it aborts a transaction, and the statement then
              * fails with "current transaction is aborted" only */
      okegw_log(OKEGW_LOG_ERROR, NULL, "store: cannot prepare a statement: %s",
                r ? PQresultErrorMessage(r) : PQerrorMessage(s->pg));
    PQclear(r);
    if (!ok) {
      free(e->sql);
      e->sql = NULL;
      return NULL;
    }
    return buf;
  }
  return NULL;
}

PGresult *okegw_pg__run(okegw_store *s, const char *what, const char *sql, int n,
                        const char *const *vals, const int *lens, const int *fmts, char **err) {
  char *owned[MAX_PARAMS] = {0};
  const char *copy[MAX_PARAMS] = {0};
  char name[24];
  int ok = n <= MAX_PARAMS && utf8_values(n, vals, fmts, owned, copy) == 0;
  const char *stmt = ok ? prepared(s, sql, n, name) : NULL;
  PGresult *r = !ok    ? NULL
                : stmt ? PQexecPrepared(s->pg, stmt, n, copy, lens, fmts, 0)
                       : PQexecParams(s->pg, sql, n, NULL, n ? copy : NULL, lens, fmts, 0);
  for (int i = 0; n <= MAX_PARAMS && i < n; i++)
    free(owned[i]);
  if (!ok) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s: out of memory (or over %d parameters)", what,
              MAX_PARAMS);
    if (err) {
      free(*err);
      *err = okegw_asprintf("%s: out of memory", what);
    }
    return NULL;
  }
  int st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return r;
  /* the primary message (and its detail): one line for the log, not the
   * CONTEXT and LINE lines of the full report */
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *msg = primary ? primary : r ? PQresultErrorMessage(r) : PQerrorMessage(s->pg);
  int len = (int)strlen(msg);
  while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
    len--;
  okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s: %.*s", what, len, msg);
  if (err) {
    free(*err);
    *err = okegw_asprintf("%s: %.*s", what, len, msg);
  }
  if (PQstatus(s->pg) == CONNECTION_BAD)
    s->pg_broken = 1;
  PQclear(r);
  return NULL;
}

PGresult *okegw_pg__q(okegw_store *s, const char *what, const char *sql, int n,
                      const char *const *vals, char **err) {
  return okegw_pg__run(s, what, sql, n, vals, NULL, NULL, err);
}

int okegw_pg__exec(okegw_store *s, const char *what, const char *sql, char **err) {
  PGresult *r = okegw_pg__q(s, what, sql, 0, NULL, err);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

void okegw_pg__set_err(char **err, const char *msg) {
  if (err) {
    free(*err);
    *err = okegw_strdup(msg);
  }
}

#define WALK_BATCH "256"

int okegw_pg__walk(okegw_store *s, const char *what, const char *select, int n,
                   const char *const *vals, okegw_pg_row_fn row, void *ud, char **err) {
  char *sql = okegw_asprintf("DECLARE okegw_walk NO SCROLL CURSOR FOR %s", select);
  if (!sql) {
    okegw_pg__set_err(err, "out of memory");
    return OKEGW_STORE_ERROR;
  }
  int own = PQtransactionStatus(s->pg) == PQTRANS_IDLE;
  int rc = own ? okegw_pg__exec(s, what, "BEGIN READ ONLY", err) : OKEGW_STORE_OK;
  PGresult *r = rc == OKEGW_STORE_OK ? okegw_pg__q(s, what, sql, n, vals, err) : NULL;
  int declared = r != NULL;
  PQclear(r);
  free(sql);
  if (!declared)
    rc = OKEGW_STORE_ERROR;
  for (int more = declared; more && rc >= 0;) {
    r = okegw_pg__q(s, what, "FETCH FORWARD " WALK_BATCH " FROM okegw_walk", 0, NULL, err);
    if (!r) {
      rc = OKEGW_STORE_ERROR;
      break;
    }
    int rows = PQntuples(r);
    more = rows == atoi(WALK_BATCH);
    for (int i = 0; i < rows && rc >= 0; i++)
      rc = row(ud, r, i);
    PQclear(r);
  }
  if (own && PQtransactionStatus(s->pg) != PQTRANS_IDLE) {
    /* read only: COMMIT and ROLLBACK end it alike, but a failed COMMIT
     * after a clean walk says the rows may not be what the database held */
    if (rc >= 0)
      rc = okegw_pg__exec(s, what, "COMMIT", err);
    else
      okegw_pg__exec(s, what, "ROLLBACK", NULL);
  } else if (!own && declared && PQtransactionStatus(s->pg) == PQTRANS_INTRANS) {
    okegw_pg__exec(s, what, "CLOSE okegw_walk", NULL); /* the caller's transaction goes on */
  }
  return rc < 0 ? rc : OKEGW_STORE_OK;
}

const char *okegw_pg__ll(char buf[24], long long v, int zero_is_null) {
  if (zero_is_null && v == 0)
    return NULL;
  snprintf(buf, 24, "%lld", v);
  return buf;
}

int okegw_pg__dup(const PGresult *r, int row, int col, char **out) {
  *out = NULL;
  if (PQgetisnull(r, row, col))
    return 0;
  *out = okegw_strndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
  return *out ? 0 : -1;
}

long long okegw_pg__ll_at(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double okegw_pg__double_at(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

int okegw_pg__tx_lost(okegw_store *s) {
  if (PQstatus(s->pg) == CONNECTION_BAD) {
    s->pg_broken = 1;
    return 1;
  }
  PGTransactionStatusType t = PQtransactionStatus(s->pg);
  return t == PQTRANS_INERROR || t == PQTRANS_UNKNOWN;
}
