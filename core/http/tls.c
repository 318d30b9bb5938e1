/* TLS for the listener (see tls.h). */
#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct okegw_tls {
  SSL_CTX *ctx;
};

struct okegw_tls_conn {
  SSL *ssl;
  BIO *rbio; /* bytes from the socket, read by OpenSSL */
  BIO *wbio; /* bytes OpenSSL wants sent */
  int ready;
  char *subject;
  char sha256[65];
};

/* ---- the context --------------------------------------------------------- */

/* An encrypted key would make OpenSSL ask on the terminal: it fails instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return 0;
}

/* HTTP/1.1 is all okegw speaks; a client offering only h2 goes on without
 * ALPN and finds out from the answer. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl, (void)arg;
  static const unsigned char http11[] = "\x08http/1.1";
  if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof http11 - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_NOACK;
}

static int fail(char *err, size_t errsz, const char *key, const char *file, const char *what) {
  unsigned long e = ERR_peek_last_error();
  char reason[256] = "";
  if (e)
    ERR_error_string_n(e, reason, sizeof reason);
  ERR_clear_error();
  snprintf(err, errsz, "%s %s: %s%s%s", key, file ? file : "(not set)", what, e ? ": " : "",
           reason);
  return -1;
}

static SSL_CTX *make_ctx(const okegw_tls_opts *o, char *err, size_t errsz) {
  if (!o->cert_file || !o->key_file) {
    fail(err, errsz, o->cert_file ? "tls_key_file" : "tls_cert_file", NULL,
         "listen_tls needs both tls_cert_file and tls_key_file");
    return NULL;
  }
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    fail(err, errsz, "TLS", "context", "cannot be made");
    return NULL;
  }
  int v12 = o->min_version && strcmp(o->min_version, "1.2") == 0;
  SSL_CTX_set_min_proto_version(ctx, v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  /* resumed sessions of verified clients need a context id */
  SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"okegw", 5);
  int rc = 0;
  if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
    rc = fail(err, errsz, "tls_cert_file", o->cert_file, "not a readable PEM certificate");
  else if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
    rc = fail(err, errsz, "tls_key_file", o->key_file,
              "not a readable, unencrypted PEM private key");
  else if (SSL_CTX_check_private_key(ctx) != 1)
    rc = fail(err, errsz, "tls_key_file", o->key_file, "does not belong to tls_cert_file");
  if (rc == 0 && o->client_auth != OKEGW_TLS_CLIENT_OFF) {
    STACK_OF(X509_NAME) *names =
        o->client_ca_file ? SSL_load_client_CA_file(o->client_ca_file) : NULL;
    if (!names || SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      rc = fail(err, errsz, "tls_client_ca_file", o->client_ca_file,
                "needed for tls_client_auth; not a readable PEM CA certificate");
    } else {
      SSL_CTX_set_client_CA_list(ctx, names);
      SSL_CTX_set_verify(
          ctx,
          SSL_VERIFY_PEER |
              (o->client_auth == OKEGW_TLS_CLIENT_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
          NULL);
    }
  }
  if (rc < 0) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

int okegw_tls_new(const okegw_tls_opts *o, okegw_tls **out, char *err, size_t errsz) {
  okegw_tls *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errsz, "out of memory");
    return -1;
  }
  if (!(t->ctx = make_ctx(o, err, errsz))) {
    free(t);
    return -1;
  }
  *out = t;
  return 0;
}

int okegw_tls_reload(okegw_tls *t, const okegw_tls_opts *o, char *err, size_t errsz) {
  SSL_CTX *ctx = make_ctx(o, err, errsz);
  if (!ctx)
    return -1;
  SSL_CTX_free(t->ctx); /* connections hold their own reference */
  t->ctx = ctx;
  return 0;
}

void okegw_tls_free(okegw_tls *t) {
  if (!t)
    return;
  SSL_CTX_free(t->ctx);
  free(t);
}

/* ---- one connection ------------------------------------------------------ */

