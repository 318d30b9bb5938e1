/* Query strings, percent-decoding, UUID and UTF-8 checks (input from the
 * network), hex digests and RFC 3339 times. */
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
  assert_true(okegw_is_uuid("123E4567-E89B-12D3-A456-426614174000"));
  assert_false(okegw_is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
  assert_false(okegw_is_uuid("123e4567-e89b-12d3-a456_426614174000"));
  assert_false(okegw_is_uuid(""));
  assert_false(okegw_is_uuid(NULL));
  char u[37];
  okegw_uuid4(u);
  assert_true(okegw_is_uuid(u));
  assert_int_equal(u[14], '4');
  /* ids come from a pool of random bytes refilled every 32: across
   * refills each is a version-4 UUID and none repeats */
  enum { N = 200 };
  static char ids[N][37];
  for (int i = 0; i < N; i++) {
    okegw_uuid4(ids[i]);
    assert_true(okegw_is_uuid(ids[i]));
    assert_int_equal(ids[i][14], '4');
    assert_true(strchr("89ab", ids[i][19]) != NULL);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(ids[i], ids[j]);
  }
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

static void rfc3339_parsing(void **state) {
  (void)state;
  long long ms = 0;
  assert_int_equal(okegw_parse_rfc3339("2026-12-03T10:44:18.123Z", &ms), 0);
  assert_int_equal(ms, 1796294658123LL);
  assert_int_equal(okegw_parse_rfc3339("2026-12-03T11:44:18.123+01:00", &ms), 0);
  assert_int_equal(ms, 1796294658123LL);
  assert_int_equal(okegw_parse_rfc3339("2026-12-03t10:44:18.123456789z", &ms), 0);
  assert_int_equal(ms, 1796294658123LL);
  assert_int_equal(okegw_parse_rfc3339("2026-12-03T10:44:18.1Z", &ms), 0);
  assert_int_equal(ms, 1796294658100LL);
  assert_int_equal(okegw_parse_rfc3339("2026-12-03 05:14:18-05:30", &ms), 0);
  assert_int_equal(ms, 1796294658000LL);
  /* prefixes, as `okegw audit --since` takes them */
  assert_int_equal(okegw_parse_rfc3339("2026-12-03", &ms), 0);
  assert_int_equal(ms, 1796256000000LL);
  assert_int_equal(okegw_parse_rfc3339("2026-12-03T10:44", &ms), 0);
  assert_int_equal(ms, 1796294640000LL);
  assert_int_equal(okegw_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(okegw_parse_rfc3339("1969-12-31T23:59:59.999Z", &ms), 0);
  assert_int_equal(ms, -1);
  assert_int_equal(okegw_parse_rfc3339("2024-02-29", &ms), 0);
  /* what formats comes back */
  char t[40];
  okegw_parse_rfc3339("2000-02-29T23:59:59.999Z", &ms);
  okegw_format_rfc3339(ms, 1, t, sizeof t);
  assert_string_equal(t, "2000-02-29T23:59:59.999Z");
  const char *bad[] = {"",
                       "2026",
                       "2026-12",
                       "2026-12-3",
                       "2026-13-01",
                       "2026-00-10",
                       "2026-02-29",
                       "2100-02-29",
                       "2026-04-31",
                       "2026-12-03T",
                       "2026-12-03T10",
                       "2026-12-03T24:00",
                       "2026-12-03T10:60",
                       "2026-12-03T10:44:61Z",
                       "2026-12-03T10:44:18.Z",
                       "2026-12-03T10:44:18+0100",
                       "2026-12-03T10:44:18+01",
                       "2026-12-03T10:44:18ZZ",
                       "2026-12-03Z",
                       "2026-12-03 ",
                       "yesterday",
                       NULL};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ms = 42;
    assert_int_equal(okegw_parse_rfc3339(bad[i], &ms), -1);
    assert_int_equal(ms, 42);
  }
}

static void utf8_text(void **state) {
  (void)state;
  assert_true(okegw_utf8_valid("", 0));
  assert_true(okegw_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x93", 14));
  assert_true(okegw_utf8_valid("a\0b", 3));          /* NUL is UTF-8; callers that mind check it */
  assert_false(okegw_utf8_valid("\xc0\xaf", 2));     /* overlong '/' */
  assert_false(okegw_utf8_valid("\xed\xa0\x80", 3)); /* a UTF-16 surrogate */
  assert_false(okegw_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
  /* ASCII is taken eight bytes at a time: sequences and faults on either
   * side of those words, and at the very end */
  char t[40];
  for (size_t at = 0; at + 4 <= 24; at++) {
    memset(t, 'x', 24);
    memcpy(t + at, "\xf0\x9f\x8e\x93", 4);
    assert_true(okegw_utf8_valid(t, 24));
    t[at + 3] = 'x'; /* cut short */
    assert_false(okegw_utf8_valid(t, 24));
    memset(t, 'x', 24);
    t[at] = (char)0xff;
    assert_false(okegw_utf8_valid(t, 24));
    assert_true(okegw_utf8_valid(t, at)); /* up to the fault */
  }
  memset(t, 'y', 17);
  t[16] = (char)0xc3;
  assert_false(okegw_utf8_valid(t, 17));         /* a lead byte last */
  assert_false(okegw_utf8_valid("\xe2\x82", 2)); /* cut short */
  assert_false(okegw_utf8_valid("\x80", 1));     /* a lone continuation */
  assert_false(okegw_utf8_valid("\xff", 1));
  assert_int_equal(okegw_utf8_seq("\xe2\x82\xac!", 4), 3);
  assert_int_equal(okegw_utf8_seq("\xe2\x82\xac", 2), 0);

  char *c = okegw_utf8_clean("ok \xff\xe2\x82\xac", 0, 0);
  assert_string_equal(c, "ok \xef\xbf\xbd\xe2\x82\xac");
  free(c);
  c = okegw_utf8_clean("a\tb\nc", 1, 0);
  assert_string_equal(c, "a b c");
  free(c);
  c = okegw_utf8_clean("a\tb", 0, 0);
  assert_string_equal(c, "a\tb");
  free(c);
  /* cut by characters, not bytes */
  c = okegw_utf8_clean("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 1, 5);
  assert_string_equal(c, "\xc3\xa9\xc3\xa9...");
  free(c);
  c = okegw_utf8_clean("12345", 1, 5);
  assert_string_equal(c, "12345");
  free(c);
}

static void hex_digests(void **state) {
  (void)state;
  char h[65];
  const unsigned char b[] = {0x00, 0x7f, 0xa5, 0xff};
  okegw_hex(b, sizeof b, h);
  assert_string_equal(h, "007fa5ff");
  okegw_hex(b, 0, h);
  assert_string_equal(h, "");
  okegw_sha256_hex("abc", 3, h);
  assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  okegw_sha256_hex(NULL, 0, h);
  assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void uuids_inside_text(void **state) {
  (void)state;
  char a[] = "/associations/ABCDEF01-0000-4000-8000-00000000000A/url";
  assert_int_equal(okegw_uuids_lower_in(a), 1);
  assert_string_equal(a, "/associations/abcdef01-0000-4000-8000-00000000000a/url");
  assert_int_equal(okegw_uuids_lower_in(a), 0);
  char b[] = "ABCDEF01-0000-4000-8000-00000000000A@Alpha:ABCDEF02-0000-4000-8000-00000000000B";
  assert_int_equal(okegw_uuids_lower_in(b), 2);
  assert_string_equal(
      b, "abcdef01-0000-4000-8000-00000000000a@Alpha:abcdef02-0000-4000-8000-00000000000b");
  /* a longer run of hex digits is no UUID; too short text is left alone */
  char c[] = "FABCDEF01-0000-4000-8000-00000000000A";
  assert_int_equal(okegw_uuids_lower_in(c), 0);
  assert_string_equal(c, "FABCDEF01-0000-4000-8000-00000000000A");
  char d[] = "ABC";
  assert_int_equal(okegw_uuids_lower_in(d), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(query_values),
      cmocka_unit_test(bad_escapes_and_overflow),
      cmocka_unit_test(uuids),
      cmocka_unit_test(buffers_and_problems),
      cmocka_unit_test(rfc3339_times),
      cmocka_unit_test(rfc3339_parsing),
      cmocka_unit_test(utf8_text),
      cmocka_unit_test(hex_digests),
      cmocka_unit_test(uuids_inside_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
