#include "admin/admin.h"
#include "admin/admin_client.h"
#include "base/conf.h"
#include "base/util.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char audit_usage[] =
    "usage: okegw audit -c FILE [--resource ID] [--since TIME] [--until TIME] [--limit N] "
    "[--store]\n"
    "  TIME is RFC 3339 in UTC or a prefix of it: 2026-06-16, 2026-06-16T09:30\n"
    "  through the running gateway's admin API when admin_listen answers, else (and with\n"
    "  --store) from the store directly\n";

static int print_line(void *ud, const cJSON *row) {
  (void)ud;
  char *line = cJSON_PrintUnformatted(row);
  if (line)
    printf("%s\n", line);
  free(line);
  return 0;
}

/* The running gateway's admin API for the configuration in file: *c, or
 * NULL when it has no admin_listen, nothing answers there or store is set
 * (--store). -1 when the configuration cannot be loaded (printed). */
static int open_api(const char *file, int store, okegw_admin_client **c) {
  *c = NULL;
  okegw_conf conf;
  if (okegw_conf_load_cli(file, &conf) < 0)
    return -1;
  if (!store)
    *c = okegw_admin_client_open(&conf, file);
  okegw_conf_free(&conf);
  return 0;
}

/* "&name=value" escaped onto b when value is set; -1 when out of memory. */
static int add_param(okegw_admin_client *c, okegw_buf *b, const char *name, const char *value) {
  if (!value)
    return 0;
  char *e = okegw_admin_client_escape(c, value);
  int rc = e ? okegw_buf_printf(b, "&%s=%s", name, e) : -1;
  free(e);
  return rc < 0 ? -1 : 0;
}

/* A call's failure as the command's exit code (printed): 2 when the token
 * was refused, else 1. */
static int api_failed(const char *cmd, int status, const cJSON *json) {
  if (status == OKEGW_ADMIN_CLIENT_UNAUTHORISED)
    return 2;
  if (status >= 0)
    fprintf(stderr, "okegw %s: %s\n", cmd,
            okegw_admin_client_detail(json, "the admin API answered an error"));
  return status == 400 ? 2 : 1;
}

/* The audit rows through the admin API, oldest first as from the store.
 * The API answers newest first and at most 1000 rows: asked for one more
 * row than wanted, an answer that holds every row is printed reversed; one
 * that does not (the store's "first N" would differ) returns 1 and the
 * store is read instead. */
static int audit_api(okegw_admin_client *c, const okegw_audit_filter *f, int *rc) {
  long ask = f->limit < 1000 ? f->limit + 1 : 1000;
  okegw_buf q = {0};
  cJSON *json = NULL;
  int status = -1;
  if (okegw_buf_printf(&q, "/admin/api/audit?limit=%ld", ask) < 0 ||
      add_param(c, &q, "resource", f->resource_id) < 0 || add_param(c, &q, "since", f->since) < 0 ||
      add_param(c, &q, "until", f->until) < 0) {
    fprintf(stderr, "okegw audit: out of memory\n");
    *rc = 1;
    okegw_buf_free(&q);
    return 0;
  }
  status = okegw_admin_client_call(c, "audit", "GET", q.data, &json, NULL, NULL);
  okegw_buf_free(&q);
  if (status != 200 || !cJSON_IsArray(json)) {
    *rc = api_failed("audit", status == 200 ? 500 : status, json);
    cJSON_Delete(json);
    return 0;
  }
  int n = cJSON_GetArraySize(json);
  if (n >= ask) {
    cJSON_Delete(json);
    return 1; /* more rows than one answer holds */
  }
  for (int i = n - 1; i >= 0; i--)
    print_line(NULL, cJSON_GetArrayItem(json, i));
  cJSON_Delete(json);
  *rc = 0;
  return 0;
}

/* Opens the store named in the configuration: read-only, or read-write when
 * writable is set (never creating it: a missing store is an error). */
static okegw_store *open_store(const char *file, int writable) {
  okegw_conf conf;
  if (okegw_conf_load_cli(file, &conf) < 0)
    return NULL;
  okegw_store *s = NULL;
  char *err = NULL;
  if (okegw_store_open_direct(conf.store, writable, &s, &err) != OKEGW_STORE_OK) {
    fprintf(stderr, "okegw: %s\n", err ? err : "out of memory");
    free(err);
    s = NULL;
  }
  okegw_conf_free(&conf);
  return s;
}

