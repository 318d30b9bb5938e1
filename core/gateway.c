#include "gateway.h"
#include "http_client.h"
#include "json.h"
#include "log.h"
#include "plugin_host.h"
#include "problem.h"
#include "store.h"
#include "util.h"
#include "validate.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct okegw_gateway {
  uv_loop_t *loop;
  okegw_conf *conf;
  okegw_connector *conns;
  size_t nconns;
  okegw_server *server;
  okegw_http *http;
  okegw_store *store;
  int stopping;
  int identity; /* some connector has an inbound_token: every caller must present one */
  void (*stopped)(void *);
  void *stopped_arg;
};

/* One incoming request on its way through the gateway. */
typedef struct call {
  okegw_gateway *g;
  okegw_req *req;
  int interaction;
  const char *oke_path; /* path below base_path, points into req->path */
  char id[64];          /* the path id */
  char sub_id[64];      /* a second path id (groups/{id}/members/{sub}) */
  char ref_id[64];      /* offering: its component; association: its offering */
  okegw_connector *target;
  okegw_connector *caller; /* who called, by its credential; NULL = anonymous */
  cJSON *body;             /* the request body, parsed once */
  char mapping[65];        /* hash of the mappings the exchange ran with */
  /* set when the gateway sends something else than it received (a supplier
   * callback turned into an OKE flow-3 PATCH) */
  const char *out_method;
  char out_path[128];
  char *out_body;
  int validated;   /* the body passed the profile check already */
  int held_status; /* an answer kept while its delivery is recorded */
  char *held_ctype, *held_body;
  size_t held_len;
  int stream_status; /* a streamed answer (documents) */
  size_t stream_bytes;
} call;

static void call_free(call *c) {
  cJSON_Delete(c->body);
  free(c->held_ctype);
  free(c->held_body);
  free(c->out_body);
  free(c);
}

/* ---- answering --------------------------------------------------------- */

static void finish(call *c, int status, const char *ctype, const char *body, size_t len,
                   const char *extra_headers) {
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.method = c->req->method;
  f.path = c->req->path;
  f.status = status;
  f.request_id = c->req->request_id;
  f.latency_ms = okegw_now_ms() - c->req->start_ms;
  f.interaction = c->interaction ? okegw_interaction_name(c->interaction) : NULL;
  f.connector = c->target ? c->target->conf->name : NULL;
  f.caller = c->caller ? c->caller->conf->name : NULL;
  f.mapping = c->mapping[0] && strcmp(c->mapping, "-") ? c->mapping : NULL;
  okegw_log(status >= 500 ? OKEGW_LOG_WARN : OKEGW_LOG_INFO, &f, "request");
  okegw_respond(c->req, status, ctype, body, len, extra_headers);
  call_free(c);
}

/* A document passes through piece by piece: never whole in memory, never
 * inlined in JSON. */
static void doc_begin(void *ud, okegw_connector *conn, int status, const char *ctype) {
  call *c = ud;
  c->target = conn;
  c->stream_status = status;
  okegw_respond_begin(c->req, status, ctype ? ctype : "application/octet-stream", NULL);
}

static int doc_write(void *ud, const char *data, size_t len) {
  call *c = ud;
  c->stream_bytes += len;
  return okegw_respond_write(c->req, data, len) < 0 ? -1 : 0;
}

static void doc_end(void *ud, int ok) {
  call *c = ud;
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.method = c->req->method;
  f.path = c->req->path;
  f.status = c->stream_status;
  f.request_id = c->req->request_id;
  f.latency_ms = okegw_now_ms() - c->req->start_ms;
  f.interaction = okegw_interaction_name(c->interaction);
  f.connector = c->target ? c->target->conf->name : NULL;
  f.caller = c->caller ? c->caller->conf->name : NULL;
  okegw_log(ok ? OKEGW_LOG_INFO : OKEGW_LOG_WARN, &f, ok ? "request" : "request (cut off)");
  okegw_respond_end(c->req, ok);
  call_free(c);
}

static const okegw_stream_ops document_stream = {doc_begin, doc_write, doc_end};

static void finish_problem(call *c, int status, const char *connector, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void finish_problem(call *c, int status, const char *connector, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  char *body = okegw_problem_json(status, okegw_status_text(status), detail, connector);
  finish(c, status, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, NULL);
  free(body);
}

static void finish_json(call *c, int status, cJSON *j, const char *extra_headers) {
  char *body = j ? okegw_json_print(j) : NULL;
  if (!body) {
    finish_problem(c, 500, NULL, "out of memory");
    return;
  }
  finish(c, status, "application/json", body, strlen(body), extra_headers);
  free(body);
}

/* ---- connectors -------------------------------------------------------- */

static okegw_connector *connector_by_name(okegw_gateway *g, const char *name) {
  for (size_t i = 0; i < g->nconns; i++)
    if (strcmp(g->conns[i].conf->name, name) == 0)
      return &g->conns[i];
  return NULL;
}

/* A TA connector ICT has set live. One whose plugin or mappings failed to
 * load still counts: it shows up as failed, not as silently missing. */
static int is_live_ta(const okegw_connector *c) {
  return c->conf->role == OKEGW_ROLE_TA && c->conf->phase == OKEGW_PHASE_LIVE;
}

static int check_answer(call *c, const okegw_answer *a, char **out);

/* A zitting or deelname counts as delivered once its TA said 2xx: only then
 * does it open the return route (flows 3, 4) and flow 6 for its person. The
 * caller hears back after that is durable. */
static void on_confirmed(void *ud, const okegw_route *r) {
  call *c = ud;
  if (r->rc != OKEGW_STORE_OK)
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = c->target ? c->target->conf->name : NULL,
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "could not record the delivery of %s; its results will be refused", c->id);
  finish(c, c->held_status, c->held_ctype, c->held_body, c->held_len, NULL);
}

static void confirm_delivery(call *c, const okegw_answer *a) {
  okegw_store *st = c->g->store;
  c->held_status = a->status;
  c->held_ctype = a->content_type ? okegw_strdup(a->content_type) : NULL;
  c->held_body = okegw_strndup(a->body ? a->body : "", a->body_len);
  c->held_len = a->body_len;
  if (c->interaction == OKE_I_FLOW2_PUT_ASSOCIATION) {
    /* flow 6 lets a TA read the enrolments of persons it holds a deelname
     * for, and no others: remember whose deelname this is */
    const cJSON *person = cJSON_GetObjectItemCaseSensitive(c->body, "person");
    const char *pid =
        cJSON_IsObject(person)
            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(person, "personId"))
            : cJSON_GetStringValue(person);
    char key[160];
    if (pid && strlen(pid) < 64) {
      snprintf(key, sizeof key, "%s@%s", pid, a->conn->conf->name);
      const char *k = key;
      okegw_store_put(st, "ta_person", &k, 1, a->conn->conf->name, NULL, NULL);
    }
  }
  const char *kind = c->interaction == OKE_I_FLOW2_PUT_OFFERING ? "offering" : "association";
  if (!c->held_body || okegw_store_confirm(st, kind, c->id, on_confirmed, c) < 0)
    finish(c, a->status, a->content_type, a->body, a->body_len, NULL);
}

static void on_routed_done(void *ud, const okegw_answer *a) {
  call *c = ud;
  snprintf(c->mapping, sizeof c->mapping, "%s", a->mapping);
  char *blocked = NULL;
  if (check_answer(c, a, &blocked)) {
    finish(c, 502, OKEGW_PROBLEM_TYPE, blocked, blocked ? strlen(blocked) : 0, NULL);
    free(blocked);
    return;
  }
  if ((c->interaction == OKE_I_FLOW2_PUT_OFFERING ||
       c->interaction == OKE_I_FLOW2_PUT_ASSOCIATION) &&
      a->status >= 200 && a->status < 300) {
    confirm_delivery(c, a);
    return;
  }
  finish(c, a->status, a->content_type, a->body, a->body_len, NULL);
}

/* Hands the call to `conn` unchanged, after the phase check. */
static unsigned scope_of(int interaction);
static unsigned scope_for(const call *c);

/* Every request body is checked against the OKE profile once its
 * interaction is settled, right before it leaves: 400 with every violation
 * and its JSON pointer, nothing forwarded. Returns 1 when refused. */
static int refuse_invalid(call *c);
static int refuse_invalid(call *c) {
  /* R12/R23: the body names the path's id; a PATCH on an extra attempt
   * names the original toetsinschrijving instead */
  const char *pid = c->sub_id[0] ? c->sub_id : c->id;
  if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION && c->ref_id[0])
    pid = c->ref_id;
  okegw_validate_ctx vctx = {.path_id = pid};
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, OKEGW_BODY_REQUEST, c->body, &vctx, &v);
  if (n == 0) {
    okegw_violations_free(&v);
    return 0;
  }
  char *body = n > 0 ? okegw_violations_problem(&v, 400) : NULL;
  okegw_log(OKEGW_LOG_INFO,
            &(okegw_log_fields){.caller = c->caller ? c->caller->conf->name : NULL,
                                .interaction = okegw_interaction_name(c->interaction),
                                .request_id = c->req->request_id,
                                .latency_ms = -1},
            "refused: %d violation(s) of the OKE profile, first %s: %s", n,
            n > 0 ? v.v[0].pointer : "", n > 0 ? v.v[0].message : "out of memory");
  okegw_violations_free(&v);
  c->target = NULL;
  if (body)
    finish(c, 400, OKEGW_PROBLEM_TYPE, body, strlen(body), NULL);
  else
    finish_problem(c, 503, NULL, "out of memory while validating");
  free(body);
  return 1;
}

