/* Flow 0: the catalogue merged from every live TA connector, and finding the
 * owner of a component. */
#include "pipeline/route.h"
#include "pipeline/answer.h"
#include "pipeline/authorise.h"
#include "pipeline/state.h"
#include "oke/interaction.h"
#include "base/json.h"
#include "base/log.h"
#include "oke/problem.h"
#include "base/util.h"
#include "oke/validate.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- flow 0: the merged catalogue -------------------------------------- */

typedef struct part {
  okegw_connector *conn;
  cJSON *items; /* array, collected over the pages */
  int page;
  int failed;
  char reason[48];
} part;

typedef struct fanout {
  okegw_call *c;
  size_t pending;
  part *parts;
  size_t nparts;
  char *base_query; /* the caller's filters, without paging and sort */
  char *probe_id;   /* probe mode: GET /components/{id} at every connector */
  void (*probe_done)(okegw_call *c, okegw_connector *owner, const char *ctype, const char *body,
                     size_t len);
  okegw_connector *probe_owner;
  char *probe_body, *probe_ctype;
  size_t probe_len;
} fanout;

static void fanout_free(fanout *f) {
  for (size_t i = 0; i < f->nparts; i++)
    cJSON_Delete(f->parts[i].items);
  free(f->parts);
  free(f->base_query);
  free(f->probe_id);
  free(f->probe_body);
  free(f->probe_ctype);
  free(f);
}

static void part_fail(part *p, int status, const char *why) {
  p->failed = 1;
  if (why)
    snprintf(p->reason, sizeof p->reason, "%s", why);
  else if (status == 504)
    snprintf(p->reason, sizeof p->reason, "timeout");
  else if (status == 502)
    snprintf(p->reason, sizeof p->reason, "unreachable");
  else if (status == 503)
    snprintf(p->reason, sizeof p->reason, "unavailable");
  else
    snprintf(p->reason, sizeof p->reason, "status-%d", status);
}

static void catalogue_merge(fanout *f);
static void part_fetch(fanout *f, part *p);

static void fanout_part_done(fanout *f) {
  if (--f->pending == 0)
    catalogue_merge(f);
}

/* The callback context of one page request. */
typedef struct page_ctx {
  fanout *f;
  part *p;
} page_ctx;

static void on_page_done(void *ud, const okegw_answer *a) {
  page_ctx *pc = ud;
  fanout *f = pc->f;
  part *p = pc->p;
  free(pc);
  int status = a->status;
  if (status != 200) {
    part_fail(p, status, NULL);
    fanout_part_done(f);
    return;
  }
  /* parsed once: for the profile check and for the merge */
  cJSON *page = okegw_answer_json(a);
  char *blocked = NULL;
  if (okegw_answer_check(f->c, a, &blocked)) {
    free(blocked);
    part_fail(p, status, "invalid-response");
    fanout_part_done(f);
    return;
  }
  cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");
  if (!cJSON_IsArray(items)) {
    part_fail(p, status, "invalid-response");
    fanout_part_done(f);
    return;
  }
  cJSON *it;
  while ((it = cJSON_DetachItemFromArray(items, 0)))
    cJSON_AddItemToArray(p->items, it);
  int more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "hasNextPage"));
  if (more && p->page < f->c->gen->conf->catalogue_max_pages) {
    p->page++;
    part_fetch(f, p);
    return;
  }
  if (more)
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){.connector = p->conn->conf->name, .latency_ms = -1},
              "catalogue has more than catalogue_max_pages (%d) pages; the rest is left out",
              f->c->gen->conf->catalogue_max_pages);
  fanout_part_done(f);
}

static void part_fetch(fanout *f, part *p) {
  page_ctx *pc = malloc(sizeof *pc);
  char *query = okegw_asprintf("%s%spageSize=250&pageNumber=%d", f->base_query,
                               f->base_query[0] ? "&" : "", p->page);
  if (!pc || !query) {
    free(pc);
    free(query);
    part_fail(p, 503, "out-of-memory");
    fanout_part_done(f);
    return;
  }
  pc->f = f;
  pc->p = p;
  oke_request req = {.interaction = OKE_I_FLOW0_LIST_COMPONENTS,
                     .method = "GET",
                     .path = "/components",
                     .query = query,
                     .id = "",
                     .request_id = f->c->req->request_id};
  okegw_connector_deliver(p->conn, &req, NULL, on_page_done, pc);
  free(query);
}

