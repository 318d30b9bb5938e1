/* See metrics.h. */
#include "ops/metrics.h"
#include "base/conf.h"
#include "base/log.h"
#include "delivery/outbox.h"
#include "oke/interaction.h"
#include "ops/health.h"
#include "pipeline/request.h"
#include "store/store.h"

#include <oke/plugin.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets (seconds): the Prometheus client defaults, which cover a
 * peer answering in milliseconds up to one at its timeout. */
static const double latency_bounds[OKEGW_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                          0.5,   1,    2.5,   5,    10,  30};
/* A group commit takes a fsync: from sub-millisecond to a slow disk. */
static const double commit_bounds[OKEGW_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                         0.05,   0.1,   0.25,   0.5,   1,    2.5};

/* The flow label of an interaction, from its name ("flow2.put_offering":
 * "2", "documents.get": "documents"); "" for none. */
enum { FLOW_NONE = 0, FLOW_DOCUMENTS = 8, NFLOWS = 9 };
static const char *const flow_labels[NFLOWS] = {"", "0", "1", "2", "3", "4", "5", "6", "documents"};

#define WINDOW_MIN 5 /* the live error rate's window, in minutes */
#define NCLASSES 5   /* status classes 1xx..5xx */

/* One wall-clock minute of a connector (see metrics.h for the two kinds). */
typedef struct minute_counts {
  long long minute;                  /* the Unix minute the counts are of */
  unsigned long requests, errors;    /* traffic: errors 5xx, 401, 403, 429 */
  unsigned long exchanges, failures; /* exchanges: failures 5xx or no answer */
} minute_counts;

/* Every field of a slot is read and written under its registry's mutex. */
struct okegw_conn_metrics {
  okegw_conn_metrics *next;
  okegw_metrics *reg;          /* for its mutex and clock */
  char *name;                  /* "" for requests no connector carried */
  uint64_t *requests;          /* [interaction * NCLASSES + class] */
  okegw_hist duration[NFLOWS]; /* caller side, by flow */
  okegw_hist peer;
  uint64_t attempts[OKEGW_ATTEMPT_OUTCOMES];
  uint64_t dead_letters;
  uint64_t *mapping_errors; /* [interaction] */
  uint64_t budget_kills;
  uint64_t tokens[2];                           /* ok, failed */
  minute_counts minutes[OKEGW_METRICS_MINUTES]; /* [minute % OKEGW_METRICS_MINUTES] */
};

typedef struct violation_count {
  int interaction;
  const char *rule;
  int side; /* 0 request, 1 answer */
  uint64_t n;
} violation_count;

typedef struct tls_count {
  const char *listener; /* under mu */
  uint64_t n[2];        /* atomic: http/server.c adds to them */
} tls_count;

/* One mutex for all of it: the loop threads update the registry and its
 * slots, a scrape reads them, from any thread. An update holds it for a
 * few increments; uncontended it costs an atomic exchange each way. */
struct okegw_metrics {
  pthread_mutex_t mu;
  int ninteractions;
  unsigned char *flow_of; /* [interaction] */
  okegw_conn_metrics *none, *conns, *last;
  violation_count *violations;
  size_t nviolations, capviolations;
  tls_count tls[4];
  okegw_hist commit;
  long long started_ms;
  long long (*wall_ms)(void); /* the minute buckets' clock */
  /* requests answered per event loop ([gateway] workers), atomics: the
   * split of the work over the loops */
  int nloops;
  uint64_t loop_requests[OKEGW_METRICS_LOOPS];
};

void okegw_metrics_set_loops(okegw_metrics *m, int n) {
  if (m)
    m->nloops = n < 1 ? 1 : n > OKEGW_METRICS_LOOPS ? OKEGW_METRICS_LOOPS : n;
}

void okegw_metrics_loop_request(okegw_metrics *m, int loop) {
  if (m && loop >= 0 && loop < OKEGW_METRICS_LOOPS)
    __atomic_fetch_add(&m->loop_requests[loop], 1, __ATOMIC_RELAXED);
}

