/* The gateway: the entry of every request (system endpoints, the OKE base
 * path, the route table that matches an OKE interaction and the body it
 * carries) and the gateway's lifetime (start, reload, drain). */
#include "pipeline/gateway.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "connector/mapping.h"
#include "oke/interaction.h"
#include "oke/problem.h"
#include "oke/validate.h"
#include "pipeline/answer.h"
#include "pipeline/authorise.h"
#include "admin/control.h"
#include "ops/admin_server.h"
#include "ops/metrics.h"
#include "pipeline/dispatch.h"
#include "pipeline/generation.h"
#include "pipeline/request.h"
#include "pipeline/route.h"
#include "pipeline/token.h"
#include "pipeline/workers.h"
#include "store/pg.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the route table ----------------------------------------------------- */

/* okegw answers in the role the caller calls (towards TPL it is the TA,
 * towards a TA it is the TPL), so the same path means different
 * interactions for different callers (digest §1.7). */
enum {
  BODY = 1,      /* carries a JSON body, parsed here once */
  LATE_CHECK = 2 /* the route settles the interaction: the profile check waits for it */
};

typedef struct route_row {
  const char *shape; /* segments; "{id}" and "{sub}" match one path id */
  const char *method;
  unsigned callers; /* OKEGW_BY_* */
  int interaction;
  void (*handler)(okegw_call *c);
  unsigned flags;
  /* a PUT is routed by the reference its body makes: field, or its id
   * member when the reference is an expanded object */
  const char *ref, *ref_id;
} route_row;

#define TPL OKEGW_BY_TPL
#define TA OKEGW_BY_TA
#define DR OKEGW_BY_DR

static const route_row routes[] = {
    {"components", "GET", TPL | DR, OKE_I_FLOW0_LIST_COMPONENTS, okegw_route_components, 0, NULL,
     NULL},
    {"components/{id}", "GET", TPL | DR, OKE_I_FLOW0_GET_COMPONENT, okegw_route_component, 0, NULL,
     NULL},
    {"offerings/{id}", "PUT", TPL, OKE_I_FLOW2_PUT_OFFERING, okegw_route_put_offering, BODY,
     "component", "componentId"},
    {"offerings/{id}", "PATCH", TPL, OKE_I_FLOW2_PATCH_OFFERING, okegw_route_offering, BODY, NULL,
     NULL},
    {"offerings/{id}", "PATCH", TA, OKE_I_FLOW4_PATCH_OFFERING, okegw_route_return, BODY, NULL,
     NULL},
    {"offerings/{id}", "GET", TPL, OKE_I_FLOW2_GET_OFFERING, okegw_route_offering, 0, NULL, NULL},
    {"offerings/{id}/associations", "GET", TPL, OKE_I_FLOW2_LIST_ASSOCIATIONS, okegw_route_offering,
     0, NULL, NULL},
    {"associations/{id}", "PUT", TPL, OKE_I_FLOW2_PUT_ASSOCIATION, okegw_route_put_association,
     BODY, "offering", "offeringId"},
    {"associations/{id}", "PATCH", TPL, OKE_I_FLOW2_PATCH_ASSOCIATION, okegw_route_association,
     BODY | LATE_CHECK, NULL, NULL},
    {"associations/{id}", "PATCH", TA, OKE_I_FLOW3_PATCH_ASSOCIATION, okegw_route_return, BODY,
     NULL, NULL},
    {"associations/{id}", "GET", TPL, OKE_I_FLOW2_GET_ASSOCIATION, okegw_route_association, 0, NULL,
     NULL},
    {"associations/{id}/url", "GET", TPL, OKE_I_FLOW2_GET_ASSOCIATION_URL, okegw_route_association,
     0, NULL, NULL},
    /* flow 1 pull: the TPL reads at the DR (offering and association reads
     * that are not zittingen or deelnames fall through to the DR too) */
    {"offerings", "GET", TPL, OKE_I_FLOW1_LIST_OFFERINGS, okegw_route_to_dr, 0, NULL, NULL},
    {"persons/{id}", "GET", TPL, OKE_I_FLOW1_GET_PERSON, okegw_route_to_dr, 0, NULL, NULL},
    {"organizations/{id}", "GET", TPL, OKE_I_FLOW1_GET_ORGANIZATION, okegw_route_to_dr, 0, NULL,
     NULL},
    {"groups", "GET", TPL, OKE_I_FLOW1_LIST_GROUPS, okegw_route_to_dr, 0, NULL, NULL},
    {"groups/{id}", "GET", TPL, OKE_I_FLOW1_GET_GROUP, okegw_route_to_dr, 0, NULL, NULL},
    {"groups/{id}/members", "GET", TPL, OKE_I_FLOW1_LIST_GROUP_MEMBERS, okegw_route_to_dr, 0, NULL,
     NULL},
    /* flow 1 push: the DR writes at the TPL */
    {"offerings/{id}", "PUT", DR, OKE_I_FLOW1_PUT_OFFERING, okegw_route_flow1_push, BODY, NULL,
     NULL},
    {"offerings/{id}", "PATCH", DR, OKE_I_FLOW1_PATCH_OFFERING, okegw_route_flow1_push, BODY, NULL,
     NULL},
    {"associations/{id}", "PUT", DR, OKE_I_FLOW1_PUT_ASSOCIATION, okegw_route_flow1_push, BODY,
     NULL, NULL},
    {"associations/{id}", "PATCH", DR, OKE_I_FLOW1_PATCH_ASSOCIATION, okegw_route_flow1_push, BODY,
     NULL, NULL},
    {"persons/{id}", "PUT", DR, OKE_I_FLOW1_PUT_PERSON, okegw_route_flow1_push, BODY, NULL, NULL},
    {"groups/{id}", "PUT", DR, OKE_I_FLOW1_PUT_GROUP, okegw_route_flow1_push, BODY, NULL, NULL},
    {"groups/{id}/members/{sub}", "PUT", DR, OKE_I_FLOW1_PUT_GROUP_MEMBER, okegw_route_flow1_push,
     BODY, NULL, NULL},
    /* documents: a TPL fetches them from the TA that referenced them (flows
     * 3, 4), a DR from the TPL (flow 5) */
    {"documents/{id}", "GET", TPL | DR, OKE_I_GET_DOCUMENT, okegw_route_document, 0, NULL, NULL},
    /* flow 6: a TA reads programme enrolments at the DR */
    {"persons/{id}/associations", "GET", TA, OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS,
     okegw_route_flow6, 0, NULL, NULL},
};

