#include "http/server.h"
#include "base/log.h"
#include "oke/problem.h"
#include "base/util.h"

#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct okegw_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  okegw_server_opts opts;
  char *host;
  int port;
  int nconns;  /* all, closing ones too: they still hold a descriptor */
  int nactive; /* not yet on their way out: what max_connections counts */
  size_t in_flight;
  int draining;
  int listener_closed;
  okegw_conn *conns; /* all open connections */
  /* Connections waiting on their client (idle, or reading a request), the
   * longest waiting first: the one to close when a newcomer needs a slot.
   * [0] strangers, [1] connections that already had a request served: a
   * flood of new connections displaces its own kind before known callers. */
  okegw_conn *whead[2], *wtail[2];
  void (*on_drained)(void *);
  void *drained_arg;
  llhttp_settings_t settings;
  /* The loop's read buffer: libuv reads into it and on_read parses it out
   * before the next read, so one serves every connection (a malloc of 64
   * KiB per read otherwise). rbuf_busy guards against a read inside a read. */
  char rbuf[64 * 1024];
  int rbuf_busy;
  int nconns_peak;     /* since memory was last given back */
  uint64_t trimmed_at; /* uv_now of that */
};

/* After a burst of connections, give the memory they used back to the
 * system (the allocator keeps what was freed otherwise): once they are
 * down to a quarter of their peak, at most every TRIM_EVERY_MS. */
#define TRIM_PEAK 256
#define TRIM_EVERY_MS 10000

static void maybe_trim(okegw_server *s) {
  if (s->nconns_peak < TRIM_PEAK || s->nconns > s->nconns_peak / 4)
    return;
  uint64_t now = uv_now(s->loop);
  if (s->trimmed_at && now - s->trimmed_at < TRIM_EVERY_MS)
    return;
  okegw_malloc_release();
  s->trimmed_at = now;
  s->nconns_peak = s->nconns;
}

/* A connection owns its parser, the request being read and at most one
 * request being answered. Freed in the close callback, or later when a
 * request is still with the handler (refs). */
struct okegw_conn {
  uv_tcp_t tcp;
  /* idle time, then the deadline of the request being read; while an
   * answer is queued, the deadline of its next byte taken */
  uv_timer_t idle;
  okegw_server *srv;
  okegw_conn *next, *prev;
  okegw_conn *wnext, *wprev; /* the server's wait queue */
  int waiting;               /* in a wait queue: 1 + its index */
  int known;                 /* a request on it was answered below 400 */
  int doomed;                /* answered an error or closing: no longer counted */
  int in_body;               /* the request being read is past its headers */
  uint64_t body_start;       /* loop time its headers were complete */
  size_t body_seen;          /* body bytes received since */
  size_t unsent;             /* answer bytes queued when the send deadline was set */
  int send_deadline;         /* the timer is the send deadline (not a read deadline) */
  llhttp_t parser;
  okegw_req *cur;         /* request being parsed */
  okegw_req *busy;        /* request handed to the handler, not answered yet */
  size_t header_bytes;    /* of the request being parsed */
  int last_was_value;     /* header callbacks: field/value alternation */
  int err_status;         /* status to answer when the parser stops with an error */
  const char *err_detail; /* and why, when it is not llhttp's reason */
  int dechunk;            /* state of the chunked body being read (DC_*), 0 when none */
  uint64_t chunk_left;    /* the chunk size being read, then its bytes still to come */
  int chunk_digits;
  size_t chunk_meta; /* chunk extension and trailer bytes, held to max_header_bytes */
  int closing;
  int handles_open; /* tcp + idle timer */
  int keep_alive;
  int streaming; /* a streamed answer has begun and not ended */
  char *pending; /* bytes read after a pipelined request, parsed later */
  size_t pending_len;
  /* A request is with the handler or its answer is being written: what the
   * client sends meanwhile waits in pending. A plain connection keeps its
   * read open (reading) until bytes actually come, which saves an epoll_ctl
   * per request; a TLS one stops reading at once. */
  int paused;
  int reading;         /* uv_read_start is in effect */
  okegw_tls_conn *tls; /* the TLS listener's connections: their TLS state */
  char *head_only;     /* a streamed answer to HEAD: its head, sent at the end */
  size_t head_only_len;
};

typedef struct write_req {
  uv_write_t w;
  okegw_conn *conn;
  int close_after; /* 1: close when written; -1: an interim (1xx) answer */
  char *data;
} write_req;

static void conn_close(okegw_conn *c);
static void conn_parse(okegw_conn *c, const char *data, size_t len);
static int conn_write(okegw_conn *c, char *data, size_t len, int close_after);

/* ---- the wait queue ---------------------------------------------------- */

static void wait_leave(okegw_conn *c) {
  if (!c->waiting)
    return;
  okegw_server *s = c->srv;
  int q = c->waiting - 1;
  if (c->wprev)
    c->wprev->wnext = c->wnext;
  else
    s->whead[q] = c->wnext;
  if (c->wnext)
    c->wnext->wprev = c->wprev;
  else
    s->wtail[q] = c->wprev;
  c->wnext = c->wprev = NULL;
  c->waiting = 0;
}

/* Joins at the back: accepted, answered, or starting a request. Bytes alone
 * do not move a connection, so trickling cannot keep it young. */