/* A peer's JSON answer checked against the profile. 0 = pass it on (perhaps
 * with a warning logged); 1 = the connector blocks invalid answers and *out
 * holds the 502 problem body to send instead. */
static int check_answer(call *c, const okegw_answer *a, char **out) {
  *out = NULL;
  if (!a->conn || a->conn->conf->validate_answers == OKEGW_CHECK_OFF || a->status != 200 ||
      !a->body_len)
    return 0;
  cJSON *j = cJSON_ParseWithLength(a->body, a->body_len);
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, OKEGW_BODY_RESPONSE, j, NULL, &v);
  cJSON_Delete(j);
  if (n <= 0) {
    okegw_violations_free(&v);
    return 0;
  }
  int block = a->conn->conf->validate_answers == OKEGW_CHECK_BLOCK;
  okegw_log(OKEGW_LOG_WARN,
            &(okegw_log_fields){.connector = a->conn->conf->name,
                                .interaction = okegw_interaction_name(c->interaction),
                                .request_id = c->req->request_id,
                                .latency_ms = -1},
            "answer of connector '%s' breaks the OKE profile (%d violation(s), first %s: %s)%s",
            a->conn->conf->name, n, v.v[0].pointer, v.v[0].message,
            block ? ": blocked" : ": passed on (validate_answers = warn)");
  if (block)
    *out = okegw_violations_problem(&v, 502);
  okegw_violations_free(&v);
  return block;
}
static void remember_documents(call *c, const okegw_connector *holder);

static void deliver_to(call *c, okegw_connector *conn) {
  c->target = conn;
  /* the interaction may have been settled only now (a TPL's PATCH of a
   * toetsinschrijving is flow 5): check the caller's scope for it */
  if (c->caller && !(c->caller->conf->scopes & scope_for(c))) {
    finish_problem(c, 403, c->caller->conf->name,
                   "connector '%s' does not have the scope %s that %s needs", c->caller->conf->name,
                   okegw_scope_name(scope_for(c)), okegw_interaction_name(c->interaction));
    return;
  }
  if (conn->conf->phase == OKEGW_PHASE_OFF) {
    finish_problem(c, 503, conn->conf->name,
                   "connector '%s' is in phase off: it carries no traffic until ICT sets its "
                   "phase in plugins.conf",
                   conn->conf->name);
    return;
  }
  if (c->body && !c->validated && refuse_invalid(c))
    return;
  const okegw_req *r = c->req;
  oke_request req = {.interaction = c->interaction,
                     .method = r->method,
                     .path = c->oke_path,
                     .query = r->query,
                     .id = c->id,
                     .body = r->body,
                     .body_len = r->body_len,
                     .content_type = okegw_req_header(r, "Content-Type"),
                     .request_id = r->request_id};
  if (c->out_method) {
    req.method = c->out_method;
    req.path = c->out_path;
    req.query = "";
    req.body = c->out_body;
    req.body_len = c->out_body ? strlen(c->out_body) : 0;
    req.content_type = "application/merge-patch+json";
  }
  if (c->interaction == OKE_I_GET_DOCUMENT)
    okegw_connector_deliver_stream(conn, &req, on_routed_done, &document_stream, c);
  else
    okegw_connector_deliver(conn, &req, c->body, on_routed_done, c);
}

/* A route from the store names a connector; it may have left plugins.conf. */
static void deliver_to_named(call *c, const char *name) {
  okegw_connector *conn = connector_by_name(c->g, name);
  if (!conn) {
    finish_problem(c, 503, name, "connector '%s' owns this resource but is no longer configured",
                   name);
    return;
  }
  deliver_to(c, conn);
}

static okegw_connector *single_live(okegw_gateway *g, enum okegw_role role, char *why,
                                    size_t whysz);
static void to_dr(call *c, int interaction, const char *kind);
static int check_answer(call *c, const okegw_answer *a, char **out);

/* ---- flow 0: the merged catalogue -------------------------------------- */

typedef struct part {
  okegw_connector *conn;
  cJSON *items; /* array, collected over the pages */
  int page;
  int failed;
  char reason[48];
} part;

typedef struct fanout {
  call *c;
  size_t pending;
  part *parts;
  size_t nparts;
  char *base_query; /* the caller's filters, without paging and sort */
  char *probe_id;   /* probe mode: GET /components/{id} at every connector */
  void (*probe_done)(call *c, okegw_connector *owner, const char *ctype, const char *body,
                     size_t len);
  okegw_connector *probe_owner;
  char *probe_body, *probe_ctype;
  size_t probe_len;
} fanout;

static void fanout_free(fanout *f) {
  for (size_t i = 0; i < f->nparts; i++)
    cJSON_Delete(f->parts[i].items);
  free(f->parts);
  free(f->base_query);
  free(f->probe_id);
  free(f->probe_body);
  free(f->probe_ctype);
  free(f);
}

static void part_fail(part *p, int status, const char *why) {
  p->failed = 1;
  if (why)
    snprintf(p->reason, sizeof p->reason, "%s", why);
  else if (status == 504)
    snprintf(p->reason, sizeof p->reason, "timeout");
  else if (status == 502)
    snprintf(p->reason, sizeof p->reason, "unreachable");
  else if (status == 503)
    snprintf(p->reason, sizeof p->reason, "unavailable");
  else
    snprintf(p->reason, sizeof p->reason, "status-%d", status);
}

static void catalogue_merge(fanout *f);
static void part_fetch(fanout *f, part *p);

static void fanout_part_done(fanout *f) {
  if (--f->pending == 0)
    catalogue_merge(f);
}

/* The callback context of one page request. */
typedef struct page_ctx {
  fanout *f;
  part *p;
} page_ctx;

static void on_page_done(void *ud, const okegw_answer *a) {
  page_ctx *pc = ud;
  fanout *f = pc->f;
  part *p = pc->p;
  free(pc);
  int status = a->status;
  const char *body = a->body;
  size_t len = a->body_len;
  char *blocked = NULL;
  if (check_answer(f->c, a, &blocked)) {
    free(blocked);
    part_fail(p, status, "invalid-response");
    fanout_part_done(f);
    return;
  }
  if (status != 200) {
    part_fail(p, status, NULL);
    fanout_part_done(f);
    return;
  }
  cJSON *page = cJSON_ParseWithLength(body ? body : "", len);
  cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");
  if (!cJSON_IsArray(items)) {
    cJSON_Delete(page);
    part_fail(p, status, "invalid-response");
    fanout_part_done(f);
    return;
  }
  cJSON *it;
  while ((it = cJSON_DetachItemFromArray(items, 0)))
    cJSON_AddItemToArray(p->items, it);
  int more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "hasNextPage"));
  cJSON_Delete(page);
  if (more && p->page < f->c->g->conf->catalogue_max_pages) {
    p->page++;
    part_fetch(f, p);
    return;
  }
  if (more)
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){.connector = p->conn->conf->name, .latency_ms = -1},
              "catalogue has more than catalogue_max_pages (%d) pages; the rest is left out",
              f->c->g->conf->catalogue_max_pages);
  fanout_part_done(f);
}

static void part_fetch(fanout *f, part *p) {
  page_ctx *pc = malloc(sizeof *pc);
  char *query = okegw_asprintf("%s%spageSize=250&pageNumber=%d", f->base_query,
                               f->base_query[0] ? "&" : "", p->page);
  if (!pc || !query) {
    free(pc);
    free(query);
    part_fail(p, 503, "out-of-memory");
    fanout_part_done(f);
    return;
  }
  pc->f = f;
  pc->p = p;
  oke_request req = {.interaction = OKE_I_FLOW0_LIST_COMPONENTS,
                     .method = "GET",
                     .path = "/components",
                     .query = query,
                     .id = "",
                     .request_id = f->c->req->request_id};
  okegw_connector_deliver(p->conn, &req, NULL, on_page_done, pc);
  free(query);
}

/* The caller's query minus the parameters the gateway itself answers. */
static char *filter_query(const char *q) {
  okegw_buf b = {0};
  okegw_buf_append(&b, "", 0);
  const char *p = q;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    int skip = len == 0 || (len >= 9 && strncmp(p, "pageSize=", 9) == 0) ||
               (len >= 11 && strncmp(p, "pageNumber=", 11) == 0) ||
               (len >= 5 && strncmp(p, "sort=", 5) == 0);
    if (!skip) {
      if (b.len)
        okegw_buf_append(&b, "&", 1);
      okegw_buf_append(&b, p, len);
    }
    p += len;
    if (*p == '&')
      p++;
  }
  return b.data;
}

