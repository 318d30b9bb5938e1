/* Gathers the acceptance evidence (see evidence.h). */
#include "report/evidence.h"
#include "base/json.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing list of latencies, for percentiles. */
typedef struct samples {
  double *v;
  size_t n, cap;
} samples;

static int samples_add(samples *s, double x) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    double *v = realloc(s->v, cap * sizeof *v);
    if (!v)
      return -1;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = x;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0-100) of sorted samples, as a number member
 * (null when there are none). */
static int add_percentile(cJSON *o, const char *name, const samples *s, double p) {
  if (!s->n)
    return cJSON_AddNullToObject(o, name) ? 0 : -1;
  size_t rank = (size_t)((p / 100.0) * (double)s->n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > s->n)
    rank = s->n;
  double v = (double)(long long)(s->v[rank - 1] * 10 + 0.5) / 10; /* 0.1 ms */
  return cJSON_AddNumberToObject(o, name, v) ? 0 : -1;
}

/* Per interaction: counts and latencies. */
typedef struct ix_stats {
  char id[64];
  int flow;
  long exchanges, status[4]; /* 2xx 3xx 4xx 5xx */
  long violations, mapping_errors;
  cJSON *by_rule;  /* {rule: {count, pointer}} */
  cJSON *examples; /* mapping error messages, at most 3 */
  samples lat;
} ix_stats;

typedef struct gather {
  ix_stats *ix;
  size_t nix, capix;
  samples all;
  long exchanges, errors, violations, mapping_errors;
  long compared, differing;
  cJSON *rules;    /* {rule: {count, pointer, interaction}} over all */
  cJSON *mapping;  /* {where: {count, message, interaction}} */
  cJSON *fields;   /* {pointer: count} of shadow differences */
  cJSON *daily;    /* {day: [exchanges, errors]} */
  cJSON *versions; /* {hash: {exchanges, first, last}} */
  int oom;
} gather;

static ix_stats *ix_for(gather *g, const char *id) {
  for (size_t i = 0; i < g->nix; i++)
    if (strcmp(g->ix[i].id, id) == 0)
      return &g->ix[i];
  if (g->nix == g->capix) {
    size_t cap = g->capix ? g->capix * 2 : 16;
    ix_stats *v = realloc(g->ix, cap * sizeof *v);
    if (!v)
      return NULL;
    g->ix = v;
    g->capix = cap;
  }
  ix_stats *x = &g->ix[g->nix];
  memset(x, 0, sizeof *x);
  snprintf(x->id, sizeof x->id, "%s", id);
  x->flow = strncmp(id, "flow", 4) == 0 && id[4] >= '0' && id[4] <= '9' ? id[4] - '0' : -1;
  x->by_rule = cJSON_CreateObject();
  x->examples = cJSON_CreateArray();
  if (!x->by_rule || !x->examples) {
    cJSON_Delete(x->by_rule);
    cJSON_Delete(x->examples);
    return NULL;
  }
  g->nix++;
  return x;
}

/* counter[key].count++ (creating {count: 0, ...extra} first). */
static cJSON *bump(cJSON *counter, const char *key) {
  cJSON *e = cJSON_GetObjectItemCaseSensitive(counter, key);
  if (!e) {
    e = cJSON_CreateObject();
    if (!e || !cJSON_AddNumberToObject(e, "count", 0) || !cJSON_AddItemToObject(counter, key, e)) {
      cJSON_Delete(e);
      return NULL;
    }
  }
  cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "count");
  cJSON_SetNumberValue(n, n->valuedouble + 1);
  return e;
}

/* Sets member name to the string v unless it is there already. */
static int keep_first(cJSON *o, const char *name, const char *v) {
  if (cJSON_GetObjectItemCaseSensitive(o, name))
    return 0;
  return cJSON_AddStringToObject(o, name, v ? v : "") ? 0 : -1;
}

static const char *str(const cJSON *row, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *row, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, name);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* One rule broken in the row: counted once per interaction and overall. */
static int note_rule(gather *g, ix_stats *x, const char *rule, const char *pointer) {
  cJSON *a = bump(x->by_rule, rule), *b = bump(g->rules, rule);
  if (!a || !b || keep_first(a, "pointer", pointer) < 0 || keep_first(b, "pointer", pointer) < 0 ||
      keep_first(b, "interaction", x->id) < 0)
    return -1;
  return 0;
}

