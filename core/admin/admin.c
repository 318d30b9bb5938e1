#include "admin/admin.h"
#include "base/conf.h"
#include "base/util.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <openssl/evp.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char audit_usage[] =
    "usage: okegw audit -c FILE [--resource ID] [--since TIME] [--until TIME] [--limit N]\n"
    "  TIME is RFC 3339 in UTC or a prefix of it: 2026-06-16, 2026-06-16T09:30\n";

/* Opens the store named in the configuration: read-only, or read-write when
 * writable is set (never creating it: a missing store is an error). */
static sqlite3 *open_store(const char *file, int writable) {
  okegw_conf conf;
  okegw_diag diag = {0};
  if (okegw_conf_load(file, &conf, &diag) < 0) {
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "%s\n", diag.msgs[i]);
    okegw_diag_free(&diag);
    return NULL;
  }
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(conf.store, &db, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                      NULL) != SQLITE_OK) {
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
  sqlite3 *db = open_store(file, 0);
  if (!db)
    return 2;
  /* `until` is inclusive of its prefix: 2026-06-16 covers the whole day */
  const char *sql =
      "SELECT at, request_id, flow, interaction, caller, connector, method, path, resource_id, "
      "status, latency_ms, attempts, mapping, body_sha256, CAST(delivery_id AS INTEGER) AS "
      "delivery_id, "
      "event FROM audit "
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

/* okegw deliveries --------------------------------------------------------- */

static const char deliveries_usage[] =
    "usage: okegw deliveries list -c FILE [--connector NAME] [--state STATE] [--limit N] [--json]\n"
    "       okegw deliveries show -c FILE ID\n"
    "       okegw deliveries retry -c FILE ID [ID ...]\n"
    "       okegw deliveries retry -c FILE --connector NAME [--state dead|failed]\n"
    "       okegw deliveries drop -c FILE ID [ID ...]\n"
    "  STATE is one of pending, delivered, failed, dead, dropped\n";

static const char *const delivery_states[] = {"pending", "delivered", "failed", "dead", "dropped"};

/* The columns every listing reads, in the order of delivery_fields. */
#define DELIVERY_COLUMNS                                                                           \
  "id, created_ms, updated_ms, since_ms, connector, caller, interaction, resource, resource_id, "  \
  "request_id, method, path, query, content_type, body_sha256, state, attempts, next_ms, "         \
  "last_status, last_error, delivered_ms, keep_until_ms, requeue, body IS NOT NULL"

enum field_kind { F_INT, F_TEXT, F_TIME, F_BOOL };

static const struct {
  const char *name;
  enum field_kind kind;
} delivery_fields[] = {
    {"id", F_INT},           {"createdAt", F_TIME},
    {"updatedAt", F_TIME},   {"windowStartedAt", F_TIME},
    {"connector", F_TEXT},   {"caller", F_TEXT},
    {"interaction", F_TEXT}, {"resource", F_TEXT},
    {"resourceId", F_TEXT},  {"requestId", F_TEXT},
    {"method", F_TEXT},      {"path", F_TEXT},
    {"query", F_TEXT},       {"contentType", F_TEXT},
    {"bodySha256", F_TEXT},  {"state", F_TEXT},
    {"attempts", F_INT},     {"nextAttemptAt", F_TIME},
    {"lastStatus", F_INT},   {"lastError", F_TEXT},
    {"deliveredAt", F_TIME}, {"bodyKeptUntil", F_TIME},
    {"requeue", F_BOOL},     {"bodyKept", F_BOOL},
};
#define NFIELDS (sizeof delivery_fields / sizeof delivery_fields[0])
/* positions in DELIVERY_COLUMNS used by the table */
enum {
  C_ID = 0,
  C_CREATED = 1,
  C_CONNECTOR = 4,
  C_INTERACTION = 6,
  C_RESOURCE_ID = 8,
  C_STATE = 15,
  C_ATTEMPTS = 16,
  C_LAST_STATUS = 18,
  C_LAST_ERROR = 19
};

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], cp, min;
  size_t len;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* 1 when the n bytes at s are UTF-8 text without NUL bytes. */
