/* The route stage: finds the resource a request is about and the connector
 * that carries it, from the catalogue (flow 0: catalogue.c), the
 * correlation store (zittingen, deelnames, the DR's own ids, documents) and
 * the return route (flows 3, 4), settles the interaction where only the
 * store can tell (a TPL's PATCH of a toetsinschrijving is flow 5), and
 * says what dispatch must record once the request passed every check. It
 * writes nothing itself. Each function here is the handler of route-table
 * rows (gateway.c). */
#ifndef OKEGW_ROUTE_H
#define OKEGW_ROUTE_H

#include "pipeline/request.h"

/* Every route ends here: the connector is authorised for the call (scope,
 * phase, ready), then dispatch takes it. The named form is for a connector
 * a stored route names (it may have left plugins.conf). */
void okegw_route_to(okegw_call *c, okegw_connector *conn);
void okegw_route_to_named(okegw_call *c, const char *name);

/* PUT /offerings/{id}: to the TA that owns the zitting's component. */
void okegw_route_put_offering(okegw_call *c);
/* PUT /associations/{id}: to the TA of the deelname's zitting; an extra
 * attempt (flow 5) to the DR of the original toetsinschrijving. */
void okegw_route_put_association(okegw_call *c);
/* A TPL's read or change of a zitting or deelname (by the store), or else of
 * the DR's planbare toets or toetsinschrijving. */
void okegw_route_offering(okegw_call *c);
void okegw_route_association(okegw_call *c);
/* Flow 1 reads of a TPL at the DR. */
void okegw_route_to_dr(okegw_call *c);
/* Flow 1 pushes of a DR to the TPL. */
void okegw_route_flow1_push(okegw_call *c);
/* Flow 6: a TA reads the programme enrolments of one of its candidates. */
void okegw_route_flow6(okegw_call *c);
/* GET /documents/{id}: from the system whose message referenced it. */
void okegw_route_document(okegw_call *c);
/* Flows 3, 4: a TA's result or session report back to the planner. */
void okegw_route_return(okegw_call *c);
/* POST /callbacks/{connector}/...: a non-OKE supplier's result, mapped into
 * an OKE flow-3 result and sent on the return route. */
void okegw_route_callback(okegw_call *c);

/* Flow 0 (catalogue.c): the merged catalogue, and one component. */
void okegw_route_components(okegw_call *c);
void okegw_route_component(okegw_call *c);
/* Asks every live TA for component id; done gets the first owner (or NULL)
 * and its answer. The owner is recorded before done runs. */
typedef void (*okegw_probe_done)(okegw_call *c, okegw_connector *owner, const char *ctype,
                                 const char *body, size_t len);
void okegw_probe_component(okegw_call *c, const char *id, okegw_probe_done done);

#endif
