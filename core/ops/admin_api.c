/* See admin_api.h. */
#include "ops/admin_api.h"
#include "admin/report.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "connector/plugin_host.h"
#include "ops/health.h"
#include "ops/metrics.h"
#include "pipeline/gateway.h"
#include "pipeline/generation.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000

/* ---- answers -------------------------------------------------------------- */

static void respond_json(okegw_req *req, int status, cJSON *doc) {
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!s) {
    okegw_respond_problem(req, 500, "Internal Server Error", "out of memory");
    return;
  }
  okegw_respond(req, status, "application/json", s, strlen(s), "Cache-Control: no-store\r\n");
  free(s);
}

/* ---- connectors (on the loop: only memory is read) ---------------------- */

/* "up", "down" or "unknown" from what the connector knows now: whether it
 * loaded and the last answer of its health check. */

static cJSON *connector_json(okegw_gateway *g, const okegw_conf_connector *cc,
                             const okegw_connector *conn) {
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  const char *hash = conn && conn->maps ? okegw_mapset_hash(conn->maps) : NULL;
  okegw_conn_health h = {.health = "down", .reason = "not started"};
  if (conn)
    okegw_health_connector(conn, &h);
  int ok = cJSON_AddStringToObject(o, "name", cc->name) &&
           cJSON_AddStringToObject(o, "role", okegw_role_name(cc->role)) &&
           cJSON_AddStringToObject(o, "phase", okegw_phase_name(cc->phase)) &&
           okegw_json_add_text(o, "phaseReason", cc->phase_reason, 0) == 0 &&
           cJSON_AddBoolToObject(o, "acceptance", cc->acceptance) &&
           okegw_json_add_text(o, "mirrorOf", cc->mirror_of, 0) == 0 &&
           okegw_json_add_text(o, "plugin", cc->plugin, 0) == 0 &&
           okegw_json_add_text(o, "mapping", hash && strcmp(hash, "-") ? hash : NULL, 0) == 0 &&
           cJSON_AddStringToObject(o, "health", h.health) &&
           cJSON_AddStringToObject(o, "healthReason", h.reason) &&
           okegw_metrics_traffic_json(okegw_metrics_connector(g->metrics, cc->name), o) == 0;
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static void serve_connectors(okegw_gateway *g, okegw_req *req) {
  const okegw_gen *gen = g->gen;
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < gen->nconns; i++) {
    cJSON *o = connector_json(g, &gen->conf->connectors[i], gen->conns[i]);
    if (!o || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      cJSON_Delete(arr);
      arr = NULL;
    }
  }
  respond_json(req, 200, arr);
}

/* ---- changes are logged ------------------------------------------------- */

/* One info line per answered request that changes something: method,
 * path, status, and who asked (the admin token, or anyone on loopback when
 * none is configured: the configuration allows no other address then).
 * path is a copy when the request may be gone. */
static void log_change(okegw_req *req, const char *path, int status, int token, const char *what) {
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.method = "POST";
  f.path = path;
  f.status = status;
  f.request_id = req->request_id;
  okegw_log(OKEGW_LOG_INFO, &f, "admin API: POST %s -> %d (by %s): %s", path, status,
            token ? "the admin token" : "loopback, no admin token", what);
}

/* ---- reload (on the loop, as SIGHUP and okegw reload) ------------------- */

