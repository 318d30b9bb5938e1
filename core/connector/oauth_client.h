/* OAuth 2.0 client credentials (RFC 6749 4.4) for one connector with
 * auth = oauth2: one access token per connector (for its one scope) for the
 * whole process, whatever the number of event loops, fetched from token_url
 * with the host's HTTP client, kept until shortly before it expires and
 * fetched again in the background once most of its lifetime has passed, so
 * requests seldom wait.
 *
 * Every loop has its own instance of the connector, each with a client of
 * its own (its loop, its HTTP client, its callbacks), and the clients of one
 * connector share a token slot under a mutex: the token, its expiry and
 * refresh time, the back-off after a failure, and which client's token
 * request is running. Clients share a slot when they ask for a token the
 * same way (connector, token_url, client_id, scope, method, credentials):
 * a reload that changes any of them gets a token of its own; one that does
 * not keeps the token. The slot is freed with the last client using it.
 *
 * At most one token request is in flight for the whole process; requests
 * that need a token meanwhile wait for it, on any loop, without blocking
 * their loop (they look at the slot again every few milliseconds). A
 * request that has not ended once its timeouts have passed (its loop
 * stopped) no longer holds up the others. A failed token request fails
 * those waiting (the outbox tries again later) and starts a back-off before
 * the next attempt, by any client. Each client tells its own connector
 * (on_state). Callbacks run on the client's own loop. The client secret is
 * never logged, and the slot keeps only a digest of it. */
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
 * okegw_oauth_wait): the client's own copy of the shared one, valid on the
 * client's loop until the next call on this client. Past its refresh time a
 * new one is fetched in the background (by the first instance to see it)
 * while this one is still handed out. */
const char *okegw_oauth_token(okegw_oauth *o);
/* Calls cb once a token is there or the attempt failed; never from within
 * this call, always on the client's loop. Starts a token request unless the
 * shared token is valid or another instance's request is running (then it
 * waits for that one); during the back-off after a failure cb fails at once
 * (on the next loop turn). Returns 0, or -1 (out of memory; cb will not
 * run). */
int okegw_oauth_wait(okegw_oauth *o, okegw_oauth_cb cb, void *ud);
/* The peer refused TOKEN (401): forgets it if it is still the current one,
 * for every instance, so the next request gets a new one; when several
 * instances see the same 401, one new token is asked for, not one each. */
void okegw_oauth_invalidate(okegw_oauth *o, const char *token);
/* Fails what waits (their callbacks run now, with an error) and frees the
 * client; a token request still running is left to end and its answer is
 * dropped (the other instances then ask for themselves). Its share of the
 * slot goes; the last one frees it. NULL is fine. */
void okegw_oauth_free(okegw_oauth *o);

#endif
