/* The dispatch stage (see dispatch.h). */
#include "pipeline/dispatch.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "oke/interaction.h"
#include "oke/problem.h"
#include "oke/validate.h"
#include "pipeline/answer.h"
#include "pipeline/mirror.h"
#include "pipeline/state.h"
#include "pipeline/workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_to(okegw_call *c);
static void relay(void *ud, const okegw_answer *a);

/* Checked before anything is recorded, and again as the push is stored
 * (pushes recorded meanwhile may have filled it). */
static void outbox_full(okegw_call *c) {
  okegw_answer_problem_h(c, 503, c->target->conf->name, "Retry-After: 60\r\n",
                         "okegw holds as many undelivered pushes as it may (outbox_max_open); "
                         "this one was not accepted: send it again later");
}
static int push(okegw_call *c, const oke_request *req);

/* ---- the profile check --------------------------------------------------- */

int okegw_dispatch_check(okegw_call *c) {
  if (!c->body || c->validated)
    return 0;
  c->validated = 1;
  if (okegw_state_documents(c) < 0)
    return -1;
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
  okegw_call_note_violations(c, &v, "request");
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
    okegw_answer_send(c, 400, OKEGW_PROBLEM_TYPE, body, strlen(body), NULL);
  else
    okegw_answer_problem(c, 503, NULL, "out of memory while validating");
  free(body);
  return -1;
}

/* What leaves is what the interaction carries: fields of another flow (R11)
 * and, in a cancel (R18), a result or a session report, every field the
 * receiver ignores are removed (logged at debug) - fewer surprises for a
 * strict peer, and no personal data where none is needed. */
static int prune(okegw_call *c) {
  char removed[256];
  int n = c->body ? okegw_validate_prune(c->interaction, c->body, removed, sizeof removed) : 0;
  if (n == 0)
    return 0;
  char *text = okegw_json_print(c->body);
  if (!text) {
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return -1;
  }
  okegw_log(OKEGW_LOG_DEBUG,
            &(okegw_log_fields){.interaction = okegw_interaction_name(c->interaction),
                                .request_id = c->req->request_id,
                                .resource = c->id,
                                .latency_ms = -1},
            "not forwarded, as this interaction does not carry them: %s", removed);
  free(c->out_body);
  c->out_body = text;
  if (!c->out_method) {
    c->out_method = c->req->method;
    snprintf(c->out_path, sizeof c->out_path, "%s", c->oke_path);
  }
  return 0;
}

/* ---- records: what the message opens ------------------------------------- */

/* Every documentId in a "documents" list anywhere in the body, in its
 * lower-case form (GET /documents/{id} is looked up so). */
static void collect_documents(const cJSON *j, char (*ids)[64], size_t *n, size_t max) {
  for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
    if (e->string && strcmp(e->string, "documents") == 0 && cJSON_IsArray(e)) {
      const cJSON *d;
      cJSON_ArrayForEach(d, e) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "documentId"));
        if (id && *n < max && strlen(id) < 64) {
          snprintf(ids[*n], 64, "%s", id);
          okegw_uuid_lower(ids[(*n)++]);
        }
      }
    } else if (cJSON_IsObject(e) || cJSON_IsArray(e)) {
      collect_documents(e, ids, n, max);
    }
  }
}

static void on_documents_claimed(void *ud, const okegw_route *r) {
  char *what = ud;
  if (r->rc == OKEGW_STORE_OK && r->existed)
    okegw_log(OKEGW_LOG_WARN, &(okegw_log_fields){.connector = r->connector, .latency_ms = -1},
              "%s names a document that connector '%s' referenced first; the document stays "
              "with '%s'",
              what, r->prev_connector, r->prev_connector);
  free(what);
}

/* A document is served later by the system whose message referenced it, to
 * the system that message went to. A TA's documents (flows 3, 4) and the
 * TPL's (flow 5) are kept apart, since the same id may pass both ways
 * (route.c reads them by the same kinds). Recorded once: a later message
 * naming the same documentId (another supplier's, by mistake or not) never
 * re-points it. */
static void record_documents(okegw_call *c) {
  const okegw_connector *holder = c->records.documents;
  char ids[64][64];
  const char *idp[64];
  size_t n = 0;
  collect_documents(c->body, ids, &n, sizeof ids / sizeof ids[0]);
  for (size_t i = 0; i < n; i++)
    idp[i] = ids[i];
  char *what = n ? okegw_asprintf("%s %s from connector '%s'",
                                  okegw_interaction_name(c->interaction), c->id, holder->conf->name)
                 : NULL;
  if (what &&
      okegw_store_claim(
          c->g->store, holder->conf->role == OKEGW_ROLE_TPL ? "document@tpl" : "document@ta", idp,
          n, holder->conf->name, c->target->conf->name, NULL, on_documents_claimed, what) < 0)
    free(what);
}

static void on_owned(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_store_failed(c);
    return;
  }
  if (r->existed) {
    okegw_answer_problem(c, 409, NULL,
                         "%s %s was sent by another system (connector '%s'); a DR changes only "
                         "what it sent",
                         c->records.own_kind, c->id, r->prev_connector);
    return;
  }
  c->records.own_kind = NULL;
  send_to(c);
}