/* Matches "a/b/c" against a shape; copies the {id} and {sub} segments. */
static int shape_match(const char *shape, const char *path, char *id, char *sub, size_t idsz) {
  while (*shape && *path) {
    const char *ss = strchr(shape, '/'), *ps = strchr(path, '/');
    size_t sl = ss ? (size_t)(ss - shape) : strlen(shape);
    size_t pl = ps ? (size_t)(ps - path) : strlen(path);
    int is_id = sl == 4 && strncmp(shape, "{id}", 4) == 0;
    int is_sub = sl == 5 && strncmp(shape, "{sub}", 5) == 0;
    if (is_id || is_sub) {
      if (pl == 0 || pl >= idsz)
        return 0;
      memcpy(is_id ? id : sub, path, pl);
      (is_id ? id : sub)[pl] = '\0';
    } else if (sl != pl || strncmp(shape, path, sl) != 0) {
      return 0;
    }
    shape += sl + (ss ? 1 : 0);
    path += pl + (ps ? 1 : 0);
    if (!ss != !ps)
      return 0;
  }
  return !*shape && !*path;
}

/* The row for the caller, or NULL with the call answered (403, 404, 405). */
static const route_row *match(okegw_call *c, const char *rel) {
  unsigned who = okegw_authorise_role(c);
  char allow[64] = "";
  int matched_path = 0, other_caller = 0;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    char id[sizeof c->id] = "", sub[sizeof c->sub_id] = "";
    if (!shape_match(routes[i].shape, rel, id, sub, sizeof id))
      continue;
    matched_path = 1;
    if (strcmp(routes[i].method, c->req->method) != 0) {
      size_t used = strlen(allow);
      if (!strstr(allow, routes[i].method))
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
      continue;
    }
    if (!(routes[i].callers & who)) {
      other_caller = 1;
      continue;
    }
    c->interaction = routes[i].interaction;
    memcpy(c->id, id, sizeof id);
    memcpy(c->sub_id, sub, sizeof sub);
    return &routes[i];
  }
  if (other_caller) {
    okegw_authorise_refuse_role(c);
  } else if (matched_path) {
    char hdr[96];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    okegw_answer_problem_h(c, 405, NULL, hdr, "%s is not allowed on %s (allowed: %s)",
                           c->req->method, c->req->path, allow);
  } else {
    okegw_answer_problem(c, 404, NULL, "no OKE interaction at %s", c->req->path);
  }
  return NULL;
}

/* ---- the body ------------------------------------------------------------ */

/* Bytes the body check passes over without a look: printable ASCII but
 * the quote and the backslash. */
static const unsigned char plain_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* How many of the 8 bytes of w (little-endian: the first byte is the
 * lowest) are plain_byte ones before the first that is not: one with its
 * high bit set, below 0x20, a quote or a backslash. Each test is the classic
 * "some byte is zero / less than n" word trick: a borrow can mark bytes
 * after a true hit too, never before it, so the lowest mark is exact. */
static inline unsigned plain_prefix(uint64_t w) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
  uint64_t marks = (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & highs;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return marks ? (unsigned)__builtin_ctzll(marks) / 8 : 8;
#else
  /* big-endian: a borrow may mark a byte before the true hit; the byte
   * loop looks from here */
  return marks ? 0 : 8;
#endif
}

/* Parses the request body (a JSON object) into c->body, or answers 400/415. */
static int parse_body(okegw_call *c) {
  const char *ct = okegw_req_header(c->req, "Content-Type");
  if (ct && strncasecmp(ct, "application/json", 16) != 0 &&
      strncasecmp(ct, "application/merge-patch+json", 28) != 0) {
    okegw_answer_problem(c, 415, NULL,
                         "Content-Type must be application/json or "
                         "application/merge-patch+json, got '%s'",
                         ct);
    return -1;
  }
  if (!c->req->body || !c->req->body_len) {
    okegw_answer_problem(c, 400, NULL, "a JSON body is required");
    return -1;
  }
  /* What is checked is what is forwarded, byte for byte: cJSON reads a
   * string only up to a NUL (raw or \u0000), lets control characters pass
   * and stops after the first value, where another reader (and the peer)
   * would see more or fail. Such bodies are refused, never repaired. */
  const char *b = c->req->body, *bad = NULL;
  size_t len = c->req->body_len;
  int in_string = 0;
  for (size_t i = 0; i < len && !bad; i++) {
    uint64_t w; /* most bytes: plain ASCII text, passed over 8 at a time */
    unsigned k = 8;
    while (k == 8 && len - i >= 8) {
      memcpy(&w, b + i, 8);
      k = plain_prefix(w);
      i += k;
    }
    while (i < len && plain_byte[(unsigned char)b[i]])
      i++;
    if (i == len)
      break;
    unsigned char ch = (unsigned char)b[i];
    if (ch >= 0x80) {
      size_t n = okegw_utf8_seq(b + i, len - i);
      if (!n)
        bad = "bytes that are not UTF-8";
      else
        i += n - 1;
    } else if (ch == '\0') {
      bad = "a NUL byte; JSON text never holds one";
    } else if (in_string && ch < 0x20) {
      bad = "a raw control character inside a string; escape it";
    } else if (!in_string && ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') {
      bad = "a control character outside a string";
    } else if (in_string && ch == '\\') {
      if (i + 5 < len && b[i + 1] == 'u' && !memcmp(b + i + 2, "0000", 4))
        bad = "the escape \\u0000 (NUL); no OKE value holds one";
      i++; /* the escaped character is no quote or backslash of its own */
    } else if (ch == '"') {
      in_string = !in_string;
    }
  }
  if (bad) {
    okegw_answer_problem(c, 400, NULL, "the body holds %s", bad);
    return -1;
  }
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(b, len, &end, 0);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    okegw_answer_problem(c, 400, NULL, "the body is not a JSON object");
    return -1;
  }
  while (end < b + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++;
  if (end < b + len) {
    cJSON_Delete(j);
    okegw_answer_problem(c, 400, NULL,
                         "the body holds data after its JSON object (at byte %zu); send one "
                         "object only",
                         (size_t)(end - b));
    return -1;
  }
  char dup[256];
  if (okegw_json_find_duplicate(j, dup, sizeof dup)) {
    cJSON_Delete(j);
    okegw_answer_problem(c, 400, NULL,
                         "the member %s appears twice in its object; send each name once", dup);
    return -1;
  }
  c->body = j;
  return 0;
}

