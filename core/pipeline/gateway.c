#include "pipeline/call.h"
#include "oke/interaction.h"
#include "base/log.h"
#include "connector/mapping.h"
#include "oke/problem.h"
#include "base/util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- GET / ------------------------------------------------------------- */

static void service_metadata(okegw_call *c) {
  const okegw_conf *conf = c->g->conf;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "contactEmail", conf->contact_email);
  cJSON_AddStringToObject(o, "specification", conf->specification_url);
  cJSON_AddStringToObject(o, "documentation", conf->documentation_url);
  cJSON *v = cJSON_AddArrayToObject(o, "supportedVersions");
  cJSON_AddItemToArray(v, cJSON_CreateString("v5"));
  cJSON *cons = cJSON_AddArrayToObject(o, "supportedConsumers");
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "consumerKey", "nl-test-admin");
  cJSON_AddStringToObject(e, "version", "1.0.1");
  cJSON_AddItemToArray(cons, e);
  okegw_finish_json(c, 200, o, NULL);
  cJSON_Delete(o);
}

/* ---- matching ---------------------------------------------------------- */

/* Who may call an interaction: okegw answers in the role the caller calls
 * (towards TPL it is the TA, towards a TA it is the TPL), so the same path
 * means different interactions for different callers (digest §1.7). */
enum { BY_TPL = 1, BY_TA = 2, BY_DR = 4 };

typedef struct route_def {
  const char *shape; /* segments; "{id}" matches one path id */
  const char *method;
  unsigned callers; /* BY_* */
  int interaction;
} route_def;

