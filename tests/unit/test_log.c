/* The JSON log line: every line one valid object, whatever the message
 * holds, also when it is longer than a line may be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

/* Runs fn with stderr going to a file; returns what it wrote (malloc'd). */
static char *captured(void (*fn)(void)) {
  char path[] = "/tmp/okegw-test-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  fn();
  assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
  off_t len = lseek(fd, 0, SEEK_END);
  char *out = calloc(1, (size_t)len + 1);
  assert_non_null(out);
  assert_int_equal(pread(fd, out, (size_t)len, 0), len);
  close(fd);
  return out;
}

static void write_hostile(void) {
  okegw_log_set_format("json");
  okegw_log_set_level(OKEGW_LOG_DEBUG);
  okegw_log(OKEGW_LOG_WARN,
            &(okegw_log_fields){.connector = "ta\"1",
                                .path = "/ooapi/a\\b\n",
                                .status = 502,
                                .port = 8443,
                                .latency_ms = 12.3456,
                                .request_id = "r\x01\x1f"},
            "quote \" backslash \\ tab \t nl \n cr \r bell \a utf8 \xc3\xa9");
}

static void hostile_strings_escaped(void **state) {
  (void)state;
  char *out = captured(write_hostile);
  size_t len = strlen(out);
  assert_true(len > 2 && out[len - 1] == '\n');
  assert_null(memchr(out, '\n', len - 1)); /* one line */
  cJSON *o = cJSON_Parse(out);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "warn");
  assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring,
                      "quote \" backslash \\ tab \t nl \n cr \r bell \a utf8 \xc3\xa9");
  assert_string_equal(cJSON_GetObjectItem(o, "connector")->valuestring, "ta\"1");
  assert_string_equal(cJSON_GetObjectItem(o, "path")->valuestring, "/ooapi/a\\b\n");
  assert_string_equal(cJSON_GetObjectItem(o, "request_id")->valuestring, "r\x01\x1f");
  assert_int_equal(cJSON_GetObjectItem(o, "status")->valueint, 502);
  assert_int_equal(cJSON_GetObjectItem(o, "port")->valueint, 8443);
  assert_true(cJSON_GetObjectItem(o, "latency_ms")->valuedouble == 12.345);
  cJSON_Delete(o);
  free(out);
}

static void write_long(void) {
  /* 2000 control characters escape to 12,000 bytes: more than a line */
  char msg[2001];
  memset(msg, '\x02', 2000);
  msg[2000] = '\0';
  char path[5000];
  memset(path, '"', sizeof path - 1);
  path[sizeof path - 1] = '\0';
  okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.path = path, .connector = "c", .latency_ms = -1},
            "%s", msg);
}

static void long_line_still_one_object(void **state) {
  (void)state;
  char *out = captured(write_long);
  size_t len = strlen(out);
  assert_true(len <= 8192 && out[len - 1] == '\n');
  cJSON *o = cJSON_Parse(out);
  assert_non_null(o);
  const char *msg = cJSON_GetObjectItem(o, "msg")->valuestring;
  assert_true(strlen(msg) > 1000 && strspn(msg, "\x02") == strlen(msg));
  /* what no longer fitted is left out whole, never cut into invalid JSON */
  assert_null(cJSON_GetObjectItem(o, "path"));
  cJSON_Delete(o);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hostile_strings_escaped),
      cmocka_unit_test(long_line_still_one_object),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
