/* The token issuer shared by several event loops: threads sign with its one
 * signer and verify against its one key set at once (RS256 and ES256), and
 * its bookkeeping of failures (the buckets, which grow while other threads
 * hold indices) loses no failure. Includes token.c to reach the bookkeeping;
 * build it with -fsanitize=thread to see that nothing races. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/token.c"

#define THREADS 8
#define ROUNDS 40

/* A fresh key in a PEM file (RSA 2048 or EC P-256); the path in path. */
static void key_file(int rsa, char path[64]) {
  snprintf(path, 64, "/tmp/okegw-test-token-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  assert_non_null(k);
  assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
  EVP_PKEY_free(k);
  fclose(f);
}

static okegw_token_issuer *issuer(int rsa, char path[64]) {
  key_file(rsa, path);
  okegw_conf conf = {0};
  conf.token_endpoint = 1;
  conf.token_signing_key_file = path;
  conf.token_lifetime_s = 300;
  okegw_token_issuer *t = NULL;
  char err[512];
  assert_int_equal(okegw_token_issuer_new(&conf, &t, err, sizeof err), 0);
  return t;
}

/* ---- signing and verifying ------------------------------------------------- */

typedef struct signing {
  okegw_token_issuer *t;
  const char *shared; /* signed before the threads start: each verifies it */
  int n;
  int signed_ok, verified, refused, others_ok; /* counted by the thread */
} signing;

static void *sign_and_verify(void *arg) {
  signing *s = arg;
  okegw_jwt_expect e = okegw_token_issuer_expect(s->t);
  const okegw_jwks *keys = okegw_token_issuer_keys(s->t);
  long long now = okegw_wall_ms() / 1000;
  for (int i = 0; i < ROUNDS; i++) {
    char sub[32];
    snprintf(sub, sizeof sub, "client-%d-%d", s->n, i);
    cJSON *claims = cJSON_CreateObject();
    cJSON_AddStringToObject(claims, "iss", OWN_ISSUER);
    cJSON_AddStringToObject(claims, "aud", e.audience);
    cJSON_AddStringToObject(claims, "client_id", sub);
    cJSON_AddStringToObject(claims, "scope", "nl-test-admin-flow-0");
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + 300));
    char *token = okegw_signer_sign(s->t->signer, claims, "at+jwt");
    cJSON_Delete(claims);
    if (!token)
      continue;
    s->signed_ok++;
    okegw_jwt_result r;
    if (okegw_jwt_verify(token, keys, &e, now, &r) == OKEGW_JWT_OK &&
        strcmp(r.client_id, sub) == 0 && r.scopes == OKEGW_SCOPE_FLOW0)
      s->verified++;
    /* one character of the signature changed: refused */
    char *last = token + strlen(token) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    if (okegw_jwt_verify(token, keys, &e, now, &r) == OKEGW_JWT_SIGNATURE)
      s->refused++;
    free(token);
    if (okegw_jwt_verify(s->shared, keys, &e, now, &r) == OKEGW_JWT_OK &&
        strcmp(r.client_id, "main") == 0)
      s->others_ok++;
  }
  return NULL;
}

static void sign_verify_threads(int rsa) {
  char path[64];
  okegw_token_issuer *t = issuer(rsa, path);
  assert_string_equal(okegw_signer_alg(t->signer), rsa ? "RS256" : "ES256");
  long long now = okegw_wall_ms() / 1000;
  cJSON *claims = cJSON_CreateObject();
  cJSON_AddStringToObject(claims, "iss", OWN_ISSUER);
  cJSON_AddStringToObject(claims, "aud", OWN_ISSUER);
  cJSON_AddStringToObject(claims, "client_id", "main");
  cJSON_AddNumberToObject(claims, "exp", (double)(now + 300));
  char *shared = okegw_signer_sign(t->signer, claims, "at+jwt");
  cJSON_Delete(claims);
  assert_non_null(shared);

  signing s[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    s[i] = (signing){.t = t, .shared = shared, .n = i};
    assert_int_equal(pthread_create(&th[i], NULL, sign_and_verify, &s[i]), 0);
  }
  int signed_ok = 0, verified = 0, refused = 0, others_ok = 0;
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    signed_ok += s[i].signed_ok;
    verified += s[i].verified;
    refused += s[i].refused;
    others_ok += s[i].others_ok;
  }
  assert_int_equal(signed_ok, THREADS * ROUNDS);
  assert_int_equal(verified, THREADS * ROUNDS);
  assert_int_equal(refused, THREADS * ROUNDS);
  assert_int_equal(others_ok, THREADS * ROUNDS);
  free(shared);
  okegw_token_issuer_free(t);
  unlink(path);
}