static int is_text(const unsigned char *s, size_t n) {
  for (size_t i = 0, k; i < n; i += k)
    if (s[i] == 0 || !(k = utf8_seq(s + i, n - i)))
      return 0;
  return 1;
}

/* A copy of s fit for output: invalid UTF-8 bytes become U+FFFD; for the table
 * (oneline) control characters become spaces and text longer than max
 * characters is cut to end in "..." (max 0: no limit). NULL when out of
 * memory. */
static char *clean_text(const char *s, int oneline, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), chars = 0, k;
  for (size_t i = 0; i < n; i += k ? k : 1, chars++)
    k = utf8_seq(p + i, n - i);
  size_t keep = max && chars > max ? max - 3 : chars;
  okegw_buf b = {0};
  int ok = okegw_buf_append(&b, "", 0) == 0;
  for (size_t i = 0, c = 0; ok && c < keep; i += k ? k : 1, c++) {
    k = utf8_seq(p + i, n - i);
    if (!k)
      ok = okegw_buf_append(&b, "\xef\xbf\xbd", 3) == 0;
    else if (oneline && k == 1 && (p[i] < 0x20 || p[i] == 0x7f))
      ok = okegw_buf_append(&b, " ", 1) == 0;
    else
      ok = okegw_buf_append(&b, p + i, k) == 0;
  }
  if (ok && keep < chars)
    ok = okegw_buf_append(&b, "...", 3) == 0;
  if (!ok) {
    okegw_buf_free(&b);
    return NULL;
  }
  return b.data;
}

/* Standard base64 of a binary body (OpenSSL's encoder). */
static char *base64(const unsigned char *s, size_t n) {
  if (n > (size_t)INT_MAX / 4 * 3)
    return NULL;
  char *out = malloc((n + 2) / 3 * 4 + 1);
  if (out)
    EVP_EncodeBlock((unsigned char *)out, s, (int)n);
  return out;
}

/* The row under st (DELIVERY_COLUMNS first) as a JSON object; NULL when out
 * of memory. */
static cJSON *delivery_json(sqlite3_stmt *st) {
  cJSON *o = cJSON_CreateObject();
  int ok = o != NULL;
  for (int i = 0; ok && i < (int)NFIELDS; i++) {
    const char *name = delivery_fields[i].name;
    cJSON *v = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
      v = cJSON_CreateNull();
    } else if (delivery_fields[i].kind == F_INT) {
      v = cJSON_CreateNumber((double)sqlite3_column_int64(st, i));
    } else if (delivery_fields[i].kind == F_BOOL) {
      v = cJSON_CreateBool(sqlite3_column_int64(st, i) != 0);
    } else if (delivery_fields[i].kind == F_TIME) {
      char t[64];
      okegw_format_rfc3339(sqlite3_column_int64(st, i), 1, t, sizeof t);
      v = cJSON_CreateString(t);
    } else {
      char *text = clean_text((const char *)sqlite3_column_text(st, i), 0, 0);
      v = text ? cJSON_CreateString(text) : NULL;
      free(text);
    }
    ok = v && cJSON_AddItemToObject(o, name, v);
    if (v && !ok)
      cJSON_Delete(v);
  }
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static int valid_state(const char *s) {
  for (size_t i = 0; i < sizeof delivery_states / sizeof delivery_states[0]; i++)
    if (strcmp(s, delivery_states[i]) == 0)
      return 1;
  return 0;
}

/* Display width of UTF-8 text (one column per character). */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

enum { NCOLS = 9 };
static const char *const table_head[NCOLS] = {
    "ID", "CREATED", "CONNECTOR", "STATE", "ATTEMPTS", "LAST", "INTERACTION", "RESOURCE", "ERROR"};

typedef struct table {
  char *(*rows)[NCOLS];
  size_t n, cap;
} table;

static void table_free(table *t) {
  for (size_t i = 0; i < t->n; i++)
    for (int c = 0; c < NCOLS; c++)
      free(t->rows[i][c]);
  free(t->rows);
}

static char *cell_text(sqlite3_stmt *st, int col, size_t max) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL)
    return okegw_strdup("-");
  return clean_text((const char *)sqlite3_column_text(st, col), 1, max);
}

