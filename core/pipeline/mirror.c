/* Mirrors (see mirror.h). */
#include "pipeline/mirror.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "oke/interaction.h"
#include "pipeline/workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_MAX 32 /* differences kept per answer; the count says how many there were */

typedef struct copy {
  okegw_mirror *m;
  char name[OKEGW_NAME_MAX];
  int status; /* 0: no answer (not sent, or not stored) */
  cJSON *body;
  double started, latency_ms;
  long long delivery_id;
} copy;

struct okegw_mirror {
  size_t pending; /* the live answer and the copies not in yet */
  okegw_store *store;
  char *request_id, *interaction, *caller, *live, *method, *path, *resource_id;
  int live_status;
  cJSON *live_body;
  size_t n;
  copy *copies;
};

/* ---- differences ---------------------------------------------------------- */

typedef struct diff_out {
  cJSON *list;
  size_t max, count;
} diff_out;

static void add_diff(diff_out *d, const char *pointer, const char *change) {
  if (d->count++ >= d->max)
    return;
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return;
  cJSON_AddStringToObject(o, "pointer", pointer);
  cJSON_AddStringToObject(o, "change", change);
  cJSON_AddItemToArray(d->list, o);
}

/* ptr + "/" + key as a JSON pointer token (~ and / escaped, RFC 6901). */
static size_t push_token(char *ptr, size_t len, size_t cap, const char *key) {
  if (len + 2 >= cap)
    return len;
  ptr[len++] = '/';
  for (const char *k = key; *k && len + 3 < cap; k++) {
    if (*k == '~' || *k == '/') {
      ptr[len++] = '~';
      ptr[len++] = *k == '~' ? '0' : '1';
    } else {
      ptr[len++] = *k;
    }
  }
  ptr[len] = '\0';
  return len;
}

static int kind(const cJSON *j) {
  int t = j->type & 0xff;
  return t == cJSON_True ? cJSON_False : t; /* one kind, boolean */
}

static void diff(const cJSON *a, const cJSON *b, char *ptr, size_t len, size_t cap, diff_out *d) {
  if (!a || !b) {
    if (a || b)
      add_diff(d, ptr, a ? "only live" : "only shadow");
    return;
  }
  if (kind(a) != kind(b)) {
    add_diff(d, ptr, "type");
    return;
  }
  const cJSON *e;
  char idx[24];
  switch (kind(a)) {
  case cJSON_Object:
    cJSON_ArrayForEach(e, a) {
      size_t l = push_token(ptr, len, cap, e->string ? e->string : "");
      diff(e, cJSON_GetObjectItemCaseSensitive(b, e->string), ptr, l, cap, d);
      ptr[len] = '\0';
    }
    cJSON_ArrayForEach(e, b) {
      if (cJSON_GetObjectItemCaseSensitive(a, e->string))
        continue;
      push_token(ptr, len, cap, e->string ? e->string : "");
      add_diff(d, ptr, "only shadow");
      ptr[len] = '\0';
    }
    break;
  case cJSON_Array: {
    int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
    for (int i = 0; i < (na > nb ? na : nb); i++) {
      snprintf(idx, sizeof idx, "%d", i);
      size_t l = push_token(ptr, len, cap, idx);
      diff(cJSON_GetArrayItem(a, i), cJSON_GetArrayItem(b, i), ptr, l, cap, d);
      ptr[len] = '\0';
    }
    break;
  }
  case cJSON_Number:
    if (a->valuedouble != b->valuedouble)
      add_diff(d, ptr, "value");
    break;
  case cJSON_String:
    if (strcmp(a->valuestring, b->valuestring) != 0)
      add_diff(d, ptr, "value");
    break;
  case cJSON_False:
    if ((a->type & 0xff) != (b->type & 0xff))
      add_diff(d, ptr, "value");
    break;
  default: break; /* null, raw */
  }
}

char *okegw_mirror_diff(int live_status, const cJSON *live, int shadow_status, const cJSON *shadow,
                        size_t max, size_t *count) {
  diff_out d = {.list = cJSON_CreateArray(), .max = max};
  *count = 0;
  if (!d.list)
    return NULL;
  if (live_status != shadow_status) {
    char change[64];
    snprintf(change, sizeof change, "status: live %d, shadow %d", live_status, shadow_status);
    add_diff(&d, "", change);
  } else if (live_status >= 200 && live_status < 300) {
    /* the bodies of two failures say little about the shadow supplier */
    char ptr[512] = "";
    diff(live, shadow, ptr, 0, sizeof ptr, &d);
  }
  *count = d.count;
  char *text = d.count ? okegw_json_print(d.list) : NULL;
  cJSON_Delete(d.list);
  return text;
}

/* ---- the copies ------------------------------------------------------------ */

static void mirror_free(okegw_mirror *m) {
  for (size_t i = 0; i < m->n; i++)
    cJSON_Delete(m->copies[i].body);
  cJSON_Delete(m->live_body);
  free(m->copies);
  free(m->request_id);
  free(m->interaction);
  free(m->caller);
  free(m->live);
  free(m->method);
  free(m->path);
  free(m->resource_id);
  free(m);
}