static void on_bound(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  const char *kind = c->records.bind_kind;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_answer_problem(c, 404, NULL, "%s %s is no longer known to this gateway", kind, c->ref_id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_store_failed(c);
    return;
  }
  if (r->existed && c->caller && r->owner[0] && strcmp(r->owner, c->caller->conf->name) != 0) {
    /* a zitting or deelname id stays with the planning system that sent it
     * first: results of its candidates go back there */
    okegw_answer_problem(
        c, 409, NULL, "%s %s is planned by another planning system; choose a new id", kind, c->id);
    return;
  }
  if ((r->existed && strcmp(r->prev_connector, r->connector) != 0) ||
      strcmp(r->connector, c->target->conf->name) != 0) {
    const char *prev = r->existed ? r->prev_connector : r->connector;
    okegw_answer_problem(c, 409, prev,
                         "%s %s is already with connector '%s', but its %s %s belongs to "
                         "connector '%s': cancel it there and create a new one",
                         kind, c->id, prev, c->records.bind_parent_kind, c->ref_id,
                         c->target->conf->name);
    return;
  }
  c->created = r->existed ? 200 : 201;
  c->records.bind_kind = NULL;
  send_to(c);
}

/* Writes what the checked message opens, then sends it. A route is bound
 * first: its store job also refuses an id that another connector holds. */
static void send_to(okegw_call *c) {
  okegw_records *rec = &c->records;
  int rc = 0;
  if (rec->bind_kind) {
    /* the owner of a zitting or deelname is its planning system */
    const char *owner = c->caller && c->caller->conf->role == OKEGW_ROLE_TPL &&
                                strcmp(rec->bind_kind, "toetsinschrijving") != 0
                            ? c->caller->conf->name
                            : NULL;
    rc = okegw_store_bind(c->g->store, rec->bind_kind, c->id, rec->bind_parent_kind, c->ref_id,
                          owner, rec->facts, on_bound, c);
  } else if (rec->own_kind) {
    const char *id = c->id;
    rc = okegw_store_claim(c->g->store, rec->own_kind, &id, 1, c->caller->conf->name, NULL,
                           rec->facts, on_owned, c);
  } else {
    if (rec->documents) {
      record_documents(c);
      rec->documents = NULL;
    }
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
      req.content_type =
          strcmp(c->out_method, "PATCH") == 0 ? "application/merge-patch+json" : "application/json";
    }
    if (c->interaction == OKE_I_GET_DOCUMENT) {
      okegw_connector_deliver_stream(c->target, &req, okegw_answer_relay_cb, &okegw_answer_stream,
                                     c);
    } else if (!strcmp(req.method, "PUT") || !strcmp(req.method, "PATCH")) {
      /* the live push first: its copies may never take its place */
      if (push(c, &req) == 0)
        okegw_mirror_start(c, &req, 1);
    } else {
      okegw_mirror_start(c, &req, 0);
      okegw_connector_deliver(c->target, &req, c->body, relay, c);
    }
    return;
  }
  if (rc < 0)
    okegw_answer_store_down(c);
}

void okegw_dispatch(okegw_call *c) {
  if (okegw_dispatch_check(c) < 0 || prune(c) < 0)
    return;
  const char *m = c->out_method ? c->out_method : c->req->method;
  int pushing = !strcmp(m, "PUT") || !strcmp(m, "PATCH");
  if (pushing && !okegw_store_healthy(c->g->store)) {
    /* never acknowledge what could not be kept */
    okegw_answer_problem_h(c, 503, NULL, "Retry-After: 5\r\n",
                           "the store takes no writes now, so okegw cannot accept a push; send "
                           "it again later");
    return;
  }
  if (pushing && okegw_gateway_outbox_full(c->g)) {
    outbox_full(c);
    return;
  }
  send_to(c);
}

/* ---- pushes: the outbox -------------------------------------------------- */

/* A read's answer: to the mirrors' comparison, then to the caller. */
static void relay(void *ud, const okegw_answer *a) {
  okegw_call *c = ud;
  if (c->mirror)
    okegw_mirror_live(c, a->status, okegw_answer_json(a));
  okegw_answer_relay(c, a, NULL);
}

static void on_pushed(void *ud, const okegw_push_result *r) {
  okegw_call *c = ud;
  if (c->mirror)
    okegw_mirror_live(c,
                      r->rc != OKEGW_STORE_OK ? 0
                      : r->answer             ? r->answer->status
                                              : 202,
                      r->rc == OKEGW_STORE_OK && r->answer ? okegw_answer_json(r->answer) : NULL);
  if (r->rc == OKEGW_OUTBOX_FULL) { /* another loop filled it meanwhile */
    outbox_full(c);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_problem_h(c, 503, NULL, "Retry-After: 5\r\n",
                           "the push could not be stored, so it was not accepted: send it again");
    return;
  }
  c->delivery_id = r->id;
  char hdr[96];
  if (r->answer) {
    /* it ended in time: the sender gets the peer's own answer; whether a PUT
     * created or replaced (R13) okegw knows better than a peer that says
     * 200 or 201 for either */
    snprintf(hdr, sizeof hdr, "Okegw-Delivery: %lld\r\n", r->id);
    int st = r->answer->status;
    okegw_answer_relay_as(c, r->answer, c->created && (st == 200 || st == 201) ? c->created : st,
                          hdr);
    return;
  }
  /* durable and under way: okegw carries on (202) */
  snprintf(hdr, sizeof hdr, "Location: /deliveries/%lld\r\nOkegw-Delivery: %lld\r\n", r->id, r->id);
  cJSON *o = okegw_delivery_json(r->rec, OKEGW_DELIVERY_JSON_PUBLIC);
  okegw_answer_send_json(c, 202, o, hdr);
  cJSON_Delete(o);
}