/* The caller's query minus the parameters the gateway itself answers. */
static char *filter_query(const char *q) {
  okegw_buf b = {0};
  okegw_buf_append(&b, "", 0);
  const char *p = q;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    int skip = len == 0 || (len >= 9 && strncmp(p, "pageSize=", 9) == 0) ||
               (len >= 11 && strncmp(p, "pageNumber=", 11) == 0) ||
               (len >= 5 && strncmp(p, "sort=", 5) == 0);
    if (!skip) {
      if (b.len)
        okegw_buf_append(&b, "&", 1);
      okegw_buf_append(&b, p, len);
    }
    p += len;
    if (*p == '&')
      p++;
  }
  return b.data;
}

/* Every component names the test system it came from (otherCodes
 * x-testSystem), so TPL and DR can tell suppliers apart. */
static void tag_test_system(cJSON *item, const char *system) {
  cJSON *codes = cJSON_GetObjectItemCaseSensitive(item, "otherCodes");
  if (!cJSON_IsArray(codes)) {
    cJSON_DeleteItemFromObjectCaseSensitive(item, "otherCodes");
    codes = cJSON_AddArrayToObject(item, "otherCodes");
    if (!codes)
      return;
  }
  cJSON *e;
  cJSON_ArrayForEach(e, codes) {
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "codeType"));
    if (t && strcmp(t, "x-testSystem") == 0)
      return;
  }
  cJSON *entry = cJSON_CreateObject();
  cJSON_AddStringToObject(entry, "codeType", "x-testSystem");
  cJSON_AddStringToObject(entry, "code", system);
  cJSON_AddItemToArray(codes, entry);
}

static const char *lts_value(const cJSON *lts) {
  const cJSON *e;
  const char *first = NULL;
  cJSON_ArrayForEach(e, lts) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
    const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "language"));
    if (v && lang && strcmp(lang, "nl-NL") == 0)
      return v;
    if (v && !first)
      first = v;
  }
  return first ? first : "";
}

typedef struct sort_item {
  cJSON *item;
  const char *key;
  size_t seq;  /* stable order for equal keys */
  size_t part; /* index of the connector's part */
} sort_item;

/* Case-insensitive first, so "algebra" sorts next to "Algebra". */
static int cmp_items(const void *a, const void *b, void *desc) {
  const sort_item *x = a, *y = b;
  int r = strcasecmp(x->key, y->key);
  if (r == 0)
    r = strcmp(x->key, y->key);
  if (*(int *)desc)
    r = -r;
  if (r == 0)
    r = x->seq < y->seq ? -1 : x->seq > y->seq;
  return r;
}

/* The caller's sort keys, first key first: the YAML's sort is a list
 * ("name,-componentId", or sort= repeated); "name" when none is given. */
#define SORT_MAX 8
typedef struct sort_keys {
  int n;
  unsigned char by_id[SORT_MAX], desc[SORT_MAX];
} sort_keys;

static int parse_sort(const char *query, sort_keys *out) {
  out->n = 0;
  for (const char *p = query; p && *p;) {
    size_t len = strcspn(p, "&");
    if (len >= 5 && strncmp(p, "sort=", 5) == 0) {
      char v[256];
      if (len == 5 || okegw_url_decode(p + 5, len - 5, v, sizeof v, 1) < 0)
        return -1;
      for (const char *tok = v;;) {
        size_t tl = strcspn(tok, ",");
        int desc = tok[0] == '-';
        const char *name = tok + desc;
        size_t nl = tl - (size_t)desc;
        int by_id = nl == 11 && strncmp(name, "componentId", 11) == 0;
        if (!by_id && !(nl == 4 && strncmp(name, "name", 4) == 0))
          return -1;
        if (out->n < SORT_MAX) { /* later keys cannot change the order any more */
          out->by_id[out->n] = (unsigned char)by_id;
          out->desc[out->n] = (unsigned char)desc;
          out->n++;
        }
        if (!tok[tl])
          break;
        tok += tl + 1;
      }
    }
    p += len;
    if (*p == '&')
      p++;
  }
  if (!out->n) {
    out->n = 1;
    out->by_id[0] = out->desc[0] = 0;
  }
  return 0;
}

