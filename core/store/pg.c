/* PostgreSQL: connection string, connection, schema (see pg.h). */
#include "store/pg.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int okegw_pg_is_uri(const char *store) {
  return store &&
         (strncmp(store, "postgresql://", 13) == 0 || strncmp(store, "postgres://", 11) == 0);
}

/* Where the password of the authority part (user:PASSWORD@host) is in uri:
 * 1 with its offset and length, or 0 when there is none. libpq's parser
 * ends the authority only at a '/', so a '?' may be in a password; the last
 * '@' before it ends the user part (an '@' in a password is then hidden
 * with it rather than shown). */
static int auth_password(const char *uri, size_t *off, size_t *len) {
  const char *auth = uri ? strstr(uri, "://") : NULL;
  if (!auth)
    return 0;
  auth += 3;
  const char *end = auth + strcspn(auth, "/"), *at = NULL;
  for (const char *p = auth; p < end; p++)
    if (*p == '@')
      at = p;
  const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (!colon)
    return 0;
  *off = (size_t)(colon + 1 - uri);
  *len = (size_t)(at - colon - 1);
  return 1;
}

/* The parameters whose values are secrets: the password, and the client
 * key's passphrase. */
static const char *const secret_keys[] = {"password=", "sslpassword="};

/* Calls fn(off, len, arg) for each secret value in uri as written: the
 * authority's password, then every password= and sslpassword= parameter
 * of the query. */
static void each_secret(const char *uri, void (*fn)(size_t off, size_t len, void *arg), void *arg) {
  size_t off, len, end = 0;
  if (auth_password(uri, &off, &len)) {
    fn(off, len, arg);
    end = off + len;
  }
  const char *q = uri ? strchr(uri + end, '?') : NULL;
  for (size_t at = q ? (size_t)(q - uri) + 1 : 0; q && uri[at];) {
    size_t klen = 0;
    for (size_t k = 0; k < sizeof secret_keys / sizeof secret_keys[0]; k++)
      if (strncmp(uri + at, secret_keys[k], strlen(secret_keys[k])) == 0)
        klen = strlen(secret_keys[k]);
    size_t vlen = strcspn(uri + at + klen, "&");
    if (klen)
      fn(at + klen, vlen, arg);
    at += klen + vlen;
    if (uri[at] == '&')
      at++;
  }
}

/* Copies s into out (n > 0) with every occurrence of the secret `pw`
 * replaced by "***": libpq's messages may quote the string. */
static void without(const char *s, const char *pw, char *out, size_t n) {
  size_t used = 0, pl = pw ? strlen(pw) : 0;
  while (*s && used + 1 < n) {
    if (pl && strncmp(s, pw, pl) == 0) {
      for (const char *r = "***"; *r && used + 1 < n; r++)
        out[used++] = *r;
      s += pl;
      continue;
    }
    out[used++] = *s++;
  }
  out[used] = '\0';
}

typedef struct scrub {
  const char *uri;
  char buf[2][1024];
  int cur;
} scrub;

static void scrub_one(scrub *x, const char *secret) {
  without(x->buf[x->cur], secret, x->buf[!x->cur], sizeof x->buf[0]);
  x->cur = !x->cur;
}

static void scrub_span(size_t off, size_t len, void *arg) {
  scrub *x = arg;
  char secret[256];
  if (len == 0 || len >= sizeof secret)
    return;
  memcpy(secret, x->uri + off, len);
  secret[len] = '\0';
  scrub_one(x, secret);
}

/* A message for *err from libpq's, "what: message", with every secret of
 * uri left out: as written, and as libpq decoded them. */
static char *pg_message(const char *what, const char *msg, const char *uri) {
  scrub x = {.uri = uri};
  snprintf(x.buf[0], sizeof x.buf[0], "%s", msg ? msg : "unknown error");
  each_secret(uri, scrub_span, &x);
  char *why = NULL;
  PQconninfoOption *opts = uri ? PQconninfoParse(uri, &why) : NULL;
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if ((strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0) && o->val &&
        *o->val)
      scrub_one(&x, o->val);
  PQconninfoFree(opts);
  PQfreemem(why);
  char *clean = x.buf[x.cur];
  for (char *p = clean + strlen(clean); p > clean && (p[-1] == '\n' || p[-1] == ' ');)
    *--p = '\0';
  return okegw_asprintf("%s: %s", what, clean);
}