static const route_def routes[] = {
    {"components", "GET", BY_TPL | BY_DR, OKE_I_FLOW0_LIST_COMPONENTS},
    {"components/{id}", "GET", BY_TPL | BY_DR, OKE_I_FLOW0_GET_COMPONENT},
    {"offerings/{id}", "PUT", BY_TPL, OKE_I_FLOW2_PUT_OFFERING},
    {"offerings/{id}", "PATCH", BY_TPL, OKE_I_FLOW2_PATCH_OFFERING},
    {"offerings/{id}", "PATCH", BY_TA, OKE_I_FLOW4_PATCH_OFFERING},
    {"offerings/{id}", "GET", BY_TPL, OKE_I_FLOW2_GET_OFFERING},
    {"offerings/{id}/associations", "GET", BY_TPL, OKE_I_FLOW2_LIST_ASSOCIATIONS},
    {"associations/{id}", "PUT", BY_TPL, OKE_I_FLOW2_PUT_ASSOCIATION},
    {"associations/{id}", "PATCH", BY_TPL, OKE_I_FLOW2_PATCH_ASSOCIATION},
    {"associations/{id}", "PATCH", BY_TA, OKE_I_FLOW3_PATCH_ASSOCIATION},
    {"associations/{id}", "GET", BY_TPL, OKE_I_FLOW2_GET_ASSOCIATION},
    {"associations/{id}/url", "GET", BY_TPL, OKE_I_FLOW2_GET_ASSOCIATION_URL},
    /* flow 1 pull: the TPL reads at the DR (offering and association reads
     * that are not zittingen or deelnames fall through to the DR too) */
    {"offerings", "GET", BY_TPL, OKE_I_FLOW1_LIST_OFFERINGS},
    {"persons/{id}", "GET", BY_TPL, OKE_I_FLOW1_GET_PERSON},
    {"organizations/{id}", "GET", BY_TPL, OKE_I_FLOW1_GET_ORGANIZATION},
    {"groups", "GET", BY_TPL, OKE_I_FLOW1_LIST_GROUPS},
    {"groups/{id}", "GET", BY_TPL, OKE_I_FLOW1_GET_GROUP},
    {"groups/{id}/members", "GET", BY_TPL, OKE_I_FLOW1_LIST_GROUP_MEMBERS},
    /* flow 1 push: the DR writes at the TPL */
    {"offerings/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_OFFERING},
    {"offerings/{id}", "PATCH", BY_DR, OKE_I_FLOW1_PATCH_OFFERING},
    {"associations/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_ASSOCIATION},
    {"associations/{id}", "PATCH", BY_DR, OKE_I_FLOW1_PATCH_ASSOCIATION},
    {"persons/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_PERSON},
    {"groups/{id}", "PUT", BY_DR, OKE_I_FLOW1_PUT_GROUP},
    {"groups/{id}/members/{sub}", "PUT", BY_DR, OKE_I_FLOW1_PUT_GROUP_MEMBER},
    /* documents: a TPL fetches them from the TA that referenced them (flows
     * 3, 4), a DR from the TPL (flow 5) */
    {"documents/{id}", "GET", BY_TPL | BY_DR, OKE_I_GET_DOCUMENT},
    /* flow 6: a TA reads programme enrolments at the DR */
    {"persons/{id}/associations", "GET", BY_TA, OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS},
};

static unsigned caller_bit(const okegw_connector *caller) {
  if (!caller)
    return BY_TPL; /* no identities configured: the caller is the school's TPL */
  switch (caller->conf->role) {
  case OKEGW_ROLE_TA: return BY_TA;
  case OKEGW_ROLE_DR: return BY_DR;
  case OKEGW_ROLE_TPL: return BY_TPL;
  }
  return 0;
}

/* Finds the connector whose inbound_token the request presents. Every token
 * is compared in constant time, so timing tells nothing about any of them.
 * Returns 0 (caller set, or anonymous when no identities are configured) or
 * the status to refuse with. */
static int identify(okegw_call *c) {
  okegw_gateway *g = c->g;
  const char *h = okegw_req_header(c->req, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0)
    return g->identity ? 401 : 0;
  okegw_connector *found = NULL;
  for (size_t i = 0; i < g->nconns; i++)
    if (g->conns[i].conf->inbound_token && okegw_bearer_ok(c->req, g->conns[i].conf->inbound_token))
      found = &g->conns[i];
  if (!found)
    return 401;
  c->caller = found;
  return 0;
}

/* Answers 401 and returns 1 when the caller presents no known token. */
static int refuse_unidentified(okegw_call *c) {
  if (!identify(c))
    return 0;
  char *body = okegw_problem_json(401, "Unauthorized",
                                  "present the bearer token this system was given for okegw "
                                  "(its connector's inbound_token)",
                                  NULL);
  okegw_finish(c, 401, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0,
               "WWW-Authenticate: Bearer\r\n");
  free(body);
  return 1;
}

/* Matches "a/b/c" against a shape; copies the {id} segment into id. */
static int shape_match(const char *shape, const char *path, char *id, char *sub, size_t idsz) {
  while (*shape && *path) {
    const char *ss = strchr(shape, '/'), *ps = strchr(path, '/');
    size_t sl = ss ? (size_t)(ss - shape) : strlen(shape);
    size_t pl = ps ? (size_t)(ps - path) : strlen(path);
    int is_id = sl == 4 && strncmp(shape, "{id}", 4) == 0;
    int is_sub = sl == 5 && strncmp(shape, "{sub}", 5) == 0;
    if (is_id || is_sub) {
      if (pl == 0 || pl >= idsz)
        return 0;
      memcpy(is_id ? id : sub, path, pl);
      (is_id ? id : sub)[pl] = '\0';
    } else if (sl != pl || strncmp(shape, path, sl) != 0) {
      return 0;
    }
    shape += sl + (ss ? 1 : 0);
    path += pl + (ps ? 1 : 0);
    if (!ss != !ps)
      return 0;
  }
  return !*shape && !*path;
}

void okegw_gateway_handle(okegw_req *req, void *ud) {
  okegw_gateway *g = ud;
  okegw_call *c = calloc(1, sizeof *c);
  if (!c) {
    okegw_respond_problem(req, 503, "Service Unavailable", "out of memory");
    return;
  }
  c->g = g;
  c->req = req;
  const char *path = req->path;

  if (strcmp(path, "/healthz") == 0) {
    /* the outbox depth tells ICT at a glance whether a peer is behind */
    char body[96];
    int n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"outbox\":%zu}",
                     okegw_outbox_depth(g->outbox));
    okegw_finish(c, 200, "application/json", body, (size_t)n, NULL);
    return;
  }
  if (strncmp(path, "/callbacks/", 11) == 0) {
    okegw_supplier_callback(c, path + 11);
    return;
  }
  if (strncmp(path, "/deliveries/", 12) == 0) {
    if (!refuse_unidentified(c))
      okegw_delivery_status(c, path + 12);
    return;
  }
  size_t blen = strlen(g->conf->base_path);
  if (strncmp(path, g->conf->base_path, blen) != 0 || (path[blen] && path[blen] != '/')) {
    okegw_finish_problem(c, 404, NULL, "no OKE resource at %s (the OKE base path is '%s')", path,
                         g->conf->base_path);
    return;
  }
  c->oke_path = path + blen;
  const char *rel = c->oke_path[0] == '/' ? c->oke_path + 1 : c->oke_path;
  if (!*rel) {
    if (strcmp(req->method, "GET") != 0) {
      okegw_finish(c, 405, OKEGW_PROBLEM_TYPE, NULL, 0, "Allow: GET\r\n");
      return;
    }
    service_metadata(c);
    return;
  }

  if (refuse_unidentified(c))
    return;
  unsigned who = caller_bit(c->caller);
  char allow[64] = "";
  int matched_path = 0, other_caller = 0;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    char id[sizeof c->id] = "", sub[sizeof c->sub_id] = "";
    if (!shape_match(routes[i].shape, rel, id, sub, sizeof id))
      continue;
    matched_path = 1;
    if (strcmp(routes[i].method, req->method) != 0) {
      size_t used = strlen(allow);
      if (!strstr(allow, routes[i].method))
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
      continue;
    }
    if (!(routes[i].callers & who)) {
      other_caller = 1;
      continue;
    }
    c->interaction = routes[i].interaction;
    memcpy(c->id, id, sizeof id);
    memcpy(c->sub_id, sub, sizeof sub);
    break;
  }
  if (!c->interaction && other_caller) {
    okegw_finish_problem(c, 403, c->caller ? c->caller->conf->name : NULL,
                         "a %s system may not %s %s (OKE lets other roles do that)",
                         c->caller ? okegw_role_name(c->caller->conf->role) : "tpl", req->method,
                         path);
    return;
  }
  if (!c->interaction) {
    if (matched_path) {
      char *body = okegw_problem_json(405, "Method Not Allowed", "method not allowed here", NULL);
      char hdr[96];
      snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
      okegw_finish(c, 405, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, hdr);
      free(body);
    } else {
      okegw_finish_problem(c, 404, NULL, "no OKE interaction at %s", path);
    }
    return;
  }
  if ((c->id[0] && !okegw_is_uuid(c->id)) || (c->sub_id[0] && !okegw_is_uuid(c->sub_id))) {
    okegw_finish_problem(c, 400, NULL, "an id in the path is not a UUID: %s", path);
    return;
  }
  if (g->stopping) {
    okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
    return;
  }
  if (c->caller) {
    unsigned scope = okegw_scope_for(c);
    if (!(c->caller->conf->scopes & scope)) {
      okegw_finish_problem(
          c, 403, c->caller->conf->name, "connector '%s' does not have the scope %s that %s needs",
          c->caller->conf->name, okegw_scope_name(scope), okegw_interaction_name(c->interaction));
      return;
    }
    if (c->caller->conf->phase == OKEGW_PHASE_OFF) {
      okegw_finish_problem(c, 503, c->caller->conf->name,
                           "connector '%s' is in phase off: okegw does not carry its requests yet",
                           c->caller->conf->name);
      return;
    }
  }

  switch (c->interaction) {
  case OKE_I_FLOW1_LIST_OFFERINGS:
  case OKE_I_FLOW1_LIST_GROUPS: okegw_to_dr(c, c->interaction, NULL); break;
  case OKE_I_FLOW1_GET_PERSON:
  case OKE_I_FLOW1_GET_ORGANIZATION:
  case OKE_I_FLOW1_GET_GROUP:
  case OKE_I_FLOW1_LIST_GROUP_MEMBERS: okegw_to_dr(c, c->interaction, NULL); break;
  case OKE_I_FLOW1_PUT_OFFERING:
  case OKE_I_FLOW1_PATCH_OFFERING:
  case OKE_I_FLOW1_PUT_ASSOCIATION:
  case OKE_I_FLOW1_PATCH_ASSOCIATION:
  case OKE_I_FLOW1_PUT_PERSON:
  case OKE_I_FLOW1_PUT_GROUP:
  case OKE_I_FLOW1_PUT_GROUP_MEMBER: okegw_flow1_push(c); break;
  case OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS: okegw_flow6(c); break;
  case OKE_I_GET_DOCUMENT:
    /* a TPL fetches from a TA, a DR from the TPL: not from just anyone */
    if (okegw_store_lookup(g->store,
                           okegw_document_kind(c->caller && c->caller->conf->role == OKEGW_ROLE_DR
                                                   ? OKEGW_ROLE_TPL
                                                   : OKEGW_ROLE_TA),
                           c->id, okegw_on_document_route, c) < 0)
      okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
    break;
  case OKE_I_FLOW3_PATCH_ASSOCIATION:
  case OKE_I_FLOW4_PATCH_OFFERING:
    if (okegw_check_body(c, &c->body) < 0)
      return;
    c->target = c->caller;
    okegw_return_to_planning(c, c->interaction == OKE_I_FLOW3_PATCH_ASSOCIATION ? "association"
                                                                                : "offering");
    break;
  case OKE_I_FLOW0_LIST_COMPONENTS: okegw_list_components(c); break;
  case OKE_I_FLOW0_GET_COMPONENT:
    if (okegw_store_lookup(g->store, "component", c->id, okegw_on_component_route, c) < 0)
      okegw_finish_problem(c, 503, NULL, "the gateway is shutting down");
    break;
  case OKE_I_FLOW2_PUT_OFFERING: okegw_put_routed(c, "component", "componentId"); break;
  case OKE_I_FLOW2_PUT_ASSOCIATION: okegw_put_routed(c, "offering", "offeringId"); break;
  case OKE_I_FLOW2_PATCH_OFFERING:
  case OKE_I_FLOW2_GET_OFFERING:
  case OKE_I_FLOW2_LIST_ASSOCIATIONS: okegw_lookup_routed(c, "offering"); break;
  default: okegw_lookup_routed(c, "association"); break;
  }
}

/* ---- lifetime ---------------------------------------------------------- */

int okegw_gateway_load_mappings(const okegw_conf *conf, const okegw_conf_connector *cc,
                                okegw_mapset **out, okegw_diag *diag) {
  okegw_map_limits lim = {.memory_bytes = conf->lua_memory_bytes,
                          .instructions = conf->lua_instructions,
                          .lib_dir = conf->scripts_lib};
  okegw_diag local = {0};
  okegw_diag *d = diag ? diag : &local;
  int rc = okegw_mapset_load(cc->scripts, !cc->scripts_explicit, &lim, out, d);
  if (!diag) {
    for (size_t i = 0; i < local.n; i++)
      okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = cc->name, .latency_ms = -1}, "%s",
                local.msgs[i]);
    okegw_diag_free(&local);
  }
  return rc;
}

