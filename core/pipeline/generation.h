/* Generations: one configuration as the gateway runs it (its settings, its
 * connectors, whether callers must identify themselves). Every call holds
 * the generation it started with, so a reload never changes a request
 * half-way: the new generation takes new calls, the old one lives until its
 * last call ended. A connector whose instance settings a reload leaves as
 * they were is carried into the new generation (only its host settings,
 * such as the phase or the tokens, and its mappings change); one that was
 * removed or replaced stops taking new work once no generation holds it,
 * drains (exchanges in flight end), and only then is its plugin's fini
 * called and its .so unloaded. */
#ifndef OKEGW_GENERATION_H
#define OKEGW_GENERATION_H

#include "pipeline/request.h"

/* Builds the generation for conf, which it takes over (heap-allocated; it
 * is freed with the generation, or at once on failure). Connectors of prev
 * (NULL at start) whose instance settings are unchanged are carried over
 * with fresh mappings; the others are loaded and initialised now. strict
 * (a reload): any connector that does not load, compile or initialise fails
 * the whole build (its problems in diag as FILE:LINE: message) and nothing
 * changes; otherwise (start) it is logged and stays unavailable. Returns 0
 * or -1. */
int okegw_gen_build(okegw_gateway *g, okegw_conf *conf, okegw_gen *prev, int strict,
                    okegw_diag *diag, okegw_gen **out);
/* The same for another event loop ([gateway] workers): a generation of g's
 * own (its own connector instances and Lua states) for the configuration
 * model was built with, which both then share read-only. A connector that
 * is ready in model must start here too (else -1, whatever strict says).
 * The model must stay alive until this returns. */
int okegw_gen_build_like(okegw_gateway *g, const okegw_gen *model, okegw_gen *prev, int strict,
                         okegw_diag *diag, okegw_gen **out);
/* Makes gen the current generation (new calls take it, the outbox delivers
 * with its connectors) and releases the previous one. */
void okegw_gen_install(okegw_gateway *g, okegw_gen *gen);

/* Compiles the mappings of one connector section. Errors go to diag, or to
 * the log when diag is NULL. */
int okegw_gen_load_mappings(const okegw_conf *conf, const okegw_conf_connector *cc,
                            okegw_mapset **out, okegw_diag *diag);

okegw_gen *okegw_gen_ref(okegw_gen *gen);
void okegw_gen_unref(okegw_gen *gen);

/* 1 when a reload keeps the connector's instance for section b: plugin,
 * address, outbound credentials and limits, plugin keys are as in a. */
int okegw_gen_same_instance(const okegw_conf *ca, const okegw_conf_connector *a,
                            const okegw_conf *cb, const okegw_conf_connector *b);

#endif
