/* Signing JWTs with a private key from a PEM file (RS256 for RSA keys of
 * 2048 bits or more, ES256 for P-256 keys): the tokens okegw issues itself
 * (token_endpoint) and the client assertions it sends (private_key_jwt).
 * The JWS is cjose's; OpenSSL reads the PEM file. The public half is
 * available as a JWKS, so that okegw's own tokens are checked by the same
 * code as any issuer's. A loaded signer is never changed: several threads
 * may sign with one at once (every signature has its own cjose and OpenSSL
 * contexts; OpenSSL locks what it caches in the key). */
#ifndef OKEGW_SIGNER_H
#define OKEGW_SIGNER_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct okegw_signer okegw_signer;

/* Reads the key; -1 with the reason (naming the file) in err. */
int okegw_signer_load(const char *pem_file, okegw_signer **out, char *err, size_t errlen);
void okegw_signer_free(okegw_signer *s);
/* "RS256" or "ES256". */
const char *okegw_signer_alg(const okegw_signer *s);
/* The key id put in every token's header: a digest of the public key. */
const char *okegw_signer_kid(const okegw_signer *s);
/* The compact JWS of claims (a JSON object), with typ (NULL: "JWT"), alg
 * and kid in its header; heap string, NULL on failure. */
char *okegw_signer_sign(const okegw_signer *s, const cJSON *claims, const char *typ);
/* {"keys":[the public key]} as text (heap string), NULL on failure. */
char *okegw_signer_jwks(const okegw_signer *s);

#endif