/* Adds the row under st to t; -1 when out of memory. */
static int table_add(table *t, sqlite3_stmt *st) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    void *rows = realloc(t->rows, cap * sizeof *t->rows);
    if (!rows)
      return -1;
    t->rows = rows;
    t->cap = cap;
  }
  char **r = t->rows[t->n];
  char created[64];
  okegw_format_rfc3339(sqlite3_column_int64(st, C_CREATED), 0, created, sizeof created);
  r[0] = okegw_asprintf("%lld", (long long)sqlite3_column_int64(st, C_ID));
  r[1] = okegw_strdup(created);
  r[2] = cell_text(st, C_CONNECTOR, 0);
  r[3] = cell_text(st, C_STATE, 0);
  r[4] = cell_text(st, C_ATTEMPTS, 0);
  r[5] = cell_text(st, C_LAST_STATUS, 0);
  r[6] = cell_text(st, C_INTERACTION, 0);
  r[7] = cell_text(st, C_RESOURCE_ID, 0);
  r[8] = cell_text(st, C_LAST_ERROR, 60);
  t->n++;
  for (int c = 0; c < NCOLS; c++)
    if (!r[c])
      return -1; /* freed with the table */
  return 0;
}

static void table_print(const table *t) {
  size_t w[NCOLS];
  for (int c = 0; c < NCOLS; c++) {
    w[c] = text_width(table_head[c]);
    for (size_t i = 0; i < t->n; i++) {
      size_t x = text_width(t->rows[i][c]);
      if (x > w[c])
        w[c] = x;
    }
  }
  for (size_t i = 0; i <= t->n; i++) {
    const char *const *r = i == 0 ? table_head : (const char *const *)t->rows[i - 1];
    for (int c = 0; c < NCOLS; c++) {
      if (c == NCOLS - 1) {
        printf("%s\n", r[c]);
        break;
      }
      fputs(r[c], stdout);
      for (size_t k = text_width(r[c]); k < w[c] + 2; k++)
        putchar(' ');
    }
  }
}

static int deliveries_list(sqlite3 *db, const char *connector, const char *state, long limit,
                           int json) {
  const char *sql = "SELECT " DELIVERY_COLUMNS " FROM deliveries "
                    "WHERE (?1 IS NULL OR connector = ?1) AND (?2 IS NULL OR state = ?2) "
                    "ORDER BY id LIMIT ?3";
  sqlite3_stmt *st = NULL;
  table t = {0};
  int rc = 1, step;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw deliveries: %s (is this an okegw store?)\n", sqlite3_errmsg(db));
    return 2;
  }
  sqlite3_bind_text(st, 1, connector, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, limit);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (!json) {
      if (table_add(&t, st) < 0)
        goto oom;
      continue;
    }
    cJSON *o = delivery_json(st);
    char *line = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line)
      goto oom;
    printf("%s\n", line);
    free(line);
  }
  if (step != SQLITE_DONE) {
    fprintf(stderr, "okegw deliveries: %s\n", sqlite3_errmsg(db));
    goto out;
  }
  if (!json)
    table_print(&t);
  rc = 0;
  goto out;
oom:
  fprintf(stderr, "okegw deliveries: out of memory\n");
out:
  table_free(&t);
  sqlite3_finalize(st);
  return rc;
}

