/* JWT access tokens: the claim checks (issuer, audience, times with the
 * skew, which claim names the client, which the scopes), the shape test, the
 * JWKS parse (which keys are left out) and verify over tokens cjose signs
 * here with fresh keys (RS256, ES256 pass; HS256, an unknown kid, a key of
 * the wrong type, a changed payload do not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjose/cjose.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/conf.h"

#define NOW 1800000000LL
static const okegw_jwt_expect EXPECT = {"https://idp.example/oke", "okegw", OKEGW_JWT_SKEW_S};

/* Claims from JSON text, checked at NOW. */
static int check(const char *json, okegw_jwt_result *r) {
  cJSON *c = cJSON_Parse(json);
  assert_non_null(c);
  int rc = okegw_jwt_check_claims(c, &EXPECT, NOW, r);
  cJSON_Delete(c);
  return rc;
}

/* A claim set that passes, with `extra` members added (or overriding). */
static int with(const char *extra, okegw_jwt_result *r) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "{%s%s\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":%lld,"
           "\"client_id\":\"planner\",\"scope\":\"nl-test-admin-flow-0\"}",
           extra, *extra ? "," : "", NOW + 300);
  /* cJSON keeps the first of a repeated name: `extra` overrides */
  return check(buf, r);
}

static void claims_that_pass(void **state) {
  (void)state;
  okegw_jwt_result r;
  assert_int_equal(with("", &r), OKEGW_JWT_OK);
  assert_string_equal(r.client_id, "planner");
  assert_int_equal(r.scopes, OKEGW_SCOPE_FLOW0);
  assert_int_equal(r.exp, NOW + 300);
  assert_int_equal(with("\"aud\":[\"account\",\"okegw\"]", &r), OKEGW_JWT_OK);
  assert_int_equal(with("\"nbf\":1800000030,\"iat\":1800000030", &r), OKEGW_JWT_OK); /* skew */
  assert_int_equal(with("\"exp\":1799999941", &r), OKEGW_JWT_OK); /* 59 s past: skew */
  assert_int_equal(with("\"exp\":1e300", &r), OKEGW_JWT_OK);      /* far, not an overflow */
  assert_true(r.exp > NOW);
}

static void issuer_and_audience(void **state) {
  (void)state;
  okegw_jwt_result r;
  assert_int_equal(with("\"iss\":\"https://idp.example/oke/\"", &r), OKEGW_JWT_ISSUER);
  assert_non_null(r.reason);
  assert_int_equal(with("\"iss\":42", &r), OKEGW_JWT_ISSUER);
  assert_int_equal(check("{\"aud\":\"okegw\",\"exp\":1900000000,\"sub\":\"x\"}", &r),
                   OKEGW_JWT_ISSUER);
  assert_int_equal(with("\"aud\":\"okegw2\"", &r), OKEGW_JWT_AUDIENCE);
  assert_int_equal(with("\"aud\":[\"account\"]", &r), OKEGW_JWT_AUDIENCE);
  assert_int_equal(with("\"aud\":[]", &r), OKEGW_JWT_AUDIENCE);
  assert_int_equal(with("\"aud\":{\"okegw\":1}", &r), OKEGW_JWT_AUDIENCE);
  assert_int_equal(with("\"aud\":[[\"okegw\"]]", &r), OKEGW_JWT_AUDIENCE);
}

static void times(void **state) {
  (void)state;
  okegw_jwt_result r;
  assert_int_equal(with("\"exp\":1799999940", &r), OKEGW_JWT_EXPIRED); /* 60 s past */
  assert_int_equal(with("\"exp\":\"1900000000\"", &r), OKEGW_JWT_EXPIRED);
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"sub\":\"x\"}", &r),
      OKEGW_JWT_EXPIRED); /* exp is mandatory */
  assert_int_equal(with("\"nbf\":1800000061", &r), OKEGW_JWT_NOT_YET);
  assert_int_equal(with("\"iat\":1800000061", &r), OKEGW_JWT_NOT_YET);
  assert_int_equal(with("\"nbf\":null", &r), OKEGW_JWT_MALFORMED);
}

