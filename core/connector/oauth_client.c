/* OAuth 2.0 client credentials for a connector: see oauth_client.h. */
#include "connector/oauth_client.h"
#include "auth/signer.h"
#include "base/log.h"
#include "base/util.h"
#include "ops/metrics.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A token is fetched again once this much of its lifetime is left (a tenth,
 * at least LEAD_MIN_MS, at most half), and not used in its last second. */
#define LEAD_MIN_MS 10000
#define EXPIRY_MARGIN_MS 1000
/* When the endpoint gives no expires_in. */
#define DEFAULT_LIFETIME_S 300
/* Pauses between failed token requests: doubling from the first to the
 * longest. */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000

typedef struct waiter {
  struct waiter *next;
  okegw_oauth_cb cb;
  void *ud;
} waiter;

struct okegw_oauth {
  uv_loop_t *loop;
  okegw_http *http;
  const okegw_conf_connector *cc;
  okegw_oauth_state_cb on_state;
  void *state_ud;
  char *token;
  uint64_t refresh_at, expires_at; /* uv_now ms */
  uint64_t sent_at;                /* the running request's start */
  uint64_t retry_at;               /* no attempt before this (back-off) */
  unsigned failures;               /* in a row */
  char last_error[256];
  int fetching;
  int ok; /* what on_state was last told: 1 ok, 0 failing, -1 nothing yet */
  waiter *head, *tail;
  okegw_signer *key; /* private_key_jwt: signs the client assertion */
  uv_timer_t kick;   /* fails the waiters during a back-off, off the caller's stack */
  int closing;
  int timer_open;
  struct okegw_conn_metrics *metrics; /* its connector's counters, or NULL */
};

static void log_fields(const okegw_oauth *o, okegw_log_fields *f) {
  *f = (okegw_log_fields)OKEGW_LOG_FIELDS_INIT;
  f->connector = o->cc->name;
}

static void maybe_free(okegw_oauth *o) {
  if (o->closing && !o->fetching && !o->timer_open) {
    okegw_signer_free(o->key);
    free(o);
  }
}

static void on_kick_closed(uv_handle_t *h) {
  okegw_oauth *o = h->data;
  o->timer_open = 0;
  maybe_free(o);
}

static void forget_token(okegw_oauth *o) {
  if (o->token) {
    OPENSSL_cleanse(o->token, strlen(o->token));
    free(o->token);
    o->token = NULL;
  }
}

/* Hands every waiter the token or the error; a callback may queue again. */
static void settle(okegw_oauth *o, const char *token, const char *error) {
  waiter *w = o->head;
  o->head = o->tail = NULL;
  while (w) {
    waiter *next = w->next;
    w->cb(w->ud, token, error);
    free(w);
    w = next;
  }
}

static void set_state(okegw_oauth *o, int ok, const char *why) {
  if (o->ok == ok)
    return;
  o->ok = ok;
  if (o->on_state)
    o->on_state(o->state_ud, ok, why);
}

/* application/x-www-form-urlencoded (RFC 6749 appendix B). */
static int form_encode(okegw_buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char e[3];
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '*') {
      if (okegw_buf_append(b, p, 1) < 0)
        return -1;
    } else if (*p == ' ') {
      if (okegw_buf_append(b, "+", 1) < 0)
        return -1;
    } else {
      e[0] = '%';
      e[1] = hex[*p >> 4];
      e[2] = hex[*p & 15];
      if (okegw_buf_append(b, e, 3) < 0)
        return -1;
    }
  }
  return 0;
}

static void buf_wipe_free(okegw_buf *b) {
  if (b->data)
    OPENSSL_cleanse(b->data, b->cap);
  okegw_buf_free(b);
}

/* "Authorization: Basic base64(enc(id):enc(secret))" (RFC 6749 2.3.1). */
static char *basic_header(const okegw_conf_connector *cc) {
  okegw_buf pair = {0};
  char *line = NULL;
  if (form_encode(&pair, cc->client_id) == 0 && okegw_buf_append(&pair, ":", 1) == 0 &&
      form_encode(&pair, cc->client_secret) == 0) {
    size_t n = 4 * ((pair.len + 2) / 3) + 1;
    line = malloc(sizeof "Authorization: Basic " + n);
    if (line) {
      strcpy(line, "Authorization: Basic ");
      EVP_EncodeBlock((unsigned char *)line + strlen(line), (const unsigned char *)pair.data,
                      (int)pair.len);
    }
  }
  buf_wipe_free(&pair);
  return line;
}

