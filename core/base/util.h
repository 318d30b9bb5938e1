/* Small string and file helpers shared by the core modules. */
#ifndef OKEGW_UTIL_H
#define OKEGW_UTIL_H

#include <stddef.h>
#include <stdint.h>

char *okegw_strdup(const char *s);
char *okegw_strndup(const char *s, size_t n);
char *okegw_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. Sets
 * errno and returns NULL on failure. */
char *okegw_read_file(const char *path, size_t max, size_t *len);
/* Monotonic milliseconds (for latency figures). */
double okegw_now_ms(void);
/* Wall-clock Unix milliseconds (for what is stored and shown). */
long long okegw_wall_ms(void);
/* Unix milliseconds as RFC 3339 in UTC: 2026-11-29T10:44:18.123Z, or to the
 * second (2026-11-29T10:44:18Z) without millis; the number itself when
 * beyond what struct tm holds. */
void okegw_format_rfc3339(long long ms, int millis, char *out, size_t size);

/* A growable byte buffer; data is NUL-terminated whenever len < cap. */
typedef struct okegw_buf {
  char *data;
  size_t len;
  size_t cap;
} okegw_buf;

int okegw_buf_append(okegw_buf *b, const void *p, size_t n);
int okegw_buf_printf(okegw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void okegw_buf_free(okegw_buf *b);

/* Query strings: the decoded value of `name` in "a=1&b=2" (first match),
 * written to out (NUL-terminated, truncated to outsz). Returns 1 if found. */
int okegw_query_get(const char *query, const char *name, char *out, size_t outsz);
/* Percent-decodes src (len bytes) into dst (size dstsz, NUL-terminated),
 * '+' as space when form is set. Returns the decoded length or -1. */
long okegw_url_decode(const char *src, size_t len, char *dst, size_t dstsz, int form);
/* 1 when s is a canonical textual UUID (8-4-4-4-12 hex digits). */
int okegw_is_uuid(const char *s);
/* Fills out[37] with a random (version 4) UUID for request ids. */
void okegw_uuid4(char out[37]);

#endif