/* An RFC 3339 time in UTC, or a prefix of it, as the rows write theirs
 * (upper-case T and Z, no offset): they are compared as text. */
static int valid_time(const char *t) {
  long long ms;
  return !t || (okegw_parse_rfc3339(t, &ms) == 0 && !strpbrk(t + 10, "tz +-"));
}

int okegw_admin_audit(int argc, char **argv) {
  const char *file = NULL;
  int store = 0;
  okegw_audit_filter f = {.limit = 1000};
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
      file = argv[++i];
    else if (strcmp(argv[i], "--store") == 0)
      store = 1;
    else if (strcmp(argv[i], "--resource") == 0 && i + 1 < argc)
      f.resource_id = argv[++i];
    else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
      f.since = argv[++i];
    else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
      f.until = argv[++i];
    else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
      f.limit = strtol(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "okegw audit: unknown argument '%s'\n%s", argv[i], audit_usage);
      return 2;
    }
  }
  if (!file || f.limit <= 0) {
    fputs(audit_usage, stderr);
    return 2;
  }
  const char *bad = !valid_time(f.since) ? f.since : !valid_time(f.until) ? f.until : NULL;
  if (bad) {
    fprintf(stderr, "okegw audit: '%s' is not a time in UTC\n%s", bad, audit_usage);
    return 2;
  }
  okegw_admin_client *c;
  if (open_api(file, store, &c) < 0)
    return 2;
  if (c) {
    int rc = 0, more = audit_api(c, &f, &rc);
    okegw_admin_client_close(c);
    if (!more)
      return rc;
  }
  okegw_store *s = open_store(file, 0);
  if (!s)
    return 2;
  char *err = NULL;
  int rc = okegw_store_audit_query(s, &f, print_line, NULL, &err);
  if (rc != OKEGW_STORE_OK)
    fprintf(stderr, "okegw audit: %s\n", err ? err : "out of memory");
  free(err);
  okegw_store_close(s, NULL, NULL);
  return rc == OKEGW_STORE_OK ? 0 : 2;
}

/* okegw deliveries --------------------------------------------------------- */

static const char deliveries_usage[] =
    "usage: okegw deliveries list -c FILE [--connector NAME] [--state STATE] [--limit N] [--json]\n"
    "       okegw deliveries show -c FILE ID\n"
    "       okegw deliveries retry -c FILE ID [ID ...]\n"
    "       okegw deliveries retry -c FILE --connector NAME [--state dead|failed]\n"
    "       okegw deliveries drop -c FILE ID [ID ...]\n"
    "  STATE is one of pending, delivered, failed, dead, dropped\n"
    "  --store  use the store directly, not the running gateway\n"
    "  When the gateway runs (admin_listen answers), list, show, retry ID and drop go through\n"
    "  its admin API; retry --connector and list --limit above 1000 use the store directly,\n"
    "  as does everything when the gateway is not running.\n";

/* A store failure as the command's exit code: 2 when the file is not an
 * okegw store, else 1; the message was printed. */
static int store_failed(int rc, char *err) {
  fprintf(stderr, "okegw deliveries: %s\n", err ? err : "out of memory");
  free(err);
  return rc == OKEGW_STORE_BADFILE ? 2 : 1;
}

/* Display width of UTF-8 text (one column per character). */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

/* A table printed once all its rows are known, each column as wide as its
 * widest cell, the last one unpadded. cells holds n rows of ncols. */
typedef struct table {
  const char *const *head;
  size_t ncols;
  char **cells;
  size_t n, cap;
} table;

static void table_free(table *t) {
  for (size_t i = 0; i < t->n * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
}

/* A new row of t (cells NULL until set), NULL when out of memory. */
static char **table_row(table *t) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    char **cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
    if (!cells)
      return NULL;
    t->cells = cells;
    t->cap = cap;
  }
  char **row = t->cells + t->n++ * t->ncols;
  for (size_t c = 0; c < t->ncols; c++)
    row[c] = NULL;
  return row;
}

/* 0, or -1 when a cell of the last row is missing (out of memory). */
static int table_row_done(const table *t) {
  for (size_t c = 0; c < t->ncols; c++)
    if (!t->cells[(t->n - 1) * t->ncols + c])
      return -1;
  return 0;
}

/* A cell: "-" for none, else the text on one line, cut to max characters. */
static char *cell(const char *v, size_t max) {
  return v ? okegw_utf8_clean(v, 1, max) : okegw_strdup("-");
}

