/* The gateway: the first stage of every request (system endpoints, the
 * route table that matches an OKE interaction, the body parsed once) and the
 * gateway's lifetime (start, reload, drain). See request.h for the stages. */
#ifndef OKEGW_GATEWAY_H
#define OKEGW_GATEWAY_H

#include "base/conf.h"
#include "connector/mapping.h"
#include "http/server.h"

#include <uv.h>

typedef struct okegw_gateway okegw_gateway;

/* Loads plugins (refused ones are logged and stay unavailable), opens the
 * store and starts listening. Returns 0 or -1 with a message logged. */
int okegw_gateway_start(uv_loop_t *loop, okegw_conf *conf, okegw_gateway **out);
/* Drains open requests, then releases everything; done runs when finished. */
void okegw_gateway_stop(okegw_gateway *g, void (*done)(void *), void *arg);

/* SIGHUP: recompiles every connector's Lua mappings. A connector whose
 * scripts fail keeps its previous version (the errors are logged as
 * file:line); requests in flight finish on the version they started with. */
void okegw_gateway_reload(okegw_gateway *g);
/* The TLS listener's settings from [gateway] (also for okegw -t). */
okegw_tls_opts okegw_gateway_tls_opts(const okegw_conf *conf);

/* Compiles the mappings of one connector section. Errors go to diag, or to
 * the log when diag is NULL. */
int okegw_gateway_load_mappings(const okegw_conf *conf, const okegw_conf_connector *cc,
                                okegw_mapset **out, okegw_diag *diag);

/* Entry point of the HTTP server (exposed for tests). */
void okegw_gateway_handle(okegw_req *req, void *gateway);

#endif
