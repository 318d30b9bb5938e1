/* okegw as the OAuth 2.0 authorisation server of a school without an
 * identity provider (token_endpoint = on): POST {base}/oauth2/token gives a
 * system that authenticates with its client secret (client_secret_basic or
 * client_secret_post, RFC 6749 §2.3.1) a short-lived JWT signed with
 * token_signing_key_file, with the OKE scopes its connector may use. The
 * authorise stage checks these tokens like an identity provider's.
 *
 * Secrets are kept as scrypt hashes (client_secret_hash, made by `okegw
 * hash-secret`) and checked in libuv's thread pool, never on the loop.
 * Wrong secrets slow their client down: after each failure in a row the
 * next attempt is refused (429, Retry-After) for twice as long, up to a
 * minute; every failure is logged.
 *
 * One issuer is shared by all event loops ([gateway] workers): it locks its
 * bookkeeping of failures with a mutex held only for that bookkeeping, never
 * across the scrypt check, a signature or I/O. */
#ifndef OKEGW_TOKEN_H
#define OKEGW_TOKEN_H

#include "auth/jwt.h"
#include "pipeline/request.h"

typedef struct okegw_token_issuer okegw_token_issuer;

/* Reads the signing key; -1 with the reason in err. */
int okegw_token_issuer_new(const okegw_conf *conf, okegw_token_issuer **out, char *err,
                           size_t errlen);
void okegw_token_issuer_free(okegw_token_issuer *t);
/* The issuer's public keys and what its tokens carry, for the check. */
const okegw_jwks *okegw_token_issuer_keys(const okegw_token_issuer *t);
okegw_jwt_expect okegw_token_issuer_expect(const okegw_token_issuer *t);
/* The client id a connector authenticates with: oauth_client_id, else its
 * name. */
const char *okegw_token_client_id(const okegw_conf_connector *cc);

/* okegw -t: the signing key loads and every client_secret_hash is one
 * okegw reads; each problem goes to diag. */
void okegw_token_check(const okegw_conf *conf, okegw_diag *diag);

/* Answers POST {base}/oauth2/token. */
void okegw_token_endpoint(okegw_call *c);

#endif