void okegw_gateway_reload(okegw_gateway *g) {
  size_t changed = 0, failed = 0;
  for (size_t i = 0; i < g->nconns; i++) {
    okegw_connector *c = &g->conns[i];
    if (!c->plugin)
      continue;
    okegw_mapset *fresh = NULL;
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = c->conf->name;
    if (okegw_gateway_load_mappings(g->conf, c->conf, &fresh, NULL) < 0) {
      failed++;
      f.mapping = okegw_mapset_hash(c->maps);
      okegw_log(OKEGW_LOG_ERROR, &f, "mappings of '%s' not reloaded: the previous version stays",
                c->conf->name);
      continue;
    }
    if (strcmp(okegw_mapset_hash(fresh), okegw_mapset_hash(c->maps)) == 0) {
      okegw_mapset_unref(fresh);
      continue;
    }
    /* Exchanges in flight hold their own reference to the old set. */
    okegw_mapset_unref(c->maps);
    c->maps = fresh;
    changed++;
    f.mapping = okegw_mapset_hash(fresh);
    okegw_log(OKEGW_LOG_INFO, &f, "mappings of '%s' reloaded", c->conf->name);
    if (!c->ready && !c->initialised) {
      /* disabled at startup by its mappings only: start it now */
      free(c->error);
      c->error = NULL;
      if (okegw_connector_init(c, g->loop, g->http, g->conf->request_timeout_ms) == 0)
        okegw_log(OKEGW_LOG_INFO, &f, "connector '%s' ready", c->conf->name);
      else
        okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' still disabled: %s", c->conf->name,
                  c->error ? c->error : "?");
    }
  }
  okegw_log(OKEGW_LOG_INFO, NULL, "reload: %zu connector(s) with new mappings, %zu failed", changed,
            failed);
}