/* What a row callback returns when out of memory: it stops the walk. */
enum { ROW_OOM = -100 };

static const char *const deliveries_head[] = {
    "ID", "CREATED", "CONNECTOR", "STATE", "ATTEMPTS", "LAST", "INTERACTION", "RESOURCE", "ERROR"};

/* Adds a row for r to t; ROW_OOM when out of memory. */
static int table_add(void *ud, const okegw_delivery_rec *r) {
  table *t = ud;
  char **row = table_row(t);
  if (!row)
    return ROW_OOM;
  char created[64];
  okegw_format_rfc3339(r->created_ms, 0, created, sizeof created);
  row[0] = okegw_asprintf("%lld", r->id);
  row[1] = okegw_strdup(created);
  row[2] = cell(r->connector, 0);
  row[3] = cell(okegw_delivery_state_name(r->state), 0);
  row[4] = okegw_asprintf("%d", r->attempts);
  row[5] = r->last_status ? okegw_asprintf("%d", r->last_status) : okegw_strdup("-");
  row[6] = cell(r->interaction, 0);
  row[7] = cell(r->resource_id, 0);
  row[8] = cell(r->last_error, 60);
  return table_row_done(t) < 0 ? ROW_OOM : 0; /* freed with the table */
}

/* Prints t; -1 (nothing printed) when out of memory. */
static int table_print(const table *t) {
  size_t *w = calloc(t->ncols, sizeof *w);
  if (!w)
    return -1;
  for (size_t c = 0; c < t->ncols; c++) {
    w[c] = text_width(t->head[c]);
    for (size_t i = 0; i < t->n; i++) {
      size_t x = text_width(t->cells[i * t->ncols + c]);
      if (x > w[c])
        w[c] = x;
    }
  }
  for (size_t i = 0; i <= t->n; i++) {
    const char *const *r = i == 0 ? t->head : (const char *const *)t->cells + (i - 1) * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
      if (c == t->ncols - 1) {
        printf("%s\n", r[c]);
        break;
      }
      fputs(r[c], stdout);
      for (size_t k = text_width(r[c]); k < w[c] + 2; k++)
        putchar(' ');
    }
  }
  free(w);
  return 0;
}

/* One delivery as a JSON line (list --json). */
static int json_line(void *ud, const okegw_delivery_rec *r) {
  (void)ud;
  cJSON *o = okegw_delivery_json(r, 0);
  char *line = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!line)
    return ROW_OOM;
  printf("%s\n", line);
  free(line);
  return 0;
}

static int deliveries_list(okegw_store *s, const okegw_delivery_filter *f, int json) {
  table t = {.head = deliveries_head, .ncols = sizeof deliveries_head / sizeof *deliveries_head};
  char *err = NULL;
  int rc = okegw_store_deliveries_list(s, f, json ? json_line : table_add, &t, &err);
  if (rc == ROW_OOM) {
    fprintf(stderr, "okegw deliveries: out of memory\n");
    rc = 1;
  } else if (rc != OKEGW_STORE_OK) {
    rc = store_failed(rc, err);
  } else if (!json && table_print(&t) < 0) {
    fprintf(stderr, "okegw deliveries: out of memory\n");
    rc = 1;
  } else {
    rc = 0;
  }
  table_free(&t);
  return rc;
}

/* `deliveries show`'s output, whichever path read it: o indented on
 * stdout (o is deleted). 0, or 1 when out of memory. */
static int print_delivery(cJSON *o) {
  char *text = o ? cJSON_Print(o) : NULL;
  cJSON_Delete(o);
  if (!text) {
    fprintf(stderr, "okegw deliveries: out of memory\n");
    return 1;
  }
  printf("%s\n", text);
  free(text);
  return 0;
}

static int deliveries_show(okegw_store *s, long long id) {
  okegw_delivery_rec r;
  char *err = NULL;
  int rc = okegw_store_deliveries_get(s, id, 1, &r, &err);
  if (rc == OKEGW_STORE_NOTFOUND) {
    fprintf(stderr, "okegw deliveries: there is no delivery %lld\n", id);
    return 1;
  }
  if (rc != OKEGW_STORE_OK)
    return store_failed(rc, err);
  cJSON *o = okegw_delivery_json(&r, OKEGW_DELIVERY_JSON_BODY);
  okegw_delivery_rec_free(&r);
  return print_delivery(o);
}