/* A member of the body's consumers entry "nl-test-admin", as a string. */
static const char *nl_test_admin_field(const cJSON *body, const char *field) {
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, "consumers")) {
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "consumerKey"));
    if (k && strcmp(k, "nl-test-admin") == 0)
      return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, field));
  }
  return NULL;
}

/* The reference a PUT is routed by (an id string or an expanded object,
 * e.g. offering.component); a deelname that names an orgAssociationId is
 * an extra attempt (flow 5), routed by its original toetsinschrijving. */
static int settle_reference(okegw_call *c, const route_row *row) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->body, row->ref);
  const char *ref = cJSON_IsString(v) ? v->valuestring
                    : cJSON_IsObject(v)
                        ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, row->ref_id))
                        : NULL;
  const char *org = c->interaction == OKE_I_FLOW2_PUT_ASSOCIATION
                        ? nl_test_admin_field(c->body, "orgAssociationId")
                        : NULL;
  if (org) {
    c->interaction = OKE_I_FLOW5_PUT_ASSOCIATION;
    ref = org;
  } else if (!ref || !*ref || strlen(ref) >= sizeof c->ref_id) {
    okegw_answer_problem(c, 400, NULL, "'%s' is required to route this request (pointer /%s)",
                         row->ref, row->ref);
    return -1;
  }
  snprintf(c->ref_id, sizeof c->ref_id, "%.63s", ref);
  /* the same resource whatever the case of its UUID (the body is forwarded
   * as sent: only the gateway's own key is normalised) */
  if (okegw_is_uuid(c->ref_id))
    okegw_uuid_lower(c->ref_id);
  return 0;
}

/* ---- system endpoints ---------------------------------------------------- */

/* GET {base}/: the OKE service metadata. */
static void service_metadata(okegw_call *c) {
  if (strcmp(c->req->method, "GET") != 0) {
    okegw_answer_problem_h(c, 405, NULL, "Allow: GET\r\n", "only GET is allowed on %s",
                           c->req->path);
    return;
  }
  const okegw_conf *conf = c->gen->conf;
  cJSON *o = okegw_service_metadata();
  cJSON_AddStringToObject(o, "contactEmail", conf->contact_email);
  cJSON_AddStringToObject(o, "specification", conf->specification_url);
  cJSON_AddStringToObject(o, "documentation", conf->documentation_url);
  okegw_answer_send_json(c, 200, o, NULL); /* NULL: 500, out of memory */
  cJSON_Delete(o);
}

static void on_delivery_read(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)id;
  okegw_call *c = ud;
  if (rc == OKEGW_STORE_OK && n && okegw_authorise_delivery(c, &recs[0])) {
    cJSON *o = okegw_delivery_json(&recs[0], OKEGW_DELIVERY_JSON_PUBLIC);
    okegw_answer_send_json(c, 200, o, NULL);
    cJSON_Delete(o);
  } else if (rc == OKEGW_STORE_ERROR) {
    okegw_answer_store_failed(c);
  } else {
    okegw_answer_problem(c, 404, NULL, "no delivery %s of yours", c->id);
  }
  for (size_t i = 0; i < n; i++)
    okegw_delivery_rec_free(&recs[i]);
  free(recs);
}

/* GET /deliveries/{id}: how a push is doing. */
static void delivery_status(okegw_call *c, const char *id) {
  char *end;
  long long n = strtoll(id, &end, 10);
  snprintf(c->id, sizeof c->id, "%.40s", id);
  if (strcmp(c->req->method, "GET") != 0) {
    okegw_answer_problem_h(c, 405, NULL, "Allow: GET\r\n", "only GET is allowed on %s",
                           c->req->path);
    return;
  }
  if (end == id || *end || n <= 0) {
    okegw_answer_problem(c, 404, NULL, "no delivery %s", c->id);
    return;
  }
  if (okegw_store_delivery_get(c->g->store, n, 0, on_delivery_read, c) < 0)
    okegw_answer_store_down(c);
}

/* POST /callbacks/{connector}/...: a non-OKE supplier's result. */
static void supplier_callback(okegw_call *c, const char *rest) {
  char name[OKEGW_NAME_MAX];
  size_t len = strcspn(rest, "/");
  if (len == 0 || len >= sizeof name) {
    okegw_answer_problem(c, 404, NULL, "no callback at %s", c->req->path);
    return;
  }
  memcpy(name, rest, len);
  name[len] = '\0';
  okegw_connector *conn = okegw_connector_by_name(c->gen, name);
  if (!conn || !conn->conf->callback_token) {
    okegw_answer_problem(c, 404, NULL, "no callbacks are configured for connector '%s'", name);
    return;
  }
  c->interaction = OKE_I_FLOW3_PATCH_ASSOCIATION;
  c->target = conn;
  if (strcmp(c->req->method, "POST") != 0) {
    okegw_answer_problem_h(c, 405, name, "Allow: POST\r\n", "callbacks take POST");
    return;
  }
  if (okegw_authorise_callback(c, conn) < 0 || parse_body(c) < 0)
    return;
  c->caller = conn; /* the supplier, known by its callback token */
  okegw_route_callback(c);
}

/* ---- the entry ----------------------------------------------------------- */