/* 0 when the push is stored and on_pushed will run; else it was answered. */
static int push(okegw_call *c, const oke_request *req) {
  /* what leaves is mostly what came in (a flow-3 result is returned as is) */
  const okegw_req *in = c->req;
  char own[65];
  const char *digest = own;
  if (req->body_len == in->body_len &&
      (!req->body_len || req->body == in->body || !memcmp(req->body, in->body, req->body_len)))
    digest = okegw_call_digest(c);
  else if (req->body_len)
    okegw_sha256_hex(req->body, req->body_len, own);
  else
    own[0] = '\0';
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
  int rc = okegw_gateway_push(c->g, c->target, &p, c->body, on_pushed, c);
  if (rc == OKEGW_OUTBOX_FULL)
    outbox_full(c);
  else if (rc < 0)
    okegw_answer_problem_h(c, 503, NULL, "Retry-After: 5\r\n",
                           "the push could not be stored, so it was not accepted: send it again");
  return rc < 0 ? -1 : 0;
}

/* A zitting or deelname counts as delivered once its TA said 2xx: only then
 * does it open the return route (flows 3, 4) and flow 6 for its person. The
 * outbox writes these with the delivery's end, in one transaction, before
 * the next delivery of the resource goes. */
size_t okegw_dispatch_delivered(void *ud, okegw_connector *conn, const okegw_delivery_rec *d,
                                const cJSON *body, okegw_route_write *out) {
  okegw_gateway *g = ud;
  int in = okegw_interaction_by_name(d->interaction);
  /* a shadow connector's copy opens nothing: the zitting is the live one's */
  if (!d->resource_id ||
      strncmp(d->resource, OKEGW_MIRROR_PREFIX, strlen(OKEGW_MIRROR_PREFIX)) == 0)
    return 0;
  if (in != OKE_I_FLOW2_PUT_OFFERING && in != OKE_I_FLOW2_PUT_ASSOCIATION) {
    /* results and cancels change what okegw knows of the exam */
    cJSON *own = body || !d->body ? NULL : cJSON_ParseWithLength(d->body, d->body_len);
    size_t n = okegw_state_delivered(in, d->resource_id, conn->conf->name, body ? body : own, out,
                                     OKEGW_DELIVERED_WRITES);
    cJSON_Delete(own);
    return n;
  }
  const char *name = conn->conf->name;
  size_t n = 0;
  if (in == OKE_I_FLOW2_PUT_ASSOCIATION) {
    /* flow 6 lets a TA read the enrolments of persons it holds a deelname
     * for, and no others: remember whose deelname this is */
    cJSON *own = body || !d->body ? NULL : cJSON_ParseWithLength(d->body, d->body_len);
    const cJSON *person = cJSON_GetObjectItemCaseSensitive(body ? body : own, "person");
    const char *pid =
        cJSON_IsObject(person)
            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(person, "personId"))
            : cJSON_GetStringValue(person);
    if (pid && strlen(pid) < 64) {
      out[n] = (okegw_route_write){.op = OKEGW_RW_PUT};
      snprintf(out[n].kind, sizeof out[n].kind, "ta_person");
      snprintf(out[n].id, sizeof out[n].id, "%s@%s", pid, name);
      snprintf(out[n].connector, sizeof out[n].connector, "%s", name);
      n++;
    }
    cJSON_Delete(own);
  }
  okegw_connector *caller = d->caller && g->gen ? okegw_connector_by_name(g->gen, d->caller) : NULL;
  if (in == OKE_I_FLOW2_PUT_OFFERING && caller && caller->conf->role == OKEGW_ROLE_TPL) {
    /* results and reports go back to the TPL that planned the zitting (for
     * routes recorded before they had an owner) */
    out[n] = (okegw_route_write){.op = OKEGW_RW_PUT};
    snprintf(out[n].kind, sizeof out[n].kind, "planned_by");
    snprintf(out[n].id, sizeof out[n].id, "%s", d->resource_id);
    snprintf(out[n].connector, sizeof out[n].connector, "%s", caller->conf->name);
    n++;
  }
  out[n] = (okegw_route_write){.op = OKEGW_RW_CONFIRM};
  snprintf(out[n].kind, sizeof out[n].kind, "%s",
           in == OKE_I_FLOW2_PUT_OFFERING ? "offering" : "association");
  snprintf(out[n].id, sizeof out[n].id, "%s", d->resource_id);
  return n + 1;
}
