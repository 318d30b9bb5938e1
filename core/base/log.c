#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The settings are set at start and at a reload and read by every thread
 * that logs: relaxed atomics (a line logged during a reload may follow the
 * old settings or the new). */
static int min_level = OKEGW_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int text_format; /* 0 = JSON lines */

void okegw_log_set_level(int level) { __atomic_store_n(&min_level, level, __ATOMIC_RELAXED); }

void okegw_log_set_format(const char *name) {
  int text;
  if (name && strcmp(name, "json") == 0)
    text = 0;
  else if (name && strcmp(name, "text") == 0)
    text = 1;
  else
    text = isatty(STDERR_FILENO);
  __atomic_store_n(&text_format, text, __ATOMIC_RELAXED);
}

/* One readable line: time, level, msg, then method path status latency and
 * the other fields as key=value. */
static void log_text(const char *ts, int level, const char *msg, const okegw_log_fields *f) {
  char line[4096];
  size_t n = 0;
#define ADD(...)                                                                                   \
  do {                                                                                             \
    if (n < sizeof line) {                                                                         \
      int w = snprintf(line + n, sizeof line - n, __VA_ARGS__);                                    \
      n += w > 0 ? (size_t)w : 0;                                                                  \
    }                                                                                              \
  } while (0)
  ADD("%s %-5s %s", ts, level_names[level], msg);
  if (f) {
    if (f->method)
      ADD(" %s", f->method);
    if (f->path)
      ADD(" %s", f->path);
    if (f->status)
      ADD(" %d", f->status);
    if (f->latency_ms >= 0)
      ADD(" %.1fms", f->latency_ms);
    const char *const keys[] = {"connector", "caller", "interaction", "addr",
                                "mapping",   "rule",   "resource",    "request_id"};
    const char *const vals[] = {f->connector, f->caller, f->interaction, f->addr,
                                f->mapping,   f->rule,   f->resource,    f->request_id};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
      if (vals[i])
        ADD(" %s=%s", keys[i], vals[i]);
    if (f->port)
      ADD(" port=%d", f->port);
  }
#undef ADD
  if (n >= sizeof line)
    n = sizeof line - 1;
  /* a message never spans lines: a newline in it would read as a new event */
  for (size_t i = 0; i < n; i++)
    if (line[i] == '\n' || line[i] == '\r')
      line[i] = ' ';
  fprintf(stderr, "%.*s\n", (int)n, line);
}

/* A JSON line under construction. RESERVE bytes stay free for the closing
 * "}\n": a line cut short is still one valid object. */
#define RESERVE 2
typedef struct jline {
  char buf[8192];
  size_t n;
} jline;

static int j_put(jline *j, const char *s, size_t len) {
  if (j->n + len + RESERVE > sizeof j->buf)
    return -1;
  memcpy(j->buf + j->n, s, len);
  j->n += len;
  return 0;
}

/* A JSON string: quotes, backslashes and control characters escaped, other
 * bytes as they are (as cJSON wrote them). Cut short, between two escaped
 * characters, when the line is full. -1 when not even "" fits. */
static int j_string(jline *j, const char *s) {
  if (j->n + 2 + RESERVE > sizeof j->buf)
    return -1;
  j->buf[j->n++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    static const char hex[] = "0123456789abcdef";
    char e[6] = {(char)*p};
    size_t len = 1;
    if (*p == '"' || *p == '\\') {
      e[0] = '\\';
      e[1] = (char)*p;
      len = 2;
    } else if (*p == '\n' || *p == '\r' || *p == '\t') {
      e[0] = '\\';
      e[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
      len = 2;
    } else if (*p < 0x20) {
      memcpy(e, "\\u00", 4);
      e[4] = hex[*p >> 4];
      e[5] = hex[*p & 15];
      len = 6;
    }
    if (j->n + len + 1 + RESERVE > sizeof j->buf) /* 1: the closing quote */
      break;
    memcpy(j->buf + j->n, e, len);
    j->n += len;
  }
  j->buf[j->n++] = '"';
  return 0;
}

/* Adds "key":value (value already JSON when raw, else a string), or
 * nothing when it does not fit. */
static void j_field(jline *j, const char *key, const char *v, int raw) {
  size_t at = j->n;
  if (j_put(j, at ? "," : "{", 1) < 0 || j_string(j, key) < 0 || j_put(j, ":", 1) < 0 ||
      (raw ? j_put(j, v, strlen(v)) : j_string(j, v)) < 0)
    j->n = at;
}

static void j_num(jline *j, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void j_num(jline *j, const char *key, const char *fmt, ...) {
  char v[64];
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  if (w > 0 && (size_t)w < sizeof v)
    j_field(j, key, v, 1);
}

int okegw_log_level_from_name(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && strcmp(name, level_names[i]) == 0)
      return i;
  return OKEGW_LOG_INFO;
}

void okegw_logv(int level, const okegw_log_fields *f, const char *fmt, va_list ap) {
  if (level < __atomic_load_n(&min_level, __ATOMIC_RELAXED) || level < 0 || level > OKEGW_LOG_ERROR)
    return;
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);

  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

  if (__atomic_load_n(&text_format, __ATOMIC_RELAXED)) {
    log_text(ts, level, msg, f);
    return;
  }
  /* Built straight into one buffer (no JSON tree) and written with one
   * write(2), so that lines stay whole when several processes share a
   * pipe. */
  jline j = {.n = 0};
  j_field(&j, "time", ts, 0);
  j_field(&j, "level", level_names[level], 0);
  j_field(&j, "msg", msg, 0);
  if (f) {
    const char *const keys[] = {"connector", "caller",  "interaction", "method",   "path",
                                "addr",      "mapping", "rule",        "resource", "request_id"};
    const char *const vals[] = {f->connector, f->caller,    f->interaction, f->method,
                                f->path,      f->addr,      f->mapping,     f->rule,
                                f->resource,  f->request_id};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      if (vals[i])
        j_field(&j, keys[i], vals[i], 0);
      if (i == 5 && f->port) /* the order of the former output: addr, port, status, latency */
        j_num(&j, "port", "%d", f->port);
      if (i == 5 && f->status)
        j_num(&j, "status", "%d", f->status);
      if (i == 5 && f->latency_ms >= 0)
        j_num(&j, "latency_ms", "%.15g", (double)(long)(f->latency_ms * 1000) / 1000.0);
    }
  }
  memcpy(j.buf + j.n, "}\n", 2); /* the reserve */
  j.n += 2;
  for (size_t off = 0; off < j.n;) {
    ssize_t w = write(STDERR_FILENO, j.buf + off, j.n - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    off += (size_t)w;
  }
}

void okegw_log(int level, const okegw_log_fields *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  okegw_logv(level, f, fmt, ap);
  va_end(ap);
}