void okegw_gateway_handle(okegw_req *req, void *ud) {
  okegw_gateway *g = ud;
  okegw_call *c = calloc(1, sizeof *c);
  if (!c) {
    okegw_respond_problem(req, 503, "Service Unavailable", "out of memory");
    return;
  }
  c->g = g;
  c->req = req;
  const char *path = req->path;
  if (!g->gen) { /* stopping, after the generation let go */
    free(c);
    okegw_respond_problem(req, 503, "Service Unavailable", "the gateway is shutting down");
    return;
  }
  c->gen = okegw_gen_ref(g->gen);

  if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
    /* not ok while the store takes no writes: nothing can be acknowledged;
     * the outbox depth tells ICT at a glance whether a peer is behind */
    int store_ok = okegw_store_healthy(g->store), ok = store_ok && !g->stopping;
    char body[160];
    int n =
        snprintf(body, sizeof body, "{\"status\":\"%s\",\"store\":\"%s\",\"outbox\":%zu}",
                 ok ? "ok" : "failing", store_ok ? "ok" : "failing", okegw_gateway_outbox_depth(g));
    okegw_answer_send(c, ok ? 200 : 503, "application/json", body, (size_t)n,
                      ok ? NULL : "Retry-After: 5\r\n");
    return;
  }
  if (strncmp(path, "/callbacks/", 11) == 0) {
    supplier_callback(c, path + 11);
    return;
  }
  if (strncmp(path, "/deliveries/", 12) == 0) {
    if (okegw_authorise_identify(c, okegw_gateway_handle) == 0)
      delivery_status(c, path + 12);
    return;
  }
  const char *base = c->gen->conf->base_path;
  size_t blen = strlen(base);
  if (strncmp(path, base, blen) != 0 || (path[blen] && path[blen] != '/')) {
    okegw_answer_problem(c, 404, NULL, "no OKE resource at %s (the OKE base path is '%s')", path,
                         base);
    return;
  }
  c->oke_path = path + blen;
  const char *rel = c->oke_path[0] == '/' ? c->oke_path + 1 : c->oke_path;
  if (!*rel) {
    service_metadata(c);
    return;
  }
  if (strcmp(rel, "oauth2/token") == 0) { /* the client authenticates itself there */
    okegw_token_endpoint(c);
    return;
  }

  if (okegw_authorise_identify(c, okegw_gateway_handle) < 0)
    return;
  const route_row *row = match(c, rel);
  if (!row)
    return;
  if ((c->id[0] && !okegw_is_uuid(c->id)) || (c->sub_id[0] && !okegw_is_uuid(c->sub_id))) {
    okegw_answer_problem(c, 400, NULL, "an id in the path is not a UUID: %s", path);
    return;
  }
  /* one resource, one key: the store, the logs and the plugins (req->id)
   * see the lower-case form (RFC 9562). The path and body forwarded stay as
   * sent, so a peer still finds the body's id equal to the path's (R12). */
  okegw_uuid_lower(c->id);
  okegw_uuid_lower(c->sub_id);
  if (g->stopping) {
    okegw_answer_problem_h(c, 503, NULL, "Retry-After: 5\r\n", "the gateway is shutting down");
    return;
  }
  if (okegw_authorise_call(c) < 0)
    return;
  /* the query of a list read is checked here too: a filter value the YAML
   * does not allow is the caller's 400, not a peer's */
  okegw_violations qv = {0};
  if (okegw_validate_query(c->interaction, req->query, &qv) != 0) {
    char *pb = qv.n ? okegw_violations_problem(&qv, 400) : NULL;
    okegw_call_note_violations(c, &qv, "request");
    okegw_violations_free(&qv);
    if (pb)
      okegw_answer_send(c, 400, OKEGW_PROBLEM_TYPE, pb, strlen(pb), NULL);
    else
      okegw_answer_problem(c, 503, NULL, "out of memory");
    free(pb);
    return;
  }
  if (row->flags & BODY) {
    if (parse_body(c) < 0 || (row->ref && settle_reference(c, row) < 0))
      return;
    /* checked as soon as the interaction is settled: nothing is looked up,
     * probed or recorded for a body that breaks the profile */
    if (!(row->flags & LATE_CHECK) && okegw_dispatch_check(c) < 0)
      return;
  }
  row->handler(c);
}

/* ---- lifetime ------------------------------------------------------------ */

okegw_tls_opts okegw_gateway_tls_opts(const okegw_conf *conf) {
  return (okegw_tls_opts){.cert_file = conf->tls_cert_file,
                          .key_file = conf->tls_key_file,
                          .min_version = conf->tls_min_version,
                          .client_ca_file = conf->tls_client_ca_file,
                          .client_auth = (enum okegw_tls_client_auth)conf->tls_client_auth};
}

