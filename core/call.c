/* A request on its way through the gateway: answering it, handing it to a
 * connector, and the checks on the way (scope, phase, OKE profile). */
#include "call.h"
#include "interaction.h"
#include "json.h"
#include "log.h"
#include "problem.h"
#include "util.h"
#include "validate.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void call_free(okegw_call *c) {
  cJSON_Delete(c->body);
  free(c->held_ctype);
  free(c->held_body);
  free(c->out_body);
  free(c);
}

/* ---- answering --------------------------------------------------------- */

/* The audit row of the call (after its answer is known). */
static void audit(okegw_call *c, int status, double latency_ms) {
  char digest[65] = "";
  if (c->req->body && c->req->body_len) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)c->req->body, c->req->body_len, md);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
      digest[2 * i] = hex[md[i] >> 4];
      digest[2 * i + 1] = hex[md[i] & 15];
    }
    digest[64] = '\0';
  }
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
                       .status = status,
                       .latency_ms = latency_ms};
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
 * caller hears back after that is durable. */
static void on_confirmed(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc != OKEGW_STORE_OK)
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = c->target ? c->target->conf->name : NULL,
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "could not record the delivery of %s; its results will be refused", c->id);
  okegw_finish(c, c->held_status, c->held_ctype, c->held_body, c->held_len, NULL);
}

static void confirm_delivery(okegw_call *c, const okegw_answer *a) {
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
  if (c->interaction == OKE_I_FLOW2_PUT_OFFERING && c->caller &&
      c->caller->conf->role == OKEGW_ROLE_TPL) {
    /* results and reports go back to the TPL that planned the zitting */
    const char *id = c->id;
    okegw_store_put(st, "planned_by", &id, 1, c->caller->conf->name, NULL, NULL);
  }
  const char *kind = c->interaction == OKE_I_FLOW2_PUT_OFFERING ? "offering" : "association";
  if (!c->held_body || okegw_store_confirm(st, kind, c->id, on_confirmed, c) < 0)
    okegw_finish(c, a->status, a->content_type, a->body, a->body_len, NULL);
}

static void on_routed_done(void *ud, const okegw_answer *a) {
  okegw_call *c = ud;
  snprintf(c->mapping, sizeof c->mapping, "%s", a->mapping);
  char *blocked = NULL;
  if (okegw_check_answer(c, a, NULL, &blocked)) {
    okegw_finish(c, 502, OKEGW_PROBLEM_TYPE, blocked, blocked ? strlen(blocked) : 0, NULL);
    free(blocked);
    return;
  }
  if ((c->interaction == OKE_I_FLOW2_PUT_OFFERING ||
       c->interaction == OKE_I_FLOW2_PUT_ASSOCIATION) &&
      a->status >= 200 && a->status < 300) {
    confirm_delivery(c, a);
    return;
  }
  okegw_finish(c, a->status, a->content_type, a->body, a->body_len, a->extra_headers);
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
int okegw_check_answer(okegw_call *c, const okegw_answer *a, const cJSON *parsed, char **out) {
  *out = NULL;
  if (!a->conn || a->conn->conf->validate_answers == OKEGW_CHECK_OFF || a->status != 200 ||
      !a->body_len)
    return 0;
  cJSON *own = parsed ? NULL : cJSON_ParseWithLength(a->body, a->body_len);
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, OKEGW_BODY_RESPONSE, parsed ? parsed : own, NULL, &v);
  cJSON_Delete(own);
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
 * streamed). */
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
