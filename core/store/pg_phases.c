/* The phase_history table on PostgreSQL: the twins of store_phases.c (see
 * pg_db.h). Rows are only ever added: the history is acceptance evidence. */
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHASE_COLUMNS "id, at_ms, connector, from_phase, to_phase, reason, config_sha256, instance"

/* Row `row` of r (PHASE_COLUMNS) into rec; ERROR when out of memory (rec
 * is freed then). */
static int read_rec(const PGresult *r, int row, okegw_phase_rec *rec) {
  memset(rec, 0, sizeof *rec);
  rec->id = okegw_pg__ll_at(r, row, 0);
  rec->at_ms = okegw_pg__ll_at(r, row, 1);
  char **cols[] = {&rec->connector, &rec->from,          &rec->to,
                   &rec->reason,    &rec->config_sha256, &rec->instance};
  for (int i = 0; i < 6; i++)
    if (okegw_pg__dup(r, row, 2 + i, cols[i]) < 0) {
      okegw_phase_rec_free(rec);
      return OKEGW_STORE_ERROR;
    }
  return OKEGW_STORE_OK;
}

/* Inserts one change; its id into rec->id. */
static int add_one(okegw_store *s, okegw_phase_rec *rec, size_t n) {
  char at[24], what[192];
  /* what the SQLite twin logs when a change is not recorded */
  snprintf(what, sizeof what,
           "cannot record the phase change of connector %s (%zu changes not recorded)",
           rec->connector ? rec->connector : "(none)", n);
  const char *v[7] = {okegw_pg__ll(at, rec->at_ms, 0),
                      rec->connector,
                      rec->from,
                      rec->to,
                      rec->reason,
                      rec->config_sha256,
                      rec->instance};
  PGresult *r = okegw_pg__q(s, what,
                            "INSERT INTO phase_history(at_ms, connector, from_phase, to_phase, "
                            "reason, config_sha256, instance) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                            "RETURNING id",
                            7, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_ERROR;
  if (PQntuples(r) == 1) {
    rec->id = okegw_pg__ll_at(r, 0, 0);
    rc = OKEGW_STORE_OK;
  } else {
    okegw_log(OKEGW_LOG_ERROR, NULL, "store: %s: the INSERT returned %d rows", what, PQntuples(r));
  }
  PQclear(r);
  return rc;
}

int okegw_pg__phases_add(okegw_store *s, okegw_phase_rec *recs, size_t n) {
  /* all or nothing within the group commit's transaction (store.c opens
   * it: a SAVEPOINT needs one); ROLLBACK TO also clears the error that
   * aborted that transaction, so the batch's other jobs still commit, as
   * with SQLite */
  if (okegw_pg__exec(s, "cannot record the phase changes", "SAVEPOINT okegw_phases", NULL) !=
      OKEGW_STORE_OK)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_OK;
  long long now = okegw_wall_ms();
  for (size_t i = 0; i < n && rc == OKEGW_STORE_OK; i++) {
    if (!recs[i].at_ms)
      recs[i].at_ms = now;
    rc = add_one(s, &recs[i], n);
  }
  if (rc != OKEGW_STORE_OK)
    /* fails when the connection broke; the store thread sees that */
    okegw_pg__exec(s, "cannot undo the phase changes", "ROLLBACK TO okegw_phases", NULL);
  /* a RELEASE that fails leaves the transaction aborted: nothing of it
   * will commit, so neither do these */
  if (okegw_pg__exec(s, "cannot record the phase changes", "RELEASE okegw_phases", NULL) !=
      OKEGW_STORE_OK)
    rc = OKEGW_STORE_ERROR;
  if (rc != OKEGW_STORE_OK)
    for (size_t i = 0; i < n; i++)
      recs[i].id = 0;
  return rc;
}

/* The rows of r into a new array *recs (*n); ERROR when out of memory
 * (nothing is left allocated then). */
static int read_all(const PGresult *r, okegw_phase_rec **recs, size_t *n) {
  int rows = PQntuples(r);
  *recs = NULL;
  *n = 0;
  if (!rows)
    return OKEGW_STORE_OK;
  okegw_phase_rec *p = calloc((size_t)rows, sizeof *p);
  if (!p)
    return OKEGW_STORE_ERROR;
  for (int i = 0; i < rows; i++)
    if (read_rec(r, i, &p[i]) != OKEGW_STORE_OK) {
      for (int k = 0; k < i; k++)
        okegw_phase_rec_free(&p[k]);
      free(p);
      return OKEGW_STORE_ERROR;
    }
  *recs = p;
  *n = (size_t)rows;
  return OKEGW_STORE_OK;
}

int okegw_pg__phases_last(okegw_store *s, okegw_phase_rec **recs, size_t *n) {
  *recs = NULL;
  *n = 0;
  /* by connector name in byte order (COLLATE "C"), as SQLite's BINARY,
   * whatever the database's collation */
  PGresult *r = okegw_pg__q(s, "reading the last phase of every connector",
                            "SELECT " PHASE_COLUMNS " FROM phase_history WHERE id IN "
                            "(SELECT max(id) FROM phase_history GROUP BY connector) "
                            "ORDER BY connector COLLATE \"C\"",
                            0, NULL, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  int rc = read_all(r, recs, n);
  if (rc != OKEGW_STORE_OK)
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "store: reading the last phase of every connector: out of memory");
  PQclear(r);
  return rc;
}

int okegw_pg__phases_list(okegw_store *s, const okegw_phase_filter *f, okegw_phase_row_cb cb,
                          void *ud, char **err) {
  /* The table is there from PostgreSQL's first migration on: there is no
   * store from before phase history to answer "none" for, as store_phases.c
   * does for an SQLite file of schema 1 or 2. A failure is an ERROR with
   * PostgreSQL's words. The last `limit` changes (LIMIT NULL: all), oldest
   * first; few enough to read at once. */
  char lim[24];
  const char *v[2] = {f->connector, f->limit > 0 ? okegw_pg__ll(lim, f->limit, 0) : NULL};
  PGresult *r = okegw_pg__q(s, "reading the phase history",
                            "SELECT * FROM (SELECT " PHASE_COLUMNS " FROM phase_history "
                            "WHERE $1::text IS NULL OR connector = $1 "
                            "ORDER BY id DESC LIMIT $2::bigint) AS last ORDER BY id",
                            2, v, err);
  if (!r)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_OK;
  for (int i = 0; rc >= 0 && i < PQntuples(r); i++) {
    okegw_phase_rec rec;
    if (read_rec(r, i, &rec) != OKEGW_STORE_OK) {
      if (err) {
        free(*err);
        *err = okegw_strdup("out of memory");
      }
      rc = OKEGW_STORE_ERROR;
      break;
    }
    rc = cb(ud, &rec);
    okegw_phase_rec_free(&rec);
  }
  PQclear(r);
  return rc < 0 ? rc : OKEGW_STORE_OK;
}
