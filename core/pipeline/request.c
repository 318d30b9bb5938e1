/* Look-ups of the gateway's connectors that every stage shares. */
#include "pipeline/request.h"

#include <stdio.h>
#include <string.h>

okegw_connector *okegw_connector_by_name(okegw_gateway *g, const char *name) {
  for (size_t i = 0; i < g->nconns; i++)
    if (strcmp(g->conns[i].conf->name, name) == 0)
      return &g->conns[i];
  return NULL;
}

okegw_connector *okegw_single_live(okegw_gateway *g, enum okegw_role role, char *why,
                                   size_t whysz) {
  okegw_connector *found = NULL;
  size_t n = 0;
  for (size_t i = 0; i < g->nconns; i++) {
    okegw_connector *c = &g->conns[i];
    if (c->conf->role == role && c->conf->phase == OKEGW_PHASE_LIVE && c->ready) {
      found = c;
      n++;
    }
  }
  if (n == 1)
    return found;
  snprintf(why, whysz, "%s live %s connector (exactly one is needed)", n ? "more than one" : "no",
           okegw_role_name(role));
  return NULL;
}
