/* See traffic.h. */
#include "ops/traffic.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct bucket {
  long long minute; /* Unix minute the counts belong to */
  unsigned long requests, errors;
} bucket;

typedef struct series {
  char *connector;
  bucket b[OKEGW_TRAFFIC_MINUTES]; /* b[minute % 60] */
} series;

static series *all;
static size_t nall, capall;

static series *find(const char *connector, int add) {
  for (size_t i = 0; i < nall; i++)
    if (strcmp(all[i].connector, connector) == 0)
      return &all[i];
  if (!add)
    return NULL;
  if (nall == capall) {
    size_t cap = capall ? capall * 2 : 8;
    series *n = realloc(all, cap * sizeof *n);
    if (!n)
      return NULL;
    all = n;
    capall = cap;
  }
  series *s = &all[nall];
  memset(s, 0, sizeof *s);
  if (!(s->connector = okegw_strdup(connector)))
    return NULL;
  nall++;
  return s;
}

void okegw_traffic_note(const char *connector, int status) {
  if (!connector)
    return;
  series *s = find(connector, 1);
  if (!s)
    return; /* out of memory: the chart misses one request, nothing else does */
  long long minute = okegw_wall_ms() / 60000;
  bucket *b = &s->b[minute % OKEGW_TRAFFIC_MINUTES];
  if (b->minute != minute)
    *b = (bucket){.minute = minute};
  b->requests++;
  if (status >= 500 || status == 401 || status == 403 || status == 429)
    b->errors++;
}

int okegw_traffic_json(const char *connector, cJSON *o) {
  const series *s = find(connector, 0);
  long long now = okegw_wall_ms() / 60000;
  unsigned long requests = 0, errors = 0;
  cJSON *arr = cJSON_AddArrayToObject(o, "perMinute");
  if (!arr)
    return -1;
  for (long long m = now - OKEGW_TRAFFIC_MINUTES + 1; m <= now; m++) {
    const bucket *b = s ? &s->b[m % OKEGW_TRAFFIC_MINUTES] : NULL;
    unsigned long r = b && b->minute == m ? b->requests : 0;
    unsigned long e = b && b->minute == m ? b->errors : 0;
    requests += r;
    errors += e;
    char at[40];
    okegw_format_rfc3339(m * 60000, 0, at, sizeof at);
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddItemToArray(arr, p) || !cJSON_AddStringToObject(p, "minute", at) ||
        !cJSON_AddNumberToObject(p, "requests", (double)r) ||
        !cJSON_AddNumberToObject(p, "errors", (double)e))
      return -1;
  }
  return cJSON_AddNumberToObject(o, "requests", (double)requests) &&
                 cJSON_AddNumberToObject(o, "errors", (double)errors)
             ? 0
             : -1;
}

void okegw_traffic_reset(void) {
  for (size_t i = 0; i < nall; i++)
    free(all[i].connector);
  free(all);
  all = NULL;
  nall = capall = 0;
}