okegw_metrics *okegw_metrics_new(void) {
  okegw_metrics *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->ninteractions = okegw_interaction_count();
  m->flow_of = calloc((size_t)m->ninteractions, 1);
  if (!m->flow_of || pthread_mutex_init(&m->mu, NULL) != 0) {
    free(m->flow_of);
    free(m);
    return NULL;
  }
  for (int i = 1; i < m->ninteractions; i++) {
    const char *n = okegw_interaction_name(i);
    if (strncmp(n, "flow", 4) == 0 && n[4] >= '0' && n[4] <= '6')
      m->flow_of[i] = (unsigned char)(n[4] - '0' + 1);
    else if (strncmp(n, "documents.", 10) == 0)
      m->flow_of[i] = FLOW_DOCUMENTS;
  }
  m->started_ms = okegw_wall_ms();
  m->wall_ms = okegw_wall_ms;
  m->none = okegw_metrics_connector(m, "");
  if (!m->none) {
    okegw_metrics_free(m);
    return NULL;
  }
  return m;
}

static void lock(okegw_metrics *m) { pthread_mutex_lock(&m->mu); }
static void unlock(okegw_metrics *m) { pthread_mutex_unlock(&m->mu); }

void okegw_metrics_set_clock(okegw_metrics *m, long long (*wall_ms)(void)) {
  if (!m)
    return;
  lock(m);
  m->wall_ms = wall_ms ? wall_ms : okegw_wall_ms;
  unlock(m);
}

static void slot_free(okegw_conn_metrics *cm) {
  free(cm->name);
  free(cm->requests);
  free(cm->mapping_errors);
  free(cm);
}

void okegw_metrics_free(okegw_metrics *m) {
  if (!m)
    return;
  for (okegw_conn_metrics *cm = m->conns, *next; cm; cm = next) {
    next = cm->next;
    slot_free(cm);
  }
  free(m->violations);
  free(m->flow_of);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static okegw_conn_metrics *connector_locked(okegw_metrics *m, const char *name) {
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    if (strcmp(cm->name, name) == 0)
      return cm;
  okegw_conn_metrics *cm = calloc(1, sizeof *cm);
  if (!cm)
    return NULL;
  size_t ni = (size_t)m->ninteractions;
  cm->reg = m;
  cm->name = okegw_strdup(name);
  cm->requests = calloc(ni * NCLASSES, sizeof *cm->requests);
  cm->mapping_errors = calloc(ni, sizeof *cm->mapping_errors);
  if (!cm->name || !cm->requests || !cm->mapping_errors) {
    slot_free(cm);
    return NULL;
  }
  /* in order of appearance: the exposition lists connectors as configured */
  if (m->last)
    m->last->next = cm;
  else
    m->conns = cm;
  m->last = cm;
  return cm;
}

okegw_conn_metrics *okegw_metrics_connector(okegw_metrics *m, const char *name) {
  if (!m || !name)
    return NULL;
  /* looked up and made under the lock: two threads asking for a new name
   * at once get the same slot */
  lock(m);
  okegw_conn_metrics *cm = connector_locked(m, name);
  unlock(m);
  return cm;
}

/* ---- instrumentation ------------------------------------------------------ */

static void hist_observe(okegw_hist *h, const double *bounds, double s) {
  int i = 0;
  while (i < OKEGW_HIST_BUCKETS && s > bounds[i])
    i++;
  h->counts[i]++;
  h->count++;
  h->sum_ns += s > 0 ? (uint64_t)(s * 1e9) : 0;
}

void okegw_hist_observe_atomic(okegw_hist *h, double s) {
  if (!h)
    return;
  int i = 0;
  while (i < OKEGW_HIST_BUCKETS && s > commit_bounds[i])
    i++;
  __atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&h->sum_ns, s > 0 ? (uint64_t)(s * 1e9) : 0, __ATOMIC_RELAXED);
  /* count last: a reader that sees it sees the bucket too (release) */
  __atomic_fetch_add(&h->count, 1, __ATOMIC_RELEASE);
}

/* ---- minute buckets (under the registry's lock) ---- */

