/* Look-ups of the gateway's connectors that every stage shares. */
#include "pipeline/request.h"

#include <stdio.h>
#include <string.h>

okegw_connector *okegw_connector_by_name(const okegw_gen *gen, const char *name) {
  for (size_t i = 0; i < gen->nconns; i++)
    if (strcmp(gen->conns[i]->conf->name, name) == 0)
      return gen->conns[i];
  return NULL;
}

okegw_connector *okegw_single_live(const okegw_call *c, enum okegw_role role, char *why,
                                   size_t whysz) {
  int acceptance = c->caller && c->caller->conf->acceptance;
  okegw_connector *found = NULL, *mate = NULL;
  size_t n = 0, mates = 0;
  for (size_t i = 0; i < c->gen->nconns; i++) {
    okegw_connector *k = c->gen->conns[i];
    enum okegw_phase p = k->conf->phase;
    if (k->conf->role != role || !k->ready)
      continue;
    if (acceptance && k->conf->acceptance) {
      mate = k;
      mates++;
    }
    /* production work never reaches an acceptance system */
    if (acceptance ? p != OKEGW_PHASE_OFF : p == OKEGW_PHASE_LIVE && !k->conf->acceptance) {
      found = k;
      n++;
    }
  }
  if (mates == 1)
    return mate;
  if (n == 1)
    return found;
  snprintf(why, whysz, "%s %s %s connector (exactly one is needed)", n ? "more than one" : "no",
           acceptance ? "live, pilot or shadow" : "live", okegw_role_name(role));
  return NULL;
}