/* A report line that is no error (no FILE:LINE in front). */
static void note(okegw_diag *report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(okegw_diag *report, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  okegw_diag_add_msg(report, line);
}

/* Settings that need a restart: the listeners, the store and the identity
 * of okegw as a token issuer or the provider's audience. A reload keeps the
 * running value and says so. */
static void keep_running(okegw_conf *next, const okegw_conf *run, okegw_diag *report) {
  struct {
    const char *key;
    char **next_s;
    char *const *run_s;
    int *next_i;
    const int *run_i;
  } rows[] = {
      {"listen", &next->listen_host, &run->listen_host, &next->listen_port, &run->listen_port},
      {"listen_tls", &next->listen_tls_host, &run->listen_tls_host, &next->listen_tls_port,
       &run->listen_tls_port},
      {"store", &next->store, &run->store, NULL, NULL},
      {"store_sync", &next->store_sync, &run->store_sync, NULL, NULL},
      {"control_socket", &next->control_socket, &run->control_socket, NULL, NULL},
      {"admin_listen", &next->admin_listen_host, &run->admin_listen_host, &next->admin_listen_port,
       &run->admin_listen_port},
      {"oauth_issuer", &next->oauth_issuer, &run->oauth_issuer, NULL, NULL},
      {"oauth_audience", &next->oauth_audience, &run->oauth_audience, NULL, NULL},
      {"oauth_jwks_file", &next->oauth_jwks_file, &run->oauth_jwks_file, NULL, NULL},
      {"oauth_jwks_url", &next->oauth_jwks_url, &run->oauth_jwks_url, NULL, NULL},
      {"token_signing_key_file", &next->token_signing_key_file, &run->token_signing_key_file, NULL,
       NULL},
      {"token_endpoint", NULL, NULL, &next->token_endpoint, &run->token_endpoint},
      {"workers", NULL, NULL, &next->workers, &run->workers},
      {"store_lease_s", NULL, NULL, &next->store_lease_s, &run->store_lease_s},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    int differs =
        (rows[i].next_s &&
         !((!*rows[i].next_s && !*rows[i].run_s) ||
           (*rows[i].next_s && *rows[i].run_s && strcmp(*rows[i].next_s, *rows[i].run_s) == 0))) ||
        (rows[i].next_i && *rows[i].next_i != *rows[i].run_i);
    if (!differs)
      continue;
    note(report, "%s changed in %s: it takes effect after a restart (the running value stays)",
         rows[i].key, next->path);
    if (rows[i].next_s) {
      free(*rows[i].next_s);
      *rows[i].next_s = *rows[i].run_s ? okegw_strdup(*rows[i].run_s) : NULL;
    }
    if (rows[i].next_i)
      *rows[i].next_i = *rows[i].run_i;
  }
  next->token_lifetime_s = run->token_lifetime_s; /* the issuer holds it */
}

static okegw_server_opts server_opts(okegw_gateway *g, const okegw_conf *conf) {
  return (okegw_server_opts){.host = conf->listen_host,
                             .reuseport = g->main                         ? OKEGW_REUSEPORT_JOIN
                                          : okegw_workers_count(conf) > 1 ? OKEGW_REUSEPORT_FIRST
                                                                          : OKEGW_REUSEPORT_NONE,
                             .port = conf->listen_port,
                             .max_header_bytes = conf->max_header_bytes,
                             .max_body_bytes = conf->max_body_bytes,
                             .idle_timeout_ms = conf->idle_timeout_ms,
                             .header_timeout_ms = conf->header_timeout_ms,
                             .body_min_rate_bytes = conf->body_min_rate_bytes,
                             .send_timeout_ms = conf->send_timeout_ms,
                             .max_connections = conf->max_connections,
                             .handler = okegw_gateway_handle,
                             .ud = g};
}

/* What a reload did to the connectors, a line for the log and the caller. */
static void describe_change(const okegw_gen *prev, const okegw_gen *next, okegw_diag *report) {
  char added[256] = "", removed[256] = "", replaced[256] = "";
  size_t kept = 0;
  for (size_t i = 0; i < next->nconns; i++) {
    const char *name = next->conf->connectors[i].name;
    okegw_connector *old = okegw_connector_by_name(prev, name);
    char *list = !old ? added : old != next->conns[i] ? replaced : NULL;
    if (list)
      snprintf(list + strlen(list), 256 - strlen(list), "%s%s", list[0] ? ", " : "", name);
    else
      kept++;
  }
  for (size_t i = 0; i < prev->nconns; i++)
    if (!okegw_connector_by_name(next, prev->conf->connectors[i].name))
      snprintf(removed + strlen(removed), sizeof removed - strlen(removed), "%s%s",
               removed[0] ? ", " : "", prev->conf->connectors[i].name);
  note(report, "reloaded: %zu connector(s) kept, added: %s, replaced: %s, removed: %s", kept,
       added[0] ? added : "none", replaced[0] ? replaced : "none", removed[0] ? removed : "none");
  for (size_t i = 0; i < next->nconns; i++) {
    const okegw_conf_connector *cc = &next->conf->connectors[i];
    const okegw_conf_connector *was = okegw_conf_section(prev->conf, cc->name);
    if (was && was->phase == cc->phase)
      continue;
    note(report, "connector '%s': phase %s -> %s%s%s", cc->name,
         was ? okegw_phase_name(was->phase) : "(new)", okegw_phase_name(cc->phase),
         cc->phase_reason ? ": " : "", cc->phase_reason ? cc->phase_reason : "");
  }
  for (size_t i = 0; i < prev->conf->nconnectors; i++) {
    const okegw_conf_connector *cc = &prev->conf->connectors[i];
    if (!okegw_conf_section(next->conf, cc->name) && cc->phase != OKEGW_PHASE_OFF)
      note(report, "connector '%s': phase %s -> off: removed from the configuration", cc->name,
           okegw_phase_name(cc->phase));
  }
}

/* ---- the phase history -------------------------------------------------- */

static void on_phases_recorded(void *ud, int rc, const okegw_phase_rec *recs, size_t n) {
  (void)ud;
  (void)recs;
  if (rc != OKEGW_STORE_OK)
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "%zu phase change(s) could not be recorded in the store (see the store's log "
              "line); they apply all the same",
              n);
}

/* Records what changed from `was` (a connector's phase before, by name;
 * NULL: none) to gen: every connector whose phase differs, and every one the
 * configuration no longer has (recorded as off). */
static void record_phases(okegw_gateway *g, const okegw_gen *gen,
                          const char *(*was)(const void *ud, const char *name), const void *ud,
                          const okegw_conf *prev_conf) {
  const okegw_conf *conf = gen->conf;
  size_t max = conf->nconnectors + (prev_conf ? prev_conf->nconnectors : 0);
  okegw_phase_change *ch = calloc(max ? max : 1, sizeof *ch);
  size_t n = 0;
  for (size_t i = 0; ch && i < conf->nconnectors; i++) {
    const okegw_conf_connector *cc = &conf->connectors[i];
    const char *from = was(ud, cc->name);
    const char *to = okegw_phase_name(cc->phase);
    if (from && strcmp(from, to) == 0)
      continue;
    ch[n++] = (okegw_phase_change){.connector = cc->name,
                                   .from = from,
                                   .to = to,
                                   .reason = cc->phase_reason,
                                   .config_sha256 = conf->sha256[0] ? conf->sha256 : NULL,
                                   .instance = okegw_store_instance(g->store)};
  }
  for (size_t i = 0; ch && prev_conf && i < prev_conf->nconnectors; i++) {
    const okegw_conf_connector *cc = &prev_conf->connectors[i];
    if (okegw_conf_section(conf, cc->name) || cc->phase == OKEGW_PHASE_OFF)
      continue;
    ch[n++] = (okegw_phase_change){.connector = cc->name,
                                   .from = okegw_phase_name(cc->phase),
                                   .to = "off",
                                   .reason = "removed from the configuration",
                                   .config_sha256 = conf->sha256[0] ? conf->sha256 : NULL,
                                   .instance = okegw_store_instance(g->store)};
  }
  if (!ch)
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory: phase changes not recorded");
  else if (n && okegw_store_phase_record(g->store, ch, n, on_phases_recorded, NULL) < 0)
    on_phases_recorded(NULL, OKEGW_STORE_ERROR, NULL, n);
  free(ch);
}