static long long minute_now(const okegw_conn_metrics *cm) { return cm->reg->wall_ms() / 60000; }

/* The bucket of minute, or NULL when it holds another (older) minute. */
static const minute_counts *bucket_of(const okegw_conn_metrics *cm, long long minute) {
  const minute_counts *b = &cm->minutes[minute % OKEGW_METRICS_MINUTES];
  return b->minute == minute ? b : NULL;
}

/* The current minute's bucket, emptied first if it held an older one. */
static minute_counts *this_minute(okegw_conn_metrics *cm) {
  long long now = minute_now(cm);
  minute_counts *b = &cm->minutes[now % OKEGW_METRICS_MINUTES];
  if (b->minute != now)
    *b = (minute_counts){.minute = now};
  return b;
}

/* The admin API's definition of a failed request (README): 5xx answers and
 * refusals. */
static void note_traffic(okegw_conn_metrics *cm, int status) {
  minute_counts *b = this_minute(cm);
  b->requests++;
  b->errors += status >= 500 || status == 401 || status == 403 || status == 429;
}

void okegw_metrics_request(okegw_metrics *m, okegw_conn_metrics *cm, okegw_conn_metrics *caller,
                           int interaction, int status, double seconds) {
  if (!m)
    return;
  if (interaction < 0 || interaction >= m->ninteractions)
    interaction = 0;
  int cls = status / 100 - 1;
  lock(m);
  /* the traffic only of a settled interaction (an audited exchange) */
  if (interaction != 0 && (cm || caller))
    note_traffic(cm ? cm : caller, status);
  if (!cm)
    cm = m->none;
  if (cls >= 0 && cls < NCLASSES)
    cm->requests[interaction * NCLASSES + cls]++;
  hist_observe(&cm->duration[m->flow_of[interaction]], latency_bounds, seconds);
  unlock(m);
}

void okegw_metrics_peer_request(okegw_conn_metrics *cm, double seconds) {
  if (!cm)
    return;
  lock(cm->reg);
  hist_observe(&cm->peer, latency_bounds, seconds);
  unlock(cm->reg);
}

/* /readyz's definition of a failed exchange: 5xx or no answer. */
void okegw_metrics_exchange(okegw_conn_metrics *cm, int status) {
  if (!cm)
    return;
  lock(cm->reg);
  minute_counts *b = this_minute(cm);
  b->exchanges++;
  b->failures += status >= 500 || status == 0;
  unlock(cm->reg);
}

void okegw_metrics_recent(const okegw_conn_metrics *cm, unsigned long *requests,
                          unsigned long *errors) {
  *requests = *errors = 0;
  if (!cm)
    return;
  /* the current minute and the WINDOW_MIN - 1 before it: a little under
   * five minutes, never more */
  lock(cm->reg);
  long long now = minute_now(cm);
  for (long long m = now - WINDOW_MIN + 1; m <= now; m++) {
    const minute_counts *b = bucket_of(cm, m);
    if (b) {
      *requests += b->exchanges;
      *errors += b->failures;
    }
  }
  unlock(cm->reg);
}

int okegw_metrics_traffic_json(const okegw_conn_metrics *cm, cJSON *o) {
  /* the hour copied under the lock, the JSON built after it */
  minute_counts hour[OKEGW_METRICS_MINUTES] = {{0}};
  long long now;
  if (cm) {
    lock(cm->reg);
    now = minute_now(cm);
    for (int k = 0; k < OKEGW_METRICS_MINUTES; k++) {
      const minute_counts *b = bucket_of(cm, now - OKEGW_METRICS_MINUTES + 1 + k);
      if (b)
        hour[k] = *b;
    }
    unlock(cm->reg);
  } else {
    now = okegw_wall_ms() / 60000;
  }
  unsigned long requests = 0, errors = 0;
  cJSON *arr = cJSON_AddArrayToObject(o, "perMinute");
  if (!arr)
    return -1;
  for (long long m = now - OKEGW_METRICS_MINUTES + 1; m <= now; m++) {
    const minute_counts *b = &hour[m - (now - OKEGW_METRICS_MINUTES + 1)];
    unsigned long r = b->requests, e = b->errors;
    requests += r;
    errors += e;
    char at[40];
    okegw_format_rfc3339(m * 60000, 0, at, sizeof at);
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddItemToArray(arr, p) || !cJSON_AddStringToObject(p, "minute", at) ||
        !cJSON_AddNumberToObject(p, "requests", (double)r) ||
        !cJSON_AddNumberToObject(p, "errors", (double)e))
      return -1;
  }
  return cJSON_AddNumberToObject(o, "requests", (double)requests) &&
                 cJSON_AddNumberToObject(o, "errors", (double)errors)
             ? 0
             : -1;
}

