/* Client secret hashes: a hash verifies its secret and nothing else; lines
 * that are not hashes, or would make a check too costly, are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth/secret.h"

static void hash_and_verify(void **state) {
  (void)state;
  const char *s = "the-client-secret-0001";
  char *line = okegw_secret_hash(s, strlen(s));
  assert_non_null(line);
  assert_memory_equal(line, "$scrypt$ln=15,r=8,p=1$", 22);
  const char *why = NULL;
  assert_int_equal(okegw_secret_check(line, &why), 0);
  assert_int_equal(okegw_secret_verify(s, strlen(s), line, &why), 1);
  assert_int_equal(okegw_secret_verify(s, strlen(s) - 1, line, &why), 0);
  assert_int_equal(okegw_secret_verify("the-client-secret-0002", 22, line, &why), 0);
  /* the same secret hashes differently each time (a new salt) */
  char *again = okegw_secret_hash(s, strlen(s));
  assert_non_null(again);
  assert_string_not_equal(line, again);
  assert_int_equal(okegw_secret_verify(s, strlen(s), again, &why), 1);
  free(again);
  /* a changed hash byte no longer verifies */
  size_t n = strlen(line);
  line[n - 3] = line[n - 3] == 'A' ? 'B' : 'A';
  assert_int_equal(okegw_secret_verify(s, strlen(s), line, &why), 0);
  free(line);
}

static void lines_refused(void **state) {
  (void)state;
  const char *why = NULL;
  const char *bad[] = {
      NULL,
      "",
      "the-secret-itself",
      "$2y$10$abcdefghijklmnopqrstuv",
      "$scrypt$ln=15,r=8,p=1$",
      "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$",
      "$scrypt$ln=15,r=8,p=1$!!!!$aGFzaGhhc2hoYXNoaGFzaA==",
      "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
      "$scrypt$ln=15,r=99,p=1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    assert_int_equal(okegw_secret_check(bad[i], &why), -1);
    assert_non_null(why);
    assert_int_equal(okegw_secret_verify("x", 1, bad[i], &why), -1);
  }
}

static void generated(void **state) {
  (void)state;
  char a[44], b[44];
  assert_int_equal(okegw_secret_generate(a), 0);
  assert_int_equal(okegw_secret_generate(b), 0);
  assert_int_equal(strlen(a), 43);
  assert_string_not_equal(a, b);
  for (size_t i = 0; i < 43; i++)
    assert_non_null(
        strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hash_and_verify),
      cmocka_unit_test(lines_refused),
      cmocka_unit_test(generated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
