/* The metrics registry (ops/metrics.c): label values escaped as the text
 * format asks, histograms cumulative with +Inf equal to _count, counters
 * per connector name kept in one slot, the live error window, and the
 * traffic in minute buckets the admin API shows (counts, what counts as an
 * error, the JSON shape, the hour and the 5 minutes over a moving clock),
 * and all of it updated from several threads while another scrapes. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "oke/interaction.h"
#include "ops/metrics.h"
#include "pipeline/request.h"

static char *escaped(const char *s) {
  okegw_buf b = {0};
  assert_int_equal(okegw_metrics_escape(&b, s), 0);
  okegw_buf_append(&b, "", 1);
  return b.data;
}

static void label_escaping(void **state) {
  (void)state;
  char *e = escaped("plain-name_1");
  assert_string_equal(e, "plain-name_1");
  free(e);
  e = escaped("a\"b\\c\nd");
  assert_string_equal(e, "a\\\"b\\\\c\\nd");
  free(e);
  e = escaped("\\\\\"\n\n");
  assert_string_equal(e, "\\\\\\\\\\\"\\n\\n");
  free(e);
  e = escaped("");
  assert_string_equal(e, "");
  free(e);
  e = escaped("caf\xc3\xa9 \t tab"); /* UTF-8 and tabs pass as they are */
  assert_string_equal(e, "caf\xc3\xa9 \t tab");
  free(e);
}

static char *render(okegw_metrics *m) {
  okegw_gateway g = {.metrics = m};
  okegw_buf b = {0};
  assert_int_equal(okegw_metrics_render(&g, &b), 0);
  okegw_buf_append(&b, "", 1);
  return b.data;
}

static void has(const char *text, const char *line) {
  if (!strstr(text, line))
    fail_msg("missing %s in:\n%s", line, text);
}

static void counters_and_histograms(void **state) {
  (void)state;
  okegw_metrics *m = okegw_metrics_new();
  assert_non_null(m);
  okegw_conn_metrics *a = okegw_metrics_connector(m, "ta \"x\"");
  assert_ptr_equal(a, okegw_metrics_connector(m, "ta \"x\""));
  assert_ptr_not_equal(a, okegw_metrics_connector(m, "tb"));
  int put = okegw_interaction_by_name("flow2.put_offering");
  assert_true(put > 0);
  okegw_metrics_request(m, a, NULL, put, 201, 0.003);
  okegw_metrics_request(m, a, NULL, put, 200, 0.2);
  okegw_metrics_request(m, a, NULL, put, 502, 50);
  okegw_metrics_request(m, NULL, NULL, 0, 404, 0.0001);
  okegw_metrics_violation(m, put, "R12", "request");
  okegw_metrics_violation(m, put, "R12", "request");
  okegw_metrics_violation(m, put, "R21", "answer");
  okegw_metrics_mapping_error(a, put, 1);
  okegw_metrics_delivery_attempt(a, OKEGW_ATTEMPT_DEAD, 503);
  okegw_hist_observe_atomic(okegw_metrics_store_commit(m), 0.002);
  char *t = render(m);
  has(t, "okegw_requests_total{connector=\"ta \\\"x\\\"\",flow=\"2\",interaction=\"flow2.put_"
         "offering\",status_class=\"2xx\"} 2\n");
  has(t, "status_class=\"5xx\"} 1\n");
  has(t,
      "okegw_requests_total{connector=\"\",flow=\"\",interaction=\"\",status_class=\"4xx\"} 1\n");
  const char *d = "okegw_request_duration_seconds_bucket{connector=\"ta \\\"x\\\"\",flow=\"2\",";
  char line[256];
  snprintf(line, sizeof line, "%sle=\"0.005\"} 1\n", d);
  has(t, line);
  snprintf(line, sizeof line, "%sle=\"0.1\"} 1\n", d);
  has(t, line);
  snprintf(line, sizeof line, "%sle=\"0.25\"} 2\n", d);
  has(t, line);
  snprintf(line, sizeof line, "%sle=\"30\"} 2\n", d);
  has(t, line);
  snprintf(line, sizeof line, "%sle=\"+Inf\"} 3\n", d);
  has(t, line);
  has(t, "okegw_request_duration_seconds_count{connector=\"ta \\\"x\\\"\",flow=\"2\"} 3\n");
  has(t, "okegw_request_duration_seconds_sum{connector=\"ta \\\"x\\\"\",flow=\"2\"} 50.203\n");
  has(t, "okegw_profile_violations_total{interaction=\"flow2.put_offering\",rule=\"R12\",side="
         "\"request\"} 2\n");
  has(t, "rule=\"R21\",side=\"answer\"} 1\n");
  has(t, "okegw_mapping_budget_kills_total{connector=\"ta \\\"x\\\"\"} 1\n");
  has(t, "okegw_dead_letters_total{connector=\"tb\"} 0\n");
  has(t, "okegw_dead_letters_total{connector=\"ta \\\"x\\\"\"} 1\n");
  has(t, "okegw_store_commit_duration_seconds_bucket{le=\"0.001\"} 0\n");
  has(t, "okegw_store_commit_duration_seconds_bucket{le=\"0.0025\"} 1\n");
  has(t, "okegw_store_commit_duration_seconds_count 1\n");
  has(t, "# TYPE okegw_build_info gauge\nokegw_build_info{version=\"" OKEGW_VERSION);
  free(t);
  okegw_metrics_free(m);
}