static void serve_reload(okegw_gateway *g, okegw_req *req) {
  okegw_diag report = {0};
  int token = g->gen->conf->admin_token != NULL; /* before the reload swaps it */
  int rc = okegw_gateway_reload(g, &report);
  for (size_t i = 0; i < report.n; i++)
    okegw_log(rc < 0 ? OKEGW_LOG_ERROR : OKEGW_LOG_INFO, NULL, "admin API reload: %s",
              report.msgs[i]);
  okegw_log(rc < 0 ? OKEGW_LOG_ERROR : OKEGW_LOG_INFO, NULL,
            rc < 0 ? "reload refused: the running configuration stays"
                   : "reload taken (admin API)");
  cJSON *o = cJSON_CreateObject();
  cJSON *lines = o ? cJSON_AddArrayToObject(o, "report") : NULL;
  int ok = lines && cJSON_AddBoolToObject(o, "taken", rc == 0);
  for (size_t i = 0; ok && i < report.n; i++) {
    cJSON *s = cJSON_CreateString(report.msgs[i]);
    ok = s && cJSON_AddItemToArray(lines, s);
  }
  okegw_diag_free(&report);
  if (!ok) {
    cJSON_Delete(o);
    o = NULL;
  }
  log_change(req, req->path, o ? 200 : 500, token, rc == 0 ? "reload taken" : "reload refused");
  respond_json(req, 200, o);
}

/* ---- store work (on a worker thread, its own direct connection) --------- */

enum job_kind { JOB_LIST, JOB_GET, JOB_RETRY, JOB_DROP, JOB_AUDIT, JOB_REPORT };

typedef struct job {
  uv_work_t work;
  okegw_req *req;
  enum job_kind kind;
  char *store_path;
  /* what was asked */
  long long id;
  char connector[OKEGW_NAME_MAX], resource[200], since[40], until[40];
  int state; /* -1 any */
  long limit;
  int format;     /* JOB_REPORT: OKEGW_REPORT_JSON or _HTML */
  int with_body;  /* JOB_GET: ?body=1, as okegw deliveries show */
  char path[200]; /* retry/drop: what was asked, for the log line */
  int token;      /* retry/drop: asked with the admin token (one is configured) */
  okegw_gen *gen; /* JOB_REPORT: holds cc */
  const okegw_conf_connector *cc;
  /* the answer */
  int status;
  const char *title; /* a problem when set; detail in body */
  const char *ctype;
  char *body;
  size_t len;
  /* retry/drop: what the store said */
  okegw_dlv_change change;
  int changes;
  uv_loop_t *loop;
  struct job *next; /* waiting for a worker (see job_start) */
} job;

/* At most this many admin jobs use the libuv thread pool at once, so the
 * pool stays free for the gateway's own work (token issuing checks client
 * secrets there); the others wait in order. Loop thread only. */
#define JOBS_RUNNING_MAX 2
static int jobs_running;
static job *jobs_waiting, **jobs_waiting_tail = &jobs_waiting;

static void job_problem(job *j, int status, const char *title, char *detail) {
  free(j->body);
  j->status = status;
  j->title = title;
  j->body = detail ? detail : okegw_strdup("out of memory");
}

static void job_json(job *j, cJSON *doc) {
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!s) {
    job_problem(j, 500, "Internal Server Error", NULL);
    return;
  }
  j->status = 200;
  j->ctype = "application/json";
  j->body = s;
  j->len = strlen(s);
}

/* Appends o (taken over) to arr; -1 stops a store walk when out of memory. */
static int append(cJSON *arr, cJSON *o) {
  if (!o || !cJSON_AddItemToArray(arr, o)) {
    cJSON_Delete(o);
    return -1;
  }
  return 0;
}

static int list_row(void *ud, const okegw_delivery_rec *r) {
  return append(ud, okegw_delivery_json(r, 0));
}

static int audit_row(void *ud, const cJSON *row) { return append(ud, cJSON_Duplicate(row, 1)); }

static void on_change(void *ud, const okegw_dlv_change *c) {
  job *j = ud;
  j->change = *c;
  j->changes++;
}

/* What a change did, as okegw deliveries retry and drop print it: the
 * state it was in and, for a drop, whether and until when its body stays. */
