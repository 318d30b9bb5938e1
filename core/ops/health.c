/* See health.h. */
#include "ops/health.h"
#include "base/json.h"
#include "base/log.h"
#include "delivery/outbox.h"
#include "ops/metrics.h"
#include "pipeline/request.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void okegw_health_connector(const okegw_connector *c, okegw_conn_health *out) {
  *out = (okegw_conn_health){.health = "unknown"};
  okegw_metrics_recent(c->metrics, &out->requests_5m, &out->errors_5m);
  if (!c->ready) {
    out->health = "down";
    snprintf(out->reason, sizeof out->reason, "not started: %s",
             c->error ? c->error : "see the log");
  } else if (c->token_failing) {
    out->health = "down";
    snprintf(out->reason, sizeof out->reason, "its OAuth token endpoint fails");
  } else if (c->health != OKE_OK) {
    out->health = "down";
    snprintf(out->reason, sizeof out->reason, "its plugin's health check says %d (%s)", c->health,
             oke_strerror(c->health));
  } else if (out->requests_5m >= OKEGW_HEALTH_MIN_REQUESTS &&
             out->errors_5m * 2 >= out->requests_5m) {
    out->health = "down";
    snprintf(out->reason, sizeof out->reason,
             "%lu of its %lu exchanges in the last 5 minutes failed (5xx or no answer)",
             out->errors_5m, out->requests_5m);
  } else if (c->health_at_ms || out->requests_5m) {
    out->health = "up";
  }
}

void okegw_health_serve_alive(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)g;
  (void)rest;
  static const char body[] = "{\"status\":\"alive\"}";
  okegw_respond(req, 200, "application/json", body, sizeof body - 1, NULL);
}

void okegw_health_serve_ready(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)rest;
  int store_ok = okegw_store_healthy(g->store);
  int conf_ok = g->gen != NULL;
  int listening = g->server != NULL && !g->stopping;
  int ok = store_ok && conf_ok && listening;
  cJSON *j = cJSON_CreateObject();
  cJSON *conns = j ? cJSON_AddArrayToObject(j, "connectors") : NULL;
  int oom = !conns;
  if (!oom) {
    cJSON_AddStringToObject(j, "status", ok ? "ready" : "not ready");
    cJSON_AddStringToObject(j, "store", store_ok ? "ok" : "failing");
    cJSON_AddBoolToObject(j, "configuration", conf_ok);
    cJSON_AddBoolToObject(j, "listening", listening);
    cJSON_AddNumberToObject(j, "outbox", (double)okegw_outbox_depth(g->outbox));
  }
  for (size_t i = 0; !oom && g->gen && i < g->gen->nconns; i++) {
    const okegw_connector *c = g->gen->conns[i];
    okegw_conn_health h;
    okegw_health_connector(c, &h);
    cJSON *e = cJSON_CreateObject();
    oom = !e || !cJSON_AddItemToArray(conns, e);
    if (oom) {
      cJSON_Delete(e);
      break;
    }
    cJSON_AddStringToObject(e, "name", c->conf->name);
    cJSON_AddStringToObject(e, "phase", okegw_phase_name(c->conf->phase));
    cJSON_AddStringToObject(e, "health", h.health);
    cJSON_AddStringToObject(e, "reason", h.reason);
    cJSON_AddNumberToObject(e, "errors_5m", (double)h.errors_5m);
    cJSON_AddNumberToObject(e, "requests_5m", (double)h.requests_5m);
  }
  char *body = oom ? NULL : okegw_json_print(j);
  cJSON_Delete(j);
  if (!body) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "/readyz: out of memory");
    okegw_respond_problem(req, 500, "Internal Server Error", "out of memory");
    return;
  }
  okegw_respond(req, ok ? 200 : 503, "application/json", body, strlen(body),
                ok ? NULL : "Retry-After: 5\r\n");
  free(body);
}
