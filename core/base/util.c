#include "base/util.h"

#include <errno.h>
#include <malloc.h>
#ifdef OKEGW_MIMALLOC
#include <mimalloc.h>
#endif
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

char *okegw_strdup(const char *s) { return s ? okegw_strndup(s, strlen(s)) : NULL; }

char *okegw_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p)
    return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *okegw_asprintf(const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (p)
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

char *okegw_read_file(const char *path, size_t max, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  okegw_buf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > max) {
      okegw_buf_free(&b);
      fclose(f);
      errno = EFBIG;
      return NULL;
    }
    if (okegw_buf_append(&b, chunk, n) < 0) {
      okegw_buf_free(&b);
      fclose(f);
      errno = ENOMEM;
      return NULL;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    okegw_buf_free(&b);
    errno = EIO;
    return NULL;
  }
  if (!b.data && okegw_buf_append(&b, "", 0) < 0)
    return NULL;
  if (len)
    *len = b.len;
  return b.data;
}

double okegw_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

long long okegw_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void okegw_format_rfc3339(long long ms, int millis, char *out, size_t size) {
  long long sec = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  size_t n = gmtime_r(&t, &tm) ? strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm) : 0;
  if (n == 0)
    snprintf(out, size, "%lld", ms);
  else if (millis)
    snprintf(out + n, size - n, ".%03lldZ", frac);
  else
    snprintf(out + n, size - n, "Z");
}

/* Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian). */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long long)doe - 719468;
}

/* n digits at s as a number, -1 when one is not a digit. */
static int digits_at(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

int okegw_parse_rfc3339(const char *s, long long *ms) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!s)
    return -1;
  int y = digits_at(s, 4), mo = -1, d = -1, h = 0, mi = 0, sec = 0, frac = 0;
  if (y >= 0 && s[4] == '-' && (mo = digits_at(s + 5, 2)) >= 0 && s[7] == '-')
    d = digits_at(s + 8, 2);
  if (d < 0 || mo < 1 || mo > 12 || d < 1)
    return -1;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] + (mo == 2 && leap))
    return -1;
  const char *p = s + 10;
  long long off_min = 0;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    if ((h = digits_at(p + 1, 2)) < 0 || h > 23 || p[3] != ':' || (mi = digits_at(p + 4, 2)) < 0 ||
        mi > 59)
      return -1;
    p += 6;
    if (*p == ':') {
      if ((sec = digits_at(p + 1, 2)) < 0 || sec > 60) /* 60: a leap second */
        return -1;
      p += 3;
      if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
          if (n < 3)
            frac = frac * 10 + (*p - '0');
        if (n == 0)
          return -1;
        for (; n < 3; n++)
          frac *= 10;
      }
    }
    if (*p == 'Z' || *p == 'z') {
      p++;
    } else if (*p == '+' || *p == '-') {
      int oh = digits_at(p + 1, 2), om = oh < 0 || p[3] != ':' ? -1 : digits_at(p + 4, 2);
      if (oh < 0 || oh > 23 || om < 0 || om > 59)
        return -1;
      off_min = (*p == '-' ? -1 : 1) * (oh * 60LL + om);
      p += 6;
    }
  }
  if (*p)
    return -1;
  long long t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL + h * 3600LL + mi * 60LL +
                sec - off_min * 60;
  *ms = t * 1000 + frac;
  return 0;
}

int okegw_buf_append(okegw_buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
      return -1;
    b->data = d;
    b->cap = cap;
  }
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int okegw_buf_printf(okegw_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[512];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  if ((size_t)n < sizeof tmp)
    return okegw_buf_append(b, tmp, (size_t)n);
  char *big = malloc((size_t)n + 1);
  if (!big)
    return -1;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  int rc = okegw_buf_append(b, big, (size_t)n);
  free(big);
  return rc;
}

void okegw_buf_free(okegw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

long okegw_url_decode(const char *src, size_t len, char *dst, size_t dstsz, int form) {
  size_t o = 0;
  if (dstsz == 0)
    return -1;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)src[i];
    if (c == '%') {
      if (i + 2 >= len)
        return -1;
      int a = hexval((unsigned char)src[i + 1]), b = hexval((unsigned char)src[i + 2]);
      if (a < 0 || b < 0)
        return -1;
      c = a * 16 + b;
      i += 2;
    } else if (c == '+' && form) {
      c = ' ';
    }
    if (o + 1 >= dstsz)
      return -1;
    dst[o++] = (char)c;
  }
  dst[o] = '\0';
  return (long)o;
}

int okegw_query_get(const char *query, const char *name, char *out, size_t outsz) {
  if (!query)
    return 0;
  size_t nlen = strlen(name);
  const char *p = query;
  while (*p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    char key[128];
    if (klen < sizeof key && okegw_url_decode(p, klen, key, sizeof key, 1) >= 0 &&
        strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
      const char *v = eq ? eq + 1 : p + len;
      size_t vlen = eq ? len - klen - 1 : 0;
      if (okegw_url_decode(v, vlen, out, outsz, 1) < 0)
        return 0;
      return 1;
    }
    p += len;
    if (*p == '&')
      p++;
  }
  return 0;
}

int okegw_is_uuid(const char *s) {
  if (!s)
    return 0;
  for (int i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    /* hexval, not isxdigit: the same answer in every locale; a NUL ends
     * the loop as a mismatch, so it never reads past the string */
    if (dash ? s[i] != '-' : hexval((unsigned char)s[i]) < 0)
      return 0;
  }
  return s[36] == '\0';
}

