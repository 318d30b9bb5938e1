/* JWT access tokens (see jwt.h). */
#include "auth/jwt.h"
#include "base/conf.h"
#include "base/util.h"

#include <cjose/cjose.h>
#include <openssl/err.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RSA keys under this size are not trusted (RFC 7518 3.3: 2048 or more). */
#define MIN_RSA_BITS 2048
/* A token longer than this is refused before anything is decoded. */
#define MAX_TOKEN_BYTES 16384

typedef struct jwk_entry {
  cjose_jwk_t *jwk;
  char *kid; /* NULL when the key has none */
  int rsa;   /* 1 RSA (RS256), 0 EC P-256 (ES256) */
} jwk_entry;

struct okegw_jwks {
  jwk_entry *keys;
  size_t n;
};

static void errf(char *err, size_t errlen, const char *msg, size_t skipped) {
  if (skipped)
    snprintf(err, errlen, "%s (%zu key(s) left out: not an RS256 or ES256 signing key)", msg,
             skipped);
  else
    snprintf(err, errlen, "%s", msg);
}

/* One JWKS member into out; -1 when okegw cannot use it for RS256 or ES256. */
static int import_key(const cJSON *k, jwk_entry *out) {
  const cJSON *kty = cJSON_GetObjectItemCaseSensitive(k, "kty");
  const cJSON *use = cJSON_GetObjectItemCaseSensitive(k, "use");
  const cJSON *alg = cJSON_GetObjectItemCaseSensitive(k, "alg");
  const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
  if (!cJSON_IsString(kty) || (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig"))))
    return -1;
  int rsa = strcmp(kty->valuestring, "RSA") == 0;
  if (!rsa && strcmp(kty->valuestring, "EC") != 0)
    return -1; /* "oct" (HMAC) keys are never used */
  if (alg && (!cJSON_IsString(alg) || strcmp(alg->valuestring, rsa ? "RS256" : "ES256") != 0))
    return -1;
  if (kid && !cJSON_IsString(kid))
    return -1;
  char *text = cJSON_PrintUnformatted(k);
  if (!text)
    return -1;
  cjose_err cerr;
  cjose_jwk_t *jwk = cjose_jwk_import(text, strlen(text), &cerr);
  free(text);
  if (!jwk)
    return -1;
  int ok = rsa ? cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_RSA &&
                     cjose_jwk_get_keysize(jwk, &cerr) >= MIN_RSA_BITS
               : cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_EC &&
                     cjose_jwk_EC_get_curve(jwk, &cerr) == CJOSE_JWK_EC_P_256;
  out->kid = ok && kid ? okegw_strdup(kid->valuestring) : NULL;
  if (!ok || (kid && !out->kid)) {
    cjose_jwk_release(jwk);
    return -1;
  }
  out->jwk = jwk;
  out->rsa = rsa;
  return 0;
}

int okegw_jwks_parse(const char *text, size_t len, okegw_jwks **out, char *err, size_t errlen) {
  *out = NULL;
  cJSON *root = cJSON_ParseWithLength(text, len);
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
  if (!cJSON_IsArray(keys)) {
    cJSON_Delete(root);
    errf(err, errlen, "not a JWKS: expected a JSON object with a \"keys\" array", 0);
    return -1;
  }
  okegw_jwks *ks = calloc(1, sizeof *ks);
  size_t total = (size_t)cJSON_GetArraySize(keys), skipped = 0;
  if (ks && total)
    ks->keys = calloc(total, sizeof *ks->keys);
  if (!ks || (total && !ks->keys)) {
    cJSON_Delete(root);
    okegw_jwks_free(ks);
    errf(err, errlen, "out of memory", 0);
    return -1;
  }
  const cJSON *k;
  cJSON_ArrayForEach(k, keys) {
    if (cJSON_IsObject(k) && import_key(k, &ks->keys[ks->n]) == 0)
      ks->n++;
    else
      skipped++;
  }
  cJSON_Delete(root);
  if (!ks->n) {
    okegw_jwks_free(ks);
    errf(err, errlen, "the JWKS holds no usable key", skipped);
    return -1;
  }
  *out = ks;
  return 0;
}

size_t okegw_jwks_count(const okegw_jwks *ks) { return ks ? ks->n : 0; }

void okegw_jwks_free(okegw_jwks *ks) {
  if (!ks)
    return;
  for (size_t i = 0; i < ks->n; i++) {
    cjose_jwk_release(ks->keys[i].jwk);
    free(ks->keys[i].kid);
  }
  free(ks->keys);
  free(ks);
}

const char *okegw_jwt_rc_name(int rc) {
  switch (rc) {
  case OKEGW_JWT_OK: return "ok";
  case OKEGW_JWT_MALFORMED: return "malformed";
  case OKEGW_JWT_ALG: return "alg";
  case OKEGW_JWT_UNKNOWN_KID: return "unknown-kid";
  case OKEGW_JWT_KEY: return "key";
  case OKEGW_JWT_SIGNATURE: return "signature";
  case OKEGW_JWT_ISSUER: return "issuer";
  case OKEGW_JWT_AUDIENCE: return "audience";
  case OKEGW_JWT_EXPIRED: return "expired";
  case OKEGW_JWT_NOT_YET: return "not-yet-valid";
  case OKEGW_JWT_CLIENT: return "client";
  case OKEGW_JWT_NOMEM: return "out-of-memory";
  }
  return "?";
}

static int b64url_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '_';
}

int okegw_jwt_shaped(const char *s) {
  size_t part_len[3] = {0}, part = 0;
  for (; *s; s++) {
    if (*s == '.') {
      if (++part > 2)
        return 0;
    } else if (b64url_char(*s)) {
      part_len[part]++;
    } else {
      return 0;
    }
  }
  return part == 2 && part_len[0] && part_len[1];
}

static int fail(okegw_jwt_result *out, int rc, const char *reason) {
  out->reason = reason;
  return rc;
}

/* A NumericDate claim: absent (0), a number (1), or anything else (-1). */
static int numeric_date(const cJSON *claims, const char *name, double *v) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(claims, name);
  if (!j)
    return 0;
  if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
    return -1;
  *v = j->valuedouble;
  return 1;
}

