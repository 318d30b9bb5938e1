/* rest: the generic connector for a supplier that does NOT speak OKE. Per
 * interaction it only changes method and path, as configured:
 *
 *   route.flow2.put_offering  = POST /api/v1/sessions
 *   route.flow2.get_offering  = GET /api/v1/sessions/{id}
 *
 * {id} becomes the request's path id, percent-encoded. The exchange goes to
 * {base_url}{path} with the body, its Content-Type, Accept: application/json,
 * X-Request-Id and the connector's credentials; the answer is relayed
 * unchanged. Field shapes are the host's Lua mappings' business (to_peer runs
 * before deliver, from_peer after the answer), never this plugin's. The OKE
 * query string is dropped unless forward_query = yes. An interaction without
 * a route is refused with OKE_EUNSUP (the host answers 501). Every
 * interaction of <oke/interactions.h> may be given a route. Built against
 * include/ only. */
#include <oke/forward.h>
#include <oke/plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A route.<id> key for every interaction of the SDK's list; {id} may be
 * used when the OKE path has one. */
typedef struct rest_route_def {
  int interaction;
  const char *key;      /* "route.<id>" */
  const char *oke_path; /* "/offerings/{id}" */
} rest_route_def;

#define REST_DEF(sym, num, id, method, path) {OKE_I_##sym, "route." id, path},
static const rest_route_def rest_defs[] = {OKE_INTERACTIONS(REST_DEF)};
#define REST_NDEFS (sizeof rest_defs / sizeof rest_defs[0])

#define REST_KEY(sym, num, id, method, path)                                                       \
  {"route." id, "METHOD /path for " id " (OKE " method " " path "); {id} is the path id"},
static const oke_config_key rest_keys[] = {
    OKE_INTERACTIONS(REST_KEY){"forward_query", "yes: append the OKE query string (default no)"},
    {NULL, NULL}};

typedef struct rest_route {
  char method[8];   /* "" = no route */
  const char *path; /* points into the config value, lives as long as the connector */
  size_t path_len;
} rest_route;

typedef struct rest {
  oke_conn *conn;
  const oke_host *host;
  const char *base_url;
  int forward_query;
  rest_route routes[OKE_INTERACTION_END];
} rest;

/* One forwarded exchange; owns its URL and header lines. */
typedef struct fwd {
  rest *r;
  oke_exchange *x;
  const char *method;
  char *url;
  char hdr_buf[512];
  const char *hdrs[16];
} fwd;

static void fwd_free(fwd *f) {
  free(f->url);
  free(f);
}

/* ---- routes ------------------------------------------------------------ */

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* Parses "METHOD /path" into *rt. Returns NULL or what is wrong with it. */
static const char *parse_route(const char *v, int has_id, rest_route *rt) {
  static const char *const methods[] = {"GET", "PUT", "POST", "PATCH", "DELETE"};
  while (is_blank(*v))
    v++;
  size_t mlen = 0;
  while (v[mlen] && !is_blank(v[mlen]))
    mlen++;
  const char *m = NULL;
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strlen(methods[i]) == mlen && strncmp(methods[i], v, mlen) == 0)
      m = methods[i];
  if (!m)
    return "the method must be one of GET PUT POST PATCH DELETE";
  const char *p = v + mlen;
  while (is_blank(*p))
    p++;
  if (*p != '/')
    return "expected 'METHOD /path' with a path starting with '/'";
  size_t len = strlen(p);
  while (len > 0 && is_blank(p[len - 1]))
    len--;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch <= ' ' || ch == 0x7f || ch == '#')
      return "the path must not contain spaces, control characters or '#'";
    if (ch == '}')
      return "a '}' without '{' in the path";
    if (ch == '{') {
      if (strncmp(p + i, "{id}", 4) != 0)
        return "the only placeholder is {id}";
      if (!has_id)
        return "this interaction has no path id to fill {id} with";
      i += 3;
    }
  }
  strcpy(rt->method, m);
  rt->path = p;
  rt->path_len = len;
  return NULL;
}

