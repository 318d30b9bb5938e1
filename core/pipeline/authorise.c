/* The authorise stage (see authorise.h). */
#include "pipeline/authorise.h"
#include "auth/jwt.h"
#include "base/log.h"
#include "base/util.h"
#include "oke/interaction.h"
#include "pipeline/answer.h"
#include "pipeline/generation.h"
#include "pipeline/token.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The request presents `token` as its bearer token; constant time, so the
 * token cannot be guessed byte by byte. */
static int bearer_ok(const okegw_req *r, const char *token) {
  const char *h = okegw_req_header(r, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  size_t n = strlen(token);
  return strlen(h) == n && CRYPTO_memcmp(h, token, n) == 0;
}

/* The connector a verified client certificate names (mTLS), or NULL. */
static okegw_connector *by_certificate(okegw_call *c) {
  const okegw_req *r = c->req;
  for (size_t i = 0; (r->client_subject || r->client_cert_sha256) && i < c->gen->nconns; i++) {
    const okegw_conf_connector *cc =
        &c->gen->conf->connectors[i]; /* the call's own configuration */
    /* what the connector names must all match: a pinned fingerprint is not
     * bypassed by another certificate with the same subject */
    int pin = cc->client_cert_sha256 != NULL, subj = cc->client_cert_subject != NULL;
    if ((pin || subj) &&
        (!pin ||
         (r->client_cert_sha256 && strcmp(cc->client_cert_sha256, r->client_cert_sha256) == 0)) &&
        (!subj || (r->client_subject && strcmp(cc->client_cert_subject, r->client_subject) == 0)))
      return c->gen->conns[i];
  }
  return NULL;
}

/* A request that waits for the issuer's keys: handed to `again` once the
 * fetch ended, as if it had just arrived. */
typedef struct parked {
  okegw_req *req;
  okegw_gateway *g;
  okegw_req_handler again;
} parked;

static void resume(void *ud) {
  parked p = *(parked *)ud;
  free(ud);
  p.again(p.req, p.g);
}

/* 401 for a JWT okegw does not accept; the reason is one of jwt.c's fixed
 * texts (no token text, no quote that could break the header). `client`,
 * when the token was good but names no system, is logged (never answered). */
static int refuse_jwt(okegw_call *c, const char *what, const char *reason, const char *client) {
  char *who = client ? okegw_utf8_clean(client, 1, 80) : NULL;
  okegw_log(OKEGW_LOG_WARN, &(okegw_log_fields){.request_id = c->req->request_id, .latency_ms = -1},
            "refused: access token %s: %s%s%s%s", what, reason, who ? " (client_id '" : "",
            who ? who : "", who ? "': no connector has that oauth_client_id)" : "");
  free(who);
  char hdr[320];
  snprintf(hdr, sizeof hdr,
           "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"%s\"\r\n",
           reason);
  okegw_answer_problem_h(c, 401, NULL, hdr, "the access token is not accepted: %s", reason);
  return -1;
}

/* The bearer token is a JWT and oauth_issuer is set: the issuer's signature
 * and claims name the caller (the connector with that oauth_client_id) and
 * the scopes it has for this request. */
/* The connector a verified token names: for okegw's own tokens one with a
 * client_secret_hash (by oauth_client_id, else its name), for the identity
 * provider's the one with that oauth_client_id. */
static int take_caller(okegw_call *c, const okegw_jwt_result *r, int own) {
  okegw_connector *found = NULL;
  for (size_t i = 0; i < c->gen->nconns && !found; i++) {
    const okegw_conf_connector *cc =
        &c->gen->conf->connectors[i]; /* the call's own configuration */
    const char *id =
        own ? (cc->client_secret_hash ? okegw_token_client_id(cc) : NULL) : cc->oauth_client_id;
    if (id && strcmp(id, r->client_id) == 0)
      found = c->gen->conns[i];
  }
  if (!found)
    return refuse_jwt(c, "client", "the token's client is not a system okegw knows", r->client_id);
  c->caller = found;
  c->by_jwt = 1;
  /* the token grants, the connector bounds: only scopes the system may use */
  c->jwt_scopes = r->scopes & found->conf->scopes;
  memcpy(c->client_id, r->client_id, sizeof c->client_id);
  return 0;
}

/* A token okegw issued itself (token_endpoint): checked with its own key;
 * 1 when the token is not one of them (another key id). */
static int identify_own(okegw_call *c, const char *token) {
  okegw_gateway *g = c->g;
  okegw_jwt_expect e = okegw_token_issuer_expect(g->issuer);
  okegw_jwt_result r;
  int rc =
      okegw_jwt_verify(token, okegw_token_issuer_keys(g->issuer), &e, okegw_wall_ms() / 1000, &r);
  if ((rc == OKEGW_JWT_UNKNOWN_KID || rc == OKEGW_JWT_KEY) && g->oauth)
    return 1; /* the identity provider's, perhaps */
  if (rc != OKEGW_JWT_OK)
    return refuse_jwt(c, okegw_jwt_rc_name(rc), r.reason, NULL);
  return take_caller(c, &r, 1);
}

static int identify_jwt(okegw_call *c, const char *token, okegw_req_handler again) {
  okegw_gateway *g = c->g;
  if (g->issuer) {
    int own = identify_own(c, token);
    if (own <= 0)
      return own;
  }
  const okegw_jwks *keys = okegw_jwks_source_keys(g->oauth);
  okegw_jwt_expect e = {.issuer = c->gen->conf->oauth_issuer,
                        .audience = c->gen->conf->oauth_audience,
                        .skew_s = OKEGW_JWT_SKEW_S};
  okegw_jwt_result r;
  int rc = okegw_jwt_verify(token, keys, &e, okegw_wall_ms() / 1000, &r);
  int need_keys = rc == OKEGW_JWT_UNKNOWN_KID || (!keys && rc == OKEGW_JWT_KEY);
  if (need_keys) {
    /* a key the cache has not got: wait for a fetch of the issuer's keys
     * (one at a time, rate-limited), then run the request again */
    parked *p = malloc(sizeof *p);
    if (p) {
      *p = (parked){c->req, g, again};
      if (okegw_jwks_source_refresh(g->oauth, resume, p)) {
        okegw_gen_unref(c->gen);
        free(c); /* nothing else in the call is owned yet; the request is kept */
        return -1;
      }
      free(p);
    }
    if (!keys) {
      okegw_log(OKEGW_LOG_WARN,
                &(okegw_log_fields){.request_id = c->req->request_id, .latency_ms = -1},
                "refused: access token not checked: the issuer's keys are not available (see "
                "the oauth log lines)");
      okegw_answer_problem_h(c, 503, NULL, "Retry-After: 30\r\n",
                             "okegw cannot check access tokens now: the keys of the school's "
                             "identity provider are not available");
      return -1;
    }
  }
  if (rc != OKEGW_JWT_OK)
    return refuse_jwt(c, okegw_jwt_rc_name(rc), r.reason, NULL);
  return take_caller(c, &r, 0);
}

int okegw_authorise_identify(okegw_call *c, okegw_req_handler again) {
  okegw_gateway *g = c->g;
  const char *h = okegw_req_header(c->req, "Authorization");
  int presented = h && strncasecmp(h, "Bearer ", 7) == 0;
  okegw_connector *found = NULL;
  /* every token is compared, so timing tells nothing about any of them */
  for (size_t i = 0; presented && i < c->gen->nconns; i++)
    if (c->gen->conf->connectors[i].inbound_token &&
        bearer_ok(c->req, c->gen->conf->connectors[i].inbound_token))
      found = c->gen->conns[i];
  okegw_connector *cert = by_certificate(c);
  if (cert && presented && !found) {
    /* a certificate and a token: the token must hold and name the same system */
    if (!(g->oauth || g->issuer) || !okegw_jwt_shaped(h + 7)) {
      okegw_answer_problem_h(c, 401, NULL, "WWW-Authenticate: Bearer\r\n",
                             "the bearer token is not known to okegw");
      return -1;
    }
    int rc = identify_jwt(c, h + 7, again);
    if (rc < 0)
      return rc; /* answered, or waiting for the issuer's keys */
    found = c->caller;
  }
  if (cert && found && cert != found) {
    okegw_answer_problem_h(c, 401, NULL, "WWW-Authenticate: Bearer\r\n",
                           "the client certificate and the bearer token name different systems");
    return -1;
  }
  if (cert)
    found = cert;
  /* without identities (a demo) a token means nothing: the caller is trusted */
  if (found || !c->gen->identity) {
    c->caller = found;
    return 0;
  }
  if (presented && (g->oauth || g->issuer) && okegw_jwt_shaped(h + 7))
    return identify_jwt(c, h + 7, again);
  okegw_answer_problem_h(c, 401, NULL, "WWW-Authenticate: Bearer\r\n",
                         g->oauth ? "present an access token of the school's identity provider, "
                                    "the bearer token this system was given for okegw (its "
                                    "connector's inbound_token), or its client certificate"
                                  : "present the bearer token this system was given for okegw (its "
                                    "connector's inbound_token), or its client certificate on "
                                    "listen_tls");
  return -1;
}

unsigned okegw_authorise_role(const okegw_call *c) {
  if (!c->caller)
    return OKEGW_BY_TPL; /* no identities configured: the caller is the school's TPL */
  switch (c->caller->conf->role) {
  case OKEGW_ROLE_TA: return OKEGW_BY_TA;
  case OKEGW_ROLE_DR: return OKEGW_BY_DR;
  case OKEGW_ROLE_TPL: return OKEGW_BY_TPL;
  }
  return 0;
}

void okegw_authorise_refuse_role(okegw_call *c) {
  okegw_answer_problem(c, 403, c->caller ? c->caller->conf->name : NULL,
                       "a %s system may not %s %s (OKE lets other roles do that)",
                       c->caller ? okegw_role_name(c->caller->conf->role) : "tpl", c->req->method,
                       c->req->path);
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

unsigned okegw_scope_for(const okegw_call *c) {
  if (c->interaction == OKE_I_GET_DOCUMENT && c->caller && c->caller->conf->role == OKEGW_ROLE_DR)
    return OKEGW_SCOPE_FLOW15;
  return okegw_scope_of(c->interaction);
}

/* The caller's scope for the interaction as settled now. */
static int scope_ok(okegw_call *c) {
  unsigned have = !c->caller ? 0 : c->by_jwt ? c->jwt_scopes : c->caller->conf->scopes;
  if (!c->caller || (have & okegw_scope_for(c)))
    return 0;
  okegw_answer_problem(
      c, 403, c->caller->conf->name, "%s '%s' does not have the scope %s that %s needs",
      c->by_jwt ? "the access token of connector" : "connector", c->caller->conf->name,
      okegw_scope_name(okegw_scope_for(c)), okegw_interaction_name(c->interaction));
  return -1;
}

int okegw_authorise_call(okegw_call *c) {
  if (scope_ok(c) < 0)
    return -1;
  /* a planning system or DR in phase off starts nothing; a supplier in
   * phase off may still report on what it was sent (the return route
   * decides what that is) */
  if (c->caller && c->caller->conf->phase == OKEGW_PHASE_OFF &&
      c->caller->conf->role != OKEGW_ROLE_TA) {
    okegw_answer_problem(c, 503, c->caller->conf->name,
                         "connector '%s' is in phase off: okegw does not carry its requests yet",
                         c->caller->conf->name);
    return -1;
  }
  return 0;
}

/* ---- phases (DESIGN.md §8) ------------------------------------------------ */

static int acceptance_caller(const okegw_call *c) {
  return c->caller && c->caller->conf->acceptance;
}

/* The organization a zitting names (an id or an expanded object). */
static const char *zitting_organization(const okegw_call *c) {
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(c->body, "organization");
  return cJSON_IsString(o)
             ? o->valuestring
             : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "organizationId"));
}