/* ---- traffic in minute buckets ------------------------------------------ */

static cJSON *traffic(const okegw_conn_metrics *cm) {
  cJSON *o = cJSON_CreateObject();
  assert_non_null(o);
  assert_int_equal(okegw_metrics_traffic_json(cm, o), 0);
  return o;
}

static double num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

static const cJSON *minute_at(const cJSON *o, int i) {
  const cJSON *pm = cJSON_GetObjectItemCaseSensitive(o, "perMinute");
  assert_int_equal(cJSON_GetArraySize(pm), OKEGW_METRICS_MINUTES);
  return cJSON_GetArrayItem(pm, i);
}

/* cm's totals of the last hour. */
static void expect_traffic(const okegw_conn_metrics *cm, int requests, int errors) {
  cJSON *o = traffic(cm);
  assert_int_equal((int)num(o, "requests"), requests);
  assert_int_equal((int)num(o, "errors"), errors);
  cJSON_Delete(o);
}

/* The live error window: a failed exchange is a 5xx or none. Its counts
 * and the traffic's (where a refusal is an error and no answer is not)
 * share the minute buckets but never count in each other. */
static void error_window(void **state) {
  (void)state;
  okegw_metrics *m = okegw_metrics_new();
  okegw_conn_metrics *a = okegw_metrics_connector(m, "ta");
  int put = okegw_interaction_by_name("flow2.put_offering");
  unsigned long n, e;
  okegw_metrics_recent(a, &n, &e);
  assert_true(n == 0 && e == 0);
  okegw_metrics_request(m, a, NULL, put, 401, 0.01);
  okegw_metrics_delivery_attempt(a, OKEGW_ATTEMPT_RETRY, 0);
  okegw_metrics_recent(a, &n, &e);
  assert_true(n == 0 && e == 0);
  okegw_metrics_exchange(a, 200);
  okegw_metrics_exchange(a, 504);
  okegw_metrics_exchange(a, 0);
  okegw_metrics_exchange(a, 404);
  okegw_metrics_exchange(a, 401);
  okegw_metrics_recent(a, &n, &e);
  assert_int_equal(n, 5);
  assert_int_equal(e, 2);
  expect_traffic(a, 2, 1);
  okegw_metrics_recent(NULL, &n, &e);
  assert_int_equal(n, 0);
  okegw_metrics_free(m);
}