/* OKEGW_SCOPE_* of one space separated list of scope names. */
static unsigned scope_words(const char *s) {
  static const unsigned bits[] = {OKEGW_SCOPE_FLOW0, OKEGW_SCOPE_FLOW15, OKEGW_SCOPE_FLOW234,
                                  OKEGW_SCOPE_FLOW6};
  unsigned out = 0;
  while (*s) {
    while (*s == ' ')
      s++;
    size_t n = strcspn(s, " ");
    for (size_t i = 0; n && i < sizeof bits / sizeof bits[0]; i++) {
      const char *name = okegw_scope_name(bits[i]);
      if (strlen(name) == n && memcmp(name, s, n) == 0)
        out |= bits[i];
    }
    s += n;
  }
  return out;
}

int okegw_jwt_check_claims(const cJSON *claims, const okegw_jwt_expect *e, long long now,
                           okegw_jwt_result *out) {
  memset(out, 0, sizeof *out);
  if (!cJSON_IsObject(claims))
    return fail(out, OKEGW_JWT_MALFORMED, "the token's payload is not a JSON object");
  const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
  if (!cJSON_IsString(iss) || !e->issuer || strcmp(iss->valuestring, e->issuer) != 0)
    return fail(out, OKEGW_JWT_ISSUER, "the token is not from the configured issuer");
  const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud"), *a;
  int aud_ok = cJSON_IsString(aud) && e->audience && strcmp(aud->valuestring, e->audience) == 0;
  if (cJSON_IsArray(aud) && e->audience)
    cJSON_ArrayForEach(a, aud) aud_ok |=
        cJSON_IsString(a) && strcmp(a->valuestring, e->audience) == 0;
  if (!aud_ok)
    return fail(out, OKEGW_JWT_AUDIENCE, "the token is not meant for this gateway (audience)");
  double exp = 0, nbf = 0, iat = 0, t = (double)now, skew = (double)e->skew_s;
  int has_exp = numeric_date(claims, "exp", &exp);
  if (has_exp <= 0)
    return fail(out, OKEGW_JWT_EXPIRED, "the token has no valid expiry (exp)");
  if (t >= exp + skew)
    return fail(out, OKEGW_JWT_EXPIRED, "the token has expired");
  int has_nbf = numeric_date(claims, "nbf", &nbf), has_iat = numeric_date(claims, "iat", &iat);
  if (has_nbf < 0 || has_iat < 0)
    return fail(out, OKEGW_JWT_MALFORMED, "nbf or iat is not a number");
  if ((has_nbf && t + skew < nbf) || (has_iat && t + skew < iat))
    return fail(out, OKEGW_JWT_NOT_YET, "the token is not valid yet");
  out->exp = exp < 9e18 ? (long long)exp : LLONG_MAX; /* no overflow on a far exp */
  static const char *const client_claims[] = {"client_id", "azp", "sub"};
  for (size_t i = 0; i < 3 && !out->client_id[0]; i++) {
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(claims, client_claims[i]);
    if (cJSON_IsString(cl) && cl->valuestring[0] && strlen(cl->valuestring) < sizeof out->client_id)
      memcpy(out->client_id, cl->valuestring, strlen(cl->valuestring) + 1);
  }
  if (!out->client_id[0])
    return fail(out, OKEGW_JWT_CLIENT, "the token names no client (client_id, azp or sub)");
  const cJSON *scope = cJSON_GetObjectItemCaseSensitive(claims, "scope");
  const cJSON *scp = cJSON_GetObjectItemCaseSensitive(claims, "scp"), *s;
  if (cJSON_IsString(scope))
    out->scopes = scope_words(scope->valuestring);
  else if (cJSON_IsString(scp))
    out->scopes = scope_words(scp->valuestring);
  else if (cJSON_IsArray(scp))
    cJSON_ArrayForEach(s, scp) if (cJSON_IsString(s)) out->scopes |= scope_words(s->valuestring);
  return OKEGW_JWT_OK;
}

