/* Internal to the gateway modules (gateway.c, call.c, catalogue.c,
 * routing.c): the gateway's state and one request's way through it. Not part
 * of the plugin SDK. */
#ifndef OKEGW_CALL_H
#define OKEGW_CALL_H

#include "base/conf.h"
#include "pipeline/gateway.h"
#include "http/http_client.h"
#include "delivery/outbox.h"
#include "connector/plugin_host.h"
#include "http/server.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stddef.h>

struct okegw_gateway {
  uv_loop_t *loop;
  okegw_conf *conf;
  okegw_connector *conns;
  size_t nconns;
  okegw_server *server;
  okegw_http *http;
  okegw_store *store;
  okegw_outbox *outbox;
  int stopping;
  int identity; /* some connector has an inbound_token: every caller must present one */
  void (*stopped)(void *);
  void *stopped_arg;
};

/* One incoming request on its way through the gateway. */
typedef struct okegw_call {
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
  int validated;         /* the body passed the profile check already */
  int probed;            /* the TAs were asked who owns the offering's component */
  long long delivery_id; /* a push: its outbox delivery */
  char digest[65];       /* SHA-256 of the request body, once computed */
  int stream_status;     /* a streamed answer (documents) */
  size_t stream_bytes;
} okegw_call;

/* ---- call.c: answering, delivering, checking --------------------------- */

/* Logs the request line and answers; frees the call. */
void okegw_finish(okegw_call *c, int status, const char *ctype, const char *body, size_t len,
                  const char *extra_headers);
void okegw_finish_problem(okegw_call *c, int status, const char *connector, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void okegw_finish_json(okegw_call *c, int status, cJSON *j, const char *extra_headers);

okegw_connector *okegw_connector_by_name(okegw_gateway *g, const char *name);
/* A TA connector ICT has set live (ready or not: a failed one shows up). */
int okegw_is_live_ta(const okegw_connector *c);
/* The one live connector of a role, or NULL with the reason in why. */
okegw_connector *okegw_single_live(okegw_gateway *g, enum okegw_role role, char *why, size_t whysz);
okegw_connector *okegw_return_tpl(okegw_gateway *g, char *why, size_t whysz);

/* The OKE scope an interaction needs (digest R2); scope_for knows that a
 * document is flow 5 for a DR. */
unsigned okegw_scope_of(int interaction);
unsigned okegw_scope_for(const okegw_call *c);

/* 1 when the call's body breaks the profile (then answered 400). */
int okegw_refuse_invalid(okegw_call *c);
/* 1 when a peer's answer breaks the profile and the connector blocks it;
 * *out is then the 502 problem body. */
int okegw_check_answer(okegw_call *c, const okegw_answer *a, char **out);

/* Hands the call to a connector (scope, phase and profile checks first);
 * a push goes through the outbox. */
void okegw_deliver_to(okegw_call *c, okegw_connector *conn);
void okegw_deliver_to_named(okegw_call *c, const char *name);
/* The outbox's hook: a delivery reached its peer (records what that opens). */
void okegw_on_delivered(void *ud, okegw_connector *conn, const okegw_delivery_rec *d,
                        const cJSON *body);
/* GET /deliveries/{id}: how a push is doing. */
void okegw_delivery_status(okegw_call *c, const char *id);

/* ---- catalogue.c: flow 0 ------------------------------------------------ */

void okegw_list_components(okegw_call *c);
/* Asks every live TA for component id; done gets the first owner (or NULL). */
void okegw_probe_component(okegw_call *c, const char *id,
                           void (*done)(okegw_call *, okegw_connector *, const char *, const char *,
                                        size_t));
void okegw_on_component_route(void *ud, const okegw_route *r);

/* ---- routing.c: flows 1-6, documents, callbacks ------------------------ */

/* Parses the request body (JSON object) into *out, or answers 400/415. */
int okegw_check_body(okegw_call *c, cJSON **out);
void okegw_put_routed(okegw_call *c, const char *field, const char *id_field);
void okegw_lookup_routed(okegw_call *c, const char *kind);
void okegw_to_dr(okegw_call *c, int interaction, const char *kind);
void okegw_flow1_push(okegw_call *c);
void okegw_flow6(okegw_call *c);
const char *okegw_document_kind(enum okegw_role holder);
void okegw_remember_documents(okegw_call *c, const okegw_connector *holder);
void okegw_on_document_route(void *ud, const okegw_route *r);
void okegw_return_to_planning(okegw_call *c, const char *kind);
int okegw_bearer_ok(const okegw_req *r, const char *token);
void okegw_supplier_callback(okegw_call *c, const char *rest);

#endif
