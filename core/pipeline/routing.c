/* Flows 1-6 after matching: routing by the correlation store, the return
 * route, flows 1/5/6 between DR and TPL, documents, supplier callbacks. */
#include "pipeline/call.h"
#include "oke/interaction.h"
#include "base/json.h"
#include "base/log.h"
#include "oke/problem.h"
#include "base/util.h"
#include "oke/validate.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
  okegw_call *c = ud;
  const char *kind = c->interaction == OKE_I_FLOW2_GET_OFFERING ||
                             c->interaction == OKE_I_FLOW2_PATCH_OFFERING ||
                             c->interaction == OKE_I_FLOW2_LIST_ASSOCIATIONS
                         ? "offering"
                         : "association";
  if (r->rc == OKEGW_STORE_OK) {
    okegw_deliver_to_named(c, r->connector);
  } else if (r->rc == OKEGW_STORE_NOTFOUND && dr_interaction(c->interaction)) {
    okegw_to_dr(c, dr_interaction(c->interaction),
                strcmp(kind, "offering") == 0 ? "planbare_toets" : "toetsinschrijving");
  } else if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_finish_problem(c, 404, NULL, "%s %s is unknown to this gateway", kind, c->id);
  } else {
    okegw_finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
  }
}

static void bind_offering(okegw_call *c);

static void on_offering_component_probed(okegw_call *c, okegw_connector *owner, const char *ctype,
                                         const char *body, size_t len) {
  (void)ctype;
  (void)body;
  (void)len;
  if (!owner) {
    okegw_finish_problem(
        c, 400, NULL,
        "no live test supplier owns component %s, so the offering cannot be routed "
        "(is the supplier's connector live, and is the component in its catalogue?)",
        c->ref_id);
    return;
  }
  /* The owner was recorded before this ran (same store queue), so binding
   * again finds it. */
  c->probed = 1;
  bind_offering(c);
}

