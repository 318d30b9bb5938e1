/* One request on its way through the pipeline, and the gateway state the
 * stages share. Not part of the plugin SDK.
 *
 * The stages, in request order, each in its own file (core/README.md):
 *   gateway    match the OKE interaction (route table, caller role), parse
 *              the body, check it against the profile once settled
 *   route      find the resource and the connector that carries it
 *   authorise  decide who may do what to which resource (identity, scope,
 *              role, phase, ownership)
 *   dispatch   record what the message opens, then the outbox (pushes) or
 *              the connector
 *   answer     check the peer's answer, audit, log, respond
 * A stage calls only stages below it; the answer stage ends every request.
 * Authorisation is consulted before routing (who calls, with which scope)
 * and once the route knows whose resource it is (ownership, the target's
 * phase), as nginx runs its access phase after find-config. */
#ifndef OKEGW_REQUEST_H
#define OKEGW_REQUEST_H

#include "auth/jwks.h"
#include "base/conf.h"
#include "connector/plugin_host.h"
#include "delivery/outbox.h"
#include "http/http_client.h"
#include "http/server.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <uv.h>

typedef struct okegw_gateway okegw_gateway;

/* One configuration as the gateway runs it (generation.h). Calls hold a
 * reference; the connectors may be shared with other generations. */
typedef struct okegw_gen {
  unsigned refs;
  unsigned long number; /* 1 at start, one more per reload */
  okegw_gateway *g;
  struct okegw_confbox *box; /* holds conf */
  okegw_conf *conf;
  okegw_connector **conns; /* conns[i] is conf->connectors[i]'s (conf holds what calls of this
                              generation read; conns[i]->conf may be a newer file's section) */
  /* built, not installed yet: fresh mappings of the connectors carried
   * over from the running generation (NULL: one started for this one) */
  struct okegw_mapset **carry;
  size_t nconns;
  int identity; /* some connector has an inbound_token (or oauth_issuer is set): every caller
                   must present a credential */
} okegw_gen;

struct okegw_gateway {
  uv_loop_t *loop;
  okegw_gen *gen;   /* the current generation: what new calls take */
  size_t retiring;  /* connectors no generation holds, still draining */
  size_t gens;      /* generations alive (current, and those calls still hold) */
  int stop_waiting; /* stop waits for those before it closes the store */
  /* generation.c calls it once no generation and no retiring connector is
   * left (a stop closes the store then) */
  void (*all_released)(okegw_gateway *g);
  okegw_server *server;             /* plain HTTP (listen) */
  okegw_server *server_tls;         /* HTTPS (listen_tls), NULL when not configured */
  okegw_tls *tls;                   /* its certificate and key; a reload re-reads them */
  struct okegw_admin_server *admin; /* admin_listen (ops/admin_server.h), NULL when none */
  int draining;                     /* listeners still draining at stop */
  okegw_http *http;
  okegw_store *store;
  okegw_outbox *outbox;
  int stopping;
  okegw_jwks_source *oauth;          /* the issuer's keys when oauth_issuer is set; else NULL */
  struct okegw_token_issuer *issuer; /* token_endpoint = on: okegw's own tokens; else NULL */
  struct okegw_control *control;     /* okegw reload's socket, NULL when none */
  struct okegw_metrics *metrics;     /* /metrics (ops/metrics.h); NULL without memory for it */
  void (*stopped)(void *);
  void *stopped_arg;
  void (*reload_hook)(int reloading); /* okegw_gateway_set_reload_hook */
  uv_timer_t *audit_prune;            /* audit_retention_s: at start, then hourly */
  /* [gateway] workers (pipeline/workers.h). Loop 0's gateway owns the
   * store, the outbox, metrics, the token issuer, the control socket and
   * the admin listener, and `workers` (NULL with one loop); a worker loop's
   * gateway has its own loop, generation, listeners, TLS context, HTTP
   * client and JWKS source, borrows store, metrics and issuer, has no
   * outbox and points at loop 0's as `main` (NULL on loop 0). */
  struct okegw_workers *workers;
  okegw_gateway *main;
  struct okegw_worker *worker; /* a worker loop's gateway: its thread */
};

/* What dispatch records once every check passed (route stage decides). */
typedef struct okegw_records {
  /* bind c->id of this kind under (parent_kind, c->ref_id): the route of a
   * zitting, deelname or extra attempt; NULL = none */
  const char *bind_kind, *bind_parent_kind;
  /* record c->id as this kind, owned by the caller (flow 1: the DR's
   * planbare toetsen and toetsinschrijvingen); NULL = none */
  const char *own_kind;
  /* remember every documentId of the body as served by this system */
  const okegw_connector *documents;
  /* the facts recorded with the bound or owned id (state.c), owned */
  char *facts;
} okegw_records;

/* One incoming request. Owns body and out_body; freed by the answer stage. */
typedef struct okegw_call {
  okegw_gateway *g;
  okegw_gen *gen; /* the configuration it started with (held until it is answered) */
  okegw_req *req;
  int interaction;
  const char *oke_path; /* path below base_path, points into req->path */
  char id[64];          /* the path id */
  char sub_id[64];      /* a second path id (groups/{id}/members/{sub}) */
  char ref_id[64];      /* offering: its component; association: its offering */
  okegw_connector *target;
  okegw_connector *caller; /* who called, by its credential; NULL = anonymous */
  /* how the caller was identified (authorise): by a JWT access token, with
   * the client id it names and the scopes it grants for this request (only
   * those of the caller's own scopes); else by the connector's token */
  int by_jwt;
  unsigned jwt_scopes;
  char client_id[256];
  cJSON *body; /* the request body, parsed once (gateway) */
  okegw_records records;
  char mapping[65]; /* hash of the mappings the exchange ran with */
  /* set when the gateway sends something else than it received (a flow-3/4
   * return, or a supplier callback turned into an OKE flow-3 PATCH) */
  const char *out_method;
  char out_path[128];
  char *out_body;
  int validated;     /* the body passed the profile check already */
  int created;       /* a PUT okegw bound: 201 new, 200 known id; 0 = not known (R13) */
  int probed;        /* the TAs were asked who owns the offering's component */
  int existing;      /* work on a zitting already routed: a narrower phase does not stop it */
  const char *event; /* the audit row's event; NULL = "request" */
  struct okegw_mirror *mirror; /* shadow copies waiting for the live answer (mirror.h) */
  long long delivery_id;       /* a push: its outbox delivery */
  char digest[65];             /* SHA-256 of the request body, once computed */
  char rules[64];              /* OKE rules broken but forwarded (R22): "R21,R28" */
  /* acceptance evidence for the audit row: the profile violations found in
   * the request or the peer's answer (okegw_violations_evidence, owned), and
   * where a Lua mapping failed ("script.lua:12: message") */
  char *violations;
  char mapping_error[256];
  int stream_status; /* a streamed answer (documents) */
  size_t stream_bytes;
} okegw_call;

okegw_connector *okegw_connector_by_name(const okegw_gen *gen, const char *name);
/* The one connector of a role that takes the call's new work, or NULL with
 * the reason in why: for a production caller the one live connector that
 * is not an acceptance system; for an acceptance caller its one acceptance
 * counterpart if there is one, else the one live, pilot or shadow one. */
okegw_connector *okegw_single_live(const okegw_call *c, enum okegw_role role, char *why,
                                   size_t whysz);

#endif
