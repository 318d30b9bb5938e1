/* The PostgreSQL side's helpers (see pg_db.h). */
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGresult *okegw_pg__run(okegw_store *s, const char *what, const char *sql, int n,
                        const char *const *vals, const int *lens, const int *fmts, char **err) {
  PGresult *r = PQexecParams(s->pg, sql, n, NULL, vals, lens, fmts, 0);
  int st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return r;
  const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(s->pg);
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