static void client_and_scopes(void **state) {
  (void)state;
  okegw_jwt_result r;
  /* client_id first, then azp, then sub */
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":1900000000,"
            "\"sub\":\"s\",\"azp\":\"a\",\"client_id\":\"c\"}",
            &r),
      OKEGW_JWT_OK);
  assert_string_equal(r.client_id, "c");
  assert_int_equal(r.scopes, 0);
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":1900000000,"
            "\"sub\":\"s\",\"azp\":\"a\"}",
            &r),
      OKEGW_JWT_OK);
  assert_string_equal(r.client_id, "a");
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":1900000000,"
            "\"sub\":\"s\",\"client_id\":\"\"}",
            &r),
      OKEGW_JWT_OK);
  assert_string_equal(r.client_id, "s");
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":1900000000,"
            "\"client_id\":7}",
            &r),
      OKEGW_JWT_CLIENT);
  /* scope: space separated; only full OKE names count */
  assert_int_equal(
      with("\"scope\":\"openid  nl-test-admin-flow-2-3-4 flow-0 nl-test-admin-flow-6\"", &r), 0);
  assert_int_equal(r.scopes, OKEGW_SCOPE_FLOW234 | OKEGW_SCOPE_FLOW6);
  assert_int_equal(with("\"scope\":\"nl-test-admin-flow-1-5x nl-test-admin-flow\"", &r), 0);
  assert_int_equal(r.scopes, 0);
  /* scp: an array, or a string; scope wins when both are there */
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":1900000000,"
            "\"sub\":\"s\",\"scp\":[\"nl-test-admin-flow-1-5\",3,\"nl-test-admin-"
            "flow-0\"]}",
            &r),
      OKEGW_JWT_OK);
  assert_int_equal(r.scopes, OKEGW_SCOPE_FLOW15 | OKEGW_SCOPE_FLOW0);
  assert_int_equal(
      check("{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\",\"exp\":1900000000,"
            "\"sub\":\"s\",\"scp\":\"nl-test-admin-flow-6\"}",
            &r),
      OKEGW_JWT_OK);
  assert_int_equal(r.scopes, OKEGW_SCOPE_FLOW6);
  assert_int_equal(with("\"scp\":[\"nl-test-admin-flow-6\"]", &r), OKEGW_JWT_OK);
  assert_int_equal(r.scopes, OKEGW_SCOPE_FLOW0);
}

static void shapes(void **state) {
  (void)state;
  assert_true(okegw_jwt_shaped("eyJh.eyJi.c2ln"));
  assert_true(okegw_jwt_shaped("eyJh.eyJi.")); /* alg none: refused later, but a JWT */
  assert_false(okegw_jwt_shaped("eyJh..c2ln"));
  assert_false(okegw_jwt_shaped(".eyJi.c2ln"));
  assert_false(okegw_jwt_shaped("eyJh.eyJi"));
  assert_false(okegw_jwt_shaped("a.b.c.d"));
  assert_false(okegw_jwt_shaped("a.b.c="));
  assert_false(okegw_jwt_shaped("a.b c.d"));
  assert_false(okegw_jwt_shaped("static-inbound-token-0001"));
}

/* ---- keys and tokens made with cjose ------------------------------------- */

/* {"keys": [...]} of the public parts of keys. */
static char *jwks_of(cjose_jwk_t **keys, size_t n) {
  char *out = strdup("{\"keys\":[");
  for (size_t i = 0; i < n; i++) {
    cjose_err err;
    char *k = cjose_jwk_to_json(keys[i], false, &err);
    assert_non_null(k);
    size_t len = strlen(out) + strlen(k) + 4;
    out = realloc(out, len);
    strcat(out, i ? "," : "");
    strcat(out, k);
    free(k);
  }
  out = realloc(out, strlen(out) + 3);
  strcat(out, "]}");
  return out;
}

