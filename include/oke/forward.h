/*
 * Helpers for a plugin that forwards an exchange over HTTP (header-only,
 * part of the SDK; uses nothing but <oke/plugin.h> and the C library).
 *
 *   oke_forward_base_url the base_url setting, checked, for init
 *   oke_forward_headers  the usual header lines of the outbound request
 *   oke_forward_answer   relays the peer's answer, transport failures as
 *                        502/504 problems, Retry-After passed on
 */
#ifndef OKE_FORWARD_H
#define OKE_FORWARD_H

#include <oke/plugin.h>

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The peer's base URL for a forwarding plugin's init: NULL (with the reason
 * logged) when the host speaks another ABI or base_url is not set. */
static inline const char *oke_forward_base_url(const oke_host *h, oke_conn *c, const char *plugin) {
  if (h->abi_major != OKE_ABI_MAJOR || h->struct_size < offsetof(oke_host, http_stream))
    return NULL;
  const char *base = h->config(c, "base_url");
  if (!base || !*base) {
    h->log(c, OKE_LOG_ERROR, "base_url is required for the %s plugin", plugin);
    return NULL;
  }
  return base;
}

/* The header lines of a forwarded request: Accept: application/json, the
 * body's Content-Type (when there is a body), X-Request-Id, and the
 * connector's credentials. Lines own their text in `buf`; `lines` gets up to
 * `cap` - 1 pointers and a NULL. Returns the number of lines, or -1 when buf
 * or cap is too small. The result lives as long as buf and the connector. */
static inline int oke_forward_headers(const oke_host *h, oke_conn *c, const oke_request *req,
                                      char *buf, size_t bufsz, const char **lines, size_t cap) {
  size_t used = 0, n = 0;
  const char *ctype = req->content_type ? req->content_type : "application/json";
  const char *rid = req->request_id && *req->request_id ? req->request_id : NULL;
  for (int i = 0; i < 3; i++) {
    int len;
    if (i == 0)
      len = snprintf(buf + used, bufsz - used, "Accept: application/json");
    else if (i == 1 && req->body)
      len = snprintf(buf + used, bufsz - used, "Content-Type: %s", ctype);
    else if (i == 2 && rid)
      len = snprintf(buf + used, bufsz - used, "X-Request-Id: %s", rid);
    else
      continue;
    if (len < 0 || used + (size_t)len + 1 > bufsz || n + 1 >= cap)
      return -1;
    lines[n++] = buf + used;
    used += (size_t)len + 1;
  }
  const char *const *auth = h->auth_headers(c);
  for (size_t i = 0; auth && auth[i]; i++) {
    if (n + 1 >= cap)
      return -1;
    lines[n++] = auth[i];
  }
  lines[n] = NULL;
  return (int)n;
}

/* Answers exchange x with the peer's answer `res` to a request sent to
 * `where` (for the log and the problem text). */
static inline void oke_forward_answer(const oke_host *h, oke_conn *c, oke_exchange *x,
                                      const char *where, const oke_http_response *res) {
  if (res->status == 0) {
    char detail[512];
    snprintf(detail, sizeof detail, "supplier at %s %s: %s", where,
             res->timed_out ? "did not answer in time" : "could not be reached",
             res->error ? res->error : "transport error");
    h->log(c, OKE_LOG_WARN, "%s", detail);
    h->respond_problem(x, res->timed_out ? 504 : 502,
                       res->timed_out ? "Gateway Timeout" : "Bad Gateway", detail);
    return;
  }
  /* a 429 or 503 says when to come back: the caller needs that (ABI 1.1) */
  if (res->retry_after && OKE_HOST_HAS(h, respond_header, 1))
    h->respond_header(x, "Retry-After", res->retry_after);
  h->respond(x, res->status, res->content_type, res->body, res->body_len);
}

#ifdef __cplusplus
}
#endif
#endif /* OKE_FORWARD_H */
