/* The route stage for flows 1-6 (see route.h; flow 0 is catalogue.c). */
#include "pipeline/route.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "connector/mapping.h"
#include "oke/interaction.h"
#include "pipeline/answer.h"
#include "pipeline/authorise.h"
#include "pipeline/dispatch.h"
#include "pipeline/state.h"
#include "ops/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs a lookup; a store that takes no job answers the call. */
static void lookup(okegw_call *c, const char *kind, const char *id, okegw_route_cb cb) {
  if (okegw_store_lookup(c->g->store, kind, id, cb, c) < 0)
    okegw_answer_store_down(c);
}

/* The TPL that receives what comes back (flow 5 documents' holder, returns
 * without a recorded planner): the caller itself, or the one live TPL. */
static okegw_connector *planning_system(okegw_call *c, char *why, size_t whysz) {
  if (c->caller && c->caller->conf->role == OKEGW_ROLE_TPL)
    return c->caller;
  return okegw_single_live(c, OKEGW_ROLE_TPL, why, whysz);
}

void okegw_route_to(okegw_call *c, okegw_connector *conn) {
  if (okegw_authorise_target(c, conn) == 0)
    okegw_dispatch(c);
}

void okegw_route_to_named(okegw_call *c, const char *name) {
  okegw_connector *conn = okegw_connector_by_name(c->gen, name);
  if (!conn) {
    okegw_answer_problem(c, 503, name,
                         "connector '%s' owns this resource but is no longer configured", name);
    return;
  }
  okegw_route_to(c, conn);
}

/* ---- flow 2: zittingen and deelnames ------------------------------------ */

static void on_component_owner(void *ud, const okegw_route *r);

static void on_component_probed(okegw_call *c, okegw_connector *owner, const char *ctype,
                                const char *body, size_t len) {
  (void)ctype;
  (void)body;
  (void)len;
  if (!owner) {
    okegw_answer_problem(
        c, 400, NULL,
        "no live test supplier owns component %s, so the offering cannot be routed "
        "(is the supplier's connector live, and is the component in its catalogue?)",
        c->ref_id);
    return;
  }
  /* the owner and the component's facts were recorded before this ran */
  c->probed = 1;
  lookup(c, "component", c->ref_id, on_component_owner);
}

static void on_component_owner(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND && !c->probed) {
    /* a component the catalogue never showed: ask the TAs once */
    okegw_probe_component(c, c->ref_id, on_component_probed);
    return;
  }
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_answer_problem(c, 400, NULL, "no live test supplier owns component %s", c->ref_id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_store_failed(c);
    return;
  }
  c->records.bind_kind = "offering";
  c->records.bind_parent_kind = "component";
  /* a zitting is checked by what its component says (scale, extra time) */
  c->records.facts = r->facts[0] ? okegw_strdup(r->facts) : NULL;
  okegw_route_to_named(c, r->connector);
}

/* A PUT of a zitting okegw routed before is work on that zitting, which a
 * narrower phase of its supplier does not stop; a new one is new work. */
static void on_known_zitting(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc != OKEGW_STORE_OK && r->rc != OKEGW_STORE_NOTFOUND) {
    okegw_answer_store_failed(c);
    return;
  }
  c->existing = r->rc == OKEGW_STORE_OK;
  lookup(c, "component", c->ref_id, on_component_owner);
}

void okegw_route_put_offering(okegw_call *c) { lookup(c, "offering", c->id, on_known_zitting); }

static void on_zitting(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_OK &&
      okegw_authorise_owner(c, r, "offering %s is unknown to this gateway", c->ref_id) < 0)
    return;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_answer_problem(c, 400, NULL,
                         "offering %s is unknown to this gateway: PUT /offerings/%s first (the "
                         "zitting before its deelnames)",
                         c->ref_id, c->ref_id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_store_failed(c);
    return;
  }
  okegw_facts z;
  okegw_facts_read(r->facts, &z);
  if (okegw_state_deelname(c, &z) < 0)
    return;
  c->existing = 1; /* a deelname of a zitting already routed */
  c->records.bind_kind = "association";
  c->records.bind_parent_kind = "offering";
  okegw_route_to_named(c, r->connector);
}

static void on_original(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_answer_problem(c, 404, NULL,
                         "toetsinschrijving %s (orgAssociationId) is unknown to this gateway",
                         c->ref_id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_store_failed(c);
    return;
  }
  okegw_facts original;
  okegw_facts_read(r->facts, &original);
  if (okegw_state_attempt(c, &original) < 0 || okegw_state_result(c, &original) < 0)
    return;
  /* the new id becomes one of the DR's own, on the original's scale; the DR
   * fetches the attempt's documents from the planning system */
  if (r->facts[0])
    c->records.facts = okegw_strdup(r->facts);
  c->existing = 1;
  c->records.bind_kind = "toetsinschrijving";
  c->records.bind_parent_kind = "toetsinschrijving";
  char why[160];
  c->records.documents = planning_system(c, why, sizeof why);
  okegw_route_to_named(c, r->connector);
}

