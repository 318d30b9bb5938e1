/* TLS for the listener (OKE R1: TLS 1.3). OpenSSL runs over memory BIOs:
 * the server hands it the bytes libuv read and writes out what it produces,
 * so handshakes and records never block the loop and every limit and timer
 * of a plain connection applies to a TLS one too.
 *
 * okegw_tls holds the context made from the certificate, key and client CA
 * files; a reload builds a new one and swaps it in only when it is whole
 * (connections under way keep the one they started with). */
#ifndef OKEGW_TLS_H
#define OKEGW_TLS_H

#include "base/util.h"

#include <stddef.h>

typedef struct okegw_tls okegw_tls;
typedef struct okegw_tls_conn okegw_tls_conn;

enum okegw_tls_client_auth {
  OKEGW_TLS_CLIENT_OFF = 0,  /* no certificate asked */
  OKEGW_TLS_CLIENT_OPTIONAL, /* asked; one that is sent must verify */
  OKEGW_TLS_CLIENT_REQUIRED  /* a handshake without a valid one fails */
};

typedef struct okegw_tls_opts {
  const char *cert_file;      /* PEM: the certificate, then its chain */
  const char *key_file;       /* PEM private key */
  const char *min_version;    /* "1.3" (default) or "1.2" */
  const char *client_ca_file; /* PEM CAs that sign client certificates, or NULL */
  enum okegw_tls_client_auth client_auth;
} okegw_tls_opts;

/* Reads the files and makes the context; on failure returns -1 with the
 * reason (naming the file) in err. */
int okegw_tls_new(const okegw_tls_opts *o, okegw_tls **out, char *err, size_t errsz);
/* Re-reads the files; on failure the old context stays and err says why. */
int okegw_tls_reload(okegw_tls *t, const okegw_tls_opts *o, char *err, size_t errsz);
void okegw_tls_free(okegw_tls *t);

/* One connection's TLS state, with the context current at accept. */
okegw_tls_conn *okegw_tls_conn_new(okegw_tls *t);
void okegw_tls_conn_free(okegw_tls_conn *tc);
/* Takes bytes read from the socket: decrypted data is appended to plain,
 * bytes to send (handshake, alerts) to out. Returns 0, or -1 when the
 * connection must end (out may still hold an alert worth sending); why
 * points at a static reason then. */
int okegw_tls_conn_feed(okegw_tls_conn *tc, const char *in, size_t n, okegw_buf *plain,
                        okegw_buf *out, const char **why);
/* Encrypts data to send into out. Returns 0 or -1. */
int okegw_tls_conn_encrypt(okegw_tls_conn *tc, const char *data, size_t n, okegw_buf *out);
/* 1 once the handshake is complete. */
int okegw_tls_conn_ready(const okegw_tls_conn *tc);
/* The verified client certificate: its subject (RFC 2253) and the SHA-256
 * of its DER form (lower-case hex); NULL when none was sent. Valid while
 * the connection lives. */
const char *okegw_tls_conn_subject(const okegw_tls_conn *tc);
const char *okegw_tls_conn_sha256(const okegw_tls_conn *tc);

#endif