void okegw_metrics_delivery_attempt(okegw_conn_metrics *cm, enum okegw_attempt_outcome o,
                                    int status) {
  if (!cm || (unsigned)o >= OKEGW_ATTEMPT_OUTCOMES)
    return;
  lock(cm->reg);
  cm->attempts[o]++;
  cm->dead_letters += o == OKEGW_ATTEMPT_DEAD;
  note_traffic(cm, status);
  unlock(cm->reg);
}

void okegw_metrics_violation(okegw_metrics *m, int interaction, const char *rule,
                             const char *side) {
  if (!m || !rule)
    return;
  int s = side && strcmp(side, "answer") == 0;
  lock(m);
  for (size_t i = 0; i < m->nviolations; i++) {
    violation_count *v = &m->violations[i];
    /* rules are static strings: equal names are mostly the same pointer */
    if (v->interaction == interaction && v->side == s &&
        (v->rule == rule || strcmp(v->rule, rule) == 0)) {
      v->n++;
      unlock(m);
      return;
    }
  }
  if (m->nviolations == m->capviolations) {
    size_t cap = m->capviolations ? m->capviolations * 2 : 16;
    violation_count *nv = realloc(m->violations, cap * sizeof *nv);
    if (!nv) {
      unlock(m);
      return;
    }
    m->violations = nv;
    m->capviolations = cap;
  }
  m->violations[m->nviolations++] =
      (violation_count){.interaction = interaction, .rule = rule, .side = s, .n = 1};
  unlock(m);
}

void okegw_metrics_mapping_error(okegw_conn_metrics *cm, int interaction, int killed) {
  if (!cm)
    return;
  /* the slot's arrays are as long as the registry's interaction count */
  if (interaction <= 0 || interaction >= cm->reg->ninteractions)
    interaction = 0;
  lock(cm->reg);
  cm->mapping_errors[interaction]++;
  cm->budget_kills += killed != 0;
  unlock(cm->reg);
}

void okegw_metrics_token_refresh(okegw_conn_metrics *cm, int ok) {
  if (!cm)
    return;
  lock(cm->reg);
  cm->tokens[ok ? 0 : 1]++;
  unlock(cm->reg);
}

uint64_t *okegw_metrics_tls_handshakes(okegw_metrics *m, const char *listener) {
  if (!m)
    return NULL;
  uint64_t *n = NULL;
  lock(m);
  for (size_t i = 0; !n && i < sizeof m->tls / sizeof m->tls[0]; i++) {
    if (m->tls[i].listener && strcmp(m->tls[i].listener, listener) == 0)
      n = m->tls[i].n;
    else if (!m->tls[i].listener) {
      m->tls[i].listener = listener;
      n = m->tls[i].n;
    }
  }
  unlock(m);
  return n;
}

okegw_hist *okegw_metrics_store_commit(okegw_metrics *m) { return m ? &m->commit : NULL; }

/* ---- exposition ----------------------------------------------------------- */

int okegw_metrics_escape(okegw_buf *out, const char *s) {
  for (const char *p = s ? s : ""; *p; p++) {
    const char *e = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
    if (okegw_buf_append(out, e ? e : p, e ? 2 : 1) < 0)
      return -1;
  }
  return 0;
}

/* The exposition being written; failed once an append ran out of memory. */
typedef struct wr {
  okegw_buf *b;
  int failed;
} wr;

