/* Client secrets kept as salted, slow hashes (scrypt), so a copy of
 * plugins.conf does not give the secrets away. The text form, one line:
 *
 *   $scrypt$ln=15,r=8,p=1$<salt, base64>$<hash, base64>
 *
 * Hashing and checking take tens of milliseconds on purpose: callers on the
 * event loop run okegw_secret_verify in the thread pool (uv_queue_work). */
#ifndef OKEGW_SECRET_H
#define OKEGW_SECRET_H

#include <stddef.h>

/* The hash of secret as a line (heap string, free()), or NULL. */
char *okegw_secret_hash(const char *secret, size_t len);
/* 1 when secret matches the stored line, 0 when not, -1 when the line is
 * not a hash this okegw reads (why says what is wrong). Constant time in
 * the comparison. */
int okegw_secret_verify(const char *secret, size_t len, const char *stored, const char **why);
/* 0 when stored is a well-formed hash line (for okegw -t), else -1 with why. */
int okegw_secret_check(const char *stored, const char **why);
/* A new random secret: 32 bytes as 43 base64url characters (out: 44). */
int okegw_secret_generate(char out[44]);

#endif