/* Every component names the test system it came from (otherCodes
 * x-testSystem), so TPL and DR can tell suppliers apart. */
static void tag_test_system(cJSON *item, const char *system) {
  cJSON *codes = cJSON_GetObjectItemCaseSensitive(item, "otherCodes");
  if (!cJSON_IsArray(codes)) {
    cJSON_DeleteItemFromObjectCaseSensitive(item, "otherCodes");
    codes = cJSON_AddArrayToObject(item, "otherCodes");
    if (!codes)
      return;
  }
  cJSON *e;
  cJSON_ArrayForEach(e, codes) {
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "codeType"));
    if (t && strcmp(t, "x-testSystem") == 0)
      return;
  }
  cJSON *entry = cJSON_CreateObject();
  cJSON_AddStringToObject(entry, "codeType", "x-testSystem");
  cJSON_AddStringToObject(entry, "code", system);
  cJSON_AddItemToArray(codes, entry);
}

static const char *lts_value(const cJSON *lts) {
  const cJSON *e;
  const char *first = NULL;
  cJSON_ArrayForEach(e, lts) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
    const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "language"));
    if (v && lang && strcmp(lang, "nl-NL") == 0)
      return v;
    if (v && !first)
      first = v;
  }
  return first ? first : "";
}

typedef struct sort_item {
  cJSON *item;
  const char *key;
  size_t seq;  /* stable order for equal keys */
  size_t part; /* index of the connector's part */
} sort_item;

/* Case-insensitive first, so "algebra" sorts next to "Algebra". */
static int cmp_items(const void *a, const void *b, void *desc) {
  const sort_item *x = a, *y = b;
  int r = strcasecmp(x->key, y->key);
  if (r == 0)
    r = strcmp(x->key, y->key);
  if (*(int *)desc)
    r = -r;
  if (r == 0)
    r = x->seq < y->seq ? -1 : x->seq > y->seq;
  return r;
}

static int parse_page_params(call *c, int *page_size, int *page_number) {
  char v[32];
  *page_size = 10;
  *page_number = 1;
  if (okegw_query_get(c->req->query, "pageSize", v, sizeof v)) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || (n != 10 && n != 20 && n != 50 && n != 100 && n != 250)) {
      finish_problem(c, 400, NULL, "pageSize must be one of 10, 20, 50, 100, 250; got '%s'", v);
      return -1;
    }
    *page_size = (int)n;
  }
  if (okegw_query_get(c->req->query, "pageNumber", v, sizeof v)) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || !*v || n < 1 || n > 1000000) {
      finish_problem(c, 400, NULL, "pageNumber must be a whole number from 1; got '%s'", v);
      return -1;
    }
    *page_number = (int)n;
  }
  if (okegw_query_get(c->req->query, "sort", v, sizeof v) && strcmp(v, "name") &&
      strcmp(v, "-name") && strcmp(v, "componentId") && strcmp(v, "-componentId")) {
    finish_problem(c, 400, NULL, "sort must be name, -name, componentId or -componentId; got '%s'",
                   v);
    return -1;
  }
  return 0;
}

static void catalogue_merge(fanout *f) {
  call *c = f->c;
  okegw_gateway *g = c->g;
  int page_size, page_number;
  okegw_buf failed = {0};
  size_t nfailed = 0, total = 0;

  for (size_t i = 0; i < f->nparts; i++) {
    part *p = &f->parts[i];
    if (p->failed) {
      okegw_log(OKEGW_LOG_WARN,
                &(okegw_log_fields){.connector = p->conn->conf->name,
                                    .interaction = "flow0.list_components",
                                    .request_id = c->req->request_id,
                                    .latency_ms = -1},
                "catalogue of connector '%s' left out of the merged page: %s", p->conn->conf->name,
                p->reason);
      okegw_buf_printf(&failed, "%s%s=%s", nfailed ? ", " : "", p->conn->conf->name, p->reason);
      nfailed++;
    }
    total += (size_t)cJSON_GetArraySize(p->items);
  }
  if (nfailed && nfailed == f->nparts) {
    finish_problem(c, 502, NULL, "no test supplier answered the catalogue request: %s",
                   failed.data);
    okegw_buf_free(&failed);
    fanout_free(f);
    return;
  }
  if (parse_page_params(c, &page_size, &page_number) < 0) {
    okegw_buf_free(&failed);
    fanout_free(f);
    return;
  }

  /* Collect every component with its part, in connector order. */
  sort_item *all = calloc(total ? total : 1, sizeof *all);
  size_t n = 0;
  for (size_t i = 0; all && i < f->nparts; i++) {
    cJSON *it;
    cJSON_ArrayForEach(it, f->parts[i].items) {
      const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "componentId"));
      if (!id)
        continue; /* no identity, no route: cannot be offered */
      all[n] = (sort_item){.item = it, .key = id, .seq = n, .part = i};
      n++;
    }
  }
  /* Duplicates by sorting on id (O(n log n) for large catalogues): the
   * first connector keeps a component that several offer. */
  int asc = 0;
  qsort_r(all, n, sizeof *all, cmp_items, &asc);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (kept && strcmp(all[kept - 1].key, all[i].key) == 0) {
      okegw_log(OKEGW_LOG_WARN,
                &(okegw_log_fields){.connector = f->parts[all[i].part].conn->conf->name,
                                    .latency_ms = -1},
                "component %s is offered by more than one connector; '%s' keeps it", all[i].key,
                f->parts[all[kept - 1].part].conn->conf->name);
      continue;
    }
    all[kept++] = all[i];
  }
  n = kept;
  /* Remember the owners, one store job per connector. */
  const char **ids = calloc(n ? n : 1, sizeof *ids);
  for (size_t i = 0; ids && i < f->nparts; i++) {
    size_t nids = 0;
    for (size_t k = 0; k < n; k++)
      if (all[k].part == i)
        ids[nids++] = all[k].key;
    if (nids)
      okegw_store_put(g->store, "component", ids, nids, f->parts[i].conn->conf->name, NULL, NULL);
  }
  free(ids);

  char sort[32] = "name";
  okegw_query_get(c->req->query, "sort", sort, sizeof sort);
  int desc = sort[0] == '-';
  int by_id = strcmp(desc ? sort + 1 : sort, "componentId") == 0;
  for (size_t i = 0; i < n; i++) {
    part *p = &f->parts[all[i].part];
    tag_test_system(all[i].item, p->conn->conf->test_system);
    if (!by_id)
      all[i].key = lts_value(cJSON_GetObjectItemCaseSensitive(all[i].item, "name"));
    all[i].seq = i;
  }
  qsort_r(all, n, sizeof *all, cmp_items, &desc);

  size_t start = (size_t)(page_number - 1) * (size_t)page_size;
  cJSON *out = cJSON_CreateObject();
  cJSON_AddNumberToObject(out, "pageSize", page_size);
  cJSON_AddNumberToObject(out, "pageNumber", page_number);
  cJSON_AddBoolToObject(out, "hasPreviousPage", page_number > 1);
  cJSON_AddBoolToObject(out, "hasNextPage", start + (size_t)page_size < n);
  cJSON_AddNumberToObject(out, "totalPages",
                          n ? (double)((n + (size_t)page_size - 1) / (size_t)page_size) : 1);
  cJSON *items = cJSON_AddArrayToObject(out, "items");
  for (size_t i = start; i < n && i < start + (size_t)page_size; i++)
    cJSON_AddItemReferenceToArray(items, all[i].item);
  char *extra = nfailed ? okegw_asprintf("Okegw-Failed-Connectors: %s\r\n", failed.data) : NULL;
  finish_json(c, 200, out, extra);
  free(extra);
  cJSON_Delete(out);
  free(all);
  okegw_buf_free(&failed);
  fanout_free(f);
}

static fanout *fanout_new(call *c) {
  fanout *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  f->c = c;
  f->parts = calloc(c->g->nconns ? c->g->nconns : 1, sizeof *f->parts);
  if (!f->parts) {
    free(f);
    return NULL;
  }
  for (size_t i = 0; i < c->g->nconns; i++) {
    okegw_connector *conn = &c->g->conns[i];
    if (!is_live_ta(conn))
      continue;
    part *p = &f->parts[f->nparts++];
    p->conn = conn;
    p->page = 1;
    p->items = cJSON_CreateArray();
  }
  return f;
}

static void list_components(call *c) {
  int ps, pn;
  if (parse_page_params(c, &ps, &pn) < 0)
    return;
  fanout *f = fanout_new(c);
  if (!f || !(f->base_query = filter_query(c->req->query))) {
    if (f)
      fanout_free(f);
    finish_problem(c, 503, NULL, "out of memory");
    return;
  }
  /* +1 so that parts answering synchronously cannot finish the merge
   * before every part has started. */
  f->pending = f->nparts + 1;
  for (size_t i = 0; i < f->nparts; i++)
    part_fetch(f, &f->parts[i]);
  fanout_part_done(f);
}

/* ---- flow 0: one component; finding an owner --------------------------- */