static int parse_page_params(okegw_call *c, int *page_size, int *page_number) {
  char v[32];
  *page_size = 10;
  *page_number = 1;
  if (okegw_query_get(c->req->query, "pageSize", v, sizeof v)) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || (n != 10 && n != 20 && n != 50 && n != 100 && n != 250)) {
      okegw_answer_problem(c, 400, NULL, "pageSize must be one of 10, 20, 50, 100, 250; got '%s'",
                           v);
      return -1;
    }
    *page_size = (int)n;
  }
  if (okegw_query_get(c->req->query, "pageNumber", v, sizeof v)) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || !*v || n < 1 || n > 1000000) {
      okegw_answer_problem(c, 400, NULL, "pageNumber must be a whole number from 1; got '%s'", v);
      return -1;
    }
    *page_number = (int)n;
  }
  sort_keys keys;
  if (parse_sort(c->req->query, &keys) < 0) {
    okegw_answer_problem(c, 400, NULL,
                         "sort must be a comma-separated list of name, -name, componentId, "
                         "-componentId");
    return -1;
  }
  return 0;
}

/* One component: UUIDs compare without regard to case (RFC 9562), so the
 * case forms of one id sort next to each other (cmp_items) and merge. */
static int same_component(const char *a, const char *b) {
  if (okegw_is_uuid(a) && okegw_is_uuid(b))
    return strcasecmp(a, b) == 0;
  return strcmp(a, b) == 0;
}

/* The components one connector's catalogue lost in the merge. */
typedef struct dup_count {
  size_t repeated;  /* listed again by the same connector */
  size_t elsewhere; /* kept by an earlier connector */
  const char *first_repeated, *first_elsewhere;
  size_t keeper; /* part that kept first_elsewhere */
} dup_count;

