/* Logging on stderr, one line per event: a JSON object (time, level, msg
 * and, where known, connector, interaction, status, latency, request id) for
 * journald and log shippers, or the same fields as a readable text line for
 * a person at a terminal. */
#ifndef OKEGW_LOG_H
#define OKEGW_LOG_H

#include <stdarg.h>

enum { OKEGW_LOG_DEBUG = 0, OKEGW_LOG_INFO, OKEGW_LOG_WARN, OKEGW_LOG_ERROR };

/* Optional structured fields; zero/NULL members are left out. */
typedef struct okegw_log_fields {
  const char *connector;
  const char *caller; /* the connector whose credential the request carried */
  const char *interaction;
  const char *request_id;
  const char *method;
  const char *path;
  const char *addr;
  const char *mapping;  /* content hash of the Lua mappings used */
  const char *rule;     /* the OKE rule a warning is about ("R21") */
  const char *resource; /* the OKE id it is about */
  int status;
  int port;
  double latency_ms; /* < 0 = not set; 0 is a valid latency */
} okegw_log_fields;

#define OKEGW_LOG_FIELDS_INIT                                                                      \
  { .latency_ms = -1 }

void okegw_log_set_level(int level);
/* "json", "text" or "auto" (text when stderr is a terminal); anything else
 * is "auto". */
void okegw_log_set_format(const char *name);
int okegw_log_level_from_name(const char *name);
void okegw_log(int level, const okegw_log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void okegw_logv(int level, const okegw_log_fields *f, const char *fmt, va_list ap);

#endif
