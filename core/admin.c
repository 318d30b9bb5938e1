#include "admin.h"
#include "conf.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char audit_usage[] =
    "usage: okegw audit -c FILE [--resource ID] [--since TIME] [--until TIME] [--limit N]\n"
    "  TIME is RFC 3339 in UTC or a prefix of it: 2026-06-16, 2026-06-16T09:30\n";

/* Opens the store named in the configuration, read-only. */
static sqlite3 *open_store(const char *file) {
  okegw_conf conf;
  okegw_diag diag = {0};
  if (okegw_conf_load(file, &conf, &diag) < 0) {
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "%s\n", diag.msgs[i]);
    okegw_diag_free(&diag);
    return NULL;
  }
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(conf.store, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw: cannot open the store %s: %s\n", conf.store,
            db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    db = NULL;
  } else {
    sqlite3_busy_timeout(db, 5000);
  }
  okegw_conf_free(&conf);
  return db;
}

int okegw_admin_audit(int argc, char **argv) {
  const char *file = NULL, *resource = NULL, *since = NULL, *until = NULL;
  long limit = 1000;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
      file = argv[++i];
    else if (strcmp(argv[i], "--resource") == 0 && i + 1 < argc)
      resource = argv[++i];
    else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
      since = argv[++i];
    else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
      until = argv[++i];
    else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
      limit = strtol(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "okegw audit: unknown argument '%s'\n%s", argv[i], audit_usage);
      return 2;
    }
  }
  if (!file || limit <= 0) {
    fputs(audit_usage, stderr);
    return 2;
  }
  sqlite3 *db = open_store(file);
  if (!db)
    return 2;
  /* `until` is inclusive of its prefix: 2026-06-16 covers the whole day */
  const char *sql =
      "SELECT at, request_id, flow, interaction, caller, connector, method, path, resource_id, "
      "status, latency_ms, attempts, mapping, body_sha256, delivery_id FROM audit "
      "WHERE (?1 IS NULL OR resource_id = ?1) AND (?2 IS NULL OR at >= ?2) "
      "AND (?3 IS NULL OR at < ?3 || '~') ORDER BY id LIMIT ?4";
  sqlite3_stmt *st = NULL;
  int rc = 2;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw audit: %s (is this an okegw store?)\n", sqlite3_errmsg(db));
    goto out;
  }
  sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, since, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, until, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, limit);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      const char *name = sqlite3_column_name(st, i);
      switch (sqlite3_column_type(st, i)) {
      case SQLITE_INTEGER:
        cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
        break;
      case SQLITE_FLOAT: cJSON_AddNumberToObject(o, name, sqlite3_column_double(st, i)); break;
      case SQLITE_TEXT:
        cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, i));
        break;
      default: break; /* NULL: left out */
      }
    }
    char *line = cJSON_PrintUnformatted(o);
    if (line)
      printf("%s\n", line);
    free(line);
    cJSON_Delete(o);
  }
  if (step != SQLITE_DONE)
    fprintf(stderr, "okegw audit: %s\n", sqlite3_errmsg(db));
  else
    rc = 0;
out:
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}
