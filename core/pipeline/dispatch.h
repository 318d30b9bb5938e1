/* The dispatch stage: the request's body is checked against the OKE profile,
 * what the message opens is recorded (routes, the DR's own ids, document
 * references) only once every check passed, and the request goes to its
 * connector: pushes (PUT/PATCH) through the outbox, documents streamed,
 * reads straight to the plugin. */
#ifndef OKEGW_DISPATCH_H
#define OKEGW_DISPATCH_H

#include "pipeline/request.h"

/* Checks the call's body against the OKE profile for its interaction, as
 * soon as that is settled: 0, or -1 when refused (400 with every violation
 * and its JSON pointer; the call is gone). Runs once per call. */
int okegw_dispatch_check(okegw_call *c);
/* Sends the call to c->target (authorised by the route stage): checks the
 * body if not yet done, records what it opens, hands it on. */
void okegw_dispatch(okegw_call *c);

/* The outbox's hook (okegw_delivered_fn): a delivery reached its peer; what
 * that opens (the return route, whose deelname a person has, who planned a
 * zitting) goes into `out`, written with the delivery's end. */
size_t okegw_dispatch_delivered(void *ud, okegw_connector *conn, const okegw_delivery_rec *d,
                                const cJSON *body, okegw_route_write *out);

#endif
