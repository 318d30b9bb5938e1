/* The answer stage (see answer.h). */
#include "pipeline/answer.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "oke/interaction.h"
#include "oke/problem.h"
#include "oke/validate.h"
#include "ops/metrics.h"
#include "pipeline/generation.h"
#include "pipeline/workers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void call_free(okegw_call *c) {
  okegw_gen_unref(c->gen);
  cJSON_Delete(c->body);
  free(c->out_body);
  free(c->violations);
  free(c->records.facts);
  free(c);
}

const char *okegw_call_digest(okegw_call *c) {
  if (!c->digest[0] && c->req->body_len)
    okegw_sha256_hex(c->req->body, c->req->body_len, c->digest);
  return c->digest;
}

/* The request line's log fields. */
static okegw_log_fields call_fields(okegw_call *c, int status) {
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.method = c->req->head ? "HEAD" : c->req->method;
  f.path = c->req->path;
  f.status = status;
  f.request_id = c->req->request_id;
  f.latency_ms = okegw_now_ms() - c->req->start_ms;
  f.interaction = c->interaction ? okegw_interaction_name(c->interaction) : NULL;
  f.connector = c->target ? c->target->conf->name : NULL;
  f.caller = c->caller ? c->caller->conf->name : NULL;
  f.mapping = c->mapping[0] && strcmp(c->mapping, "-") ? c->mapping : NULL;
  return f;
}

/* The audit row of the call (after its answer is known). */
static void audit(okegw_call *c, int status, double latency_ms) {
  if (!c->interaction)
    return;
  okegw_audit_rec r = {.request_id = c->req->request_id,
                       .interaction = okegw_interaction_name(c->interaction),
                       .caller = c->caller ? c->caller->conf->name : NULL,
                       .connector = c->target ? c->target->conf->name : NULL,
                       .method = c->req->method,
                       .path = c->req->path,
                       .resource_id = c->id,
                       .mapping = strcmp(c->mapping, "-") ? c->mapping : NULL,
                       .body_sha256 = okegw_call_digest(c),
                       .event = c->event ? c->event : "request",
                       .status = status,
                       .latency_ms = latency_ms,
                       .delivery_id = c->delivery_id,
                       .rules = c->rules[0] ? c->rules : NULL,
                       .phase = c->target ? okegw_phase_name(c->target->conf->phase) : NULL,
                       .violations = c->violations,
                       .mapping_error = c->mapping_error[0] ? c->mapping_error : NULL};
  okegw_store_audit(c->g->store, &r);
}

/* The call's metrics: by the connector that carried it; an audited one is
 * also traffic of that connector or else of its caller. */
static void count(okegw_call *c, int status, double latency_ms) {
  okegw_metrics_request(c->g->metrics, c->target ? c->target->metrics : NULL,
                        c->caller ? c->caller->metrics : NULL, c->interaction, status,
                        latency_ms / 1000);
  okegw_metrics_loop_request(c->g->metrics, okegw_worker_index(c->g));
}

void okegw_call_note_mapping(okegw_call *c, const okegw_answer *a) {
  if (a->mapping_error && !c->mapping_error[0])
    snprintf(c->mapping_error, sizeof c->mapping_error, "%s", a->mapping_error);
}

void okegw_call_note_violations(okegw_call *c, const okegw_violations *v, const char *side) {
  for (size_t i = 0; v && i < v->n; i++)
    okegw_metrics_violation(c->g->metrics, c->interaction, v->v[i].rule, side);
  if (!c->violations && v && v->n)
    c->violations = okegw_violations_evidence(v, side, 10);
}

void okegw_answer_send(okegw_call *c, int status, const char *ctype, const char *body, size_t len,
                       const char *extra_headers) {
  okegw_log_fields f = call_fields(c, status);
  okegw_log(status >= 500 ? OKEGW_LOG_WARN : OKEGW_LOG_INFO, &f, "request");
  count(c, status, f.latency_ms);
  audit(c, status, f.latency_ms);
  okegw_respond(c->req, status, ctype, body, len, extra_headers);
  call_free(c);
}

static void problem_v(okegw_call *c, int status, const char *connector, const char *headers,
                      const char *fmt, va_list ap) {
  char detail[1024];
  vsnprintf(detail, sizeof detail, fmt, ap);
  char *body = okegw_problem_json(status, okegw_status_text(status), detail, connector);
  okegw_answer_send(c, status, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, headers);
  free(body);
}

void okegw_answer_problem(okegw_call *c, int status, const char *connector, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  problem_v(c, status, connector, NULL, fmt, ap);
  va_end(ap);
}

void okegw_answer_problem_h(okegw_call *c, int status, const char *connector,
                            const char *extra_headers, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  problem_v(c, status, connector, extra_headers, fmt, ap);
  va_end(ap);
}