static const char *phase_in_conf(const void *ud, const char *name) {
  const okegw_conf_connector *cc = okegw_conf_section(ud, name);
  return cc ? okegw_phase_name(cc->phase) : NULL;
}

/* At start: what the store last recorded for each connector is the phase
 * before (a change made while okegw was down is recorded now). */
typedef struct last_phases {
  okegw_gateway *g;
  okegw_gen *gen;
  const okegw_phase_rec *recs;
  size_t n;
} last_phases;

static const char *phase_in_store(const void *ud, const char *name) {
  const last_phases *l = ud;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->recs[i].connector, name) == 0)
      return l->recs[i].to;
  return NULL;
}

static void on_last_phases(void *ud, int rc, const okegw_phase_rec *recs, size_t n) {
  last_phases *l = ud;
  if (rc != OKEGW_STORE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "the phase history could not be read; the phases of this start are not recorded");
  } else if (!l->g->stopping) {
    l->recs = recs;
    l->n = n;
    record_phases(l->g, l->gen, phase_in_store, l, NULL);
  }
  okegw_gen_unref(l->gen);
  free(l);
}

static int reload(okegw_gateway *g, okegw_diag *report);

void okegw_gateway_set_reload_hook(okegw_gateway *g, void (*hook)(int reloading)) {
  g->reload_hook = hook;
}

int okegw_gateway_reload(okegw_gateway *g, okegw_diag *report) {
  if (g->reload_hook)
    g->reload_hook(1);
  int rc = reload(g, report);
  if (g->reload_hook)
    g->reload_hook(0);
  return rc;
}

/* A reload's generation taken by one loop (loop 0 also records and reports
 * it): new limits on its listeners, the generation, its JWKS file. */
static void apply(okegw_gateway *g, okegw_gen *gen) {
  okegw_server_opts so = server_opts(g, gen->conf);
  okegw_server_set_limits(g->server, &so);
  okegw_server_set_limits(g->server_tls, &so);
  okegw_gen_install(g, gen);
  okegw_jwks_source_reload(g->oauth); /* OAuth 2.0 in: a JWKS file is read again */
}

void okegw_gateway_install_worker(okegw_gateway *g, okegw_gen *gen) {
  if (g->tls) {
    /* loop 0 took these files a moment ago */
    char err[512];
    okegw_tls_opts o = okegw_gateway_tls_opts(gen->conf);
    if (okegw_tls_reload(g->tls, &o, err, sizeof err) < 0)
      okegw_log(OKEGW_LOG_ERROR, NULL,
                "event loop %d keeps its TLS certificate: %s (restart to make all alike)",
                okegw_worker_index(g), err);
  }
  apply(g, gen);
}

/* With PostgreSQL an attempt starts only while its lease surely outlasts
 * it (delivery/outbox.c), so the running store_lease_s (a restart changes
 * it) bounds every connector's timeout_ms: a reload past it would leave
 * that connector's deliveries waiting for good. -1 (said in report) then. */
static int lease_fits(const okegw_conf *next, okegw_diag *report) {
  int rc = 0;
  for (size_t i = 0; okegw_pg_is_uri(next->store) && i < next->nconnectors; i++) {
    const okegw_conf_connector *cc = &next->connectors[i];
    if (okegw_conf_lease_min_s(cc) <= next->store_lease_s)
      continue;
    okegw_diag_add(report, next->path, cc->line,
                   "[connector %s]: timeout_ms (%ld) needs store_lease_s of at least %ld; the "
                   "running one is %d s, and a new one takes effect after a restart",
                   cc->name, cc->timeout_ms, okegw_conf_lease_min_s(cc), next->store_lease_s);
    rc = -1;
  }
  return rc;
}

static int reload(okegw_gateway *g, okegw_diag *report) {
  if (g->stopping || !g->gen) {
    note(report, "the gateway is stopping: nothing reloaded");
    return -1;
  }
  const okegw_conf *run = g->gen->conf;
  okegw_conf *next = calloc(1, sizeof *next);
  if (!next) {
    okegw_diag_add(report, run->path, 0, "out of memory: nothing reloaded");
    return -1;
  }
  if (okegw_conf_load(run->path, next, report) < 0) {
    free(next);
    return -1;
  }
  okegw_diag notes = {0}; /* said after the summary, if the reload is taken */
  keep_running(next, run, &notes);
  okegw_gen *gen = NULL;
  if (lease_fits(next, report) < 0) {
    okegw_diag_free(&notes);
    okegw_conf_free(next);
    free(next);
    return -1;
  }
  if (okegw_gen_build(g, next, g->gen, 1, report, &gen) < 0) {
    okegw_diag_free(&notes);
    return -1;
  }
  /* every other loop builds its own, or none changes */
  if (okegw_workers_prepare(g, gen, report) < 0) {
    okegw_diag_free(&notes);
    okegw_gen_unref(gen);
    return -1;
  }
  /* the certificate is checked before anything changes: a bad one refuses
   * the whole reload, the running one stays */
  if (g->tls) {
    char err[512];
    okegw_tls_opts o = okegw_gateway_tls_opts(gen->conf);
    if (okegw_tls_reload(g->tls, &o, err, sizeof err) < 0) {
      okegw_diag_add(report, gen->conf->path, gen->conf->tls_line, "%s", err);
      okegw_diag_free(&notes);
      okegw_workers_finish(g, 0);
      okegw_gen_unref(gen);
      return -1;
    }
  }
  okegw_gen *prev = okegw_gen_ref(g->gen);
  okegw_log_set_level(okegw_log_level_from_name(gen->conf->log_level));
  okegw_log_set_format(gen->conf->log_format);
  apply(g, gen);
  okegw_workers_finish(g, 1);
  describe_change(prev, gen, report);
  record_phases(g, gen, phase_in_conf, prev->conf, prev->conf);
  if (g->tls)
    note(report, "TLS certificate and key reloaded");
  okegw_gen_unref(prev);
  for (size_t i = 0; i < notes.n; i++)
    okegw_diag_add_msg(report, notes.msgs[i]);
  okegw_diag_free(&notes);
  return 0;
}