static void on_probe_done(void *ud, const okegw_answer *a) {
  fanout *f = ud;
  if (a && a->status == 200 && !f->probe_owner) {
    f->probe_owner = a->conn;
    f->probe_body = okegw_strndup(a->body ? a->body : "", a->body_len);
    f->probe_len = a->body_len;
    f->probe_ctype = okegw_strdup(a->content_type ? a->content_type : "application/json");
  }
  if (--f->pending)
    return;
  call *c = f->c;
  if (f->probe_owner) {
    const char *id = f->probe_id;
    okegw_store_put(c->g->store, "component", &id, 1, f->probe_owner->conf->name, NULL, NULL);
  }
  f->probe_done(c, f->probe_owner, f->probe_ctype, f->probe_body, f->probe_len);
  fanout_free(f);
}

/* Asks every live TA connector for component `id` (one the store does not
 * know yet, e.g. a catalogue the caller had before okegw). The first 200
 * wins and is recorded as the owner. */
static void probe_component(call *c, const char *id,
                            void (*done)(call *, okegw_connector *, const char *, const char *,
                                         size_t)) {
  fanout *f = fanout_new(c);
  if (!f || !(f->probe_id = okegw_strdup(id))) {
    if (f)
      fanout_free(f);
    finish_problem(c, 503, NULL, "out of memory");
    return;
  }
  f->probe_done = done;
  f->pending = f->nparts + 1;
  char *path = okegw_asprintf("/components/%s", id);
  for (size_t i = 0; i < f->nparts; i++) {
    oke_request req = {.interaction = OKE_I_FLOW0_GET_COMPONENT,
                       .method = "GET",
                       .path = path ? path : "/components",
                       .query = "",
                       .id = id,
                       .request_id = c->req->request_id};
    okegw_connector_deliver(f->parts[i].conn, &req, NULL, on_probe_done, f);
  }
  free(path);
  on_probe_done(f, NULL);
}

static void on_component_probed(call *c, okegw_connector *owner, const char *ctype,
                                const char *body, size_t len) {
  if (!owner) {
    finish_problem(c, 404, NULL, "component %s is not in the catalogue of any live test supplier",
                   c->id);
    return;
  }
  c->target = owner;
  finish(c, 200, ctype, body, len, NULL);
}

static void on_component_route(void *ud, const okegw_route *r) {
  call *c = ud;
  if (r->rc == OKEGW_STORE_OK) {
    deliver_to_named(c, r->connector);
  } else if (r->rc == OKEGW_STORE_NOTFOUND) {
    probe_component(c, c->id, on_component_probed);
  } else {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
  }
}

/* ---- flow 2: routing by the correlation store --------------------------- */

/* For a TPL, an id that is no zitting or deelname at a TA is one of the
 * DR's (planbare toets, toetsinschrijving): flow 1 reads, flow 5 results. */
static int dr_interaction(int flow2) {
  switch (flow2) {
  case OKE_I_FLOW2_GET_OFFERING: return OKE_I_FLOW1_GET_OFFERING;
  case OKE_I_FLOW2_LIST_ASSOCIATIONS: return OKE_I_FLOW1_LIST_ASSOCIATIONS;
  case OKE_I_FLOW2_GET_ASSOCIATION: return OKE_I_FLOW1_GET_ASSOCIATION;
  case OKE_I_FLOW2_PATCH_ASSOCIATION: return OKE_I_FLOW5_PATCH_ASSOCIATION;
  }
  return 0;
}

static void on_lookup(void *ud, const okegw_route *r) {
  call *c = ud;
  const char *kind = c->interaction == OKE_I_FLOW2_GET_OFFERING ||
                             c->interaction == OKE_I_FLOW2_PATCH_OFFERING ||
                             c->interaction == OKE_I_FLOW2_LIST_ASSOCIATIONS
                         ? "offering"
                         : "association";
  if (r->rc == OKEGW_STORE_OK) {
    deliver_to_named(c, r->connector);
  } else if (r->rc == OKEGW_STORE_NOTFOUND && dr_interaction(c->interaction)) {
    to_dr(c, dr_interaction(c->interaction),
          strcmp(kind, "offering") == 0 ? "planbare_toets" : "toetsinschrijving");
  } else if (r->rc == OKEGW_STORE_NOTFOUND) {
    finish_problem(c, 404, NULL, "%s %s is unknown to this gateway", kind, c->id);
  } else {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
  }
}

static void bind_offering(call *c);

static void on_offering_component_probed(call *c, okegw_connector *owner, const char *ctype,
                                         const char *body, size_t len) {
  (void)ctype;
  (void)body;
  (void)len;
  if (!owner) {
    finish_problem(c, 400, NULL,
                   "no live test supplier owns component %s, so the offering cannot be routed "
                   "(is the supplier's connector live, and is the component in its catalogue?)",
                   c->ref_id);
    return;
  }
  /* The owner was recorded before this ran (same store queue), so binding
   * again finds it. */
  c->interaction = -c->interaction;
  bind_offering(c);
}

static void on_bind(void *ud, const okegw_route *r) {
  call *c = ud;
  int offering =
      c->interaction == OKE_I_FLOW2_PUT_OFFERING || c->interaction == -OKE_I_FLOW2_PUT_OFFERING;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    if (offering && c->interaction > 0) {
      probe_component(c, c->ref_id, on_offering_component_probed);
      return;
    }
    if (c->interaction < 0)
      c->interaction = -c->interaction;
    if (c->interaction == OKE_I_FLOW5_PUT_ASSOCIATION)
      finish_problem(c, 404, NULL,
                     "toetsinschrijving %s (orgAssociationId) is unknown to this gateway",
                     c->ref_id);
    else if (offering)
      finish_problem(c, 400, NULL, "no live test supplier owns component %s", c->ref_id);
    else
      finish_problem(c, 400, NULL,
                     "offering %s is unknown to this gateway: PUT /offerings/%s first (the "
                     "zitting before its deelnames)",
                     c->ref_id, c->ref_id);
    return;
  }
  if (c->interaction < 0)
    c->interaction = -c->interaction;
  if (r->rc != OKEGW_STORE_OK) {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  if (r->existed && strcmp(r->prev_connector, r->connector) != 0) {
    finish_problem(c, 409, r->prev_connector,
                   "%s %s is already with connector '%s', but its %s %s belongs to connector "
                   "'%s': cancel it there and create a new one",
                   offering ? "offering" : "association", c->id, r->prev_connector,
                   offering ? "component" : "offering", c->ref_id, r->connector);
    return;
  }
  if (c->interaction == OKE_I_FLOW5_PUT_ASSOCIATION) {
    /* the DR fetches the attempt's documents from the planning system */
    char why[160];
    okegw_connector *tpl =
        c->caller ? c->caller : single_live(c->g, OKEGW_ROLE_TPL, why, sizeof why);
    if (tpl)
      remember_documents(c, tpl);
  }
  deliver_to_named(c, r->connector);
}

static void bind_offering(call *c) {
  if (okegw_store_bind(c->g->store, "offering", c->id, "component", c->ref_id, 0, on_bind, c) < 0)
    finish_problem(c, 503, NULL, "the gateway is shutting down");
}

/* A member of the body's consumers entry "nl-test-admin", as a string. */
static const char *nl_test_admin_field(const cJSON *body, const char *field) {
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, "consumers")) {
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "consumerKey"));
    if (k && strcmp(k, "nl-test-admin") == 0)
      return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, field));
  }
  return NULL;
}

/* The id of a reference that is either an id string or an embedded object
 * (OOAPI expand), e.g. offering.component or association.offering. */
static const char *ref_id(const cJSON *body, const char *field, const char *id_field) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, field);
  if (cJSON_IsString(v))
    return v->valuestring;
  if (cJSON_IsObject(v))
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, id_field));
  return NULL;
}

static int check_body(call *c, cJSON **out) {
  const char *ct = okegw_req_header(c->req, "Content-Type");
  if (ct && strncasecmp(ct, "application/json", 16) != 0 &&
      strncasecmp(ct, "application/merge-patch+json", 28) != 0) {
    finish_problem(c, 415, NULL,
                   "Content-Type must be application/json or application/merge-patch+json, "
                   "got '%s'",
                   ct);
    return -1;
  }
  if (!c->req->body || !c->req->body_len) {
    finish_problem(c, 400, NULL, "a JSON body is required");
    return -1;
  }
  cJSON *j = cJSON_ParseWithLength(c->req->body, c->req->body_len);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    finish_problem(c, 400, NULL, "the body is not a JSON object");
    return -1;
  }
  *out = j;
  return 0;
}