void okegw_answer_unknown(okegw_call *c, const char *connector, const char *fmt, ...) {
  const char *path = okegw_interaction_path(c->interaction);
  int assoc_patch =
      strcmp(c->req->method, "PATCH") == 0 && path && strncmp(path, "/associations/", 14) == 0;
  va_list ap;
  va_start(ap, fmt);
  problem_v(c, assoc_patch ? 400 : 404, connector, NULL, fmt, ap);
  va_end(ap);
}

void okegw_answer_withheld(okegw_call *c) {
  c->event = "withheld";
  c->target = c->caller; /* the exchange ran with the shadow supplier only */
  okegw_log(OKEGW_LOG_INFO,
            &(okegw_log_fields){.connector = c->caller->conf->name,
                                .interaction = okegw_interaction_name(c->interaction),
                                .request_id = c->req->request_id,
                                .resource = c->id,
                                .latency_ms = -1},
            "withheld: connector '%s' reports on %s, which it received only as a copy of "
            "connector '%s' (mirror_of); checked and recorded, not forwarded",
            c->caller->conf->name, c->id, c->caller->conf->mirror_of);
  /* the supplier under trial goes on as if its planner had taken it */
  okegw_answer_send(c, 200, "application/json", c->out_body ? c->out_body : "{}",
                    c->out_body ? strlen(c->out_body) : 2, "Okegw-Withheld: shadow\r\n");
}

void okegw_answer_send_json(okegw_call *c, int status, const cJSON *j, const char *extra_headers) {
  char *body = j ? okegw_json_print(j) : NULL;
  if (!body) {
    okegw_answer_problem(c, 500, NULL, "out of memory");
    return;
  }
  okegw_answer_send(c, status, "application/json", body, strlen(body), extra_headers);
  free(body);
}

void okegw_answer_store_down(okegw_call *c) {
  okegw_answer_problem_h(c, 503, NULL, "Retry-After: 5\r\n",
                         "the store cannot take work now (the gateway is shutting down or its "
                         "store failed); send the request again");
}

void okegw_answer_store_failed(okegw_call *c) {
  okegw_answer_problem_h(c, 503, NULL, "Retry-After: 5\r\n",
                         "the store failed (see the gateway log); nothing was recorded or sent: "
                         "send the request again later");
}

/* ---- a peer's answer --------------------------------------------------- */

int okegw_answer_check(okegw_call *c, const okegw_answer *a, char **out) {
  *out = NULL;
  if (!a->conn || a->conn->conf->validate_answers == OKEGW_CHECK_OFF || a->status != 200 ||
      !a->body_len || !okegw_validate_has_body(c->interaction, OKEGW_BODY_RESPONSE))
    return 0;
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, OKEGW_BODY_RESPONSE, okegw_answer_json(a), NULL, &v);
  if (n <= 0) {
    okegw_violations_free(&v);
    return 0;
  }
  int block = a->conn->conf->validate_answers == OKEGW_CHECK_BLOCK;
  okegw_call_note_violations(c, &v, "answer");
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

void okegw_answer_relay(okegw_call *c, const okegw_answer *a, const char *headers) {
  okegw_answer_relay_as(c, a, a->status, headers);
}

void okegw_answer_relay_as(okegw_call *c, const okegw_answer *a, int status, const char *headers) {
  snprintf(c->mapping, sizeof c->mapping, "%s", a->mapping ? a->mapping : "-");
  okegw_call_note_mapping(c, a);
  char *blocked = NULL;
  int block = okegw_answer_check(c, a, &blocked);
  char *hdr = okegw_asprintf("%s%s", headers ? headers : "",
                             !block && a->extra_headers ? a->extra_headers : "");
  if (block)
    okegw_answer_send(c, 502, OKEGW_PROBLEM_TYPE, blocked, blocked ? strlen(blocked) : 0, hdr);
  else
    okegw_answer_send(c, status, a->content_type, a->body, a->body_len, hdr);
  free(hdr);
  free(blocked);
}

void okegw_answer_relay_cb(void *ud, const okegw_answer *a) { okegw_answer_relay(ud, a, NULL); }

/* ---- documents: streamed, never whole in memory ------------------------ */

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
  okegw_log_fields f = call_fields(c, c->stream_status);
  f.mapping = NULL;
  okegw_log(ok ? OKEGW_LOG_INFO : OKEGW_LOG_WARN, &f, ok ? "request" : "request (cut off)");
  count(c, ok ? c->stream_status : 502, f.latency_ms);
  audit(c, ok ? c->stream_status : 502, f.latency_ms);
  okegw_respond_end(c->req, ok);
  call_free(c);
}

const okegw_stream_ops okegw_answer_stream = {doc_begin, doc_write, doc_end};
