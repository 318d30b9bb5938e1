/* plugins.conf parsing: defaults, every error kind with its line number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Two connectors with one inbound_token (or callback_token) cannot be told
 * apart: an error on the second one's line naming the first's, never the
 * token itself. */
static void duplicate_tokens(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  const char *text = "[gateway]\n"
                     "[connector a]\n"                      /* 2 */
                     "plugin = sim\n"                       /* 3 */
                     "inbound_token = same-token-0123456\n" /* 4 */
                     "callback_token = cb-token-abcdefghij\n"
                     "[connector b]\n"                        /* 6 */
                     "plugin = sim\n"                         /* 7 */
                     "inbound_token = other-token-012345\n"   /* 8 */
                     "[connector c]\n"                        /* 9 */
                     "plugin = sim\n"                         /* 10 */
                     "callback_token = cb-token-abcdefghij\n" /* 11 */
                     "inbound_token = same-token-0123456\n";  /* 12 */
  assert_int_equal(parse(text, &c, &d), -1);
  assert_int_equal(d.n, 2);
  assert_true(has_diag(&d, "plugins.conf:12: inbound_token: [connector c] has the same value as "
                           "[connector a] (line 4)"));
  assert_true(has_diag(&d, "plugins.conf:11: callback_token: [connector c] has the same value as "
                           "[connector a] (line 5)"));
  assert_false(has_diag(&d, "same-token-0123456"));
  assert_false(has_diag(&d, "cb-token-abcdefghij"));
  okegw_diag_free(&d);

  /* one system's inbound token may equal another's callback token: they
   * are checked on different paths */
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\n"
                         "inbound_token = 0123456789abcdef\n[connector b]\nplugin = sim\n"
                         "callback_token = 0123456789abcdef\n",
                         &c, &d),
                   0);
  okegw_conf_free(&c);
}

static int has_word(const char *text, const char *value) {
  char quoted[128];
  snprintf(quoted, sizeof quoted, "`%s`", value);
  return strstr(text, quoted) != NULL;
}

/* The table's own invariants: what the parser, the defaults and the README
 * generator rely on. */
static void table_rows_are_sound(void **state) {
  (void)state;
  const okegw_conf_key *keys = okegw_conf_keys();
  size_t n = 0;
  for (const okegw_conf_key *k = keys; k->name; k++, n++) {
    for (const okegw_conf_key *o = keys; o < k; o++)
      if (o->section == k->section && strcmp(o->name, k->name) == 0)
        fail_msg("'%s' has two rows", k->name);
    if (!k->help || !*k->help || strpbrk(k->help, "|\n"))
      fail_msg("'%s': help must be one line without '|'", k->name);
    if ((k->def && strpbrk(k->def, "|\n`")) || (k->def && k->def_doc))
      fail_msg("'%s': a literal default or a described one, one line", k->name);
    switch (k->type) {
    case OKEGW_CT_INT:
    case OKEGW_CT_MS:
    case OKEGW_CT_S:
      if (k->size != sizeof(int) && k->size != sizeof(long))
        fail_msg("'%s': a number needs an int or long field", k->name);
      if (k->min > k->max)
        fail_msg("'%s': min above max", k->name);
      break;
    case OKEGW_CT_BYTES:
    case OKEGW_CT_KIB:
      if (k->size != sizeof(size_t) || k->min > k->max)
        fail_msg("'%s': a size needs a size_t field and min <= max", k->name);
      break;
    case OKEGW_CT_ENUM:
      if (k->size != sizeof(int) || !k->values)
        fail_msg("'%s': an enum needs an enum field and values", k->name);
      break;
    case OKEGW_CT_CHOICE:
      if (k->size != sizeof(char *) || !k->values)
        fail_msg("'%s': a choice needs a char * field and values", k->name);
      break;
    case OKEGW_CT_SCOPES:
      if (k->section != OKEGW_CONF_CONNECTOR || k->size != sizeof(unsigned))
        fail_msg("'%s': scopes are a connector's unsigned", k->name);
      break;
    default:
      if (k->size != sizeof(char *))
        fail_msg("'%s': text needs a char * field", k->name);
    }
    /* the README explains every allowed value */
    for (size_t i = 0; k->values && k->values[i]; i++)
      if (!has_word(k->help, k->values[i]))
        fail_msg("'%s': help does not mention `%s`", k->name, k->values[i]);
    if ((k->secret || k->unique) && k->type != OKEGW_CT_STRING)
      fail_msg("'%s': secret and unique keys are strings", k->name);
    if (k->unique && k->section != OKEGW_CONF_CONNECTOR)
      fail_msg("'%s': unique keys are a connector's", k->name);
    if (k->secret && k->def)
      fail_msg("'%s': a secret has no default", k->name);
  }
  assert_true(n >= 40);
}

