/* Where the issuer's keys come from ([gateway] oauth_jwks_file or
 * oauth_jwks_url) and the cache of them. A file is read once at start; a URL
 * is fetched at start with the outbound client on the loop (never blocking),
 * and again when a token names a key (kid) that is not cached, at most once
 * per OKEGW_JWKS_REFRESH_S: a key rotation at the issuer is picked up by the
 * first token signed with the new key, and a stream of tokens with made-up
 * kids cannot make okegw hammer the issuer. A fetch that fails keeps the
 * keys there are. */
#ifndef OKEGW_JWKS_H
#define OKEGW_JWKS_H

#include "auth/jwt.h"
#include "base/conf.h"
#include "http/http_client.h"

#include <uv.h>

#define OKEGW_JWKS_REFRESH_S 30

typedef struct okegw_jwks_source okegw_jwks_source;

/* Reads the JWKS file, or starts the first fetch of the URL. Returns 0, or
 * -1 with the reason logged (an unreadable or invalid file). */
int okegw_jwks_source_start(uv_loop_t *loop, okegw_http *http, const okegw_conf *conf,
                            okegw_jwks_source **out);
/* The keys as cached now; NULL when none could be loaded yet. */
const okegw_jwks *okegw_jwks_source_keys(const okegw_jwks_source *s);
/* A token named a kid that is not cached. Returns 1 when a fetch is under way
 * (this one started it, or it was running): done(ud) runs once it ended,
 * whatever its outcome. Returns 0 when there is nothing to wait for: the keys
 * are a file, the last refresh is less than OKEGW_JWKS_REFRESH_S old, or the
 * request could not be started. */
int okegw_jwks_source_refresh(okegw_jwks_source *s, void (*done)(void *ud), void *ud);
/* Fetches made so far (the one at start included). */
unsigned okegw_jwks_source_fetches(const okegw_jwks_source *s);
/* SIGHUP: reads the JWKS file again; when it is not usable the keys loaded
 * before stay (logged). Nothing for a URL (a new kid fetches it). */
void okegw_jwks_source_reload(okegw_jwks_source *s);
/* Frees the source; call after the HTTP client was closed (a fetch under
 * way has then ended, and told its waiters). */
void okegw_jwks_source_free(okegw_jwks_source *s);

/* `okegw -t`: the JWKS file is readable and holds a usable key. Adds a
 * message to diag when not. */
void okegw_jwks_source_check(const okegw_conf *conf, okegw_diag *diag);

#endif