/* ---- private_key_jwt (RFC 7523 2.2) ------------------------------------- */

/* The assertion key: RSA (RS256, 2048 bits or more) or EC P-256 (ES256). */
static okegw_signer *load_key(const char *path, char *err, size_t n) {
  okegw_signer *s = NULL;
  char why[400];
  if (okegw_signer_load(path, &s, why, sizeof why) < 0) {
    snprintf(err, n, "client_key_file: %s (private_key_jwt)", why);
    return NULL;
  }
  return s;
}

int okegw_oauth_check(const okegw_conf_connector *cc, char *err, size_t n) {
  if (cc->auth != OKEGW_AUTH_OAUTH2 || cc->token_auth_method != OKEGW_TOKEN_AUTH_JWT)
    return 0;
  okegw_signer *k = load_key(cc->client_key_file, err, n);
  okegw_signer_free(k);
  return k ? 0 : -1;
}

/* The signed client assertion: iss = sub = client_id, aud = token_url, a
 * fresh jti, valid for a minute. NULL when out of memory or signing fails. */
static char *client_assertion(const okegw_oauth *o) {
  const okegw_conf_connector *cc = o->cc;
  char jti[37];
  okegw_uuid4(jti);
  long long now = (long long)time(NULL);
  cJSON *cl = cJSON_CreateObject();
  cJSON_AddStringToObject(cl, "iss", cc->client_id);
  cJSON_AddStringToObject(cl, "sub", cc->client_id);
  cJSON_AddStringToObject(cl, "aud", cc->token_url);
  cJSON_AddStringToObject(cl, "jti", jti);
  cJSON_AddNumberToObject(cl, "iat", (double)now);
  cJSON_AddNumberToObject(cl, "exp", (double)(now + 60));
  char *jwt = cl ? okegw_signer_sign(o->key, cl, "JWT") : NULL;
  cJSON_Delete(cl);
  return jwt;
}

static void on_token(void *ud, const okegw_http_result *r);

static void fail_attempt(okegw_oauth *o, const char *why, int settle_now);

/* A token request that ended without a token. */
static void token_failed(okegw_oauth *o, const char *why, int settle_now) {
  okegw_metrics_token_refresh(o->metrics, 0);
  fail_attempt(o, why, settle_now);
}

static void on_kick(uv_timer_t *t);

/* settle_now = 0: the waiters hear it on the next loop turn (the caller may
 * be okegw_oauth_wait). */
static void fail_attempt(okegw_oauth *o, const char *why, int settle_now) {
  o->failures++;
  uint64_t pause = BACKOFF_FIRST_MS;
  for (unsigned i = 1; i < o->failures && pause < BACKOFF_MAX_MS; i++)
    pause *= 2;
  if (pause > BACKOFF_MAX_MS)
    pause = BACKOFF_MAX_MS;
  o->retry_at = uv_now(o->loop) + pause;
  snprintf(o->last_error, sizeof o->last_error, "no OAuth access token from %s: %s",
           o->cc->token_url, why);
  okegw_log_fields f;
  log_fields(o, &f);
  okegw_log(OKEGW_LOG_WARN, &f,
            "connector '%s': %s (attempt %u; next one in %llu ms at the earliest)", o->cc->name,
            o->last_error, o->failures, (unsigned long long)pause);
  set_state(o, 0, o->last_error);
  if (settle_now)
    settle(o, NULL, o->last_error);
  else
    uv_timer_start(&o->kick, on_kick, 0, 0);
}

/* Starts the token request. Returns 0, or -1 when it could not be sent
 * (then the attempt has failed). */
