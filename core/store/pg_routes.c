/* The routes table on PostgreSQL: the twins of store.c's route functions
 * (read_route, put_route, claim_route, set_facts, confirm_route,
 * unlink_person), on the store thread inside its open transaction. facts
 * is JSON text; merged with okegw_merge_patch (RFC 7396, made by the
 * schema) as SQLite's json_patch does. */
#include "store/pg_db.h"
#include "base/log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* facts as compact JSON into out (n bytes): PostgreSQL prints jsonb with
 * spaces, where SQLite's json_patch leaves none, and the room is fixed
 * (OKEGW_FACTS_MAX). 0, or -1 when it is not JSON or does not fit. */
static int facts_into(const char *facts, char *out, size_t n) {
  cJSON *j = cJSON_Parse(facts);
  int rc = j && cJSON_PrintPreallocated(j, out, (int)n, 0) ? 0 : -1;
  cJSON_Delete(j);
  return rc;
}

/* Copies column col of row into out (n bytes), "" when SQL NULL. */
static void text_into(const PGresult *r, int col, char *out, size_t n) {
  snprintf(out, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

int okegw_pg__route_get(okegw_store *s, const char *kind, const char *id, char *out,
                        okegw_route *rt) {
  const char *v[] = {kind, id};
  PGresult *r = okegw_pg__q(s, "reading a route",
                            "SELECT connector, parent, confirmed, owner, facts FROM routes "
                            "WHERE kind = $1 AND id = $2",
                            2, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  int rc = OKEGW_STORE_NOTFOUND;
  if (PQntuples(r) == 1) {
    text_into(r, 0, out, OKEGW_NAME_MAX);
    if (rt) {
      text_into(r, 1, rt->parent, sizeof rt->parent);
      rt->confirmed = (int)okegw_pg__ll_at(r, 0, 2);
      text_into(r, 3, rt->owner, sizeof rt->owner);
      rt->facts[0] = '\0';
      if (!PQgetisnull(r, 0, 4) && facts_into(PQgetvalue(r, 0, 4), rt->facts, sizeof rt->facts)) {
        okegw_log(OKEGW_LOG_ERROR, NULL,
                  "store: the facts of %s %s are not JSON of at most %d bytes; read as none", kind,
                  id, OKEGW_FACTS_MAX - 1);
        rt->facts[0] = '\0';
      }
    }
    rc = OKEGW_STORE_OK;
  }
  PQclear(r);
  return rc;
}

int okegw_pg__route_put(okegw_store *s, const char *kind, const char *id, const char *connector,
                        const char *parent, int confirmed, const char *owner, const char *facts) {
  const char *v[] = {kind, id, connector, parent, confirmed ? "1" : "0", owner, facts};
  PGresult *r = okegw_pg__q(
      s, "writing a route",
      "INSERT INTO routes(kind, id, connector, parent, confirmed, owner, facts) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) "
      "ON CONFLICT (kind, id) DO UPDATE SET connector = excluded.connector, "
      "parent = coalesce(excluded.parent, routes.parent), "
      "facts = coalesce(excluded.facts, routes.facts), "
      "updated_at = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "WHERE routes.connector <> excluded.connector "
      "OR routes.parent IS DISTINCT FROM excluded.parent "
      "OR (excluded.facts IS NOT NULL AND routes.facts IS DISTINCT FROM excluded.facts)",
      7, v, NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__route_claim(okegw_store *s, const char *kind, const char *id, const char *connector,
                          const char *owner) {
  const char *v[] = {kind, id, connector, owner};
  PGresult *r = okegw_pg__q(s, "claiming a route",
                            "INSERT INTO routes(kind, id, connector, confirmed, owner) "
                            "VALUES ($1, $2, $3, 1, $4) ON CONFLICT (kind, id) DO NOTHING",
                            4, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  int inserted = strcmp(PQcmdTuples(r), "0") != 0;
  PQclear(r);
  return inserted;
}

int okegw_pg__route_facts(okegw_store *s, const char *kind, const char *id, const char *facts) {
  const char *v[] = {kind, id, facts};
  PGresult *r = okegw_pg__q(
      s, "merging a route's facts",
      "UPDATE routes SET facts = okegw_merge_patch(coalesce(facts, '{}')::jsonb, $3::jsonb)::text "
      "WHERE kind = $1 AND id = $2",
      3, v, NULL);
  if (!r)
    return OKEGW_STORE_ERROR;
  int changed = strcmp(PQcmdTuples(r), "0") != 0;
  PQclear(r);
  return changed ? OKEGW_STORE_OK : OKEGW_STORE_NOTFOUND;
}

int okegw_pg__route_confirm(okegw_store *s, const char *kind, const char *id) {
  const char *v[] = {kind, id};
  PGresult *r = okegw_pg__q(s, "confirming a route",
                            "UPDATE routes SET confirmed = 1 WHERE kind = $1 AND id = $2 AND "
                            "confirmed = 0",
                            2, v, NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

int okegw_pg__unlink_person(okegw_store *s, const char *id, const char *connector) {
  const char *v[] = {id, connector};
  /* canceled as SQLite's json_extract reads it: true and 1 alike */
  PGresult *r = okegw_pg__q(
      s, "unlinking a canceled deelname's person",
      "DELETE FROM routes WHERE kind = 'ta_person' AND id = (SELECT (facts::jsonb ->> 'person') "
      "|| '@' || $2 FROM routes WHERE kind = 'association' AND id = $1) AND NOT EXISTS (SELECT 1 "
      "FROM routes o, routes a WHERE a.kind = 'association' AND a.id = $1 AND o.kind = "
      "'association' AND o.id <> $1 AND o.connector = $2 AND (o.facts::jsonb ->> 'person') = "
      "(a.facts::jsonb ->> 'person') AND ((o.facts::jsonb -> 'canceled') IN ('true'::jsonb, "
      "'1'::jsonb)) IS NOT TRUE)",
      2, v, NULL);
  PQclear(r);
  return r ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}
