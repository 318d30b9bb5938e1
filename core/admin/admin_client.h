/* A small blocking HTTP client for the okegw commands: they ask a running
 * gateway's admin API (admin_listen) instead of opening the store, so a
 * change goes through the process that sends the deliveries. Commands only:
 * never used on the event loop. */
#ifndef OKEGW_ADMIN_CLIENT_H
#define OKEGW_ADMIN_CLIENT_H

#include "base/conf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct okegw_admin_client okegw_admin_client;

/* What a call returns besides an HTTP status. */
enum {
  OKEGW_ADMIN_CLIENT_FAILED = -1,      /* no answer (message printed) */
  OKEGW_ADMIN_CLIENT_UNAUTHORISED = -2 /* 401: the admin_token was refused (message printed) */
};

/* A client for the admin listener of conf (file is its name, for
 * messages), or NULL when conf has no admin_listen or no okegw answers
 * there within about a second: the command then uses the store directly. */
okegw_admin_client *okegw_admin_client_open(const okegw_conf *conf, const char *file);
void okegw_admin_client_close(okegw_admin_client *c);

/* method ("GET" or "POST") on path (with its query, already escaped).
 * Returns the HTTP status with the answer's body in *body (NUL-terminated,
 * free it; NULL when none) and, when it is JSON, parsed in *json (delete
 * it; NULL otherwise); or a negative OKEGW_ADMIN_CLIENT_* value. cmd names
 * the command in messages ("okegw CMD: ..."). */
int okegw_admin_client_call(okegw_admin_client *c, const char *cmd, const char *method,
                            const char *path, cJSON **json, char **body, size_t *len);

/* s escaped for a query value (free it), NULL when out of memory. */
char *okegw_admin_client_escape(okegw_admin_client *c, const char *s);

/* The detail of a problem answer, or fallback. */
const char *okegw_admin_client_detail(const cJSON *json, const char *fallback);

#endif
