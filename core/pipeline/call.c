/* A request on its way through the gateway: answering it, handing it to a
 * connector, and the checks on the way (scope, phase, OKE profile). */
#include "pipeline/call.h"
#include "oke/interaction.h"
#include "base/json.h"
#include "base/log.h"
#include "oke/problem.h"
#include "base/util.h"
#include "oke/validate.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void call_free(okegw_call *c) {
  cJSON_Delete(c->body);
  free(c->out_body);
  free(c);
}

/* ---- answering --------------------------------------------------------- */

/* Hex SHA-256 of a body ("" for none). */
static void sha256_hex(const char *body, size_t len, char out[65]) {
  out[0] = '\0';
  if (!body || !len)
    return;
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)body, len, md);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

/* The request body's digest, computed once for the audit row and the push. */
static const char *call_digest(okegw_call *c) {
  if (!c->digest[0])
    sha256_hex(c->req->body, c->req->body_len, c->digest);
  return c->digest;
}

/* The audit row of the call (after its answer is known). */
static void audit(okegw_call *c, int status, double latency_ms) {
  const char *digest = call_digest(c);
  okegw_audit_rec r = {.request_id = c->req->request_id,
                       .interaction =
                           c->interaction ? okegw_interaction_name(c->interaction) : NULL,
                       .caller = c->caller ? c->caller->conf->name : NULL,
                       .connector = c->target ? c->target->conf->name : NULL,
                       .method = c->req->method,
                       .path = c->req->path,
                       .resource_id = c->id,
                       .mapping = strcmp(c->mapping, "-") ? c->mapping : NULL,
                       .body_sha256 = digest,
                       .event = "request",
                       .status = status,
                       .latency_ms = latency_ms,
                       .delivery_id = c->delivery_id};
  okegw_store_audit(c->g->store, &r);
}

void okegw_finish(okegw_call *c, int status, const char *ctype, const char *body, size_t len,
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
  if (c->interaction)
    audit(c, status, f.latency_ms);
  okegw_respond(c->req, status, ctype, body, len, extra_headers);
  call_free(c);
}

/* A document passes through piece by piece: never whole in memory, never
 * inlined in JSON. */
static void doc_begin(void *ud, okegw_connector *conn, int status, const char *ctype) {
  okegw_call *c = ud;
  c->target = conn;
  c->stream_status = status;
  okegw_respond_begin(c->req, status, ctype ? ctype : "application/octet-stream", NULL);
}

static int doc_write(void *ud, const char *data, size_t len) {
  okegw_call *c = ud;
  c->stream_bytes += len;
  return okegw_respond_write(c->req, data, len) < 0 ? -1 : 0;
}

static void doc_end(void *ud, int ok) {
  okegw_call *c = ud;
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
  audit(c, ok ? c->stream_status : 502, f.latency_ms);
  okegw_respond_end(c->req, ok);
  call_free(c);
}

static const okegw_stream_ops document_stream = {doc_begin, doc_write, doc_end};

void okegw_finish_problem(okegw_call *c, int status, const char *connector, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  char *body = okegw_problem_json(status, okegw_status_text(status), detail, connector);
  okegw_finish(c, status, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, NULL);
  free(body);
}

void okegw_finish_json(okegw_call *c, int status, cJSON *j, const char *extra_headers) {
  char *body = j ? okegw_json_print(j) : NULL;
  if (!body) {
    okegw_finish_problem(c, 500, NULL, "out of memory");
    return;
  }
  okegw_finish(c, status, "application/json", body, strlen(body), extra_headers);
  free(body);
}

/* ---- connectors -------------------------------------------------------- */

okegw_connector *okegw_connector_by_name(okegw_gateway *g, const char *name) {
  for (size_t i = 0; i < g->nconns; i++)
    if (strcmp(g->conns[i].conf->name, name) == 0)
      return &g->conns[i];
  return NULL;
}

/* A TA connector ICT has set live. One whose plugin or mappings failed to
 * load still counts: it shows up as failed, not as silently missing. */
int okegw_is_live_ta(const okegw_connector *c) {
  return c->conf->role == OKEGW_ROLE_TA && c->conf->phase == OKEGW_PHASE_LIVE;
}