/* Enum values land as the right constants; sizes in KiB become bytes. */
static void values_land_in_fields(void **state) {
  (void)state;
  okegw_conf c;
  okegw_diag d;
  assert_int_equal(parse("[gateway]\nlua_memory_kb = 256\nmax_connections = 7\nlog_level = warn\n"
                         "[connector a]\nplugin = sim\nrole = dr\nauth = apikey\napi_key = k\n"
                         "api_key_header = X-Key\nvalidate_answers = off\nkeep_bodies_s = 9\n",
                         &c, &d),
                   0);
  assert_int_equal(c.lua_memory_bytes, 256 * 1024);
  assert_int_equal(c.max_connections, 7);
  assert_string_equal(c.log_level, "warn");
  okegw_conf_connector *a = &c.connectors[0];
  assert_int_equal(a->role, OKEGW_ROLE_DR);
  assert_int_equal(a->auth, OKEGW_AUTH_APIKEY);
  assert_string_equal(a->api_key_header, "X-Key");
  assert_int_equal(a->validate_answers, OKEGW_CHECK_OFF);
  assert_int_equal(a->keep_bodies_s, 9);
  assert_string_equal(a->scripts, "/etc/okegw/scripts/a");
  assert_false(a->scripts_explicit);
  okegw_conf_free(&c);
}

/* Secret and host keys come from the table. */
static void secret_and_host_keys(void **state) {
  (void)state;
  static const char *const secrets[] = {"token", "api_key", "callback_token", "inbound_token"};
  for (size_t i = 0; i < 4; i++)
    assert_true(okegw_conf_is_secret(secrets[i]));
  assert_false(okegw_conf_is_secret("api_key_header"));
  assert_false(okegw_conf_is_secret("plugin"));
  assert_false(okegw_conf_is_secret("access_url_base"));
  for (const okegw_conf_key *k = okegw_conf_keys(); k->name; k++)
    if (k->section == OKEGW_CONF_CONNECTOR && !okegw_conf_is_host_key(k->name))
      fail_msg("'%s' has a connector row but is not a host key", k->name);
  assert_true(okegw_conf_is_host_key("keep_bodies_s"));
  assert_false(okegw_conf_is_host_key("listen")); /* a [gateway] key */
  assert_false(okegw_conf_is_host_key("access_url_base"));
}

/* One config with KEY = VALUE in its section; returns parse()'s result. */
static int parse_one(const okegw_conf_key *k, const char *value, okegw_conf *c, okegw_diag *d) {
  char text[512];
  if (k->section == OKEGW_CONF_GATEWAY)
    snprintf(text, sizeof text, "[gateway]\n%s = %s\n[connector a]\nplugin = sim\n", k->name,
             value);
  else
    snprintf(text, sizeof text, "[gateway]\n[connector a]\n%s = %s\n%s", k->name, value,
             strcmp(k->name, "plugin") == 0 ? "" : "plugin = sim\n");
  return parse(text, c, d);
}

/* Every row, driven by the table: its default is accepted when written out,
 * and each number just outside its range or a value outside its list is
 * refused on its line, naming the key, the range and the value. */
