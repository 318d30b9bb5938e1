/* The token endpoint (see token.h). */
#include "pipeline/token.h"
#include "auth/secret.h"
#include "auth/signer.h"
#include "base/log.h"
#include "base/util.h"
#include "oke/problem.h"
#include "pipeline/answer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OWN_ISSUER "okegw"
#define BACKOFF_MAX_S 60

/* Failures in a row of one client (a connector, or every unknown id
 * together, so that made-up ids cannot dodge the slowdown). */
typedef struct bucket {
  char client[128]; /* "" for every unknown id together */
  unsigned failures;
  uint64_t until_ms; /* no attempt before (now_ms) */
} bucket;

struct okegw_token_issuer {
  /* set by okegw_token_issuer_new, then only read: no lock */
  okegw_signer *signer;
  okegw_jwks *keys;
  char *dummy_hash; /* checked for unknown clients: they take as long */
  long lifetime_s;
  char *audience;
  /* Every event loop answers the token endpoint with this one issuer, so
   * that a client's slowdown holds whichever loop takes its next attempt:
   * the buckets are read and written under lock only, held for a few lines
   * of bookkeeping (bucket_enter, bucket_settle), never across the scrypt
   * check, a signature, a log line or an answer. */
  pthread_mutex_t lock;
  /* one per client id okegw knows (reloads add some), the first for
   * unknown ids; found by id, kept by index while a check runs (the array
   * may move when another loop adds a bucket, an index stays valid) */
  bucket *buckets;
  size_t nbuckets;
};

const char *okegw_token_client_id(const okegw_conf_connector *cc) {
  return cc->oauth_client_id ? cc->oauth_client_id : cc->name;
}