static void catalogue_merge(fanout *f) {
  okegw_call *c = f->c;
  okegw_gateway *g = c->g;
  int page_size, page_number;
  okegw_buf failed = {0};
  size_t nfailed = 0, total = 0;

  for (size_t i = 0; i < f->nparts; i++) {
    part *p = &f->parts[i];
    if (p->failed) {
      okegw_log(OKEGW_LOG_WARN,
                &(okegw_log_fields){.connector = p->conn->conf->name,
                                    .interaction = "flow0.okegw_list_components",
                                    .request_id = c->req->request_id,
                                    .latency_ms = -1},
                "catalogue of connector '%s' left out of the merged page: %s", p->conn->conf->name,
                p->reason);
      okegw_buf_printf(&failed, "%s%s=%s", nfailed ? ", " : "", p->conn->conf->name, p->reason);
      nfailed++;
    }
    total += (size_t)cJSON_GetArraySize(p->items);
  }
  if (nfailed && nfailed == f->nparts) {
    okegw_answer_problem(c, 502, NULL, "no test supplier answered the catalogue request: %s",
                         failed.data);
    okegw_buf_free(&failed);
    fanout_free(f);
    return;
  }
  if (parse_page_params(c, &page_size, &page_number) < 0) {
    okegw_buf_free(&failed);
    fanout_free(f);
    return;
  }

  /* Collect every component with its part, in connector order. */
  sort_item *all = calloc(total ? total : 1, sizeof *all);
  size_t n = 0;
  for (size_t i = 0; all && i < f->nparts; i++) {
    cJSON *it;
    cJSON_ArrayForEach(it, f->parts[i].items) {
      const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "componentId"));
      if (!id)
        continue; /* no identity, no route: cannot be offered */
      if (!okegw_authorise_sees_component(c, f->parts[i].conn, id))
        continue; /* a pilot shows production callers its pilot tests only */
      all[n] = (sort_item){.item = it, .key = id, .seq = n, .part = i};
      n++;
    }
  }
  /* Duplicates by sorting on id (O(n log n) for large catalogues): the
   * first connector keeps a component that several offer. */
  int asc = 0;
  qsort_r(all, n, sizeof *all, cmp_items, &asc);
  /* Equal ids sort together, each connector's run in one piece: a repeat
   * within one run is that connector's paging fault (pages that overlap or
   * never end), not a second owner. Counted, then logged once per connector. */
  dup_count *dups = calloc(f->nparts ? f->nparts : 1, sizeof *dups);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (kept && same_component(all[kept - 1].key, all[i].key)) {
      int own = all[i - 1].part == all[i].part && same_component(all[i - 1].key, all[i].key);
      dup_count *d = dups ? &dups[all[i].part] : NULL;
      if (d && own && !d->repeated++)
        d->first_repeated = all[i].key;
      if (d && !own && !d->elsewhere++) {
        d->first_elsewhere = all[i].key;
        d->keeper = all[kept - 1].part;
      }
      continue;
    }
    all[kept++] = all[i];
  }
  n = kept;
  for (size_t i = 0; dups && i < f->nparts; i++) {
    okegw_log_fields lf = {.connector = f->parts[i].conn->conf->name,
                           .interaction = "flow0.list_components",
                           .request_id = c->req->request_id,
                           .latency_ms = -1};
    if (dups[i].repeated)
      okegw_log(OKEGW_LOG_WARN, &lf,
                "catalogue of connector '%s' lists %zu component(s) more than once over its pages "
                "(first %s): its paging repeats itself; each is kept once",
                lf.connector, dups[i].repeated, dups[i].first_repeated);
    if (dups[i].elsewhere)
      okegw_log(OKEGW_LOG_WARN, &lf,
                "%zu component(s) of connector '%s' are offered by more than one connector "
                "(first %s, kept by '%s'); the first connector keeps each",
                dups[i].elsewhere, lf.connector, dups[i].first_elsewhere,
                f->parts[dups[i].keeper].conn->conf->name);
  }
  free(dups);
  /* Remember the owners, one store job per connector, under the id's
   * lower-case form (path ids and references are looked up so), with what
   * the zittingen of each component are checked by (its scale, extra time
   * and aids: state.c); the components themselves are passed on as their
   * supplier wrote them. */
  const char **ids = calloc(n ? n : 1, sizeof *ids);
  char(*low)[64] = calloc(n ? n : 1, sizeof *low);
  char **facts = calloc(n ? n : 1, sizeof *facts);
  for (size_t i = 0; ids && low && facts && i < f->nparts; i++) {
    size_t nids = 0;
    for (size_t k = 0; k < n; k++)
      if (all[k].part == i) {
        facts[nids] = okegw_facts_of_component(all[k].item);
        snprintf(low[k], sizeof low[k], "%s", all[k].key);
        okegw_uuid_lower(low[k]);
        ids[nids++] = strlen(all[k].key) < sizeof low[k] ? low[k] : all[k].key;
      }
    if (nids)
      okegw_store_put(g->store, "component", ids, nids, f->parts[i].conn->conf->name,
                      (const char *const *)facts, NULL, NULL);
    for (size_t k = 0; k < nids; k++) {
      free(facts[k]);
      facts[k] = NULL;
    }
  }
  free(low);
  free(ids);
  free(facts);

  for (size_t i = 0; i < n; i++)
    tag_test_system(all[i].item, f->parts[all[i].part].conn->conf->test_system);
  /* by the last key first: each pass keeps the order of the one before for
   * equal keys (seq), so the first key decides */
  sort_keys keys;
  parse_sort(c->req->query, &keys); /* checked by parse_page_params */
  for (int k = keys.n - 1; k >= 0; k--) {
    for (size_t i = 0; i < n; i++) {
      const cJSON *it = all[i].item;
      all[i].key = keys.by_id[k]
                       ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "componentId"))
                       : lts_value(cJSON_GetObjectItemCaseSensitive(it, "name"));
      all[i].seq = i;
    }
    int desc = keys.desc[k];
    qsort_r(all, n, sizeof *all, cmp_items, &desc);
  }

  size_t start = (size_t)(page_number - 1) * (size_t)page_size;
  cJSON *out = cJSON_CreateObject();
  cJSON_AddNumberToObject(out, "pageSize", page_size);
  cJSON_AddNumberToObject(out, "pageNumber", page_number);
  cJSON_AddBoolToObject(out, "hasPreviousPage", page_number > 1);
  cJSON_AddBoolToObject(out, "hasNextPage", start + (size_t)page_size < n);
  cJSON_AddNumberToObject(out, "totalPages",
                          n ? (double)((n + (size_t)page_size - 1) / (size_t)page_size) : 1);
  cJSON *items = cJSON_AddArrayToObject(out, "items");
  for (size_t i = start; i < n && i < start + (size_t)page_size; i++)
    cJSON_AddItemReferenceToArray(items, all[i].item);
  char *extra = nfailed ? okegw_asprintf("Okegw-Failed-Connectors: %s\r\n", failed.data) : NULL;
  okegw_answer_send_json(c, 200, out, extra);
  free(extra);
  cJSON_Delete(out);
  free(all);
  okegw_buf_free(&failed);
  fanout_free(f);
}