void okegw_route_put_association(okegw_call *c) {
  if (c->interaction == OKE_I_FLOW5_PUT_ASSOCIATION)
    lookup(c, "toetsinschrijving", c->ref_id, on_original);
  else
    lookup(c, "offering", c->ref_id, on_zitting);
}

/* ---- flows 1 and 5 between TPL and DR ------------------------------------ */

static void to_dr(okegw_call *c, const char *kind);

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

static void on_routed(void *ud, const okegw_route *r, const char *kind, const char *dr_kind) {
  okegw_call *c = ud;
  char unknown[64];
  snprintf(unknown, sizeof unknown, "%s %%s is unknown to this gateway", kind);
  if (r->rc == OKEGW_STORE_OK) {
    /* a planning system sees only the zittingen and deelnames it planned */
    if (okegw_authorise_owner(c, r, unknown, c->id) < 0)
      return;
    /* checked before anything else is said about it (a cancel goes out
     * as only the cancel, R18: see the dispatch stage) */
    if (okegw_dispatch_check(c) < 0)
      return;
    c->existing = 1;
    okegw_route_to_named(c, r->connector);
  } else if (r->rc == OKEGW_STORE_NOTFOUND && dr_interaction(c->interaction)) {
    c->interaction = dr_interaction(c->interaction);
    to_dr(c, dr_kind);
  } else if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_answer_unknown(c, NULL, unknown, c->id);
  } else {
    okegw_answer_store_failed(c);
  }
}

static void on_offering(void *ud, const okegw_route *r) {
  on_routed(ud, r, "offering", "planbare_toets");
}

static void on_association(void *ud, const okegw_route *r) {
  on_routed(ud, r, "association", "toetsinschrijving");
}

void okegw_route_offering(okegw_call *c) { lookup(c, "offering", c->id, on_offering); }
void okegw_route_association(okegw_call *c) { lookup(c, "association", c->id, on_association); }

/* To the one live connector of a role, where nothing recorded says which. */
static void to_single(okegw_call *c, enum okegw_role role, const char *what) {
  char why[160];
  okegw_connector *conn = okegw_single_live(c, role, why, sizeof why);
  if (conn)
    okegw_route_to(c, conn);
  else
    okegw_answer_problem(c, 503, NULL, "cannot %s: %s", what, why);
}

/* The one live DR, for what okegw never saw pass. */
static void to_single_dr(okegw_call *c) {
  int any_dr = 0;
  for (size_t i = 0; i < c->gen->nconns; i++)
    any_dr |= c->gen->conns[i]->conf->role == OKEGW_ROLE_DR;
  if (!any_dr && c->id[0]) {
    /* no DR behind this gateway: the id is simply unknown */
    okegw_answer_problem(c, 404, NULL, "%s is unknown to this gateway", c->id);
    return;
  }
  char what[96];
  snprintf(what, sizeof what, "carry %s", okegw_interaction_name(c->interaction));
  to_single(c, OKEGW_ROLE_DR, what);
}

static void on_dr_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_OK) {
    if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION) {
      if (r->parent[0]) /* an extra attempt: its original names the result */
        snprintf(c->ref_id, sizeof c->ref_id, "%s", r->parent);
      okegw_facts d;
      okegw_facts_read(r->facts, &d);
      if (okegw_state_result(c, &d) < 0)
        return;
      /* the DR fetches flow-5 documents from the planning system */
      char why[160];
      c->records.documents = planning_system(c, why, sizeof why);
    }
    c->existing = 1;
    okegw_route_to_named(c, r->connector);
    return;
  }
  if (r->rc != OKEGW_STORE_NOTFOUND) {
    okegw_answer_store_failed(c);
    return;
  }
  if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION) {
    /* a result goes only to the DR that sent the toetsinschrijving */
    okegw_answer_unknown(c, NULL,
                         "association %s is neither a deelname at a test supplier nor a "
                         "toetsinschrijving received from a DR through this gateway",
                         c->id);
    return;
  }
  to_single_dr(c);
}

/* To the DR that owns the id when okegw saw it pass (kind), else to the one
 * live DR. The interaction is settled now: authorised again for it. */
