/* The verdict (see verdict.h). */
#include "report/verdict.h"
#include "base/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum outcome { PASSED, INSUFFICIENT, FAILED };
static const char *const outcome_names[] = {"passed", "insufficient", "failed"};

typedef struct judge {
  cJSON *criteria;
  int worst;
  int oom;
} judge;

/* Records one criterion: its key, outcome, what it asks, what was found,
 * a sentence, and the evidence behind a failure (may be NULL). */
static void criterion(judge *j, const char *key, enum outcome o, const char *want, const char *got,
                      const char *evidence, const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  cJSON *c = cJSON_CreateObject();
  if (!c || !cJSON_AddItemToArray(j->criteria, c) ||
      !cJSON_AddStringToObject(c, "criterion", key) ||
      !cJSON_AddStringToObject(c, "outcome", outcome_names[o]) ||
      !cJSON_AddStringToObject(c, "want", want) || !cJSON_AddStringToObject(c, "got", got) ||
      !cJSON_AddStringToObject(c, "detail", detail) ||
      (evidence && !cJSON_AddStringToObject(c, "evidence", evidence)))
    j->oom = 1;
  if ((int)o > j->worst)
    j->worst = (int)o;
}

static double num(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *role_interactions(enum okegw_role r) {
  switch (r) {
  case OKEGW_ROLE_TA: return " 0 2 3 4 ";
  case OKEGW_ROLE_TPL: return " 0 1 2 3 4 ";
  default: return " 1 5 ";
  }
}

/* 1 when an interaction the item names (a flow digit or an id) had a 2xx. */
static int exercised(const cJSON *interactions, const char *item) {
  for (const cJSON *x = interactions ? interactions->child : NULL; x; x = x->next) {
    int match = item[1] ? strcmp(x->string, item) == 0
                        : strncmp(x->string, "flow", 4) == 0 && x->string[4] == item[0];
    if (match && num(cJSON_GetObjectItemCaseSensitive(x, "status"), "2xx") > 0)
      return 1;
  }
  return 0;
}

static void check_interactions(judge *j, const cJSON *doc, const okegw_conf_connector *cc) {
  const char *list =
      cc->accept_interactions ? cc->accept_interactions : role_interactions(cc->role);
  const cJSON *ix = cJSON_GetObjectItemCaseSensitive(doc, "interactions");
  char missing[512] = "", want[512] = "";
  for (const char *p = list; *p;) {
    p += strspn(p, " ");
    size_t len = strcspn(p, " ");
    if (!len)
      break;
    char item[64];
    snprintf(item, sizeof item, "%.*s", (int)(len < 63 ? len : 63), p);
    size_t w = strlen(want);
    snprintf(want + w, sizeof want - w, "%s%s%s", w ? ", " : "", item[1] ? "" : "flow ", item);
    if (!exercised(ix, item)) {
      size_t m = strlen(missing);
      snprintf(missing + m, sizeof missing - m, "%s%s%s", m ? ", " : "", item[1] ? "" : "flow ",
               item);
    }
    p += len;
  }
  if (missing[0])
    criterion(j, "accept_interactions", INSUFFICIENT, want, missing, NULL,
              "not exercised yet with a successful answer: %s", missing);
  else
    criterion(j, "accept_interactions", PASSED, want, "all", NULL,
              "every required interaction had a successful exchange");
}

/* "R10 at /consumers/0/x in flow2.put_offering (3 times)" from the most
 * frequent entry of a ranked list. */
static void top_evidence(const cJSON *ranked, const char *key, const char *extra, char *out,
                         size_t n) {
  const cJSON *e = cJSON_GetArrayItem(ranked, 0);
  out[0] = '\0';
  if (!e)
    return;
  const char *k = str(e, key), *x = str(e, extra), *in = str(e, "interaction");
  snprintf(out, n, "%s%s%s%s%s (%g time(s))", k ? k : "?", x && *x ? " at " : "", x && *x ? x : "",
           in ? " in " : "", in ? in : "", num(e, "count"));
}

static void check_rate(judge *j, const char *key, long exchanges, double count, double max,
                       const char *what, const char *evidence) {
  char want[64], got[64];
  snprintf(want, sizeof want, "at most %.2f%%", max * 100);
  if (!exchanges) {
    criterion(j, key, INSUFFICIENT, want, "no exchanges", NULL, "no exchanges to weigh %s", what);
    return;
  }
  double rate = count / (double)exchanges;
  snprintf(got, sizeof got, "%.2f%% (%g of %ld)", rate * 100, count, exchanges);
  if (rate > max)
    criterion(j, key, FAILED, want, got, evidence && *evidence ? evidence : NULL,
              "%g of %ld exchanges had %s: %.2f%%, more than %.2f%%", count, exchanges, what,
              rate * 100, max * 100);
  else
    criterion(j, key, PASSED, want, got, NULL, "%g of %ld exchanges had %s", count, exchanges,
              what);
}

static void check_dead(judge *j, const cJSON *doc, const okegw_conf_connector *cc) {
  double dead = num(cJSON_GetObjectItemCaseSensitive(doc, "deliveries"), "dead");
  char want[64], got[64], ev[512] = "";
  snprintf(want, sizeof want, "at most %ld", cc->accept_max_dead_letters);
  snprintf(got, sizeof got, "%g", dead);
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(doc, "deadLetters")) {
    size_t n = strlen(ev);
    const char *res = str(d, "resourceId"), *err = str(d, "lastError");
    snprintf(ev + n, sizeof ev - n, "%sdelivery %g: %s %s%s%s", n ? "; " : "", num(d, "id"),
             str(d, "interaction") ? str(d, "interaction") : "?", res ? res : "", err ? ": " : "",
             err ? err : "");
  }
  if (dead > (double)cc->accept_max_dead_letters)
    criterion(j, "accept_max_dead_letters", FAILED, want, got, ev,
              "%g dead letter(s): pushes out of time, not delivered (okegw deliveries list "
              "--state dead)",
              dead);
  else
    criterion(j, "accept_max_dead_letters", PASSED, want, got, NULL, "%g dead letter(s)", dead);
}