/* probe: every supplier is asked who owns a component, whatever its phase,
 * so that the owner's phase answers (authorise: 503 naming it), not an
 * "unknown component". */
static fanout *fanout_new(okegw_call *c, int probe) {
  fanout *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  f->c = c;
  f->parts = calloc(c->gen->nconns ? c->gen->nconns : 1, sizeof *f->parts);
  if (!f->parts) {
    free(f);
    return NULL;
  }
  /* the suppliers the caller sees: live and pilot ones, and for an
   * acceptance system the shadow ones too; those that carry production
   * work first, so that a component a shadow (a mirror) offers as well
   * stays with them */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < c->gen->nconns; i++) {
      okegw_connector *conn = c->gen->conns[i];
      int later = conn->conf->phase == OKEGW_PHASE_SHADOW || conn->conf->phase == OKEGW_PHASE_OFF;
      if (conn->conf->role != OKEGW_ROLE_TA || later != pass ||
          (!probe && !okegw_authorise_sees(c, conn)))
        continue;
      part *p = &f->parts[f->nparts++];
      p->conn = conn;
      p->page = 1;
      p->items = cJSON_CreateArray();
    }
  return f;
}

void okegw_route_components(okegw_call *c) {
  int ps, pn;
  if (parse_page_params(c, &ps, &pn) < 0)
    return;
  fanout *f = fanout_new(c, 0);
  if (!f || !(f->base_query = filter_query(c->req->query))) {
    if (f)
      fanout_free(f);
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return;
  }
  /* +1 so that parts answering synchronously cannot finish the merge
   * before every part has started. */
  f->pending = f->nparts + 1;
  for (size_t i = 0; i < f->nparts; i++)
    part_fetch(f, &f->parts[i]);
  fanout_part_done(f);
}

/* ---- flow 0: one component; finding an owner --------------------------- */

/* Which owner a probe prefers when several answer: one that carries
 * production work over a shadow (a mirror offers the same tests) or an off
 * one. */
static int owner_rank(const okegw_connector *c) {
  return c->conf->phase == OKEGW_PHASE_LIVE || c->conf->phase == OKEGW_PHASE_PILOT ? 2
         : c->conf->phase == OKEGW_PHASE_SHADOW                                    ? 1
                                                                                   : 0;
}

static void on_probe_done(void *ud, const okegw_answer *a) {
  fanout *f = ud;
  if (a && a->status == 200 && f->probe_owner && owner_rank(a->conn) > owner_rank(f->probe_owner)) {
    free(f->probe_body);
    free(f->probe_ctype);
    f->probe_body = f->probe_ctype = NULL;
    f->probe_owner = NULL;
  }
  if (a && a->status == 200 && !f->probe_owner) {
    f->probe_owner = a->conn;
    f->probe_body = okegw_strndup(a->body ? a->body : "", a->body_len);
    f->probe_len = a->body_len;
    f->probe_ctype = okegw_strdup(a->content_type ? a->content_type : "application/json");
  }
  if (--f->pending)
    return;
  okegw_call *c = f->c;
  if (f->probe_owner) {
    const char *id = f->probe_id;
    cJSON *j = cJSON_ParseWithLength(f->probe_body, f->probe_len);
    char *facts = j ? okegw_facts_of_component(j) : NULL;
    const char *fv[1] = {facts};
    okegw_store_put(c->g->store, "component", &id, 1, f->probe_owner->conf->name, fv, NULL, NULL);
    free(facts);
    cJSON_Delete(j);
  }
  f->probe_done(c, f->probe_owner, f->probe_ctype, f->probe_body, f->probe_len);
  fanout_free(f);
}

