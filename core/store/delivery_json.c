/* The one JSON shape of a delivery (see okegw_delivery_json in store.h). */
#include "store/store.h"
#include "base/json.h"
#include "base/util.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define add_text okegw_json_add_text

/* A time member (RFC 3339 UTC with milliseconds); 0 = none: null, or left
 * out with omit. */
static int add_time(cJSON *o, const char *name, long long ms, int omit) {
  if (!ms && omit)
    return 0;
  char t[40];
  if (ms)
    okegw_format_rfc3339(ms, 1, t, sizeof t);
  cJSON *item = ms ? cJSON_CreateString(t) : cJSON_CreateNull();
  if (!item || !cJSON_AddItemToObject(o, name, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

static int add_item(cJSON *o, const char *name, cJSON *item) {
  if (!item || !cJSON_AddItemToObject(o, name, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

/* Standard base64 (OpenSSL's encoder). */
static char *base64(const unsigned char *s, size_t n) {
  if (n > (size_t)INT_MAX / 4 * 3)
    return NULL;
  char *out = malloc((n + 2) / 3 * 4 + 1);
  if (out)
    EVP_EncodeBlock((unsigned char *)out, s, (int)n);
  return out;
}

/* What a sender may see of its push. */
static int public_members(cJSON *o, const okegw_delivery_rec *r) {
  char href[48];
  snprintf(href, sizeof href, "/deliveries/%lld", r->id);
  int bad = add_item(o, "id", cJSON_CreateNumber((double)r->id));
  bad |= add_item(o, "state", cJSON_CreateString(okegw_delivery_state_name(r->state)));
  bad |= add_text(o, "connector", r->connector ? r->connector : "", 0);
  bad |= add_text(o, "interaction", r->interaction ? r->interaction : "", 0);
  bad |= add_text(o, "resourceId", r->resource_id, 1);
  bad |= add_time(o, "createdAt", r->created_ms, 1);
  bad |= add_item(o, "attempts", cJSON_CreateNumber(r->attempts));
  if (r->last_status)
    bad |= add_item(o, "lastStatus", cJSON_CreateNumber(r->last_status));
  bad |= add_text(o, "lastError", r->last_error, 1);
  if (r->state == OKEGW_DLV_PENDING)
    bad |= add_time(o, "nextAttemptAt", r->next_ms, 1);
  bad |= add_time(o, "deliveredAt", r->delivered_ms, 1);
  bad |= add_item(o, "href", cJSON_CreateString(href));
  return bad;
}

/* Every member, in the order okegw deliveries has always printed them. */
static int full_members(cJSON *o, const okegw_delivery_rec *r) {
  int bad = add_item(o, "id", cJSON_CreateNumber((double)r->id));
  bad |= add_time(o, "createdAt", r->created_ms, 0);
  bad |= add_time(o, "updatedAt", r->updated_ms, 0);
  bad |= add_time(o, "windowStartedAt", r->since_ms, 0);
  const struct {
    const char *name, *v;
  } texts[] = {{"connector", r->connector},
               {"caller", r->caller},
               {"interaction", r->interaction},
               {"resource", r->resource},
               {"resourceId", r->resource_id},
               {"requestId", r->request_id},
               {"method", r->method},
               {"path", r->path},
               {"query", r->query},
               {"contentType", r->content_type},
               {"bodySha256", r->body_sha256}};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    bad |= add_text(o, texts[i].name, texts[i].v, 0);
  bad |= add_text(o, "state", okegw_delivery_state_name(r->state), 0);
  bad |= add_item(o, "attempts", cJSON_CreateNumber(r->attempts));
  bad |= add_time(o, "nextAttemptAt", r->next_ms, 0);
  bad |= add_item(o, "lastStatus",
                  r->last_status ? cJSON_CreateNumber(r->last_status) : cJSON_CreateNull());
  bad |= add_text(o, "lastError", r->last_error, 0);
  bad |= add_time(o, "deliveredAt", r->delivered_ms, 0);
  bad |= add_time(o, "bodyKeptUntil", r->keep_until_ms, 0);
  bad |= add_item(o, "requeue", cJSON_CreateBool(r->requeue));
  bad |= add_item(o, "bodyKept", cJSON_CreateBool(r->body_kept));
  return bad;
}

/* body, bodyBytes and (for bytes that are not text) bodyEncoding. */
static int body_members(cJSON *o, const okegw_delivery_rec *r) {
  if (!r->body)
    return add_item(o, "body", cJSON_CreateNull());
  const char *b = r->body;
  size_t n = r->body_len;
  int bad = 0;
  cJSON *body;
  if (okegw_utf8_valid(b, n) && !memchr(b, '\0', n)) {
    body = cJSON_CreateString(b);
  } else {
    char *s = base64((const unsigned char *)b, n);
    body = s ? cJSON_CreateString(s) : NULL;
    free(s);
    bad |= add_item(o, "bodyEncoding", cJSON_CreateString("base64"));
  }
  bad |= add_item(o, "bodyBytes", cJSON_CreateNumber((double)n));
  bad |= add_item(o, "body", body);
  return bad;
}

cJSON *okegw_delivery_json(const okegw_delivery_rec *r, unsigned flags) {
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  int bad = flags & OKEGW_DELIVERY_JSON_PUBLIC ? public_members(o, r) : full_members(o, r);
  if (!bad && !(flags & OKEGW_DELIVERY_JSON_PUBLIC) && (flags & OKEGW_DELIVERY_JSON_BODY))
    bad = body_members(o, r);
  if (bad) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}