static cjose_jwk_t *rsa_key(const char *kid, size_t bits) {
  cjose_err err;
  static const uint8_t e[] = {1, 0, 1};
  cjose_jwk_t *k = cjose_jwk_create_RSA_random(bits, e, sizeof e, &err);
  assert_non_null(k);
  assert_true(cjose_jwk_set_kid(k, kid, strlen(kid), &err));
  return k;
}

static cjose_jwk_t *ec_key(const char *kid, cjose_jwk_ec_curve crv) {
  cjose_err err;
  cjose_jwk_t *k = cjose_jwk_create_EC_random(crv, &err);
  assert_non_null(k);
  assert_true(cjose_jwk_set_kid(k, kid, strlen(kid), &err));
  return k;
}

/* A compact JWS of payload, signed by key with alg; kid NULL: no kid. */
static char *sign(cjose_jwk_t *key, const char *alg, const char *kid, const char *payload) {
  cjose_err err;
  cjose_header_t *h = cjose_header_new(&err);
  assert_true(cjose_header_set(h, CJOSE_HDR_ALG, alg, &err));
  if (kid)
    assert_true(cjose_header_set(h, CJOSE_HDR_KID, kid, &err));
  cjose_jws_t *jws = cjose_jws_sign(key, h, (const uint8_t *)payload, strlen(payload), &err);
  assert_non_null(jws);
  const char *ser = NULL;
  assert_true(cjose_jws_export(jws, &ser, &err));
  char *out = strdup(ser);
  cjose_jws_release(jws);
  cjose_header_release(h);
  return out;
}

static const char *PAYLOAD = "{\"iss\":\"https://idp.example/oke\",\"aud\":\"okegw\","
                             "\"exp\":1800000300,\"client_id\":\"planner\","
                             "\"scope\":\"nl-test-admin-flow-0\"}";

static int verify(const char *tok, const okegw_jwks *ks) {
  okegw_jwt_result r;
  int rc = okegw_jwt_verify(tok, ks, &EXPECT, NOW, &r);
  if (rc != OKEGW_JWT_OK)
    assert_non_null(r.reason);
  return rc;
}