static void on_bind(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  int offering = c->interaction == OKE_I_FLOW2_PUT_OFFERING;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    if (offering && !c->probed) {
      /* a component the catalogue never showed: ask the TAs once */
      okegw_probe_component(c, c->ref_id, on_offering_component_probed);
      return;
    }
    if (c->interaction == OKE_I_FLOW5_PUT_ASSOCIATION)
      okegw_finish_problem(c, 404, NULL,
                           "toetsinschrijving %s (orgAssociationId) is unknown to this gateway",
                           c->ref_id);
    else if (offering)
      okegw_finish_problem(c, 400, NULL, "no live test supplier owns component %s", c->ref_id);
    else
      okegw_finish_problem(c, 400, NULL,
                           "offering %s is unknown to this gateway: PUT /offerings/%s first (the "
                           "zitting before its deelnames)",
                           c->ref_id, c->ref_id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  if (r->existed && strcmp(r->prev_connector, r->connector) != 0) {
    okegw_finish_problem(c, 409, r->prev_connector,
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
        c->caller ? c->caller : okegw_single_live(c->g, OKEGW_ROLE_TPL, why, sizeof why);
    if (tpl)
      okegw_remember_documents(c, tpl);
  }
  okegw_deliver_to_named(c, r->connector);
}

static void bind_offering(okegw_call *c) {
  if (okegw_store_bind(c->g->store, "offering", c->id, "component", c->ref_id, 0, on_bind, c) < 0)
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
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

int okegw_check_body(okegw_call *c, cJSON **out) {
  const char *ct = okegw_req_header(c->req, "Content-Type");
  if (ct && strncasecmp(ct, "application/json", 16) != 0 &&
      strncasecmp(ct, "application/merge-patch+json", 28) != 0) {
    okegw_finish_problem(c, 415, NULL,
                         "Content-Type must be application/json or application/merge-patch+json, "
                         "got '%s'",
                         ct);
    return -1;
  }
  if (!c->req->body || !c->req->body_len) {
    okegw_finish_problem(c, 400, NULL, "a JSON body is required");
    return -1;
  }
  cJSON *j = cJSON_ParseWithLength(c->req->body, c->req->body_len);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    okegw_finish_problem(c, 400, NULL, "the body is not a JSON object");
    return -1;
  }
  char dup[256];
  if (okegw_json_find_duplicate(j, dup, sizeof dup)) {
    cJSON_Delete(j);
    okegw_finish_problem(c, 400, NULL,
                         "the member %s appears twice in its object; send each name once", dup);
    return -1;
  }
  *out = j;
  return 0;
}

void okegw_put_routed(okegw_call *c, const char *field, const char *id_field) {
  cJSON *body;
  if (okegw_check_body(c, &body) < 0)
    return;
  const char *ref = ref_id(body, field, id_field);
  if (!ref || !*ref || strlen(ref) >= sizeof c->ref_id) {
    cJSON_Delete(body);
    okegw_finish_problem(c, 400, NULL, "'%s' is required to route this request (pointer /%s)",
                         field, field);
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
      okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  /* checked before anything is recorded: a refused zitting or deelname must
   * leave no route behind */
  if (okegw_refuse_invalid(c))
    return;
  c->validated = 1;
  if (c->interaction == OKE_I_FLOW2_PUT_OFFERING) {
    bind_offering(c);
  } else if (okegw_store_bind(c->g->store, "association", c->id, "offering", c->ref_id, 0, on_bind,
                              c) < 0) {
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
  }
}

void okegw_lookup_routed(okegw_call *c, const char *kind) {
  if ((c->interaction == OKE_I_FLOW2_PATCH_OFFERING ||
       c->interaction == OKE_I_FLOW2_PATCH_ASSOCIATION)) {
    if (okegw_check_body(c, &c->body) < 0)
      return;
  }
  if (okegw_store_lookup(c->g->store, kind, c->id, on_lookup, c) < 0)
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
}

/* ---- flows 1, 5 and 6 --------------------------------------------------- */

static void on_dr_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  char why[160];
  if (r->rc == OKEGW_STORE_OK) {
    if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION && r->parent[0])
      snprintf(c->ref_id, sizeof c->ref_id, "%s", r->parent); /* an extra attempt's original */
    if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION ||
        c->interaction == OKE_I_FLOW5_PUT_ASSOCIATION) {
      /* the DR fetches flow-5 documents from the planning system */
      okegw_connector *tpl =
          c->caller ? c->caller : okegw_single_live(c->g, OKEGW_ROLE_TPL, why, sizeof why);
      if (tpl)
        okegw_remember_documents(c, tpl);
    }
    okegw_deliver_to_named(c, r->connector);
    return;
  }
  if (r->rc != OKEGW_STORE_NOTFOUND) {
    okegw_finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION) {
    /* a result goes only to the DR that sent the toetsinschrijving */
    okegw_finish_problem(c, 404, NULL,
                         "association %s is neither a deelname at a test supplier nor a "
                         "toetsinschrijving received from a DR through this gateway",
                         c->id);
    return;
  }
  okegw_connector *dr = okegw_single_live(c->g, OKEGW_ROLE_DR, why, sizeof why);
  int any_dr = 0;
  for (size_t i = 0; i < c->g->nconns; i++)
    any_dr |= c->g->conns[i].conf->role == OKEGW_ROLE_DR;
  if (!dr && !any_dr && c->id[0]) {
    /* no DR behind this gateway: the id is simply unknown */
    okegw_finish_problem(c, 404, NULL, "%s is unknown to this gateway", c->id);
    return;
  }
  if (!dr) {
    okegw_finish_problem(c, 503, NULL, "cannot carry %s: %s",
                         okegw_interaction_name(c->interaction), why);
    return;
  }
  okegw_deliver_to(c, dr);
}

/* Flow 1 reads and flow 5 writes of a TPL: to the DR that owns the id when
 * okegw saw it pass (kind), else to the one live DR. */