static void to_dr(okegw_call *c, const char *kind) {
  if (okegw_authorise_call(c) < 0)
    return;
  if (kind && c->id[0]) {
    lookup(c, kind, c->id, on_dr_route);
    return;
  }
  to_single_dr(c);
}

/* Persons and groups a DR pushed (flow 1) are read at that DR; the rest
 * at the one live DR. */
static const char *dr_pushed_kind(int interaction) {
  switch (interaction) {
  case OKE_I_FLOW1_GET_PERSON:
  case OKE_I_FLOW1_PUT_PERSON:
  case OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS: return "dr_person";
  case OKE_I_FLOW1_GET_GROUP:
  case OKE_I_FLOW1_LIST_GROUP_MEMBERS:
  case OKE_I_FLOW1_PUT_GROUP: return "dr_group";
  }
  return NULL;
}

void okegw_route_to_dr(okegw_call *c) {
  const char *kind = dr_pushed_kind(c->interaction);
  if (kind && c->id[0])
    lookup(c, kind, c->id, on_dr_route);
  else
    to_single_dr(c);
}

static void flow1_to_tpl(okegw_call *c) {
  char what[96];
  snprintf(what, sizeof what, "carry %s", okegw_interaction_name(c->interaction));
  to_single(c, OKEGW_ROLE_TPL, what);
}

/* A toetsinschrijving is recorded with the scale of its planbare toets,
 * which checks the flow-5 results that come back for it (R20). */
static void on_planbare_toets(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  okegw_facts p;
  okegw_facts_read(r->rc == OKEGW_STORE_OK ? r->facts : "", &p);
  c->records.facts = okegw_facts_of_own(c, p.rvt);
  flow1_to_tpl(c);
}

/* A DR changes only the planbare toetsen and toetsinschrijvingen it sent:
 * another DR's get the same 404 as an unknown id. */
static void on_own_id(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_OK && strcmp(r->connector, c->caller->conf->name) != 0) {
    okegw_route other = *r;
    snprintf(other.owner, sizeof other.owner, "%s", r->connector);
    okegw_authorise_owner(c, &other, "%s is unknown to this gateway", c->id);
    return;
  }
  if (r->rc != OKEGW_STORE_OK && r->rc != OKEGW_STORE_NOTFOUND) {
    okegw_answer_store_failed(c);
    return;
  }
  flow1_to_tpl(c);
}

void okegw_route_flow1_push(okegw_call *c) {
  if (c->interaction == OKE_I_FLOW1_PATCH_OFFERING ||
      c->interaction == OKE_I_FLOW1_PATCH_ASSOCIATION) {
    lookup(c, c->interaction == OKE_I_FLOW1_PATCH_OFFERING ? "planbare_toets" : "toetsinschrijving",
           c->id, on_own_id);
    return;
  }
  /* planbare toetsen and toetsinschrijvingen are recorded as the DR's, so
   * flow-5 results find their way back */
  c->records.own_kind = c->interaction == OKE_I_FLOW1_PUT_OFFERING ? "planbare_toets"
                        : c->interaction == OKE_I_FLOW1_PUT_ASSOCIATION
                            ? "toetsinschrijving"
                            : dr_pushed_kind(c->interaction);
  if (c->interaction == OKE_I_FLOW1_PUT_ASSOCIATION) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(c->body, "offering");
    const char *pt = cJSON_IsString(o)
                         ? o->valuestring
                         : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "offeringId"));
    if (pt && *pt && strlen(pt) < 64) {
      lookup(c, "planbare_toets", pt, on_planbare_toets);
      return;
    }
  }
  if (c->interaction == OKE_I_FLOW1_PUT_OFFERING)
    c->records.facts = okegw_facts_of_own(c, NULL);
  flow1_to_tpl(c);
}

/* ---- flow 6 and documents ------------------------------------------------ */

static void on_candidate(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  c->existing = 1; /* the caller holds a deelname of the person */
  if (okegw_authorise_person(c, r) == 0)
    okegw_route_to_dr(c);
}

void okegw_route_flow6(okegw_call *c) {
  char key[160];
  snprintf(key, sizeof key, "%s@%s", c->id, c->caller->conf->name);
  lookup(c, "ta_person", key, on_candidate);
}

static void on_document(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_NOTFOUND)
    okegw_answer_problem(
        c, 404, NULL, "document %s was not referenced by any message through this gateway", c->id);
  else if (r->rc != OKEGW_STORE_OK)
    okegw_answer_store_failed(c);
  else if (okegw_authorise_owner(
               c, r, "document %s was not referenced by any message through this gateway", c->id) ==
           0) {
    c->existing = 1;
    okegw_route_to_named(c, r->connector);
  }
}

