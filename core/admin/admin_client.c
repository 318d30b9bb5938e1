/* See admin_client.h. */
#include "admin/admin_client.h"
#include "base/util.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 1000L
/* a report on a long window takes a while; nothing else comes near it */
#define TIMEOUT_MS 120000L

struct okegw_admin_client {
  CURL *curl;
  char *base;  /* http://host:port */
  char *auth;  /* "Authorization: Bearer ..." or NULL */
  char *where; /* host:port, for messages */
  char *file;  /* the configuration, for messages */
};

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  return okegw_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* One request; the HTTP status, or -1 with curl's reason in err. */
static long request(okegw_admin_client *c, const char *method, const char *path, okegw_buf *out,
                    char *err) {
  char *url = okegw_asprintf("%s%s", c->base, path);
  if (!url) {
    strcpy(err, "out of memory");
    return -1;
  }
  struct curl_slist *h = NULL, *h2 = NULL;
  if (c->auth && !(h = curl_slist_append(NULL, c->auth))) {
    free(url);
    strcpy(err, "out of memory");
    return -1;
  }
  if ((h2 = curl_slist_append(h, "Accept: application/json")) != NULL)
    h = h2;
  CURL *k = c->curl;
  curl_easy_reset(k);
  err[0] = 0;
  curl_easy_setopt(k, CURLOPT_URL, url);
  curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
  curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(k, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(k, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(k, CURLOPT_WRITEDATA, out);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(k, CURLOPT_POST, 1L);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, 0L);
  }
  CURLcode rc = curl_easy_perform(k);
  long status = -1;
  if (rc == CURLE_OK)
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
  else if (!err[0])
    snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
  curl_easy_setopt(k, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(h);
  free(url);
  return status;
}

void okegw_admin_client_close(okegw_admin_client *c) {
  if (!c)
    return;
  if (c->curl)
    curl_easy_cleanup(c->curl);
  curl_global_cleanup();
  free(c->base);
  if (c->auth) /* it holds the token */
    OPENSSL_cleanse(c->auth, strlen(c->auth));
  free(c->auth);
  free(c->where);
  free(c->file);
  free(c);
}

okegw_admin_client *okegw_admin_client_open(const okegw_conf *conf, const char *file) {
  const char *host = conf->admin_listen_host;
  if (!host)
    return NULL;
  /* a listener on every address answers on loopback */
  if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
    host = "127.0.0.1";
  else if (strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0)
    host = "::1";
  int v6 = strchr(host, ':') && host[0] != '[';
  okegw_admin_client *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    free(c);
    return NULL;
  }
  c->curl = curl_easy_init();
  c->where = okegw_asprintf(v6 ? "[%s]:%d" : "%s:%d", host, conf->admin_listen_port);
  c->base = c->where ? okegw_asprintf("http://%s", c->where) : NULL;
  c->file = okegw_strdup(file);
  if (conf->admin_token)
    c->auth = okegw_asprintf("Authorization: Bearer %s", conf->admin_token);
  if (!c->curl || !c->where || !c->base || !c->file || (conf->admin_token && !c->auth)) {
    okegw_admin_client_close(c);
    return NULL;
  }
  /* /healthz answers without the token: is an okegw there at all? */
  okegw_buf b = {0};
  char err[CURL_ERROR_SIZE];
  long status = request(c, "GET", "/healthz", &b, err);
  okegw_buf_free(&b);
  if (status != 200) {
    okegw_admin_client_close(c);
    return NULL;
  }
  return c;
}

int okegw_admin_client_call(okegw_admin_client *c, const char *cmd, const char *method,
                            const char *path, cJSON **json, char **body, size_t *len) {
  okegw_buf b = {0};
  char err[CURL_ERROR_SIZE];
  *json = NULL;
  if (body)
    *body = NULL;
  if (len)
    *len = 0;
  long status = request(c, method, path, &b, err);
  if (status < 0) {
    fprintf(stderr, "okegw %s: the gateway's admin listener at %s did not answer %s %s: %s\n", cmd,
            c->where, method, path, err);
    okegw_buf_free(&b);
    return OKEGW_ADMIN_CLIENT_FAILED;
  }
  if (b.data && okegw_buf_append(&b, "", 1) == 0)
    b.len--; /* NUL-terminated */
  if (status == 401) {
    fprintf(stderr,
            "okegw %s: the gateway's admin listener at %s refused the admin_token of %s (401): "
            "the token in the configuration is not the one the running gateway has (or use "
            "--store to read the store directly)\n",
            cmd, c->where, c->file);
    okegw_buf_free(&b);
    return OKEGW_ADMIN_CLIENT_UNAUTHORISED;
  }
  if (b.data)
    *json = cJSON_ParseWithLength(b.data, b.len);
  if (body) {
    *body = b.data;
    if (len)
      *len = b.len;
  } else {
    okegw_buf_free(&b);
  }
  return (int)status;
}

char *okegw_admin_client_escape(okegw_admin_client *c, const char *s) {
  char *e = curl_easy_escape(c->curl, s, 0);
  char *out = e ? okegw_strdup(e) : NULL;
  curl_free(e);
  return out;
}

const char *okegw_admin_client_detail(const cJSON *json, const char *fallback) {
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(json, "detail");
  return cJSON_IsString(d) ? d->valuestring : fallback;
}
