/* application/problem+json bodies (RFC 9457). OKE wants `status` as a
 * string ("404"), so that is what we send. */
#ifndef OKEGW_PROBLEM_H
#define OKEGW_PROBLEM_H

#define OKEGW_PROBLEM_TYPE "application/problem+json"

/* A heap string with {"type","title","status","detail"} plus, when set, a
 * "connector" member. Returns NULL only when out of memory. */
char *okegw_problem_json(int status, const char *title, const char *detail, const char *connector);

/* Reason phrase for a status code. */
const char *okegw_status_text(int status);

#endif
