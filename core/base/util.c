#include "base/util.h"

#include <ctype.h>
#include <errno.h>
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
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
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
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return 0;
    } else if (!isxdigit((unsigned char)s[i])) {
      return 0;
    }
  }
  return s[36] == '\0';
}

void okegw_uuid4(char out[37]) {
  unsigned char r[16];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
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