/* A pilot takes production work inside its subset only: zittingen for its
 * pilot components and organizations, and reads of those components. */
static int pilot_admits(const okegw_call *c, const okegw_conf_connector *cc) {
  if (c->interaction == OKE_I_FLOW2_PUT_OFFERING)
    return okegw_conf_listed(cc->pilot_components, c->ref_id) &&
           okegw_conf_listed(cc->pilot_organizations, zitting_organization(c));
  if (c->interaction == OKE_I_FLOW0_GET_COMPONENT)
    return okegw_conf_listed(cc->pilot_components, c->id);
  return 1;
}

int okegw_authorise_sees(const okegw_call *c, const okegw_connector *conn) {
  enum okegw_phase p = conn->conf->phase;
  return p == OKEGW_PHASE_LIVE || p == OKEGW_PHASE_PILOT ||
         (p == OKEGW_PHASE_SHADOW && acceptance_caller(c));
}

int okegw_authorise_sees_component(const okegw_call *c, const okegw_connector *conn,
                                   const char *component) {
  return conn->conf->phase != OKEGW_PHASE_PILOT || acceptance_caller(c) ||
         okegw_conf_listed(conn->conf->pilot_components, component);
}

/* New work for conn in its phase: answered 503 naming connector and phase
 * when the caller may not start it there. */