/* The rules of a row: its violations (with pointers) and its flagged rules
 * ("R21,R28", forwarded with a warning). Returns how many, -1 on OOM. */
static int note_rules(gather *g, ix_stats *x, const cJSON *row) {
  int n = 0;
  const cJSON *v, *viol = cJSON_GetObjectItemCaseSensitive(row, "violations");
  cJSON_ArrayForEach(v, viol) {
    const char *rule = str(v, "rule");
    if (note_rule(g, x, rule && *rule ? rule : "profile", str(v, "pointer")) < 0)
      return -1;
    n++;
  }
  const char *flagged = str(row, "rules");
  for (const char *p = flagged; p && *p;) {
    size_t len = strcspn(p, ",");
    char rule[16];
    snprintf(rule, sizeof rule, "%.*s", (int)(len < 15 ? len : 15), p);
    if (*rule && note_rule(g, x, rule, NULL) < 0)
      return -1;
    n += *rule != 0;
    p += len + (p[len] == ',');
  }
  return n;
}

/* "ta.lua:12: message" -> where "ta.lua:12", message. */
static int note_mapping_error(gather *g, ix_stats *x, const char *text) {
  char where[160];
  const char *msg = text;
  const char *c1 = strchr(text, ':');
  const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (c1 && c2 && c2 > c1 + 1 && strspn(c1 + 1, "0123456789") == (size_t)(c2 - c1 - 1)) {
    snprintf(where, sizeof where, "%.*s", (int)(c2 - text), text);
    msg = c2 + 1 + (c2[1] == ' ');
  } else {
    snprintf(where, sizeof where, "%s", "(mapping)");
  }
  cJSON *e = bump(g->mapping, where);
  if (!e || keep_first(e, "message", msg) < 0 || keep_first(e, "interaction", x->id) < 0)
    return -1;
  if (cJSON_GetArraySize(x->examples) < 3 &&
      !cJSON_AddItemToArray(x->examples, cJSON_CreateString(text)))
    return -1;
  x->mapping_errors++;
  g->mapping_errors++;
  return 0;
}

static int on_row(void *ud, const cJSON *row) {
  gather *g = ud;
  const char *event = str(row, "event");
  const char *interaction = str(row, "interaction");
  if (!interaction)
    return 0;
  if (event && strcmp(event, "mirror") == 0) { /* a shadow copy compared */
    g->compared++;
    const cJSON *d, *diffs = cJSON_GetObjectItemCaseSensitive(row, "differences");
    if (cJSON_GetArraySize(diffs) > 0)
      g->differing++;
    cJSON_ArrayForEach(d, diffs) {
      const char *p = str(d, "pointer");
      if (!bump(g->fields, p ? p : ""))
        return -1;
    }
    return 0;
  }
  ix_stats *x = ix_for(g, interaction);
  if (!x)
    return -1;
  const char *merr = str(row, "mapping_error");
  if (merr && note_mapping_error(g, x, merr) < 0)
    return -1;
  if (event && strcmp(event, "delivery") == 0)
    return 0; /* an attempt of a push: its exchange is the request row */
  int status = (int)num(row, "status");
  double ms = num(row, "latency_ms");
  x->exchanges++;
  g->exchanges++;
  if (status >= 200 && status < 600)
    x->status[status / 100 - 2]++;
  int nrules = note_rules(g, x, row);
  if (nrules < 0)
    return -1;
  int viol = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(row, "violations")) > 0;
  x->violations += viol;
  g->violations += viol;
  int error = status >= 500 || viol || merr;
  g->errors += error;
  if (samples_add(&x->lat, ms) < 0 || samples_add(&g->all, ms) < 0)
    return -1;
  const char *at = str(row, "at");
  char day[11] = "";
  if (at && strlen(at) >= 10)
    snprintf(day, sizeof day, "%.10s", at);
  cJSON *d = cJSON_GetObjectItemCaseSensitive(g->daily, day);
  if (!d) {
    d = cJSON_CreateIntArray((const int[]){0, 0}, 2);
    if (!d || !cJSON_AddItemToObject(g->daily, day, d)) {
      cJSON_Delete(d);
      return -1;
    }
  }
  cJSON_SetNumberValue(d->child, d->child->valuedouble + 1);
  cJSON_SetNumberValue(d->child->next, d->child->next->valuedouble + error);
  const char *hash = str(row, "mapping");
  if (hash) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(g->versions, hash);
    if (!v) {
      v = cJSON_CreateObject();
      if (!v || !cJSON_AddItemToObject(g->versions, hash, v) ||
          !cJSON_AddNumberToObject(v, "exchanges", 0) || !cJSON_AddStringToObject(v, "first", at))
        return -1;
    }
    cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "exchanges");
    cJSON_SetNumberValue(n, n->valuedouble + 1);
    cJSON_DeleteItemFromObjectCaseSensitive(v, "last");
    if (!cJSON_AddStringToObject(v, "last", at))
      return -1;
  }
  return 0;
}

