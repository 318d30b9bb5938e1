/* Small string and file helpers shared by the core modules: one helper each
 * for UUIDs, UTF-8, hex digests and RFC 3339 times, used by every module
 * that needs one (so there is one definition of "a UUID" or "UTF-8 text").
 * Predicates (okegw_is_uuid, okegw_utf8_valid, okegw_query_get) return 1 or
 * 0; functions that can fail return 0 (or a length) on success and -1 on
 * failure; those returning a pointer return NULL when out of memory. */
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
/* Parses RFC 3339 (2026-11-29T10:44:18.123Z, ...+01:00) into Unix
 * milliseconds. A prefix down to the date is accepted too (2026-11-29,
 * 2026-11-29T10:44): missing parts count as zero, a missing zone as UTC;
 * 't', 'z' and a space for 'T' are accepted as RFC 3339 allows. Digits past
 * the milliseconds are cut. Returns 0, or -1 when s is not such a time (or
 * names a date that does not exist). */
int okegw_parse_rfc3339(const char *s, long long *ms);

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
/* 1 when s is a textual UUID: 8-4-4-4-12 hex digits (either case), nothing
 * else; 0 otherwise and for NULL. */
int okegw_is_uuid(const char *s);
/* Writes a UUID in its one form, lower case (RFC 9562 reads either); other
 * text is left as it is. */
void okegw_uuid_lower(char *s);
/* Lower-cases every UUID inside s (one not adjoining another hex digit);
 * returns how many changed. */
int okegw_uuids_lower_in(char *s);
/* Standard base64 (with padding) into out (cap bytes); returns the decoded
 * length, or -1 when in is not base64 or does not fit. */
long okegw_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);
/* Fills out[37] with a random (version 4) UUID for request ids. */
void okegw_uuid4(char out[37]);

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left): 1 to 4, or 0
 * when s does not start one (overlong forms, surrogates and values past
 * U+10FFFF are not UTF-8). */
size_t okegw_utf8_seq(const char *s, size_t n);
/* 1 when s (len bytes) is valid UTF-8 (NUL bytes included). */
int okegw_utf8_valid(const char *s, size_t len);
/* A NUL-terminated copy of s fit for output: each invalid UTF-8 byte becomes
 * U+FFFD; with oneline, control characters become spaces; with max > 3, text
 * longer than max characters is cut to end in "..." (max 0: no limit). NULL
 * when out of memory. */
char *okegw_utf8_clean(const char *s, int oneline, size_t max);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void okegw_hex(const unsigned char *p, size_t n, char *out);
/* Hex SHA-256 of len bytes at p (p may be NULL when len is 0: the digest of
 * nothing). */
void okegw_sha256_hex(const void *p, size_t len, char out[65]);

/* The allocator okegw runs on: "mimalloc X.Y.Z" when it was built with it
 * (CMake OKEGW_MALLOC), else "glibc". */
const char *okegw_malloc_name(void);
/* Gives memory freed after a burst back to the system. */
void okegw_malloc_release(void);

#endif