static void every_row_checks_its_range(void **state) {
  (void)state;
  for (const okegw_conf_key *k = okegw_conf_keys(); k->name; k++) {
    okegw_conf c;
    okegw_diag d;
    int line = k->section == OKEGW_CONF_GATEWAY ? 2 : 3;
    char want[256], value[64];
    if (k->def) {
      if (parse_one(k, k->def, &c, &d) != 0)
        fail_msg("'%s = %s' (its default) refused: %s", k->name, k->def, d.n ? d.msgs[0] : "");
      okegw_conf_free(&c);
    }
    switch (k->type) {
    case OKEGW_CT_INT:
    case OKEGW_CT_MS:
    case OKEGW_CT_S:
    case OKEGW_CT_BYTES:
    case OKEGW_CT_KIB:
      for (int side = 0; side < 2; side++) {
        snprintf(value, sizeof value, "%ld", side ? k->max + 1 : k->min - 1);
        assert_int_equal(parse_one(k, value, &c, &d), -1);
        snprintf(want, sizeof want, "plugins.conf:%d: %s: expected", line, k->name);
        if (!has_diag(&d, want))
          fail_msg("no '%s' for %s = %s", want, k->name, value);
        snprintf(want, sizeof want, "from %ld to %ld", k->min, k->max);
        assert_true(has_diag(&d, want));
        snprintf(want, sizeof want, "got '%s'", value);
        assert_true(has_diag(&d, want));
        okegw_diag_free(&d);
        /* the bounds themselves are taken (by this key: retry_first_ms at
         * its maximum still exceeds the default retry_max_ms) */
        snprintf(value, sizeof value, "%ld", side ? k->max : k->min);
        snprintf(want, sizeof want, "plugins.conf:%d: %s:", line, k->name);
        if (parse_one(k, value, &c, &d) == 0)
          okegw_conf_free(&c);
        if (has_diag(&d, want))
          fail_msg("%s = %s refused: %s", k->name, value, d.msgs[0]);
        okegw_diag_free(&d);
      }
      break;
    case OKEGW_CT_ENUM:
    case OKEGW_CT_CHOICE:
      assert_int_equal(parse_one(k, "bogus", &c, &d), -1);
      snprintf(want, sizeof want, "plugins.conf:%d: %s: expected %s", line, k->name, k->values[0]);
      if (!has_diag(&d, want) || !has_diag(&d, "got 'bogus'"))
        fail_msg("no '%s ... got 'bogus'' in: %s", want, d.n ? d.msgs[0] : "");
      for (size_t i = 0; k->values[i]; i++)
        assert_true(has_diag(&d, k->values[i]));
      okegw_diag_free(&d);
      /* every listed value is taken (auth = bearer alone still lacks its
       * token, a check of the whole section, not of this key) */
      snprintf(want, sizeof want, "plugins.conf:%d: %s:", line, k->name);
      for (size_t i = 0; k->values[i]; i++) {
        if (parse_one(k, k->values[i], &c, &d) == 0)
          okegw_conf_free(&c);
        if (has_diag(&d, want))
          fail_msg("%s = %s refused: %s", k->name, k->values[i], d.msgs[0]);
        okegw_diag_free(&d);
      }
      break;
    default: break;
    }
  }
}

/* The Markdown reference names every key once, secrets marked, with the
 * defaults as the parser applies them. */
static void reference_from_table(void **state) {
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  okegw_conf_print_keys(f, 1);
  fclose(f);
  assert_non_null(strstr(buf, "### `[gateway]`\n\n| key | default | meaning |\n|---|---|---|\n"));
  assert_non_null(strstr(buf, "| `inbound_token` (secret) | – |"));
  assert_non_null(strstr(buf, "| `listen` | `127.0.0.1:8080` |"));
  assert_non_null(strstr(buf, "| `test_system` | `NAME` |"));
  assert_non_null(strstr(buf, "; accepts 1 – 600000 ms |"));
  for (const okegw_conf_key *k = okegw_conf_keys(); k->name; k++) {
    char row[96];
    snprintf(row, sizeof row, "\n| `%s`%s | ", k->name, k->secret ? " (secret)" : "");
    if (!strstr(buf, row))
      fail_msg("no row for %s", k->name);
  }
  free(buf);
}

/* A secret from a file or the environment instead of the file itself. */
static void secrets_from_file_and_env(void **state) {
  (void)state;
  char path[] = "/tmp/okegw-secret-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *content = "from-a-file-0123456789\n";
  assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
  close(fd);
  setenv("OKEGW_TEST_SECRET", "from-the-environment-42", 1);
  char text[512];
  snprintf(text, sizeof text,
           "[gateway]\n[connector a]\nplugin = sim\ninbound_token_file = %s\n"
           "[connector b]\nplugin = sim\nauth = bearer\ntoken_env = OKEGW_TEST_SECRET\n",
           path);
  okegw_conf c;
  okegw_diag d;
  assert_int_equal(parse(text, &c, &d), 0);
  assert_string_equal(c.connectors[0].inbound_token, "from-a-file-0123456789");
  assert_string_equal(c.connectors[1].token, "from-the-environment-42");
  assert_true(okegw_conf_is_host_key("inbound_token_file"));
  assert_true(okegw_conf_is_secret("token_env"));
  assert_false(okegw_conf_is_host_key("plugin_file")); /* not a secret */
  okegw_conf_free(&c);
  okegw_diag_free(&d);
  /* errors: given twice, an unset variable, a missing file; never the value */
  snprintf(text, sizeof text,
           "[gateway]\n[connector a]\nplugin = sim\ninbound_token = literal-token-0001\n"
           "inbound_token_file = %s\n[connector b]\nplugin = sim\ninbound_token_env = "
           "OKEGW_TEST_UNSET_X\n[connector c]\nplugin = sim\ncallback_token_file = "
           "/nonexistent/secret\n",
           path);
  unsetenv("OKEGW_TEST_UNSET_X");
  assert_int_equal(parse(text, &c, &d), -1);
  assert_true(has_diag(&d, ":5: [connector a]: inbound_token is given twice"));
  assert_true(has_diag(&d, ":8: inbound_token_env: the environment variable 'OKEGW_TEST_UNSET_X'"));
  assert_true(has_diag(&d, ":11: callback_token_file: cannot read '/nonexistent/secret'"));
  for (size_t i = 0; i < d.n; i++)
    assert_null(strstr(d.msgs[i], "from-a-file"));
  okegw_diag_free(&d);
  unlink(path);
}