int okegw_pg_check_uri(const char *uri, char *err, size_t n) {
  if (!okegw_pg_is_uri(uri)) {
    snprintf(err, n, "not a PostgreSQL connection URI (postgresql://user@host:port/database)");
    return -1;
  }
  char *why = NULL;
  PQconninfoOption *opts = PQconninfoParse(uri, &why);
  if (!opts) {
    char *m = pg_message("", why ? why : "out of memory", uri);
    snprintf(err, n, "%s", m ? m + 2 : "out of memory");
    free(m);
    PQfreemem(why);
    return -1;
  }
  const char *db = NULL;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (strcmp(o->keyword, "dbname") == 0)
      db = o->val;
  int ok = db && *db;
  PQconninfoFree(opts);
  if (!ok) {
    snprintf(err, n, "the URI names no database (postgresql://user@host:port/DATABASE)");
    return -1;
  }
  return 0;
}

typedef struct redact {
  const char *uri;
  char *out;
  size_t used, from; /* bytes of out written; where uri is copied from next */
} redact;

static void redact_span(size_t off, size_t len, void *arg) {
  redact *x = arg;
  memcpy(x->out + x->used, x->uri + x->from, off - x->from);
  x->used += off - x->from;
  memcpy(x->out + x->used, "***", 3);
  x->used += 3;
  x->from = off + len;
}

char *okegw_pg_redact(const char *uri) {
  if (!uri)
    uri = "";
  size_t n = strlen(uri), secrets = 0;
  for (const char *p = uri; *p; p++)
    secrets += *p == '=';
  /* each secret becomes "***": at most 3 bytes more per secret (an empty one) */
  redact x = {.uri = uri, .out = malloc(n + 3 * (secrets + 1) + 1)};
  if (!x.out)
    return NULL;
  each_secret(uri, redact_span, &x);
  memcpy(x.out + x.used, uri + x.from, n - x.from);
  x.out[x.used + n - x.from] = '\0';
  return x.out;
}

/* The server's notices ("relation already exists, skipping") go to the
 * log at debug, not to stderr as libpq's default would. */
static void on_notice(void *arg, const char *msg) {
  (void)arg;
  int n = (int)strlen(msg);
  while (n > 0 && msg[n - 1] == '\n')
    n--;
  okegw_log(OKEGW_LOG_DEBUG, NULL, "PostgreSQL: %.*s", n, msg);
}

int okegw_pg_connect(const char *uri, PGconn **out, char **err) {
  *out = NULL;
  /* Defaults a URI may override (it is expanded last, and later keywords
   * win): application_name, so a DBA sees okegw's sessions in
   * pg_stat_activity; a connect timeout, as libpq waits for ever without
   * one; keepalives, so a half-open link is noticed in about a minute and
   * the store thread does not hang on it. */
  const char *keys[] = {"application_name",
                        "connect_timeout",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "dbname",
                        NULL};
  const char *vals[] = {"okegw", "10", "30", "10", "3", uri, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c) {
    *err = okegw_strdup("PostgreSQL: out of memory");
    return -1;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    char *r = okegw_pg_redact(uri);
    char *what = okegw_asprintf("cannot connect to PostgreSQL at %s", r ? r : "(the store URI)");
    *err = pg_message(what ? what : "cannot connect to PostgreSQL", PQerrorMessage(c), uri);
    free(what);
    free(r);
    PQfinish(c);
    return -1;
  }
  PQsetNoticeProcessor(c, on_notice, NULL);
  *out = c;
  return 0;
}

