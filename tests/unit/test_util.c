/* Query strings, percent-decoding and UUID checks: input from the network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "oke/problem.h"
#include "base/util.h"

static void query_values(void **state) {
  (void)state;
  char v[64];
  const char *q = "componentType=test&q=rekenen+2F&pageSize=20&x&licensed=%74rue";
  assert_true(okegw_query_get(q, "q", v, sizeof v));
  assert_string_equal(v, "rekenen 2F");
  assert_true(okegw_query_get(q, "pageSize", v, sizeof v));
  assert_string_equal(v, "20");
  assert_true(okegw_query_get(q, "licensed", v, sizeof v));
  assert_string_equal(v, "true");
  assert_true(okegw_query_get(q, "x", v, sizeof v));
  assert_string_equal(v, "");
  assert_false(okegw_query_get(q, "page", v, sizeof v));
  assert_false(okegw_query_get("", "q", v, sizeof v));
  assert_false(okegw_query_get(NULL, "q", v, sizeof v));
}

static void bad_escapes_and_overflow(void **state) {
  (void)state;
  char v[8];
  assert_int_equal(okegw_url_decode("%4", 2, v, sizeof v, 0), -1);
  assert_int_equal(okegw_url_decode("%zz", 3, v, sizeof v, 0), -1);
  assert_int_equal(okegw_url_decode("abcdefghij", 10, v, sizeof v, 0), -1);
  assert_int_equal(okegw_url_decode("a%20b", 5, v, sizeof v, 0), 3);
  assert_string_equal(v, "a b");
  assert_false(okegw_query_get("q=%zz", "q", v, sizeof v));
}

static void uuids(void **state) {
  (void)state;
  assert_true(okegw_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
  assert_false(okegw_is_uuid("123e4567-e89b-12d3-a456-42661417400"));
  assert_false(okegw_is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
  assert_false(okegw_is_uuid("123e4567xe89b-12d3-a456-426614174000"));
  assert_false(okegw_is_uuid("../../etc/passwd"));
  char u[37];
  okegw_uuid4(u);
  assert_true(okegw_is_uuid(u));
  assert_int_equal(u[14], '4');
}

static void buffers_and_problems(void **state) {
  (void)state;
  okegw_buf b = {0};
  for (int i = 0; i < 1000; i++)
    assert_int_equal(okegw_buf_printf(&b, "%04d", i), 0);
  assert_int_equal(b.len, 4000);
  assert_memory_equal(b.data + 3996, "0999", 4);
  okegw_buf_free(&b);
  char *p = okegw_problem_json(413, "Content Too Large", "body \"too\" big", "remindo");
  assert_non_null(p);
  assert_non_null(strstr(p, "\"status\":\"413\""));
  assert_non_null(strstr(p, "body \\\"too\\\" big"));
  assert_non_null(strstr(p, "\"connector\":\"remindo\""));
  free(p);
  assert_string_equal(okegw_status_text(431), "Request Header Fields Too Large");
}

/* Stored times shown as RFC 3339 in UTC. */
static void rfc3339_times(void **state) {
  (void)state;
  char t[40];
  okegw_format_rfc3339(1796294658123LL, 1, t, sizeof t);
  assert_string_equal(t, "2026-12-03T10:44:18.123Z");
  okegw_format_rfc3339(1796294658123LL, 0, t, sizeof t);
  assert_string_equal(t, "2026-12-03T10:44:18Z");
  okegw_format_rfc3339(-1, 1, t, sizeof t);
  assert_string_equal(t, "1969-12-31T23:59:59.999Z");
  assert_true(okegw_wall_ms() > 1796294658123LL - 400LL * 86400000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(query_values),
      cmocka_unit_test(bad_escapes_and_overflow),
      cmocka_unit_test(uuids),
      cmocka_unit_test(buffers_and_problems),
      cmocka_unit_test(rfc3339_times),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