typedef struct change_report {
  int retry;
  size_t seen, refused;
  okegw_buf out; /* printed once the change is saved */
  int oom;
} change_report;

/* Refusals go out at once; what changed once it is saved. */
static void on_change(void *ud, const okegw_dlv_change *c) {
  change_report *rep = ud;
  const char *was = okegw_delivery_state_name(c->was);
  rep->seen++;
  switch (c->outcome) {
  case OKEGW_DLV_CHANGE_MISSING:
    fprintf(stderr, "okegw deliveries: there is no delivery %lld\n", c->id);
    rep->refused++;
    return;
  case OKEGW_DLV_CHANGE_WRONG_STATE:
    if (rep->retry)
      fprintf(stderr,
              "okegw deliveries: delivery %lld is %s: only dead or failed deliveries can be "
              "retried\n",
              c->id, was);
    else
      fprintf(stderr,
              "okegw deliveries: delivery %lld is %s: only pending, dead or failed deliveries "
              "can be dropped\n",
              c->id, was);
    rep->refused++;
    return;
  case OKEGW_DLV_CHANGE_NO_BODY:
    fprintf(stderr,
            "okegw deliveries: delivery %lld cannot be retried: its body was not kept, so it "
            "cannot be sent again\n",
            c->id);
    rep->refused++;
    return;
  case OKEGW_DLV_CHANGE_DONE: break;
  }
  int ok;
  if (rep->retry) {
    ok = okegw_buf_printf(&rep->out,
                          "delivery %lld: %s -> pending (a running gateway sends it within a "
                          "few seconds)\n",
                          c->id, was);
  } else if (!c->body_kept) {
    ok = okegw_buf_printf(&rep->out, "delivery %lld: %s -> dropped (its body was not kept)\n",
                          c->id, was);
  } else if (c->kept_until_ms) {
    char until[64];
    okegw_format_rfc3339(c->kept_until_ms, 0, until, sizeof until);
    ok = okegw_buf_printf(&rep->out, "delivery %lld: %s -> dropped (body kept until %s)\n", c->id,
                          was, until);
  } else {
    ok = okegw_buf_printf(&rep->out, "delivery %lld: %s -> dropped (body removed)\n", c->id, was);
  }
  if (ok < 0)
    rep->oom = 1;
}

/* Retries (retry set) or drops the deliveries ids[0..n), or with connector
 * set every delivery of that connector in state `state`. */
static int deliveries_change(okegw_store *s, int retry, const long long *ids, size_t n,
                             const char *connector, okegw_delivery_state state) {
  change_report rep = {.retry = retry};
  char *err = NULL;
  int rc = retry ? okegw_store_deliveries_retry(s, ids, n, connector, state, on_change, &rep, &err)
                 : okegw_store_deliveries_drop(s, ids, n, on_change, &rep, &err);
  if (rc != OKEGW_STORE_OK) {
    rc = store_failed(rc, err);
  } else if (rep.oom) {
    /* saved, but the report of it was lost */
    fprintf(stderr, "okegw deliveries: out of memory\n");
    rc = 1;
  } else {
    if (connector && !rep.seen)
      printf("no %s deliveries at connector %s: nothing to retry\n",
             okegw_delivery_state_name(state), connector);
    if (rep.out.data)
      fputs(rep.out.data, stdout);
    rc = rep.refused ? 1 : 0;
  }
  okegw_buf_free(&rep.out);
  return rc;
}

/* ---- the same through a running gateway's admin API ---- */

/* Adds a row for the delivery JSON o (as okegw_delivery_json writes it). */
static int table_add_json(table *t, const cJSON *o) {
  char **row = table_row(t);
  if (!row)
    return ROW_OOM;
  const cJSON *created = cJSON_GetObjectItemCaseSensitive(o, "createdAt");
  const cJSON *last = cJSON_GetObjectItemCaseSensitive(o, "lastStatus");
  char at[64];
  long long ms = 0;
  if (cJSON_IsString(created) && okegw_parse_rfc3339(created->valuestring, &ms) == 0)
    okegw_format_rfc3339(ms, 0, at, sizeof at);
  else
    snprintf(at, sizeof at, "-");
  const char *text[] = {"connector", "state", "interaction", "resourceId", "lastError"};
  const char *v[5];
  for (int i = 0; i < 5; i++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, text[i]);
    v[i] = cJSON_IsString(x) ? x->valuestring : NULL;
  }
  row[0] = okegw_asprintf(
      "%lld", (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "id")));
  row[1] = okegw_strdup(at);
  row[2] = cell(v[0], 0);
  row[3] = cell(v[1], 0);
  row[4] = okegw_asprintf(
      "%d", (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "attempts")));
  row[5] = cJSON_IsNumber(last) && last->valueint ? okegw_asprintf("%d", last->valueint)
                                                  : okegw_strdup("-");
  row[6] = cell(v[2], 0);
  row[7] = cell(v[3], 0);
  row[8] = cell(v[4], 60);
  return table_row_done(t) < 0 ? ROW_OOM : 0;
}