static int deliveries_show(sqlite3 *db, long long id) {
  const char *sql = "SELECT " DELIVERY_COLUMNS ", body FROM deliveries WHERE id = ?1";
  sqlite3_stmt *st = NULL;
  cJSON *o = NULL;
  char *text = NULL;
  int rc = 1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw deliveries: %s (is this an okegw store?)\n", sqlite3_errmsg(db));
    return 2;
  }
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  if (step == SQLITE_DONE) {
    fprintf(stderr, "okegw deliveries: there is no delivery %lld\n", id);
    goto out;
  }
  if (step != SQLITE_ROW) {
    fprintf(stderr, "okegw deliveries: %s\n", sqlite3_errmsg(db));
    goto out;
  }
  if (!(o = delivery_json(st)))
    goto oom;
  int bc = (int)NFIELDS;
  cJSON *body = NULL;
  if (sqlite3_column_type(st, bc) == SQLITE_NULL) {
    body = cJSON_CreateNull();
  } else {
    const unsigned char *b = sqlite3_column_blob(st, bc);
    size_t n = (size_t)sqlite3_column_bytes(st, bc);
    if (!b)
      b = (const unsigned char *)"";
    if (is_text(b, n)) {
      char *s = okegw_strndup((const char *)b, n);
      body = s ? cJSON_CreateString(s) : NULL;
      free(s);
    } else {
      char *s = base64(b, n);
      body = s ? cJSON_CreateString(s) : NULL;
      free(s);
      if (body && !cJSON_AddStringToObject(o, "bodyEncoding", "base64")) {
        cJSON_Delete(body);
        goto oom;
      }
    }
    if (body && !cJSON_AddNumberToObject(o, "bodyBytes", (double)n)) {
      cJSON_Delete(body);
      goto oom;
    }
  }
  if (!body || !cJSON_AddItemToObject(o, "body", body)) {
    cJSON_Delete(body);
    goto oom;
  }
  if (!(text = cJSON_Print(o)))
    goto oom;
  printf("%s\n", text);
  rc = 0;
  goto out;
oom:
  fprintf(stderr, "okegw deliveries: out of memory\n");
out:
  free(text);
  cJSON_Delete(o);
  sqlite3_finalize(st);
  return rc;
}

/* Retries (retry set) or drops the deliveries given[0..ngiven), or with
 * connector set every delivery of that connector in state `state`, all in one
 * short transaction. Prints a line per changed delivery once it is saved. */