static void put_routed(call *c, const char *field, const char *id_field) {
  cJSON *body;
  if (check_body(c, &body) < 0)
    return;
  const char *ref = ref_id(body, field, id_field);
  if (!ref || !*ref || strlen(ref) >= sizeof c->ref_id) {
    cJSON_Delete(body);
    finish_problem(c, 400, NULL, "'%s' is required to route this request (pointer /%s)", field,
                   field);
    return;
  }
  snprintf(c->ref_id, sizeof c->ref_id, "%s", ref);
  c->body = body;
  const char *org = nl_test_admin_field(body, "orgAssociationId");
  if (c->interaction == OKE_I_FLOW2_PUT_ASSOCIATION && org) {
    /* an extra attempt (flow 5 PUT, only flow 5 carries orgAssociationId):
     * to the DR of the original toetsinschrijving; the new id becomes one of
     * its own */
    snprintf(c->ref_id, sizeof c->ref_id, "%.63s", org);
    c->interaction = OKE_I_FLOW5_PUT_ASSOCIATION;
    if (okegw_store_bind(c->g->store, "toetsinschrijving", c->id, "toetsinschrijving", c->ref_id, 0,
                         on_bind, c) < 0)
      finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  /* checked before anything is recorded: a refused zitting or deelname must
   * leave no route behind */
  if (refuse_invalid(c))
    return;
  c->validated = 1;
  if (c->interaction == OKE_I_FLOW2_PUT_OFFERING) {
    bind_offering(c);
  } else if (okegw_store_bind(c->g->store, "association", c->id, "offering", c->ref_id, 0, on_bind,
                              c) < 0) {
    finish_problem(c, 503, NULL, "the gateway is shutting down");
  }
}

static void lookup_routed(call *c, const char *kind) {
  if ((c->interaction == OKE_I_FLOW2_PATCH_OFFERING ||
       c->interaction == OKE_I_FLOW2_PATCH_ASSOCIATION)) {
    if (check_body(c, &c->body) < 0)
      return;
  }
  if (okegw_store_lookup(c->g->store, kind, c->id, on_lookup, c) < 0)
    finish_problem(c, 503, NULL, "the gateway is shutting down");
}

/* ---- flows 1, 5 and 6 --------------------------------------------------- */

static void on_dr_route(void *ud, const okegw_route *r) {
  call *c = ud;
  char why[160];
  if (r->rc == OKEGW_STORE_OK) {
    if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION && r->parent[0])
      snprintf(c->ref_id, sizeof c->ref_id, "%s", r->parent); /* an extra attempt's original */
    if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION ||
        c->interaction == OKE_I_FLOW5_PUT_ASSOCIATION) {
      /* the DR fetches flow-5 documents from the planning system */
      okegw_connector *tpl =
          c->caller ? c->caller : single_live(c->g, OKEGW_ROLE_TPL, why, sizeof why);
      if (tpl)
        remember_documents(c, tpl);
    }
    deliver_to_named(c, r->connector);
    return;
  }
  if (r->rc != OKEGW_STORE_NOTFOUND) {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION) {
    /* a result goes only to the DR that sent the toetsinschrijving */
    finish_problem(c, 404, NULL,
                   "association %s is neither a deelname at a test supplier nor a "
                   "toetsinschrijving received from a DR through this gateway",
                   c->id);
    return;
  }
  okegw_connector *dr = single_live(c->g, OKEGW_ROLE_DR, why, sizeof why);
  int any_dr = 0;
  for (size_t i = 0; i < c->g->nconns; i++)
    any_dr |= c->g->conns[i].conf->role == OKEGW_ROLE_DR;
  if (!dr && !any_dr && c->id[0]) {
    /* no DR behind this gateway: the id is simply unknown */
    finish_problem(c, 404, NULL, "%s is unknown to this gateway", c->id);
    return;
  }
  if (!dr) {
    finish_problem(c, 503, NULL, "cannot carry %s: %s", okegw_interaction_name(c->interaction),
                   why);
    return;
  }
  deliver_to(c, dr);
}

/* Flow 1 reads and flow 5 writes of a TPL: to the DR that owns the id when
 * okegw saw it pass (kind), else to the one live DR. */
static void to_dr(call *c, int interaction, const char *kind) {
  c->interaction = interaction;
  if (interaction == OKE_I_FLOW5_PATCH_ASSOCIATION && !c->body && check_body(c, &c->body) < 0)
    return;
  if (kind && c->id[0]) {
    if (okegw_store_lookup(c->g->store, kind, c->id, on_dr_route, c) < 0)
      finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  okegw_route none = {.rc = OKEGW_STORE_NOTFOUND};
  on_dr_route(c, &none);
}

static void on_flow1_recorded(void *ud, const okegw_route *r) {
  call *c = ud;
  char why[160];
  if (r->rc != OKEGW_STORE_OK) {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  okegw_connector *tpl = single_live(c->g, OKEGW_ROLE_TPL, why, sizeof why);
  if (!tpl) {
    finish_problem(c, 503, NULL, "cannot carry %s: %s", okegw_interaction_name(c->interaction),
                   why);
    return;
  }
  deliver_to(c, tpl);
}

/* Flow 1 push of a DR to the TPL. Planbare toetsen and toetsinschrijvingen
 * are recorded as the DR's first, so flow-5 results find their way back. */
static void flow1_push(call *c) {
  if (check_body(c, &c->body) < 0)
    return;
  const char *kind = c->interaction == OKE_I_FLOW1_PUT_OFFERING      ? "planbare_toets"
                     : c->interaction == OKE_I_FLOW1_PUT_ASSOCIATION ? "toetsinschrijving"
                                                                     : NULL;
  if (kind) {
    const char *id = c->id;
    if (okegw_store_put(c->g->store, kind, &id, 1, c->caller->conf->name, on_flow1_recorded, c) < 0)
      finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  okegw_route ok = {.rc = OKEGW_STORE_OK};
  on_flow1_recorded(c, &ok);
}

static void on_flow6_route(void *ud, const okegw_route *r) {
  call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){.connector = c->caller->conf->name,
                                  .interaction = okegw_interaction_name(c->interaction),
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "refused: connector '%s' asked for enrolments of person %s without a deelname",
              c->caller->conf->name, c->id);
    finish_problem(c, 403, c->caller->conf->name,
                   "connector '%s' holds no deelname of person %s, so it may not read that "
                   "person's enrolments (flow 6 data minimisation)",
                   c->caller->conf->name, c->id);
    return;
  }
  okegw_route none = {.rc = OKEGW_STORE_NOTFOUND};
  on_dr_route(c, r->rc == OKEGW_STORE_OK ? &none : r);
}

static void flow6(call *c) {
  char key[160];
  snprintf(key, sizeof key, "%s@%s", c->id, c->caller->conf->name);
  if (okegw_store_lookup(c->g->store, "ta_person", key, on_flow6_route, c) < 0)
    finish_problem(c, 503, NULL, "the gateway is shutting down");
}

/* ---- documents --------------------------------------------------------- */

/* Every documentId in a "documents" list anywhere in the body. */
static void collect_documents(const cJSON *j, const char **ids, size_t *n, size_t max) {
  for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
    if (e->string && strcmp(e->string, "documents") == 0 && cJSON_IsArray(e)) {
      const cJSON *d;
      cJSON_ArrayForEach(d, e) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "documentId"));
        if (id && *n < max && strlen(id) < 64)
          ids[(*n)++] = id;
      }
    } else if (cJSON_IsObject(e) || cJSON_IsArray(e)) {
      collect_documents(e, ids, n, max);
    }
  }
}

/* A document is served later by the system whose message referenced it:
 * remember that system for each documentId the body carries. A TA's
 * documents (flows 3, 4) and the TPL's (flow 5) are kept apart, since the
 * same id may pass both ways. */
static const char *document_kind(enum okegw_role holder) {
  return holder == OKEGW_ROLE_TPL ? "document@tpl" : "document@ta";
}

static void remember_documents(call *c, const okegw_connector *holder) {
  const char *ids[64];
  size_t n = 0;
  collect_documents(c->body, ids, &n, sizeof ids / sizeof ids[0]);
  if (n)
    okegw_store_put(c->g->store, document_kind(holder->conf->role), ids, n, holder->conf->name,
                    NULL, NULL);
}