static int by_id(const void *a, const void *b) {
  return strcmp(((const ix_stats *)a)->id, ((const ix_stats *)b)->id);
}

/* {"2xx": n, ...} */
static cJSON *status_classes(const long st[4]) {
  static const char *const names[] = {"2xx", "3xx", "4xx", "5xx"};
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < 4; i++)
    if (!cJSON_AddNumberToObject(o, names[i], (double)st[i])) {
      cJSON_Delete(o);
      return NULL;
    }
  return o;
}

static cJSON *latency(samples *s) {
  if (s->n) /* qsort takes no NULL array, even empty */
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
  cJSON *o = cJSON_CreateObject();
  if (o && (add_percentile(o, "p50Ms", s, 50) < 0 || add_percentile(o, "p99Ms", s, 99) < 0)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static int add_interactions(cJSON *doc, gather *g) {
  cJSON *all = cJSON_AddObjectToObject(doc, "interactions");
  if (!all)
    return -1;
  if (g->nix)
    qsort(g->ix, g->nix, sizeof *g->ix, by_id);
  for (size_t i = 0; i < g->nix; i++) {
    ix_stats *x = &g->ix[i];
    cJSON *o = cJSON_AddObjectToObject(all, x->id), *v = NULL, *m = NULL;
    if (!o ||
        !(x->flow >= 0 ? cJSON_AddNumberToObject(o, "flow", x->flow)
                       : cJSON_AddNullToObject(o, "flow")) ||
        !cJSON_AddNumberToObject(o, "exchanges", (double)x->exchanges) ||
        !cJSON_AddItemToObject(o, "status", status_classes(x->status)) ||
        !(v = cJSON_AddObjectToObject(o, "violations")) ||
        !cJSON_AddNumberToObject(v, "count", (double)x->violations) ||
        !cJSON_AddItemToObject(v, "byRule", x->by_rule))
      return -1;
    x->by_rule = NULL; /* owned by the document now */
    if (!(m = cJSON_AddObjectToObject(o, "mappingErrors")) ||
        !cJSON_AddNumberToObject(m, "count", (double)x->mapping_errors) ||
        !cJSON_AddItemToObject(m, "examples", x->examples))
      return -1;
    x->examples = NULL;
    if (!cJSON_AddItemToObject(o, "latency", latency(&x->lat)))
      return -1;
  }
  return 0;
}

/* A counter object {key: {count, ...}} as an array of {keyname: key,
 * count, ...}, most frequent first (by "count", or "exchanges"). */
static double weight(const cJSON *o) {
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "count");
  if (!n)
    n = cJSON_GetObjectItemCaseSensitive(o, "exchanges");
  return cJSON_IsNumber(n) ? n->valuedouble : 0;
}

static int cmp_count(const void *a, const void *b) {
  double x = weight(*(cJSON *const *)a), y = weight(*(cJSON *const *)b);
  return x < y ? 1 : x > y ? -1 : 0;
}

static cJSON *ranked(cJSON *counter, const char *keyname) {
  int n = cJSON_GetArraySize(counter);
  cJSON **items = calloc(n ? (size_t)n : 1, sizeof *items);
  cJSON *out = cJSON_CreateArray();
  if (!items || !out)
    goto fail;
  int i = 0;
  for (cJSON *e = counter->child; e; e = e->next) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !(items[i++] = o) || !cJSON_AddStringToObject(o, keyname, e->string))
      goto fail;
    if (cJSON_IsObject(e)) {
      for (cJSON *m = e->child; m; m = m->next)
        if (!cJSON_AddItemToObject(o, m->string, cJSON_Duplicate(m, 1)))
          goto fail;
    } else if (!cJSON_AddNumberToObject(o, "count", e->valuedouble)) {
      goto fail;
    }
  }
  qsort(items, (size_t)n, sizeof *items, cmp_count);
  for (i = 0; i < n; i++) {
    cJSON_AddItemToArray(out, items[i]);
    items[i] = NULL;
  }
  free(items);
  return out;