static void traffic_counts(void **state) {
  (void)state;
  okegw_metrics *m = okegw_metrics_new();
  assert_non_null(m);
  okegw_conn_metrics *a = okegw_metrics_connector(m, "ta");
  okegw_conn_metrics *b = okegw_metrics_connector(m, "tb");
  okegw_conn_metrics *caller = okegw_metrics_connector(m, "dr");
  int put = okegw_interaction_by_name("flow2.put_offering");
  int statuses[] = {200, 201, 202, 400, 404, 401, 403, 429, 500, 502, 504};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    okegw_metrics_request(m, a, caller, put, statuses[i], 0.01);
  okegw_metrics_request(m, b, NULL, put, 200, 0.01);
  okegw_metrics_request(m, NULL, NULL, put, 500, 0.01); /* no connector: not counted anywhere */
  okegw_metrics_request(m, a, caller, 0, 500, 0.01);    /* no interaction: not an exchange */
  cJSON *o = traffic(a);
  assert_int_equal((int)num(o, "requests"), 11);
  assert_int_equal((int)num(o, "errors"), 6); /* 401, 403, 429 and the 5xx */
  const cJSON *last = minute_at(o, OKEGW_METRICS_MINUTES - 1);
  assert_int_equal((int)num(last, "requests"), 11);
  assert_int_equal((int)num(last, "errors"), 6);
  const cJSON *first = minute_at(o, 0);
  assert_int_equal((int)num(first, "requests"), 0);
  const char *m0 = cJSON_GetObjectItemCaseSensitive(first, "minute")->valuestring;
  const char *m1 = cJSON_GetObjectItemCaseSensitive(last, "minute")->valuestring;
  assert_true(strcmp(m0, m1) < 0);  /* oldest first */
  assert_int_equal(strlen(m1), 20); /* 2026-12-06T20:31:00Z */
  assert_string_equal(m1 + 16, ":00Z");
  cJSON_Delete(o);
  expect_traffic(b, 1, 0);
  /* carried by a connector: its traffic, not the caller's */
  expect_traffic(caller, 0, 0);
  /* carried by none (refused, say): the caller's */
  okegw_metrics_request(m, NULL, caller, put, 401, 0.01);
  expect_traffic(caller, 1, 1);
  /* the outbox's attempts count, a refusal or 5xx as an error, no answer not */
  okegw_metrics_delivery_attempt(b, OKEGW_ATTEMPT_RETRY, 503);
  okegw_metrics_delivery_attempt(b, OKEGW_ATTEMPT_FAILED, 403);
  okegw_metrics_delivery_attempt(b, OKEGW_ATTEMPT_FAILED, 422);
  okegw_metrics_delivery_attempt(b, OKEGW_ATTEMPT_RETRY, 0);
  okegw_metrics_delivery_attempt(b, OKEGW_ATTEMPT_DELIVERED, 200);
  expect_traffic(b, 6, 2);
  /* a name never seen (no slot) */
  o = traffic(NULL);
  assert_int_equal((int)num(o, "requests"), 0);
  assert_int_equal((int)num(o, "errors"), 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "perMinute")), 60);
  cJSON_Delete(o);
  okegw_metrics_free(m);
  /* a registry starts empty */
  m = okegw_metrics_new();
  expect_traffic(okegw_metrics_connector(m, "ta"), 0, 0);
  okegw_metrics_free(m);
}

static void many_connectors(void **state) {
  (void)state;
  okegw_metrics *m = okegw_metrics_new();
  assert_non_null(m);
  int put = okegw_interaction_by_name("flow2.put_offering");
  char name[16];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "c%d", i);
    for (int k = 0; k <= i; k++)
      okegw_metrics_request(m, okegw_metrics_connector(m, name), NULL, put, 200, 0.01);
  }
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "c%d", i);
    expect_traffic(okegw_metrics_connector(m, name), i + 1, 0);
  }
  okegw_metrics_free(m);
}

