/* The outbox's leases on PostgreSQL (DESIGN §7): several okegw instances
 * share one database, and each resource's deliveries are carried by one of
 * them at a time, the owner of the resource's row in okegw_leases
 * (connector, resource, owner). A lease holds while its owner is alive: its
 * row in okegw_instances (owner, until_ms) is renewed once a second, so
 * renewing every lease of an instance is one row's write.
 *
 * - A push takes its resource's lease in its own transaction
 *   (okegw_pg__lease_take), before its delivery row is written. Taking it
 *   locks the lease row until COMMIT, whoever holds it: pushes of one
 *   resource through two instances commit one after the other, so their
 *   ids follow the order they were acknowledged in, and the holder sends
 *   them in id order. The row's INSERT (pg_deliveries.c), a statement of its
 *   own after the lock, sees what other instances committed before it.
 * - A push whose resource another live instance holds is stored all the
 *   same (its sender hears 202) and marked requeue = 2: the holder picks it
 *   up at its next poll (okegw_pg__leases_poll). So is a push that takes a
 *   lease while its resource still has open deliveries of a former holder:
 *   they all come through the poll, in id order.
 * - Every poll (once a second) renews this instance, takes the leases of
 *   resources with open deliveries and no live holder (an instance died,
 *   or let go while a push was handed to it), and reads what was handed
 *   over. A lease whose resource has no open delivery left is let go
 *   (okegw_pg__lease_release).
 * - The end of a delivery is written only while its lease is this
 *   instance's (okegw_pg__delivery_update); the outbox starts an attempt
 *   only while this instance is surely alive until the attempt is over
 *   (store.h: okegw_store_lease_state).
 *
 * Times are the database's clock (okegw_now_ms(), migration 2): the
 * instances' clocks never meet. Lease rows are locked in key order (a
 * batch's pushes are sorted, store.c take_leases; takeovers are ORDER BY),
 * so two instances' batches rarely wait on each other in a circle; when
 * they do, PostgreSQL fails one of them (its pushes get 503, none is
 * acknowledged). */
#include "store/pg_db.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rows of a resource that are still to be delivered or wait for an
 * operator: the ones a lease covers. */
#define OPEN_SQL "state IN ('pending', 'dead')"
/* Lease row l's owner is alive. */
#define ALIVE_SQL(l)                                                                               \
  "EXISTS (SELECT 1 FROM okegw_instances i WHERE i.owner = " l ".owner AND i.until_ms >= "         \
  "okegw_now_ms())"
/* The lease row of delivery d is this instance's ($1). */
#define MINE_SQL                                                                                   \
  "EXISTS (SELECT 1 FROM okegw_leases l WHERE l.connector = d.connector AND l.resource = "         \
  "d.resource AND l.owner = $1)"

