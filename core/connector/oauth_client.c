/* OAuth 2.0 client credentials for a connector: see oauth_client.h. */
#include "connector/oauth_client.h"
#include "auth/signer.h"
#include "base/log.h"
#include "base/util.h"
#include "ops/metrics.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
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
/* While another instance's token request runs, a client with waiters looks
 * at the slot again this often, on its own loop (never blocking it). */
#define PEEK_MS 25
/* A token request counts as running until its timeouts and this much more
 * have passed: one whose loop stopped must not hold up the others. */
#define FETCH_SLACK_MS 1000

/* ---- the token slot ------------------------------------------------------
 * One per connector and token request for the whole process, shared by that
 * connector's instance on every event loop: the token, its times, the
 * running request's claim and the back-off. */

typedef struct slot {
  struct slot *next;
  unsigned refs;         /* clients using it (under slots_mu) */
  unsigned char key[32]; /* SHA-256 of what makes the token request (slot_key) */
  pthread_mutex_t mu;    /* the rest */
  char *token;
  uint64_t gen;                    /* changes with every change of token */
  uint64_t refresh_at, expires_at; /* now_ms */
  int fetching;                    /* a client's token request runs */
  uint64_t claim;                  /* which one: the last claim handed out */
  uint64_t fetch_deadline;         /* when it counts as over anyway */
  uint64_t retry_at;               /* no attempt before this (back-off) */
  unsigned failures;               /* in a row */
  char last_error[256];
} slot;

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static slot *slots;

/* Milliseconds on one clock for every loop (uv_now is each loop's own,
 * cached at its turn). */
static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* What makes two clients' token requests the same: the connector, where
 * and how it asks, and the credentials (the secret, the assertion key's
 * public half, the client certificate's bytes), so a reload that changes
 * any of them gets a slot, and a token, of its own. Only a digest is kept:
 * the slot holds no secret. */
static void key_str(EVP_MD_CTX *md, const char *s) {
  unsigned char tag = s ? 1 : 0;
  uint64_t n = s ? strlen(s) : 0;
  EVP_DigestUpdate(md, &tag, 1);
  EVP_DigestUpdate(md, &n, sizeof n);
  if (s)
    EVP_DigestUpdate(md, s, n);
}

static void key_file(EVP_MD_CTX *md, const char *path) {
  key_str(md, path);
  FILE *f = path ? fopen(path, "rb") : NULL;
  unsigned char tag = f ? 1 : 0;
  EVP_DigestUpdate(md, &tag, 1);
  if (!f)
    return;
  unsigned char b[4096];
  size_t n;
  while ((n = fread(b, 1, sizeof b, f)) > 0)
    EVP_DigestUpdate(md, b, n);
  fclose(f);
}

static int slot_key(const okegw_conf_connector *cc, const okegw_signer *key,
                    unsigned char out[32]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned int n = 0;
  int method = (int)cc->token_auth_method;
  int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
  if (ok) {
    key_str(md, "okegw oauth token slot 1");
    key_str(md, cc->name);
    key_str(md, cc->token_url);
    key_str(md, cc->client_id);
    key_str(md, cc->oauth_scope);
    EVP_DigestUpdate(md, &method, sizeof method);
    key_str(md, cc->client_secret);
    key_str(md, key ? okegw_signer_kid(key) : NULL);
    key_str(md, cc->client_key_file);
    key_file(md, cc->client_cert_file);
    ok = EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32;
  }
  EVP_MD_CTX_free(md);
  return ok ? 0 : -1;
}

static slot *slot_acquire(const unsigned char key[32]) {
  pthread_mutex_lock(&slots_mu);
  slot *s = slots;
  while (s && memcmp(s->key, key, 32) != 0)
    s = s->next;
  if (s) {
    s->refs++;
  } else if ((s = calloc(1, sizeof *s)) != NULL) {
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
      free(s);
      s = NULL;
    } else {
      memcpy(s->key, key, 32);
      s->refs = 1;
      s->next = slots;
      slots = s;
    }
  }
  pthread_mutex_unlock(&slots_mu);
  return s;
}