static int phase_refuses(okegw_call *c, okegw_connector *conn) {
  const okegw_conf_connector *cc = conn->conf;
  const char *name = cc->name;
  if (cc->phase == OKEGW_PHASE_LIVE || (cc->phase != OKEGW_PHASE_OFF && acceptance_caller(c)) ||
      (cc->phase == OKEGW_PHASE_PILOT && pilot_admits(c, cc)))
    return 0;
  if (cc->phase == OKEGW_PHASE_OFF)
    okegw_answer_problem(c, 503, name,
                         "connector '%s' is in phase off: it takes no new work until ICT sets its "
                         "phase in plugins.conf (work already routed to it goes on)",
                         name);
  else if (cc->phase == OKEGW_PHASE_SHADOW)
    okegw_answer_problem(c, 503, name,
                         "connector '%s' is in phase shadow: only acceptance systems reach it "
                         "until it goes to pilot or live",
                         name);
  else
    okegw_answer_problem(
        c, 503, name,
        "connector '%s' is in phase pilot: %s is outside the pilot (its "
        "pilot_components and pilot_organizations)",
        name, c->interaction == OKE_I_FLOW2_PUT_OFFERING ? "this zitting" : "this component");
  return 1;
}

int okegw_authorise_target(okegw_call *c, okegw_connector *conn) {
  c->target = conn;
  if (scope_ok(c) < 0)
    return -1;
  /* narrowing a phase never strands work: what is routed there already
   * goes on, only new zittingen (and reads of its tests) are refused */
  if (!c->existing && phase_refuses(c, conn))
    return -1;
  if (!conn->ready) {
    okegw_answer_problem(c, 503, conn->conf->name, "connector '%s' is not available: %s",
                         conn->conf->name, conn->error ? conn->error : "not initialised");
    return -1;
  }
  return 0;
}

