/* HTTP/1.1 server on libuv + llhttp: keep-alive, pipelined requests handled
 * one at a time per connection, chunked request bodies, HEAD, limits on
 * header bytes, body bytes, idle time, the time a request may take to arrive
 * and connection count. Every error answer it produces itself is
 * application/problem+json.
 *
 * Slow clients cannot hold the server: the request line and headers must
 * arrive within header_timeout_ms of their first byte, whatever trickles in
 * meanwhile; a body must then keep up an average of body_min_rate_bytes per
 * second after a grace of header_timeout_ms. At max_connections a new
 * connection takes the slot of the one that has waited longest on its client
 * (idle, or slowest with its request), a stranger's before that of a caller
 * already served on its connection; connections whose request is with the
 * handler or being answered are never taken. */
#ifndef OKEGW_SERVER_H
#define OKEGW_SERVER_H

#include "http/tls.h"

#include <stddef.h>
#include <uv.h>

typedef struct okegw_server okegw_server;
typedef struct okegw_conn okegw_conn;

typedef struct okegw_header {
  char *name; /* as received */
  char *value;
} okegw_header;

/* One request. Owned by the server; the handler may read everything and set
 * `data`. The request lives until okegw_respond() is called, even when the
 * client has gone away meanwhile (the answer is then dropped). */
typedef struct okegw_req {
  /* read-only */
  const char *method; /* "GET" for a HEAD request: see head */
  int head;           /* the client asked HEAD: answers go out without their body */
  char *target;       /* raw request target */
  char *path;         /* target before '?', not decoded */
  char *query;        /* after '?', "" if none */
  okegw_header *headers;
  size_t nheaders;
  char *body; /* NUL-terminated; NULL when there is none */
  size_t body_len;
  char request_id[37];
  double start_ms;
  /* TLS: 1 when the request came over the TLS listener; the client
   * certificate it verified (subject RFC 2253, SHA-256 hex of its DER), or
   * NULL. Valid as long as the request. */
  int tls;
  const char *client_subject;
  const char *client_cert_sha256;
  /* public */
  void *data;
  /* private */
  okegw_conn *conn;
  size_t headers_cap;
} okegw_req;

typedef void (*okegw_req_handler)(okegw_req *req, void *ud);

enum { OKEGW_REUSEPORT_NONE, OKEGW_REUSEPORT_FIRST, OKEGW_REUSEPORT_JOIN };

typedef struct okegw_server_opts {
  const char *host;
  int port; /* 0 = let the OS pick */
  size_t max_header_bytes;
  size_t max_body_bytes;
  long idle_timeout_ms;       /* between requests on a keep-alive connection */
  long header_timeout_ms;     /* first byte of a request to the end of its headers; 0: 10000 */
  size_t body_min_rate_bytes; /* per second, after a grace of header_timeout_ms; 0: 1024 */
  long send_timeout_ms;       /* an answer not taken at all for this long: closed; 0: 60000 */
  int max_connections;
  okegw_tls *tls; /* NULL: plain HTTP; else every connection speaks TLS (not owned) */
  /* SO_REUSEPORT: several servers (one per event loop) listen on the same
   * address and the kernel spreads new connections over them. Every one of
   * them sets it: the first with OKEGW_REUSEPORT_FIRST, which also makes sure
   * nothing else listens there (another process of the same user could
   * otherwise share the port silently), the others with _JOIN. */
  int reuseport;
  /* counts TLS handshakes: [0] done, [1] failed (the gateway's metrics);
   * NULL = not counted */
  uint64_t *tls_handshakes;
  okegw_req_handler handler;
  void *ud;
} okegw_server_opts;

/* Binds and listens. Returns 0 or a negative libuv error. */
int okegw_server_start(uv_loop_t *loop, const okegw_server_opts *opts, okegw_server **out);
/* New limits (a reload): max_header_bytes, max_body_bytes, the timeouts,
 * body_min_rate_bytes and max_connections of opts apply from the next
 * request on; address, TLS and handler stay. */
void okegw_server_set_limits(okegw_server *s, const okegw_server_opts *opts);
/* The port actually bound (useful with port 0). */
int okegw_server_port(const okegw_server *s);
/* Stops accepting and closes idle connections; busy ones close after their
 * answer. on_drained runs once no connection is left. */
void okegw_server_drain(okegw_server *s, void (*on_drained)(void *), void *arg);
/* Frees the server after it drained. */
void okegw_server_free(okegw_server *s);
size_t okegw_server_in_flight(const okegw_server *s);

/* Header value by case-insensitive name, or NULL. */
const char *okegw_req_header(const okegw_req *r, const char *name);

/* Sends the answer and releases the request. extra_headers is NULL or
 * "Name: value\r\n" lines. Returns 0, or -1 when the request was already
 * answered. */
int okegw_respond(okegw_req *r, int status, const char *content_type, const char *body,
                  size_t body_len, const char *extra_headers);
/* A streamed answer: the head (chunked transfer encoding), then the body
 * piece by piece, then the end, which releases the request like
 * okegw_respond. write returns -1 when the client has gone (stop sending);
 * end with ok = 0 cuts the answer off and closes the connection, so the
 * client sees it incomplete. */
int okegw_respond_begin(okegw_req *r, int status, const char *content_type,
                        const char *extra_headers);
int okegw_respond_write(okegw_req *r, const char *data, size_t len);
int okegw_respond_end(okegw_req *r, int ok);

/* application/problem+json answer with status as a string (OKE style). */
int okegw_respond_problem(okegw_req *r, int status, const char *title, const char *detail);

#endif