/* A zitting or deelname counts as delivered once its TA said 2xx: only then
 * does it open the return route (flows 3, 4) and flow 6 for its person. The
 * outbox calls this before the sender hears back; the store runs its jobs in
 * order, so the sender's next request already finds what this opened. */
void okegw_on_delivered(void *ud, okegw_connector *conn, const okegw_delivery_rec *d,
                        const cJSON *body) {
  okegw_gateway *g = ud;
  int in = okegw_interaction_by_name(d->interaction);
  if ((in != OKE_I_FLOW2_PUT_OFFERING && in != OKE_I_FLOW2_PUT_ASSOCIATION) || !d->resource_id)
    return;
  okegw_store *st = g->store;
  const char *name = conn->conf->name;
  if (in == OKE_I_FLOW2_PUT_ASSOCIATION) {
    /* flow 6 lets a TA read the enrolments of persons it holds a deelname
     * for, and no others: remember whose deelname this is */
    cJSON *own = body || !d->body ? NULL : cJSON_ParseWithLength(d->body, d->body_len);
    const cJSON *person = cJSON_GetObjectItemCaseSensitive(body ? body : own, "person");
    const char *pid =
        cJSON_IsObject(person)
            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(person, "personId"))
            : cJSON_GetStringValue(person);
    char key[160];
    if (pid && strlen(pid) < 64) {
      snprintf(key, sizeof key, "%s@%s", pid, name);
      const char *k = key;
      okegw_store_put(st, "ta_person", &k, 1, name, NULL, NULL);
    }
    cJSON_Delete(own);
  }
  okegw_connector *caller = d->caller ? okegw_connector_by_name(g, d->caller) : NULL;
  if (in == OKE_I_FLOW2_PUT_OFFERING && caller && caller->conf->role == OKEGW_ROLE_TPL) {
    /* results and reports go back to the TPL that planned the zitting */
    const char *id = d->resource_id;
    okegw_store_put(st, "planned_by", &id, 1, caller->conf->name, NULL, NULL);
  }
  okegw_store_confirm(st, in == OKE_I_FLOW2_PUT_OFFERING ? "offering" : "association",
                      d->resource_id, NULL, NULL);
}

/* Passes a peer's answer on (502 instead when the connector blocks answers
 * that break the profile); `headers` go first, then the plugin's own. */
static void relay(okegw_call *c, const okegw_answer *a, const char *headers) {
  snprintf(c->mapping, sizeof c->mapping, "%s", a->mapping ? a->mapping : "-");
  char *blocked = NULL;
  int block = okegw_check_answer(c, a, &blocked);
  char *hdr = okegw_asprintf("%s%s", headers ? headers : "",
                             !block && a->extra_headers ? a->extra_headers : "");
  if (block)
    okegw_finish(c, 502, OKEGW_PROBLEM_TYPE, blocked, blocked ? strlen(blocked) : 0, hdr);
  else
    okegw_finish(c, a->status, a->content_type, a->body, a->body_len, hdr);
  free(hdr);
  free(blocked);
}

static void on_routed_done(void *ud, const okegw_answer *a) { relay(ud, a, NULL); }

/* ---- pushes (the outbox) ----------------------------------------------- */

static void add_ms(cJSON *o, const char *name, long long ms) {
  if (ms) {
    char t[40];
    okegw_format_rfc3339(ms, 1, t, sizeof t);
    cJSON_AddStringToObject(o, name, t);
  }
}

