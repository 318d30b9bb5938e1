/* Stateful OKE rules (see state.h). */
#include "pipeline/state.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "oke/interaction.h"
#include "oke/validate.h"
#include "pipeline/answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- facts ---------------------------------------------------------------- */

static void copy_str(const cJSON *o, const char *name, char *out, size_t outsz) {
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
  snprintf(out, outsz, "%s", v ? v : "");
}

static long get_long(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

static int get_tri(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

void okegw_facts_read(const char *text, okegw_facts *f) {
  memset(f, 0, sizeof *f);
  f->extra_max = -1;
  f->final = f->staff = -1;
  cJSON *o = text && *text ? cJSON_Parse(text) : NULL;
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return;
  }
  copy_str(o, "rvt", f->rvt, sizeof f->rvt);
  f->extra_max = get_long(o, "extraMax");
  copy_str(o, "needs", f->needs, sizeof f->needs);
  copy_str(o, "person", f->person, sizeof f->person);
  copy_str(o, "offering", f->offering, sizeof f->offering);
  copy_str(o, "type", f->type, sizeof f->type);
  copy_str(o, "result", f->result, sizeof f->result);
  f->final = get_tri(o, "final");
  f->staff = get_tri(o, "staff");
  f->canceled = get_tri(o, "canceled") == 1;
  cJSON_Delete(o);
}

/* The consumers entry "nl-test-admin" of o, or NULL. */
static const cJSON *nl_test_admin(const cJSON *o) {
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "consumers")) {
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "consumerKey"));
    if (k && strcmp(k, "nl-test-admin") == 0)
      return e;
  }
  return NULL;
}

/* Prints o (consumed) as facts text, NULL when it is empty. */
static char *facts_text(cJSON *o) {
  char *t = o && o->child ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (t && strlen(t) >= OKEGW_FACTS_MAX) {
    free(t);
    t = NULL;
  }
  return t;
}

static void add_str(cJSON *o, const char *name, const char *v) {
  if (v && *v)
    cJSON_AddStringToObject(o, name, v);
}

char *okegw_facts_of_component(const cJSON *component) {
  const cJSON *e = nl_test_admin(component);
  if (!e)
    return NULL;
  cJSON *o = cJSON_CreateObject();
  add_str(o, "rvt", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "resultValueType")));
  long xt = get_long(e, "additionalTestingTime");
  if (xt >= 0)
    cJSON_AddNumberToObject(o, "extraMax", (double)xt);
  const cJSON *needs = cJSON_GetObjectItemCaseSensitive(e, "availablePersonalNeeds"), *n;
  if (cJSON_IsArray(needs)) {
    okegw_buf b = {0};
    okegw_buf_append(&b, "|", 1);
    cJSON_ArrayForEach(n, needs) {
      if (cJSON_IsString(n))
        okegw_buf_printf(&b, "%s|", n->valuestring);
    }
    if (b.data && b.len < 300)
      cJSON_AddStringToObject(o, "needs", b.data);
    okegw_buf_free(&b);
  }
  return facts_text(o);
}

/* The id of a reference that is either an id string or an expanded object. */
static const char *ref_id(const cJSON *body, const char *field, const char *id_field) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, field);
  if (cJSON_IsString(v))
    return v->valuestring;
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, id_field));
}

char *okegw_facts_of_own(const okegw_call *c, const char *rvt) {
  cJSON *o = cJSON_CreateObject();
  if (c->interaction == OKE_I_FLOW1_PUT_OFFERING) {
    add_str(o, "rvt",
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->body, "resultValueType")));
  } else {
    add_str(o, "type",
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->body, "associationType")));
    add_str(o, "person", ref_id(c->body, "person", "personId"));
    add_str(o, "offering", ref_id(c->body, "offering", "offeringId"));
    add_str(o, "rvt", rvt);
  }
  return facts_text(o);
}

/* ---- judging a message ---------------------------------------------------- */

/* A log line about a rule and the resource it concerns. */
static okegw_log_fields rule_fields(const okegw_call *c, const char *rule) {
  return (okegw_log_fields){.caller = c->caller ? c->caller->conf->name : NULL,
                            .interaction = okegw_interaction_name(c->interaction),
                            .request_id = c->req->request_id,
                            .rule = rule,
                            .resource = c->id,
                            .latency_ms = -1};
}