void okegw_to_dr(okegw_call *c, int interaction, const char *kind) {
  c->interaction = interaction;
  if (interaction == OKE_I_FLOW5_PATCH_ASSOCIATION && !c->body && okegw_check_body(c, &c->body) < 0)
    return;
  if (kind && c->id[0]) {
    if (okegw_store_lookup(c->g->store, kind, c->id, on_dr_route, c) < 0)
      okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  okegw_route none = {.rc = OKEGW_STORE_NOTFOUND};
  on_dr_route(c, &none);
}

static void on_flow1_recorded(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  char why[160];
  if (r->rc != OKEGW_STORE_OK) {
    okegw_finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  okegw_connector *tpl = okegw_single_live(c->g, OKEGW_ROLE_TPL, why, sizeof why);
  if (!tpl) {
    okegw_finish_problem(c, 503, NULL, "cannot carry %s: %s",
                         okegw_interaction_name(c->interaction), why);
    return;
  }
  okegw_deliver_to(c, tpl);
}

/* Flow 1 push of a DR to the TPL. Planbare toetsen and toetsinschrijvingen
 * are recorded as the DR's first, so flow-5 results find their way back. */
void okegw_flow1_push(okegw_call *c) {
  if (okegw_check_body(c, &c->body) < 0)
    return;
  const char *kind = c->interaction == OKE_I_FLOW1_PUT_OFFERING      ? "planbare_toets"
                     : c->interaction == OKE_I_FLOW1_PUT_ASSOCIATION ? "toetsinschrijving"
                                                                     : NULL;
  if (kind) {
    const char *id = c->id;
    if (okegw_store_put(c->g->store, kind, &id, 1, c->caller->conf->name, on_flow1_recorded, c) < 0)
      okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  okegw_route ok = {.rc = OKEGW_STORE_OK};
  on_flow1_recorded(c, &ok);
}

static void on_flow6_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){.connector = c->caller->conf->name,
                                  .interaction = okegw_interaction_name(c->interaction),
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "refused: connector '%s' asked for enrolments of person %s without a deelname",
              c->caller->conf->name, c->id);
    okegw_finish_problem(c, 403, c->caller->conf->name,
                         "connector '%s' holds no deelname of person %s, so it may not read that "
                         "person's enrolments (flow 6 data minimisation)",
                         c->caller->conf->name, c->id);
    return;
  }
  okegw_route none = {.rc = OKEGW_STORE_NOTFOUND};
  on_dr_route(c, r->rc == OKEGW_STORE_OK ? &none : r);
}

void okegw_flow6(okegw_call *c) {
  char key[160];
  snprintf(key, sizeof key, "%s@%s", c->id, c->caller->conf->name);
  if (okegw_store_lookup(c->g->store, "ta_person", key, on_flow6_route, c) < 0)
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
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
const char *okegw_document_kind(enum okegw_role holder) {
  return holder == OKEGW_ROLE_TPL ? "document@tpl" : "document@ta";
}

void okegw_remember_documents(okegw_call *c, const okegw_connector *holder) {
  const char *ids[64];
  size_t n = 0;
  collect_documents(c->body, ids, &n, sizeof ids / sizeof ids[0]);
  if (n)
    okegw_store_put(c->g->store, okegw_document_kind(holder->conf->role), ids, n,
                    holder->conf->name, NULL, NULL);
}

void okegw_on_document_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_finish_problem(c, 404, NULL,
                         "document %s was not referenced by any message through this "
                         "gateway",
                         c->id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
    return;
  }
  okegw_deliver_to_named(c, r->connector);
}

/* ---- supplier callbacks ------------------------------------------------ */

/* A supplier that does not speak OKE pushes results to
 * POST /callbacks/{connector}/...; its Lua mapping flow3.patch_association
 * (from_peer) turns the body into an OKE flow-3 result and names the deelname
 * in ctx.id. The result goes to the planning system only on the return route:
 * for a deelname this gateway delivered to that same connector. */

/* The TPL connector results go back to. Until callers are identified, that
 * is the one live TPL connector. */
/* The TPL that planned the zitting (its identity on the flow-2 PUT); without
 * identities, the one live TPL. */
static void on_planner(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_OK) {
    okegw_deliver_to_named(c, r->connector);
    return;
  }
  char why[160];
  okegw_connector *tpl = okegw_return_tpl(c->g, why, sizeof why);
  if (!tpl) {
    okegw_finish_problem(c, 503, NULL, "cannot forward to the planning system: %s", why);
    return;
  }
  okegw_deliver_to(c, tpl);
}

/* The return route (OKE ground rule 5): a TA's result (flow 3) or session
 * report (flow 4) goes back only for a deelname or zitting this gateway
 * delivered to that same TA, and only to the planning system. */
