/* The authorise stage: the one place that decides who may do what to which
 * resource. Identity (bearer token), role (which interactions a system of
 * that role may call), scope (OKE R2, per flow), phase (of the caller and of
 * the connector that would carry the request) and ownership (the return
 * route, flow 6, documents, deliveries).
 *
 * Every okegw_authorise_* that takes a call returns 0 when the request may go
 * on, or -1 when it was refused: the call is then answered (401, 403, 404 or
 * 503 problem+json) and gone. */
#ifndef OKEGW_AUTHORISE_H
#define OKEGW_AUTHORISE_H

#include "pipeline/request.h"

/* Which kinds of caller a route-table row admits. */
enum { OKEGW_BY_TPL = 1, OKEGW_BY_TA = 2, OKEGW_BY_DR = 4 };

/* Sets c->caller from the request's bearer token (every configured token
 * is compared in constant time), or, with oauth_issuer set, from a JWT
 * access token of that issuer (c->by_jwt, c->client_id, c->jwt_scopes).
 * Without identities configured every caller is the school's TPL. A JWT
 * signed with a key okegw has not fetched yet makes the request wait for the
 * issuer's keys: the call is then freed and `again` runs with the request
 * (and the gateway) once they are in; -1 is returned as for a refusal. */
int okegw_authorise_identify(okegw_call *c, okegw_req_handler again);
/* The OKEGW_BY_* bit of the caller's role. */
unsigned okegw_authorise_role(const okegw_call *c);
/* Answers 403: the path exists for other roles only. */
void okegw_authorise_refuse_role(okegw_call *c);
/* The caller's scope covers c->interaction (which may have been settled only
 * by the route: a TPL's PATCH of a toetsinschrijving is flow 5) and the
 * caller is not in phase off. */
int okegw_authorise_call(okegw_call *c);
/* The connector may carry the call now: the caller's scope for the settled
 * interaction, the connector's phase (DESIGN.md §8: off takes no new work;
 * shadow only an acceptance caller's; pilot a production caller's only
 * inside pilot_components / pilot_organizations; c->existing work goes on
 * in every phase), its plugin ready. */
int okegw_authorise_target(okegw_call *c, okegw_connector *conn);
/* 1 when the caller sees conn in the catalogue: live and pilot connectors,
 * shadow ones for acceptance callers. */
int okegw_authorise_sees(const okegw_call *c, const okegw_connector *conn);
/* 1 when the caller sees component of conn: a pilot with pilot_components
 * shows production callers only those. */
int okegw_authorise_sees_component(const okegw_call *c, const okegw_connector *conn,
                                   const char *component);
/* 1 when a supplier reports (flow 3/4) on a zitting or deelname routed to
 * the connector it mirrors: it saw it only as a copy, so its report goes
 * to the planner only when that is an acceptance system, and is otherwise
 * recorded and not forwarded (okegw_answer_withheld). */
int okegw_authorise_mirror_return(const okegw_call *c, const okegw_route *r);
/* Flow 3/4 (OKE ground rule 5): the TA writes about a deelname or zitting
 * this gateway delivered to that same TA. r is the resource's route. */
int okegw_authorise_return(okegw_call *c, const okegw_route *r);
/* The caller owns the resource r describes (the planning system of a
 * zitting or deelname, the DR of its own ids, the system entitled to a
 * document), or nobody was recorded as its owner. Another system gets the
 * same 404 as for an unknown id (`unknown`, a printf format taking `id`),
 * so it learns nothing of other systems' exams. */
int okegw_authorise_owner(okegw_call *c, const okegw_route *r, const char *unknown, const char *id);
/* Flow 6 (data minimisation): r is the lookup of the caller's deelname of
 * person c->id. */
int okegw_authorise_person(okegw_call *c, const okegw_route *r);
/* A supplier's callback presents the connector's callback_token, and the
 * connector is not off. */
int okegw_authorise_callback(okegw_call *c, okegw_connector *conn);
/* 1 when the caller may read the delivery (its own, or every one without
 * identities). */
int okegw_authorise_delivery(const okegw_call *c, const okegw_delivery_rec *d);

/* The OKE scope an interaction needs (digest R2); scope_for knows that a
 * document is flow 5 for a DR. */
unsigned okegw_scope_of(int interaction);
unsigned okegw_scope_for(const okegw_call *c);

#endif
