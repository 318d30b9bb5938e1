/* The answer stage: the last of every request. Logs the request line,
 * writes its audit row, answers the caller and frees the call. A peer's
 * answer is checked against the profile here before it is passed on. */
#ifndef OKEGW_ANSWER_H
#define OKEGW_ANSWER_H

#include "oke/validate.h"
#include "pipeline/request.h"

/* Answers with a body as given; extra_headers is NULL or "Name: value\r\n"
 * lines. Frees the call. */
void okegw_answer_send(okegw_call *c, int status, const char *ctype, const char *body, size_t len,
                       const char *extra_headers);
/* An application/problem+json answer; connector (may be NULL) is named in it. */
void okegw_answer_problem(okegw_call *c, int status, const char *connector, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with extra header lines (WWW-Authenticate, Allow, Retry-After). */
void okegw_answer_problem_h(okegw_call *c, int status, const char *connector,
                            const char *extra_headers, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* An id the caller may not know of (unknown, or another system's): 404,
 * but 400 on a PATCH of an association, where OKE declares no 404 (R17). */
void okegw_answer_unknown(okegw_call *c, const char *connector, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A JSON answer from a tree (not consumed). */
void okegw_answer_send_json(okegw_call *c, int status, const cJSON *j, const char *extra_headers);
/* A shadow supplier's return for a zitting it only received as a mirror
 * copy: audited as "withheld", answered 200 with what it sent (header
 * Okegw-Withheld: shadow), forwarded to no one. */
void okegw_answer_withheld(okegw_call *c);
/* The refusals when the store cannot take a job, or a job failed: 503 with
 * Retry-After (the request may be sent again as it is). */
void okegw_answer_store_down(okegw_call *c);
void okegw_answer_store_failed(okegw_call *c);

/* A peer's answer passed on: 502 instead when it breaks the profile and its
 * connector blocks such answers. `headers` go first, then the plugin's own. */
/* Acceptance evidence kept for the call's audit row: the profile violations
 * it was refused or flagged for (side "request" or "answer"; the first note
 * counts), and the mapping error an answer reports. */
void okegw_call_note_violations(okegw_call *c, const okegw_violations *v, const char *side);
void okegw_call_note_mapping(okegw_call *c, const okegw_answer *a);

void okegw_answer_relay(okegw_call *c, const okegw_answer *a, const char *headers);
/* The same with `status` instead of the peer's own. */
void okegw_answer_relay_as(okegw_call *c, const okegw_answer *a, int status, const char *headers);
/* An okegw_exchange_done that relays (ud is the call). */
void okegw_answer_relay_cb(void *ud, const okegw_answer *a);
/* 1 when a peer's answer breaks the profile and the connector blocks it;
 * *out is then the 502 problem body (free it). Logs a warning either way. */
int okegw_answer_check(okegw_call *c, const okegw_answer *a, char **out);

/* A document passes through piece by piece (ud is the call). */
extern const okegw_stream_ops okegw_answer_stream;

/* The SHA-256 of the request body, computed once (audit row and push). */
const char *okegw_call_digest(okegw_call *c);

#endif