/* The delivery-status resource (GET /deliveries/{id}, and a 202's body). */
static cJSON *delivery_json(const okegw_delivery_rec *d) {
  cJSON *o = cJSON_CreateObject();
  char href[48];
  snprintf(href, sizeof href, "/deliveries/%lld", d->id);
  cJSON_AddNumberToObject(o, "id", (double)d->id);
  cJSON_AddStringToObject(o, "state", okegw_delivery_state_name(d->state));
  cJSON_AddStringToObject(o, "connector", d->connector ? d->connector : "");
  cJSON_AddStringToObject(o, "interaction", d->interaction ? d->interaction : "");
  if (d->resource_id)
    cJSON_AddStringToObject(o, "resourceId", d->resource_id);
  add_ms(o, "createdAt", d->created_ms);
  cJSON_AddNumberToObject(o, "attempts", d->attempts);
  if (d->last_status)
    cJSON_AddNumberToObject(o, "lastStatus", d->last_status);
  if (d->last_error)
    cJSON_AddStringToObject(o, "lastError", d->last_error);
  if (d->state == OKEGW_DLV_PENDING)
    add_ms(o, "nextAttemptAt", d->next_ms);
  add_ms(o, "deliveredAt", d->delivered_ms);
  cJSON_AddStringToObject(o, "href", href);
  return o;
}

static void refuse_unstored(okegw_call *c) {
  okegw_finish_problem(c, 503, NULL,
                       "the push could not be stored, so it was not accepted: send it again");
}

static void on_pushed(void *ud, const okegw_push_result *r) {
  okegw_call *c = ud;
  if (r->rc != OKEGW_STORE_OK) {
    refuse_unstored(c);
    return;
  }
  c->delivery_id = r->id;
  char hdr[96];
  if (r->answer) {
    /* it ended in time: the sender gets the peer's own answer */
    snprintf(hdr, sizeof hdr, "Okegw-Delivery: %lld\r\n", r->id);
    relay(c, r->answer, hdr);
    return;
  }
  /* durable and under way: okegw carries on (202) */
  snprintf(hdr, sizeof hdr, "Location: /deliveries/%lld\r\nOkegw-Delivery: %lld\r\n", r->id, r->id);
  cJSON *o = delivery_json(r->rec);
  okegw_finish_json(c, 202, o, hdr);
  cJSON_Delete(o);
}

static int is_push(const char *method) {
  return strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
}

static void push(okegw_call *c, okegw_connector *conn, const oke_request *req) {
  if (!conn->ready) {
    okegw_finish_problem(c, 503, conn->conf->name, "connector '%s' is not available: %s",
                         conn->conf->name, conn->error ? conn->error : "not initialised");
    return;
  }
  /* what leaves is mostly what came in (a flow-3 result is returned as is) */
  const okegw_req *in = c->req;
  char own[65];
  const char *digest = own;
  if (req->body_len == in->body_len &&
      (!req->body_len || req->body == in->body || !memcmp(req->body, in->body, req->body_len)))
    digest = call_digest(c);
  else
    sha256_hex(req->body, req->body_len, own);
  okegw_push p = {.interaction = c->interaction,
                  .caller = c->caller ? c->caller->conf->name : NULL,
                  .resource_id = req->id,
                  .method = req->method,
                  .path = req->path,
                  .query = req->query,
                  .content_type = req->content_type,
                  .body = req->body,
                  .body_len = req->body_len,
                  .body_sha256 = digest,
                  .request_id = req->request_id};
  int rc = okegw_outbox_push(c->g->outbox, conn, &p, c->body, on_pushed, c);
  if (rc == OKEGW_OUTBOX_FULL) {
    char *body = okegw_problem_json(
        503, "Service Unavailable",
        "okegw holds as many undelivered pushes as it may (outbox_max_open); this one was not "
        "accepted: send it again later",
        conn->conf->name);
    okegw_finish(c, 503, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, "Retry-After: 60\r\n");
    free(body);
  } else if (rc < 0) {
    refuse_unstored(c);
  }
}

static void on_delivery_read(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)id;
  okegw_call *c = ud;
  /* with identities, a sender sees its own deliveries only */
  int mine = n && (!c->g->identity ||
                   (c->caller && recs[0].caller && !strcmp(recs[0].caller, c->caller->conf->name)));
  if (rc == OKEGW_STORE_OK && mine) {
    cJSON *o = delivery_json(&recs[0]);
    okegw_finish_json(c, 200, o, NULL);
    cJSON_Delete(o);
  } else if (rc == OKEGW_STORE_ERROR) {
    okegw_finish_problem(c, 500, NULL, "the store failed; see the gateway log");
  } else {
    okegw_finish_problem(c, 404, NULL, "no delivery %s of yours", c->id);
  }
  for (size_t i = 0; i < n; i++)
    okegw_delivery_rec_free(&recs[i]);
  free(recs);
}

