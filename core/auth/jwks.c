/* The issuer's keys: file or URL, cached, refreshed on an unknown kid (see
 * jwks.h). */
#include "auth/jwks.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A JWKS is small; a larger answer is not one. */
#define MAX_JWKS_BYTES (1u << 20)
#define FETCH_CONNECT_MS 5000
#define FETCH_TIMEOUT_MS 10000

typedef struct waiter {
  void (*done)(void *ud);
  void *ud;
  struct waiter *next;
} waiter;

struct okegw_jwks_source {
  uv_loop_t *loop;
  okegw_http *http;
  char *url;  /* NULL: the keys are a file */
  char *file; /* the file, when they are */
  okegw_jwks *keys;
  int fetching;
  int refreshed;         /* a refresh (not the fetch at start) happened */
  uint64_t last_refresh; /* uv_now of its start */
  unsigned fetches;
  waiter *waiters;
};

static int load_file(const char *path, okegw_jwks **out, char *err, size_t errlen) {
  size_t len;
  char *text = okegw_read_file(path, MAX_JWKS_BYTES, &len);
  if (!text) {
    snprintf(err, errlen, "cannot read the JWKS file %s (oauth_jwks_file): %s", path,
             strerror(errno));
    return -1;
  }
  char why[256];
  int rc = okegw_jwks_parse(text, len, out, why, sizeof why);
  free(text);
  if (rc < 0)
    snprintf(err, errlen, "the JWKS file %s (oauth_jwks_file) is not usable: %s", path, why);
  return rc;
}

static void on_fetched(void *ud, const okegw_http_result *res) {
  okegw_jwks_source *s = ud;
  s->fetching = 0;
  char why[256] = "";
  okegw_jwks *fresh = NULL;
  if (res->status != 200)
    snprintf(why, sizeof why, "%s",
             res->status ? "the issuer answered with another status than 200" : res->error);
  else if (okegw_jwks_parse(res->body, res->body_len, &fresh, why, sizeof why) == 0) {
    okegw_jwks_free(s->keys);
    s->keys = fresh;
  }
  if (fresh)
    okegw_log(OKEGW_LOG_INFO, NULL, "oauth: %zu key(s) of the issuer loaded from %s",
              okegw_jwks_count(fresh), s->url);
  else
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "oauth: cannot load the issuer's keys from %s (status %d): %s; %s", s->url,
              res->status, why,
              s->keys ? "the keys loaded before stay" : "tokens cannot be checked until it works");
  /* the list is taken first: a waiter may ask for another refresh */
  waiter *w = s->waiters;
  s->waiters = NULL;
  while (w) {
    waiter *next = w->next;
    w->done(w->ud);
    free(w);
    w = next;
  }
}

static int fetch(okegw_jwks_source *s) {
  static const char *const headers[] = {"Accept: application/jwk-set+json, application/json", NULL};
  okegw_http_opts o = {.method = "GET",
                       .url = s->url,
                       .headers = headers,
                       .connect_timeout_ms = FETCH_CONNECT_MS,
                       .timeout_ms = FETCH_TIMEOUT_MS,
                       .max_response_bytes = MAX_JWKS_BYTES};
  s->fetching = 1;
  s->fetches++;
  if (okegw_http_request(s->http, &o, on_fetched, s) < 0) {
    s->fetching = 0;
    okegw_log(OKEGW_LOG_ERROR, NULL, "oauth: cannot start fetching the issuer's keys from %s",
              s->url);
    return -1;
  }
  return 0;
}

int okegw_jwks_source_start(uv_loop_t *loop, okegw_http *http, const okegw_conf *conf,
                            okegw_jwks_source **out) {
  *out = NULL;
  okegw_jwks_source *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->loop = loop;
  s->http = http;
  if (conf->oauth_jwks_file) {
    s->file = okegw_strdup(conf->oauth_jwks_file);
    char err[512];
    if (load_file(conf->oauth_jwks_file, &s->keys, err, sizeof err) < 0) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "oauth: %s", err);
      okegw_jwks_source_free(s);
      return -1;
    }
    okegw_log(OKEGW_LOG_INFO, NULL, "oauth: %zu key(s) of the issuer loaded from %s",
              okegw_jwks_count(s->keys), conf->oauth_jwks_file);
    *out = s;
    return 0;
  }
  s->url = okegw_strdup(conf->oauth_jwks_url);
  if (!s->url) {
    free(s);
    return -1;
  }
  /* a failed first fetch is logged; the first token tries again */
  fetch(s);
  *out = s;
  return 0;
}

const okegw_jwks *okegw_jwks_source_keys(const okegw_jwks_source *s) { return s ? s->keys : NULL; }

unsigned okegw_jwks_source_fetches(const okegw_jwks_source *s) { return s ? s->fetches : 0; }

int okegw_jwks_source_refresh(okegw_jwks_source *s, void (*done)(void *ud), void *ud) {
  if (!s || !s->url)
    return 0;
  if (!s->fetching) {
    uint64_t now = uv_now(s->loop);
    if (s->refreshed && now - s->last_refresh < OKEGW_JWKS_REFRESH_S * 1000u)
      return 0;
    s->refreshed = 1;
    s->last_refresh = now;
    okegw_log(OKEGW_LOG_INFO, NULL, "oauth: a token names a key not cached: fetching %s", s->url);
    if (fetch(s) < 0)
      return 0;
  }
  waiter *w = malloc(sizeof *w);
  if (!w)
    return 0;
  *w = (waiter){done, ud, NULL};
  waiter **end = &s->waiters; /* in the order they came */
  while (*end)
    end = &(*end)->next;
  *end = w;
  return 1;
}

void okegw_jwks_source_free(okegw_jwks_source *s) {
  if (!s)
    return;
  while (s->waiters) { /* none are left once the client closed; no leak if some were */
    waiter *next = s->waiters->next;
    free(s->waiters);
    s->waiters = next;
  }
  okegw_jwks_free(s->keys);
  free(s->url);
  free(s->file);
  free(s);
}

void okegw_jwks_source_reload(okegw_jwks_source *s) {
  if (!s || !s->file)
    return;
  okegw_jwks *fresh = NULL;
  char err[512];
  if (load_file(s->file, &fresh, err, sizeof err) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "oauth: %s; the keys loaded before stay", err);
    return;
  }
  okegw_jwks_free(s->keys);
  s->keys = fresh;
  okegw_log(OKEGW_LOG_INFO, NULL, "oauth: %zu key(s) of the issuer reloaded from %s",
            okegw_jwks_count(fresh), s->file);
}

void okegw_jwks_source_check(const okegw_conf *conf, okegw_diag *diag) {
  if (!conf->oauth_jwks_file)
    return;
  okegw_jwks *ks = NULL;
  char err[512];
  if (load_file(conf->oauth_jwks_file, &ks, err, sizeof err) < 0)
    okegw_diag_add(diag, conf->path, conf->oauth_jwks_file_line, "%s", err);
  okegw_jwks_free(ks);
}