static void wait_enter(okegw_conn *c) {
  wait_leave(c);
  if (c->doomed)
    return;
  okegw_server *s = c->srv;
  int q = c->known;
  c->wprev = s->wtail[q];
  if (s->wtail[q])
    s->wtail[q]->wnext = c;
  else
    s->whead[q] = c;
  s->wtail[q] = c;
  c->waiting = 1 + q;
}

/* On its way out: no longer takes a slot nor waits for anything. */
static void conn_doom(okegw_conn *c) {
  if (c->doomed)
    return;
  c->doomed = 1;
  c->srv->nactive--;
  wait_leave(c);
  uv_timer_stop(&c->idle);
}

/* ---- requests ---------------------------------------------------------- */

static void req_free(okegw_req *r) {
  if (!r)
    return;
  free(r->target);
  free(r->path);
  free(r->query);
  for (size_t i = 0; i < r->nheaders; i++) {
    free(r->headers[i].name);
    free(r->headers[i].value);
  }
  free(r->headers);
  free(r->body);
  free(r);
}

const char *okegw_req_header(const okegw_req *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

static int append_str(char **dst, const char *at, size_t len) {
  size_t old = *dst ? strlen(*dst) : 0;
  char *p = realloc(*dst, old + len + 1);
  if (!p)
    return -1;
  memcpy(p + old, at, len);
  p[old + len] = '\0';
  *dst = p;
  return 0;
}

/* States of okegw's own chunked-body reader (dechunk_feed). */
enum {
  DC_SIZE = 1, /* chunk-size: hex digits */
  DC_BWS,      /* blanks after the size: a ';' must follow */
  DC_EXT,      /* in the extensions, up to CR */
  DC_EXT_Q,    /* in a quoted-string */
  DC_EXT_QP,   /* after a backslash in it */
  DC_SIZE_LF,
  DC_DATA,
  DC_DATA_CR,
  DC_DATA_LF,
  DC_TRAILER, /* at the start of a trailer line, or of the final CRLF */
  DC_TRAILER_LINE,
  DC_TRAILER_LF,
  DC_END_LF,
  DC_DONE
};

/* ---- llhttp callbacks -------------------------------------------------- */

static okegw_conn *conn_of(llhttp_t *p) { return p->data; }

static int fail(okegw_conn *c, int status) {
  c->err_status = status;
  return HPE_USER;
}

static int count_header_bytes(okegw_conn *c, size_t len) {
  c->header_bytes += len;
  return c->header_bytes > c->srv->opts.max_header_bytes ? -1 : 0;
}

static void on_deadline(uv_timer_t *t);

static int on_message_begin(llhttp_t *p) {
  okegw_conn *c = conn_of(p);
  c->cur = calloc(1, sizeof *c->cur);
  if (!c->cur)
    return fail(c, 503);
  c->cur->conn = c;
  c->cur->start_ms = okegw_now_ms();
  if (c->tls) {
    c->cur->tls = 1;
    c->cur->client_subject = okegw_tls_conn_subject(c->tls);
    c->cur->client_cert_sha256 = okegw_tls_conn_sha256(c->tls);
  }
  c->header_bytes = 0;
  c->last_was_value = 1;
  c->in_body = 0;
  /* The headers' deadline runs from their first byte and is not moved by
   * later ones: a trickling client cannot stretch it. */
  c->send_deadline = 0;
  uv_timer_start(&c->idle, on_deadline, (uint64_t)c->srv->opts.header_timeout_ms, 0);
  wait_enter(c);
  return 0;
}

static int on_method_complete(llhttp_t *p) {
  okegw_conn *c = conn_of(p);
  c->cur->head = llhttp_get_method(p) == HTTP_HEAD;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  okegw_conn *c = conn_of(p);
  if (count_header_bytes(c, len) < 0)
    return fail(c, 431);
  return append_str(&c->cur->target, at, len) < 0 ? fail(c, 503) : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  okegw_conn *c = conn_of(p);
  okegw_req *r = c->cur;
  if (count_header_bytes(c, len + 4) < 0)
    return fail(c, 431);
  if (c->last_was_value) {
    if (r->nheaders == r->headers_cap) {
      size_t cap = r->headers_cap ? r->headers_cap * 2 : 16;
      okegw_header *h = realloc(r->headers, cap * sizeof *h);
      if (!h)
        return fail(c, 503);
      r->headers = h;
      r->headers_cap = cap;
    }
    r->headers[r->nheaders++] = (okegw_header){NULL, NULL};
    c->last_was_value = 0;
  }
  return append_str(&r->headers[r->nheaders - 1].name, at, len) < 0 ? fail(c, 503) : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  okegw_conn *c = conn_of(p);
  okegw_req *r = c->cur;
  if (count_header_bytes(c, len) < 0)
    return fail(c, 431);
  c->last_was_value = 1;
  if (r->nheaders == 0)
    return 0;
  return append_str(&r->headers[r->nheaders - 1].value, at, len) < 0 ? fail(c, 503) : 0;
}

static int on_headers_complete(llhttp_t *p) {
  okegw_conn *c = conn_of(p);
  okegw_req *r = c->cur;
  for (size_t i = 0; i < r->nheaders; i++)
    if (!r->headers[i].value && !(r->headers[i].value = okegw_strdup("")))
      return fail(c, 503);
  /* HEAD runs as GET; the body is dropped when the answer is written. */
  r->method = r->head ? "GET" : llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
  if (!r->target)
    return fail(c, 400);
  const char *q = strchr(r->target, '?');
  r->path = q ? okegw_strndup(r->target, (size_t)(q - r->target)) : okegw_strdup(r->target);
  r->query = okegw_strdup(q ? q + 1 : "");
  if (!r->path || !r->query)
    return fail(c, 503);
  /* Refuse an announced oversize body before reading it. */
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->opts.max_body_bytes)
    return fail(c, 413);
  if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0)) {
    /* From here the body's minimum rate counts, after a grace (on_deadline). */
    c->in_body = 1;
    c->body_start = uv_now(c->srv->loop);
    c->body_seen = 0;
    uv_timer_start(&c->idle, on_deadline, (uint64_t)c->srv->opts.header_timeout_ms, 0);
  }
  /* Clients such as curl wait for this before sending a larger body. */
  const char *expect = okegw_req_header(r, "Expect");
  if (expect && strcasecmp(expect, "100-continue") == 0) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char *data = okegw_strndup(cont, sizeof cont - 1);
    if (!data || conn_write(c, data, sizeof cont - 1, -1) < 0)
      return fail(c, 503);
  }
  if (p->flags & F_CHUNKED) {
    /* llhttp skips the body (1) and okegw reads it (dechunk_feed). */
    c->dechunk = DC_SIZE;
    c->chunk_left = 0;
    c->chunk_digits = 0;
    c->chunk_meta = 0;
    return 1;
  }
  return 0;
}