/* auth = oauth2: the secret comes from a file or the environment, never the
 * file itself; the scope defaults by role; what is missing is named. */
static void oauth2_keys(void **state) {
  (void)state;
  char path[] = "/tmp/okegw-test-secret-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "  s3cret\n", 9), 9);
  close(fd);
  okegw_conf c;
  okegw_diag d;
  char text[1024];
  snprintf(text, sizeof text,
           "[gateway]\n[connector a]\nplugin = sim\nrole = dr\nauth = oauth2\n"
           "token_url = https://login.example/token\nclient_id = school\n"
           "client_secret_file = %s\ntoken_auth_method = client_secret_post\n"
           "tls_min_version = 1.2\n",
           path);
  assert_int_equal(parse(text, &c, &d), 0);
  okegw_conf_connector *a = &c.connectors[0];
  assert_int_equal(a->auth, OKEGW_AUTH_OAUTH2);
  assert_string_equal(a->client_secret, "s3cret");
  assert_string_equal(a->oauth_scope, "nl-test-admin-flow-1-5 nl-test-admin-flow-6");
  assert_int_equal(a->token_auth_method, OKEGW_TOKEN_AUTH_POST);
  assert_int_equal(a->tls_min_version, OKEGW_TLS_1_2);
  okegw_conf_free(&c);
  unlink(path);
  assert_int_equal(parse(text, &c, &d), -1);
  assert_true(has_diag(&d, "client_secret_file: cannot read"));
  okegw_diag_free(&d);
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\nauth = oauth2\n", &c, &d), -1);
  assert_true(has_diag(&d, "needs 'token_url'"));
  assert_true(has_diag(&d, "needs 'client_id'"));
  assert_true(has_diag(&d, "needs 'client_secret_file' or 'client_secret_env'"));
  okegw_diag_free(&d);
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\nrole = tpl\nauth = oauth2\n"
                         "token_url = https://l.example/t\nclient_id = x\n"
                         "client_secret_env = OKEGW_UNIT_NO_SUCH_VARIABLE\n",
                         &c, &d),
                   -1);
  assert_true(has_diag(&d, "OKEGW_UNIT_NO_SUCH_VARIABLE is not set"));
  okegw_diag_free(&d);
  setenv("OKEGW_UNIT_SECRET", "abc", 1);
  assert_int_equal(parse("[gateway]\n[connector a]\nplugin = sim\nrole = tpl\nauth = oauth2\n"
                         "token_url = https://l.example/t\nclient_id = x\n"
                         "client_secret_env = OKEGW_UNIT_SECRET\n",
                         &c, &d),
                   0);
  assert_string_equal(c.connectors[0].client_secret, "abc");
  assert_string_equal(c.connectors[0].oauth_scope,
                      "nl-test-admin-flow-1-5 nl-test-admin-flow-2-3-4");
  assert_int_equal(c.connectors[0].tls_min_version, OKEGW_TLS_1_3);
  okegw_conf_free(&c);
  unsetenv("OKEGW_UNIT_SECRET");
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
      cmocka_unit_test(duplicate_tokens),
      cmocka_unit_test(table_rows_are_sound),
      cmocka_unit_test(secret_and_host_keys),
      cmocka_unit_test(values_land_in_fields),
      cmocka_unit_test(every_row_checks_its_range),
      cmocka_unit_test(reference_from_table),
      cmocka_unit_test(secrets_from_file_and_env),
      cmocka_unit_test(oauth2_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