static int unreserved(unsigned char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* base + route path with {id} filled in + optional query, or NULL. */
static char *build_url(const rest *r, const rest_route *rt, const oke_request *req) {
  static const char hex[] = "0123456789ABCDEF";
  const char *id = req->id ? req->id : "";
  const char *query = r->forward_query && req->query ? req->query : "";
  size_t cap = strlen(r->base_url) + rt->path_len + 1 + strlen(query) + 1;
  for (size_t i = 0; i + 4 <= rt->path_len; i++)
    if (strncmp(rt->path + i, "{id}", 4) == 0)
      cap += 3 * strlen(id);
  char *url = malloc(cap);
  if (!url)
    return NULL;
  size_t n = strlen(r->base_url);
  memcpy(url, r->base_url, n);
  for (size_t i = 0; i < rt->path_len; i++) {
    if (strncmp(rt->path + i, "{id}", 4) == 0) {
      for (const unsigned char *s = (const unsigned char *)id; *s; s++) {
        if (unreserved(*s)) {
          url[n++] = (char)*s;
        } else {
          url[n++] = '%';
          url[n++] = hex[*s >> 4];
          url[n++] = hex[*s & 15];
        }
      }
      i += 3;
    } else {
      url[n++] = rt->path[i];
    }
  }
  if (*query) {
    url[n++] = memchr(rt->path, '?', rt->path_len) ? '&' : '?';
    memcpy(url + n, query, strlen(query));
    n += strlen(query);
  }
  url[n] = '\0';
  return url;
}

/* ---- callbacks --------------------------------------------------------- */

static void on_answer(void *ud, const oke_http_response *res) {
  fwd *f = ud;
  oke_forward_answer(f->r->host, f->r->conn, f->x, f->url, res);
  fwd_free(f);
}

static int rest_init(oke_conn *c, const oke_host *host, void **state) {
  const char *base = oke_forward_base_url(host, c, "rest");
  if (!base)
    return OKE_EINVAL;
  rest *r = calloc(1, sizeof *r);
  if (!r)
    return OKE_ENOMEM;
  r->conn = c;
  r->host = host;
  r->base_url = base;
  int bad = 0, nroutes = 0;
  const char *fq = host->config(c, "forward_query");
  if (fq && strcmp(fq, "yes") == 0) {
    r->forward_query = 1;
  } else if (fq && strcmp(fq, "no") != 0) {
    host->log(c, OKE_LOG_ERROR, "forward_query: expected yes or no, got '%s'", fq);
    bad = 1;
  }
  for (size_t i = 0; i < REST_NDEFS; i++) {
    const char *v = host->config(c, rest_defs[i].key);
    if (!v)
      continue;
    int has_id = strstr(rest_defs[i].oke_path, "{id}") != NULL;
    const char *why = parse_route(v, has_id, &r->routes[rest_defs[i].interaction]);
    if (why) {
      host->log(c, OKE_LOG_ERROR, "%s = '%s': %s", rest_defs[i].key, v, why);
      bad = 1;
    } else {
      nroutes++;
    }
  }
  if (bad) {
    free(r);
    return OKE_EINVAL;
  }
  if (nroutes == 0)
    host->log(c, OKE_LOG_WARN, "no route.* keys: every interaction will be answered with 501");
  *state = r;
  return OKE_OK;
}

static int rest_deliver(void *state, oke_exchange *x, const oke_request *req) {
  rest *r = state;
  if (req->interaction <= 0 || req->interaction >= OKE_INTERACTION_END ||
      !r->routes[req->interaction].method[0])
    return OKE_EUNSUP;
  const rest_route *rt = &r->routes[req->interaction];
  fwd *f = calloc(1, sizeof *f);
  if (!f)
    return OKE_ENOMEM;
  f->r = r;
  f->x = x;
  f->method = rt->method;
  f->url = build_url(r, rt, req);
  if (oke_forward_headers(r->host, r->conn, req, f->hdr_buf, sizeof f->hdr_buf, f->hdrs,
                          sizeof f->hdrs / sizeof f->hdrs[0]) < 0) {
    fwd_free(f);
    return OKE_EINVAL;
  }
  if (!f->url) {
    fwd_free(f);
    return OKE_ENOMEM;
  }
  r->host->log(r->conn, OKE_LOG_DEBUG, "%s %s -> %s %s", req->method, req->path, f->method, f->url);
  oke_http_request hr = {.method = f->method,
                         .url = f->url,
                         .headers = f->hdrs,
                         .body = req->body,
                         .body_len = req->body_len};
  int rc = r->host->http_request(r->conn, &hr, on_answer, f);
  if (rc != OKE_OK) {
    fwd_free(f);
    return rc;
  }
  return OKE_OK;
}

static void rest_fini(void *state) { free(state); }

static const oke_plugin rest_plugin = {
    OKE_PLUGIN_INIT("rest", "1.1.0"),
    .description = "Forwards OKE interactions to a non-OKE REST supplier, one configured "
                   "method and path per interaction (field shapes are mapped in Lua)",
    .config_keys = rest_keys,
    .init = rest_init,
    .deliver = rest_deliver,
    .fini = rest_fini,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &rest_plugin; }