/* 0, or the status to answer (413, 503). */
static int body_append(okegw_conn *c, const char *at, size_t len) {
  okegw_req *r = c->cur;
  if (r->body_len + len > c->srv->opts.max_body_bytes)
    return 413;
  c->body_seen += len;
  char *b = realloc(r->body, r->body_len + len + 1);
  if (!b)
    return 503;
  memcpy(b + r->body_len, at, len);
  r->body = b;
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  okegw_conn *c = conn_of(p);
  int status = body_append(c, at, len);
  return status ? fail(c, status) : 0;
}

static int on_message_complete(llhttp_t *p) {
  okegw_conn *c = conn_of(p);
  c->keep_alive = llhttp_should_keep_alive(p);
  /* Stop here: a chunked body is read next (dechunk), and pipelined
   * requests wait until this one is answered. */
  return HPE_PAUSED;
}

/* ---- chunked bodies ----------------------------------------------------- */

/* llhttp 8 refuses some chunk extensions RFC 9112 allows (a quoted-pair in a
 * quoted value, a second extension after an unquoted value), and extensions
 * mean nothing to okegw: it reads chunked bodies itself, checks the syntax
 * of extensions and trailers and drops them. */

static int tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int hexval(unsigned char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch |= 0x20;
  return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static long dechunk_fail(okegw_conn *c, int status, const char *detail) {
  c->err_status = status;
  c->err_detail = detail;
  return -1;
}

/* Reads what it can of the chunked body; returns the bytes used (all of them
 * unless the body ends inside data), or -1 with err_status set. */
static long dechunk_feed(okegw_conn *c, const char *data, size_t len) {
  size_t i = 0;
  size_t max_meta = c->srv->opts.max_header_bytes;
  while (i < len && c->dechunk != DC_DONE) {
    unsigned char ch = (unsigned char)data[i];
    switch (c->dechunk) {
    case DC_SIZE: {
      int v = hexval(ch);
      if (v >= 0) {
        /* kept at most max_body_bytes, so it cannot overflow */
        c->chunk_left = c->chunk_left * 16 + (uint64_t)v;
        c->chunk_digits++;
        if (c->chunk_left > c->srv->opts.max_body_bytes)
          return dechunk_fail(c, 413, "request body exceeds max_body_bytes");
      } else if (c->chunk_digits && ch == ';') {
        c->dechunk = DC_EXT;
      } else if (c->chunk_digits && (ch == ' ' || ch == '\t')) {
        c->dechunk = DC_BWS;
      } else if (c->chunk_digits && ch == '\r') {
        c->dechunk = DC_SIZE_LF;
      } else {
        return dechunk_fail(c, 400, "invalid chunk size");
      }
      i++;
      continue;
    }
    case DC_BWS:
    case DC_EXT:
    case DC_EXT_Q:
    case DC_EXT_QP:
      if (++c->chunk_meta > max_meta)
        return dechunk_fail(c, 431, "chunk extensions exceed max_header_bytes");
      if (c->dechunk == DC_BWS) {
        /* "5 6" must not pass for a chunk of 5 */
        if (ch == ';')
          c->dechunk = DC_EXT;
        else if (ch != ' ' && ch != '\t')
          return dechunk_fail(c, 400, "invalid chunk size");
      } else if (c->dechunk == DC_EXT) {
        if (ch == '\r')
          c->dechunk = DC_SIZE_LF;
        else if (ch == '"')
          c->dechunk = DC_EXT_Q;
        else if (!tchar(ch) && !strchr(";= \t", ch))
          return dechunk_fail(c, 400, "invalid character in a chunk extension");
      } else if (c->dechunk == DC_EXT_Q) {
        if (ch == '"')
          c->dechunk = DC_EXT;
        else if (ch == '\\')
          c->dechunk = DC_EXT_QP;
        else if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
          return dechunk_fail(c, 400, "invalid character in a quoted chunk extension");
      } else {
        if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
          return dechunk_fail(c, 400, "invalid character in a quoted chunk extension");
        c->dechunk = DC_EXT_Q;
      }
      i++;
      continue;
    case DC_SIZE_LF:
      if (ch != '\n')
        return dechunk_fail(c, 400, "chunk size line not ended by CRLF");
      c->dechunk = c->chunk_left ? DC_DATA : DC_TRAILER;
      i++;
      continue;
    case DC_DATA: {
      size_t n = len - i;
      if (n > c->chunk_left)
        n = (size_t)c->chunk_left;
      int status = body_append(c, data + i, n);
      if (status)
        return dechunk_fail(c, status,
                            status == 413 ? "request body exceeds max_body_bytes"
                                          : "out of memory while reading the request");
      c->chunk_left -= n;
      if (!c->chunk_left)
        c->dechunk = DC_DATA_CR;
      i += n;
      continue;
    }
    case DC_DATA_CR:
    case DC_DATA_LF:
      if (ch != (c->dechunk == DC_DATA_CR ? '\r' : '\n'))
        return dechunk_fail(c, 400, "chunk data not followed by CRLF");
      if (c->dechunk == DC_DATA_LF) {
        c->dechunk = DC_SIZE;
        c->chunk_digits = 0;
      } else {
        c->dechunk = DC_DATA_LF;
      }
      i++;
      continue;
    case DC_TRAILER:
    case DC_TRAILER_LINE:
      if (c->dechunk == DC_TRAILER && ch == '\r') {
        c->dechunk = DC_END_LF;
      } else if (ch == '\r') {
        c->dechunk = DC_TRAILER_LF;
      } else if (ch != '\t' && (ch < 0x20 || ch == 0x7f)) {
        return dechunk_fail(c, 400, "invalid character in a trailer field");
      } else {
        if (++c->chunk_meta > max_meta)
          return dechunk_fail(c, 431, "trailer fields exceed max_header_bytes");
        c->dechunk = DC_TRAILER_LINE;
      }
      i++;
      continue;
    case DC_TRAILER_LF:
    case DC_END_LF:
      if (ch != '\n')
        return dechunk_fail(c, 400, "trailer line not ended by CRLF");
      c->dechunk = c->dechunk == DC_END_LF ? DC_DONE : DC_TRAILER;
      i++;
      continue;
    }
  }
  return (long)i;
}

/* ---- writing ----------------------------------------------------------- */

static void arm_idle(okegw_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(okegw_conn *c) {
  if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

static void read_stop(okegw_conn *c) {
  if (c->reading)
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* Keeps n bytes the client sent ahead for when its answer is out. */
static int pending_add(okegw_conn *c, const char *data, size_t n) {
  char *p = realloc(c->pending, c->pending_len + n + 1);
  if (!p)
    return -1;
  memcpy(p + c->pending_len, data, n);
  c->pending = p;
  c->pending_len += n;
  p[c->pending_len] = '\0';
  return 0;
}

static void after_write(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  okegw_conn *c = wr->conn;
  int close_after = wr->close_after > 0 || status < 0;
  int interim = wr->close_after < 0;
  free(wr->data);
  free(wr);
  if (c->closing)
    return;
  if (interim && !close_after)
    return; /* a 100 Continue: the request is still being read */
  if (close_after) {
    conn_close(c);
    return;
  }
  if (c->busy)
    return;
  /* Continue with pipelined bytes, then with the socket. */
  char *pending = c->pending;
  size_t plen = c->pending_len;
  c->pending = NULL;
  c->pending_len = 0;
  c->paused = 0;
  arm_idle(c);
  wait_enter(c);
  if (pending) {
    conn_parse(c, pending, plen);
    free(pending);
  }
  /* Nothing left over is waiting for an answer: listen to the socket again. */
  if (!c->paused && !c->closing)
    read_start(c);
}

static int conn_write(okegw_conn *c, char *data, size_t len, int close_after) {
  if (c->tls) { /* what leaves is the records that carry it */
    okegw_buf b = {0};
    int rc = okegw_tls_conn_encrypt(c->tls, data, len, &b);
    free(data);
    if (rc < 0) {
      okegw_buf_free(&b);
      conn_close(c);
      return -1;
    }
    data = b.data;
    len = b.len;
  }
  write_req *wr = calloc(1, sizeof *wr);
  if (!wr) {
    free(data);
    conn_close(c);
    return -1;
  }
  wr->conn = c;
  wr->close_after = close_after;
  wr->data = data;
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &buf, 1, after_write) < 0) {
    free(data);
    free(wr);
    conn_close(c);
    return -1;
  }
  /* What the socket did not take at once must be taken within
   * send_timeout_ms, byte by byte: a reader that stops holds nothing long.
   * A 100 Continue leaves the body's deadline running. */
  size_t unsent = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (unsent > 0 && (close_after >= 0 || c->streaming) && !c->closing) {
    c->unsent = unsent;
    c->send_deadline = 1;
    uv_timer_start(&c->idle, on_deadline, (uint64_t)c->srv->opts.send_timeout_ms, 0);
  }
  return 0;
}

/* head: an answer to HEAD, with the Content-Length of the body it leaves out. */
static char *build_response(int status, const char *ctype, const char *body, size_t blen,
                            const char *extra, int keep_alive, int head, const char *request_id,
                            size_t *out_len) {
  okegw_buf b = {0};
  okegw_buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status,
                   okegw_status_text(status), blen);
  if (ctype)
    okegw_buf_printf(&b, "Content-Type: %s\r\n", ctype);
  if (request_id)
    okegw_buf_printf(&b, "X-Request-Id: %s\r\n", request_id);
  if (extra)
    okegw_buf_append(&b, extra, strlen(extra));
  if (!keep_alive)
    okegw_buf_append(&b, "Connection: close\r\n", 19);
  if (okegw_buf_append(&b, "\r\n", 2) < 0) {
    okegw_buf_free(&b);
    return NULL;
  }
  if (blen && !head && okegw_buf_append(&b, body, blen) < 0) {
    okegw_buf_free(&b);
    return NULL;
  }
  *out_len = b.len;
  return b.data;
}

static void conn_release(okegw_conn *c);

int okegw_respond(okegw_req *r, int status, const char *content_type, const char *body,
                  size_t body_len, const char *extra_headers) {
  okegw_conn *c = r->conn;
  if (!c || c->busy != r || c->streaming)
    return -1;
  c->busy = NULL;
  c->srv->in_flight--;
  c->known |= status < 400;
  int keep_alive = c->keep_alive && !c->srv->draining;
  if (c->closing) {
    /* The client left; the answer has nowhere to go. */
    req_free(r);
    conn_release(c);
    return 0;
  }
  size_t len = 0;
  char *data = build_response(status, content_type, body, body_len, extra_headers, keep_alive,
                              r->head, r->request_id, &len);
  req_free(r);
  if (!data) {
    conn_close(c);
    return 0;
  }
  if (keep_alive)
    llhttp_resume(&c->parser);
  conn_write(c, data, len, !keep_alive);
  return 0;
}

int okegw_respond_begin(okegw_req *r, int status, const char *content_type,
                        const char *extra_headers) {
  okegw_conn *c = r->conn;
  if (!c || c->busy != r || c->streaming)
    return -1;
  c->streaming = 1;
  c->known |= status < 400;
  if (c->closing)
    return -1;
  okegw_buf b = {0};
  okegw_buf_printf(&b, "HTTP/1.1 %d %s\r\nTransfer-Encoding: chunked\r\n", status,
                   okegw_status_text(status));
  if (content_type)
    okegw_buf_printf(&b, "Content-Type: %s\r\n", content_type);
  okegw_buf_printf(&b, "X-Request-Id: %s\r\n", r->request_id);
  if (extra_headers)
    okegw_buf_append(&b, extra_headers, strlen(extra_headers));
  if (!c->keep_alive || c->srv->draining)
    okegw_buf_append(&b, "Connection: close\r\n", 19);
  if (okegw_buf_append(&b, "\r\n", 2) < 0) {
    okegw_buf_free(&b);
    return -1;
  }
  if (r->head) {
    /* Kept for the end: it then goes out as the whole answer. */
    c->head_only = b.data;
    c->head_only_len = b.len;
    return 0;
  }
  return conn_write(c, b.data, b.len, -1);
}

int okegw_respond_write(okegw_req *r, const char *data, size_t len) {
  okegw_conn *c = r->conn;
  if (!c || c->busy != r || !c->streaming || c->closing)
    return -1;
  if (len == 0 || r->head)
    return 0;
  okegw_buf b = {0};
  okegw_buf_printf(&b, "%zx\r\n", len);
  okegw_buf_append(&b, data, len);
  if (okegw_buf_append(&b, "\r\n", 2) < 0) {
    okegw_buf_free(&b);
    return -1;
  }
  return conn_write(c, b.data, b.len, -1);
}

int okegw_respond_end(okegw_req *r, int ok) {
  okegw_conn *c = r->conn;
  if (!c || c->busy != r || !c->streaming)
    return -1;
  c->streaming = 0;
  c->busy = NULL;
  c->srv->in_flight--;
  int keep_alive = ok && c->keep_alive && !c->srv->draining;
  int head = r->head;
  req_free(r);
  char *last = c->head_only;
  size_t last_len = c->head_only_len;
  c->head_only = NULL;
  if (c->closing) {
    free(last);
    conn_release(c);
    return 0;
  }
  if (!ok) {
    free(last);
    conn_close(c); /* no last chunk: the client knows the answer is cut off */
    return 0;
  }
  if (keep_alive)
    llhttp_resume(&c->parser);
  if (!head) {
    last = okegw_strndup("0\r\n\r\n", 5);
    last_len = 5;
  }
  if (!last) {
    conn_close(c);
    return 0;
  }
  return conn_write(c, last, last_len, !keep_alive);
}

int okegw_respond_problem(okegw_req *r, int status, const char *title, const char *detail) {
  char *body = okegw_problem_json(status, title, detail, NULL);
  int rc = okegw_respond(r, status, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, NULL);
  free(body);
  return rc;
}

/* An error found by the server itself, before any handler saw the request:
 * answer and close, since the byte stream can no longer be trusted. */
static void conn_error(okegw_conn *c, int status, const char *detail) {
  char *body = okegw_problem_json(status, okegw_status_text(status), detail, NULL);
  size_t len = 0;
  char *data = build_response(status, OKEGW_PROBLEM_TYPE, body, body ? strlen(body) : 0, NULL, 0,
                              c->cur && c->cur->head, NULL, &len);
  conn_doom(c);
  free(body);
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.status = status;
  okegw_log(OKEGW_LOG_INFO, &f, "request refused: %s", detail);
  read_stop(c);
  if (data)
    conn_write(c, data, len, 1);
  else
    conn_close(c);
}

/* ---- reading and parsing ----------------------------------------------- */

/* The request is complete: to the handler, keeping what follows it. */
static void request_ready(okegw_conn *c, const char *rest, size_t rest_len) {
  okegw_req *r = c->cur;
  c->cur = NULL;
  c->busy = r;
  c->header_bytes = 0;
  c->dechunk = 0;
  c->in_body = 0;
  okegw_uuid4(r->request_id);
  c->srv->in_flight++;
  uv_timer_stop(&c->idle);
  wait_leave(c); /* with the handler: never closed for a newcomer */
  if (rest_len && pending_add(c, rest, rest_len) < 0)
    c->keep_alive = 0; /* what came after it is lost: end after this answer */
  c->paused = 1;
  if (c->tls) /* records cannot wait undecrypted in pending */
    read_stop(c);
  c->srv->opts.handler(r, c->srv->opts.ud);
}

static void conn_parse(okegw_conn *c, const char *data, size_t len) {
  llhttp_errno_t err = HPE_PAUSED;
  size_t used = 0;
  if (!c->dechunk) {
    err = llhttp_execute(&c->parser, data, len);
    if (err == HPE_OK)
      return;
    const char *pos = llhttp_get_error_pos(&c->parser);
    used = err == HPE_PAUSED && pos ? (size_t)(pos - data) : len;
  }
  if (err == HPE_PAUSED && c->dechunk) {
    long n = dechunk_feed(c, data + used, len - used);
    if (n < 0)
      err = HPE_USER;
    else if (c->dechunk != DC_DONE)
      return; /* the rest of the body comes with later reads */
    else
      used += (size_t)n;
  }
  if (err == HPE_PAUSED) {
    request_ready(c, data + used, len - used);
    return;
  }
  int status = c->err_status ? c->err_status : 400;
  const char *detail = c->err_detail;
  switch (detail ? 0 : status) {
  case 0: break;
  case 431: detail = "request header fields exceed max_header_bytes"; break;
  case 413: detail = "request body exceeds max_body_bytes"; break;
  case 503: detail = "out of memory while reading the request"; break;
  default:
    detail = llhttp_get_error_reason(&c->parser);
    if (!detail)
      detail = llhttp_errno_name(err);
  }
  conn_error(c, status, detail); /* the half request is freed with the connection */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  okegw_server *srv = ((okegw_conn *)h->data)->srv;
  if (!srv->rbuf_busy) {
    srv->rbuf_busy = 1;
    *buf = uv_buf_init(srv->rbuf, sizeof srv->rbuf);
    return;
  }
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void read_buf_done(okegw_server *srv, const uv_buf_t *buf) {
  if (buf->base == srv->rbuf)
    srv->rbuf_busy = 0;
  else
    free(buf->base);
}

static void after_raw_write(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  if (status < 0 && !wr->conn->closing)
    conn_close(wr->conn);
  free(wr->data);
  free(wr);
}

/* Bytes of the TLS layer itself (handshake, tickets): no answer state. */
static int conn_write_raw(okegw_conn *c, char *data, size_t len) {
  write_req *wr = calloc(1, sizeof *wr);
  uv_buf_t b = uv_buf_init(data, (unsigned)len);
  if (!wr || (wr->conn = c, wr->data = data,
              uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, after_raw_write) < 0)) {
    free(wr);
    free(data);
    conn_close(c);
    return -1;
  }
  return 0;
}

static void after_alert(uv_write_t *w, int status) {
  (void)status;
  write_req *wr = (write_req *)w;
  conn_close(wr->conn);
  free(wr->data);
  free(wr);
}

/* TLS bytes from the client: the handshake, then records whose content is
 * parsed as if it had come in plain. */
static void tls_read(okegw_conn *c, const char *data, size_t len) {
  okegw_buf plain = {0}, out = {0};
  const char *why = NULL;
  int was_ready = okegw_tls_conn_ready(c->tls);
  int rc = okegw_tls_conn_feed(c->tls, data, len, &plain, &out, &why);
  uint64_t *counts = c->srv->opts.tls_handshakes;
  if (counts && !was_ready && (rc < 0 || okegw_tls_conn_ready(c->tls)))
    __atomic_fetch_add(&counts[rc < 0 ? 1 : 0], 1, __ATOMIC_RELAXED);
  if (rc < 0) {
    okegw_log(OKEGW_LOG_DEBUG, NULL, "TLS connection ended: %s", why);
    okegw_buf_free(&plain);
    write_req *wr = out.len ? calloc(1, sizeof *wr) : NULL;
    uv_buf_t b = uv_buf_init(out.data, (unsigned)out.len);
    conn_doom(c);
    if (wr && (wr->conn = c, wr->data = out.data,
               uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, after_alert) == 0))
      return; /* closed once the alert is out */
    free(wr);
    okegw_buf_free(&out);
    conn_close(c);
    return;
  }
  if (out.len) { /* handshake messages and session tickets */
    if (conn_write_raw(c, out.data, out.len) < 0) {
      okegw_buf_free(&plain);
      return;
    }
  } else {
    okegw_buf_free(&out);
  }
  if (!was_ready && okegw_tls_conn_ready(c->tls))
    arm_idle(c); /* the handshake is done: now the wait for a request */
  if (plain.len && !c->closing && !c->doomed)
    conn_parse(c, plain.data, plain.len);
  okegw_buf_free(&plain);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  okegw_conn *c = s->data;
  okegw_server *srv = c->srv;
  if (c->paused) {
    /* The client spoke while its request is still being answered: keep
     * the bytes for then and stop reading. An end of the stream or an
     * error shows again when reading resumes, after the answer. */
    if (nread > 0 && pending_add(c, buf->base, (size_t)nread) < 0)
      conn_close(c); /* the answer is dropped: okegw_respond sees closing */
    else if (nread != 0)
      read_stop(c);
    read_buf_done(srv, buf);
    return;
  }
  if (nread < 0) {
    read_buf_done(srv, buf);
    conn_close(c);
    return;
  }
  if (nread > 0 && !c->closing && !c->doomed) {
    if (c->tls)
      tls_read(c, buf->base, (size_t)nread);
    else
      conn_parse(c, buf->base, (size_t)nread);
  }
  read_buf_done(srv, buf); /* c may be gone: srv is not */
}