/* A warning: forwarded all the same, flagged in the log and the audit row. */
static void flag(okegw_call *c, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void flag(okegw_call *c, const char *rule, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  okegw_log_fields f = rule_fields(c, rule);
  okegw_log(OKEGW_LOG_WARN, &f, "%s (forwarded: OKE accepts it, %s)", msg, rule);
  if (!strstr(c->rules, rule)) {
    size_t used = strlen(c->rules);
    snprintf(c->rules + used, sizeof c->rules - used, "%s%s", used ? "," : "", rule);
  }
}

static int refuse(okegw_call *c, int status, const char *rule, const char *pointer,
                  const char *detail) {
  okegw_violations v = {0};
  v.v = calloc(1, sizeof *v.v);
  char *body = NULL;
  if (v.v) {
    v.n = v.cap = 1;
    snprintf(v.v[0].pointer, sizeof v.v[0].pointer, "%s", pointer);
    snprintf(v.v[0].message, sizeof v.v[0].message, "%s", detail);
    v.v[0].rule = rule;
    body = okegw_violations_problem(&v, status);
    okegw_call_note_violations(c, &v, "request");
  }
  okegw_violations_free(&v);
  okegw_log_fields f = rule_fields(c, rule);
  okegw_log(OKEGW_LOG_INFO, &f, "refused: %s: %s", rule, detail);
  if (body)
    okegw_answer_send(c, status, "application/problem+json", body, strlen(body), NULL);
  else
    okegw_answer_problem(c, status, NULL, "%s: %s", rule, detail);
  free(body);
  return -1;
}

int okegw_state_deelname(okegw_call *c, const okegw_facts *z) {
  if (z->canceled) {
    char d[200];
    snprintf(d, sizeof d, "zitting %s is canceled: it takes no new deelnames", c->ref_id);
    return refuse(c, 409, "R18", "/offering", d);
  }
  const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->body, "role"));
  int staff = role && strcmp(role, "student") != 0;
  const cJSON *e = nl_test_admin(c->body);
  if (staff && e)
    return refuse(c, 400, "R27", "/consumers",
                  "a deelname of staff carries no association consumers");
  if (e && z->extra_max >= 0 && z->extra_max < 10000) {
    long want = get_long(e, "additionalTimeInMin");
    if (want > z->extra_max)
      flag(c, "R28", "deelname %s asks %ld minutes extra time; the test offers at most %ld", c->id,
           want, z->extra_max);
  }
  const cJSON *needs = e ? cJSON_GetObjectItemCaseSensitive(e, "personalNeeds") : NULL, *n;
  if (z->needs[0] && cJSON_IsArray(needs)) {
    cJSON_ArrayForEach(n, needs) {
      char key[80];
      snprintf(key, sizeof key, "|%s|", cJSON_GetStringValue(n) ? n->valuestring : "");
      if (!strstr(z->needs, key))
        flag(c, "R28", "deelname %s asks aid '%s', not among the test's availablePersonalNeeds",
             c->id, cJSON_GetStringValue(n) ? n->valuestring : "?");
    }
  }
  cJSON *o = cJSON_CreateObject();
  add_str(o, "rvt", z->rvt);
  if (z->extra_max >= 0)
    cJSON_AddNumberToObject(o, "extraMax", (double)z->extra_max);
  add_str(o, "needs", z->needs);
  add_str(o, "person", ref_id(c->body, "person", "personId"));
  cJSON_AddBoolToObject(o, "staff", staff);
  free(c->records.facts);
  c->records.facts = facts_text(o);
  return 0;
}

int okegw_state_result(okegw_call *c, const okegw_facts *d) {
  const cJSON *result = cJSON_GetObjectItemCaseSensitive(c->body, "result");
  if (c->interaction == OKE_I_FLOW5_PATCH_ASSOCIATION && d->type[0] &&
      strcmp(d->type, "componentOfferingAssociation") != 0) {
    char det[200];
    snprintf(det, sizeof det, "association %s is a %s: results travel only for test enrolments",
             c->id, d->type);
    return refuse(c, 400, "R19", "", det);
  }
  if (!cJSON_IsObject(result))
    return 0;
  const char *score = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "score"));
  if (score && d->rvt[0] && !okegw_score_fits(d->rvt, score)) {
    char det[200];
    snprintf(det, sizeof det, "score '%s' is not a value of the test's resultValueType %s", score,
             d->rvt);
    return refuse(c, 400, "R20", "/result/score", det);
  }
  if (d->staff == 1)
    flag(c, "R27", "a result for deelname %s, which is a staff member's", c->id);
  const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "state"));
  if (state && strcmp(d->result, "completed") == 0 && strcmp(state, "completed") != 0)
    flag(c, "R21", "result of %s goes back from completed to '%s'", c->id, state);
  const cJSON *e = nl_test_admin(result);
  int final = e ? cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "final")) : 0;
  if (d->final == 1 && !final)
    flag(c, "R21", "result of %s goes back from final to not final", c->id);
  return 0;
}