static cJSON *change_json(const okegw_dlv_change *c) {
  cJSON *o = cJSON_CreateObject();
  char until[64] = "";
  if (c->kept_until_ms)
    okegw_format_rfc3339(c->kept_until_ms, 0, until, sizeof until);
  if (!o || !cJSON_AddStringToObject(o, "was", okegw_delivery_state_name(c->was)) ||
      !cJSON_AddBoolToObject(o, "bodyKept", c->body_kept) ||
      okegw_json_add_text(o, "keptUntil", until[0] ? until : NULL, 0) < 0) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* The delivery j->id as JSON into j (after a change, its new state with
 * the change under "change"). */
static void job_get(job *j, okegw_store *s, const okegw_dlv_change *c) {
  okegw_delivery_rec r = {0};
  char *err = NULL;
  int rc = okegw_store_deliveries_get(s, j->id, j->with_body, &r, &err);
  if (rc == OKEGW_STORE_NOTFOUND) {
    job_problem(j, 404, "Not Found", okegw_asprintf("there is no delivery %lld", j->id));
  } else if (rc != OKEGW_STORE_OK) {
    job_problem(j, 500, "Internal Server Error", err), err = NULL;
  } else {
    cJSON *o = okegw_delivery_json(&r, j->with_body ? OKEGW_DELIVERY_JSON_BODY : 0);
    okegw_delivery_rec_free(&r);
    cJSON *ch = o && c ? change_json(c) : NULL;
    if (c && (!ch || !cJSON_AddItemToObject(o, "change", ch))) {
      cJSON_Delete(ch);
      cJSON_Delete(o);
      o = NULL;
    }
    job_json(j, o);
  }
  free(err);
}

static void job_change(job *j, okegw_store *s) {
  char *err = NULL;
  int retry = j->kind == JOB_RETRY;
  int rc =
      retry ? okegw_store_deliveries_retry(s, &j->id, 1, NULL, OKEGW_DLV_DEAD, on_change, j, &err)
            : okegw_store_deliveries_drop(s, &j->id, 1, on_change, j, &err);
  if (rc != OKEGW_STORE_OK) {
    job_problem(j, 500, "Internal Server Error", err ? err : okegw_strdup("the store failed"));
    return;
  }
  free(err);
  const char *was = okegw_delivery_state_name(j->change.was);
  switch (j->changes ? j->change.outcome : OKEGW_DLV_CHANGE_MISSING) {
  case OKEGW_DLV_CHANGE_MISSING:
    job_problem(j, 404, "Not Found", okegw_asprintf("there is no delivery %lld", j->id));
    return;
  case OKEGW_DLV_CHANGE_WRONG_STATE:
    job_problem(j, 409, "Conflict",
                okegw_asprintf(retry ? "delivery %lld is %s: only dead or failed deliveries can "
                                       "be retried"
                                     : "delivery %lld is %s: only pending, dead or failed "
                                       "deliveries can be dropped",
                               j->id, was));
    return;
  case OKEGW_DLV_CHANGE_NO_BODY:
    job_problem(j, 409, "Conflict",
                okegw_asprintf("delivery %lld cannot be retried: its body was not kept, so it "
                               "cannot be sent again",
                               j->id));
    return;
  case OKEGW_DLV_CHANGE_DONE: break;
  }
  job_get(j, s, &j->change);
}

static void job_report(job *j, okegw_store *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    job_problem(j, 500, "Internal Server Error", okegw_strdup("out of memory"));
    return;
  }
  const char *verdict = NULL;
  char *why = NULL;
  int rc = okegw_report_stream(s, j->cc, j->since[0] ? j->since : NULL,
                               (enum okegw_report_format)j->format, f, &verdict, &why);
  if (fclose(f) != 0 && rc == 0) {
    rc = -1;
    why = okegw_strdup("out of memory");
  }
  if (rc != 0) {
    free(buf);
    job_problem(j, 500, "Internal Server Error", why);
    return;
  }
  j->status = 200;
  j->ctype = j->format == OKEGW_REPORT_HTML ? "text/html; charset=utf-8" : "application/json";
  j->body = buf;
  j->len = len;
}

