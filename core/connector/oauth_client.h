/* OAuth 2.0 client credentials (RFC 6749 4.4) for one connector with
 * auth = oauth2: one access token per connector (for its one scope), fetched
 * from token_url with the host's HTTP client, kept until shortly before it
 * expires and fetched again in the background once most of its lifetime has
 * passed, so requests seldom wait. At most one token request is in flight;
 * requests that need a token meanwhile wait for it. A failed token request
 * fails those waiting (the outbox tries again later) and starts a back-off
 * before the next attempt. The client secret is never logged. */
#ifndef OKEGW_OAUTH_CLIENT_H
#define OKEGW_OAUTH_CLIENT_H

#include "base/conf.h"
#include "http/http_client.h"

#include <uv.h>

typedef struct okegw_oauth okegw_oauth;

/* A token is there (token set, valid only during the call) or the attempt
 * failed (token NULL, error says why, without secrets). */
typedef void (*okegw_oauth_cb)(void *ud, const char *token, const char *error);
/* The token endpoint worked (ok = 1) or failed (ok = 0, why); called on
 * changes only, so the connector's health can follow it. */
typedef void (*okegw_oauth_state_cb)(void *ud, int ok, const char *why);

/* What the configuration file cannot tell: the key of private_key_jwt is an
 * RSA (2048 bits or more) or EC P-256 private key. Returns 0, or -1 with the
 * reason in err. For okegw -t and before okegw_oauth_new. */
int okegw_oauth_check(const okegw_conf_connector *cc, char *err, size_t n);
/* For a connector with auth = oauth2; cc must outlive the client. Returns 0
 * or -1 (out of memory, or the assertion key does not load). */
int okegw_oauth_new(uv_loop_t *loop, okegw_http *http, const okegw_conf_connector *cc,
                    okegw_oauth_state_cb on_state, void *state_ud, okegw_oauth **out);
/* Counts each token request's outcome into cm (ops/metrics.h). */
struct okegw_conn_metrics;
void okegw_oauth_count_into(okegw_oauth *o, struct okegw_conn_metrics *cm);
/* The current token when it is valid now, else NULL (then use
 * okegw_oauth_wait). Past its refresh time a new one is fetched in the
 * background while this one is still handed out. */
const char *okegw_oauth_token(okegw_oauth *o);
/* Calls cb once a token is there or the attempt failed; never from within
 * this call. Starts a token request unless one is running; during the
 * back-off after a failure cb fails at once (on the next loop turn).
 * Returns 0, or -1 (out of memory; cb will not run). */
int okegw_oauth_wait(okegw_oauth *o, okegw_oauth_cb cb, void *ud);
/* The peer refused TOKEN (401): forgets it if it is still the current one,
 * so the next request gets a new one. */
void okegw_oauth_invalidate(okegw_oauth *o, const char *token);
/* Fails what waits (their callbacks run now, with an error) and frees the
 * client; a token request still running is left to end and its answer is
 * dropped. NULL is fine. */
void okegw_oauth_free(okegw_oauth *o);

#endif