static void on_document_route(void *ud, const okegw_route *r) {
  call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    finish_problem(c, 404, NULL,
                   "document %s was not referenced by any message through this "
                   "gateway",
                   c->id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  deliver_to_named(c, r->connector);
}

/* ---- supplier callbacks ------------------------------------------------ */

/* A supplier that does not speak OKE pushes results to
 * POST /callbacks/{connector}/...; its Lua mapping flow3.patch_association
 * (from_peer) turns the body into an OKE flow-3 result and names the deelname
 * in ctx.id. The result goes to the planning system only on the return route:
 * for a deelname this gateway delivered to that same connector. */

/* The TPL connector results go back to. Until callers are identified, that
 * is the one live TPL connector. */
static okegw_connector *single_live(okegw_gateway *g, enum okegw_role role, char *why,
                                    size_t whysz) {
  okegw_connector *found = NULL;
  size_t n = 0;
  for (size_t i = 0; i < g->nconns; i++) {
    okegw_connector *c = &g->conns[i];
    if (c->conf->role == role && c->conf->phase == OKEGW_PHASE_LIVE && c->ready) {
      found = c;
      n++;
    }
  }
  if (n == 1)
    return found;
  snprintf(why, whysz, "%s live %s connector (exactly one is needed)", n ? "more than one" : "no",
           okegw_role_name(role));
  return NULL;
}

static okegw_connector *return_tpl(okegw_gateway *g, char *why, size_t whysz) {
  return single_live(g, OKEGW_ROLE_TPL, why, whysz);
}

/* The return route (OKE ground rule 5): a TA's result (flow 3) or session
 * report (flow 4) goes back only for a deelname or zitting this gateway
 * delivered to that same TA, and only to the planning system. */
static void on_return_route(void *ud, const okegw_route *r) {
  call *c = ud;
  const char *from = c->target->conf->name;
  const char *what = c->interaction == OKE_I_FLOW4_PATCH_OFFERING ? "zitting" : "deelname";
  if (r->rc == OKEGW_STORE_NOTFOUND || (r->rc == OKEGW_STORE_OK && !r->confirmed)) {
    finish_problem(c, 404, from,
                   "%s %s was never delivered through this gateway, so it has no return route "
                   "(OKE ground rule 5)",
                   what, c->id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  if (strcmp(r->connector, from) != 0) {
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){.connector = from,
                                  .interaction = okegw_interaction_name(c->interaction),
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "refused: connector '%s' wrote to %s %s of connector '%s'", from, what, c->id,
              r->connector);
    finish_problem(c, 403, from,
                   "%s %s belongs to another connector: a supplier may only report on what it "
                   "was sent",
                   what, c->id);
    return;
  }
  char why[160];
  okegw_connector *tpl = return_tpl(c->g, why, sizeof why);
  if (!tpl) {
    finish_problem(c, 503, NULL, "cannot forward to the planning system: %s", why);
    return;
  }
  remember_documents(c, c->target);
  deliver_to(c, tpl);
}

/* Sends the call's body, as PATCH {kind}s/{id}, back to the planning system
 * once the return route is confirmed. */
static void return_to_planning(call *c, const char *kind) {
  if (!c->out_body)
    c->out_body = okegw_strndup(c->req->body ? c->req->body : "", c->req->body_len);
  c->out_method = "PATCH";
  snprintf(c->out_path, sizeof c->out_path, "/%ss/%s", kind, c->id);
  if (!c->out_body) {
    finish_problem(c, 503, NULL, "out of memory");
    return;
  }
  if (okegw_store_lookup(c->g->store, kind, c->id, on_return_route, c) < 0)
    finish_problem(c, 503, NULL, "the gateway is shutting down");
}

static int bearer_ok(const okegw_req *r, const char *token) {
  const char *h = okegw_req_header(r, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  size_t n = strlen(token);
  /* constant time, so the token cannot be guessed byte by byte */
  return strlen(h) == n && CRYPTO_memcmp(h, token, n) == 0;
}

static void supplier_callback(call *c, const char *rest) {
  okegw_gateway *g = c->g;
  char name[OKEGW_NAME_MAX];
  size_t len = strcspn(rest, "/");
  if (len == 0 || len >= sizeof name) {
    finish_problem(c, 404, NULL, "no callback at %s", c->req->path);
    return;
  }
  memcpy(name, rest, len);
  name[len] = '\0';
  okegw_connector *conn = connector_by_name(g, name);
  if (!conn || !conn->conf->callback_token) {
    finish_problem(c, 404, NULL, "no callbacks are configured for connector '%s'", name);
    return;
  }
  c->interaction = OKE_I_FLOW3_PATCH_ASSOCIATION;
  c->target = conn;
  if (strcmp(c->req->method, "POST") != 0) {
    char *body = okegw_problem_json(405, "Method Not Allowed", "callbacks take POST", name);
    finish(c, 405, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, "Allow: POST\r\n");
    free(body);
    return;
  }
  if (!bearer_ok(c->req, conn->conf->callback_token)) {
    finish(c, 401, OKEGW_PROBLEM_TYPE, NULL, 0, "WWW-Authenticate: Bearer\r\n");
    return;
  }
  if (conn->conf->phase == OKEGW_PHASE_OFF || !conn->ready) {
    finish_problem(c, 503, name, "connector '%s' is %s", name,
                   conn->ready ? "in phase off" : "not available");
    return;
  }
  if (check_body(c, &c->body) < 0)
    return;
  const char *id = okegw_interaction_name(c->interaction);
  if (!okegw_mapset_has(conn->maps, id, 1)) {
    finish_problem(c, 501, name,
                   "connector '%s' has no %s.lua with from_peer to turn its callback into an OKE "
                   "result",
                   name, id);
    return;
  }
  okegw_map_ctx ctx = {.connector = name,
                       .interaction = id,
                       .id = "",
                       .phase = okegw_phase_name(conn->conf->phase),
                       .conf = conn->conf,
                       .id_out = c->id,
                       .id_out_size = sizeof c->id};
  cJSON *mapped = NULL;
  char err[1024];
  snprintf(c->mapping, sizeof c->mapping, "%s", okegw_mapset_hash(conn->maps));
  if (okegw_mapset_run(conn->maps, id, 1, c->body, &ctx, &mapped, err, sizeof err) < 0) {
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = name,
                                  .interaction = id,
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "mapping of a callback failed: %s", err);
    finish_problem(c, 502, name, "%s", err);
    return;
  }
  if (!okegw_is_uuid(c->id)) {
    cJSON_Delete(mapped);
    finish_problem(c, 502, name,
                   "%s/%s.lua: from_peer must set ctx.id to the deelname (association) id, got "
                   "'%s'",
                   okegw_mapset_dir(conn->maps), id, c->id);
    return;
  }
  cJSON_Delete(c->body);
  c->body = mapped;
  c->out_body = okegw_json_print(mapped);
  if (!c->out_body) {
    finish_problem(c, 503, NULL, "out of memory");
    return;
  }
  return_to_planning(c, "association");
}

/* ---- GET / ------------------------------------------------------------- */

static void service_metadata(call *c) {
  const okegw_conf *conf = c->g->conf;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "contactEmail", conf->contact_email);
  cJSON_AddStringToObject(o, "specification", conf->specification_url);
  cJSON_AddStringToObject(o, "documentation", conf->documentation_url);
  cJSON *v = cJSON_AddArrayToObject(o, "supportedVersions");
  cJSON_AddItemToArray(v, cJSON_CreateString("v5"));
  cJSON *cons = cJSON_AddArrayToObject(o, "supportedConsumers");
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "consumerKey", "nl-test-admin");
  cJSON_AddStringToObject(e, "version", "1.0.1");
  cJSON_AddItemToArray(cons, e);
  finish_json(c, 200, o, NULL);
  cJSON_Delete(o);
}

/* ---- matching ---------------------------------------------------------- */

/* Who may call an interaction: okegw answers in the role the caller calls
 * (towards TPL it is the TA, towards a TA it is the TPL), so the same path
 * means different interactions for different callers (digest §1.7). */
enum { BY_TPL = 1, BY_TA = 2, BY_DR = 4 };

typedef struct route_def {
  const char *shape; /* segments; "{id}" matches one path id */
  const char *method;
  unsigned callers; /* BY_* */
  int interaction;
} route_def;