/* The clock of the next test: 2026-12-06T20:31:00Z plus what it moves. */
static long long fake_ms;
static long long fake_clock(void) { return fake_ms; }
#define T0_MIN 29943151LL

static void at_minute(long long minute, int second) { fake_ms = minute * 60000 + second * 1000; }

static void minutes_over_time(void **state) {
  (void)state;
  okegw_metrics *m = okegw_metrics_new();
  assert_non_null(m);
  okegw_metrics_set_clock(m, fake_clock);
  okegw_conn_metrics *a = okegw_metrics_connector(m, "ta");
  int put = okegw_interaction_by_name("flow2.put_offering");
  unsigned long n, e;
  /* minute k gets k + 1 requests (one of them a 500) and k + 1 exchanges
   * (one failed), for k = 0..9 */
  for (int k = 0; k < 10; k++) {
    at_minute(T0_MIN + k, 59);
    for (int i = 0; i <= k; i++) {
      okegw_metrics_request(m, a, NULL, put, i ? 200 : 500, 0.01);
      okegw_metrics_exchange(a, i ? 200 : 0);
    }
  }
  /* at minute 9: the last entry is minute 9, the one 9 before it minute 0 */
  cJSON *o = traffic(a);
  assert_int_equal((int)num(o, "requests"), 55);
  assert_int_equal((int)num(o, "errors"), 10);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(minute_at(o, 59), "minute")->valuestring,
                      "2026-12-06T20:40:00Z");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(minute_at(o, 50), "minute")->valuestring,
                      "2026-12-06T20:31:00Z");
  assert_int_equal((int)num(minute_at(o, 50), "requests"), 1);
  assert_int_equal((int)num(minute_at(o, 59), "requests"), 10);
  assert_int_equal((int)num(minute_at(o, 49), "requests"), 0);
  cJSON_Delete(o);
  /* /readyz's 5 minutes: minutes 5..9 */
  okegw_metrics_recent(a, &n, &e);
  assert_int_equal(n, 6 + 7 + 8 + 9 + 10);
  assert_int_equal(e, 5);
  /* a minute on: 6..10, minute 10 still empty */
  at_minute(T0_MIN + 10, 0);
  okegw_metrics_recent(a, &n, &e);
  assert_int_equal(n, 7 + 8 + 9 + 10);
  assert_int_equal(e, 4);
  /* 59 minutes after minute 0 it is still in the hour; at 60 it is gone,
   * and its bucket, written again, holds only the new minute */
  at_minute(T0_MIN + 59, 30);
  o = traffic(a);
  assert_int_equal((int)num(o, "requests"), 55);
  assert_int_equal((int)num(minute_at(o, 0), "requests"), 1);
  cJSON_Delete(o);
  okegw_metrics_recent(a, &n, &e);
  assert_true(n == 0 && e == 0);
  at_minute(T0_MIN + 60, 0);
  okegw_metrics_request(m, a, NULL, put, 429, 0.01);
  o = traffic(a);
  assert_int_equal((int)num(o, "requests"), 54 + 1);
  assert_int_equal((int)num(o, "errors"), 9 + 1);
  assert_int_equal((int)num(minute_at(o, 59), "requests"), 1);
  assert_int_equal((int)num(minute_at(o, 59), "errors"), 1);
  assert_int_equal((int)num(minute_at(o, 8), "requests"), 10); /* minute 9 */
  cJSON_Delete(o);
  /* an hour and more of silence: nothing left, in either count */
  at_minute(T0_MIN + 200, 0);
  expect_traffic(a, 0, 0);
  okegw_metrics_recent(a, &n, &e);
  assert_true(n == 0 && e == 0);
  /* a clock set back: minutes ahead of it are not counted */
  at_minute(T0_MIN + 200, 10);
  okegw_metrics_exchange(a, 500);
  at_minute(T0_MIN + 198, 0);
  okegw_metrics_recent(a, &n, &e);
  assert_true(n == 0 && e == 0);
  okegw_metrics_free(m);
}

