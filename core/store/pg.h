/* PostgreSQL for the store (`store = postgresql://...`, DESIGN §7): the
 * connection string, the connection, and okegw's schema in the database,
 * created and migrated by okegw itself.
 *
 * Several okegw instances share one database, so the schema is changed
 * under a transaction-scoped advisory lock: instances that start together
 * take turns, and the second finds the work done. Every migration is
 * recorded in okegw_migrations (version, when, by which okegw); a database
 * migrated by a newer okegw is refused, never written with an older idea of
 * its tables.
 *
 * The functions here block (libpq's synchronous calls): they run on the
 * store's own threads or in a command, never on an event loop. Errors come
 * back as an allocated message for *err (free() it) that never holds the
 * password of the connection string. */
#ifndef OKEGW_PG_H
#define OKEGW_PG_H

#include <libpq-fe.h>
#include <stddef.h>

/* The schema version this okegw writes and reads. */
#define OKEGW_PG_SCHEMA_VERSION 2

/* Whether `store` names a PostgreSQL database (postgresql:// or postgres://)
 * rather than an SQLite file. */
int okegw_pg_is_uri(const char *store);

/* Checks the connection string the way libpq reads it: 0, or -1 with the
 * reason in err (libpq's words, the password left out). */
int okegw_pg_check_uri(const char *uri, char *err, size_t n);

/* The connection string with its password (in the user part or as a
 * password= parameter) replaced by "***", for logs and messages; NULL when
 * out of memory. */
char *okegw_pg_redact(const char *uri);

/* Connects; on success *out is the connection (PQfinish it). -1 with *err
 * otherwise. Sets application_name to okegw unless the string sets one. */
int okegw_pg_connect(const char *uri, PGconn **out, char **err);

/* Creates okegw's tables or brings them to OKEGW_PG_SCHEMA_VERSION, in one
 * transaction under the advisory lock. *version (may be NULL) is the
 * version found before (0: none). 0, or -1 with *err: the database
 * refused, or its schema is newer than this okegw knows. */
int okegw_pg_migrate(PGconn *c, int *version, char **err);

#endif