static void rs256_from_threads(void **state) {
  (void)state;
  sign_verify_threads(1);
}

static void es256_from_threads(void **state) {
  (void)state;
  sign_verify_threads(0);
}

/* ---- the bookkeeping ------------------------------------------------------- */

#define NAMES 300 /* client ids the threads share, well under the bound */

typedef struct booking {
  okegw_token_issuer *t;
  int n;
  unsigned failed; /* failures this thread added */
  int bad_index;   /* an index that named another client's bucket */
} booking;

static void *book(void *arg) {
  booking *b = arg;
  for (int i = 0; i < ROUNDS * 10; i++) {
    char client[32];
    snprintf(client, sizeof client, "client-%d", (i * 7 + b->n * 31) % NAMES);
    uint64_t wait_ms;
    unsigned failures;
    size_t k = bucket_enter(b->t, client, 1000, &wait_ms, &failures);
    /* what the check's callback does, with no lock held in between */
    bucket_settle(b->t, k, 0, 1000, &failures);
    b->failed++;
    pthread_mutex_lock(&b->t->lock);
    b->bad_index |= strcmp(b->t->buckets[k].client, client) != 0;
    pthread_mutex_unlock(&b->t->lock);
  }
  return NULL;
}

static void buckets_from_threads(void **state) {
  (void)state;
  char path[64];
  okegw_token_issuer *t = issuer(0, path);
  booking b[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    b[i] = (booking){.t = t, .n = i};
    assert_int_equal(pthread_create(&th[i], NULL, book, &b[i]), 0);
  }
  unsigned failed = 0;
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    failed += b[i].failed;
    assert_false(b[i].bad_index);
  }
  /* one bucket per id (no id twice, none lost to a race on the growth),
   * every failure counted */
  assert_int_equal(t->nbuckets, 1 + NAMES);
  unsigned counted = 0;
  for (size_t i = 0; i < t->nbuckets; i++) {
    counted += t->buckets[i].failures;
    for (size_t j = i + 1; j < t->nbuckets; j++)
      assert_string_not_equal(t->buckets[i].client, t->buckets[j].client);
  }
  assert_int_equal(counted, failed);
  assert_int_equal(failed, THREADS * ROUNDS * 10);
  okegw_token_issuer_free(t);
  unlink(path);
}

/* The slowdown itself: 1, 2, 4, ... 60 s; a success clears the failures. */
static void backoff(void **state) {
  (void)state;
  char path[64];
  okegw_token_issuer *t = issuer(0, path);
  static const unsigned pauses[] = {1, 2, 4, 8, 16, 32, 60, 60};
  uint64_t now = 5000, wait_ms;
  unsigned failures;
  size_t k = bucket_enter(t, "", now, &wait_ms, &failures);
  assert_int_equal(k, 0);
  assert_int_equal(wait_ms, 0);
  for (unsigned i = 0; i < 8; i++) {
    assert_int_equal(bucket_settle(t, k, 0, now, &failures), pauses[i]);
    assert_int_equal(failures, i + 1);
    assert_int_equal(bucket_enter(t, "", now + 400, &wait_ms, &failures), k);
    assert_int_equal(wait_ms, pauses[i] * 1000 - 400);
    now += pauses[i] * 1000;
    assert_int_equal(bucket_enter(t, "", now, &wait_ms, &failures), k);
    assert_int_equal(wait_ms, 0);
  }
  /* another client has its own bucket */
  size_t other = bucket_enter(t, "planner", now, &wait_ms, &failures);
  assert_int_not_equal(other, k);
  assert_int_equal(failures, 0);
  assert_int_equal(bucket_settle(t, k, 1, now, &failures), 0);
  assert_int_equal(failures, 0);
  assert_int_equal(bucket_settle(t, k, 0, now, &failures), 1);
  okegw_token_issuer_free(t);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rs256_from_threads),
      cmocka_unit_test(es256_from_threads),
      cmocka_unit_test(buckets_from_threads),
      cmocka_unit_test(backoff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