static void log_refusal(okegw_call *c, const char *connector, const char *fmt, const char *a,
                        const char *b, const char *d) {
  okegw_log(OKEGW_LOG_WARN,
            &(okegw_log_fields){.connector = connector,
                                .interaction = okegw_interaction_name(c->interaction),
                                .request_id = c->req->request_id,
                                .latency_ms = -1},
            fmt, a, b, d);
}

int okegw_authorise_mirror_return(const okegw_call *c, const okegw_route *r) {
  const char *of = c->caller ? c->caller->conf->mirror_of : NULL;
  return of && r->rc == OKEGW_STORE_OK && strcmp(r->connector, of) == 0;
}

int okegw_authorise_return(okegw_call *c, const okegw_route *r) {
  const char *from = c->caller ? c->caller->conf->name : "";
  const char *what = c->interaction == OKE_I_FLOW4_PATCH_OFFERING ? "zitting" : "deelname";
  if (r->rc == OKEGW_STORE_NOTFOUND || (r->rc == OKEGW_STORE_OK && !r->confirmed)) {
    okegw_answer_unknown(c, from,
                         "%s %s was never delivered through this gateway, so it has no return "
                         "route (OKE ground rule 5)",
                         what, c->id);
    return -1;
  }
  if (r->rc != OKEGW_STORE_OK) {
    okegw_answer_store_failed(c);
    return -1;
  }
  if (strcmp(r->connector, from) != 0) {
    log_refusal(c, from, "refused: connector '%s' wrote to %s of connector '%s'", from, what,
                r->connector);
    okegw_answer_problem(c, 403, from,
                         "%s %s belongs to another connector: a supplier may only report on "
                         "what it was sent",
                         what, c->id);
    return -1;
  }
  return 0;
}

int okegw_authorise_owner(okegw_call *c, const okegw_route *r, const char *unknown,
                          const char *id) {
  if (!c->caller || !r->owner[0] || strcmp(r->owner, c->caller->conf->name) == 0)
    return 0;
  log_refusal(c, c->caller->conf->name, "refused: connector '%s' asked for %s of connector '%s'",
              c->caller->conf->name, id, r->owner);
  okegw_answer_unknown(c, NULL, unknown, id);
  return -1;
}

int okegw_authorise_person(okegw_call *c, const okegw_route *r) {
  if (r->rc == OKEGW_STORE_OK)
    return 0;
  if (r->rc != OKEGW_STORE_NOTFOUND) {
    okegw_answer_store_failed(c);
    return -1;
  }
  const char *name = c->caller->conf->name;
  log_refusal(c, name, "refused: connector '%s' asked for enrolments of %s %s without a deelname",
              name, "person", c->id);
  okegw_answer_problem(c, 403, name,
                       "connector '%s' holds no deelname of person %s, so it may not read that "
                       "person's enrolments (flow 6 data minimisation)",
                       name, c->id);
  return -1;
}

int okegw_authorise_callback(okegw_call *c, okegw_connector *conn) {
  const char *name = conn->conf->name;
  if (!bearer_ok(c->req, conn->conf->callback_token)) {
    okegw_answer_problem_h(c, 401, name, "WWW-Authenticate: Bearer\r\n",
                           "present the callback token of connector '%s'", name);
    return -1;
  }
  /* in every phase: a callback reports on what the supplier was sent */
  if (!conn->ready) {
    okegw_answer_problem(c, 503, name, "connector '%s' is not available", name);
    return -1;
  }
  return 0;
}

int okegw_authorise_delivery(const okegw_call *c, const okegw_delivery_rec *d) {
  return !c->gen->identity ||
         (c->caller && d->caller && strcmp(d->caller, c->caller->conf->name) == 0);
}