static int deliveries_list_api(okegw_admin_client *c, const char *connector, const char *state,
                               long limit, int json) {
  okegw_buf q = {0};
  cJSON *arr = NULL;
  int rc = 1;
  if (okegw_buf_printf(&q, "/admin/api/deliveries?limit=%ld", limit) < 0 ||
      add_param(c, &q, "connector", connector) < 0 || add_param(c, &q, "state", state) < 0) {
    fprintf(stderr, "okegw deliveries: out of memory\n");
    okegw_buf_free(&q);
    return 1;
  }
  int status = okegw_admin_client_call(c, "deliveries", "GET", q.data, &arr, NULL, NULL);
  okegw_buf_free(&q);
  if (status != 200 || !cJSON_IsArray(arr)) {
    rc = api_failed("deliveries", status == 200 ? 500 : status, arr);
    cJSON_Delete(arr);
    return rc;
  }
  table t = {.head = deliveries_head, .ncols = sizeof deliveries_head / sizeof *deliveries_head};
  const cJSON *o;
  rc = 0;
  cJSON_ArrayForEach(o, arr) {
    if (json) {
      print_line(NULL, o);
    } else if (table_add_json(&t, o) < 0) {
      rc = ROW_OOM;
      break;
    }
  }
  if (rc == 0 && !json && table_print(&t) < 0)
    rc = ROW_OOM;
  if (rc == ROW_OOM) {
    fprintf(stderr, "okegw deliveries: out of memory\n");
    rc = 1;
  }
  table_free(&t);
  cJSON_Delete(arr);
  return rc;
}

static int deliveries_show_api(okegw_admin_client *c, long long id) {
  char path[80];
  snprintf(path, sizeof path, "/admin/api/deliveries/%lld?body=1", id);
  cJSON *o = NULL;
  int status = okegw_admin_client_call(c, "deliveries", "GET", path, &o, NULL, NULL);
  if (status == 200 && cJSON_IsObject(o))
    return print_delivery(o);
  int rc = api_failed("deliveries", status == 200 ? 500 : status, o);
  cJSON_Delete(o);
  return rc;
}

/* Retries or drops ids[0..n) one by one; prints what okegw deliveries
 * prints from the store (the API's answer carries the change under
 * "change"). 0, or 1 when one was refused or failed. */
static int deliveries_change_api(okegw_admin_client *c, int retry, const long long *ids, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char path[96];
    snprintf(path, sizeof path, "/admin/api/deliveries/%lld/%s", ids[i], retry ? "retry" : "drop");
    cJSON *o = NULL;
    int status = okegw_admin_client_call(c, "deliveries", "POST", path, &o, NULL, NULL);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "change");
    const cJSON *was = cJSON_GetObjectItemCaseSensitive(ch, "was");
    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(ch, "bodyKept");
    const cJSON *until = cJSON_GetObjectItemCaseSensitive(ch, "keptUntil");
    if (status == OKEGW_ADMIN_CLIENT_UNAUTHORISED) {
      cJSON_Delete(o);
      return 2;
    }
    if (status != 200 || !cJSON_IsString(was)) {
      api_failed("deliveries", status == 200 ? 500 : status, o);
      rc = 1;
    } else if (retry) {
      printf("delivery %lld: %s -> pending (a running gateway sends it within a few seconds)\n",
             ids[i], was->valuestring);
    } else if (!cJSON_IsTrue(kept)) {
      printf("delivery %lld: %s -> dropped (its body was not kept)\n", ids[i], was->valuestring);
    } else if (cJSON_IsString(until)) {
      printf("delivery %lld: %s -> dropped (body kept until %s)\n", ids[i], was->valuestring,
             until->valuestring);
    } else {
      printf("delivery %lld: %s -> dropped (body removed)\n", ids[i], was->valuestring);
    }
    cJSON_Delete(o);
  }
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