static void on_return_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  const char *from = c->target->conf->name;
  const char *what = c->interaction == OKE_I_FLOW4_PATCH_OFFERING ? "zitting" : "deelname";
  if (r->rc == OKEGW_STORE_NOTFOUND || (r->rc == OKEGW_STORE_OK && !r->confirmed)) {
    okegw_finish_problem(
        c, 404, from,
        "%s %s was never delivered through this gateway, so it has no return route "
        "(OKE ground rule 5)",
        what, c->id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_finish_problem(c, 500, NULL, "the correlation store failed; see the gateway log");
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
    okegw_finish_problem(
        c, 403, from,
        "%s %s belongs to another connector: a supplier may only report on what it "
        "was sent",
        what, c->id);
    return;
  }
  okegw_remember_documents(c, c->target);
  /* the zitting: the id itself (flow 4) or the deelname's offering (flow 3) */
  const char *zitting = c->interaction == OKE_I_FLOW4_PATCH_OFFERING ? c->id : r->parent;
  if (zitting && *zitting &&
      okegw_store_lookup(c->g->store, "planned_by", zitting, on_planner, c) == 0)
    return;
  okegw_route none = {.rc = OKEGW_STORE_NOTFOUND};
  on_planner(c, &none);
}

/* Sends the call's body, as PATCH {kind}s/{id}, back to the planning system
 * once the return route is confirmed. */
void okegw_return_to_planning(okegw_call *c, const char *kind) {
  if (!c->out_body)
    c->out_body = okegw_strndup(c->req->body ? c->req->body : "", c->req->body_len);
  c->out_method = "PATCH";
  snprintf(c->out_path, sizeof c->out_path, "/%ss/%s", kind, c->id);
  if (!c->out_body) {
    okegw_finish_problem(c, 503, NULL, "out of memory");
    return;
  }
  if (okegw_store_lookup(c->g->store, kind, c->id, on_return_route, c) < 0)
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
}

int okegw_bearer_ok(const okegw_req *r, const char *token) {
  const char *h = okegw_req_header(r, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  size_t n = strlen(token);
  /* constant time, so the token cannot be guessed byte by byte */
  return strlen(h) == n && CRYPTO_memcmp(h, token, n) == 0;
}

void okegw_supplier_callback(okegw_call *c, const char *rest) {
  okegw_gateway *g = c->g;
  char name[OKEGW_NAME_MAX];
  size_t len = strcspn(rest, "/");
  if (len == 0 || len >= sizeof name) {
    okegw_finish_problem(c, 404, NULL, "no callback at %s", c->req->path);
    return;
  }
  memcpy(name, rest, len);
  name[len] = '\0';
  okegw_connector *conn = okegw_connector_by_name(g, name);
  if (!conn || !conn->conf->callback_token) {
    okegw_finish_problem(c, 404, NULL, "no callbacks are configured for connector '%s'", name);
    return;
  }
  c->interaction = OKE_I_FLOW3_PATCH_ASSOCIATION;
  c->target = conn;
  if (strcmp(c->req->method, "POST") != 0) {
    char *body = okegw_problem_json(405, "Method Not Allowed", "callbacks take POST", name);
    okegw_finish(c, 405, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, "Allow: POST\r\n");
    free(body);
    return;
  }
  if (!okegw_bearer_ok(c->req, conn->conf->callback_token)) {
    okegw_finish(c, 401, OKEGW_PROBLEM_TYPE, NULL, 0, "WWW-Authenticate: Bearer\r\n");
    return;
  }
  if (conn->conf->phase == OKEGW_PHASE_OFF || !conn->ready) {
    okegw_finish_problem(c, 503, name, "connector '%s' is %s", name,
                         conn->ready ? "in phase off" : "not available");
    return;
  }
  if (okegw_check_body(c, &c->body) < 0)
    return;
  const char *id = okegw_interaction_name(c->interaction);
  if (!okegw_mapset_has(conn->maps, id, 1)) {
    okegw_finish_problem(
        c, 501, name,
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
    okegw_finish_problem(c, 502, name, "%s", err);
    return;
  }
  if (!okegw_is_uuid(c->id)) {
    cJSON_Delete(mapped);
    okegw_finish_problem(
        c, 502, name,
        "%s/%s.lua: from_peer must set ctx.id to the deelname (association) id, got "
        "'%s'",
        okegw_mapset_dir(conn->maps), id, c->id);
    return;
  }
  cJSON_Delete(c->body);
  c->body = mapped;
  c->out_body = okegw_json_print(mapped);
  if (!c->out_body) {
    okegw_finish_problem(c, 503, NULL, "out of memory");
    return;
  }
  okegw_return_to_planning(c, "association");
}