void okegw_delivery_status(okegw_call *c, const char *id) {
  char *end;
  long long n = strtoll(id, &end, 10);
  snprintf(c->id, sizeof c->id, "%.40s", id);
  if (strcmp(c->req->method, "GET") != 0) {
    okegw_finish(c, 405, OKEGW_PROBLEM_TYPE, NULL, 0, "Allow: GET\r\n");
    return;
  }
  if (end == id || *end || n <= 0) {
    okegw_finish_problem(c, 404, NULL, "no delivery %s", c->id);
    return;
  }
  if (okegw_store_delivery_get(c->g->store, n, on_delivery_read, c) < 0)
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
}

/* Every request body is checked against the OKE profile once its
 * interaction is settled, right before it leaves: 400 with every violation
 * and its JSON pointer, nothing forwarded. Returns 1 when refused. */
int okegw_refuse_invalid(okegw_call *c) {
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
    okegw_finish(c, 400, OKEGW_PROBLEM_TYPE, body, strlen(body), NULL);
  else
    okegw_finish_problem(c, 503, NULL, "out of memory while validating");
  free(body);
  return 1;
}

/* A peer's JSON answer checked against the profile. 0 = pass it on (perhaps
 * with a warning logged); 1 = the connector blocks invalid answers and *out
 * holds the 502 problem body to send instead. */
int okegw_check_answer(okegw_call *c, const okegw_answer *a, char **out) {
  *out = NULL;
  if (!a->conn || a->conn->conf->validate_answers == OKEGW_CHECK_OFF || a->status != 200 ||
      !a->body_len)
    return 0;
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, OKEGW_BODY_RESPONSE, okegw_answer_json(a), NULL, &v);
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

/* The single exit towards a connector: scope for the settled interaction,
 * the connector's phase, the profile check, then the exchange (documents
 * streamed; pushes through the outbox). */
void okegw_deliver_to(okegw_call *c, okegw_connector *conn) {
  c->target = conn;
  /* the interaction may have been settled only now (a TPL's PATCH of a
   * toetsinschrijving is flow 5): check the caller's scope for it */
  if (c->caller && !(c->caller->conf->scopes & okegw_scope_for(c))) {
    okegw_finish_problem(c, 403, c->caller->conf->name,
                         "connector '%s' does not have the scope %s that %s needs",
                         c->caller->conf->name, okegw_scope_name(okegw_scope_for(c)),
                         okegw_interaction_name(c->interaction));
    return;
  }
  if (conn->conf->phase == OKEGW_PHASE_OFF) {
    okegw_finish_problem(c, 503, conn->conf->name,
                         "connector '%s' is in phase off: it carries no traffic until ICT sets its "
                         "phase in plugins.conf",
                         conn->conf->name);
    return;
  }
  if (c->body && !c->validated && okegw_refuse_invalid(c))
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
  else if (is_push(req.method))
    push(c, conn, &req);
  else
    okegw_connector_deliver(conn, &req, c->body, on_routed_done, c);
}

/* A route from the store names a connector; it may have left plugins.conf. */
void okegw_deliver_to_named(okegw_call *c, const char *name) {
  okegw_connector *conn = okegw_connector_by_name(c->g, name);
  if (!conn) {
    okegw_finish_problem(c, 503, name,
                         "connector '%s' owns this resource but is no longer configured", name);
    return;
  }
  okegw_deliver_to(c, conn);
}

okegw_connector *okegw_single_live(okegw_gateway *g, enum okegw_role role, char *why,
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

okegw_connector *okegw_return_tpl(okegw_gateway *g, char *why, size_t whysz) {
  return okegw_single_live(g, OKEGW_ROLE_TPL, why, whysz);
}

unsigned okegw_scope_of(int interaction) {
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
unsigned okegw_scope_for(const okegw_call *c) {
  if (c->interaction == OKE_I_GET_DOCUMENT && c->caller && c->caller->conf->role == OKEGW_ROLE_DR)
    return OKEGW_SCOPE_FLOW15;
  return okegw_scope_of(c->interaction);
}