/* "okegw CMD: message", the command's usage, exit code 2. */
static int usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int usage_error(const char *cmd, const char *usage, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "okegw %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s", usage);
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
    return usage_error("deliveries", deliveries_usage, "unknown command '%s'", sub);

  const char *file = NULL, *connector = NULL, *state = NULL, *limit_arg = NULL;
  int json = 0, store = 0;
  okegw_delivery_filter f = {.state = -1, .limit = 1000};
  okegw_delivery_state retry_state = OKEGW_DLV_DEAD; /* retry --connector without --state */
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
        rc = usage_error("deliveries", deliveries_usage, "%s needs a value", a);
        goto out;
      }
      *value = argv[++i];
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--store") == 0) {
      store = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(deliveries_usage, stdout);
      rc = 0;
      goto out;
    } else if (a[0] == '-') {
      rc = usage_error("deliveries", deliveries_usage, "unknown argument '%s'", a);
      goto out;
    } else if (parse_id(a, &ids[nids]) == 0) {
      nids++;
    } else {
      rc = usage_error("deliveries", deliveries_usage, "'%s' is not a delivery id", a);
      goto out;
    }
  }
  if (!file) {
    rc = usage_error("deliveries", deliveries_usage, "%s needs -c FILE", sub);
    goto out;
  }
  if (cmd != LIST && (json || limit_arg)) {
    rc = usage_error("deliveries", deliveries_usage, "--json and --limit go with list only, not %s",
                     sub);
    goto out;
  }
  if ((cmd == SHOW || cmd == DROP) && (connector || state)) {
    rc = usage_error("deliveries", deliveries_usage,
                     "%s takes delivery ids, not --connector or --state", sub);
    goto out;
  }
  if (cmd == LIST) {
    if (nids) {
      rc = usage_error("deliveries", deliveries_usage, "%s takes no delivery ids (use show ID)",
                       sub);
      goto out;
    }
    okegw_delivery_state want;
    if (state && okegw_delivery_state_from_name(state, &want) < 0) {
      rc = usage_error(
          "deliveries", deliveries_usage,
          "unknown state '%s'; the states are pending, delivered, failed, dead and dropped", state);
      goto out;
    }
    if (state)
      f.state = (int)want;
    if (limit_arg) {
      char *end;
      errno = 0;
      f.limit = strtol(limit_arg, &end, 10);
      if (errno || end == limit_arg || *end || f.limit <= 0) {
        rc = usage_error("deliveries", deliveries_usage,
                         "--limit needs a positive number, not '%s'", limit_arg);
        goto out;
      }
    }
  } else if (cmd == SHOW && nids != 1) {
    rc = usage_error("deliveries", deliveries_usage, "%s takes exactly one delivery id", sub);
    goto out;
  } else if (cmd == RETRY) {
    if (nids && connector) {
      rc = usage_error("deliveries", deliveries_usage,
                       "%s takes either delivery ids or --connector, not both", sub);
      goto out;
    }
    if (!nids && !connector) {
      rc = usage_error("deliveries", deliveries_usage, "%s needs delivery ids or --connector NAME",
                       sub);
      goto out;
    }
    if (state && !connector) {
      rc = usage_error("deliveries", deliveries_usage, "%s --state goes with --connector", sub);
      goto out;
    }
    if (state && (okegw_delivery_state_from_name(state, &retry_state) < 0 ||
                  (retry_state != OKEGW_DLV_DEAD && retry_state != OKEGW_DLV_FAILED))) {
      rc = usage_error("deliveries", deliveries_usage,
                       "only dead or failed deliveries can be retried, not '%s'", state);
      goto out;
    }
  } else if (cmd == DROP && !nids) {
    rc = usage_error("deliveries", deliveries_usage, "%s needs delivery ids", sub);
    goto out;
  }

  /* what the admin API has no form of goes to the store */
  int api = !(cmd == RETRY && connector) && !(cmd == LIST && f.limit > 1000);
  okegw_admin_client *c = NULL;
  if (open_api(file, store || !api, &c) < 0)
    goto out; /* 2: the configuration cannot be read */
  if (c) {
    switch (cmd) {
    case LIST: rc = deliveries_list_api(c, connector, state, f.limit, json); break;
    case SHOW: rc = deliveries_show_api(c, ids[0]); break;
    case RETRY: rc = deliveries_change_api(c, 1, ids, nids); break;
    case DROP: rc = deliveries_change_api(c, 0, ids, nids); break;
    }
    okegw_admin_client_close(c);
    goto out;
  }
  okegw_store *s = open_store(file, cmd == RETRY || cmd == DROP);
  if (!s)
    goto out; /* 2: the store cannot be read */
  switch (cmd) {
  case LIST:
    f.connector = connector;
    rc = deliveries_list(s, &f, json);
    break;
  case SHOW: rc = deliveries_show(s, ids[0]); break;
  case RETRY: rc = deliveries_change(s, 1, ids, nids, connector, retry_state); break;
  case DROP: rc = deliveries_change(s, 0, ids, nids, NULL, OKEGW_DLV_PENDING); break;
  }
  okegw_store_close(s, NULL, NULL);