int okegw_gateway_start(uv_loop_t *loop, okegw_conf *conf, okegw_gateway **out) {
  okegw_gateway *g = calloc(1, sizeof *g);
  if (!g)
    return -1;
  g->loop = loop;
  g->conf = conf;
  char *err = NULL;
  if (okegw_store_open(loop, conf->store, conf->store_sync, &g->store, &err) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "%s", err ? err : "cannot open the store");
    free(err);
    free(g);
    return -1;
  }
  if (okegw_http_init(loop, &g->http) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot initialise the HTTP client");
    okegw_store_close(g->store, NULL, NULL);
    free(g);
    return -1;
  }
  g->conns = calloc(conf->nconnectors ? conf->nconnectors : 1, sizeof *g->conns);
  g->nconns = conf->nconnectors;
  for (size_t i = 0; g->conns && i < conf->nconnectors; i++) {
    okegw_connector *c = &g->conns[i];
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = conf->connectors[i].name;
    /* A refused plugin or broken mapping disables only its own connector;
     * a SIGHUP with fixed scripts brings it up later. */
    if (okegw_connector_load(c, conf, &conf->connectors[i], NULL) < 0) {
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' disabled: %s", f.connector,
                c->error ? c->error : "?");
      continue;
    }
    c->loop = loop;
    c->http = g->http;
    c->max_document_bytes = conf->max_document_bytes;
    if (okegw_gateway_load_mappings(conf, &conf->connectors[i], &c->maps, NULL) < 0) {
      free(c->error);
      c->error = okegw_strdup("its Lua mappings do not compile (see the log); fix them and send "
                              "SIGHUP");
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' disabled: %s", f.connector, c->error);
      continue;
    }
    if (okegw_connector_init(c, loop, g->http, conf->request_timeout_ms) < 0) {
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' disabled: %s", f.connector,
                c->error ? c->error : "?");
      continue;
    }
    f.mapping = okegw_mapset_hash(c->maps);
    okegw_log(OKEGW_LOG_INFO, &f,
              "connector '%s' ready: plugin %s %s, role %s, phase %s, mappings %s (%s)",
              f.connector, c->plugin->name, c->plugin->version ? c->plugin->version : "",
              okegw_role_name(c->conf->role), okegw_phase_name(c->conf->phase),
              okegw_mapset_dir(c->maps), f.mapping);
  }
  for (size_t i = 0; i < g->nconns; i++)
    if (conf->connectors[i].inbound_token)
      g->identity = 1;
  if (!g->conns || okegw_outbox_start(loop, g->store, conf, g->conns, g->nconns, okegw_on_delivered,
                                      g, &g->outbox) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory");
    *out = g;
    return -1;
  }
  if (!g->identity)
    okegw_log(OKEGW_LOG_WARN, NULL,
              "no connector has an inbound_token: every caller is trusted as the school's TPL "
              "(fine for a demo; give each calling system its own token before going live)");
  okegw_server_opts so = {.host = conf->listen_host,
                          .port = conf->listen_port,
                          .max_header_bytes = conf->max_header_bytes,
                          .max_body_bytes = conf->max_body_bytes,
                          .idle_timeout_ms = conf->idle_timeout_ms,
                          .max_connections = conf->max_connections,
                          .handler = okegw_gateway_handle,
                          .ud = g};
  int rc = okegw_server_start(loop, &so, &g->server);
  if (rc < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot listen on %s:%d: %s", conf->listen_host,
              conf->listen_port, uv_strerror(rc));
    *out = g;
    return -1;
  }
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.addr = conf->listen_host;
  f.port = okegw_server_port(g->server);
  okegw_log(OKEGW_LOG_INFO, &f, "listening");
  *out = g;
  return 0;
}