/* The key a token names: by kid, else the only key of its type. */
static int find_key(const okegw_jwks *ks, const char *kid, int rsa, const jwk_entry **key,
                    okegw_jwt_result *out) {
  const jwk_entry *named = NULL, *only = NULL;
  size_t of_type = 0;
  for (size_t i = 0; ks && i < ks->n; i++) {
    const jwk_entry *k = &ks->keys[i];
    if (k->rsa == rsa) {
      of_type++;
      only = k;
    }
    /* a kid shared by an RSA and an EC key: the one that fits the alg */
    if (kid && k->kid && strcmp(k->kid, kid) == 0 && (!named || k->rsa == rsa))
      named = k;
  }
  if (kid && !named)
    return fail(out, OKEGW_JWT_UNKNOWN_KID, "the token's key (kid) is not among the issuer's keys");
  if (!kid && of_type != 1)
    return fail(out, OKEGW_JWT_KEY, "the token names no key (kid)");
  *key = kid ? named : only;
  if ((*key)->rsa != rsa)
    return fail(out, OKEGW_JWT_KEY, "the token's key does not fit its algorithm");
  return OKEGW_JWT_OK;
}

int okegw_jwt_verify(const char *token, const okegw_jwks *ks, const okegw_jwt_expect *e,
                     long long now, okegw_jwt_result *out) {
  memset(out, 0, sizeof *out);
  size_t len = strlen(token);
  if (len > MAX_TOKEN_BYTES || !okegw_jwt_shaped(token))
    return fail(out, OKEGW_JWT_MALFORMED, "the token is not a signed JWT");
  cjose_err cerr;
  cjose_jws_t *jws = cjose_jws_import(token, len, &cerr);
  if (!jws)
    return fail(out, OKEGW_JWT_MALFORMED, "the token is not a signed JWT");
  cjose_header_t *hdr = cjose_jws_get_protected(jws);
  const char *alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
  const char *kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, &cerr) : NULL;
  char *crit = hdr ? cjose_header_get_raw(hdr, "crit", &cerr) : NULL;
  int rc = OKEGW_JWT_OK;
  const jwk_entry *key = NULL;
  int rsa = alg && strcmp(alg, "RS256") == 0;
  if (!alg || (!rsa && strcmp(alg, "ES256") != 0))
    rc = fail(out, OKEGW_JWT_ALG, "the token's algorithm is not accepted (RS256 or ES256)");
  else if (crit) /* RFC 7515 4.1.11: extensions okegw does not know */
    rc = fail(out, OKEGW_JWT_MALFORMED, "the token has critical header parameters");
  else
    rc = find_key(ks, kid, rsa, &key, out);
  if (crit)
    cjose_get_dealloc()(crit);
  if (rc == OKEGW_JWT_OK && !cjose_jws_verify(jws, key->jwk, &cerr))
    rc = fail(out, OKEGW_JWT_SIGNATURE, "the token's signature does not verify");
  ERR_clear_error(); /* a failed check leaves OpenSSL errors on the loop thread */
  uint8_t *plain = NULL;
  size_t plain_len = 0;
  if (rc == OKEGW_JWT_OK && !cjose_jws_get_plaintext(jws, &plain, &plain_len, &cerr))
    rc = fail(out, OKEGW_JWT_MALFORMED, "the token has no payload");
  cJSON *claims = rc == OKEGW_JWT_OK ? cJSON_ParseWithLength((const char *)plain, plain_len) : NULL;
  if (rc == OKEGW_JWT_OK)
    rc = okegw_jwt_check_claims(claims, e, now, out);
  cJSON_Delete(claims);
  cjose_jws_release(jws);
  return rc;
}
