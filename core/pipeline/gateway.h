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
 * store and starts listening. conf is heap-allocated and taken over (also
 * on failure). Returns 0 or -1 with a message logged; on -1 *out may be
 * set, and must then be stopped. */
int okegw_gateway_start(uv_loop_t *loop, okegw_conf *conf, okegw_gateway **out);
/* Drains open requests, then releases everything; done runs when finished. */
void okegw_gateway_stop(okegw_gateway *g, void (*done)(void *), void *arg);

/* Reads the configuration file again and applies all of it, or nothing:
 * connectors added, removed (they drain, then unload), changed (a new
 * instance when plugin, address, outbound credentials or limits changed;
 * the same one with new host settings, such as the phase or tokens, and
 * fresh mappings otherwise), the [gateway] limits, log level and TLS
 * certificate. Settings that need a restart keep their running value
 * (said in the report). A file, mapping, plugin or certificate with any
 * error changes nothing. Requests in flight finish with the configuration
 * they started with. Returns 0 when applied, -1 when refused; report gets
 * the errors (FILE:LINE: message) or what changed. */
int okegw_gateway_reload(okegw_gateway *g, okegw_diag *report);
/* SIGHUP: okegw_gateway_reload with its report in the log. */
void okegw_gateway_sighup(okegw_gateway *g);
/* hook(1) when a reload starts and hook(0) when it ended, taken or not
 * (SIGHUP and okegw reload alike): main tells systemd through it, so the
 * pipeline does not depend on libsystemd. NULL = nobody. */
void okegw_gateway_set_reload_hook(okegw_gateway *g, void (*hook)(int reloading));

/* [gateway] workers (workers.h): the gateway of event loop 1 .. N-1, on
 * that loop's thread, while loop 0 waits. Same contract as
 * okegw_gateway_start. */
struct okegw_worker;
int okegw_gateway_start_worker(uv_loop_t *loop, okegw_gateway *main, struct okegw_worker *w,
                               okegw_gateway **out);
/* A reload's generation, on a worker's loop (loop 0 installed its own). */
struct okegw_gen;
void okegw_gateway_install_worker(okegw_gateway *g, struct okegw_gen *gen);

/* The TLS listener's settings from [gateway] (also for okegw -t). */
okegw_tls_opts okegw_gateway_tls_opts(const okegw_conf *conf);

/* Entry point of the HTTP server (exposed for tests). */
void okegw_gateway_handle(okegw_req *req, void *gateway);

#endif
