/* What okegw knows of an exam's state, and the stateful OKE rules checked
 * against it (digest §4: R18-R28). The facts of a resource are a small JSON
 * object kept with its route in the store (okegw_route.facts): the route
 * stage reads them, these functions judge a message by them, and dispatch
 * (or the delivery's end) records what the message changes.
 *
 * A rule broken by a malformed message is a refusal (400/409, the call is
 * answered and the function returns -1). A rule that R22 (accept-always)
 * forbids to refuse is a warning: logged at warn with "rule" and the
 * resource, and named in the exchange's audit row; the message goes on. */
#ifndef OKEGW_STATE_H
#define OKEGW_STATE_H

#include "pipeline/request.h"

/* The parsed facts; strings "" and numbers -1 when unknown. */
typedef struct okegw_facts {
  char rvt[40];      /* resultValueType: of the component, zitting or planbare toets */
  long extra_max;    /* the component's additionalTestingTime (minutes; >= 10000 unlimited) */
  char needs[320];   /* the component's availablePersonalNeeds, "|a|b|" ("" unknown) */
  char person[64];   /* deelname, toetsinschrijving: its person */
  char offering[64]; /* toetsinschrijving: its planbare toets */
  char type[40];     /* toetsinschrijving: its associationType */
  char result[16];   /* the last result state that passed */
  int final;         /* the last result was final (1), not (0), or none (-1) */
  int staff;         /* deelname: a staff role (1), a student (0), unknown (-1) */
  int canceled;      /* 1 once canceled */
} okegw_facts;

void okegw_facts_read(const char *text, okegw_facts *f);
/* The facts text (heap, free()) of a catalogue component for its zittingen,
 * or NULL when it says nothing okegw uses. */
char *okegw_facts_of_component(const cJSON *component);

/* A flow-2 PUT of a deelname under zitting `z`: refused (409) on a canceled
 * zitting (R18) and with association consumers on a staff role (R27);
 * warns for extra time or aids the component does not offer (R28). Sets
 * c->records.facts for the deelname. */
int okegw_state_deelname(okegw_call *c, const okegw_facts *z);
/* A result (flow 3 on deelname d, flow 5 on toetsinschrijving d): a score
 * off the resource's scale is refused (400, R20); a result going back from
 * completed or from final (R21) and a result on a staff deelname (R27) are
 * warnings. Flow 5 only for test enrolments (R19). */
int okegw_state_result(okegw_call *c, const okegw_facts *d);
/* A flow-5 extra attempt names the person and offering of its original
 * toetsinschrijving (R24), else 400. */
int okegw_state_attempt(okegw_call *c, const okegw_facts *original);
/* Documents carry only documentId, documentType and documentName (R25:
 * never inlined), else 400. */
int okegw_state_documents(okegw_call *c);
/* The facts a flow-1 push records for the DR's own id (planbare toets:
 * its scale; toetsinschrijving: type, person, planbare toets and the scale
 * `rvt` of that planbare toets, may be NULL), heap text or NULL. */
char *okegw_facts_of_own(const okegw_call *c, const char *rvt);

/* What a delivered push changes (the outbox writes it with the end):
 * results, cancels. Returns the number of writes put into out. */
size_t okegw_state_delivered(int interaction, const char *resource_id, const char *connector,
                             const cJSON *body, okegw_route_write *out, size_t room);

#endif
