/* Signing JWTs (see signer.h). */
#include "auth/signer.h"
#include "base/util.h"

#include <cjose/cjose.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct okegw_signer {
  cjose_jwk_t *jwk;
  const char *alg;
  char kid[44];
};

/* A big-number parameter of the key, as big-endian bytes of exactly len
 * (len 0: its own length). NULL when the key has no such parameter. */
static uint8_t *bn_param(EVP_PKEY *k, const char *name, size_t *len) {
  BIGNUM *bn = NULL;
  if (EVP_PKEY_get_bn_param(k, name, &bn) != 1)
    return NULL;
  size_t n = *len ? *len : (size_t)BN_num_bytes(bn);
  uint8_t *out = malloc(n ? n : 1);
  if (out && BN_bn2binpad(bn, out, (int)n) < 0) {
    free(out);
    out = NULL;
  }
  BN_clear_free(bn);
  *len = n;
  return out;
}

static cjose_jwk_t *rsa_jwk(EVP_PKEY *k) {
  static const char *const names[] = {
      OSSL_PKEY_PARAM_RSA_E,         OSSL_PKEY_PARAM_RSA_N,           OSSL_PKEY_PARAM_RSA_D,
      OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,     OSSL_PKEY_PARAM_RSA_EXPONENT1,
      OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
  uint8_t *v[8] = {0};
  size_t len[8] = {0};
  int ok = 1;
  for (int i = 0; i < 8; i++)
    ok &= (v[i] = bn_param(k, names[i], &len[i])) != NULL;
  cjose_jwk_t *jwk = NULL;
  if (ok) {
    cjose_jwk_rsa_keyspec spec = {.e = v[0],
                                  .elen = len[0],
                                  .n = v[1],
                                  .nlen = len[1],
                                  .d = v[2],
                                  .dlen = len[2],
                                  .p = v[3],
                                  .plen = len[3],
                                  .q = v[4],
                                  .qlen = len[4],
                                  .dp = v[5],
                                  .dplen = len[5],
                                  .dq = v[6],
                                  .dqlen = len[6],
                                  .qi = v[7],
                                  .qilen = len[7]};
    jwk = cjose_jwk_create_RSA_spec(&spec, NULL);
  }
  for (int i = 0; i < 8; i++) {
    if (v[i])
      OPENSSL_cleanse(v[i], len[i]);
    free(v[i]);
  }
  return jwk;
}

static cjose_jwk_t *ec_jwk(EVP_PKEY *k) {
  size_t dl = 32, xl = 32, yl = 32;
  uint8_t *d = bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &dl);
  uint8_t *x = bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &xl);
  uint8_t *y = bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &yl);
  cjose_jwk_t *jwk = NULL;
  if (d && x && y) {
    cjose_jwk_ec_keyspec spec = {
        .crv = CJOSE_JWK_EC_P_256, .d = d, .dlen = dl, .x = x, .xlen = xl, .y = y, .ylen = yl};
    jwk = cjose_jwk_create_EC_spec(&spec, NULL);
  }
  if (d)
    OPENSSL_cleanse(d, dl);
  free(d);
  free(x);
  free(y);
  return jwk;
}

int okegw_signer_load(const char *pem_file, okegw_signer **out, char *err, size_t errlen) {
  FILE *f = pem_file ? fopen(pem_file, "r") : NULL;
  EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, (void *)"") : NULL;
  if (f)
    fclose(f);
  if (!k) {
    snprintf(err, errlen, "%s: %s", pem_file ? pem_file : "(no file)",
             f ? "not an unencrypted PEM private key" : "cannot be read");
    return -1;
  }
  okegw_signer *s = calloc(1, sizeof *s);
  char group[32] = "";
  size_t glen = 0;
  if (s && EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048) {
    s->alg = "RS256";
    s->jwk = rsa_jwk(k);
  } else if (s && EVP_PKEY_is_a(k, "EC") &&
             EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &glen) == 1 &&
             strcmp(group, "prime256v1") == 0) {
    s->alg = "ES256";
    s->jwk = ec_jwk(k);
  } else if (s) {
    snprintf(err, errlen, "%s: an RSA key of at least 2048 bits or an EC P-256 key is needed",
             pem_file);
    EVP_PKEY_free(k);
    free(s);
    return -1;
  }
  /* the kid: a digest of the public key (its DER form) */
  unsigned char *der = NULL, md[32];
  int dlen = i2d_PUBKEY(k, &der);
  unsigned int mdlen = 0;
  int have_md = dlen > 0 && EVP_Digest(der, (size_t)dlen, md, &mdlen, EVP_sha256(), NULL) == 1;
  OPENSSL_free(der);
  EVP_PKEY_free(k);
  if (!s || !s->jwk || !have_md) {
    snprintf(err, errlen, "%s: the key could not be used (out of memory?)", pem_file);
    okegw_signer_free(s);
    return -1;
  }
  char b64[48];
  EVP_EncodeBlock((unsigned char *)b64, md, 18); /* 24 characters, no padding */
  for (int i = 0; i < 24; i++)
    s->kid[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  s->kid[24] = '\0';
  cjose_jwk_set_kid(s->jwk, s->kid, strlen(s->kid), NULL);
  *out = s;
  return 0;
}

void okegw_signer_free(okegw_signer *s) {
  if (!s)
    return;
  if (s->jwk)
    cjose_jwk_release(s->jwk);
  free(s);
}

const char *okegw_signer_alg(const okegw_signer *s) { return s->alg; }
const char *okegw_signer_kid(const okegw_signer *s) { return s->kid; }

char *okegw_signer_sign(const okegw_signer *s, const cJSON *claims, const char *typ) {
  char *payload = cJSON_PrintUnformatted(claims);
  cjose_header_t *h = cjose_header_new(NULL);
  cjose_jws_t *jws = NULL;
  const char *compact = NULL;
  char *out = NULL;
  if (payload && h && cjose_header_set(h, CJOSE_HDR_ALG, s->alg, NULL) &&
      cjose_header_set(h, CJOSE_HDR_KID, s->kid, NULL) &&
      cjose_header_set(h, "typ", typ ? typ : "JWT", NULL) &&
      (jws = cjose_jws_sign(s->jwk, h, (const uint8_t *)payload, strlen(payload), NULL)) &&
      cjose_jws_export(jws, &compact, NULL))
    out = okegw_strdup(compact);
  if (jws)
    cjose_jws_release(jws);
  if (h)
    cjose_header_release(h);
  cJSON_free(payload);
  return out;
}

char *okegw_signer_jwks(const okegw_signer *s) {
  char *pub = cjose_jwk_to_json(s->jwk, false, NULL);
  cJSON *key = pub ? cJSON_Parse(pub) : NULL;
  free(pub);
  if (!key)
    return NULL;
  cJSON_AddStringToObject(key, "alg", s->alg);
  cJSON_AddStringToObject(key, "use", "sig");
  cJSON *set = cJSON_CreateObject();
  cJSON *keys = set ? cJSON_AddArrayToObject(set, "keys") : NULL;
  char *text = NULL;
  if (keys && cJSON_AddItemToArray(keys, key)) {
    key = NULL;
    text = cJSON_PrintUnformatted(set);
  }
  cJSON_Delete(key);
  cJSON_Delete(set);
  return text;
}