static void key_sets(void **state) {
  (void)state;
  okegw_jwks *ks = NULL;
  char err[256];
  assert_int_equal(okegw_jwks_parse("nope", 4, &ks, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a JWKS"));
  const char *oct = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"h\"}]}";
  assert_int_equal(okegw_jwks_parse(oct, strlen(oct), &ks, err, sizeof err), -1);
  assert_non_null(strstr(err, "no usable key"));
  assert_null(ks);
  /* too short an RSA key, a P-384 key and an encryption key are left out */
  cjose_jwk_t *keys[4] = {rsa_key("small", 1024), ec_key("p384", CJOSE_JWK_EC_P_384),
                          rsa_key("good", 2048), ec_key("ec", CJOSE_JWK_EC_P_256)};
  char *text = jwks_of(keys, 4);
  assert_int_equal(okegw_jwks_parse(text, strlen(text), &ks, err, sizeof err), 0);
  assert_int_equal(okegw_jwks_count(ks), 2);
  okegw_jwks_free(ks);
  free(text);
  char *enc = jwks_of(&keys[2], 1);
  char *use = strstr(enc, "\"kty\"");
  assert_non_null(use);
  char *patched = malloc(strlen(enc) + 32);
  sprintf(patched, "%.*s\"use\":\"enc\",%s", (int)(use - enc), enc, use);
  assert_int_equal(okegw_jwks_parse(patched, strlen(patched), &ks, err, sizeof err), -1);
  free(patched);
  free(enc);
  for (size_t i = 0; i < 4; i++)
    cjose_jwk_release(keys[i]);
}

static void verify_tokens(void **state) {
  (void)state;
  cjose_jwk_t *keys[3] = {rsa_key("r1", 2048), ec_key("e1", CJOSE_JWK_EC_P_256),
                          rsa_key("r2", 2048)};
  char *text = jwks_of(keys, 2), *two_rsa = jwks_of(keys, 3), err[256];
  okegw_jwks *ks = NULL, *ks3 = NULL;
  assert_int_equal(okegw_jwks_parse(text, strlen(text), &ks, err, sizeof err), 0);
  assert_int_equal(okegw_jwks_parse(two_rsa, strlen(two_rsa), &ks3, err, sizeof err), 0);

  char *t = sign(keys[0], "RS256", "r1", PAYLOAD);
  okegw_jwt_result r;
  assert_int_equal(okegw_jwt_verify(t, ks, &EXPECT, NOW, &r), OKEGW_JWT_OK);
  assert_string_equal(r.client_id, "planner");
  assert_int_equal(r.scopes, OKEGW_SCOPE_FLOW0);
  /* a changed payload: the signature no longer fits */
  char *dot = strchr(t, '.');
  dot[3] = dot[3] == 'A' ? 'B' : 'A';
  assert_int_equal(verify(t, ks), OKEGW_JWT_SIGNATURE);
  free(t);

  t = sign(keys[1], "ES256", "e1", PAYLOAD);
  assert_int_equal(verify(t, ks), OKEGW_JWT_OK);
  free(t);
  /* no kid: the only key of its type; with two RSA keys there is none */
  t = sign(keys[1], "ES256", NULL, PAYLOAD);
  assert_int_equal(verify(t, ks), OKEGW_JWT_OK);
  free(t);
  t = sign(keys[0], "RS256", NULL, PAYLOAD);
  assert_int_equal(verify(t, ks3), OKEGW_JWT_KEY);
  free(t);
  /* a kid the set has not got: the caller may fetch the set again */
  t = sign(keys[2], "RS256", "r2", PAYLOAD);
  assert_int_equal(verify(t, ks), OKEGW_JWT_UNKNOWN_KID);
  assert_int_equal(verify(t, ks3), OKEGW_JWT_OK);
  assert_int_equal(verify(t, NULL), OKEGW_JWT_UNKNOWN_KID);
  free(t);
  /* the EC key's kid on an RS256 token: the key does not fit the alg */
  t = sign(keys[0], "RS256", "e1", PAYLOAD);
  assert_int_equal(verify(t, ks), OKEGW_JWT_KEY);
  free(t);
  /* other algorithms are refused before any key is looked at */
  t = sign(keys[0], "PS256", "r1", PAYLOAD);
  assert_int_equal(verify(t, ks), OKEGW_JWT_ALG);
  free(t);
  cjose_err cerr;
  cjose_jwk_t *hmac = cjose_jwk_create_oct_spec((const uint8_t *)text, strlen(text), &cerr);
  assert_non_null(hmac);
  t = sign(hmac, "HS256", "r1", PAYLOAD);
  assert_int_equal(verify(t, ks), OKEGW_JWT_ALG);
  free(t);
  cjose_jwk_release(hmac);
  /* the claims are checked after the signature */
  t = sign(keys[0], "RS256", "r1", "{\"iss\":\"other\",\"aud\":\"okegw\",\"exp\":1900000000}");
  assert_int_equal(verify(t, ks), OKEGW_JWT_ISSUER);
  free(t);
  t = sign(keys[0], "RS256", "r1", "[1,2]");
  assert_int_equal(verify(t, ks), OKEGW_JWT_MALFORMED);
  free(t);
  assert_int_equal(verify("eyJh.eyJi.c2ln", ks), OKEGW_JWT_MALFORMED);
  assert_int_equal(verify("not a jwt", ks), OKEGW_JWT_MALFORMED);

  okegw_jwks_free(ks);
  okegw_jwks_free(ks3);
  free(text);
  free(two_rsa);
  for (size_t i = 0; i < 3; i++)
    cjose_jwk_release(keys[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(claims_that_pass),
      cmocka_unit_test(issuer_and_audience),
      cmocka_unit_test(times),
      cmocka_unit_test(client_and_scopes),
      cmocka_unit_test(shapes),
      cmocka_unit_test(key_sets),
      cmocka_unit_test(verify_tokens),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
