/* Test driver: connects to the PostgreSQL URI in argv[1] and runs okegw's
 * schema migration once (okegw_pg_migrate), as an instance's start will.
 * Prints "found N" (the version found before) and exits 0, or prints the
 * error and exits 1. tests/integration/test_pg_schema.py runs it against a
 * real PostgreSQL, also several at once. */
#include "store/pg.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s postgresql://...\n", argv[0]);
    return 2;
  }
  PGconn *c = NULL;
  char *err = NULL;
  int found = -1;
  if (okegw_pg_connect(argv[1], &c, &err) < 0 || okegw_pg_migrate(c, &found, &err) < 0) {
    printf("error: %s\n", err ? err : "?");
    free(err);
    PQfinish(c);
    return 1;
  }
  printf("found %d\n", found);
  PQfinish(c);
  return 0;
}