void okegw_gateway_sighup(okegw_gateway *g) {
  okegw_diag report = {0};
  int rc = okegw_gateway_reload(g, &report);
  for (size_t i = 0; i < report.n; i++)
    okegw_log(rc < 0 ? OKEGW_LOG_ERROR : OKEGW_LOG_INFO, NULL, "%s", report.msgs[i]);
  if (rc < 0)
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "reload refused: the running configuration stays (fix the file and reload again)");
  okegw_diag_free(&report);
}

/* okegw reload, over the control socket: for the file this gateway runs
 * with only (another file would be read by this gateway as if it were its
 * own, and the next SIGHUP would read the old one again). */
static int on_control(void *ud, const char *file, okegw_diag *report) {
  okegw_gateway *g = ud;
  char *mine = g->gen ? realpath(g->gen->conf->path, NULL) : NULL;
  int same = mine && strcmp(mine, file) == 0;
  if (!same)
    note(report, "this gateway runs with %s, not %s: give that file to okegw reload -c",
         mine     ? mine
         : g->gen ? g->gen->conf->path
                  : "?",
         file);
  free(mine);
  return same ? okegw_gateway_reload(g, report) : -1;
}

/* Audit retention: rows older than audit_retention_s of the configuration
 * running now (a reload may change it) go, at start and then hourly. */
#define AUDIT_PRUNE_EVERY_MS (3600 * 1000)

static void on_audit_prune(uv_timer_t *t) {
  okegw_gateway *g = t->data;
  long keep_s = g->gen ? g->gen->conf->audit_retention_s : 0;
  if (keep_s > 0 && !g->stopping)
    okegw_store_audit_prune(g->store, okegw_wall_ms() - keep_s * 1000LL);
}

static void audit_prune_start(okegw_gateway *g) {
  uv_timer_t *t = malloc(sizeof *t);
  if (!t || uv_timer_init(g->loop, t) != 0) {
    free(t);
    okegw_log(OKEGW_LOG_WARN, NULL, "out of memory: audit_retention_s is not applied");
    return;
  }
  t->data = g;
  g->audit_prune = t;
  uv_timer_start(t, on_audit_prune, 0, AUDIT_PRUNE_EVERY_MS);
  uv_unref((uv_handle_t *)t); /* never what keeps the loop alive */
}

static void on_audit_prune_closed(uv_handle_t *h) { free(h); }

/* The listeners of one loop: listen, and listen_tls when set. A worker
 * loop binds the ports loop 0 bound (listen = ...:0 too). 0, or -1 logged. */
static int start_listeners(okegw_gateway *g, const okegw_conf *conf) {
  const okegw_gateway *m = g->main;
  okegw_server_opts so = server_opts(g, conf);
  if (m)
    so.port = okegw_server_port(m->server);
  int rc = okegw_server_start(g->loop, &so, &g->server);
  if (rc == 0 && conf->listen_tls_host) {
    char why[512];
    okegw_tls_opts o = okegw_gateway_tls_opts(conf);
    if (okegw_tls_new(&o, &g->tls, why, sizeof why) < 0) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "cannot listen with TLS: %s", why);
      return -1;
    }
    so.host = conf->listen_tls_host;
    so.port = m ? okegw_server_port(m->server_tls) : conf->listen_tls_port;
    so.tls = g->tls;
    so.tls_handshakes = okegw_metrics_tls_handshakes(g->metrics, "listen_tls");
    rc = okegw_server_start(g->loop, &so, &g->server_tls);
  }
  if (rc < 0) {
    char who[32] = "";
    if (m)
      snprintf(who, sizeof who, "event loop %d ", okegw_worker_index(g));
    okegw_log(OKEGW_LOG_ERROR, NULL, "%scannot listen on %s:%d: %s", who, so.host, so.port,
              uv_strerror(rc));
  }
  return rc < 0 ? -1 : 0;
}

int okegw_gateway_start(uv_loop_t *loop, okegw_conf *conf, okegw_gateway **out) {
  okegw_gateway *g = calloc(1, sizeof *g);
  if (!g) {
    okegw_conf_free(conf);
    free(conf);
    return -1;
  }
  g->loop = loop;
  g->metrics = okegw_metrics_new(); /* without it okegw runs, and /metrics says 500 */
  char *err = NULL;
  if (okegw_store_open(loop, conf->store, conf->store_sync, &g->store, &err) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "%s", err ? err : "cannot open the store");
    free(err);
    okegw_metrics_free(g->metrics);
    free(g);
    okegw_conf_free(conf);
    free(conf);
    return -1;
  }
  okegw_store_commit_histogram(g->store, okegw_metrics_store_commit(g->metrics));
  okegw_store_set_lease(g->store, conf->store_lease_s);
  if (okegw_http_init(loop, &g->http) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot initialise the HTTP client");
    okegw_store_commit_histogram(g->store, NULL);
    okegw_store_close(g->store, NULL, NULL);
    okegw_metrics_free(g->metrics);
    free(g);
    okegw_conf_free(conf);
    free(conf);
    return -1;
  }
  okegw_diag diag = {0};
  /* A refused plugin or broken mapping disables only its own connector; a
   * reload with the problem fixed brings it up later. */
  int built = okegw_gen_build(g, conf, NULL, 0, &diag, &g->gen);
  okegw_diag_free(&diag);
  *out = g;
  if (built < 0 || okegw_outbox_start(loop, g->store, g->gen->conf, g->gen->conns, g->gen->nconns,
                                      okegw_dispatch_delivered, g, &g->outbox) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory");
    return -1;
  }
  conf = g->gen->conf;
  audit_prune_start(g);
  last_phases *lp = calloc(1, sizeof *lp);
  if (lp) {
    *lp = (last_phases){.g = g, .gen = okegw_gen_ref(g->gen)};
    if (okegw_store_phase_last(g->store, on_last_phases, lp) < 0)
      on_last_phases(lp, OKEGW_STORE_ERROR, NULL, 0);
  }
  /* OAuth 2.0 in: the issuer's keys, from the file now or the URL soon */
  if (conf->oauth_issuer && okegw_jwks_source_start(loop, g->http, conf, &g->oauth) < 0)
    return -1;
  /* okegw's own token endpoint: its key, and its tokens name the callers */
  if (conf->token_endpoint) {
    char why[512];
    if (okegw_token_issuer_new(conf, &g->issuer, why, sizeof why) < 0) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "cannot issue tokens: %s", why);
      return -1;
    }
  }
  if (!g->gen->identity)
    okegw_log(OKEGW_LOG_WARN, NULL,
              "no connector has an inbound_token: every caller is trusted as the school's TPL "
              "(fine for a demo; give each calling system its own token before going live)");
  if (start_listeners(g, conf) < 0)
    return -1;
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  if (g->server_tls) {
    f.addr = conf->listen_tls_host;
    f.port = okegw_server_port(g->server_tls);
    okegw_log(OKEGW_LOG_INFO, &f, "listening (TLS)");
  }
  if (conf->control_socket) {
    char why[512];
    if (okegw_control_start(loop, conf->control_socket, on_control, g, &g->control, why,
                            sizeof why) < 0)
      okegw_log(OKEGW_LOG_WARN, NULL,
                "no control socket (`okegw reload` cannot reach this gateway; SIGHUP still "
                "reloads): %s",
                why);
  }
  if (okegw_admin_server_start(g, conf, &g->admin) < 0)
    return -1;
  if (okegw_workers_start(g, okegw_workers_count(conf)) < 0)
    return -1;
  f.addr = conf->listen_host;
  f.port = okegw_server_port(g->server);
  okegw_log(OKEGW_LOG_INFO, &f, "listening");
  return 0;
}

