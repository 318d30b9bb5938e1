/* OAuth 2.0 access tokens as JWTs (RFC 7519, RFC 9068): the issuer's key set
 * (a JWKS) and the check of one token against it and against what this
 * gateway expects (issuer, audience, time). The signature itself is cjose's
 * (JWK import, JWS verification); this module decides which tokens get that
 * far: only RS256 and ES256, never `none` or HMAC (an HS256 token "signed"
 * with the public key would otherwise pass), a key of the type the alg
 * names. Pure: no I/O, the time is passed in, so the unit tests drive it.
 * A parsed key set is only read: several threads may verify against one at
 * once (each verification has its own cjose and OpenSSL contexts). */
#ifndef OKEGW_JWT_H
#define OKEGW_JWT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The clock skew allowed on exp, nbf and iat, in seconds. */
#define OKEGW_JWT_SKEW_S 60

typedef struct okegw_jwks okegw_jwks;

/* Parses JWKS text ({"keys": [...]}). Keys okegw cannot use for RS256 or
 * ES256 (symmetric keys, other curves, RSA under 2048 bits, "use": "enc")
 * are left out. Returns 0, or -1 with the reason in err when the text is no
 * JWKS or holds no usable key. */
int okegw_jwks_parse(const char *text, size_t len, okegw_jwks **out, char *err, size_t errlen);
size_t okegw_jwks_count(const okegw_jwks *ks);
void okegw_jwks_free(okegw_jwks *ks);

/* Every failure has its own code, so the caller can tell a key it should
 * fetch (UNKNOWN_KID) from a token it should refuse. */
enum okegw_jwt_rc {
  OKEGW_JWT_OK = 0,
  OKEGW_JWT_MALFORMED = -1,   /* not a compact JWS, or the payload is no JSON object */
  OKEGW_JWT_ALG = -2,         /* alg is not RS256 or ES256 (none, HS256, ...) */
  OKEGW_JWT_UNKNOWN_KID = -3, /* the kid is not in the key set: fetch it again */
  OKEGW_JWT_KEY = -4,         /* no kid and no single key, or the key does not fit the alg */
  OKEGW_JWT_SIGNATURE = -5,   /* the signature does not verify */
  OKEGW_JWT_ISSUER = -6,
  OKEGW_JWT_AUDIENCE = -7,
  OKEGW_JWT_EXPIRED = -8, /* exp passed, or there is no exp */
  OKEGW_JWT_NOT_YET = -9, /* nbf (or iat) in the future */
  OKEGW_JWT_CLIENT = -10, /* names no client (client_id, azp or sub) */
  OKEGW_JWT_NOMEM = -11
};

/* What the gateway expects of every token. */
typedef struct okegw_jwt_expect {
  const char *issuer;   /* `iss` must equal it */
  const char *audience; /* `aud` (a string or an array) must hold it */
  long skew_s;          /* OKEGW_JWT_SKEW_S */
} okegw_jwt_expect;

typedef struct okegw_jwt_result {
  /* the calling system: claim `client_id`, else `azp`, else `sub` */
  char client_id[256];
  /* OKEGW_SCOPE_* granted: claim `scope` (space separated), else `scp`
   * (an array or a space separated string); other scope names are ignored */
  unsigned scopes;
  long long exp; /* Unix seconds */
  /* why it failed, short and fixed (never text from the token) */
  const char *reason;
} okegw_jwt_result;

/* 1 when s has the shape of a compact JWS: three base64url parts separated
 * by dots (the signature may be empty). */
int okegw_jwt_shaped(const char *s);
/* Checks token against the key set and exp; now is Unix seconds. Returns
 * OKEGW_JWT_OK with out filled, or an okegw_jwt_rc with out->reason. */
int okegw_jwt_verify(const char *token, const okegw_jwks *ks, const okegw_jwt_expect *e,
                     long long now, okegw_jwt_result *out);
/* The claim checks alone, on a verified payload (for the unit tests). */
int okegw_jwt_check_claims(const cJSON *claims, const okegw_jwt_expect *e, long long now,
                           okegw_jwt_result *out);
/* A short name of the code for logs: "expired", "unknown-kid", ... */
const char *okegw_jwt_rc_name(int rc);

#endif
