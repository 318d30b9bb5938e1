/* The PostgreSQL store's connection strings: which are PostgreSQL, which
 * libpq takes, and that no message or log line carries the password. The
 * schema itself is tested against a real PostgreSQL (tests/integration/
 * test_pg_schema.py runs test_pg_schema). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

static void which_are_uris(void **state) {
  (void)state;
  assert_true(okegw_pg_is_uri("postgresql://okegw@db.school.nl/okegw"));
  assert_true(okegw_pg_is_uri("postgres://db/okegw"));
  assert_false(okegw_pg_is_uri("okegw.db"));
  assert_false(okegw_pg_is_uri("/var/lib/okegw/postgresql://x"));
  assert_false(okegw_pg_is_uri("mysql://db/okegw"));
  assert_false(okegw_pg_is_uri(NULL));
}

static void checked_as_libpq_reads_them(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(okegw_pg_check_uri("postgresql://okegw@127.0.0.1:5432/okegw", err, sizeof err),
                   0);
  assert_int_equal(
      okegw_pg_check_uri("postgresql://u:pw@[::1]:5433/okegw?sslmode=verify-full&connect_timeout=5",
                         err, sizeof err),
      0);
  /* no database named */
  assert_int_equal(okegw_pg_check_uri("postgresql://okegw@127.0.0.1:5432", err, sizeof err), -1);
  assert_non_null(strstr(err, "no database"));
  /* libpq refuses: an unknown parameter, a bad port */
  assert_int_equal(okegw_pg_check_uri("postgresql://h/db?nosuchoption=1", err, sizeof err), -1);
  assert_non_null(strstr(err, "nosuchoption"));
  assert_int_equal(okegw_pg_check_uri("okegw.db", err, sizeof err), -1);
  /* a message about a bad string never quotes its password */
  assert_int_equal(
      okegw_pg_check_uri("postgresql://u:Geheim-42@h/db?password=Geheim-43&x=Geheim-44", err,
                         sizeof err),
      -1);
  assert_null(strstr(err, "Geheim-42"));
  assert_null(strstr(err, "Geheim-43"));
  /* libpq quotes a badly encoded token: here the password itself */
  assert_int_equal(okegw_pg_check_uri("postgresql://u:Geheim%zz46@h/db", err, sizeof err), -1);
  assert_non_null(strstr(err, "percent"));
  assert_null(strstr(err, "Geheim"));
}

static void redacted(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"postgresql://okegw:s3cret@db:5432/okegw", "postgresql://okegw:***@db:5432/okegw"},
      {"postgresql://okegw@db/okegw", "postgresql://okegw@db/okegw"},
      /* an @ in the password: the last @ before the host ends it */
      {"postgresql://okegw:p@ss@db/okegw", "postgresql://okegw:***@db/okegw"},
      {"postgresql://db/okegw?user=okegw&password=s3cret&sslmode=require",
       "postgresql://db/okegw?user=okegw&password=***&sslmode=require"},
      {"postgresql://db/okegw?password=a&password=b",
       "postgresql://db/okegw?password=***&password=***"},
      {"postgresql://db/okegw?xpassword=keep", "postgresql://db/okegw?xpassword=keep"},
      {"postgres://u:x@h/d?password=y", "postgres://u:***@h/d?password=***"},
      /* libpq ends the authority at '/' only: a '?' may be in the password */
      {"postgresql://gw:se?cret@h/db", "postgresql://gw:***@h/db"},
      {"postgresql://h/db?sslpassword=keyphrase&sslmode=require",
       "postgresql://h/db?sslpassword=***&sslmode=require"},
      {"postgresql://h/db?password=", "postgresql://h/db?password=***"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = okegw_pg_redact(cases[i][0]);
    assert_non_null(r);
    assert_string_equal(r, cases[i][1]);
    free(r);
  }
}

static void connect_failure_names_no_password(void **state) {
  (void)state;
  /* port 1 on loopback: refused at once */
  PGconn *c = NULL;
  char *err = NULL;
  assert_int_equal(
      okegw_pg_connect("postgresql://okegw:Geheim-45@127.0.0.1:1/okegw?connect_timeout=2", &c,
                       &err),
      -1);
  assert_null(c);
  assert_non_null(err);
  assert_non_null(
      strstr(err, "cannot connect to PostgreSQL at postgresql://okegw:***@127.0.0.1:1"));
  assert_null(strstr(err, "Geheim-45"));
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(which_are_uris),
      cmocka_unit_test(checked_as_libpq_reads_them),
      cmocka_unit_test(redacted),
      cmocka_unit_test(connect_failure_names_no_password),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