int okegw_pg__lease_take(okegw_store *s, const char *connector, const char *resource, int *lease) {
  const char *v[3] = {connector, resource, s->lease_owner};
  /* prev: who held it when the statement began; the upsert's WHERE decides
   * on the row as it is once any other taker committed */
  PGresult *r = okegw_pg__q(
      s, "cannot take a resource's lease",
      "WITH prev AS (SELECT owner FROM okegw_leases WHERE connector = $1 AND resource = $2), "
      "up AS (INSERT INTO okegw_leases AS l (connector, resource, owner) VALUES ($1, $2, $3) "
      "ON CONFLICT (connector, resource) DO UPDATE SET owner = EXCLUDED.owner "
      "WHERE l.owner = EXCLUDED.owner OR NOT " ALIVE_SQL(
          "l") " RETURNING 1) "
               "SELECT (SELECT count(*) FROM up), coalesce((SELECT owner FROM prev) = $3, false)",
      3, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  int taken = okegw_pg__ll_at(r, 0, 0) == 1, had = PQgetvalue(r, 0, 1)[0] == 't';
  PQclear(r);
  *lease = !taken ? OKEGW_LEASE_ELSEWHERE : had ? OKEGW_LEASE_HELD : OKEGW_LEASE_NEW;
  return OKEGW_STORE_OK;
}

int okegw_pg__lease_release(okegw_store *s, const char *connector, const char *resource) {
  /* not while a push of the resource waits for this instance (one stored
   * through another instance, or one of its own committed meanwhile) */
  const char *v[3] = {connector, resource, s->lease_owner};
  PGresult *r = okegw_pg__q(s, "cannot let a resource's lease go",
                            "DELETE FROM okegw_leases l WHERE connector = $1 AND resource = $2 AND "
                            "owner = $3 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE "
                            "d.connector = $1 AND d.resource = $2 AND d." OPEN_SQL ")",
                            3, v, NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

/* This instance is alive for another lease's length (from the database's
 * now). */
static int renew(okegw_store *s) {
  char ttl[24];
  const char *v[2] = {s->lease_owner, okegw_pg__ll(ttl, s->lease_ttl_ms, 0)};
  PGresult *r = okegw_pg__q(s, "cannot renew this instance's leases",
                            "INSERT INTO okegw_instances(owner, started_ms, until_ms) VALUES ($1, "
                            "okegw_now_ms(), okegw_now_ms() + $2::bigint) ON CONFLICT (owner) DO "
                            "UPDATE SET until_ms = EXCLUDED.until_ms",
                            2, v, NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

/* Takes the leases of resources with open deliveries and no live holder,
 * in key order, of the connectors this instance carries ($2, a text array;
 * NULL: all): another instance's connector is not one this one could send
 * to. At a load (own) also this instance's own: it reads them whole again.
 * In a poll their rows are marked handed over, for the read that follows. */
#define TAKE_SQL(own_cand, own_take)                                                               \
  "WITH cand AS (SELECT DISTINCT connector, resource FROM deliveries d WHERE d." OPEN_SQL          \
  " AND ($2::text[] IS NULL OR d.connector = ANY ($2::text[])) AND NOT EXISTS (SELECT 1 FROM "     \
  "okegw_leases l WHERE l.connector = d.connector AND l.resource = d.resource" own_cand            \
  " AND " ALIVE_SQL("l") ")), taken AS (INSERT INTO okegw_leases AS l (connector, resource, "      \
                         "owner) SELECT connector, resource, $1 FROM cand ORDER BY 1, 2 ON "       \
                         "CONFLICT (connector, "                                                   \
                         "resource) DO UPDATE SET owner = EXCLUDED.owner WHERE NOT " ALIVE_SQL(    \
                             "l") own_take " RETURNING connector, resource) "
static const char take_own_sql[] =
    TAKE_SQL(" AND l.owner <> $1", " OR l.owner = $1") "SELECT count(*) FROM taken";
static const char take_mark_sql[] =
    TAKE_SQL("", "") "UPDATE deliveries d SET " OKEGW_PG_HAND_OVER_SQL
                     " FROM taken t WHERE d.connector = t.connector AND d.resource = t.resource "
                     "AND d." OPEN_SQL;
#undef TAKE_SQL

static int take_free(okegw_store *s, int own) {
  /* the list as the loop last set it (okegw_store_lease_carry) */
  uv_mutex_lock(&s->mu);
  char *carried = s->carried ? okegw_strdup(s->carried) : NULL;
  int oom = s->carried && !carried;
  uv_mutex_unlock(&s->mu);
  if (oom)
    return OKEGW_STORE_ERROR;
  const char *v[2] = {s->lease_owner, carried};
  PGresult *r =
      okegw_pg__q(s, "cannot take the free leases", own ? take_own_sql : take_mark_sql, 2, v, NULL);
  free(carried);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__leases_load(okegw_store *s, PGresult **rows) {
  /* after a lapse (store.h) this instance's own leases are read again
   * whole: what it held in memory was forgotten */
  if (renew(s) != OKEGW_STORE_OK || take_free(s, 1) != OKEGW_STORE_OK)
    return OKEGW_STORE_ERROR;
  const char *v[1] = {s->lease_owner};
  PGresult *r = okegw_pg__q(s, "cannot read the open deliveries",
                            "UPDATE deliveries d SET requeue = 0 WHERE requeue = 2 AND " MINE_SQL,
                            1, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  PQclear(r);
  *rows = okegw_pg__q(s, "cannot read the open deliveries",
                      "SELECT " DELIVERY_COLUMNS " FROM deliveries d WHERE d." OPEN_SQL
                      " AND " MINE_SQL " ORDER BY id",
                      1, v, NULL);
  return *rows ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__leases_poll(okegw_store *s, PGresult **rows) {
  if (renew(s) != OKEGW_STORE_OK || take_free(s, 0) != OKEGW_STORE_OK)
    return OKEGW_STORE_ERROR;
  /* what was handed to this instance, or changed by an operator, for a
   * resource it holds; locked until the transaction ends so an operator's
   * change waits instead of being cleared unread */
  const char *v[1] = {s->lease_owner};
  *rows =
      okegw_pg__q(s, "cannot read the requeued deliveries",
                  "SELECT " DELIVERY_COLUMNS " FROM deliveries d WHERE requeue <> 0 AND " MINE_SQL
                  " ORDER BY id FOR UPDATE",
                  1, v, NULL);
  return *rows ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__leases_tidy(okegw_store *s) {
  /* leases of dead instances over resources with nothing open (nobody
   * needs them), and instances gone for a day */
  PGresult *r = okegw_pg__q(
      s, "cannot tidy the leases",
      "DELETE FROM okegw_leases l WHERE NOT " ALIVE_SQL(
          "l") " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.connector = l.connector AND "
               "d.resource = l.resource AND d." OPEN_SQL ")",
      0, NULL, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  PQclear(r);
  r = okegw_pg__q(s, "cannot tidy the leases",
                  "DELETE FROM okegw_instances WHERE until_ms < okegw_now_ms() - 86400000", 0, NULL,
                  NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__leases_leave(okegw_store *s) {
  /* its leases are free for the other instances at once, not after a
   * lease's length: a restart hands its resources over without a pause */
  const char *v[1] = {s->lease_owner};
  PGresult *r = okegw_pg__q(s, "cannot hand this instance's leases over",
                            "DELETE FROM okegw_instances WHERE owner = $1", 1, v, NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}