static void check_p99(judge *j, const cJSON *totals, const okegw_conf_connector *cc) {
  const cJSON *p99 = cJSON_GetObjectItemCaseSensitive(totals, "p99Ms");
  char want[64], got[64];
  snprintf(want, sizeof want, "at most %ld ms", cc->accept_max_p99_ms);
  if (!cJSON_IsNumber(p99)) {
    criterion(j, "accept_max_p99_ms", INSUFFICIENT, want, "no exchanges", NULL,
              "no exchanges to measure");
    return;
  }
  snprintf(got, sizeof got, "%g ms", p99->valuedouble);
  criterion(j, "accept_max_p99_ms",
            p99->valuedouble > (double)cc->accept_max_p99_ms ? FAILED : PASSED, want, got, NULL,
            "99%% of the exchanges took at most %g ms", p99->valuedouble);
}

/* The failed steps of a run, "scenario 4 step 17 (name): detail; ...". */
static void failed_steps(const cJSON *run, char *out, size_t n) {
  out[0] = '\0';
  const cJSON *sc, *st;
  cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(run, "scenarios")) {
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(sc, "steps")) {
      const char *o = str(st, "outcome");
      size_t used = strlen(out);
      if (!o || strcmp(o, "failed") != 0 || used + 4 >= n)
        continue;
      const char *d = str(st, "detail");
      snprintf(out + used, n - used, "%sscenario %s step %g (%s)%s%s", used ? "; " : "",
               str(sc, "id") ? str(sc, "id") : "?", num(st, "step"),
               str(st, "name") ? str(st, "name") : "", d && *d ? ": " : "", d ? d : "");
    }
  }
}

static void check_runs(judge *j, const cJSON *doc, const okegw_conf_connector *cc) {
  if (!cc->accept_scenarios)
    return;
  const cJSON *run = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "runs"), 0);
  const char *since = str(doc, "since"), *started = run ? str(run, "startedAt") : NULL;
  const char *want = "the last okegw accept run passed every scenario";
  if (!run || !started || (since && strcmp(started, since) < 0)) {
    criterion(j, "accept_scenarios", INSUFFICIENT, want, "no run in the window", NULL,
              "no acceptance run in the window: run okegw accept -c FILE --connector %s", cc->name);
    return;
  }
  const char *outcome = str(run, "outcome");
  char got[128], ev[1024];
  snprintf(got, sizeof got, "run %g: %g passed, %g failed, %g skipped", num(run, "id"),
           num(run, "passed"), num(run, "failed"), num(run, "skipped"));
  if (outcome && strcmp(outcome, "passed") == 0) {
    criterion(j, "accept_scenarios", PASSED, want, got, NULL, "the last run (%s) passed", started);
  } else if (!outcome || strcmp(outcome, "failed") != 0) {
    criterion(j, "accept_scenarios", INSUFFICIENT, want, got, NULL,
              "the last run (%s) did not finish", started);
  } else {
    failed_steps(run, ev, sizeof ev);
    criterion(j, "accept_scenarios", FAILED, want, got, ev, "the last run (%s) failed %g step(s)",
              started, num(run, "failed"));
  }
}