fail:
  for (i = 0; items && i < n; i++)
    cJSON_Delete(items[i]);
  free(items);
  cJSON_Delete(out);
  return NULL;
}

/* ---- deliveries ---------------------------------------------------------- */

typedef struct dlv_count {
  const char *name;
  long by_state[OKEGW_DLV_NSTATES];
  cJSON *dead;
} dlv_count;

static int on_delivery(void *ud, const okegw_delivery_rec *r) {
  dlv_count *d = ud;
  if (!(r->connector && strcmp(r->connector, d->name) == 0) &&
      !(r->caller && strcmp(r->caller, d->name) == 0))
    return 0;
  if ((int)r->state >= 0 && r->state < OKEGW_DLV_NSTATES)
    d->by_state[r->state]++;
  if (r->state == OKEGW_DLV_DEAD && cJSON_GetArraySize(d->dead) < 10) {
    cJSON *j = okegw_delivery_json(r, 0);
    if (!j || !cJSON_AddItemToArray(d->dead, j)) {
      cJSON_Delete(j);
      return -1;
    }
  }
  return 0;
}

static int add_deliveries(okegw_store *s, cJSON *doc, const char *name, char **err) {
  dlv_count d = {.name = name, .dead = cJSON_CreateArray()};
  if (!d.dead || !cJSON_AddItemToObject(doc, "deadLetters", d.dead)) {
    cJSON_Delete(d.dead);
    return OKEGW_STORE_ERROR;
  }
  okegw_delivery_filter f = {.connector = NULL, .state = -1};
  int rc = okegw_store_deliveries_list(s, &f, on_delivery, &d, err);
  if (rc != OKEGW_STORE_OK)
    return rc;
  cJSON *o = cJSON_AddObjectToObject(doc, "deliveries");
  for (int i = 0; o && i < OKEGW_DLV_NSTATES; i++)
    if (!cJSON_AddNumberToObject(o, okegw_delivery_state_name((okegw_delivery_state)i),
                                 (double)d.by_state[i]))
      return OKEGW_STORE_ERROR;
  return o ? OKEGW_STORE_OK : OKEGW_STORE_ERROR;
}

/* ---- phases -------------------------------------------------------------- */

static int on_phase(void *ud, const okegw_phase_rec *r) {
  cJSON *j = okegw_phase_json(r);
  if (!j || !cJSON_AddItemToArray(ud, j)) {
    cJSON_Delete(j);
    return -1;
  }
  return 0;
}

/* ---- the document ---------------------------------------------------------- */

static int add_time(cJSON *o, const char *name, long long ms) {
  char t[40];
  okegw_format_rfc3339(ms, 1, t, sizeof t);
  return cJSON_AddStringToObject(o, name, t) ? 0 : -1;
}

static void gather_free(gather *g) {
  for (size_t i = 0; i < g->nix; i++) {
    cJSON_Delete(g->ix[i].by_rule);
    cJSON_Delete(g->ix[i].examples);
    free(g->ix[i].lat.v);
  }
  free(g->ix);
  free(g->all.v);
  cJSON_Delete(g->rules);
  cJSON_Delete(g->mapping);
  cJSON_Delete(g->fields);
  cJSON_Delete(g->daily);
  cJSON_Delete(g->versions);
}