/* ---- connection lifetime ----------------------------------------------- */

/* The idle time between requests, or the deadline of the request being
 * read: its headers' (fixed), or its body's, which moves on with the bytes
 * received at the minimum rate; the timer rests until the latest deadline. */
static void on_deadline(uv_timer_t *t) {
  okegw_conn *c = t->data;
  size_t unsent = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (unsent == 0)
    c->send_deadline = 0;
  if (c->send_deadline && !c->closing) {
    if (unsent < c->unsent) { /* the caller is taking it, however slowly */
      c->unsent = unsent;
      uv_timer_start(&c->idle, on_deadline, (uint64_t)c->srv->opts.send_timeout_ms, 0);
      return;
    }
    okegw_log(OKEGW_LOG_WARN, NULL,
              "closed a connection: the caller took none of its answer for send_timeout_ms "
              "(%zu bytes left unsent)",
              unsent);
    conn_close(c);
    return;
  }
  if (c->busy || c->doomed)
    return;
  if (!c->cur) {
    conn_close(c);
    return;
  }
  const okegw_server_opts *o = &c->srv->opts;
  const char *detail = "request headers not complete within header_timeout_ms of their first byte";
  if (c->in_body) {
    uint64_t now = uv_now(c->srv->loop);
    uint64_t due = c->body_start + (uint64_t)o->header_timeout_ms +
                   (uint64_t)c->body_seen * 1000 / (uint64_t)o->body_min_rate_bytes;
    if (due > now) {
      uv_timer_start(&c->idle, on_deadline, due - now, 0);
      return;
    }
    detail = "request body arriving slower than body_min_rate_bytes per second";
  }
  conn_error(c, 408, detail);
}