static void job_work(uv_work_t *w) {
  job *j = w->data;
  okegw_store *s = NULL;
  char *err = NULL;
  int writable = j->kind == JOB_RETRY || j->kind == JOB_DROP;
  if (okegw_store_open_direct(j->store_path, writable, &s, &err) != OKEGW_STORE_OK) {
    job_problem(j, 503, "Service Unavailable",
                err ? err : okegw_strdup("the store cannot be opened"));
    return;
  }
  free(err);
  err = NULL;
  switch (j->kind) {
  case JOB_LIST: {
    okegw_delivery_filter f = {
        .connector = j->connector[0] ? j->connector : NULL, .state = j->state, .limit = j->limit};
    cJSON *arr = cJSON_CreateArray();
    int rc = arr ? okegw_store_deliveries_list(s, &f, list_row, arr, &err) : OKEGW_STORE_ERROR;
    if (rc != OKEGW_STORE_OK) {
      cJSON_Delete(arr);
      job_problem(j, 500, "Internal Server Error", err), err = NULL;
    } else {
      job_json(j, arr);
    }
    break;
  }
  case JOB_GET: job_get(j, s, NULL); break;
  case JOB_RETRY:
  case JOB_DROP: job_change(j, s); break;
  case JOB_AUDIT: {
    okegw_audit_filter f = {.connector = j->connector[0] ? j->connector : NULL,
                            .resource_id = j->resource[0] ? j->resource : NULL,
                            .since = j->since[0] ? j->since : NULL,
                            .until = j->until[0] ? j->until : NULL,
                            .limit = j->limit,
                            .newest_first = 1};
    cJSON *arr = cJSON_CreateArray();
    int rc = arr ? okegw_store_audit_query(s, &f, audit_row, arr, &err) : OKEGW_STORE_ERROR;
    if (rc != OKEGW_STORE_OK) {
      cJSON_Delete(arr);
      job_problem(j, 500, "Internal Server Error", err), err = NULL;
    } else {
      job_json(j, arr);
    }
    break;
  }
  case JOB_REPORT: job_report(j, s); break;
  }
  free(err);
  okegw_store_close(s, NULL, NULL);
}

static void job_free(job *j) {
  if (j->gen)
    okegw_gen_unref(j->gen);
  free(j->store_path);
  free(j->body);
  free(j);
}

static void job_run(job *j);

static void job_done(uv_work_t *w, int status) {
  job *j = w->data;
  jobs_running--;
  if (jobs_waiting) {
    job *next = jobs_waiting;
    if (!(jobs_waiting = next->next))
      jobs_waiting_tail = &jobs_waiting;
    job_run(next);
  }
  if (status != 0)
    job_problem(j, 503, "Service Unavailable", okegw_strdup("the gateway is shutting down"));
  if (j->kind == JOB_RETRY || j->kind == JOB_DROP)
    log_change(j->req, j->path, j->status, j->token,
               j->title ? j->body : "done (the gateway picks it up within a few seconds)");
  if (j->title)
    okegw_respond_problem(j->req, j->status, j->title, j->body);
  else
    okegw_respond(j->req, j->status, j->ctype, j->body, j->len, "Cache-Control: no-store\r\n");
  job_free(j);
}

static job *job_new(okegw_gateway *g, okegw_req *req, enum job_kind kind) {
  job *j = calloc(1, sizeof *j);
  if (!j || !(j->store_path = okegw_strdup(g->gen->conf->store))) {
    free(j);
    okegw_respond_problem(req, 500, "Internal Server Error", "out of memory");
    return NULL;
  }
  j->req = req;
  j->kind = kind;
  j->state = -1;
  j->work.data = j;
  return j;
}

