/* Outbound HTTP: libcurl's multi interface driven by the libuv loop (curl's
 * socket and timer callbacks onto uv_poll and uv_timer), so no request ever
 * blocks the loop. Connections are reused across requests. */
#ifndef OKEGW_HTTP_CLIENT_H
#define OKEGW_HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

typedef struct okegw_http okegw_http;

typedef struct okegw_http_result {
  int status;        /* HTTP status, 0 on transport failure */
  const char *error; /* set when status == 0 */
  int timed_out;
  const char *content_type;
  const char *body;
  size_t body_len;
  double total_ms;
  const char *retry_after; /* the peer's Retry-After, or NULL */
  /* a 2xx answer whose body was over max_response_bytes: status is kept,
   * the body dropped (what the peer accepted stays accepted) */
  int too_large;
} okegw_http_result;

typedef void (*okegw_http_done)(void *ud, const okegw_http_result *res);

typedef struct okegw_http_opts {
  const char *method;
  const char *url;
  const char *const *headers; /* NULL-terminated, may be NULL */
  const char *body;
  size_t body_len;
  long connect_timeout_ms;
  long timeout_ms;
  size_t max_response_bytes; /* 0 = 16 MiB */
  /* TLS: a PEM bundle of trust anchors instead of the system's (a private
   * CA), a client certificate and key (mutual TLS), and the lowest version
   * accepted: 1.3 unless tls_min_1_2 is set (R1). NULL: not used. */
  const char *ca_file;
  const char *client_cert_file;
  const char *client_key_file;
  int tls_min_1_2;
  /* Streaming: when on_data is set the body is handed over piece by piece
   * (and not kept); on_head runs first, once. on_data returns non-zero to
   * abort. The done callback then has no body. */
  void (*on_head)(void *ud, int status, const char *content_type);
  int (*on_data)(void *ud, const char *data, size_t len);
} okegw_http_opts;

int okegw_http_init(uv_loop_t *loop, okegw_http **out);
/* Starts a request; done runs later on the loop, exactly once (also when the
 * client is closed first, with an error). Returns 0 or -1. */
int okegw_http_request(okegw_http *h, const okegw_http_opts *o, okegw_http_done done, void *ud);
/* Cancels what is running (their callbacks run with an error); from then on
 * okegw_http_request refuses (-1). The client stays readable, as a connector
 * that ends later (an OAuth wait, a guard) may still ask it. */
void okegw_http_close(okegw_http *h);
/* Closes the client if it is not yet, and frees it once its timer handle is
 * closed. Call when nothing holds the client any more. */
void okegw_http_free(okegw_http *h);

/* Releases libcurl's global state; call once at exit. */
void okegw_http_global_cleanup(void);

#endif
