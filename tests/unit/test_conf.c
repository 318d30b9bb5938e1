/* plugins.conf parsing: defaults, every error kind with its line number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/conf.h"

static int parse(const char *text, okegw_conf *c, okegw_diag *d) {
  memset(d, 0, sizeof *d);
  return okegw_conf_parse("/etc/okegw/plugins.conf", text, c, d);
}

static int has_diag(const okegw_diag *d, const char *needle) {
  for (size_t i = 0; i < d->n; i++)
    if (strstr(d->msgs[i], needle))
      return 1;
  return 0;
}

static void defaults_and_values(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  const char *text = "; comment\n"
                     "[gateway]\n"
                     "listen = 0.0.0.0:9090\n"
                     "base_path = /a/ooapi/\n"
                     "store = data/okegw.db ; trailing comment\n"
                     "\n"
                     "[connector remindo]\n"
                     "plugin = ooapi\n"
                     "role = ta\n"
                     "phase = live\n"
                     "base_url = https://remindo.example/ooapi/\n"
                     "auth = bearer\n"
                     "token = s3cret\n"
                     "timeout_ms = 5000\n"
                     "[connector sim]\n"
                     "plugin = sim\n";
  assert_int_equal(parse(text, &c, &d), 0);
  assert_int_equal(d.n, 0);
  assert_string_equal(c.listen_host, "0.0.0.0");
  assert_int_equal(c.listen_port, 9090);
  assert_string_equal(c.base_path, "/a/ooapi");
  assert_string_equal(c.store, "/etc/okegw/data/okegw.db");
  assert_int_equal(c.max_body_bytes, 1048576);
  assert_int_equal(c.nconnectors, 2);
  okegw_conf_connector *r = &c.connectors[0];
  assert_string_equal(r->name, "remindo");
  assert_int_equal(r->phase, OKEGW_PHASE_LIVE);
  assert_int_equal(r->auth, OKEGW_AUTH_BEARER);
  assert_string_equal(r->base_url, "https://remindo.example/ooapi");
  assert_int_equal(r->timeout_ms, 5000);
  assert_int_equal(r->connect_timeout_ms, 2000);
  assert_string_equal(r->test_system, "remindo");
  assert_string_equal(okegw_conf_get(r, "token"), "s3cret");
  /* phase defaults to off: nothing goes live by accident */
  assert_int_equal(c.connectors[1].phase, OKEGW_PHASE_OFF);
  okegw_conf_free(&c);
}

static void errors_name_their_line(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  const char *text = "[gateway]\n"
                     "listen = nowhere\n" /* 2 */
                     "colour = blue\n"    /* 3 */
                     "[connector a]\n"    /* 4 */
                     "plugin = ooapi\n"
                     "phase = sometimes\n"  /* 6 */
                     "role = examiner\n"    /* 7 */
                     "base_url = ftp://x\n" /* 8 */
                     "timeout_ms = -5\n"    /* 9 */
                     "auth = bearer\n"      /* 10 */
                     "[connector a]\n"      /* 11 */
                     "[connector b]\n"      /* 12: no plugin */
                     "just text\n"          /* 13 */
                     "[elsewhere]\n";       /* 14 */
  assert_int_equal(parse(text, &c, &d), -1);
  assert_true(has_diag(&d, "plugins.conf:2: listen"));
  assert_true(has_diag(&d, "plugins.conf:3: unknown key 'colour'"));
  assert_true(has_diag(&d, "plugins.conf:6: phase"));
  assert_true(has_diag(&d, "plugins.conf:7: role"));
  assert_true(has_diag(&d, "plugins.conf:8: base_url"));
  assert_true(has_diag(&d, "plugins.conf:9: timeout_ms"));
  assert_true(has_diag(&d, "plugins.conf:4: [connector a]: auth = bearer needs 'token'"));
  assert_true(has_diag(&d, "plugins.conf:11: [connector a] appears twice"));
  assert_true(has_diag(&d, "plugins.conf:12: [connector b]: 'plugin' is required"));
  assert_true(has_diag(&d, "plugins.conf:13: expected 'key = value'"));
  assert_true(has_diag(&d, "plugins.conf:14: unknown section"));
  assert_null(c.connectors);
  okegw_diag_free(&d);
}

static void missing_gateway_and_repeats(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  assert_int_equal(parse("[connector x]\nplugin = sim\nplugin = sim\n", &c, &d), -1);
  assert_true(has_diag(&d, "missing [gateway] section"));
  assert_true(has_diag(&d, "plugins.conf:3: key 'plugin' repeated"));
  okegw_diag_free(&d);
  assert_int_equal(parse("", &c, &d), -1);
  okegw_diag_free(&d);
}

static void plugin_paths_resolve(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  assert_int_equal(parse("[gateway]\n[connector x]\nplugin = ./vendor/x.so\n"
                         "[connector y]\nplugin = /opt/y.so\n",
                         &c, &d),
                   0);
  assert_string_equal(c.connectors[0].plugin, "/etc/okegw/./vendor/x.so");
  assert_string_equal(c.connectors[1].plugin, "/opt/y.so");
  okegw_conf_free(&c);
}