static void put(wr *b, const char *s) { b->failed |= okegw_buf_append(b->b, s, strlen(s)) < 0; }
static void esc(wr *b, const char *s) { b->failed |= okegw_metrics_escape(b->b, s) < 0; }

static void family(wr *b, const char *name, const char *type, const char *help) {
  b->failed |= okegw_buf_printf(b->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0;
}

/* name{label="value",...} with the label pairs given as name, value, ...,
 * NULL. */
static void series(wr *b, const char *name, const char *const *labels) {
  put(b, name);
  if (labels && labels[0]) {
    put(b, "{");
    for (size_t i = 0; labels[i]; i += 2) {
      if (i)
        put(b, ",");
      put(b, labels[i]);
      put(b, "=\"");
      esc(b, labels[i + 1]);
      put(b, "\"");
    }
    put(b, "}");
  }
}

static void sample_u(wr *b, const char *name, const char *const *labels, uint64_t v) {
  series(b, name, labels);
  b->failed |= okegw_buf_printf(b->b, " %llu\n", (unsigned long long)v) < 0;
}

static void sample_d(wr *b, const char *name, const char *const *labels, double v) {
  series(b, name, labels);
  b->failed |= okegw_buf_printf(b->b, " %.9g\n", v) < 0;
}

/* A histogram's series: _bucket per bound (cumulative) and +Inf, _sum,
 * _count. labels has room for two more entries before its NULL. */
static void histogram(wr *b, const char *name, const char **labels, size_t nlabels,
                      const okegw_hist *h, const double *bounds, int atomic) {
  char bucket[96], sum[96], count[96], le[32];
  snprintf(bucket, sizeof bucket, "%s_bucket", name);
  snprintf(sum, sizeof sum, "%s_sum", name);
  snprintf(count, sizeof count, "%s_count", name);
  uint64_t n = atomic ? __atomic_load_n(&h->count, __ATOMIC_ACQUIRE) : h->count;
  uint64_t acc = 0;
  labels[nlabels] = "le";
  labels[nlabels + 2] = NULL;
  for (int i = 0; i < OKEGW_HIST_BUCKETS; i++) {
    acc += atomic ? __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED) : h->counts[i];
    snprintf(le, sizeof le, "%g", bounds[i]);
    labels[nlabels + 1] = le;
    /* with atomics a bucket may run ahead of the count: never above it */
    sample_u(b, bucket, labels, acc < n ? acc : n);
  }
  labels[nlabels + 1] = "+Inf";
  sample_u(b, bucket, labels, n);
  labels[nlabels] = NULL;
  uint64_t ns = atomic ? __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED) : h->sum_ns;
  sample_d(b, sum, labels, (double)ns / 1e9);
  sample_u(b, count, labels, n);
}

typedef struct census_ud {
  wr *b;
} census_ud;

static void on_census(void *ud, const char *connector, const size_t *counts) {
  census_ud *c = ud;
  for (int s = 0; s < OKEGW_OUTBOX_NSTATES; s++) {
    const char *l[] = {"connector", connector, "state", okegw_outbox_state_label(s), NULL};
    sample_u(c->b, "okegw_outbox_deliveries", l, counts[s]);
  }
}

