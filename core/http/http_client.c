#include "http/http_client.h"
#include "base/log.h"
#include "base/util.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct okegw_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct xfer *xfers; /* running transfers, to fail them on close */
  CURL *spare[64];    /* reset easy handles: cheaper than creating new ones */
  size_t nspare;
  int closing;
  int timer_closed; /* the loop let go of the timer */
  int released;     /* the owner let go (okegw_http_free) */
  int env_proxy;    /* a proxy is named in the environment: let curl read it */
};

/* Whether the environment names a proxy the way libcurl reads it (it
 * ignores upper-case HTTP_PROXY). Without one, every transfer tells curl
 * "no proxy", which spares it reading five environment variables each
 * time. */
static int proxy_in_env(void) {
  static const char *const names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                      "ALL_PROXY"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v && *v)
      return 1;
  }
  return 0;
}

/* One uv_poll per socket curl tells us about. */
typedef struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  okegw_http *h;
} sock_ctx;

typedef struct xfer {
  struct xfer *next, *prev;
  CURL *easy;
  okegw_http *h;
  struct curl_slist *headers;
  okegw_buf body;
  size_t max_bytes;
  int too_big;
  char *req_body;
  char errbuf[CURL_ERROR_SIZE];
  okegw_http_done done;
  void *ud;
  void (*on_head)(void *ud, int status, const char *content_type);
  int (*on_data)(void *ud, const char *data, size_t len);
  int head_sent;
  size_t streamed;
  int aborted;
  char retry_after[64];
} xfer;

/* Keeps the headers a caller may act on (Retry-After); the rest is curl's. */
static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
    const char *v = buf + 12;
    size_t vl = len - 12;
    while (vl && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    if (vl < sizeof x->retry_after) {
      memcpy(x->retry_after, v, vl);
      x->retry_after[vl] = '\0';
    }
  }
  return len;
}

static int curl_global_ok;

static void send_head(xfer *x) {
  if (x->head_sent || !x->on_head)
    return;
  long status = 0;
  char *ctype = NULL;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
  x->head_sent = 1;
  x->on_head(x->ud, (int)status, ctype);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (x->on_data) {
    if (x->streamed + n > x->max_bytes) {
      x->too_big = 1;
      return 0;
    }
    x->streamed += n;
    send_head(x);
    if (x->on_data(x->ud, ptr, n) != 0) {
      x->aborted = 1;
      return 0;
    }
    return n;
  }
  if (x->body.len + n > x->max_bytes) {
    x->too_big = 1;
    return 0; /* aborts the transfer */
  }
  return okegw_buf_append(&x->body, ptr, n) < 0 ? 0 : n;
}

static void xfer_finish(xfer *x, CURLcode code) {
  okegw_http_result res = {0};
  long status = 0;
  char *ctype = NULL;
  double total = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
  curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &total);
  res.total_ms = total * 1000.0;
  if (code == CURLE_OK)
    send_head(x); /* an answer without a body */
  if (code != CURLE_OK && x->too_big && status >= 200 && status < 300) {
    res.status = (int)status;
    res.content_type = ctype;
    res.body = "";
    res.too_large = 1;
    res.error = "response body too large";
  } else if (code == CURLE_OK) {
    res.status = (int)status;
    res.content_type = ctype;
    res.body = x->body.data ? x->body.data : "";
    res.body_len = x->body.len;
    res.retry_after = x->retry_after[0] ? x->retry_after : NULL;
  } else {
    res.status = 0;
    res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    res.error = x->too_big     ? "response body too large"
                : x->errbuf[0] ? x->errbuf
                               : curl_easy_strerror(code);
  }
  x->done(x->ud, &res);
  curl_multi_remove_handle(x->h->multi, x->easy);
  if (x->h->nspare < sizeof x->h->spare / sizeof x->h->spare[0] && !x->h->closing) {
    curl_easy_reset(x->easy);
    x->h->spare[x->h->nspare++] = x->easy;
  } else {
    curl_easy_cleanup(x->easy);
  }
  curl_slist_free_all(x->headers);
  okegw_buf_free(&x->body);
  free(x->req_body);
  if (x->prev)
    x->prev->next = x->next;
  else
    x->h->xfers = x->next;
  if (x->next)
    x->next->prev = x->prev;
  free(x);
}