/* The migrations, in order: migrations[i] brings the schema to version
 * i + 1. The tables and columns are those of the SQLite store (store.c),
 * so the two backends answer alike. Migration 2 adds what several instances
 * share the outbox with (pg_leases.c): okegw_instances, one row per running
 * instance and until when it is alive; okegw_leases, one row per
 * (connector, resource) whose deliveries an instance carries; and
 * okegw_now_ms(), the database's clock every lease is read and written by
 * (instances' clocks may differ; the server's is one). */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE routes("
    "  kind TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  connector TEXT NOT NULL,"
    "  parent TEXT,"
    "  updated_at TEXT NOT NULL DEFAULT "
    "    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    "  confirmed INTEGER NOT NULL DEFAULT 1,"
    "  owner TEXT,"
    "  facts TEXT,"
    "  PRIMARY KEY (kind, id));"
    "CREATE TABLE audit("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  at TEXT COLLATE \"C\" NOT NULL,"
    "  request_id TEXT, flow INTEGER, interaction TEXT, caller TEXT, connector TEXT,"
    "  method TEXT, path TEXT, resource_id TEXT, status INTEGER, latency_ms DOUBLE PRECISION,"
    "  attempts INTEGER NOT NULL DEFAULT 1, mapping TEXT, body_sha256 TEXT, delivery_id TEXT,"
    "  event TEXT, rules TEXT, phase TEXT, differences TEXT, violations TEXT,"
    "  mapping_error TEXT);"
    "CREATE INDEX audit_resource ON audit(resource_id, at);"
    "CREATE INDEX audit_at ON audit(at);"
    "CREATE TABLE phase_history("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  at_ms BIGINT NOT NULL,"
    "  connector TEXT NOT NULL,"
    "  from_phase TEXT,"
    "  to_phase TEXT NOT NULL,"
    "  reason TEXT,"
    "  config_sha256 TEXT,"
    "  instance TEXT);"
    "CREATE INDEX phase_history_connector ON phase_history(connector, id);"
    "CREATE TABLE accept_runs("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  connector TEXT NOT NULL,"
    "  mode TEXT NOT NULL,"
    "  started_ms BIGINT NOT NULL,"
    "  finished_ms BIGINT,"
    "  passed INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  skipped INTEGER NOT NULL DEFAULT 0,"
    "  outcome TEXT NOT NULL DEFAULT 'incomplete',"
    "  config_sha256 TEXT);"
    "CREATE INDEX accept_runs_connector ON accept_runs(connector, id);"
    "CREATE TABLE accept_steps("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  run_id BIGINT NOT NULL REFERENCES accept_runs(id),"
    "  scenario TEXT NOT NULL,"
    "  scenario_name TEXT,"
    "  step INTEGER,"
    "  name TEXT,"
    "  outcome TEXT NOT NULL,"
    "  detail TEXT,"
    "  method TEXT, path TEXT, status INTEGER, ms DOUBLE PRECISION);"
    "CREATE INDEX accept_steps_run ON accept_steps(run_id, id);"
    "CREATE TABLE deliveries("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  created_ms BIGINT NOT NULL,"
    "  updated_ms BIGINT NOT NULL,"
    "  since_ms BIGINT NOT NULL,"
    "  connector TEXT NOT NULL, caller TEXT, interaction TEXT NOT NULL,"
    "  resource TEXT NOT NULL, resource_id TEXT, request_id TEXT,"
    "  method TEXT NOT NULL, path TEXT NOT NULL, query TEXT, content_type TEXT,"
    "  body BYTEA, body_sha256 TEXT,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_ms BIGINT, last_status INTEGER, last_error TEXT, delivered_ms BIGINT,"
    "  keep_until_ms BIGINT,"
    "  requeue INTEGER NOT NULL DEFAULT 0,"
    "  lease_owner TEXT,"
    "  lease_until_ms BIGINT);"
    "CREATE INDEX deliveries_open ON deliveries(connector, resource, id) "
    "  WHERE state IN ('pending', 'dead');"
    "CREATE INDEX deliveries_requeue ON deliveries(id) WHERE requeue = 1;"
    "CREATE INDEX deliveries_kept ON deliveries(keep_until_ms) "
    "  WHERE body IS NOT NULL AND keep_until_ms IS NOT NULL;"
    "CREATE INDEX deliveries_ended ON deliveries(updated_ms) "
    "  WHERE state NOT IN ('pending', 'dead');"
    /* RFC 7396 merge patch, what SQLite's json_patch does to routes.facts */
    "CREATE FUNCTION okegw_merge_patch(target jsonb, patch jsonb) RETURNS jsonb "
    "LANGUAGE plpgsql IMMUTABLE AS $$ "
    "DECLARE k text; v jsonb; r jsonb; "
    "BEGIN "
    "  IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN RETURN patch; END IF; "
    "  r := CASE WHEN jsonb_typeof(target) = 'object' THEN target ELSE '{}'::jsonb END; "
    "  FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP "
    "    IF jsonb_typeof(v) = 'null' THEN r := r - k; "
    "    ELSE r := jsonb_set(r, ARRAY[k], okegw_merge_patch(r -> k, v)); END IF; "
    "  END LOOP; "
    "  RETURN r; "
    "END $$;",
    /* 2 */
    "CREATE FUNCTION okegw_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS "
    "$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;"
    "CREATE TABLE okegw_instances("
    "  owner TEXT PRIMARY KEY,"
    "  started_ms BIGINT NOT NULL,"
    "  until_ms BIGINT NOT NULL);"
    "CREATE TABLE okegw_leases("
    "  connector TEXT NOT NULL,"
    "  resource TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  PRIMARY KEY (connector, resource));"
    "CREATE INDEX okegw_leases_owner ON okegw_leases(owner);"
    "ALTER TABLE deliveries DROP COLUMN lease_owner, DROP COLUMN lease_until_ms;"
    "DROP INDEX deliveries_requeue;"
    "CREATE INDEX deliveries_requeue ON deliveries(id) WHERE requeue <> 0;",
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])
_Static_assert(NMIGRATIONS == OKEGW_PG_SCHEMA_VERSION, "a migration per schema version");

