/* Client secret hashes (see secret.h). */
#include "auth/secret.h"
#include "base/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scrypt with N = 2^15, r = 8, p = 1: 32 MiB and ~50 ms per check, the
 * interactive-login figures of the scrypt paper. */
#define LN_DEFAULT 15
#define LN_MAX 20 /* 1 GiB: refuse lines that would make a check a denial of service */
#define SALT_LEN 16
#define HASH_LEN 32
#define MEM_MAX ((uint64_t)1 << 31)

static int derive(const char *secret, size_t len, const unsigned char *salt, size_t salt_len,
                  int ln, int r, int p, unsigned char *out, size_t out_len) {
  return EVP_PBE_scrypt(secret, len, salt, salt_len, (uint64_t)1 << ln, (uint64_t)r, (uint64_t)p,
                        MEM_MAX, out, out_len) == 1
             ? 0
             : -1;
}

char *okegw_secret_hash(const char *secret, size_t len) {
  unsigned char salt[SALT_LEN], hash[HASH_LEN];
  if (RAND_bytes(salt, sizeof salt) != 1 ||
      derive(secret, len, salt, sizeof salt, LN_DEFAULT, 8, 1, hash, sizeof hash) < 0)
    return NULL;
  char s64[4 * ((SALT_LEN + 2) / 3) + 1], h64[4 * ((HASH_LEN + 2) / 3) + 1];
  EVP_EncodeBlock((unsigned char *)s64, salt, sizeof salt);
  EVP_EncodeBlock((unsigned char *)h64, hash, sizeof hash);
  OPENSSL_cleanse(hash, sizeof hash);
  size_t n = 64 + strlen(s64) + strlen(h64);
  char *line = malloc(n);
  if (line)
    snprintf(line, n, "$scrypt$ln=%d,r=8,p=1$%s$%s", LN_DEFAULT, s64, h64);
  return line;
}

typedef struct parsed {
  int ln, r, p;
  unsigned char salt[64], hash[64];
  size_t salt_len, hash_len;
} parsed;

/* Base64 of at most cap bytes; -1 when it is not base64. */

static int parse(const char *stored, parsed *out, const char **why) {
  *why = "not a client_secret_hash made by `okegw hash-secret` ($scrypt$ln=..,r=..,p=..$salt$hash)";
  if (!stored || strncmp(stored, "$scrypt$", 8) != 0)
    return -1;
  int used = 0;
  if (sscanf(stored + 8, "ln=%d,r=%d,p=%d$%n", &out->ln, &out->r, &out->p, &used) != 3 || !used)
    return -1;
  if (out->ln < 10 || out->ln > LN_MAX || out->r < 1 || out->r > 32 || out->p < 1 || out->p > 4) {
    *why = "client_secret_hash: scrypt parameters out of range (ln 10-20, r 1-32, p 1-4)";
    return -1;
  }
  const char *salt = stored + 8 + used;
  const char *dollar = strchr(salt, '$');
  if (!dollar)
    return -1;
  long s = okegw_base64_decode(salt, (size_t)(dollar - salt), out->salt, sizeof out->salt);
  long h = okegw_base64_decode(dollar + 1, strlen(dollar + 1), out->hash, sizeof out->hash);
  if (s < 8 || h < 16)
    return -1;
  out->salt_len = (size_t)s;
  out->hash_len = (size_t)h;
  return 0;
}

int okegw_secret_check(const char *stored, const char **why) {
  parsed p;
  return parse(stored, &p, why);
}

int okegw_secret_verify(const char *secret, size_t len, const char *stored, const char **why) {
  parsed p;
  if (parse(stored, &p, why) < 0)
    return -1;
  unsigned char got[64];
  if (derive(secret, len, p.salt, p.salt_len, p.ln, p.r, p.p, got, p.hash_len) < 0) {
    *why = "scrypt failed (out of memory)";
    return -1;
  }
  int same = CRYPTO_memcmp(got, p.hash, p.hash_len) == 0;
  OPENSSL_cleanse(got, sizeof got);
  return same;
}

int okegw_secret_generate(char out[44]) {
  unsigned char raw[32];
  char b64[45];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return -1;
  EVP_EncodeBlock((unsigned char *)b64, raw, sizeof raw); /* 44 characters, one '=' */
  for (int i = 0; i < 43; i++)
    out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  out[43] = '\0';
  OPENSSL_cleanse(raw, sizeof raw);
  return 0;
}