static int add_summary(cJSON *doc, gather *g) {
  cJSON *t = cJSON_AddObjectToObject(doc, "totals");
  cJSON *lat = latency(&g->all);
  if (!t || !lat || !cJSON_AddNumberToObject(t, "exchanges", (double)g->exchanges) ||
      !cJSON_AddNumberToObject(t, "errors", (double)g->errors) ||
      !cJSON_AddNumberToObject(t, "violations", (double)g->violations) ||
      !cJSON_AddNumberToObject(t, "mappingErrors", (double)g->mapping_errors) ||
      !cJSON_AddItemToObject(t, "p50Ms", cJSON_DetachItemFromObject(lat, "p50Ms")) ||
      !cJSON_AddItemToObject(t, "p99Ms", cJSON_DetachItemFromObject(lat, "p99Ms"))) {
    cJSON_Delete(lat);
    return -1;
  }
  cJSON_Delete(lat);
  if (add_interactions(doc, g) < 0 ||
      !cJSON_AddItemToObject(doc, "violations", ranked(g->rules, "rule")) ||
      !cJSON_AddItemToObject(doc, "mappingErrors", ranked(g->mapping, "where")))
    return -1;
  cJSON *d = cJSON_AddObjectToObject(doc, "differences");
  if (!d || !cJSON_AddNumberToObject(d, "compared", (double)g->compared) ||
      !cJSON_AddNumberToObject(d, "differing", (double)g->differing) ||
      !(g->compared ? cJSON_AddNumberToObject(d, "rate", (double)g->differing / (double)g->compared)
                    : cJSON_AddNullToObject(d, "rate")) ||
      !cJSON_AddItemToObject(d, "byField", ranked(g->fields, "pointer")))
    return -1;
  cJSON *daily = cJSON_AddArrayToObject(doc, "daily");
  for (cJSON *e = g->daily->child; daily && e; e = e->next) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(daily, o) || !cJSON_AddStringToObject(o, "day", e->string) ||
        !cJSON_AddNumberToObject(o, "exchanges", e->child->valuedouble) ||
        !cJSON_AddNumberToObject(o, "errors", e->child->next->valuedouble))
      return -1;
  }
  cJSON *versions = ranked(g->versions, "hash");
  return daily && versions && cJSON_AddItemToObject(doc, "mappingVersions", versions) ? 0 : -1;
}

int okegw_evidence_gather(okegw_store *s, const okegw_conf_connector *cc,
                          const okegw_evidence_window *w, cJSON **out, char **err) {
  *out = NULL;
  gather g = {.rules = cJSON_CreateObject(),
              .mapping = cJSON_CreateObject(),
              .fields = cJSON_CreateObject(),
              .daily = cJSON_CreateObject(),
              .versions = cJSON_CreateObject()};
  cJSON *doc = cJSON_CreateObject(), *runs = NULL, *phases = NULL;
  int rc = OKEGW_STORE_ERROR;
  if (!doc || !g.rules || !g.mapping || !g.fields || !g.daily || !g.versions)
    goto done;
  long long now = okegw_wall_ms();
  if (!cJSON_AddStringToObject(doc, "format", "okegw-acceptance-report/1") ||
      add_time(doc, "generatedAt", now) < 0 ||
      !cJSON_AddStringToObject(doc, "connector", cc->name) ||
      !cJSON_AddStringToObject(doc, "role", okegw_role_name(cc->role)) ||
      !cJSON_AddStringToObject(doc, "phase", okegw_phase_name(cc->phase)) ||
      okegw_json_add_text(doc, "mirrorOf", cc->mirror_of, 0) < 0 ||
      !cJSON_AddStringToObject(doc, "since", w->since) ||
      (w->until ? !cJSON_AddStringToObject(doc, "until", w->until)
                : add_time(doc, "until", now) < 0))
    goto done;
  okegw_audit_filter f = {.connector = cc->name, .since = w->since, .until = w->until};
  rc = okegw_store_audit_query(s, &f, on_row, &g, err);
  if (rc != OKEGW_STORE_OK)
    goto done;
  rc = OKEGW_STORE_ERROR;
  if (add_summary(doc, &g) < 0)
    goto done;
  if ((rc = add_deliveries(s, doc, cc->name, err)) != OKEGW_STORE_OK)
    goto done;
  if ((rc = okegw_store_accept_runs(s, cc->name, 5, &runs, err)) != OKEGW_STORE_OK)
    goto done;
  rc = OKEGW_STORE_ERROR;
  if (!cJSON_AddItemToObject(doc, "runs", runs)) {
    cJSON_Delete(runs);
    goto done;
  }
  if (!(phases = cJSON_AddArrayToObject(doc, "phaseHistory")))
    goto done;
  okegw_phase_filter pf = {.connector = cc->name};
  rc = okegw_store_phases_list(s, &pf, on_phase, phases, err);
done:
  gather_free(&g);
  if (rc == OKEGW_STORE_OK) {
    *out = doc;
  } else {
    cJSON_Delete(doc);
    if (err && !*err)
      *err = okegw_strdup("out of memory");
  }
  return rc;
}