static const route_def routes[] = {
    {"components", "GET", BY_TPL | BY_DR, OKE_I_FLOW0_LIST_COMPONENTS},
    {"components/{id}", "GET", BY_TPL | BY_DR, OKE_I_FLOW0_GET_COMPONENT},
    {"offerings/{id}", "PUT", BY_TPL, OKE_I_FLOW2_PUT_OFFERING},
    {"offerings/{id}", "PATCH", BY_TPL, OKE_I_FLOW2_PATCH_OFFERING},
    {"offerings/{id}", "PATCH", BY_TA, OKE_I_FLOW4_PATCH_OFFERING},
    {"offerings/{id}", "GET", BY_TPL, OKE_I_FLOW2_GET_OFFERING},
    {"offerings/{id}/associations", "GET", BY_TPL, OKE_I_FLOW2_LIST_ASSOCIATIONS},
    {"associations/{id}", "PUT", BY_TPL, OKE_I_FLOW2_PUT_ASSOCIATION},
    {"associations/{id}", "PATCH", BY_TPL, OKE_I_FLOW2_PATCH_ASSOCIATION},
    {"associations/{id}", "PATCH", BY_TA, OKE_I_FLOW3_PATCH_ASSOCIATION},
    {"associations/{id}", "GET", BY_TPL, OKE_I_FLOW2_GET_ASSOCIATION},
    {"associations/{id}/url", "GET", BY_TPL, OKE_I_FLOW2_GET_ASSOCIATION_URL},
    /* flow 1 pull: the TPL reads at the DR (offering and association reads
     * that are not zittingen or deelnames fall through to the DR too) */
    {"offerings", "GET", BY_TPL, OKE_I_FLOW1_LIST_OFFERINGS},
    {"persons/{id}", "GET", BY_TPL, OKE_I_FLOW1_GET_PERSON},
    {"organizations/{id}", "GET", BY_TPL, OKE_I_FLOW1_GET_ORGANIZATION},
    {"groups", "GET", BY_TPL, OKE_I_FLOW1_LIST_GROUPS},
    {"groups/{id}", "GET", BY_TPL, OKE_I_FLOW1_GET_GROUP},
    {"groups/{id}/members", "GET", BY_TPL, OKE_I_FLOW1_LIST_GROUP_MEMBERS},
    /* flow 1 push: the DR writes at the TPL */
    {"offerings/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_OFFERING},
    {"offerings/{id}", "PATCH", BY_DR, OKE_I_FLOW1_PATCH_OFFERING},
    {"associations/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_ASSOCIATION},
    {"associations/{id}", "PATCH", BY_DR, OKE_I_FLOW1_PATCH_ASSOCIATION},
    {"persons/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_PERSON},
    {"groups/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_GROUP},
    {"groups/{id}/members/{sub}", "PUT", BY_DR, OKE_I_FLOW1_PUT_GROUP_MEMBER},
    /* documents: a TPL fetches them from the TA that referenced them (flows
     * 3, 4), a DR from the TPL (flow 5) */
    {"documents/{id}", "GET", BY_TPL | BY_DR, OKE_I_GET_DOCUMENT},
    /* flow 6: a TA reads programme enrolments at the DR */
    {"persons/{id}/associations", "GET", BY_TA, OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS},
};

static unsigned scope_of(int interaction) {
  switch (interaction) {
  case OKE_I_FLOW0_LIST_COMPONENTS:
  case OKE_I_FLOW0_GET_COMPONENT: return OKEGW_SCOPE_FLOW0;
  case OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS: return OKEGW_SCOPE_FLOW6;
  default: break;
  }
  return interaction >= OKE_I_FLOW1_LIST_OFFERINGS && interaction <= OKE_I_FLOW5_PUT_ASSOCIATION
             ? OKEGW_SCOPE_FLOW15
             : OKEGW_SCOPE_FLOW234;
}

/* Documents are flow 3/4 for a TPL and flow 5 for a DR. */
static unsigned scope_for(const call *c) {
  if (c->interaction == OKE_I_GET_DOCUMENT && c->caller && c->caller->conf->role == OKEGW_ROLE_DR)
    return OKEGW_SCOPE_FLOW15;
  return scope_of(c->interaction);
}

static unsigned caller_bit(const okegw_connector *caller) {
  if (!caller)
    return BY_TPL; /* no identities configured: the caller is the school's TPL */
  switch (caller->conf->role) {
  case OKEGW_ROLE_TA: return BY_TA;
  case OKEGW_ROLE_DR: return BY_DR;
  case OKEGW_ROLE_TPL: return BY_TPL;
  }
  return 0;
}

/* Finds the connector whose inbound_token the request presents. Every token
 * is compared in constant time, so timing tells nothing about any of them.
 * Returns 0 (caller set, or anonymous when no identities are configured) or
 * the status to refuse with. */
static int identify(call *c) {
  okegw_gateway *g = c->g;
  const char *h = okegw_req_header(c->req, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0)
    return g->identity ? 401 : 0;
  okegw_connector *found = NULL;
  for (size_t i = 0; i < g->nconns; i++)
    if (g->conns[i].conf->inbound_token && bearer_ok(c->req, g->conns[i].conf->inbound_token))
      found = &g->conns[i];
  if (!found)
    return 401;
  c->caller = found;
  return 0;
}

/* Matches "a/b/c" against a shape; copies the {id} segment into id. */
static int shape_match(const char *shape, const char *path, char *id, char *sub, size_t idsz) {
  while (*shape && *path) {
    const char *ss = strchr(shape, '/'), *ps = strchr(path, '/');
    size_t sl = ss ? (size_t)(ss - shape) : strlen(shape);
    size_t pl = ps ? (size_t)(ps - path) : strlen(path);
    int is_id = sl == 4 && strncmp(shape, "{id}", 4) == 0;
    int is_sub = sl == 5 && strncmp(shape, "{sub}", 5) == 0;
    if (is_id || is_sub) {
      if (pl == 0 || pl >= idsz)
        return 0;
      memcpy(is_id ? id : sub, path, pl);
      (is_id ? id : sub)[pl] = '\0';
    } else if (sl != pl || strncmp(shape, path, sl) != 0) {
      return 0;
    }
    shape += sl + (ss ? 1 : 0);
    path += pl + (ps ? 1 : 0);
    if (!ss != !ps)
      return 0;
  }
  return !*shape && !*path;
}

void okegw_gateway_handle(okegw_req *req, void *ud) {
  okegw_gateway *g = ud;
  call *c = calloc(1, sizeof *c);
  if (!c) {
    okegw_respond_problem(req, 503, "Service Unavailable", "out of memory");
    return;
  }
  c->g = g;
  c->req = req;
  const char *path = req->path;

  if (strcmp(path, "/healthz") == 0) {
    finish(c, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL);
    return;
  }
  if (strncmp(path, "/callbacks/", 11) == 0) {
    supplier_callback(c, path + 11);
    return;
  }
  size_t blen = strlen(g->conf->base_path);
  if (strncmp(path, g->conf->base_path, blen) != 0 || (path[blen] && path[blen] != '/')) {
    finish_problem(c, 404, NULL, "no OKE resource at %s (the OKE base path is '%s')", path,
                   g->conf->base_path);
    return;
  }
  c->oke_path = path + blen;
  const char *rel = c->oke_path[0] == '/' ? c->oke_path + 1 : c->oke_path;
  if (!*rel) {
    if (strcmp(req->method, "GET") != 0) {
      finish(c, 405, OKEGW_PROBLEM_TYPE, NULL, 0, "Allow: GET\r\n");
      return;
    }
    service_metadata(c);
    return;
  }

  int refuse = identify(c);
  if (refuse) {
    char *body = okegw_problem_json(401, "Unauthorized",
                                    "present the bearer token this system was given for okegw "
                                    "(its connector's inbound_token)",
                                    NULL);
    finish(c, 401, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0,
           "WWW-Authenticate: Bearer\r\n");
    free(body);
    return;
  }
  unsigned who = caller_bit(c->caller);
  char allow[64] = "";
  int matched_path = 0, other_caller = 0;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    char id[sizeof c->id] = "", sub[sizeof c->sub_id] = "";
    if (!shape_match(routes[i].shape, rel, id, sub, sizeof id))
      continue;
    matched_path = 1;
    if (strcmp(routes[i].method, req->method) != 0) {
      size_t used = strlen(allow);
      if (!strstr(allow, routes[i].method))
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
      continue;
    }
    if (!(routes[i].callers & who)) {
      other_caller = 1;
      continue;
    }
    c->interaction = routes[i].interaction;
    memcpy(c->id, id, sizeof id);
    memcpy(c->sub_id, sub, sizeof sub);
    break;
  }
  if (!c->interaction && other_caller) {
    finish_problem(c, 403, c->caller ? c->caller->conf->name : NULL,
                   "a %s system may not %s %s (OKE lets other roles do that)",
                   c->caller ? okegw_role_name(c->caller->conf->role) : "tpl", req->method, path);
    return;
  }
  if (!c->interaction) {
    if (matched_path) {
      char *body = okegw_problem_json(405, "Method Not Allowed", "method not allowed here", NULL);
      char hdr[96];
      snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
      finish(c, 405, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, hdr);
      free(body);
    } else {
      finish_problem(c, 404, NULL, "no OKE interaction at %s", path);
    }
    return;
  }
  if ((c->id[0] && !okegw_is_uuid(c->id)) || (c->sub_id[0] && !okegw_is_uuid(c->sub_id))) {
    finish_problem(c, 400, NULL, "an id in the path is not a UUID: %s", path);
    return;
  }
  if (g->stopping) {
    finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  if (c->caller) {
    unsigned scope = scope_for(c);
    if (!(c->caller->conf->scopes & scope)) {
      finish_problem(
          c, 403, c->caller->conf->name, "connector '%s' does not have the scope %s that %s needs",
          c->caller->conf->name, okegw_scope_name(scope), okegw_interaction_name(c->interaction));
      return;
    }
    if (c->caller->conf->phase == OKEGW_PHASE_OFF) {
      finish_problem(c, 503, c->caller->conf->name,
                     "connector '%s' is in phase off: okegw does not carry its requests yet",
                     c->caller->conf->name);
      return;
    }
  }

  switch (c->interaction) {
  case OKE_I_FLOW1_LIST_OFFERINGS:
  case OKE_I_FLOW1_LIST_GROUPS: to_dr(c, c->interaction, NULL); break;
  case OKE_I_FLOW1_GET_PERSON:
  case OKE_I_FLOW1_GET_ORGANIZATION:
  case OKE_I_FLOW1_GET_GROUP:
  case OKE_I_FLOW1_LIST_GROUP_MEMBERS: to_dr(c, c->interaction, NULL); break;
  case OKE_I_FLOW1_PUT_OFFERING:
  case OKE_I_FLOW1_PATCH_OFFERING:
  case OKE_I_FLOW1_PUT_ASSOCIATION:
  case OKE_I_FLOW1_PATCH_ASSOCIATION:
  case OKE_I_FLOW1_PUT_PERSON:
  case OKE_I_FLOW1_PUT_GROUP:
  case OKE_I_FLOW1_PUT_GROUP_MEMBER: flow1_push(c); break;
  case OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS: flow6(c); break;
  case OKE_I_GET_DOCUMENT:
    /* a TPL fetches from a TA, a DR from the TPL: not from just anyone */
    if (okegw_store_lookup(g->store,
                           document_kind(c->caller && c->caller->conf->role == OKEGW_ROLE_DR
                                             ? OKEGW_ROLE_TPL
                                             : OKEGW_ROLE_TA),
                           c->id, on_document_route, c) < 0)
      finish_problem(c, 503, NULL, "the gateway is shutting down");
    break;
  case OKE_I_FLOW3_PATCH_ASSOCIATION:
  case OKE_I_FLOW4_PATCH_OFFERING:
    if (check_body(c, &c->body) < 0)
      return;
    c->target = c->caller;
    return_to_planning(c, c->interaction == OKE_I_FLOW3_PATCH_ASSOCIATION ? "association"
                                                                          : "offering");
    break;
  case OKE_I_FLOW0_LIST_COMPONENTS: list_components(c); break;
  case OKE_I_FLOW0_GET_COMPONENT:
    if (okegw_store_lookup(g->store, "component", c->id, on_component_route, c) < 0)
      finish_problem(c, 503, NULL, "the gateway is shutting down");
    break;
  case OKE_I_FLOW2_PUT_OFFERING: put_routed(c, "component", "componentId"); break;
  case OKE_I_FLOW2_PUT_ASSOCIATION: put_routed(c, "offering", "offeringId"); break;
  case OKE_I_FLOW2_PATCH_OFFERING:
  case OKE_I_FLOW2_GET_OFFERING:
  case OKE_I_FLOW2_LIST_ASSOCIATIONS: lookup_routed(c, "offering"); break;
  default: lookup_routed(c, "association"); break;
  }
}

/* ---- lifetime ---------------------------------------------------------- */

int okegw_gateway_load_mappings(const okegw_conf *conf, const okegw_conf_connector *cc,
                                okegw_mapset **out, okegw_diag *diag) {
  okegw_map_limits lim = {.memory_bytes = conf->lua_memory_bytes,
                          .instructions = conf->lua_instructions,
                          .lib_dir = conf->scripts_lib};
  okegw_diag local = {0};
  okegw_diag *d = diag ? diag : &local;
  int rc = okegw_mapset_load(cc->scripts, !cc->scripts_explicit, &lim, out, d);
  if (!diag) {
    for (size_t i = 0; i < local.n; i++)
      okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = cc->name, .latency_ms = -1}, "%s",
                local.msgs[i]);
    okegw_diag_free(&local);
  }
  return rc;
}

void okegw_gateway_reload(okegw_gateway *g) {
  size_t changed = 0, failed = 0;
  for (size_t i = 0; i < g->nconns; i++) {
    okegw_connector *c = &g->conns[i];
    if (!c->plugin)
      continue;
    okegw_mapset *fresh = NULL;
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = c->conf->name;
    if (okegw_gateway_load_mappings(g->conf, c->conf, &fresh, NULL) < 0) {
      failed++;
      f.mapping = okegw_mapset_hash(c->maps);
      okegw_log(OKEGW_LOG_ERROR, &f, "mappings of '%s' not reloaded: the previous version stays",
                c->conf->name);
      continue;
    }
    if (strcmp(okegw_mapset_hash(fresh), okegw_mapset_hash(c->maps)) == 0) {
      okegw_mapset_unref(fresh);
      continue;
    }
    /* Exchanges in flight hold their own reference to the old set. */
    okegw_mapset_unref(c->maps);
    c->maps = fresh;
    changed++;
    f.mapping = okegw_mapset_hash(fresh);
    okegw_log(OKEGW_LOG_INFO, &f, "mappings of '%s' reloaded", c->conf->name);
    if (!c->ready && !c->initialised) {
      /* disabled at startup by its mappings only: start it now */
      free(c->error);
      c->error = NULL;
      if (okegw_connector_init(c, g->loop, g->http, g->conf->request_timeout_ms) == 0)
        okegw_log(OKEGW_LOG_INFO, &f, "connector '%s' ready", c->conf->name);
      else
        okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' still disabled: %s", c->conf->name,
                  c->error ? c->error : "?");
    }
  }
  okegw_log(OKEGW_LOG_INFO, NULL, "reload: %zu connector(s) with new mappings, %zu failed", changed,
            failed);
}

int okegw_gateway_start(uv_loop_t *loop, okegw_conf *conf, okegw_gateway **out) {
  okegw_gateway *g = calloc(1, sizeof *g);
  if (!g)
    return -1;
  g->loop = loop;
  g->conf = conf;
  char *err = NULL;
  if (okegw_store_open(loop, conf->store, &g->store, &err) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "%s", err ? err : "cannot open the store");
    free(err);
    free(g);
    return -1;
  }
  if (okegw_http_init(loop, &g->http) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot initialise the HTTP client");
    okegw_store_close(g->store, NULL, NULL);
    free(g);
    return -1;
  }
  g->conns = calloc(conf->nconnectors ? conf->nconnectors : 1, sizeof *g->conns);
  g->nconns = conf->nconnectors;
  for (size_t i = 0; g->conns && i < conf->nconnectors; i++) {
    okegw_connector *c = &g->conns[i];
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = conf->connectors[i].name;
    /* A refused plugin or broken mapping disables only its own connector;
     * a SIGHUP with fixed scripts brings it up later. */
    if (okegw_connector_load(c, conf, &conf->connectors[i], NULL) < 0) {
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' disabled: %s", f.connector,
                c->error ? c->error : "?");
      continue;
    }
    c->loop = loop;
    c->http = g->http;
    c->max_document_bytes = conf->max_document_bytes;
    if (okegw_gateway_load_mappings(conf, &conf->connectors[i], &c->maps, NULL) < 0) {
      free(c->error);
      c->error = okegw_strdup("its Lua mappings do not compile (see the log); fix them and send "
                              "SIGHUP");
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' disabled: %s", f.connector, c->error);
      continue;
    }
    if (okegw_connector_init(c, loop, g->http, conf->request_timeout_ms) < 0) {
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' disabled: %s", f.connector,
                c->error ? c->error : "?");
      continue;
    }
    f.mapping = okegw_mapset_hash(c->maps);
    okegw_log(OKEGW_LOG_INFO, &f,
              "connector '%s' ready: plugin %s %s, role %s, phase %s, mappings %s (%s)",
              f.connector, c->plugin->name, c->plugin->version ? c->plugin->version : "",
              okegw_role_name(c->conf->role), okegw_phase_name(c->conf->phase),
              okegw_mapset_dir(c->maps), f.mapping);
  }
  for (size_t i = 0; i < g->nconns; i++)
    if (conf->connectors[i].inbound_token)
      g->identity = 1;
  if (!g->identity)
    okegw_log(OKEGW_LOG_WARN, NULL,
              "no connector has an inbound_token: every caller is trusted as the school's TPL "
              "(fine for a demo; give each calling system its own token before going live)");
  okegw_server_opts so = {.host = conf->listen_host,
                          .port = conf->listen_port,
                          .max_header_bytes = conf->max_header_bytes,
                          .max_body_bytes = conf->max_body_bytes,
                          .idle_timeout_ms = conf->idle_timeout_ms,
                          .max_connections = conf->max_connections,
                          .handler = okegw_gateway_handle,
                          .ud = g};
  int rc = okegw_server_start(loop, &so, &g->server);
  if (rc < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot listen on %s:%d: %s", conf->listen_host,
              conf->listen_port, uv_strerror(rc));
    *out = g;
    return -1;
  }
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.addr = conf->listen_host;
  f.port = okegw_server_port(g->server);
  okegw_log(OKEGW_LOG_INFO, &f, "listening");
  *out = g;
  return 0;
}

static void on_store_closed(void *arg) {
  okegw_gateway *g = arg;
  void (*cb)(void *) = g->stopped;
  void *cb_arg = g->stopped_arg;
  okegw_server_free(g->server);
  free(g->conns);
  free(g);
  if (cb)
    cb(cb_arg);
}

static void on_drained(void *arg) {
  okegw_gateway *g = arg;
  /* No request is left; plugins may still have exchanges only when their
   * guard fired, and those end with the HTTP client. */
  okegw_http_close(g->http);
  for (size_t i = 0; i < g->nconns; i++)
    okegw_connector_unload(&g->conns[i]);
  okegw_store_close(g->store, on_store_closed, g);
}

void okegw_gateway_stop(okegw_gateway *g, void (*done)(void *), void *arg) {
  if (g->stopping)
    return;
  g->stopping = 1;
  g->stopped = done;
  g->stopped_arg = arg;
  okegw_log(OKEGW_LOG_INFO, NULL, "draining %zu open request(s)",
            g->server ? okegw_server_in_flight(g->server) : (size_t)0);
  if (g->server)
    okegw_server_drain(g->server, on_drained, g);
  else
    on_drained(g);
}