long okegw_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
  size_t pad = 0;
  while (pad < n && in[n - 1 - pad] == '=')
    pad++;
  /* at most two '=', and only at the end: EVP_DecodeBlock would count
   * them as zero bytes */
  if (n == 0 || n % 4 || pad > 2 || memchr(in, '=', n - pad) || n / 4 * 3 > cap)
    return -1;
  int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
  if (len < (int)pad)
    return -1;
  return len - (long)pad;
}

int okegw_uuids_lower_in(char *s) {
  int changed = 0;
  size_t n = strlen(s);
  for (size_t i = 0; i + 36 <= n; i++) {
    if (i > 0 && hexval((unsigned char)s[i - 1]) >= 0)
      continue;
    if (i + 36 < n && hexval((unsigned char)s[i + 36]) >= 0)
      continue;
    char u[37];
    memcpy(u, s + i, 36);
    u[36] = '\0';
    if (!okegw_is_uuid(u))
      continue;
    okegw_uuid_lower(u);
    if (memcmp(u, s + i, 36) != 0) {
      memcpy(s + i, u, 36);
      changed++;
    }
    i += 35;
  }
  return changed;
}

/* Random bytes for ids, drawn from OpenSSL's DRBG 512 at a time: each
 * RAND_bytes call costs about as much as hashing a request body (locks, a
 * fork check with getpid), whatever the count it gives. Per thread. */
static int id_random(unsigned char r[16]) {
  static _Thread_local unsigned char pool[512];
  static _Thread_local size_t left;
  if (left < 16) {
    if (RAND_bytes(pool, sizeof pool) != 1)
      return -1;
    left = sizeof pool;
  }
  memcpy(r, pool + sizeof pool - left, 16);
  left -= 16;
  return 0;
}

void okegw_uuid4(char out[37]) {
  unsigned char r[16];
  if (id_random(r) != 0 && getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
    /* Request ids only need to be unique enough for logs. */
    static unsigned long ctr;
    unsigned long t = (unsigned long)time(NULL) ^ (++ctr << 20);
    for (int i = 0; i < 16; i++)
      r[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)(i * 37);
  }
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[r[i] >> 4];
    out[o++] = hex[r[i] & 15];
  }
  out[o] = '\0';
}

size_t okegw_utf8_seq(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned c = p[0], cp, min;
  size_t len;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

int okegw_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    /* ASCII eight bytes at a time: most of every body and string */
    uint64_t w;
    while (len - i >= 8 && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080u)))
      i += 8;
    if (i == len)
      break;
    size_t k = p[i] < 0x80 ? 1 : okegw_utf8_seq(s + i, len - i);
    if (!k)
      return 0;
    i += k;
  }
  return 1;
}

char *okegw_utf8_clean(const char *s, int oneline, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), chars = 0, k;
  for (size_t i = 0; i < n; i += k ? k : 1, chars++)
    k = okegw_utf8_seq(s + i, n - i);
  size_t keep = max > 3 && chars > max ? max - 3 : chars;
  okegw_buf b = {0};
  int ok = okegw_buf_append(&b, "", 0) == 0;
  for (size_t i = 0, c = 0; ok && c < keep; i += k ? k : 1, c++) {
    k = okegw_utf8_seq(s + i, n - i);
    if (!k)
      ok = okegw_buf_append(&b, "\xef\xbf\xbd", 3) == 0;
    else if (oneline && k == 1 && (p[i] < 0x20 || p[i] == 0x7f))
      ok = okegw_buf_append(&b, " ", 1) == 0;
    else
      ok = okegw_buf_append(&b, p + i, k) == 0;
  }
  if (ok && keep < chars)
    ok = okegw_buf_append(&b, "...", 3) == 0;
  if (!ok) {
    okegw_buf_free(&b);
    return NULL;
  }
  return b.data;
}

void okegw_hex(const unsigned char *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = '\0';
}

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up
 * in its provider tables on every digest, which costs as much as hashing a
 * request body. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void okegw_sha256_hex(const void *p, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  pthread_once(&sha256_once, sha256_fetch);
  if (!EVP_Digest(len ? p : "", len, md, &n, sha256_md ? sha256_md : EVP_sha256(), NULL) ||
      n != 32) {
    out[0] = '\0'; /* only when OpenSSL cannot allocate: no digest rather than a wrong one */
    return;
  }
  okegw_hex(md, n, out);
}

void okegw_uuid_lower(char *s) {
  if (!okegw_is_uuid(s))
    return;
  for (; *s; s++)
    if (*s >= 'A' && *s <= 'F')
      *s = (char)(*s - 'A' + 'a');
}

#ifdef OKEGW_MIMALLOC
const char *okegw_malloc_name(void) {
  static char name[32];
  int v = mi_version(); /* 209 = 2.0.9 */
  snprintf(name, sizeof name, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
  return name;
}

/* mimalloc gives freed memory back only after decommit_delay, and only
 * when it allocates again: an idle gateway would keep a burst's memory.
 * Collecting with no delay returns it now (this thread's; the store's
 * threads return theirs as they work). The option is global: another
 * thread that frees meanwhile decommits at once too, which does no harm. */
void okegw_malloc_release(void) {
  long delay = mi_option_get(mi_option_decommit_delay);
  mi_option_set(mi_option_decommit_delay, 0);
  mi_collect(true);
  mi_option_set(mi_option_decommit_delay, delay);
}
#else
const char *okegw_malloc_name(void) { return "glibc"; }

void okegw_malloc_release(void) { malloc_trim(0); }
#endif