static int fetch(okegw_oauth *o) {
  const okegw_conf_connector *cc = o->cc;
  okegw_buf body = {0};
  char *basic = NULL;
  int bad = okegw_buf_printf(&body, "grant_type=client_credentials&scope=") < 0 ||
            form_encode(&body, cc->oauth_scope ? cc->oauth_scope : "") < 0;
  if (!bad && cc->token_auth_method == OKEGW_TOKEN_AUTH_POST)
    bad = okegw_buf_printf(&body, "&client_id=") < 0 || form_encode(&body, cc->client_id) < 0 ||
          okegw_buf_printf(&body, "&client_secret=") < 0 ||
          form_encode(&body, cc->client_secret ? cc->client_secret : "") < 0;
  else if (!bad && cc->token_auth_method == OKEGW_TOKEN_AUTH_JWT) {
    char *jwt = o->key ? client_assertion(o) : NULL;
    bad = !jwt || okegw_buf_printf(&body, "&client_id=") < 0 ||
          form_encode(&body, cc->client_id) < 0 ||
          okegw_buf_printf(&body,
                           "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
                           "client-assertion-type%%3Ajwt-bearer&client_assertion=%s",
                           jwt) < 0;
    free(jwt);
  } else if (!bad)
    bad = !(basic = basic_header(cc));
  const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                           "Accept: application/json", basic, NULL};
  int rc = -1;
  if (!bad) {
    okegw_http_opts opts = {.method = "POST",
                            .url = cc->token_url,
                            .headers = headers,
                            .body = body.data,
                            .body_len = body.len,
                            .connect_timeout_ms = cc->connect_timeout_ms,
                            .timeout_ms = cc->timeout_ms,
                            .max_response_bytes = 64 * 1024,
                            .ca_file = cc->ca_file,
                            .client_cert_file = cc->client_cert_file,
                            .client_key_file = cc->client_key_file,
                            .tls_min_1_2 = cc->tls_min_version == OKEGW_TLS_1_2};
    o->fetching = 1;
    o->sent_at = uv_now(o->loop);
    rc = okegw_http_request(o->http, &opts, on_token, o);
    if (rc < 0)
      o->fetching = 0;
  }
  buf_wipe_free(&body);
  if (basic) {
    OPENSSL_cleanse(basic, strlen(basic));
    free(basic);
  }
  if (rc < 0)
    fail_attempt(o,
                 bad ? "the request could not be made (out of memory, or signing the client "
                       "assertion failed)"
                     : "the HTTP client refused the request",
                 0);
  return rc;
}

/* Why a token answer is not usable, from what the endpoint says (its
 * `error` and `error_description`, never our request). */
static void refusal(const okegw_http_result *r, const cJSON *j, char *why, size_t n) {
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
  if (cJSON_IsString(e))
    snprintf(why, n, "the token endpoint answered %d, error '%.64s'%s%.120s%s", r->status,
             e->valuestring, cJSON_IsString(d) ? " (" : "", cJSON_IsString(d) ? d->valuestring : "",
             cJSON_IsString(d) ? ")" : "");
  else
    snprintf(why, n, "the token endpoint answered %d", r->status);
}

static void on_token(void *ud, const okegw_http_result *r) {
  okegw_oauth *o = ud;
  o->fetching = 0;
  if (o->closing) {
    maybe_free(o);
    return;
  }
  char why[256];
  if (r->status == 0) {
    snprintf(why, sizeof why, "%s", r->error ? r->error : "transport failure");
    token_failed(o, why, 1);
    return;
  }
  cJSON *j = r->body_len ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
  const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
  const cJSON *tt = cJSON_GetObjectItemCaseSensitive(j, "token_type");
  const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
  if (r->status != 200) {
    refusal(r, j, why, sizeof why);
  } else if (!cJSON_IsObject(j)) {
    snprintf(why, sizeof why, "the token endpoint's answer is not a JSON object");
  } else if (!cJSON_IsString(at) || !*at->valuestring || strpbrk(at->valuestring, "\r\n \t") ||
             strlen(at->valuestring) > 8192) {
    snprintf(why, sizeof why, "the token endpoint's answer has no usable access_token");
  } else if (tt && (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "bearer") != 0)) {
    snprintf(why, sizeof why, "token_type is not Bearer");
  } else if (ex && (!cJSON_IsNumber(ex) || ex->valuedouble < 1)) {
    snprintf(why, sizeof why, "expires_in is not a positive number");
  } else {
    why[0] = '\0';
  }
  if (why[0]) {
    cJSON_Delete(j);
    token_failed(o, why, 1);
    return;
  }
  double life_s = ex ? ex->valuedouble : DEFAULT_LIFETIME_S;
  if (life_s > 366.0 * 86400)
    life_s = 366.0 * 86400;
  uint64_t life = (uint64_t)(life_s * 1000);
  uint64_t lead = life / 10 > LEAD_MIN_MS ? life / 10 : LEAD_MIN_MS;
  if (lead > life / 2)
    lead = life / 2;
  forget_token(o);
  o->token = okegw_strdup(at->valuestring);
  cJSON_Delete(j);
  if (!o->token) {
    token_failed(o, "out of memory", 1);
    return;
  }
  /* counted from when the request left: the endpoint's clock started then
   * at the latest */
  o->refresh_at = o->sent_at + life - lead;
  o->expires_at = o->sent_at + life - (life > 2 * EXPIRY_MARGIN_MS ? EXPIRY_MARGIN_MS : 0);
  o->failures = 0;
  o->retry_at = 0;
  okegw_metrics_token_refresh(o->metrics, 1);
  okegw_log_fields f;
  log_fields(o, &f);
  okegw_log(OKEGW_LOG_DEBUG, &f, "connector '%s': new OAuth access token, valid %.0f s",
            o->cc->name, life_s);
  set_state(o, 1, NULL);
  settle(o, o->token, NULL);
}