/* A copy of a token: wiped before it is freed. */
static void wipe_free(char *t) {
  if (t) {
    OPENSSL_cleanse(t, strlen(t));
    free(t);
  }
}

static void slot_clear_token(slot *s) {
  if (s->token) {
    wipe_free(s->token);
    s->token = NULL;
    s->gen++;
  }
}

static void slot_release(slot *s) {
  pthread_mutex_lock(&slots_mu);
  int last = --s->refs == 0;
  if (last)
    for (slot **p = &slots; *p; p = &(*p)->next)
      if (*p == s) {
        *p = s->next;
        break;
      }
  pthread_mutex_unlock(&slots_mu);
  if (last) {
    slot_clear_token(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
  }
}

/* With s->mu held: the token when it is still valid at now (an expired one
 * is dropped). */
static int slot_valid(slot *s, uint64_t now) {
  if (s->token && now >= s->expires_at)
    slot_clear_token(s);
  return s->token != NULL;
}

/* With s->mu held: some client's token request runs and may still end. */
static int slot_busy(const slot *s, uint64_t now) { return s->fetching && now < s->fetch_deadline; }

/* ---- the client ---------------------------------------------------------- */

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
  slot *slot;         /* shared with the connector's other instances; NULL once freed */
  char *token;        /* this client's copy of the slot's token */
  uint64_t token_gen; /* the slot's gen when copied */
  uint64_t sent_at;   /* the running request's start (now_ms) */
  uint64_t claim;     /* its claim on the slot's token request */
  int fetching;       /* this client's token request runs */
  int fail_pending;   /* the kick fails the waiters with last_error */
  char last_error[256];
  int ok; /* what on_state was last told: 1 ok, 0 failing, -1 nothing yet */
  waiter *head, *tail;
  okegw_signer *key; /* private_key_jwt: signs the client assertion */
  /* off the caller's stack: settles the waiters, tells on_state; while
   * another instance's request runs, looks at the slot again */
  uv_timer_t kick;
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
  wipe_free(o->token);
  o->token = NULL;
}

/* With the slot's mu held and its token valid: this client's copy of it.
 * 0, or -1 when out of memory. */
static int copy_token(okegw_oauth *o) {
  slot *s = o->slot;
  if (o->token && o->token_gen == s->gen)
    return 0;
  char *t = okegw_strdup(s->token);
  if (!t)
    return -1;
  forget_token(o);
  o->token = t;
  o->token_gen = s->gen;
  return 0;
}

/* With the slot's mu held: this client's request is the slot's running one
 * from now on. */
static void claim_fetch(okegw_oauth *o, uint64_t now) {
  slot *s = o->slot;
  long budget = (o->cc->connect_timeout_ms > 0 ? o->cc->connect_timeout_ms : 0) +
                (o->cc->timeout_ms > 0 ? o->cc->timeout_ms : 0) + FETCH_SLACK_MS;
  s->fetching = 1;
  o->claim = ++s->claim;
  s->fetch_deadline = now + (uint64_t)budget;
}

