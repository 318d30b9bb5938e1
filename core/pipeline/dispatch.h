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
/* Sends the call to conn (authorised for it, and its body checked, first). */
void okegw_dispatch(okegw_call *c, okegw_connector *conn);
/* The same for a connector named by a route; it may have left plugins.conf. */
void okegw_dispatch_named(okegw_call *c, const char *name);

/* The outbox's hook: a delivery reached its peer (records what that opens:
 * the return route, whose deelname a person has, who planned a zitting). */
void okegw_dispatch_delivered(void *ud, okegw_connector *conn, const okegw_delivery_rec *d,
                              const cJSON *body);

/* The delivery-status resource (GET /deliveries/{id}, and a 202's body). */
cJSON *okegw_delivery_status_json(const okegw_delivery_rec *d);

#endif