static void job_run(job *j) {
  int rc = uv_queue_work(j->loop, &j->work, job_work, job_done);
  if (rc != 0) {
    okegw_respond_problem(j->req, 503, "Service Unavailable", uv_strerror(rc));
    job_free(j);
    return;
  }
  jobs_running++;
}

static void job_start(okegw_gateway *g, job *j) {
  j->loop = g->loop;
  if (jobs_running < JOBS_RUNNING_MAX) {
    job_run(j);
    return;
  }
  *jobs_waiting_tail = j;
  jobs_waiting_tail = &j->next;
}

/* ---- requests ------------------------------------------------------------ */

/* A query parameter into out ("" when absent); 0, or -1 after answering
 * 400 because it does not fit. */
static int param(okegw_req *req, const char *name, char *out, size_t size) {
  out[0] = 0;
  char buf[512];
  if (!okegw_query_get(req->query, name, buf, sizeof buf))
    return 0;
  if (strlen(buf) >= size) {
    char *d = okegw_asprintf("the query parameter %s is too long", name);
    okegw_respond_problem(req, 400, "Bad Request", d ? d : "a query parameter is too long");
    free(d);
    return -1;
  }
  memcpy(out, buf, strlen(buf) + 1);
  return 0;
}

static int limit_param(okegw_req *req, long *out) {
  char v[24];
  *out = LIMIT_DEFAULT;
  if (param(req, "limit", v, sizeof v) < 0)
    return -1;
  if (!v[0])
    return 0;
  char *end = NULL;
  long n = strtol(v, &end, 10);
  if (*end || n < 1 || n > LIMIT_MAX) {
    okegw_respond_problem(req, 400, "Bad Request", "limit is a whole number from 1 to 1000");
    return -1;
  }
  *out = n;
  return 0;
}

/* A time as the audit rows write theirs: RFC 3339 UTC or a prefix of it. */
static int time_param(okegw_req *req, const char *name, char *out, size_t size) {
  if (param(req, name, out, size) < 0)
    return -1;
  long long ms;
  if (out[0] && (okegw_parse_rfc3339(out, &ms) != 0 || strpbrk(out + 10, "tz +-"))) {
    char *d = okegw_asprintf("%s takes a time in UTC (2026-12-01 or 2026-12-01T08:00:00Z)", name);
    okegw_respond_problem(req, 400, "Bad Request", d ? d : "a time is not in UTC");
    free(d);
    return -1;
  }
  return 0;
}

static int method_is(okegw_req *req, const char *want) {
  if (strcmp(req->method, want) == 0)
    return 1;
  char *d = okegw_asprintf("this resource takes %s", want);
  okegw_respond_problem(req, 405, "Method Not Allowed", d ? d : "wrong method");
  free(d);
  return 0;
}

static void serve_deliveries(okegw_gateway *g, okegw_req *req, const char *rest) {
  if (!*rest) { /* the list */
    if (!method_is(req, "GET"))
      return;
    char state[16];
    job *j = job_new(g, req, JOB_LIST);
    if (!j)
      return;
    if (param(req, "connector", j->connector, sizeof j->connector) < 0 ||
        param(req, "state", state, sizeof state) < 0 || limit_param(req, &j->limit) < 0) {
      job_free(j);
      return;
    }
    okegw_delivery_state st = OKEGW_DLV_PENDING;
    if (state[0] && okegw_delivery_state_from_name(state, &st) < 0) {
      okegw_respond_problem(req, 400, "Bad Request",
                            "state is one of pending, delivered, failed, dead, dropped");
      job_free(j);
      return;
    }
    j->state = state[0] ? (int)st : -1;
    job_start(g, j);
    return;
  }
  if (*rest != '/')
    goto notfound;
  rest++;
  char *end = NULL;
  errno = 0;
  long long id = strtoll(rest, &end, 10);
  if (end == rest || id <= 0 || errno || (*end && *end != '/'))
    goto notfound;
  enum job_kind kind;
  if (!*end) {
    if (!method_is(req, "GET"))
      return;
    kind = JOB_GET;
  } else if (strcmp(end, "/retry") == 0 || strcmp(end, "/drop") == 0) {
    if (!method_is(req, "POST"))
      return;
    kind = strcmp(end, "/retry") == 0 ? JOB_RETRY : JOB_DROP;
  } else {
    goto notfound;
  }
  job *j = job_new(g, req, kind);
  if (!j)
    return;
  j->id = id;
  if (kind == JOB_GET) {
    char v[8];
    if (param(req, "body", v, sizeof v) < 0) {
      job_free(j);
      return;
    }
    j->with_body = strcmp(v, "1") == 0;
  } else {
    snprintf(j->path, sizeof j->path, "%s", req->path);
    j->token = g->gen->conf->admin_token != NULL;
  }
  job_start(g, j);
  return;
notfound:
  okegw_respond_problem(req, 404, "Not Found",
                        "deliveries are at /admin/api/deliveries/{id} (GET), "
                        "/admin/api/deliveries/{id}/retry and /drop (POST)");
}