void okegw_route_document(okegw_call *c) {
  /* a TPL fetches from a TA, a DR from the TPL: not from just anyone */
  int dr = c->caller && c->caller->conf->role == OKEGW_ROLE_DR;
  lookup(c, dr ? "document@tpl" : "document@ta", c->id, on_document);
}

/* ---- the return route (flows 3, 4) --------------------------------------- */

/* The TPL that planned the zitting (its identity on the flow-2 PUT); without
 * identities, the one live TPL. */
static void on_planner(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_OK) {
    okegw_route_to_named(c, r->connector);
    return;
  }
  to_single(c, OKEGW_ROLE_TPL, "forward to the planning system");
}

static void on_return_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (okegw_authorise_mirror_return(c, r)) {
    /* a shadow supplier's result for a zitting it only saw as a copy: checked
     * (the profile, above) and recorded; only an acceptance planner gets it,
     * never a production one */
    okegw_connector *owner = r->owner[0] ? okegw_connector_by_name(c->gen, r->owner) : NULL;
    if (!owner || !owner->conf->acceptance) {
      okegw_answer_withheld(c);
      return;
    }
    c->existing = 1;
    c->records.documents = c->caller;
    okegw_route_to(c, owner);
    return;
  }
  if (okegw_authorise_return(c, r) < 0)
    return;
  c->existing = 1;
  if (c->interaction == OKE_I_FLOW3_PATCH_ASSOCIATION) {
    okegw_facts d;
    okegw_facts_read(r->facts, &d);
    if (okegw_state_result(c, &d) < 0)
      return;
  }
  c->records.documents = c->caller;
  /* back to the planning system that planned it (ground rule 5), also after
   * a cancel and a new PUT: its owner never changes */
  if (r->owner[0]) {
    okegw_route_to_named(c, r->owner);
    return;
  }
  /* a route recorded before owners were: who planned the zitting, the id
   * itself (flow 4) or the deelname's offering (flow 3) */
  const char *zitting = c->interaction == OKE_I_FLOW4_PATCH_OFFERING ? c->id : r->parent;
  if (zitting && *zitting &&
      okegw_store_lookup(c->g->store, "planned_by", zitting, on_planner, c) == 0)
    return;
  okegw_route none = {.rc = OKEGW_STORE_NOTFOUND};
  on_planner(c, &none);
}

void okegw_route_return(okegw_call *c) {
  const char *kind = c->interaction == OKE_I_FLOW4_PATCH_OFFERING ? "offering" : "association";
  if (!c->out_body)
    c->out_body = okegw_strndup(c->req->body ? c->req->body : "", c->req->body_len);
  c->out_method = "PATCH";
  snprintf(c->out_path, sizeof c->out_path, "/%ss/%s", kind, c->id);
  if (!c->out_body) {
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return;
  }
  lookup(c, kind, c->id, on_return_route);
}

/* ---- supplier callbacks -------------------------------------------------- */

/* A supplier that does not speak OKE pushes results to
 * POST /callbacks/{connector}/...; its Lua mapping flow3.patch_association
 * (from_peer) turns the body into an OKE flow-3 result and names the deelname
 * in ctx.id. The result goes to the planning system only on the return route:
 * for a deelname this gateway delivered to that same connector. */
void okegw_route_callback(okegw_call *c) {
  okegw_connector *conn = c->caller;
  const char *name = conn->conf->name;
  const char *id = okegw_interaction_name(c->interaction);
  if (!okegw_mapset_has(conn->maps, id, 1)) {
    okegw_answer_problem(
        c, 501, name,
        "connector '%s' has no %s.lua with from_peer to turn its callback into an OKE result", name,
        id);
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
  int mrc = okegw_mapset_run(conn->maps, id, 1, c->body, &ctx, &mapped, err, sizeof err);
  if (mrc < 0) {
    okegw_metrics_mapping_error(conn->metrics, c->interaction, mrc == OKEGW_MAP_KILLED);
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = name,
                                  .interaction = id,
                                  .request_id = c->req->request_id,
                                  .latency_ms = -1},
              "mapping of a callback failed: %s", err);
    okegw_answer_problem(c, 502, name, "%s", err);
    return;
  }
  if (!okegw_is_uuid(c->id)) {
    cJSON_Delete(mapped);
    okegw_answer_problem(
        c, 502, name,
        "%s/%s.lua: from_peer must set ctx.id to the deelname (association) id, got '%s'",
        okegw_mapset_dir(conn->maps), id, c->id);
    return;
  }
  cJSON_Delete(c->body);
  c->body = mapped;
  c->out_body = okegw_json_print(mapped);
  if (!c->out_body) {
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return;
  }
  okegw_route_return(c);
}