static void on_store_closed(void *arg) {
  okegw_gateway *g = arg;
  void (*cb)(void *) = g->stopped;
  void *cb_arg = g->stopped_arg;
  okegw_server_free(g->server);
  free(g->conns);
  free(g);
  if (cb)
    cb(cb_arg);
}

static void on_unloaded(void *arg) {
  okegw_gateway *g = arg;
  okegw_store_close(g->store, on_store_closed, g);
}

static void on_drained(void *arg) {
  okegw_gateway *g = arg;
  /* No request is left; plugins may still have exchanges only when their
   * guard fired or the outbox retries: those waiting on HTTP end with the
   * client, the others are waited for before fini (deliveries under way
   * stay pending in the store for the next start). */
  okegw_outbox_close(g->outbox);
  okegw_http_close(g->http);
  okegw_connectors_drain(g->conns, g->nconns, on_unloaded, g);
}

void okegw_gateway_stop(okegw_gateway *g, void (*done)(void *), void *arg) {
  if (g->stopping)
    return;
  g->stopping = 1;
  g->stopped = done;
  g->stopped_arg = arg;
  okegw_log(OKEGW_LOG_INFO, NULL, "draining %zu open request(s)",
            g->server ? okegw_server_in_flight(g->server) : (size_t)0);
  if (g->server)
    okegw_server_drain(g->server, on_drained, g);
  else
    on_drained(g);
}