int okegw_token_issuer_new(const okegw_conf *conf, okegw_token_issuer **out, char *err,
                           size_t errlen) {
  okegw_token_issuer *t = calloc(1, sizeof *t);
  if (!t || pthread_mutex_init(&t->lock, NULL) != 0) {
    free(t);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  char why[256];
  char *jwks = NULL;
  char dummy[44];
  if (okegw_signer_load(conf->token_signing_key_file, &t->signer, why, sizeof why) < 0) {
    snprintf(err, errlen, "token_signing_key_file %s", why);
  } else if (!(jwks = okegw_signer_jwks(t->signer)) ||
             okegw_jwks_parse(jwks, strlen(jwks), &t->keys, why, sizeof why) < 0) {
    snprintf(err, errlen, "token_signing_key_file: its public key is not usable: %s",
             jwks ? why : "out of memory");
  } else if (okegw_secret_generate(dummy) < 0 ||
             !(t->dummy_hash = okegw_secret_hash(dummy, strlen(dummy))) ||
             !(t->buckets = calloc(1, sizeof *t->buckets)) ||
             !(t->audience =
                   okegw_strdup(conf->oauth_audience ? conf->oauth_audience : OWN_ISSUER))) {
    snprintf(err, errlen, "out of memory");
  } else {
    free(jwks);
    t->nbuckets = 1;
    t->lifetime_s = conf->token_lifetime_s;
    *out = t;
    return 0;
  }
  free(jwks);
  okegw_token_issuer_free(t);
  return -1;
}

void okegw_token_issuer_free(okegw_token_issuer *t) {
  if (!t)
    return;
  okegw_signer_free(t->signer);
  okegw_jwks_free(t->keys);
  free(t->dummy_hash);
  free(t->buckets);
  free(t->audience);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

const okegw_jwks *okegw_token_issuer_keys(const okegw_token_issuer *t) { return t->keys; }

okegw_jwt_expect okegw_token_issuer_expect(const okegw_token_issuer *t) {
  return (okegw_jwt_expect){
      .issuer = OWN_ISSUER, .audience = t->audience, .skew_s = OKEGW_JWT_SKEW_S};
}

void okegw_token_check(const okegw_conf *conf, okegw_diag *diag) {
  if (!conf->token_endpoint)
    return;
  okegw_token_issuer *t = NULL;
  char why[512];
  if (okegw_token_issuer_new(conf, &t, why, sizeof why) < 0)
    okegw_diag_add(diag, conf->path, 0, "%s", why);
  okegw_token_issuer_free(t);
  for (size_t i = 0; i < conf->nconnectors; i++) {
    const okegw_conf_kv *kv = okegw_conf_find(&conf->connectors[i], "client_secret_hash");
    const char *bad = NULL;
    if (kv && okegw_secret_check(kv->value, &bad) < 0)
      okegw_diag_add(diag, conf->path, kv->line, "[connector %s]: %s", conf->connectors[i].name,
                     bad);
  }
}

/* ---- answers --------------------------------------------------------------- */

/* An OAuth error (RFC 6749 §5.2) as problem+json that also carries the
 * `error` and `error_description` members OAuth clients read. */
static void oauth_error(okegw_call *c, int status, const char *error, const char *headers,
                        const char *description) {
  cJSON *o = cJSON_CreateObject();
  char st[8];
  snprintf(st, sizeof st, "%d", status);
  cJSON_AddStringToObject(o, "type", "about:blank");
  cJSON_AddStringToObject(o, "title", okegw_status_text(status));
  cJSON_AddStringToObject(o, "status", st);
  cJSON_AddStringToObject(o, "detail", description);
  cJSON_AddStringToObject(o, "error", error);
  cJSON_AddStringToObject(o, "error_description", description);
  char *body = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  char hdr[256];
  snprintf(hdr, sizeof hdr, "Cache-Control: no-store\r\n%s", headers ? headers : "");
  if (body)
    okegw_answer_send(c, status, "application/problem+json", body, strlen(body), hdr);
  else
    okegw_answer_problem(c, 503, NULL, "out of memory");
  free(body);
}

/* The scopes asked for ("" = every scope the connector may use), or -1
 * when one of them is not the connector's. */
static long granted(const okegw_conf_connector *cc, const char *asked) {
  if (!*asked)
    return (long)cc->scopes;
  unsigned got = 0;
  for (const char *p = asked; *p;) {
    while (*p == ' ')
      p++;
    size_t n = strcspn(p, " ");
    if (!n)
      break;
    unsigned bit = 0;
    for (unsigned b = 1; b <= OKEGW_SCOPE_FLOW6; b <<= 1)
      if (strlen(okegw_scope_name(b)) == n && strncmp(okegw_scope_name(b), p, n) == 0)
        bit = b;
    if (!(bit & cc->scopes))
      return -1;
    got |= bit;
    p += n;
  }
  return (long)got;
}

static void issue(okegw_call *c, okegw_token_issuer *t, const okegw_conf_connector *cc,
                  unsigned scopes) {
  long long now = okegw_wall_ms() / 1000;
  char jti[37], scope[160] = "";
  okegw_uuid4(jti);
  for (unsigned b = 1; b <= OKEGW_SCOPE_FLOW6; b <<= 1)
    if (scopes & b)
      snprintf(scope + strlen(scope), sizeof scope - strlen(scope), "%s%s", scope[0] ? " " : "",
               okegw_scope_name(b));
  const char *id = okegw_token_client_id(cc);
  cJSON *claims = cJSON_CreateObject();
  cJSON_AddStringToObject(claims, "iss", OWN_ISSUER);
  cJSON_AddStringToObject(claims, "aud", t->audience);
  cJSON_AddStringToObject(claims, "sub", id);
  cJSON_AddStringToObject(claims, "client_id", id);
  cJSON_AddStringToObject(claims, "scope", scope);
  cJSON_AddNumberToObject(claims, "iat", (double)now);
  cJSON_AddNumberToObject(claims, "exp", (double)(now + t->lifetime_s));
  cJSON_AddStringToObject(claims, "jti", jti);
  char *token = okegw_signer_sign(t->signer, claims, "at+jwt");
  cJSON_Delete(claims);
  cJSON *o = token ? cJSON_CreateObject() : NULL;
  if (!o) {
    free(token);
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return;
  }
  cJSON_AddStringToObject(o, "access_token", token);
  cJSON_AddStringToObject(o, "token_type", "Bearer");
  cJSON_AddNumberToObject(o, "expires_in", (double)t->lifetime_s);
  cJSON_AddStringToObject(o, "scope", scope);
  OPENSSL_cleanse(token, strlen(token));
  free(token);
  okegw_log(OKEGW_LOG_INFO,
            &(okegw_log_fields){
                .connector = cc->name, .request_id = c->req->request_id, .latency_ms = -1},
            "token issued to '%s' for %s, valid %ld s", cc->name, scope, t->lifetime_s);
  okegw_answer_send_json(c, 200, o, "Cache-Control: no-store\r\nPragma: no-cache\r\n");
  cJSON_Delete(o);
}

/* The bucket of a client id ("": unknown ones); past a bound, or out of
 * memory, known clients share the unknown ids' bucket. Under t->lock. */
static size_t bucket_of(okegw_token_issuer *t, const char *client) {
  for (size_t i = 0; i < t->nbuckets; i++)
    if (strcmp(t->buckets[i].client, client) == 0)
      return i;
  if (t->nbuckets >= 4096 || strlen(client) >= sizeof t->buckets[0].client)
    return 0;
  bucket *grown = realloc(t->buckets, (t->nbuckets + 1) * sizeof *grown);
  if (!grown)
    return 0;
  t->buckets = grown;
  memset(&t->buckets[t->nbuckets], 0, sizeof t->buckets[0]);
  snprintf(t->buckets[t->nbuckets].client, sizeof t->buckets[0].client, "%s", client);
  return t->nbuckets++;
}

/* The bucket's clock: the monotonic clock read now, not a loop's cached
 * uv_now, which lags by the work of its loop turn (a pause set at a stale
 * time would end early) and differs between the event loops. */
static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* Before a check: the bucket of client (its index, kept while the check
 * runs), how long it must still wait at now (0: it may try) and its
 * failures in a row. */
static size_t bucket_enter(okegw_token_issuer *t, const char *client, uint64_t now,
                           uint64_t *wait_ms, unsigned *failures) {
  pthread_mutex_lock(&t->lock);
  size_t i = bucket_of(t, client);
  const bucket *b = &t->buckets[i];
  *wait_ms = b->until_ms > now ? b->until_ms - now : 0;
  *failures = b->failures;
  pthread_mutex_unlock(&t->lock);
  return i;
}

/* After a check of bucket i: a success clears its failures; a failure
 * adds one and pauses the client for twice as long as the last time, up to
 * BACKOFF_MAX_S. Returns that pause in seconds (0 after a success), with
 * the failures in a row now. */
static unsigned bucket_settle(okegw_token_issuer *t, size_t i, int ok, uint64_t now,
                              unsigned *failures) {
  unsigned pause = 0;
  pthread_mutex_lock(&t->lock);
  bucket *b = &t->buckets[i];
  if (ok) {
    b->failures = 0;
  } else {
    b->failures++;
    pause = 1;
    for (unsigned n = 1; n < b->failures && pause < BACKOFF_MAX_S; n++)
      pause *= 2;
    if (pause > BACKOFF_MAX_S)
      pause = BACKOFF_MAX_S;
    b->until_ms = now + (uint64_t)pause * 1000;
  }
  *failures = b->failures;
  pthread_mutex_unlock(&t->lock);
  return pause;
}

/* ---- the secret, checked off the loop -------------------------------------- */

typedef struct check {
  uv_work_t work;
  okegw_call *c;
  okegw_token_issuer *t;
  const okegw_conf_connector *cc; /* NULL: an unknown client */
  size_t bucket;
  char scope[160]; /* asked for; checked once the client is known */
  char client[128];
  char secret[256];
  int ok;
} check;

static void check_secret(uv_work_t *w) {
  check *k = w->data;
  const char *why;
  const char *stored = k->cc ? k->cc->client_secret_hash : k->t->dummy_hash;
  k->ok = okegw_secret_verify(k->secret, strlen(k->secret), stored, &why) == 1 && k->cc;
  /* OpenSSL's state of this pool thread (its error queue): the pool's
   * threads outlive the gateway, so it is given back now */
  OPENSSL_thread_stop();
}

static void checked(uv_work_t *w, int status) {
  check *k = w->data;
  OPENSSL_cleanse(k->secret, sizeof k->secret);
  okegw_call *c = k->c;
  unsigned failures;
  int ok = status == 0 && k->ok;
  unsigned pause = bucket_settle(k->t, k->bucket, ok, now_ms(), &failures);
  if (ok) {
    long s = granted(k->cc, k->scope);
    if (s < 0)
      oauth_error(c, 400, "invalid_scope", NULL,
                  "a scope asked for is not one this system may use (see its connector's scopes)");
    else
      issue(c, k->t, k->cc, (unsigned)s);
    free(k);
    return;
  }
  char *who = okegw_utf8_clean(k->client, 1, 80);
  okegw_log(OKEGW_LOG_WARN,
            &(okegw_log_fields){.connector = k->cc ? k->cc->name : NULL,
                                .request_id = c->req->request_id,
                                .latency_ms = -1},
            "token endpoint: %s for client_id '%s' (%u in a row; the next attempt waits %u s)",
            k->cc ? "wrong client secret" : "unknown client", who ? who : "?", failures, pause);
  free(who);
  free(k);
  oauth_error(c, 401, "invalid_client", "WWW-Authenticate: Basic realm=\"okegw\"\r\n",
              "client authentication failed");
}

/* ---- the request ----------------------------------------------------------- */

/* client_secret_basic: "Basic base64(urlenc(id):urlenc(secret))". */
static int basic_credentials(const char *h, char *id, size_t idsz, char *secret, size_t secsz) {
  if (!h || strncasecmp(h, "Basic ", 6) != 0)
    return 0;
  const char *b64 = h + 6;
  unsigned char raw[600];
  long len = okegw_base64_decode(b64, strlen(b64), raw, sizeof raw - 1);
  if (len < 0)
    return -1;
  raw[len] = '\0';
  const char *colon = memchr(raw, ':', (size_t)len);
  if (!colon) {
    OPENSSL_cleanse(raw, sizeof raw);
    return -1;
  }
  size_t ilen = (size_t)(colon - (const char *)raw);
  int ok = okegw_url_decode((const char *)raw, ilen, id, idsz, 1) >= 0 &&
           okegw_url_decode(colon + 1, (size_t)len - ilen - 1, secret, secsz, 1) >= 0;
  OPENSSL_cleanse(raw, sizeof raw);
  return ok ? 1 : -1;
}

void okegw_token_endpoint(okegw_call *c) {
  okegw_token_issuer *t = c->g->issuer;
  const okegw_req *r = c->req;
  if (!t) {
    okegw_answer_problem(c, 404, NULL,
                         "okegw issues no tokens here (token_endpoint is off): ask the school's "
                         "identity provider");
    return;
  }
  if (strcmp(r->method, "POST") != 0 || r->head) {
    okegw_answer_problem_h(c, 405, NULL, "Allow: POST\r\n", "the token endpoint takes POST only");
    return;
  }
  const char *ct = okegw_req_header(r, "Content-Type");
  if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
    oauth_error(c, 400, "invalid_request", NULL,
                "the body is a form: Content-Type application/x-www-form-urlencoded");
    return;
  }
  const char *form = r->body ? r->body : "";
  check *k = calloc(1, sizeof *k);
  char grant[64] = "", scope[160] = "", post_secret[256] = "", post_id[128] = "";
  if (!k) {
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return;
  }
  okegw_query_get(form, "grant_type", grant, sizeof grant);
  okegw_query_get(form, "scope", scope, sizeof scope);
  int in_form = okegw_query_get(form, "client_secret", post_secret, sizeof post_secret);
  okegw_query_get(form, "client_id", post_id, sizeof post_id);
  int basic = basic_credentials(okegw_req_header(r, "Authorization"), k->client, sizeof k->client,
                                k->secret, sizeof k->secret);
  const char *bad = NULL;
  if (basic < 0)
    bad = "the Authorization header is not Basic base64(client_id:client_secret)";
  else if (basic && in_form)
    bad = "authenticate one way: the Authorization header or client_secret in the body";
  else if (basic && post_id[0] && strcmp(post_id, k->client) != 0)
    bad = "client_id in the body differs from the one in the Authorization header";
  if (bad || strcmp(grant, "client_credentials") != 0) {
    OPENSSL_cleanse(post_secret, sizeof post_secret);
    OPENSSL_cleanse(k->secret, sizeof k->secret);
    free(k);
    if (bad)
      oauth_error(c, 400, "invalid_request", NULL, bad);
    else
      oauth_error(c, 400, grant[0] ? "unsupported_grant_type" : "invalid_request", NULL,
                  "grant_type must be client_credentials");
    return;
  }
  if (!basic) {
    memcpy(k->client, post_id, sizeof k->client);
    memcpy(k->secret, post_secret, sizeof k->secret);
    OPENSSL_cleanse(post_secret, sizeof post_secret);
  }
  if (!k->client[0] || !k->secret[0]) {
    OPENSSL_cleanse(k->secret, sizeof k->secret);
    free(k);
    oauth_error(c, 401, "invalid_client", "WWW-Authenticate: Basic realm=\"okegw\"\r\n",
                "authenticate with client_id and client_secret (HTTP Basic or the form)");
    return;
  }
  for (size_t i = 0; i < c->gen->nconns; i++) {
    const okegw_conf_connector *cc =
        &c->gen->conf->connectors[i]; /* the call's own configuration */
    if (cc->client_secret_hash && strcmp(okegw_token_client_id(cc), k->client) == 0)
      k->cc = cc;
  }
  uint64_t wait_ms;
  unsigned failures;
  k->bucket = bucket_enter(t, k->cc ? k->client : "", now_ms(), &wait_ms, &failures);
  if (wait_ms) {
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Retry-After: %llu\r\n",
             (unsigned long long)((wait_ms + 999) / 1000));
    OPENSSL_cleanse(k->secret, sizeof k->secret);
    free(k);
    okegw_log(OKEGW_LOG_WARN, &(okegw_log_fields){.request_id = r->request_id, .latency_ms = -1},
              "token endpoint: an attempt during the pause after %u failure(s) in a row", failures);
    oauth_error(c, 429, "slow_down", hdr, "too many failed attempts: wait before the next");
    return;
  }
  memcpy(k->scope, scope, sizeof k->scope);
  k->c = c;
  k->t = t;
  k->work.data = k;
  if (uv_queue_work(c->g->loop, &k->work, check_secret, checked) < 0) {
    OPENSSL_cleanse(k->secret, sizeof k->secret);
    free(k);
    okegw_answer_problem(c, 503, NULL, "cannot check the secret now");
  }
}