/* ---- several threads ----------------------------------------------------- */

#define NWORKERS 4
#define PER_WORKER 100000
#define NNEW 500 /* slots made by name while the workers count */

typedef struct shared {
  okegw_metrics *m;
  okegw_conn_metrics *a, *b, *caller;
  int put;
  pthread_barrier_t start; /* all threads at once: as much overlap as can be */
  int workers_done;        /* atomic */
  int errors; /* atomic: what a thread found wrong (cmocka asserts only on the main one) */
  int renders;
} shared;

static void *worker(void *arg) {
  shared *sh = arg;
  pthread_barrier_wait(&sh->start);
  for (int i = 0; i < PER_WORKER; i++) {
    okegw_metrics_request(sh->m, sh->a, sh->caller, sh->put, i % 10 ? 200 : 503, 0.01);
    okegw_metrics_exchange(sh->a, i % 10 ? 200 : 0);
    okegw_metrics_delivery_attempt(sh->b, i % 4 ? OKEGW_ATTEMPT_DELIVERED : OKEGW_ATTEMPT_RETRY,
                                   i % 4 ? 200 : 503);
  }
  __atomic_fetch_add(&sh->workers_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* Asks for new names (each twice: the same slot) and the workers' names
 * (the slots they count in). */
static void *slot_maker(void *arg) {
  shared *sh = arg;
  char name[16];
  pthread_barrier_wait(&sh->start);
  for (int i = 0; i < NNEW; i++) {
    snprintf(name, sizeof name, "new%d", i);
    okegw_conn_metrics *cm = okegw_metrics_connector(sh->m, name);
    if (!cm || cm != okegw_metrics_connector(sh->m, name) ||
        okegw_metrics_connector(sh->m, "ta") != sh->a ||
        okegw_metrics_connector(sh->m, "tb") != sh->b)
      __atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED);
    okegw_metrics_request(sh->m, cm, NULL, sh->put, 200, 0.01);
  }
  return NULL;
}

/* The value of the series that starts with prefix (name{labels}), 0 when
 * it is not there. */
static unsigned long long value_of(const char *text, const char *prefix) {
  const char *p = strstr(text, prefix);
  return p ? strtoull(p + strlen(prefix), NULL, 10) : 0;
}

static const char *const ta_2xx = "okegw_requests_total{connector=\"ta\",flow=\"2\",interaction="
                                  "\"flow2.put_offering\",status_class=\"2xx\"} ";
static const char *const ta_5xx = "okegw_requests_total{connector=\"ta\",flow=\"2\",interaction="
                                  "\"flow2.put_offering\",status_class=\"5xx\"} ";
static const char *const ta_count =
    "okegw_request_duration_seconds_count{connector=\"ta\",flow=\"2\"} ";
static const char *const tb_delivered =
    "okegw_delivery_attempts_total{connector=\"tb\",outcome=\"delivered\"} ";
static const char *const tb_retry =
    "okegw_delivery_attempts_total{connector=\"tb\",outcome=\"retry\"} ";

/* Scrapes until the workers are done: every scrape whole, no counter
 * going back. */
static void *scraper(void *arg) {
  shared *sh = arg;
  unsigned long long last[5] = {0};
  const char *const series[5] = {ta_2xx, ta_5xx, ta_count, tb_delivered, tb_retry};
  int done;
  pthread_barrier_wait(&sh->start);
  do {
    done = __atomic_load_n(&sh->workers_done, __ATOMIC_ACQUIRE) == NWORKERS;
    okegw_gateway g = {.metrics = sh->m};
    okegw_buf b = {0};
    if (okegw_metrics_render(&g, &b) < 0 || okegw_buf_append(&b, "", 1) < 0 ||
        !strstr(b.data, "process_start_time_seconds "))
      __atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED);
    for (int k = 0; b.data && k < 5; k++) {
      unsigned long long v = value_of(b.data, series[k]);
      if (v < last[k])
        __atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED);
      last[k] = v;
    }
    okegw_buf_free(&b);
    unsigned long n, e;
    okegw_metrics_recent(sh->a, &n, &e);
    cJSON *o = cJSON_CreateObject();
    if (!o || okegw_metrics_traffic_json(sh->b, o) < 0)
      __atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED);
    cJSON_Delete(o);
    sh->renders++;
  } while (!done);
  return NULL;
}

