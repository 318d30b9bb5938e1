#include "base/log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int min_level = OKEGW_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int text_format; /* 0 = JSON lines */

void okegw_log_set_level(int level) { min_level = level; }

void okegw_log_set_format(const char *name) {
  if (name && strcmp(name, "json") == 0)
    text_format = 0;
  else if (name && strcmp(name, "text") == 0)
    text_format = 1;
  else
    text_format = isatty(STDERR_FILENO);
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

int okegw_log_level_from_name(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && strcmp(name, level_names[i]) == 0)
      return i;
  return OKEGW_LOG_INFO;
}

void okegw_logv(int level, const okegw_log_fields *f, const char *fmt, va_list ap) {
  if (level < min_level || level < 0 || level > OKEGW_LOG_ERROR)
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

  if (text_format) {
    log_text(ts, level, msg, f);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return;
  cJSON_AddStringToObject(o, "time", ts);
  cJSON_AddStringToObject(o, "level", level_names[level]);
  cJSON_AddStringToObject(o, "msg", msg);
  if (f) {
    if (f->connector)
      cJSON_AddStringToObject(o, "connector", f->connector);
    if (f->caller)
      cJSON_AddStringToObject(o, "caller", f->caller);
    if (f->interaction)
      cJSON_AddStringToObject(o, "interaction", f->interaction);
    if (f->method)
      cJSON_AddStringToObject(o, "method", f->method);
    if (f->path)
      cJSON_AddStringToObject(o, "path", f->path);
    if (f->addr)
      cJSON_AddStringToObject(o, "addr", f->addr);
    if (f->port)
      cJSON_AddNumberToObject(o, "port", f->port);
    if (f->status)
      cJSON_AddNumberToObject(o, "status", f->status);
    if (f->latency_ms >= 0)
      cJSON_AddNumberToObject(o, "latency_ms", (double)(long)(f->latency_ms * 1000) / 1000.0);
    if (f->mapping)
      cJSON_AddStringToObject(o, "mapping", f->mapping);
    if (f->rule)
      cJSON_AddStringToObject(o, "rule", f->rule);
    if (f->resource)
      cJSON_AddStringToObject(o, "resource", f->resource);
    if (f->request_id)
      cJSON_AddStringToObject(o, "request_id", f->request_id);
  }
  char *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (line) {
    /* One fputs per line keeps lines whole when several processes share a
     * pipe. */
    size_t len = strlen(line);
    line[len] = '\0';
    fprintf(stderr, "%s\n", line);
    free(line);
  }
}

void okegw_log(int level, const okegw_log_fields *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  okegw_logv(level, f, fmt, ap);
  va_end(ap);
}
