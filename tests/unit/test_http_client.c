/* The HTTP client's end of life: after okegw_http_close the client refuses
 * requests, and stays readable until okegw_http_free, however many loop turns
 * pass in between (a connector that ends late, such as one waiting for an
 * OAuth token, may still ask it; it once read freed memory then). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_client.h"

static int calls;

static void on_done(void *ud, const okegw_http_result *r) {
  (void)ud;
  (void)r;
  calls++;
}

static void refused_after_close(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  okegw_http *h = NULL;
  assert_int_equal(okegw_http_init(&loop, &h), 0);
  okegw_http_close(h);
  uv_run(&loop, UV_RUN_DEFAULT); /* the client's timer handle closes */
  okegw_http_opts o = {.method = "GET", .url = "http://127.0.0.1:9/"};
  calls = 0;
  assert_int_equal(okegw_http_request(h, &o, on_done, NULL), -1);
  okegw_http_close(h); /* twice is harmless */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(calls, 0);
  okegw_http_free(h); /* frees at once: the handle is closed */
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void free_before_the_handle_closed(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  okegw_http *h = NULL;
  assert_int_equal(okegw_http_init(&loop, &h), 0);
  okegw_http_free(h); /* closes, and frees once the loop closed the handle */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  okegw_http_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(refused_after_close),
      cmocka_unit_test(free_before_the_handle_closed),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  okegw_http_global_cleanup();
  return rc;
}