/* The advisory lock's key: "okegw" in ASCII; pg_locks shows it as classid
 * 111, objid 1801807735 (the instance lock, store.c: classid 367). */
#define MIGRATE_LOCK "x'0000006f6b656777'::bigint"

/* Runs sql; 0, or -1 with *err (what: the step). */
static int exec(PGconn *c, const char *sql, const char *what, char **err) {
  PGresult *r = PQexec(c, sql);
  int st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok)
    *err = pg_message(what, r ? PQresultErrorMessage(r) : PQerrorMessage(c), NULL);
  PQclear(r);
  return ok ? 0 : -1;
}

/* The highest recorded version into *v (0: none). */
static int current_version(PGconn *c, int *v, char **err) {
  PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM okegw_migrations");
  int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok)
    *v = atoi(PQgetvalue(r, 0, 0));
  else
    *err = pg_message("PostgreSQL: cannot read okegw_migrations",
                      r ? PQresultErrorMessage(r) : PQerrorMessage(c), NULL);
  PQclear(r);
  return ok ? 0 : -1;
}

int okegw_pg_migrate(PGconn *c, int *version, char **err) {
  int found = 0;
  if (exec(c, "BEGIN", "PostgreSQL: cannot begin the schema's transaction", err) < 0)
    return -1;
  int rc = exec(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")",
                "PostgreSQL: cannot take okegw's schema lock", err);
  if (rc == 0)
    rc = exec(c,
              "CREATE TABLE IF NOT EXISTS okegw_migrations("
              "  version INTEGER PRIMARY KEY,"
              "  applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
              "  okegw TEXT NOT NULL)",
              "PostgreSQL: cannot create okegw_migrations (does the user have CREATE on the "
              "schema?)",
              err);
  if (rc == 0)
    rc = current_version(c, &found, err);
  if (rc == 0 && found > OKEGW_PG_SCHEMA_VERSION) {
    *err = okegw_asprintf("PostgreSQL: the database holds okegw schema version %d, made by a "
                          "newer okegw; this okegw (" OKEGW_VERSION ") knows up to version %d",
                          found, OKEGW_PG_SCHEMA_VERSION);
    rc = -1;
  }
  for (int v = found + 1; rc == 0 && v <= OKEGW_PG_SCHEMA_VERSION; v++) {
    char what[96];
    snprintf(what, sizeof what, "PostgreSQL: migration to okegw schema version %d failed", v);
    rc = exec(c, migrations[v - 1], what, err);
    if (rc == 0) {
      char sql[160];
      snprintf(
          sql, sizeof sql,
          "INSERT INTO okegw_migrations(version, okegw) VALUES (%d, 'okegw " OKEGW_VERSION "')", v);
      rc = exec(c, sql, what, err);
    }
  }
  if (rc == 0)
    rc = exec(c, "COMMIT", "PostgreSQL: cannot commit the schema", err);
  if (rc < 0) {
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
    return -1;
  }
  if (version)
    *version = found;
  return 0;
}