static void serve_audit(okegw_gateway *g, okegw_req *req) {
  if (!method_is(req, "GET"))
    return;
  job *j = job_new(g, req, JOB_AUDIT);
  if (!j)
    return;
  if (param(req, "connector", j->connector, sizeof j->connector) < 0 ||
      param(req, "resource", j->resource, sizeof j->resource) < 0 ||
      time_param(req, "since", j->since, sizeof j->since) < 0 ||
      time_param(req, "until", j->until, sizeof j->until) < 0 || limit_param(req, &j->limit) < 0) {
    job_free(j);
    return;
  }
  job_start(g, j);
}

static void serve_report(okegw_gateway *g, okegw_req *req) {
  if (!method_is(req, "GET"))
    return;
  char format[8];
  job *j = job_new(g, req, JOB_REPORT);
  if (!j)
    return;
  if (param(req, "connector", j->connector, sizeof j->connector) < 0 ||
      param(req, "format", format, sizeof format) < 0 ||
      time_param(req, "since", j->since, sizeof j->since) < 0) {
    job_free(j);
    return;
  }
  j->format = !format[0] ? OKEGW_REPORT_JSON : okegw_report_format_from_name(format);
  if (j->format != OKEGW_REPORT_JSON && j->format != OKEGW_REPORT_HTML) {
    okegw_respond_problem(req, 400, "Bad Request", "format is json or html");
    job_free(j);
    return;
  }
  if (!j->connector[0]) {
    okegw_respond_problem(req, 400, "Bad Request", "connector=NAME is required");
    job_free(j);
    return;
  }
  j->gen = okegw_gen_ref(g->gen);
  j->cc = okegw_conf_section(j->gen->conf, j->connector);
  if (!j->cc) {
    char *d = okegw_asprintf("there is no connector %s", j->connector);
    okegw_respond_problem(req, 404, "Not Found", d ? d : "no such connector");
    free(d);
    job_free(j);
    return;
  }
  job_start(g, j);
}

void okegw_admin_api_serve(okegw_gateway *g, okegw_req *req, const char *rest) {
  if (strcmp(rest, "connectors") == 0) {
    if (method_is(req, "GET"))
      serve_connectors(g, req);
  } else if (strncmp(rest, "deliveries", 10) == 0) {
    serve_deliveries(g, req, rest + 10);
  } else if (strcmp(rest, "audit") == 0) {
    serve_audit(g, req);
  } else if (strcmp(rest, "reload") == 0) {
    if (method_is(req, "POST"))
      serve_reload(g, req);
  } else if (strcmp(rest, "report") == 0) {
    serve_report(g, req);
  } else {
    okegw_respond_problem(req, 404, "Not Found",
                          "the admin API has connectors, deliveries, audit, reload and report "
                          "under /admin/api/");
  }
}