int okegw_oauth_new(uv_loop_t *loop, okegw_http *http, const okegw_conf_connector *cc,
                    okegw_oauth_state_cb on_state, void *state_ud, okegw_oauth **out) {
  okegw_oauth *o = calloc(1, sizeof *o);
  if (!o)
    return -1;
  o->loop = loop;
  o->http = http;
  o->cc = cc;
  o->on_state = on_state;
  o->state_ud = state_ud;
  o->ok = -1;
  if (cc->token_auth_method == OKEGW_TOKEN_AUTH_JWT) {
    char err[512];
    if (!(o->key = load_key(cc->client_key_file, err, sizeof err))) {
      okegw_log_fields f;
      log_fields(o, &f);
      okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s': %s", cc->name, err);
      free(o);
      return -1;
    }
  }
  if (uv_timer_init(loop, &o->kick) < 0) {
    okegw_signer_free(o->key);
    free(o);
    return -1;
  }
  o->kick.data = o;
  o->timer_open = 1;
  *out = o;
  return 0;
}

const char *okegw_oauth_token(okegw_oauth *o) {
  uint64_t now = uv_now(o->loop);
  if (!o->token || now >= o->expires_at) {
    forget_token(o);
    return NULL;
  }
  if (now >= o->refresh_at && !o->fetching && now >= o->retry_at)
    fetch(o); /* in the background: this token still serves */
  return o->token;
}

static void on_kick(uv_timer_t *t) {
  okegw_oauth *o = t->data;
  if (!o->fetching)
    settle(o, NULL, o->last_error[0] ? o->last_error : "no OAuth access token");
}

int okegw_oauth_wait(okegw_oauth *o, okegw_oauth_cb cb, void *ud) {
  if (o->closing)
    return -1;
  waiter *w = calloc(1, sizeof *w);
  if (!w)
    return -1;
  w->cb = cb;
  w->ud = ud;
  if (o->tail)
    o->tail->next = w;
  else
    o->head = w;
  o->tail = w;
  if (o->fetching)
    return 0;
  if (uv_now(o->loop) >= o->retry_at) {
    fetch(o); /* a failure to send settles the waiters on the next turn */
    return 0;
  }
  uv_timer_start(&o->kick, on_kick, 0, 0);
  return 0;
}

void okegw_oauth_invalidate(okegw_oauth *o, const char *token) {
  if (o && o->token && token && strcmp(o->token, token) == 0)
    forget_token(o);
}

void okegw_oauth_free(okegw_oauth *o) {
  if (!o)
    return;
  o->closing = 1;
  settle(o, NULL, "the connector is being unloaded");
  forget_token(o);
  uv_timer_stop(&o->kick);
  uv_close((uv_handle_t *)&o->kick, on_kick_closed);
}

void okegw_oauth_count_into(okegw_oauth *o, struct okegw_conn_metrics *cm) {
  if (o)
    o->metrics = cm;
}