okegw_tls_conn *okegw_tls_conn_new(okegw_tls *t) {
  okegw_tls_conn *tc = calloc(1, sizeof *tc);
  if (!tc)
    return NULL;
  tc->ssl = SSL_new(t->ctx);
  tc->rbio = BIO_new(BIO_s_mem());
  tc->wbio = BIO_new(BIO_s_mem());
  if (!tc->ssl || !tc->rbio || !tc->wbio) {
    SSL_free(tc->ssl);
    BIO_free(tc->rbio);
    BIO_free(tc->wbio);
    free(tc);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_bio(tc->ssl, tc->rbio, tc->wbio); /* the SSL owns both now */
  SSL_set_accept_state(tc->ssl);
  return tc;
}

void okegw_tls_conn_free(okegw_tls_conn *tc) {
  if (!tc)
    return;
  SSL_free(tc->ssl);
  free(tc->subject);
  free(tc);
}

/* What OpenSSL wants sent, appended to out. */
static int drain(okegw_tls_conn *tc, okegw_buf *out) {
  char buf[16384];
  int n;
  while ((n = BIO_read(tc->wbio, buf, sizeof buf)) > 0)
    if (okegw_buf_append(out, buf, (size_t)n) < 0)
      return -1;
  return 0;
}

static void peer_certificate(okegw_tls_conn *tc) {
  X509 *x = SSL_get0_peer_certificate(tc->ssl);
  if (!x || SSL_get_verify_result(tc->ssl) != X509_V_OK)
    return;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32)
    okegw_hex(md, n, tc->sha256);
  BIO *b = BIO_new(BIO_s_mem());
  if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    if (len >= 0)
      tc->subject = okegw_strndup(p, (size_t)len);
  }
  BIO_free(b);
}

static const char *reason(const char *fallback) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : fallback;
}

int okegw_tls_conn_feed(okegw_tls_conn *tc, const char *in, size_t n, okegw_buf *plain,
                        okegw_buf *out, const char **why) {
  for (size_t off = 0; off < n;) {
    int w = BIO_write(tc->rbio, in + off, (int)(n - off > 1u << 30 ? 1u << 30 : n - off));
    if (w <= 0) {
      *why = "out of memory";
      return -1;
    }
    off += (size_t)w;
  }
  /* SSL_get_error reads the thread's error queue: what another part of okegw
   * left there (a failed JWT signature check) must not end this connection */
  ERR_clear_error();
  if (!tc->ready) {
    int r = SSL_do_handshake(tc->ssl);
    if (r == 1) {
      tc->ready = 1;
      peer_certificate(tc);
    } else {
      int e = SSL_get_error(tc->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        *why = reason("handshake failed");
        drain(tc, out); /* the alert tells the client why */
        return -1;
      }
    }
  }
  while (tc->ready) {
    char buf[16384];
    int r = SSL_read(tc->ssl, buf, sizeof buf);
    if (r > 0) {
      if (okegw_buf_append(plain, buf, (size_t)r) < 0) {
        *why = "out of memory";
        return -1;
      }
      continue;
    }
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
      break;
    *why = e == SSL_ERROR_ZERO_RETURN ? "closed by the client" : reason("bad TLS record");
    drain(tc, out);
    return -1;
  }
  if (drain(tc, out) < 0) {
    *why = "out of memory";
    return -1;
  }
  return 0;
}

int okegw_tls_conn_encrypt(okegw_tls_conn *tc, const char *data, size_t n, okegw_buf *out) {
  if (!tc->ready)
    return -1; /* nothing goes out before the handshake */
  for (size_t off = 0; off < n;) {
    size_t chunk = n - off > 65536 ? 65536 : n - off;
    ERR_clear_error();
    int w = SSL_write(tc->ssl, data + off, (int)chunk);
    if (w <= 0) {
      ERR_clear_error();
      return -1;
    }
    off += (size_t)w;
  }
  return drain(tc, out);
}

int okegw_tls_conn_ready(const okegw_tls_conn *tc) { return tc->ready; }

const char *okegw_tls_conn_subject(const okegw_tls_conn *tc) { return tc->subject; }

const char *okegw_tls_conn_sha256(const okegw_tls_conn *tc) {
  return tc->sha256[0] ? tc->sha256 : NULL;
}