static void check_done(okegw_http *h) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(h->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    xfer *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (x)
      xfer_finish(x, msg->data.result);
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock_ctx *s = p->data;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running;
  okegw_http *h = s->h;
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  check_done(h);
}

static void on_timeout(uv_timer_t *t) {
  okegw_http *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *ud) {
  (void)multi;
  okegw_http *h = ud;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    /* 0 means "now": still go through the loop, never recurse into curl. */
    uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static void on_sock_closed(uv_handle_t *hd) { free(hd->data); }

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp) {
  (void)e;
  okegw_http *h = ud;
  sock_ctx *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_sock_closed);
      curl_multi_assign(h->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return -1;
    s->fd = fd;
    s->h = h;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) < 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    curl_multi_assign(h->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

int okegw_http_init(uv_loop_t *loop, okegw_http **out) {
  if (!curl_global_ok) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return -1;
    curl_global_ok = 1;
  }
  okegw_http *h = calloc(1, sizeof *h);
  if (!h)
    return -1;
  h->loop = loop;
  h->multi = curl_multi_init();
  if (!h->multi) {
    free(h);
    return -1;
  }
  h->env_proxy = proxy_in_env();
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L);
  *out = h;
  return 0;
}

int okegw_http_request(okegw_http *h, const okegw_http_opts *o, okegw_http_done done, void *ud) {
  if (h->closing)
    return -1;
  xfer *x = calloc(1, sizeof *x);
  if (!x)
    return -1;
  x->h = h;
  x->done = done;
  x->ud = ud;
  x->on_head = o->on_head;
  x->on_data = o->on_data;
  x->max_bytes = o->max_response_bytes ? o->max_response_bytes : (16u << 20);
  x->easy = h->nspare ? h->spare[--h->nspare] : curl_easy_init();
  if (!x->easy) {
    free(x);
    return -1;
  }
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_URL, o->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 2000L);
  long timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000L;
  if (o->on_data) {
    /* a stream may take long as long as it moves: stall detection instead
     * of a total limit */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (timeout + 999) / 1000);
  } else {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
  }
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!h->env_proxy) {
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
  }
  /* TLS peers must present a valid chain (R1); curl verifies by default. */
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_SSLVERSION,
                   o->tls_min_1_2 ? CURL_SSLVERSION_TLSv1_2 : CURL_SSLVERSION_TLSv1_3);
  if (o->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
  if (o->client_cert_file) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, o->client_cert_file);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (o->client_key_file) {
    curl_easy_setopt(e, CURLOPT_SSLKEY, o->client_key_file);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (strcmp(o->method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
    /* Copy: the caller's body may go away before curl sends it. */
    x->req_body = okegw_strndup(o->body ? o->body : "", o->body ? o->body_len : 0);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
  }
  /* No "Expect: 100-continue" round trip for small bodies. */
  x->headers = curl_slist_append(NULL, "Expect:");
  for (size_t i = 0; o->headers && o->headers[i]; i++)
    x->headers = curl_slist_append(x->headers, o->headers[i]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
    curl_slist_free_all(x->headers);
    curl_easy_cleanup(e);
    free(x->req_body);
    free(x);
    return -1;
  }
  x->next = h->xfers;
  if (h->xfers)
    h->xfers->prev = x;
  h->xfers = x;
  return 0;
}

static void on_timer_closed(uv_handle_t *hd) {
  okegw_http *h = hd->data;
  h->timer_closed = 1;
  if (h->released)
    free(h);
}

void okegw_http_close(okegw_http *h) {
  if (!h || h->closing)
    return;
  h->closing = 1;
  /* Fail what is still running so every caller hears back. */
  while (h->xfers)
    xfer_finish(h->xfers, CURLE_ABORTED_BY_CALLBACK);
  while (h->nspare)
    curl_easy_cleanup(h->spare[--h->nspare]);
  curl_multi_cleanup(h->multi);
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

void okegw_http_free(okegw_http *h) {
  if (!h)
    return;
  okegw_http_close(h);
  h->released = 1;
  if (h->timer_closed)
    free(h);
}

void okegw_http_global_cleanup(void) {
  if (curl_global_ok) {
    curl_global_cleanup();
    curl_global_ok = 0;
  }
}
