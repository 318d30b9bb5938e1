/*
 * The OKE profile validator: checks a JSON body against the afsprakenset
 * (OKE-DIGEST.md §2 data model, §3 enumerations, §4 rules R1-R31) for one
 * interaction and direction, and lists every violation it finds.
 *
 * What it checks is data, not code: validate.c holds one field table per
 * object type and one entry per (interaction, direction). See the comment at
 * the top of validate.c for how the tables are read.
 *
 * Conventions:
 *   - pointers are RFC 6901; a missing field is reported at the pointer it
 *     would have ("/result/weight"), a missing nl-test-admin consumer entry at
 *     its consumers array ("/consumers"), a body that is no JSON at "".
 *   - fields the profile marks `0`, fields of another flow (R11), unknown
 *     fields and consumers entries of other consumers (R7) are ignored, never
 *     reported.
 *   - `null` on an optional field means "absent" (R16), and `[]` on an
 *     optional list means "empty"; in a PATCH they remove the value.
 *
 * Depends on cJSON, libc and <oke/plugin.h> only.
 */
#ifndef OKEGW_VALIDATE_H
#define OKEGW_VALIDATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* At most this many violations are kept; then `truncated` is set. */
#define OKEGW_VIOLATIONS_MAX 100

/* Bodies that belong to no enum oke_interaction but can be validated too. */
#define OKEGW_VALIDATE_SERVICE_METADATA 64 /* GET / answer (§2.14, R31) */
#define OKEGW_VALIDATE_PROBLEM 65          /* a problem+json error body (R5) */

typedef struct okegw_violation {
  char pointer[256]; /* RFC 6901, e.g. "/result/consumers/0/attendance" */
  char message[256];
  const char *rule; /* "R10" etc. (static string) */
} okegw_violation;

typedef struct okegw_violations {
  okegw_violation *v;
  size_t n, cap;
  int truncated; /* 1 when more than OKEGW_VIOLATIONS_MAX were found */
} okegw_violations;

enum okegw_body_kind { OKEGW_BODY_REQUEST = 0, OKEGW_BODY_RESPONSE = 1 };

typedef struct okegw_validate_ctx {
  /* The id in the URL, for R12 (PUT body id == path id) and R23 (flow-5
   * orgAssociationId == path id). For PUT /groups/{g}/members/{p} it is {p}.
   * NULL = not checked. */
  const char *path_id;
  /* The resultValueType of the planbare toets (flow 1) or Component (zitting)
   * when known, for the score check (R20). NULL = unknown: then the score must
   * fit at least one of the §3 scales. */
  const char *result_value_type;
} okegw_validate_ctx;

/* Validates body for interaction (enum oke_interaction, or one of the
 * OKEGW_VALIDATE_* above) in that direction, appending every violation to out
 * (zero-initialise it first). body may be NULL: "not JSON" is a violation
 * where a body is expected. ctx may be NULL.
 * Returns the number of violations now held in out, or -1 on out of memory
 * (or when out is NULL). An unknown interaction, or a direction without a body
 * (a GET request, a PUT answer, a document), gives 0. */
int okegw_validate(int interaction, enum okegw_body_kind kind, const cJSON *body,
                   const okegw_validate_ctx *ctx, okegw_violations *out);

/* Checks the query of a collection GET (the part after '?', as received)
 * against the parameters the YAML declares for that interaction: paging
 * (pageSize, pageNumber), sort and the enumerated filters. Undeclared
 * parameters pass unchecked (digest §6 #12). A violation's pointer is
 * "?<parameter>" (okegw_violations_problem names it as "parameter").
 * Returns the number of violations now held in out, -1 on out of memory or
 * when out is NULL; 0 for an interaction without a table. */
int okegw_validate_query(int interaction, const char *query, okegw_violations *out);

/* Removes from a request body (one that passed okegw_validate) what its
 * interaction does not carry, so a peer gets what the profile defines:
 * fields of another flow (R11), and in messages whose other fields are
 * ignored (a cancel, a result, a session report) everything else, other
 * consumers' entries included. Fields the profile does not list at all
 * (extensions) stay. The dotted names removed go to `removed` (may be NULL;
 * cut at size). Returns how many members were removed. */
int okegw_validate_prune(int interaction, cJSON *body, char *removed, size_t size);

void okegw_violations_free(okegw_violations *v);

/* 1 when the profile defines a body for that interaction and direction (so
 * parsing one to check it is worth it), else 0. */
int okegw_validate_has_body(int interaction, enum okegw_body_kind kind);

/* The violations as an application/problem+json body (heap string, free()):
 * {"type","title","status":"<status>","detail":"<n> violation(s) of the OKE
 * profile","errors":[{"pointer","detail","rule"}...]} plus "truncated":true
 * when the list was cut. NULL on out of memory. */
char *okegw_violations_problem(const okegw_violations *v, int status);

/* The acceptance evidence of violations (the audit row's `violations`): a
 * JSON array of the first `max` as {"rule", "pointer", "side"}, side being
 * "request" or "answer". No messages: they may quote the values, which can
 * be personal data. NULL when out of memory; free it. */
char *okegw_violations_evidence(const okegw_violations *v, const char *side, size_t max);
/* (An error of okegw_validate_query carries "parameter" instead of "pointer".) */

/* 1 when score is a value of that resultValueType per the digest §3 score
 * table, else 0 (also for an unknown resultValueType or NULL). */
int okegw_score_fits(const char *result_value_type, const char *score);

/* The format checkers, 1 = valid. */
int okegw_valid_uuid(const char *s);     /* 8-4-4-4-12 hex digits */
int okegw_valid_date(const char *s);     /* YYYY-MM-DD, a real calendar date */
int okegw_valid_datetime(const char *s); /* RFC 3339 date-time WITH an offset */
/* ISO 8601 duration as in the YAML pattern. test_duration = 1 for a test or
 * session duration, where OKE flags years and months (P60M = 60 months). */
int okegw_valid_duration(const char *s, int test_duration);

#endif