/* A worker loop's gateway: its own listeners, HTTP client, JWKS source,
 * TLS context and generation; loop 0's store (through the port the thread
 * bound), metrics and token issuer. */
int okegw_gateway_start_worker(uv_loop_t *loop, okegw_gateway *main, struct okegw_worker *w,
                               okegw_gateway **out) {
  *out = NULL;
  okegw_gateway *g = calloc(1, sizeof *g);
  if (!g) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory: event loop not started");
    return -1;
  }
  *out = g;
  *g = (okegw_gateway){.loop = loop,
                       .main = main,
                       .worker = w,
                       .store = main->store,
                       .metrics = main->metrics,
                       .issuer = main->issuer};
  if (okegw_http_init(loop, &g->http) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "cannot initialise the HTTP client of an event loop");
    return -1;
  }
  okegw_diag diag = {0};
  int built = okegw_gen_build_like(g, main->gen, NULL, 0, &diag, &g->gen);
  for (size_t i = 0; i < diag.n; i++)
    okegw_log(OKEGW_LOG_ERROR, NULL, "%s", diag.msgs[i]);
  okegw_diag_free(&diag);
  if (built < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "event loop %d not started: a connector that runs on loop 0 did not start on it "
              "(above); okegw does not run with loops that disagree (workers = 1 avoids it)",
              okegw_worker_index(g));
    return -1;
  }
  const okegw_conf *conf = g->gen->conf;
  if (conf->oauth_issuer && okegw_jwks_source_start(loop, g->http, conf, &g->oauth) < 0)
    return -1;
  return start_listeners(g, conf);
}

static void on_store_closed(void *arg) {
  okegw_gateway *g = arg;
  void (*cb)(void *) = g->stopped;
  void *cb_arg = g->stopped_arg;
  okegw_server_free(g->server);
  okegw_server_free(g->server_tls);
  okegw_admin_server_free(g->admin);
  okegw_tls_free(g->tls);
  okegw_jwks_source_free(g->oauth); /* after the HTTP client: no fetch is left */
  okegw_http_free(g->http);         /* every connector, the last asker, has ended */
  if (!g->main) {
    okegw_workers_free(g); /* every worker said it stopped: their threads end */
    okegw_token_issuer_free(g->issuer);
    okegw_metrics_free(g->metrics); /* the store thread, its last writer, has ended */
  }
  free(g);
  if (cb)
    cb(cb_arg);
}

/* Every call let go of its generation and every connector ended: only now
 * may the store go (generation.c calls this, and the stop itself). */
static void all_released(okegw_gateway *g) {
  if (g->stop_waiting && !g->retiring && !g->gens) {
    g->stop_waiting = 0;
    if (g->main)
      okegw_worker_release(g, on_store_closed, g); /* loop 0 closes the store */
    else
      okegw_store_close(g->store, on_store_closed, g);
  }
}

static void on_drained(void *arg) {
  okegw_gateway *g = arg;
  if (g->draining > 0 && --g->draining > 0)
    return; /* the other listener still has requests */
  /* No request is left; plugins may still have exchanges only when their
   * guard fired or the outbox retries: those waiting on HTTP end with the
   * client, the others are waited for before fini (deliveries under way
   * stay pending in the store for the next start). */
  okegw_control_stop(g->control);
  g->control = NULL;
  if (g->audit_prune)
    uv_close((uv_handle_t *)g->audit_prune, on_audit_prune_closed);
  g->audit_prune = NULL;
  okegw_outbox_close(g->outbox);
  okegw_http_close(g->http);
  g->stop_waiting = 1;
  g->all_released = all_released;
  g->retiring++; /* held while the generation lets go of its connectors */
  okegw_gen *gen = g->gen;
  g->gen = NULL;
  okegw_gen_unref(gen);
  g->retiring--;
  all_released(g);
}

static void workers_stopped(okegw_gateway *g) { on_drained(g); }

void okegw_gateway_stop(okegw_gateway *g, void (*done)(void *), void *arg) {
  if (g->stopping)
    return;
  g->stopping = 1;
  g->stopped = done;
  g->stopped_arg = arg;
  okegw_log(g->main ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO, NULL, "draining %zu open request(s)%s",
            (g->server ? okegw_server_in_flight(g->server) : (size_t)0) +
                (g->server_tls ? okegw_server_in_flight(g->server_tls) : (size_t)0),
            g->workers ? " on loop 0, and those of the other event loops" : "");
  g->draining =
      (g->server != NULL) + (g->server_tls != NULL) + (g->admin != NULL) + (g->workers != NULL);
  if (g->workers)
    okegw_workers_stop(g, workers_stopped); /* before the outbox closes: their pushes wait */
  if (g->server)
    okegw_server_drain(g->server, on_drained, g);
  if (g->server_tls)
    okegw_server_drain(g->server_tls, on_drained, g);
  if (g->admin)
    okegw_admin_server_drain(g->admin, on_drained, g);
  if (!g->draining)
    on_drained(g);
}