/* Asks every TA connector for component `id` (one the store does not
 * know yet, e.g. a catalogue the caller had before okegw). The first 200
 * wins and is recorded as the owner. */
void okegw_probe_component(okegw_call *c, const char *id, okegw_probe_done done) {
  fanout *f = fanout_new(c, 1);
  if (!f || !(f->probe_id = okegw_strdup(id))) {
    if (f)
      fanout_free(f);
    okegw_answer_problem(c, 503, NULL, "out of memory");
    return;
  }
  f->probe_done = done;
  f->pending = f->nparts + 1;
  char *path = okegw_asprintf("/components/%s", id);
  for (size_t i = 0; i < f->nparts; i++) {
    oke_request req = {.interaction = OKE_I_FLOW0_GET_COMPONENT,
                       .method = "GET",
                       .path = path ? path : "/components",
                       .query = "",
                       .id = id,
                       .request_id = c->req->request_id};
    okegw_connector_deliver(f->parts[i].conn, &req, NULL, on_probe_done, f);
  }
  free(path);
  on_probe_done(f, NULL);
}

/* okegw_answer_check for the answer a probe kept (its body only): 1 when it
 * breaks the profile and the owner's connector blocks such answers, with
 * *out the 502 problem body (free it); a warning is logged either way. */
static int probe_check(okegw_call *c, okegw_connector *owner, const char *body, size_t len,
                       char **out) {
  *out = NULL;
  if (owner->conf->validate_answers == OKEGW_CHECK_OFF || !len ||
      !okegw_validate_has_body(c->interaction, OKEGW_BODY_RESPONSE))
    return 0;
  cJSON *j = cJSON_ParseWithLength(body, len);
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, OKEGW_BODY_RESPONSE, j, NULL, &v);
  cJSON_Delete(j);
  if (n <= 0) {
    okegw_violations_free(&v);
    return 0;
  }
  int block = owner->conf->validate_answers == OKEGW_CHECK_BLOCK;
  okegw_call_note_violations(c, &v, "answer");
  okegw_log(OKEGW_LOG_WARN,
            &(okegw_log_fields){.connector = owner->conf->name,
                                .interaction = okegw_interaction_name(c->interaction),
                                .request_id = c->req->request_id,
                                .latency_ms = -1},
            "answer of connector '%s' breaks the OKE profile (%d violation(s), first %s: %s)%s",
            owner->conf->name, n, v.v[0].pointer, v.v[0].message,
            block ? ": blocked" : ": passed on (validate_answers = warn)");
  if (block)
    *out = okegw_violations_problem(&v, 502);
  okegw_violations_free(&v);
  return block;
}

static void on_component_probed(okegw_call *c, okegw_connector *owner, const char *ctype,
                                const char *body, size_t len) {
  if (!owner) {
    okegw_answer_problem(c, 404, NULL,
                         "component %s is not in the catalogue of any live test supplier", c->id);
    return;
  }
  /* the owner's phase decides, as for a component read routed by the store */
  if (okegw_authorise_target(c, owner) < 0)
    return;
  /* the probe's answer is relayed like any other: checked first */
  char *blocked = NULL;
  if (probe_check(c, owner, body, len, &blocked)) {
    okegw_answer_send(c, 502, OKEGW_PROBLEM_TYPE, blocked, blocked ? strlen(blocked) : 0, NULL);
    free(blocked);
    return;
  }
  okegw_answer_send(c, 200, ctype, body, len, NULL);
}

static void on_component_route(void *ud, const okegw_route *r) {
  okegw_call *c = ud;
  if (r->rc == OKEGW_STORE_OK) {
    okegw_route_to_named(c, r->connector);
  } else if (r->rc == OKEGW_STORE_NOTFOUND) {
    okegw_probe_component(c, c->id, on_component_probed);
  } else {
    okegw_answer_store_failed(c);
  }
}

void okegw_route_component(okegw_call *c) {
  if (okegw_store_lookup(c->g->store, "component", c->id, on_component_route, c) < 0)
    okegw_answer_store_down(c);
}