int okegw_state_attempt(okegw_call *c, const okegw_facts *original) {
  const char *person = ref_id(c->body, "person", "personId");
  const char *offering = ref_id(c->body, "offering", "offeringId");
  if (original->person[0] && person && strcasecmp(person, original->person) != 0)
    return refuse(c, 400, "R24", "/person",
                  "an extra attempt names the person of its original toetsinschrijving");
  if (original->offering[0] && offering && strcasecmp(offering, original->offering) != 0)
    return refuse(c, 400, "R24", "/offering",
                  "an extra attempt names the offering of its original toetsinschrijving");
  return 0;
}

/* Prepends "/seg" to the pointer in ptr (the path is built on the way
 * back out, so nothing is formatted unless something was found). */
static void prepend(char *ptr, size_t ptrsz, const cJSON *e, int index) {
  char seg[96];
  int n = e->string ? snprintf(seg, sizeof seg, "/%s", e->string)
                    : snprintf(seg, sizeof seg, "/%d", index);
  size_t have = strlen(ptr);
  if (n < 0 || have + (size_t)n + 1 > ptrsz)
    return;
  memmove(ptr + n, ptr, have + 1);
  memcpy(ptr, seg, (size_t)n);
}

/* The first document entry anywhere in j with a member other than the
 * three of the profile; its JSON pointer (below j) goes to ptr. */
static int inlined(const cJSON *j, char *ptr, size_t ptrsz) {
  int i = 0;
  for (const cJSON *e = j->child; e; e = e->next, i++) {
    if (e->string && strcmp(e->string, "documents") == 0 && cJSON_IsArray(e)) {
      int k = 0;
      for (const cJSON *d = e->child; d; d = d->next, k++)
        for (const cJSON *m = d->child; m; m = m->next)
          if (m->string && strcmp(m->string, "documentId") && strcmp(m->string, "documentType") &&
              strcmp(m->string, "documentName")) {
            snprintf(ptr, ptrsz, "/documents/%d/%s", k, m->string);
            return 1;
          }
    } else if ((cJSON_IsObject(e) || cJSON_IsArray(e)) && inlined(e, ptr, ptrsz)) {
      prepend(ptr, ptrsz, e, i);
      return 1;
    }
  }
  return 0;
}

int okegw_state_documents(okegw_call *c) {
  char ptr[300] = "";
  if (!c->body || !inlined(c->body, ptr, sizeof ptr))
    return 0;
  return refuse(c, 400, "R25", ptr,
                "documents are never inlined: a document entry carries documentId, documentType "
                "and documentName, and the file is fetched with GET /documents/{documentId}");
}

/* ---- what a delivery changes --------------------------------------------- */

static size_t facts_write(okegw_route_write *w, const char *kind, const char *id, cJSON *o) {
  char *t = facts_text(o);
  if (!t)
    return 0;
  *w = (okegw_route_write){.op = OKEGW_RW_FACTS};
  snprintf(w->kind, sizeof w->kind, "%s", kind);
  snprintf(w->id, sizeof w->id, "%s", id);
  snprintf(w->facts, sizeof w->facts, "%s", t);
  free(t);
  return 1;
}

size_t okegw_state_delivered(int interaction, const char *resource_id, const char *connector,
                             const cJSON *body, okegw_route_write *out, size_t room) {
  if (!body || !resource_id || room < 2)
    return 0;
  switch (interaction) {
  case OKE_I_FLOW3_PATCH_ASSOCIATION:
  case OKE_I_FLOW5_PATCH_ASSOCIATION: {
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(body, "result");
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "state"));
    if (!st)
      return 0;
    const cJSON *e = nl_test_admin(result);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "result", st);
    cJSON_AddBoolToObject(o, "final",
                          e && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "final")));
    return facts_write(
        out, interaction == OKE_I_FLOW3_PATCH_ASSOCIATION ? "association" : "toetsinschrijving",
        resource_id, o);
  }
  case OKE_I_FLOW2_PATCH_ASSOCIATION: {
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "state"));
    if (!st || strcmp(st, "canceled") != 0)
      return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "canceled", 1);
    size_t n = facts_write(out, "association", resource_id, o);
    /* flow 6 ends with the deelname (data minimisation) */
    out[n] = (okegw_route_write){.op = OKEGW_RW_UNLINK_PERSON};
    snprintf(out[n].id, sizeof out[n].id, "%s", resource_id);
    snprintf(out[n].connector, sizeof out[n].connector, "%s", connector);
    return n + 1;
  }
  case OKE_I_FLOW2_PATCH_OFFERING: {
    const cJSON *e = nl_test_admin(body);
    const char *st =
        e ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "offeringState")) : NULL;
    if (!st || strcmp(st, "canceled") != 0)
      return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "canceled", 1);
    return facts_write(out, "offering", resource_id, o);
  }
  }
  return 0;
}