static void arm_idle(okegw_conn *c) {
  c->send_deadline = 0;
  if (!c->closing && !c->doomed)
    uv_timer_start(&c->idle, on_deadline, (uint64_t)c->srv->opts.idle_timeout_ms, 0);
}

static void maybe_drained(okegw_server *s) {
  if (s->draining && s->nconns == 0 && s->listener_closed && s->on_drained) {
    void (*cb)(void *) = s->on_drained;
    s->on_drained = NULL;
    cb(s->drained_arg);
  }
}

/* Frees the connection once both handles are closed and no request is with
 * the handler. */
static void conn_release(okegw_conn *c) {
  if (c->handles_open > 0 || c->busy)
    return;
  okegw_server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  req_free(c->cur);
  free(c->pending);
  free(c->head_only);
  okegw_tls_conn_free(c->tls);
  free(c);
  maybe_trim(s);
  maybe_drained(s);
}

static void on_handle_closed(uv_handle_t *h) {
  okegw_conn *c = h->data;
  c->handles_open--;
  conn_release(c);
}

static void conn_close(okegw_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  conn_doom(c);
  uv_close((uv_handle_t *)&c->idle, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_connection(uv_stream_t *listener, int status) {
  okegw_server *s = listener->data;
  if (status < 0) {
    okegw_log(OKEGW_LOG_WARN, NULL, "accept failed: %s", uv_strerror(status));
    return;
  }
  okegw_conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->idle);
  c->tcp.data = c->idle.data = c;
  c->handles_open = 2;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  if (++s->nconns > s->nconns_peak)
    s->nconns_peak = s->nconns;
  s->nactive++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
  c->parser.data = c;
  if (s->opts.tls && !(c->tls = okegw_tls_conn_new(s->opts.tls))) {
    conn_close(c);
    return;
  }
  if (s->nactive > s->opts.max_connections) {
    /* Full: the connection that has waited longest on its client makes room
     * (a stranger before a known caller), so a flood of slow or silent
     * connections displaces itself while callers that send their request
     * promptly get through. Connections with a request in the handler or an
     * answer under way are never taken. */
    okegw_conn *v = s->whead[0] ? s->whead[0] : s->whead[1];
    if (!v) {
      if (c->tls) /* no answer before a handshake */
        conn_close(c);
      else
        conn_error(c, 503, "too many connections (max_connections), all of them busy");
      return;
    }
    if (v->cur)
      conn_error(v, 503,
                 "closed to make room: at max_connections, and this request was the slowest "
                 "to arrive");
    else
      conn_close(v);
  }
  if (c->tls) /* a handshake must end as soon as a request's headers */
    uv_timer_start(&c->idle, on_deadline, (uint64_t)s->opts.header_timeout_ms, 0);
  else
    arm_idle(c);
  wait_enter(c);
  read_start(c);
}

static void limits_defaults(okegw_server_opts *o) {
  if (o->header_timeout_ms <= 0)
    o->header_timeout_ms = 10000;
  if (o->send_timeout_ms <= 0)
    o->send_timeout_ms = 60000;
  if (o->body_min_rate_bytes == 0)
    o->body_min_rate_bytes = 1024;
}

void okegw_server_set_limits(okegw_server *s, const okegw_server_opts *opts) {
  if (!s)
    return;
  okegw_server_opts *o = &s->opts;
  o->max_header_bytes = opts->max_header_bytes;
  o->max_body_bytes = opts->max_body_bytes;
  o->idle_timeout_ms = opts->idle_timeout_ms;
  o->header_timeout_ms = opts->header_timeout_ms;
  o->body_min_rate_bytes = opts->body_min_rate_bytes;
  o->send_timeout_ms = opts->send_timeout_ms;
  o->max_connections = opts->max_connections;
  limits_defaults(o);
}

/* A socket bound to addr, with the options uv_tcp_bind sets (SO_REUSEADDR),
 * and SO_REUSEPORT when asked: fd, or a negative libuv error. */
static int bound_socket(const struct sockaddr *addr, socklen_t len, int reuseport) {
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
      (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) ||
      bind(fd, addr, len) < 0) {
    int rc = uv_translate_sys_error(errno);
    close(fd);
    return rc;
  }
  return fd;
}