static int deliveries_change(sqlite3 *db, int retry, const long long *given, size_t ngiven,
                             const char *connector, const char *state) {
  const char *upd_sql =
      retry ? "UPDATE deliveries SET state = 'pending', since_ms = ?2, next_ms = ?2, "
              "updated_ms = ?2, requeue = 1 WHERE id = ?1"
            : "UPDATE deliveries SET state = 'dropped', updated_ms = ?2, requeue = 1, "
              "body = CASE WHEN keep_until_ms > ?2 THEN body ELSE NULL END WHERE id = ?1";
  sqlite3_stmt *sel = NULL, *upd = NULL, *each = NULL;
  long long *found = NULL;
  const long long *ids = given;
  size_t n = ngiven, refused = 0;
  okegw_buf report = {0};
  int rc = 1, step;
  long long now = okegw_wall_ms();
  if (sqlite3_prepare_v2(db,
                         "SELECT state, body IS NULL, keep_until_ms FROM deliveries "
                         "WHERE id = ?1",
                         -1, &sel, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, upd_sql, -1, &upd, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw deliveries: %s (is this an okegw store?)\n", sqlite3_errmsg(db));
    rc = 2;
    goto out;
  }
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw deliveries: cannot write to the store: %s\n", sqlite3_errmsg(db));
    goto out;
  }
  if (connector) {
    size_t cap = 0;
    n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id FROM deliveries WHERE connector = ?1 AND state = ?2 "
                           "ORDER BY id",
                           -1, &each, NULL) != SQLITE_OK)
      goto db_error;
    sqlite3_bind_text(each, 1, connector, -1, SQLITE_STATIC);
    sqlite3_bind_text(each, 2, state, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(each)) == SQLITE_ROW) {
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        long long *more = realloc(found, cap * sizeof *found);
        if (!more) {
          fprintf(stderr, "okegw deliveries: out of memory\n");
          goto rollback;
        }
        found = more;
      }
      found[n++] = sqlite3_column_int64(each, 0);
    }
    if (step != SQLITE_DONE)
      goto db_error;
    ids = found;
    if (n == 0)
      printf("no %s deliveries at connector %s: nothing to retry\n", state, connector);
  }
  for (size_t i = 0; i < n; i++) {
    long long id = ids[i];
    sqlite3_reset(sel);
    sqlite3_bind_int64(sel, 1, id);
    step = sqlite3_step(sel);
    if (step == SQLITE_DONE) {
      fprintf(stderr, "okegw deliveries: there is no delivery %lld\n", id);
      refused++;
      continue;
    }
    if (step != SQLITE_ROW)
      goto db_error;
    char was[16];
    const unsigned char *st_text = sqlite3_column_text(sel, 0);
    snprintf(was, sizeof was, "%s", st_text ? (const char *)st_text : "?");
    int no_body = sqlite3_column_int(sel, 1);
    int kept = sqlite3_column_type(sel, 2) != SQLITE_NULL && sqlite3_column_int64(sel, 2) > now;
    char until[64] = "";
    if (kept)
      okegw_format_rfc3339(sqlite3_column_int64(sel, 2), 0, until, sizeof until);
    if (retry && strcmp(was, "dead") != 0 && strcmp(was, "failed") != 0) {
      fprintf(stderr,
              "okegw deliveries: delivery %lld is %s: only dead or failed deliveries can be "
              "retried\n",
              id, was);
      refused++;
      continue;
    }
    if (!retry && strcmp(was, "pending") != 0 && strcmp(was, "dead") != 0 &&
        strcmp(was, "failed") != 0) {
      fprintf(stderr,
              "okegw deliveries: delivery %lld is %s: only pending, dead or failed deliveries "
              "can be dropped\n",
              id, was);
      refused++;
      continue;
    }
    if (retry && no_body) {
      fprintf(stderr,
              "okegw deliveries: delivery %lld cannot be retried: its body was not kept, so it "
              "cannot be sent again\n",
              id);
      refused++;
      continue;
    }
    sqlite3_reset(upd);
    sqlite3_bind_int64(upd, 1, id);
    sqlite3_bind_int64(upd, 2, now);
    if (sqlite3_step(upd) != SQLITE_DONE)
      goto db_error;
    int ok;
    if (retry)
      ok = okegw_buf_printf(&report,
                            "delivery %lld: %s -> pending (a running gateway sends it within a "
                            "few seconds)\n",
                            id, was);
    else if (no_body)
      ok = okegw_buf_printf(&report, "delivery %lld: %s -> dropped (its body was not kept)\n", id,
                            was);
    else if (kept)
      ok = okegw_buf_printf(&report, "delivery %lld: %s -> dropped (body kept until %s)\n", id, was,
                            until);
    else
      ok = okegw_buf_printf(&report, "delivery %lld: %s -> dropped (body removed)\n", id, was);
    if (ok < 0) {
      fprintf(stderr, "okegw deliveries: out of memory\n");
      goto rollback;
    }
  }
  sqlite3_finalize(each);
  each = NULL;
  sqlite3_reset(sel);
  sqlite3_reset(upd);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "okegw deliveries: cannot save the changes: %s; nothing was changed\n",
            sqlite3_errmsg(db));
    goto rollback;
  }
  if (report.data)
    fputs(report.data, stdout);
  rc = refused ? 1 : 0;
  goto out;
db_error:
  fprintf(stderr, "okegw deliveries: %s; nothing was changed\n", sqlite3_errmsg(db));
rollback:
  sqlite3_finalize(each);
  each = NULL;
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
  okegw_buf_free(&report);
  free(found);
  sqlite3_finalize(each);
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  return rc;
}

/* A delivery id: a positive decimal number. */
static int parse_id(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || errno || *end || v <= 0)
    return -1;
  *out = v;
  return 0;
}

static int deliveries_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int deliveries_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("okegw deliveries: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s", deliveries_usage);
  return 2;
}