static void check_differences(judge *j, const cJSON *doc, const okegw_conf_connector *cc) {
  if (cc->phase != OKEGW_PHASE_SHADOW || !cc->mirror_of)
    return;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "differences");
  char ev[512] = "";
  const cJSON *f;
  cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(d, "byField")) {
    size_t n = strlen(ev);
    snprintf(ev + n, sizeof ev - n, "%s%s (%g)", n ? ", " : "", str(f, "pointer"), num(f, "count"));
  }
  check_rate(j, "accept_max_difference_rate", (long)num(d, "compared"), num(d, "differing"),
             cc->accept_max_difference_rate, "an answer that differed from the live connector's",
             ev);
}

static int add_reasons(cJSON *doc, const judge *j) {
  cJSON *reasons = cJSON_AddArrayToObject(doc, "reasons");
  if (!reasons)
    return -1;
  for (int o = FAILED; o >= INSUFFICIENT; o--) {
    const cJSON *c;
    cJSON_ArrayForEach(c, j->criteria) {
      if (strcmp(str(c, "outcome"), outcome_names[o]) != 0)
        continue;
      cJSON *r = cJSON_CreateObject();
      const char *ev = str(c, "evidence");
      if (!r || !cJSON_AddItemToArray(reasons, r) ||
          !cJSON_AddStringToObject(r, "criterion", str(c, "criterion")) ||
          !cJSON_AddStringToObject(r, "outcome", outcome_names[o]) ||
          !cJSON_AddStringToObject(r, "detail", str(c, "detail")) ||
          !(ev ? cJSON_AddStringToObject(r, "evidence", ev) : cJSON_AddNullToObject(r, "evidence")))
        return -1;
    }
  }
  return 0;
}

int okegw_verdict_judge(cJSON *doc, const okegw_conf_connector *cc) {
  judge j = {.criteria = cJSON_CreateArray()};
  if (!j.criteria)
    return -1;
  const cJSON *totals = cJSON_GetObjectItemCaseSensitive(doc, "totals");
  long exchanges = (long)num(totals, "exchanges");
  char want[64], got[64], ev[512];
  snprintf(want, sizeof want, "at least %ld", cc->accept_min_exchanges);
  snprintf(got, sizeof got, "%ld", exchanges);
  criterion(&j, "accept_min_exchanges",
            exchanges >= cc->accept_min_exchanges ? PASSED : INSUFFICIENT, want, got, NULL,
            "%ld exchange(s) with this connector in the window", exchanges);
  check_interactions(&j, doc, cc);
  top_evidence(cJSON_GetObjectItemCaseSensitive(doc, "violations"), "rule", "pointer", ev,
               sizeof ev);
  check_rate(&j, "accept_max_violation_rate", exchanges, num(totals, "violations"),
             cc->accept_max_violation_rate, "a profile violation", ev);
  top_evidence(cJSON_GetObjectItemCaseSensitive(doc, "mappingErrors"), "where", "message", ev,
               sizeof ev);
  check_rate(&j, "accept_max_mapping_error_rate", exchanges, num(totals, "mappingErrors"),
             cc->accept_max_mapping_error_rate, "a mapping error", ev);
  check_dead(&j, doc, cc);
  check_p99(&j, totals, cc);
  check_runs(&j, doc, cc);
  check_differences(&j, doc, cc);
  static const char *const verdicts[] = {"GO", "INCONCLUSIVE", "NO-GO"};
  if (!cJSON_AddItemToObject(doc, "criteria", j.criteria)) {
    cJSON_Delete(j.criteria);
    return -1;
  }
  if (j.oom || !cJSON_AddStringToObject(doc, "verdict", verdicts[j.worst]) ||
      add_reasons(doc, &j) < 0)
    return -1;
  return 0;
}
