/* Traffic per connector in minute buckets (ops/traffic.c): counts, what
 * counts as an error, and the shape the admin API returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ops/traffic.h"

static cJSON *of(const char *connector) {
  cJSON *o = cJSON_CreateObject();
  assert_non_null(o);
  assert_int_equal(okegw_traffic_json(connector, o), 0);
  return o;
}

static double num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

static void counts(void **state) {
  (void)state;
  okegw_traffic_reset();
  int statuses[] = {200, 201, 202, 400, 404, 401, 403, 429, 500, 502, 504};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    okegw_traffic_note("ta", statuses[i]);
  okegw_traffic_note("tb", 200);
  okegw_traffic_note(NULL, 500); /* no connector: not counted anywhere */
  cJSON *o = of("ta");
  assert_int_equal((int)num(o, "requests"), 11);
  assert_int_equal((int)num(o, "errors"), 6); /* 401, 403, 429 and the 5xx */
  const cJSON *pm = cJSON_GetObjectItemCaseSensitive(o, "perMinute");
  assert_int_equal(cJSON_GetArraySize(pm), OKEGW_TRAFFIC_MINUTES);
  const cJSON *last = cJSON_GetArrayItem(pm, OKEGW_TRAFFIC_MINUTES - 1);
  assert_int_equal((int)num(last, "requests"), 11);
  assert_int_equal((int)num(last, "errors"), 6);
  const cJSON *first = cJSON_GetArrayItem(pm, 0);
  assert_int_equal((int)num(first, "requests"), 0);
  const char *m0 = cJSON_GetObjectItemCaseSensitive(first, "minute")->valuestring;
  const char *m1 = cJSON_GetObjectItemCaseSensitive(last, "minute")->valuestring;
  assert_true(strcmp(m0, m1) < 0);  /* oldest first */
  assert_int_equal(strlen(m1), 20); /* 2026-12-06T20:31:00Z */
  assert_string_equal(m1 + 16, ":00Z");
  cJSON_Delete(o);
  o = of("tb");
  assert_int_equal((int)num(o, "requests"), 1);
  assert_int_equal((int)num(o, "errors"), 0);
  cJSON_Delete(o);
  o = of("never");
  assert_int_equal((int)num(o, "requests"), 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "perMinute")), 60);
  cJSON_Delete(o);
  okegw_traffic_reset();
  o = of("ta");
  assert_int_equal((int)num(o, "requests"), 0);
  cJSON_Delete(o);
}

static void many_connectors(void **state) {
  (void)state;
  char name[16];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "c%d", i);
    for (int k = 0; k <= i; k++)
      okegw_traffic_note(name, 200);
  }
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "c%d", i);
    cJSON *o = of(name);
    assert_int_equal((int)num(o, "requests"), i + 1);
    cJSON_Delete(o);
  }
  okegw_traffic_reset();
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(counts), cmocka_unit_test(many_connectors)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