int okegw_admin_deliveries(int argc, char **argv) {
  enum { LIST, SHOW, RETRY, DROP } cmd;
  if (argc < 3) {
    fputs(deliveries_usage, stderr);
    return 2;
  }
  const char *sub = argv[2];
  if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
    fputs(deliveries_usage, stdout);
    return 0;
  }
  if (strcmp(sub, "list") == 0)
    cmd = LIST;
  else if (strcmp(sub, "show") == 0)
    cmd = SHOW;
  else if (strcmp(sub, "retry") == 0)
    cmd = RETRY;
  else if (strcmp(sub, "drop") == 0)
    cmd = DROP;
  else
    return deliveries_usage_error("unknown command '%s'", sub);

  const char *file = NULL, *connector = NULL, *state = NULL, *limit_arg = NULL;
  int json = 0;
  long limit = 1000;
  long long *ids = calloc((size_t)argc, sizeof *ids);
  size_t nids = 0;
  int rc = 2;
  if (!ids) {
    fprintf(stderr, "okegw deliveries: out of memory\n");
    return 1;
  }
  for (int i = 3; i < argc; i++) {
    const char *a = argv[i];
    const char **value = strcmp(a, "-c") == 0            ? &file
                         : strcmp(a, "--connector") == 0 ? &connector
                         : strcmp(a, "--state") == 0     ? &state
                         : strcmp(a, "--limit") == 0     ? &limit_arg
                                                         : NULL;
    if (value) {
      if (i + 1 >= argc) {
        rc = deliveries_usage_error("%s needs a value", a);
        goto out;
      }
      *value = argv[++i];
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(deliveries_usage, stdout);
      rc = 0;
      goto out;
    } else if (a[0] == '-') {
      rc = deliveries_usage_error("unknown argument '%s'", a);
      goto out;
    } else if (parse_id(a, &ids[nids]) == 0) {
      nids++;
    } else {
      rc = deliveries_usage_error("'%s' is not a delivery id", a);
      goto out;
    }
  }
  if (!file) {
    rc = deliveries_usage_error("%s needs -c FILE", sub);
    goto out;
  }
  if (cmd != LIST && (json || limit_arg)) {
    rc = deliveries_usage_error("--json and --limit go with list only, not %s", sub);
    goto out;
  }
  if ((cmd == SHOW || cmd == DROP) && (connector || state)) {
    rc = deliveries_usage_error("%s takes delivery ids, not --connector or --state", sub);
    goto out;
  }
  if (cmd == LIST) {
    if (nids) {
      rc = deliveries_usage_error("%s takes no delivery ids (use show ID)", sub);
      goto out;
    }
    if (state && !valid_state(state)) {
      rc = deliveries_usage_error(
          "unknown state '%s'; the states are pending, delivered, failed, dead and dropped", state);
      goto out;
    }
    if (limit_arg) {
      char *end;
      errno = 0;
      limit = strtol(limit_arg, &end, 10);
      if (errno || end == limit_arg || *end || limit <= 0) {
        rc = deliveries_usage_error("--limit needs a positive number, not '%s'", limit_arg);
        goto out;
      }
    }
  } else if (cmd == SHOW && nids != 1) {
    rc = deliveries_usage_error("%s takes exactly one delivery id", sub);
    goto out;
  } else if (cmd == RETRY) {
    if (nids && connector) {
      rc = deliveries_usage_error("%s takes either delivery ids or --connector, not both", sub);
      goto out;
    }
    if (!nids && !connector) {
      rc = deliveries_usage_error("%s needs delivery ids or --connector NAME", sub);
      goto out;
    }
    if (state && !connector) {
      rc = deliveries_usage_error("%s --state goes with --connector", sub);
      goto out;
    }
    if (state && strcmp(state, "dead") != 0 && strcmp(state, "failed") != 0) {
      rc = deliveries_usage_error("only dead or failed deliveries can be retried, not '%s'", state);
      goto out;
    }
    if (connector && !state)
      state = "dead";
  } else if (cmd == DROP && !nids) {
    rc = deliveries_usage_error("%s needs delivery ids", sub);
    goto out;
  }

  sqlite3 *db = open_store(file, cmd == RETRY || cmd == DROP);
  if (!db)
    goto out; /* 2: the store cannot be read */
  switch (cmd) {
  case LIST: rc = deliveries_list(db, connector, state, limit, json); break;
  case SHOW: rc = deliveries_show(db, ids[0]); break;
  case RETRY: rc = deliveries_change(db, 1, ids, nids, connector, state); break;
  case DROP: rc = deliveries_change(db, 0, ids, nids, NULL, NULL); break;
  }
  sqlite3_close(db);
out:
  free(ids);
  return rc;
}
