/* The metrics registry (ops/metrics.c): label values escaped as the text
 * format asks, histograms cumulative with +Inf equal to _count, counters
 * per connector name kept in one slot, the live error window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
  okegw_metrics_request(m, a, put, 201, 0.003);
  okegw_metrics_request(m, a, put, 200, 0.2);
  okegw_metrics_request(m, a, put, 502, 50);
  okegw_metrics_request(m, NULL, 0, 404, 0.0001);
  okegw_metrics_violation(m, put, "R12", "request");
  okegw_metrics_violation(m, put, "R12", "request");
  okegw_metrics_violation(m, put, "R21", "answer");
  okegw_metrics_mapping_error(a, put, 1);
  okegw_metrics_delivery_attempt(a, OKEGW_ATTEMPT_DEAD);
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

static void error_window(void **state) {
  (void)state;
  okegw_metrics *m = okegw_metrics_new();
  okegw_conn_metrics *a = okegw_metrics_connector(m, "ta");
  unsigned long n, e;
  okegw_metrics_recent(a, &n, &e);
  assert_true(n == 0 && e == 0);
  okegw_metrics_exchange(a, 200);
  okegw_metrics_exchange(a, 504);
  okegw_metrics_exchange(a, 0);
  okegw_metrics_exchange(a, 404);
  okegw_metrics_recent(a, &n, &e);
  assert_int_equal(n, 4);
  assert_int_equal(e, 2);
  okegw_metrics_recent(NULL, &n, &e);
  assert_int_equal(n, 0);
  okegw_metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(label_escaping),
      cmocka_unit_test(counters_and_histograms),
      cmocka_unit_test(error_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