/* libuv 1.44 has no flag for SO_REUSEPORT: the socket is made here and
 * handed to libuv. The first server of an address binds it once without
 * SO_REUSEPORT, so that an address another process listens on (with or
 * without it) is refused as with one loop; port 0 then becomes the port
 * that bind chose. */
static int bind_reuseport(uv_tcp_t *t, struct sockaddr_storage *ss, int first) {
  struct sockaddr *addr = (struct sockaddr *)ss;
  socklen_t len =
      addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (first) {
    int probe = bound_socket(addr, len, 0);
    if (probe < 0)
      return probe;
    socklen_t blen = sizeof *ss;
    int rc = getsockname(probe, addr, &blen) < 0 ? uv_translate_sys_error(errno) : 0;
    close(probe);
    if (rc < 0)
      return rc;
  }
  int fd = bound_socket(addr, len, 1);
  if (fd < 0)
    return fd;
  int rc = uv_tcp_open(t, fd);
  if (rc < 0)
    close(fd);
  return rc;
}

int okegw_server_start(uv_loop_t *loop, const okegw_server_opts *opts, okegw_server **out) {
  okegw_server *s = calloc(1, sizeof *s);
  if (!s)
    return UV_ENOMEM;
  s->loop = loop;
  s->opts = *opts;
  s->host = okegw_strdup(opts->host);
  s->opts.host = s->host;
  limits_defaults(&s->opts);
  llhttp_settings_init(&s->settings);
  s->settings.on_message_begin = on_message_begin;
  s->settings.on_method_complete = on_method_complete;
  s->settings.on_url = on_url;
  s->settings.on_header_field = on_header_field;
  s->settings.on_header_value = on_header_value;
  s->settings.on_headers_complete = on_headers_complete;
  s->settings.on_body = on_body;
  s->settings.on_message_complete = on_message_complete;

  struct sockaddr_storage addr;
  int rc = uv_ip4_addr(opts->host, opts->port, (struct sockaddr_in *)&addr);
  if (rc < 0)
    rc = uv_ip6_addr(opts->host, opts->port, (struct sockaddr_in6 *)&addr);
  if (rc < 0) {
    free(s->host);
    free(s);
    return rc;
  }
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  rc = opts->reuseport
           ? bind_reuseport(&s->listener, &addr, opts->reuseport == OKEGW_REUSEPORT_FIRST)
           : uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc < 0) {
    /* The handle must still be closed; the caller runs the loop once. */
    uv_close((uv_handle_t *)&s->listener, NULL);
    *out = s;
    s->listener_closed = 1;
    return rc;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return 0;
}

int okegw_server_port(const okegw_server *s) { return s->port; }
size_t okegw_server_in_flight(const okegw_server *s) { return s->in_flight; }

static void on_listener_closed(uv_handle_t *h) {
  okegw_server *s = h->data;
  s->listener_closed = 1;
  maybe_drained(s);
}

void okegw_server_drain(okegw_server *s, void (*on_drained)(void *), void *arg) {
  s->on_drained = on_drained;
  s->drained_arg = arg;
  if (!s->draining) {
    s->draining = 1;
    if (!s->listener_closed)
      uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  }
  /* Connections without a request in the handler go now (a half-received
   * request was never accepted); busy ones close after their answer. */
  for (okegw_conn *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (!c->busy)
      conn_close(c);
  }
  maybe_drained(s);
}

void okegw_server_free(okegw_server *s) {
  if (!s)
    return;
  free(s->host);
  free(s);
}