/* Every key the parser handles must also be known as a host key, or a
 * plugin's key check would refuse it (the two lists live apart). */
static void every_host_key_is_known(void **state) {
  (void)state;
  static const char *const keys[] = {"plugin",
                                     "role",
                                     "phase",
                                     "base_url",
                                     "auth",
                                     "token",
                                     "api_key",
                                     "api_key_header",
                                     "connect_timeout_ms",
                                     "timeout_ms",
                                     "test_system",
                                     "scripts",
                                     "callback_token",
                                     "inbound_token",
                                     "scopes",
                                     "validate_answers",
                                     NULL};
  for (size_t i = 0; keys[i]; i++)
    if (!okegw_conf_is_host_key(keys[i]))
      fail_msg("'%s' is parsed but not a host key", keys[i]);
  okegw_conf c;
  okegw_diag d;
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\nrole = tpl\n"
                         "inbound_token = 0123456789abcdef\nscopes = flow-0 nl-test-admin-flow-6\n"
                         "validate_answers = block\n[connector b]\nplugin = sim\nrole = dr\n",
                         &c, &d),
                   0);
  assert_int_equal(c.connectors[0].scopes, OKEGW_SCOPE_FLOW0 | OKEGW_SCOPE_FLOW6);
  assert_int_equal(c.connectors[0].validate_answers, OKEGW_CHECK_BLOCK);
  assert_int_equal(c.connectors[1].scopes, OKEGW_SCOPE_FLOW0 | OKEGW_SCOPE_FLOW15);
  okegw_conf_free(&c);
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\nscopes = flow-7\n"
                         "inbound_token = short\nvalidate_answers = maybe\n",
                         &c, &d),
                   -1);
  assert_true(has_diag(&d, "plugins.conf:4: scopes: unknown scope 'flow-7'"));
  assert_true(has_diag(&d, "plugins.conf:5: inbound_token: use at least 16 characters"));
  assert_true(has_diag(&d, "plugins.conf:6: validate_answers"));
  okegw_diag_free(&d);
}

/* The outbox keys: defaults, values, and refusals with their line. */
static void outbox_keys(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\n", &c, &d), 0);
  assert_string_equal(c.store_sync, "full");
  assert_int_equal(c.delivery_retention_s, 30L * 86400);
  assert_int_equal(c.outbox_max_open, 100000);
  okegw_conf_connector *a = &c.connectors[0];
  assert_int_equal(a->delivery_wait_ms, 2000);
  assert_int_equal(a->delivery_max_age_s, 86400);
  assert_int_equal(a->delivery_concurrency, 8);
  assert_int_equal(a->retry_first_ms, 1000);
  assert_int_equal(a->retry_max_ms, 300000);
  assert_int_equal(a->keep_bodies_s, 0);
  okegw_conf_free(&c);

  assert_int_equal(parse("[gateway]\nstore_sync = normal\ndelivery_retention_s = 3600\n"
                         "[connector a]\nplugin = sim\ndelivery_wait_ms = 0\n"
                         "delivery_max_age_s = 60\ndelivery_concurrency = 1\n"
                         "retry_first_ms = 50\nretry_max_ms = 50\nkeep_bodies_s = 600\n",
                         &c, &d),
                   0);
  assert_string_equal(c.store_sync, "normal");
  a = &c.connectors[0];
  assert_int_equal(a->delivery_wait_ms, 0);
  assert_int_equal(a->delivery_max_age_s, 60);
  assert_int_equal(a->delivery_concurrency, 1);
  assert_int_equal(a->retry_first_ms, 50);
  assert_int_equal(a->keep_bodies_s, 600);
  okegw_conf_free(&c);

  assert_int_equal(parse("[gateway]\nstore_sync = off\n"
                         "[connector a]\nplugin = sim\ndelivery_concurrency = 0\n"
                         "retry_first_ms = 5000\nretry_max_ms = 1000\n",
                         &c, &d),
                   -1);
  assert_true(has_diag(&d, "plugins.conf:2: store_sync: expected full or normal"));
  assert_true(has_diag(&d, "plugins.conf:5: delivery_concurrency"));
  assert_true(has_diag(&d, "retry_first_ms (5000) is larger than retry_max_ms (1000)"));
  okegw_diag_free(&d);
}

static void load_missing_file(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d = {0};
  assert_int_equal(okegw_conf_load("/nonexistent/plugins.conf", &c, &d), -1);
  assert_true(has_diag(&d, "/nonexistent/plugins.conf:0: cannot read"));
  okegw_diag_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_and_values),
      cmocka_unit_test(errors_name_their_line),
      cmocka_unit_test(missing_gateway_and_repeats),
      cmocka_unit_test(plugin_paths_resolve),
      cmocka_unit_test(load_missing_file),
      cmocka_unit_test(every_host_key_is_known),
      cmocka_unit_test(outbox_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