/* NWORKERS threads count on the same slots while one makes new slots and
 * one scrapes: at the end every count is exactly there. */
static void threads_count_exactly(void **state) {
  (void)state;
  shared sh = {.m = okegw_metrics_new()};
  assert_non_null(sh.m);
  sh.a = okegw_metrics_connector(sh.m, "ta");
  sh.b = okegw_metrics_connector(sh.m, "tb");
  sh.caller = okegw_metrics_connector(sh.m, "dr");
  sh.put = okegw_interaction_by_name("flow2.put_offering");
  pthread_t t[NWORKERS + 2];
  assert_int_equal(pthread_barrier_init(&sh.start, NULL, NWORKERS + 2), 0);
  for (int i = 0; i < NWORKERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, worker, &sh), 0);
  assert_int_equal(pthread_create(&t[NWORKERS], NULL, slot_maker, &sh), 0);
  assert_int_equal(pthread_create(&t[NWORKERS + 1], NULL, scraper, &sh), 0);
  for (int i = 0; i < NWORKERS + 2; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&sh.start);
  assert_int_equal(sh.errors, 0);
  assert_true(sh.renders > 0);

  const unsigned long long total = (unsigned long long)NWORKERS * PER_WORKER;
  char *text = render(sh.m);
  assert_int_equal(value_of(text, ta_2xx), total / 10 * 9);
  assert_int_equal(value_of(text, ta_5xx), total / 10);
  assert_int_equal(value_of(text, ta_count), total);
  char line[128];
  snprintf(line, sizeof line, "%s%llu\n", tb_delivered, total / 4 * 3);
  has(text, line);
  snprintf(line, sizeof line, "%s%llu\n", tb_retry, total / 4);
  has(text, line);
  /* every slot once, in order of appearance: ta, tb, dr, then new0.. */
  const char *dl = "okegw_dead_letters_total{connector=";
  int slots = 0;
  for (const char *p = strstr(text, dl); p; p = strstr(p + 1, dl))
    slots++;
  assert_int_equal(slots, 3 + NNEW);
  has(text, "okegw_dead_letters_total{connector=\"dr\"} 0\n"
            "okegw_dead_letters_total{connector=\"new0\"} 0\n");
  char name[16];
  for (int i = 0; i < NNEW; i++) {
    snprintf(line, sizeof line,
             "okegw_requests_total{connector=\"new%d\",flow=\"2\",interaction=\"flow2.put_"
             "offering\",status_class=\"2xx\"} 1\n",
             i);
    has(text, line);
    snprintf(name, sizeof name, "new%d", i);
    expect_traffic(okegw_metrics_connector(sh.m, name), 1, 0);
  }
  free(text);

  /* the minute buckets: the hour's traffic and the 5 minutes' exchanges */
  expect_traffic(sh.a, (int)total, (int)(total / 10));
  expect_traffic(sh.b, (int)total, (int)(total / 4));
  expect_traffic(sh.caller, 0, 0);
  unsigned long n, e;
  okegw_metrics_recent(sh.a, &n, &e);
  assert_int_equal(n, total);
  assert_int_equal(e, total / 10);
  okegw_metrics_free(sh.m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(label_escaping),        cmocka_unit_test(counters_and_histograms),
      cmocka_unit_test(error_window),          cmocka_unit_test(traffic_counts),
      cmocka_unit_test(many_connectors),       cmocka_unit_test(minutes_over_time),
      cmocka_unit_test(threads_count_exactly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