static const char *const class_labels[NCLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const outcome_labels[OKEGW_ATTEMPT_OUTCOMES] = {"delivered", "failed", "retry",
                                                                   "dead"};

int okegw_metrics_render(okegw_gateway *g, okegw_buf *out) {
  okegw_metrics *m = g->metrics;
  if (!m)
    return -1;
  wr w = {out, 0}, *b = &w;
  int ni = m->ninteractions;

  /* The registry's series are written under its lock, which is let go
   * around the gauges read from their owners (the outbox, the health
   * check, which itself takes the lock for okegw_metrics_recent). */
  lock(m);
  family(b, "okegw_requests_total", "counter",
         "Requests answered to callers, by the connector that carried them (\"\" for none), "
         "flow, interaction and status class.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    for (int i = 0; i < ni; i++)
      for (int k = 0; k < NCLASSES; k++) {
        uint64_t v = cm->requests[i * NCLASSES + k];
        if (!v)
          continue;
        const char *l[] = {"connector",
                           cm->name,
                           "flow",
                           flow_labels[m->flow_of[i]],
                           "interaction",
                           i ? okegw_interaction_name(i) : "",
                           "status_class",
                           class_labels[k],
                           NULL};
        sample_u(b, "okegw_requests_total", l, v);
      }

  family(b, "okegw_event_loop_requests_total", "counter",
         "Requests answered to callers, by the event loop that took them ([gateway] workers).");
  for (int i = 0; i < (m->nloops ? m->nloops : 1); i++) {
    char loop[16];
    snprintf(loop, sizeof loop, "%d", i);
    const char *l[] = {"loop", loop, NULL};
    sample_u(b, "okegw_event_loop_requests_total", l,
             __atomic_load_n(&m->loop_requests[i], __ATOMIC_RELAXED));
  }

  family(b, "okegw_request_duration_seconds", "histogram",
         "Time from a caller's request to okegw's answer, by connector and flow.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    for (int f = 0; f < NFLOWS; f++) {
      if (!cm->duration[f].count)
        continue;
      const char *l[7] = {"connector", cm->name, "flow", flow_labels[f], NULL};
      histogram(b, "okegw_request_duration_seconds", l, 4, &cm->duration[f], latency_bounds, 0);
    }

  family(b, "okegw_peer_request_duration_seconds", "histogram",
         "Time of the HTTP requests okegw sends to a connector's peer, by connector.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next) {
    if (!*cm->name)
      continue;
    const char *l[5] = {"connector", cm->name, NULL};
    histogram(b, "okegw_peer_request_duration_seconds", l, 2, &cm->peer, latency_bounds, 0);
  }

  family(b, "okegw_outbox_deliveries", "gauge",
         "Deliveries in the outbox now, by connector and state (queued behind another of "
         "their resource, pending, retrying, in_flight, dead).");
  unlock(m);
  census_ud cu = {b};
  if (g->outbox)
    okegw_outbox_census(g->outbox, on_census, &cu);
  lock(m);

  family(b, "okegw_delivery_attempts_total", "counter",
         "Delivery attempts of pushes by connector and outcome (delivered, failed, retry, dead).");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next) {
    if (!*cm->name)
      continue;
    for (int o = 0; o < OKEGW_ATTEMPT_OUTCOMES; o++) {
      const char *l[] = {"connector", cm->name, "outcome", outcome_labels[o], NULL};
      sample_u(b, "okegw_delivery_attempts_total", l, cm->attempts[o]);
    }
  }

  family(b, "okegw_dead_letters_total", "counter",
         "Deliveries that ran out of time (delivery_max_age_s) and wait for an operator.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    if (*cm->name) {
      const char *l[] = {"connector", cm->name, NULL};
      sample_u(b, "okegw_dead_letters_total", l, cm->dead_letters);
    }

  family(b, "okegw_profile_violations_total", "counter",
         "OKE profile violations found, by interaction, rule and side (request or answer).");
  for (size_t i = 0; i < m->nviolations; i++) {
    const violation_count *v = &m->violations[i];
    const char *l[] = {"interaction", okegw_interaction_name(v->interaction), "rule", v->rule,
                       "side",        v->side ? "answer" : "request",         NULL};
    sample_u(b, "okegw_profile_violations_total", l, v->n);
  }

  family(b, "okegw_mapping_errors_total", "counter",
         "Lua mappings that failed, by connector and interaction.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    for (int i = 0; i < ni; i++)
      if (cm->mapping_errors[i]) {
        const char *l[] = {"connector", cm->name, "interaction", okegw_interaction_name(i), NULL};
        sample_u(b, "okegw_mapping_errors_total", l, cm->mapping_errors[i]);
      }

  family(b, "okegw_mapping_budget_kills_total", "counter",
         "Lua mappings stopped by their memory, instruction or time budget, by connector.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    if (*cm->name) {
      const char *l[] = {"connector", cm->name, NULL};
      sample_u(b, "okegw_mapping_budget_kills_total", l, cm->budget_kills);
    }

  family(b, "okegw_token_refreshes_total", "counter",
         "OAuth access token requests of connectors with auth = oauth2, by outcome.");
  for (okegw_conn_metrics *cm = m->conns; cm; cm = cm->next)
    if (*cm->name)
      for (int k = 0; k < 2; k++) {
        const char *l[] = {"connector", cm->name, "outcome", k ? "failed" : "ok", NULL};
        sample_u(b, "okegw_token_refreshes_total", l, cm->tokens[k]);
      }

  family(b, "okegw_tls_handshakes_total", "counter",
         "TLS handshakes on okegw's listeners, by listener and outcome.");
  for (size_t i = 0; i < sizeof m->tls / sizeof m->tls[0] && m->tls[i].listener; i++)
    for (int k = 0; k < 2; k++) {
      const char *l[] = {"listener", m->tls[i].listener, "outcome", k ? "failed" : "ok", NULL};
      sample_u(b, "okegw_tls_handshakes_total", l,
               __atomic_load_n(&m->tls[i].n[k], __ATOMIC_RELAXED));
    }
  unlock(m);

  const okegw_gen *gen = g->gen;
  family(b, "okegw_connector_phase", "gauge",
         "The phase of each connector: 1 for the current one (off, shadow, pilot, live).");
  for (size_t i = 0; gen && i < gen->nconns; i++)
    for (int p = OKEGW_PHASE_OFF; p <= OKEGW_PHASE_LIVE; p++) {
      const char *l[] = {"connector", gen->conns[i]->conf->name, "phase",
                         okegw_phase_name((enum okegw_phase)p), NULL};
      sample_u(b, "okegw_connector_phase", l, gen->conns[i]->conf->phase == (enum okegw_phase)p);
    }

  family(b, "okegw_connector_up", "gauge",
         "1 unless the connector is down: not started, its plugin's health check fails, or at "
         "least half of its last 5 minutes' exchanges failed (see /readyz).");
  for (size_t i = 0; gen && i < gen->nconns; i++) {
    okegw_conn_health h;
    okegw_health_connector(gen->conns[i], &h);
    const char *l[] = {"connector", gen->conns[i]->conf->name, NULL};
    sample_u(b, "okegw_connector_up", l, strcmp(h.health, "down") != 0);
  }

  family(b, "okegw_build_info", "gauge", "okegw's version and plugin ABI; always 1.");
  {
    char abi[16];
    snprintf(abi, sizeof abi, "%d.%d", OKE_ABI_MAJOR, OKE_ABI_MINOR);
    const char *l[] = {"version", OKEGW_VERSION, "abi", abi, NULL};
    sample_u(b, "okegw_build_info", l, 1);
  }

  family(b, "okegw_store_commit_duration_seconds", "histogram",
         "Time of the store's group commits (one transaction and fsync for many writes).");
  {
    const char *l[3] = {NULL};
    histogram(b, "okegw_store_commit_duration_seconds", l, 0, &m->commit, commit_bounds, 1);
  }

  family(b, "okegw_store_writable", "gauge",
         "1 while the store takes writes (as /readyz says), else 0.");
  sample_u(b, "okegw_store_writable", NULL, g->store ? (uint64_t)okegw_store_healthy(g->store) : 0);

  family(b, "process_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch in seconds.");
  sample_u(b, "process_start_time_seconds", NULL, (uint64_t)(m->started_ms / 1000));
  return w.failed ? -1 : 0;
}

void okegw_metrics_serve(okegw_gateway *g, okegw_req *req, const char *rest) {
  (void)rest;
  okegw_buf b = {0};
  if (okegw_metrics_render(g, &b) < 0) {
    okegw_buf_free(&b);
    okegw_log(OKEGW_LOG_ERROR, NULL, "/metrics: out of memory");
    okegw_respond_problem(req, 500, "Internal Server Error", "out of memory");
    return;
  }
  okegw_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
  okegw_buf_free(&b);
}