/* Both answers are in: what differs is logged and audited per copy. */
static void compare(okegw_mirror *m) {
  for (size_t i = 0; i < m->n; i++) {
    copy *k = &m->copies[i];
    size_t count = 0;
    char *d = okegw_mirror_diff(m->live_status, m->live_body, k->status, k->body, DIFF_MAX, &count);
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = k->name;
    f.interaction = m->interaction;
    f.request_id = m->request_id;
    f.resource = m->resource_id;
    f.status = k->status;
    okegw_log(count ? OKEGW_LOG_WARN : OKEGW_LOG_INFO, &f,
              "mirror: connector '%s' answered %d, connector '%s' (live) %d: %zu difference(s)%s%s",
              k->name, k->status, m->live, m->live_status, count, d ? " " : "", d ? d : "");
    okegw_audit_rec r = {.request_id = m->request_id,
                         .interaction = m->interaction,
                         .caller = m->caller,
                         .connector = k->name,
                         .method = m->method,
                         .path = m->path,
                         .resource_id = m->resource_id,
                         .event = "mirror",
                         .status = k->status,
                         .latency_ms = k->latency_ms,
                         .delivery_id = k->delivery_id,
                         .phase = "shadow",
                         .differences = d ? d : "[]"};
    okegw_store_audit(m->store, &r);
    free(d);
  }
}

static void release(okegw_mirror *m) {
  if (--m->pending)
    return;
  compare(m);
  mirror_free(m);
}

static void copy_done(copy *k, int status, const cJSON *body) {
  k->status = status;
  k->body = body ? cJSON_Duplicate(body, 1) : NULL;
  k->latency_ms = okegw_now_ms() - k->started;
  release(k->m);
}

static void on_copy_answer(void *ud, const okegw_answer *a) {
  copy_done(ud, a->status, okegw_answer_json(a));
}

static void on_copy_pushed(void *ud, const okegw_push_result *r) {
  copy *k = ud;
  if (r->rc != OKEGW_STORE_OK) {
    copy_done(k, 0, NULL);
    return;
  }
  k->delivery_id = r->id;
  /* no answer within its delivery_wait_ms: under way, as the sender would
   * have heard (202) */
  copy_done(k, r->answer ? r->answer->status : 202,
            r->answer ? okegw_answer_json(r->answer) : NULL);
}

void okegw_mirror_start(okegw_call *c, const oke_request *req, int push) {
  const char *live = c->target->conf->name;
  size_t n = 0;
  for (size_t i = 0; i < c->gen->nconns; i++) {
    const okegw_connector *s = c->gen->conns[i];
    n += s->ready && s->conf->phase == OKEGW_PHASE_SHADOW && s->conf->mirror_of &&
         strcmp(s->conf->mirror_of, live) == 0;
  }
  if (!n)
    return;
  okegw_mirror *m = calloc(1, sizeof *m);
  if (!m || !(m->copies = calloc(n, sizeof *m->copies))) {
    free(m);
    okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = live, .latency_ms = -1},
              "out of memory: request not mirrored");
    return;
  }
  m->store = c->g->store;
  m->request_id = okegw_strdup(req->request_id ? req->request_id : "");
  m->interaction = okegw_strdup(okegw_interaction_name(c->interaction));
  m->caller = c->caller ? okegw_strdup(c->caller->conf->name) : NULL;
  m->live = okegw_strdup(live);
  m->method = okegw_strdup(req->method);
  m->path = okegw_strdup(c->req->path);
  m->resource_id = okegw_strdup(c->id);
  m->n = n;
  m->pending = n + 1; /* the copies, and the live answer */
  c->mirror = m;
  char *resource = push ? okegw_asprintf(OKEGW_MIRROR_PREFIX "%s", req->path) : NULL;
  for (size_t i = 0, k = 0; i < c->gen->nconns && k < n; i++) {
    okegw_connector *s = c->gen->conns[i];
    if (!(s->ready && s->conf->phase == OKEGW_PHASE_SHADOW && s->conf->mirror_of &&
          strcmp(s->conf->mirror_of, live) == 0))
      continue;
    copy *cp = &m->copies[k++];
    cp->m = m;
    cp->started = okegw_now_ms();
    snprintf(cp->name, sizeof cp->name, "%s", s->conf->name);
    if (!push) {
      okegw_connector_deliver(s, req, c->body, on_copy_answer, cp);
      continue;
    }
    /* no caller: the copy is not the sender's to read (GET /deliveries) */
    okegw_push p = {.interaction = c->interaction,
                    .resource_id = req->id,
                    .resource = resource,
                    .method = req->method,
                    .path = req->path,
                    .query = req->query,
                    .content_type = req->content_type,
                    .body = req->body,
                    .body_len = req->body_len,
                    .request_id = req->request_id};
    /* copies never fill the outbox: a quarter of it stays for live pushes.
     * The copy's delivery may outlast the live call and its parsed body
     * (its retries, another loop's thread): the outbox parses its own. */
    if (!resource || okegw_gateway_outbox_room(c->g) <= c->gen->conf->outbox_max_open / 4 ||
        okegw_gateway_push(c->g, s, &p, NULL, on_copy_pushed, cp) < 0) {
      okegw_log(OKEGW_LOG_WARN,
                &(okegw_log_fields){
                    .connector = cp->name, .request_id = req->request_id, .latency_ms = -1},
                "mirror: no copy for connector '%s' (the outbox is three quarters full, or the "
                "store failed); the live push goes on",
                cp->name);
      copy_done(cp, 0, NULL);
    }
  }
  free(resource);
}

void okegw_mirror_live(okegw_call *c, int status, const cJSON *body) {
  okegw_mirror *m = c->mirror;
  if (!m)
    return;
  c->mirror = NULL;
  m->live_status = status;
  m->live_body = body ? cJSON_Duplicate(body, 1) : NULL;
  release(m);
}