/* With the slot's mu held. */
static int owns_fetch(const okegw_oauth *o) {
  return o->slot->fetching && o->slot->claim == o->claim;
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

/* The waiters get the client's token; a copy, as a callback may ask for
 * the token again and so replace the client's. */
static void settle_token(okegw_oauth *o) {
  char *t = okegw_strdup(o->token);
  if (!t) {
    settle(o, NULL, "no OAuth access token: out of memory");
    return;
  }
  settle(o, t, NULL);
  wipe_free(t);
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
static void on_kick(uv_timer_t *t);

/* This client's token request ended without a token. Its claim on the slot
 * ends, and the back-off (for every instance) starts; a request that was no
 * longer the slot's (past its deadline, another took over) leaves the slot
 * alone. settle_now = 0: the waiters hear it on the next loop turn (the
 * caller may be okegw_oauth_token). */
static void attempt_failed(okegw_oauth *o, const char *why, int settle_now) {
  slot *s = o->slot;
  snprintf(o->last_error, sizeof o->last_error, "no OAuth access token from %s: %s",
           o->cc->token_url, why);
  unsigned failures = 0;
  uint64_t pause = BACKOFF_FIRST_MS;
  pthread_mutex_lock(&s->mu);
  if (owns_fetch(o)) {
    s->fetching = 0;
    failures = ++s->failures;
    for (unsigned i = 1; i < failures && pause < BACKOFF_MAX_MS; i++)
      pause *= 2;
    if (pause > BACKOFF_MAX_MS)
      pause = BACKOFF_MAX_MS;
    s->retry_at = now_ms() + pause;
    snprintf(s->last_error, sizeof s->last_error, "%s", o->last_error);
  }
  pthread_mutex_unlock(&s->mu);
  okegw_log_fields f;
  log_fields(o, &f);
  if (failures)
    okegw_log(OKEGW_LOG_WARN, &f,
              "connector '%s': %s (attempt %u; next one in %llu ms at the earliest)", o->cc->name,
              o->last_error, failures, (unsigned long long)pause);
  else
    okegw_log(OKEGW_LOG_WARN, &f, "connector '%s': %s", o->cc->name, o->last_error);
  set_state(o, 0, o->last_error);
  if (settle_now) {
    settle(o, NULL, o->last_error);
  } else {
    o->fail_pending = 1;
    uv_timer_start(&o->kick, on_kick, 0, 0);
  }
}

/* A token request that ended without a token. */
static void token_failed(okegw_oauth *o, const char *why, int settle_now) {
  okegw_metrics_token_refresh(o->metrics, 0);
  attempt_failed(o, why, settle_now);
}

/* Starts the token request the client has claimed. Returns 0, or -1 when
 * it could not be sent (then the attempt has failed). */
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
    o->sent_at = now_ms();
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
    attempt_failed(o,
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
  char *shared = okegw_strdup(at->valuestring);
  char *mine = okegw_strdup(at->valuestring);
  OPENSSL_cleanse(at->valuestring, strlen(at->valuestring));
  cJSON_Delete(j);
  if (!shared || !mine) {
    wipe_free(shared);
    wipe_free(mine);
    token_failed(o, "out of memory", 1);
    return;
  }
  forget_token(o);
  o->token = mine;
  slot *s = o->slot;
  pthread_mutex_lock(&s->mu);
  slot_clear_token(s);
  s->token = shared;
  o->token_gen = ++s->gen;
  /* counted from when the request left: the endpoint's clock started then
   * at the latest */
  s->refresh_at = o->sent_at + life - lead;
  s->expires_at = o->sent_at + life - (life > 2 * EXPIRY_MARGIN_MS ? EXPIRY_MARGIN_MS : 0);
  s->failures = 0;
  s->retry_at = 0;
  s->last_error[0] = '\0';
  if (owns_fetch(o))
    s->fetching = 0;
  pthread_mutex_unlock(&s->mu);
  okegw_metrics_token_refresh(o->metrics, 1);
  okegw_log_fields f;
  log_fields(o, &f);
  okegw_log(OKEGW_LOG_DEBUG, &f, "connector '%s': new OAuth access token, valid %.0f s",
            o->cc->name, life_s);
  set_state(o, 1, NULL);
  settle_token(o);
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
  unsigned char key[32];
  if (slot_key(cc, o->key, key) < 0 || !(o->slot = slot_acquire(key))) {
    okegw_signer_free(o->key);
    free(o);
    return -1;
  }
  if (uv_timer_init(loop, &o->kick) < 0) {
    slot_release(o->slot);
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
  if (o->closing)
    return NULL;
  slot *s = o->slot;
  uint64_t now = now_ms();
  int have = 0, refresh = 0;
  pthread_mutex_lock(&s->mu);
  if (slot_valid(s, now) && copy_token(o) == 0) {
    have = 1;
    /* the first instance to see the refresh time passed asks, once for
     * all; this token still serves meanwhile */
    if (now >= s->refresh_at && !o->fetching && !slot_busy(s, now) && now >= s->retry_at) {
      claim_fetch(o, now);
      refresh = 1;
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (!have) {
    forget_token(o);
    return NULL;
  }
  if (o->ok != 1 && !uv_is_active((uv_handle_t *)&o->kick))
    uv_timer_start(&o->kick, on_kick, 0, 0); /* on_state hears of the token there */
  if (refresh)
    fetch(o); /* in the background */
  return o->token;
}

/* Where the client stands, from the slot: a token settles the waiters; with
 * another instance's request running it looks again in PEEK_MS; during the
 * back-off the waiters fail; else it claims the request and sends it. */
static void step(okegw_oauth *o) {
  if (o->closing)
    return;
  slot *s = o->slot;
  uint64_t now = now_ms();
  char why[sizeof s->last_error];
  enum { NOTHING, HAVE, NO_MEMORY, PEEK, BACKING_OFF, FETCH } next = NOTHING;
  pthread_mutex_lock(&s->mu);
  if (slot_valid(s, now))
    next = copy_token(o) == 0 ? HAVE : NO_MEMORY;
  else if (!o->head || o->fetching)
    next = NOTHING; /* nobody waits, or this client's own request will settle them */
  else if (slot_busy(s, now))
    next = PEEK;
  else if (now < s->retry_at) {
    snprintf(why, sizeof why, "%s", s->last_error[0] ? s->last_error : "no OAuth access token");
    next = BACKING_OFF;
  } else {
    claim_fetch(o, now);
    next = FETCH;
  }
  pthread_mutex_unlock(&s->mu);
  switch (next) {
  case HAVE:
    set_state(o, 1, NULL);
    if (o->head)
      settle_token(o);
    break;
  case NO_MEMORY: settle(o, NULL, "no OAuth access token: out of memory"); break;
  case PEEK: uv_timer_start(&o->kick, on_kick, PEEK_MS, 0); break;
  case BACKING_OFF:
    set_state(o, 0, why);
    settle(o, NULL, why);
    break;
  case FETCH: fetch(o); break; /* a failure to send settles the waiters on the next turn */
  case NOTHING: break;
  }
}

static void on_kick(uv_timer_t *t) {
  okegw_oauth *o = t->data;
  if (o->fail_pending) {
    o->fail_pending = 0;
    if (!o->fetching) {
      settle(o, NULL, o->last_error);
      return;
    }
  }
  step(o);
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
  if (!o->fetching && !uv_is_active((uv_handle_t *)&o->kick))
    uv_timer_start(&o->kick, on_kick, 0, 0);
  return 0;
}

void okegw_oauth_invalidate(okegw_oauth *o, const char *token) {
  if (!o || o->closing || !token)
    return;
  /* only if it is still the slot's token: after a 401 seen by several
   * instances, the first one's new token stays */
  slot *s = o->slot;
  pthread_mutex_lock(&s->mu);
  if (s->token && strcmp(s->token, token) == 0)
    slot_clear_token(s);
  pthread_mutex_unlock(&s->mu);
  if (o->token && strcmp(o->token, token) == 0)
    forget_token(o);
}

void okegw_oauth_free(okegw_oauth *o) {
  if (!o)
    return;
  o->closing = 1;
  settle(o, NULL, "the connector is being unloaded");
  slot *s = o->slot;
  o->slot = NULL;
  if (s) {
    /* its answer will be dropped: the others need not wait for it */
    pthread_mutex_lock(&s->mu);
    if (o->fetching && s->fetching && s->claim == o->claim)
      s->fetching = 0;
    pthread_mutex_unlock(&s->mu);
    slot_release(s);
  }
  forget_token(o);
  uv_timer_stop(&o->kick);
  uv_close((uv_handle_t *)&o->kick, on_kick_closed);
}

void okegw_oauth_count_into(okegw_oauth *o, struct okegw_conn_metrics *cm) {
  if (o)
    o->metrics = cm;
}