out:
  free(ids);
  return rc;
}

/* okegw phases ------------------------------------------------------------- */

static const char phases_usage[] =
    "usage: okegw phases -c FILE [--connector NAME] [--json] [--limit N]\n"
    "  the phase changes of the connectors, oldest first (--limit: the last N)\n";

static const char *const phases_head[] = {"TIME", "CONNECTOR", "FROM", "TO", "CONFIG", "REASON"};

/* Adds a row for r to t; ROW_OOM when out of memory. */
static int phase_row(void *ud, const okegw_phase_rec *r) {
  table *t = ud;
  char **row = table_row(t);
  if (!row)
    return ROW_OOM;
  char at[64];
  okegw_format_rfc3339(r->at_ms, 0, at, sizeof at);
  row[0] = okegw_strdup(at);
  row[1] = cell(r->connector, 0);
  row[2] = cell(r->from && *r->from ? r->from : NULL, 0);
  row[3] = cell(r->to, 0);
  /* the hash's first 12 hex digits tell configurations apart */
  row[4] = cell(r->config_sha256 && *r->config_sha256 ? r->config_sha256 : NULL, 0);
  if (row[4] && strlen(row[4]) > 12 && strspn(row[4], "0123456789abcdefABCDEF") >= 12)
    row[4][12] = '\0';
  row[5] = cell(r->reason, 0);
  return table_row_done(t) < 0 ? ROW_OOM : 0;
}

/* One change as a JSON line (--json). */
static int phase_json_line(void *ud, const okegw_phase_rec *r) {
  (void)ud;
  cJSON *o = okegw_phase_json(r);
  char *line = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!line)
    return ROW_OOM;
  printf("%s\n", line);
  free(line);
  return 0;
}

int okegw_admin_phases(int argc, char **argv) {
  const char *file = NULL, *limit_arg = NULL;
  int json = 0;
  okegw_phase_filter f = {0};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char **value = strcmp(a, "-c") == 0            ? &file
                         : strcmp(a, "--connector") == 0 ? &f.connector
                         : strcmp(a, "--limit") == 0     ? &limit_arg
                                                         : NULL;
    if (value) {
      if (i + 1 >= argc)
        return usage_error("phases", phases_usage, "%s needs a value", a);
      *value = argv[++i];
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(phases_usage, stdout);
      return 0;
    } else {
      return usage_error("phases", phases_usage, "unknown argument '%s'", a);
    }
  }
  if (!file)
    return usage_error("phases", phases_usage, "needs -c FILE");
  if (limit_arg) {
    char *end;
    errno = 0;
    f.limit = strtol(limit_arg, &end, 10);
    if (errno || end == limit_arg || *end || f.limit <= 0)
      return usage_error("phases", phases_usage, "--limit needs a positive number, not '%s'",
                         limit_arg);
  }
  okegw_store *s = open_store(file, 0);
  if (!s)
    return 2;
  table t = {.head = phases_head, .ncols = sizeof phases_head / sizeof *phases_head};
  char *err = NULL;
  int rc = okegw_store_phases_list(s, &f, json ? phase_json_line : phase_row, &t, &err);
  if (rc == OKEGW_STORE_OK && !json && table_print(&t) < 0)
    rc = ROW_OOM;
  if (rc == ROW_OOM)
    fprintf(stderr, "okegw phases: out of memory\n");
  else if (rc != OKEGW_STORE_OK)
    fprintf(stderr, "okegw phases: %s\n", err ? err : "out of memory");
  free(err);
  table_free(&t);
  okegw_store_close(s, NULL, NULL);
  return rc == OKEGW_STORE_OK ? 0 : 2;
}
