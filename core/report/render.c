/* Text and HTML renderings of the acceptance report (see render.h and
 * notes on the document's shape in report/evidence.c). */
#include "report/render.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the document: anything unexpected reads as none ---- */

static const cJSON *mem(const cJSON *o, const char *k) {
  return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *sget(const cJSON *o, const char *k) {
  const cJSON *v = mem(o, k);
  return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static int nget(const cJSON *o, const char *k, double *d) {
  const cJSON *v = mem(o, k);
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return 0;
  *d = v->valuedouble;
  return 1;
}

static double nval(const cJSON *o, const char *k) {
  double d = 0;
  return nget(o, k, &d) && d > 0 ? d : 0;
}

static const cJSON *aget(const cJSON *o, const char *k) {
  const cJSON *v = mem(o, k);
  return cJSON_IsArray(v) ? v : NULL;
}

static const cJSON *oget(const cJSON *o, const char *k) {
  const cJSON *v = mem(o, k);
  return cJSON_IsObject(v) ? v : NULL;
}

static int count(const cJSON *a) { return a ? cJSON_GetArraySize(a) : 0; }

/* A number as text: whole numbers without decimals, others with `dec`
 * decimals; "-" when missing. */
static const char *fnum(double d, int dec, char buf[48]) {
  if (fabs(d) >= 1e15)
    snprintf(buf, 48, "%g", d);
  else if (d == floor(d))
    snprintf(buf, 48, "%.0f", d);
  else
    snprintf(buf, 48, "%.*f", dec, d);
  return buf;
}

static const char *ntxt(const cJSON *o, const char *k, int dec, char buf[48]) {
  double d;
  return nget(o, k, &d) ? fnum(d, dec, buf) : "-";
}

/* ---- output ---- */

typedef struct {
  FILE *out;
  int err;
} wr;

__attribute__((format(printf, 2, 3))) static void wf(wr *w, const char *fmt, ...) {
  if (w->err)
    return;
  va_list ap;
  va_start(ap, fmt);
  if (vfprintf(w->out, fmt, ap) < 0)
    w->err = 1;
  va_end(ap);
}

static void ws(wr *w, const char *s) {
  if (!w->err && fputs(s, w->out) < 0)
    w->err = 1;
}

static int finish(wr *w) {
  if (!w->err && fflush(w->out) != 0)
    w->err = 1;
  if (ferror(w->out))
    w->err = 1;
  return w->err ? -1 : 0;
}

/* ---- tables: one declaration each, read by both renderings ---- */

/* How a column's value shows. Numbers are right-aligned in both. */
typedef enum {
  K_TEXT,     /* a string */
  K_CODE,     /* a string set as code in HTML (names, pointers, hashes) */
  K_TIME,     /* an RFC 3339 time, shortened in HTML */
  K_BADGE,    /* an outcome, a coloured badge in HTML */
  K_DELIVERY, /* a delivery state, in words */
  K_NUM,      /* a count */
  K_MS,       /* milliseconds, one decimal */
  K_BAR,      /* answers by status class: a bar, HTML only */
} ckind;

/* A column: its heading in the text and in the HTML rendering (NULL: not
 * shown in that one), and where its value is in a row: member names
 * separated by '/' for members of members, "" for the row itself, NULL for
 * the row's name in its object. An entry without headings ends a list. */
typedef struct {
  const char *text, *html, *member;
  ckind kind;
} col;

/* A section that is one table: its rows are the elements of the report's
 * array `key`, or the members of its object `key` when `keyed`. */
typedef struct {
  const char *key;
  int keyed, narrow;
  const col *cols;
  const char *text_title, *text_none; /* text_none: a whole line; NULL: "  -" */
  const char *html_title, *explain, *html_none;
} tsec;

static const tsec S_CRITERIA = {
    .key = "criteria",
    .cols = (const col[]){{"CRITERION", "Criterion", "criterion", K_CODE},
                          {"WANT", "Required", "want", K_TEXT},
                          {"GOT", "Measured", "got", K_TEXT},
                          {"OUTCOME", "Outcome", "outcome", K_BADGE},
                          {"DETAIL", "Detail", "detail", K_TEXT},
                          {0}},
    .text_title = "Criteria",
    .html_title = "Acceptance criteria",
    .explain = "Each criterion the school set, what it asks for, and what was measured. "
               "&ldquo;Insufficient&rdquo; means there was not enough traffic to judge it.",
    .html_none = "No criteria in this report."};

static const tsec S_INTERACTIONS = {
    .key = "interactions",
    .keyed = 1,
    .cols = (const col[]){{"INTERACTION", "Interaction", NULL, K_CODE},
                          {"FLOW", "Flow", "flow", K_NUM},
                          {"EXCHANGES", "Messages", "exchanges", K_NUM},
                          {NULL, "Answers", "status", K_BAR},
                          {"2XX", "2xx", "status/2xx", K_NUM},
                          {"3XX", NULL, "status/3xx", K_NUM},
                          {"4XX", "4xx", "status/4xx", K_NUM},
                          {"5XX", "5xx", "status/5xx", K_NUM},
                          {"VIOLATIONS", "Rule violations", "violations/count", K_NUM},
                          {"MAPPING ERRORS", "Mapping errors", "mappingErrors/count", K_NUM},
                          {"P50 MS", "Median ms", "latency/p50Ms", K_MS},
                          {"P99 MS", "p99 ms", "latency/p99Ms", K_MS},
                          {0}},
    .text_title = "Interactions",
    .html_title = "Per interaction",
    .explain = "Each kind of OKE message (interaction) seen in the window. The bar shows the "
               "answers: green = success (2xx), blue = redirect (3xx), amber = refused request "
               "(4xx), red = server error (5xx). Times are in milliseconds.",
    .html_none = "No interactions in this window."};

static const tsec S_VIOLATIONS = {
    .key = "violations",
    .cols = (const col[]){{"RULE", "Rule", "rule", K_TEXT},
                          {"COUNT", "Count", "count", K_NUM},
                          {"INTERACTION", "Interaction", "interaction", K_CODE},
                          {"EXAMPLE POINTER", "Example place", "pointer", K_CODE},
                          {0}},
    .text_title = "Profile violations by rule",
    .html_title = "OKE rule violations",
    .explain = "Messages that broke a rule of the OKE standard, by rule, most frequent first, "
               "with an example of where in the message it happened.",
    .html_none = "None."};

static const tsec S_MAPPING_ERRORS = {
    .key = "mappingErrors",
    .cols = (const col[]){{"SCRIPT:LINE", "Script:line", "where", K_CODE},
                          {"COUNT", "Count", "count", K_NUM},
                          {"INTERACTION", "Interaction", "interaction", K_CODE},
                          {"MESSAGE", "Message", "message", K_TEXT},
                          {0}},
    .text_title = "Mapping errors",
    .html_title = "Mapping errors",
    .explain = "Errors in the translation scripts between OKE and the supplier's own format, by "
               "script and line.",
    .html_none = "None."};

static const tsec S_DELIVERIES = {
    .key = "deliveries",
    .keyed = 1,
    .narrow = 1,
    .cols = (const col[]){{"STATE", "State", NULL, K_TEXT},
                          {NULL, "Meaning", NULL, K_DELIVERY},
                          {"COUNT", "Count", "", K_NUM},
                          {0}},
    .text_title = "Deliveries by state",
    .html_title = "Deliveries",
    .explain = "Messages okegw had to pass on to this connector (or from it), by how far they "
               "got.",
    .html_none = "None."};

/* Text only: the HTML page draws a chart of it. */
static const tsec S_DAILY = {.key = "daily",
                             .cols = (const col[]){{"DAY", NULL, "day", K_TEXT},
                                                   {"EXCHANGES", NULL, "exchanges", K_NUM},
                                                   {"ERRORS", NULL, "errors", K_NUM},
                                                   {0}},
                             .text_title = "Traffic per day",
                             .text_none = "  - (no traffic in this window)\n"};

static const tsec S_PHASES = {
    .key = "phaseHistory",
    .cols = (const col[]){{"AT", "When", "at", K_TIME},
                          {"FROM", "From", "from", K_TEXT},
                          {"TO", "To", "to", K_TEXT},
                          {"REASON", "Reason", "reason", K_TEXT},
                          {"CONFIG SHA-256", "Configuration", "configSha256", K_CODE},
                          {0}},
    .text_title = "Phase history",
    .html_title = "Phase history",
    .explain = "When the connector moved between phases (off, shadow, pilot, live) and why, "
               "oldest first.",
    .html_none = "No phase changes recorded."};

static const tsec S_VERSIONS = {
    .key = "mappingVersions",
    .cols = (const col[]){{"HASH", "Fingerprint", "hash", K_CODE},
                          {"EXCHANGES", "Messages", "exchanges", K_NUM},
                          {"FIRST", "First used", "first", K_TIME},
                          {"LAST", "Last used", "last", K_TIME},
                          {0}},
    .text_title = "Mapping versions",
    .html_title = "Mapping versions",
    .explain = "The versions of the translation scripts that were in use, identified by a "
               "fingerprint of their content.",
    .html_none = "None recorded."};

/* Tables inside other sections: the fields that differed in shadow, a
 * run's scenarios, and (HTML) its failed steps, whose first column is the
 * id of the step's scenario. */
static const col C_FIELDS[] = {
    {"FIELD", "Field", "pointer", K_CODE},
    {"COUNT", "Times different", "count", K_NUM},
    {0},
};
static const col C_SCENARIOS[] = {
    {"SCENARIO", "Scenario", "id", K_TEXT},   {"NAME", "Name", "name", K_TEXT},
    {"PASSED", "Passed", "passed", K_NUM},    {"FAILED", "Failed", "failed", K_NUM},
    {"SKIPPED", "Skipped", "skipped", K_NUM}, {0},
};
static const col C_FAILED_STEPS[] = {{NULL, "Scenario", NULL, K_TEXT},
                                     {NULL, "Step", "step", K_NUM},
                                     {NULL, "What", "name", K_TEXT},
                                     {NULL, "What went wrong", "detail", K_TEXT},
                                     {0}};

static int is_num(ckind k) { return k == K_NUM || k == K_MS; }

static int col_end(const col *c) { return !c->text && !c->html; }

static const cJSON *sec_rows(const cJSON *r, const tsec *s) {
  return s->keyed ? oget(r, s->key) : aget(r, s->key);
}

/* A row's member at a path of names separated by '/'; "" is the row. */
static const cJSON *path_get(const cJSON *o, const char *path) {
  char name[64];
  for (const char *sl; (sl = strchr(path, '/')); path = sl + 1) {
    size_t n = (size_t)(sl - path);
    if (n >= sizeof name)
      return NULL;
    memcpy(name, path, n);
    name[n] = 0;
    o = oget(o, name);
  }
  return *path ? mem(o, path) : o;
}

static const char *delivery_words(const char *s) {
  static const char *const k[][2] = {{"pending", "waiting to be delivered"},
                                     {"delivered", "delivered"},
                                     {"failed", "last attempt failed"},
                                     {"dead", "given up after all retries"},
                                     {"dropped", "dropped"}};
  for (size_t i = 0; s && i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(s, k[i][0]))
      return k[i][1];
  return NULL;
}

/* A cell of row `x` as text: numbers formatted ("-" when not a finite
 * number), strings as they are (NULL when not a string). */
static const char *cell(const cJSON *x, const col *c, char buf[48]) {
  const char *s = x->string;
  if (c->member) {
    const cJSON *v = path_get(x, c->member);
    if (is_num(c->kind))
      return cJSON_IsNumber(v) && isfinite(v->valuedouble)
                 ? fnum(v->valuedouble, c->kind == K_MS, buf)
                 : "-";
    s = cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
  }
  return c->kind == K_DELIVERY ? delivery_words(s) : s;
}

/* The shadow comparison's rate of differing answers as a percentage. */
static const char *rate_txt(const cJSON *differences, char buf[48]) {
  double rate;
  if (!nget(differences, "rate", &rate))
    return "-";
  snprintf(buf, 48, "%.1f%%", rate * 100);
  return buf;
}

/* Whether a step of a run's scenario failed. */
static int step_failed(const cJSON *st) {
  const char *oc = sget(st, "outcome");
  return oc && !strcmp(oc, "failed");
}

/* ================================================================ text */

/* A string safe for a terminal: control characters (escape sequences
 * included) become '?'. NULL or "" becomes "-". */
static char *tclean(const char *s) {
  if (!s || !*s)
    s = "-";
  size_t n = strlen(s);
  char *c = malloc(n + 1);
  if (!c)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    c[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  c[n] = 0;
  return c;
}

static void wt(wr *w, const char *s) {
  char *c = tclean(s);
  if (!c) {
    w->err = 1;
    return;
  }
  ws(w, c);
  free(c);
}

/* Columns shown as the width of their code points. */
static size_t u8width(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

#define TMAXC 12

/* A table collected row by row, then printed with aligned columns; the
 * first row is the header. Columns in `right` (bit per column) are
 * right-aligned (numbers). */
typedef struct {
  int ncol;
  unsigned right;
  size_t nrow, cap;
  char **cells;
  int err;
} ttab;

static void tt_init(ttab *t, int ncol, unsigned right) {
  memset(t, 0, sizeof *t);
  t->ncol = ncol > TMAXC ? TMAXC : ncol;
  t->right = right;
}

static void tt_row(ttab *t, const char *const *cells) {
  if (t->err)
    return;
  if (t->nrow == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **c = realloc(t->cells, cap * (size_t)t->ncol * sizeof *c);
    if (!c) {
      t->err = 1;
      return;
    }
    t->cells = c;
    t->cap = cap;
  }
  char **row = t->cells + t->nrow * (size_t)t->ncol;
  for (int i = 0; i < t->ncol; i++) {
    row[i] = tclean(cells[i]);
    if (!row[i])
      t->err = 1;
  }
  t->nrow++;
}

static void tt_print(wr *w, ttab *t, int indent) {
  if (t->err)
    w->err = 1;
  size_t width[TMAXC] = {0};
  for (size_t r = 0; r < t->nrow && !t->err; r++)
    for (int c = 0; c < t->ncol; c++) {
      size_t n = u8width(t->cells[r * (size_t)t->ncol + c]);
      if (n > width[c])
        width[c] = n;
    }
  for (size_t r = 0; r < t->nrow && !t->err; r++) {
    wf(w, "%*s", indent, "");
    for (int c = 0; c < t->ncol; c++) {
      const char *s = t->cells[r * (size_t)t->ncol + c];
      int pad = (int)(width[c] - u8width(s));
      int last = c == t->ncol - 1;
      if (t->right & (1u << c))
        wf(w, "%*s%s", pad, "", s);
      else
        wf(w, "%s%*s", s, last ? 0 : pad, "");
      if (!last)
        ws(w, "  ");
    }
    ws(w, "\n");
  }
  for (size_t i = 0; i < t->nrow * (size_t)t->ncol; i++)
    free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->nrow = t->cap = 0;
}

static void t_title(wr *w, const char *title) { wf(w, "\n%s\n", title); }

static void t_none(wr *w) { ws(w, "  -\n"); }

/* The rows (elements of an array or members of an object) under the
 * columns' text headings, aligned; `none`, a whole line, when there are no
 * rows (NULL: nothing). */
static void t_table(wr *w, const cJSON *rows, const col *cols, int indent, const char *none) {
  if (!count(rows)) {
    if (none)
      ws(w, none);
    return;
  }
  const char *cells[TMAXC];
  char b[TMAXC][48];
  int n = 0;
  unsigned right = 0;
  for (const col *c = cols; !col_end(c) && n < TMAXC; c++) {
    if (!c->text)
      continue;
    if (is_num(c->kind))
      right |= 1u << n;
    cells[n++] = c->text;
  }
  ttab t;
  tt_init(&t, n, right);
  tt_row(&t, cells);
  const cJSON *x;
  cJSON_ArrayForEach(x, rows) {
    int i = 0;
    for (const col *c = cols; !col_end(c) && i < n; c++)
      if (c->text) {
        cells[i] = cell(x, c, b[i]);
        i++;
      }
    tt_row(&t, cells);
  }
  tt_print(w, &t, indent);
}

static void t_section(wr *w, const cJSON *r, const tsec *s) {
  t_title(w, s->text_title);
  t_table(w, sec_rows(r, s), s->cols, 2, s->text_none ? s->text_none : "  -\n");
}

static void text_reasons(wr *w, const cJSON *r) {
  t_title(w, "Reasons (criteria not passed)");
  const cJSON *a = aget(r, "reasons"), *x;
  if (!count(a)) {
    t_none(w);
    return;
  }
  cJSON_ArrayForEach(x, a) {
    ws(w, "  - ");
    wt(w, sget(x, "criterion"));
    ws(w, " (");
    wt(w, sget(x, "outcome"));
    ws(w, "): ");
    wt(w, sget(x, "detail"));
    ws(w, "\n      evidence: ");
    wt(w, sget(x, "evidence"));
    ws(w, "\n");
  }
}

static void text_totals(wr *w, const cJSON *r) {
  t_title(w, "Totals");
  const cJSON *t = oget(r, "totals");
  char b[6][48];
  wf(w, "  exchanges %s, errors %s, violations %s, mapping errors %s, p50 %s%s, p99 %s%s\n",
     ntxt(t, "exchanges", 0, b[0]), ntxt(t, "errors", 0, b[1]), ntxt(t, "violations", 0, b[2]),
     ntxt(t, "mappingErrors", 0, b[3]), ntxt(t, "p50Ms", 1, b[4]),
     nget(t, "p50Ms", &(double){0}) ? " ms" : "", ntxt(t, "p99Ms", 1, b[5]),
     nget(t, "p99Ms", &(double){0}) ? " ms" : "");
}

static void text_differences(wr *w, const cJSON *r) {
  t_title(w, "Shadow differences");
  const cJSON *o = oget(r, "differences");
  char b[3][48];
  wf(w, "  compared %s, differing %s, rate %s\n", ntxt(o, "compared", 0, b[0]),
     ntxt(o, "differing", 0, b[1]), rate_txt(o, b[2]));
  t_table(w, aget(o, "byField"), C_FIELDS, 2, NULL);
}

static void text_runs(wr *w, const cJSON *r) {
  t_title(w, "Last acceptance runs");
  const cJSON *a = aget(r, "runs"), *run;
  if (!count(a)) {
    t_none(w);
    return;
  }
  cJSON_ArrayForEach(run, a) {
    char b[4][48];
    ws(w, "  Run ");
    ws(w, ntxt(run, "id", 0, b[0]));
    ws(w, " (");
    wt(w, sget(run, "mode"));
    ws(w, "): ");
    wt(w, sget(run, "outcome"));
    wf(w, ", %s passed, %s failed, %s skipped\n", ntxt(run, "passed", 0, b[1]),
       ntxt(run, "failed", 0, b[2]), ntxt(run, "skipped", 0, b[3]));
    ws(w, "    started ");
    wt(w, sget(run, "startedAt"));
    ws(w, ", finished ");
    wt(w, sget(run, "finishedAt"));
    ws(w, "\n");
    const cJSON *sc = aget(run, "scenarios"), *s;
    t_table(w, sc, C_SCENARIOS, 4, "    -\n");
    cJSON_ArrayForEach(s, sc) {
      const cJSON *st;
      cJSON_ArrayForEach(st, aget(s, "steps")) {
        if (!step_failed(st))
          continue;
        ws(w, "    FAILED scenario ");
        wt(w, sget(s, "id"));
        ws(w, " step ");
        ws(w, ntxt(st, "step", 0, b[0]));
        ws(w, " ");
        wt(w, sget(st, "name"));
        ws(w, ": ");
        wt(w, sget(st, "detail"));
        ws(w, "\n");
      }
    }
  }
}

int okegw_report_text(const cJSON *r, FILE *out) {
  if (!out)
    return -1;
  wr w = {out, 0};
  ws(&w, "okegw acceptance report (");
  wt(&w, sget(r, "format"));
  ws(&w, ", generated ");
  wt(&w, sget(r, "generatedAt"));
  ws(&w, ")\n\n");
  ws(&w, "  connector  ");
  wt(&w, sget(r, "connector"));
  ws(&w, "\n  role       ");
  wt(&w, sget(r, "role"));
  ws(&w, "\n  phase      ");
  wt(&w, sget(r, "phase"));
  const char *m = sget(r, "mirrorOf");
  if (m) {
    ws(&w, " (mirror of ");
    wt(&w, m);
    ws(&w, ")");
  }
  ws(&w, "\n  window     ");
  wt(&w, sget(r, "since"));
  ws(&w, " .. ");
  wt(&w, sget(r, "until"));
  ws(&w, "\n\n  ========================\n  VERDICT: ");
  wt(&w, sget(r, "verdict"));
  ws(&w, "\n  ========================\n");
  text_reasons(&w, r);
  t_section(&w, r, &S_CRITERIA);
  text_totals(&w, r);
  t_section(&w, r, &S_INTERACTIONS);
  t_section(&w, r, &S_VIOLATIONS);
  t_section(&w, r, &S_MAPPING_ERRORS);
  t_section(&w, r, &S_DELIVERIES);
  text_differences(&w, r);
  t_section(&w, r, &S_DAILY);
  text_runs(&w, r);
  t_section(&w, r, &S_PHASES);
  t_section(&w, r, &S_VERSIONS);
  return finish(&w);
}

/* ================================================================ HTML */

/* Escapes for text and attribute values alike; control characters other
 * than tab and newline are dropped. */
static void he(wr *w, const char *s) {
  if (!s)
    return;
  for (const char *p = s; *p && !w->err; p++) {
    unsigned char c = (unsigned char)*p;
    switch (c) {
    case '&': ws(w, "&amp;"); break;
    case '<': ws(w, "&lt;"); break;
    case '>': ws(w, "&gt;"); break;
    case '"': ws(w, "&quot;"); break;
    case '\'': ws(w, "&#39;"); break;
    default:
      if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
        break;
      if (fputc(c, w->out) == EOF)
        w->err = 1;
    }
  }
}

/* Escaped, or a dash for none. */
static void hd(wr *w, const char *s) {
  if (s && *s)
    he(w, s);
  else
    ws(w, "&ndash;");
}

/* An RFC 3339 UTC time as a person reads it (2026-12-06 19:48 UTC); any
 * other text escaped as it is. */
static void htime(wr *w, const char *s) {
  if (s && strlen(s) >= 17 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
      s[strlen(s) - 1] == 'Z' && strspn(s, "0123456789-T:.Z") == strlen(s)) {
    wf(w, "%.10s %.5s UTC", s, s + 11);
    return;
  }
  hd(w, s);
}

static void section(wr *w, const char *title, const char *explain) {
  wf(w, "<section>\n<h2>%s</h2>\n", title);
  if (explain)
    wf(w, "<p class=\"ex\">%s</p>\n", explain);
}

static void none(wr *w, const char *what) { wf(w, "<p class=\"none\">%s</p>\n", what); }

static const char *outcome_class(const char *o) {
  if (!o)
    return "unk";
  if (!strcmp(o, "passed") || !strcmp(o, "ok") || !strcmp(o, "GO"))
    return "ok";
  if (!strcmp(o, "failed") || !strcmp(o, "NO-GO"))
    return "bad";
  return "unk";
}

static void badge(wr *w, const char *o) {
  wf(w, "<span class=\"badge %s\">", outcome_class(o));
  hd(w, o);
  ws(w, "</span>");
}

static const char *CSS =
    "*{box-sizing:border-box}"
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;color:#1a1a1a;background:#fff;"
    "margin:0 auto;max-width:1100px;padding:24px;font-size:14px;line-height:1.45}"
    "h1{font-size:15px;font-weight:normal;color:#555;margin:0 0 12px}"
    "h2{font-size:19px;margin:0 0 4px;border-bottom:2px solid #ddd;padding-bottom:3px}"
    "h3{font-size:15px;margin:14px 0 4px}"
    "section{margin:26px 0;break-inside:avoid;page-break-inside:avoid}"
    ".ex{color:#555;margin:2px 0 10px;max-width:80ch}"
    ".none{color:#666;font-style:italic}"
    ".banner{border-radius:8px;padding:20px 26px;color:#fff;margin-bottom:18px;"
    "break-inside:avoid;-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    ".banner.ok{background:#1e7b34}.banner.bad{background:#b3261e}"
    ".banner.unk{background:#b86e00}"
    ".banner .v{font-size:34px;font-weight:bold;letter-spacing:.5px}"
    ".banner .c{font-size:22px;margin-top:4px}"
    ".banner .s{font-size:14px;margin-top:6px;opacity:.95}"
    ".facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0}"
    ".facts dt{font-weight:bold}.facts dd{margin:0}"
    ".cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:8px}"
    ".card{border:1px solid #ccc;border-radius:6px;padding:8px 14px;min-width:120px}"
    ".card b{display:block;font-size:22px}.card span{color:#555;font-size:12px}"
    "table{border-collapse:collapse;width:100%;break-inside:avoid;page-break-inside:avoid;"
    "font-size:13px}"
    "table.narrow{width:auto;min-width:50%}"
    "th,td{border-bottom:1px solid #ddd;padding:5px 8px;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word}"
    "th{background:#f2f2f2;font-weight:bold}"
    "tr{break-inside:avoid;page-break-inside:avoid}"
    ".n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "code{font-family:'DejaVu Sans Mono',monospace;font-size:12px}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;"
    "font-weight:bold;border:1px solid;white-space:nowrap}"
    ".badge.ok{color:#1e7b34;border-color:#1e7b34}"
    ".badge.bad{color:#b3261e;border-color:#b3261e}"
    ".badge.unk{color:#8a5300;border-color:#b86e00}"
    ".reason{border-left:5px solid #b3261e;padding:6px 12px;margin:8px 0;background:#fbf1f0;"
    "break-inside:avoid}"
    ".reason.unk{border-color:#b86e00;background:#fdf6ea}"
    ".reason .d{font-size:15px}.reason .e{color:#444;font-size:12px;margin-top:2px}"
    ".chart{width:100%;max-width:900px;height:auto}"
    ".run{border:1px solid #ccc;border-radius:6px;padding:8px 14px;margin:10px 0;"
    "break-inside:avoid}"
    "footer{color:#777;font-size:12px;margin-top:30px;border-top:1px solid #ddd;padding-top:6px}"
    "@page{size:A4;margin:14mm 12mm}"
    "@media print{body{max-width:none;padding:0;font-size:11px;color:#000;background:#fff}"
    ".banner{color:#000;background:#fff !important;border:4px solid}"
    ".banner.ok{border-color:#1e7b34}.banner.bad{border-color:#b3261e}"
    ".banner.unk{border-color:#b86e00}"
    ".reason{background:#fff}th{background:#eee}"
    ".banner .v{font-size:24px}.banner .c{font-size:17px}.card{min-width:0;padding:5px 10px}"
    ".card b{font-size:17px}code{font-size:10px}"
    "h2{break-after:avoid;page-break-after:avoid}"
    "svg,.card,.run,table{break-inside:avoid;page-break-inside:avoid}}";

static const char *role_words(const char *r) {
  if (!r)
    return NULL;
  if (!strcmp(r, "ta"))
    return "test supplier (TA)";
  if (!strcmp(r, "tpl"))
    return "test planning system (TPL)";
  if (!strcmp(r, "dr"))
    return "student information system (DR)";
  return NULL;
}

static const char *phase_words(const char *p) {
  if (!p)
    return NULL;
  if (!strcmp(p, "off"))
    return "receives no traffic";
  if (!strcmp(p, "shadow"))
    return "receives copies of real traffic; its answers are compared, not used";
  if (!strcmp(p, "pilot"))
    return "handles real traffic for a part of the school";
  if (!strcmp(p, "live"))
    return "handles all real traffic";
  return NULL;
}

static void html_banner(wr *w, const cJSON *r) {
  const char *v = sget(r, "verdict"), *cls = "unk", *why = "the report states no verdict";
  if (v && !strcmp(v, "GO"))
    cls = "ok", why = "every acceptance criterion is met";
  else if (v && !strcmp(v, "NO-GO"))
    cls = "bad", why = "at least one acceptance criterion is not met";
  else if (v && !strcmp(v, "INCONCLUSIVE"))
    why = "there is not yet enough evidence to decide";
  wf(w, "<div class=\"banner %s\" role=\"status\">\n<div class=\"v\">Verdict: ", cls);
  he(w, v && *v ? v : "unknown");
  ws(w, " &mdash; ");
  ws(w, why);
  ws(w, "</div>\n<div class=\"c\">Connector: <b>");
  hd(w, sget(r, "connector"));
  ws(w, "</b></div>\n<div class=\"s\">Evidence from ");
  htime(w, sget(r, "since"));
  ws(w, " to ");
  htime(w, sget(r, "until"));
  ws(w, "</div>\n</div>\n");
}

static void html_summary(wr *w, const cJSON *r) {
  section(w, "About this report",
          "okegw, the school's OKE gateway, recorded every message exchanged with this "
          "connector and checked it against the acceptance criteria below.");
  const char *role = sget(r, "role"), *phase = sget(r, "phase"), *m = sget(r, "mirrorOf");
  ws(w, "<dl class=\"facts\">\n<dt>Connector</dt><dd>");
  hd(w, sget(r, "connector"));
  ws(w, "</dd>\n<dt>Role</dt><dd>");
  hd(w, role);
  if (role_words(role))
    wf(w, " &ndash; %s", role_words(role));
  ws(w, "</dd>\n<dt>Phase now</dt><dd>");
  hd(w, phase);
  if (phase_words(phase))
    wf(w, " &ndash; %s", phase_words(phase));
  ws(w, "</dd>\n");
  if (m) {
    ws(w, "<dt>Mirror of</dt><dd>");
    hd(w, m);
    ws(w, " (the connector whose traffic it receives a copy of)</dd>\n");
  }
  ws(w, "<dt>Evidence window</dt><dd>");
  if (sget(r, "since") || sget(r, "until")) {
    htime(w, sget(r, "since"));
    ws(w, " &ndash; ");
    htime(w, sget(r, "until"));
  } else {
    ws(w, "&ndash;");
  }
  ws(w, "</dd>\n<dt>Generated</dt><dd>");
  htime(w, sget(r, "generatedAt"));
  ws(w, "</dd>\n</dl>\n");
  const cJSON *t = oget(r, "totals");
  char b[48];
  static const struct {
    const char *k, *label;
    int dec;
  } cards[] = {{"exchanges", "messages exchanged", 0},
               {"errors", "errors", 0},
               {"violations", "OKE rule violations", 0},
               {"mappingErrors", "mapping errors", 0},
               {"p50Ms", "typical answer time (ms, median)", 1},
               {"p99Ms", "slowest 1% answer time (ms)", 1}};
  ws(w, "<div class=\"cards\">\n");
  for (size_t i = 0; i < sizeof cards / sizeof cards[0]; i++) {
    ws(w, "<div class=\"card\"><b>");
    const char *s = ntxt(t, cards[i].k, cards[i].dec, b);
    hd(w, strcmp(s, "-") ? s : NULL);
    wf(w, "</b><span>%s</span></div>\n", cards[i].label);
  }
  ws(w, "</div>\n</section>\n");
}

static void html_reasons(wr *w, const cJSON *r) {
  section(w, "Why this verdict",
          "Every acceptance criterion that was not passed, the failed ones first, with the "
          "evidence that shows it.");
  const cJSON *a = aget(r, "reasons"), *x;
  const char *v = sget(r, "verdict");
  if (!count(a))
    none(w, v && !strcmp(v, "GO") ? "None: every criterion passed." : "None listed.");
  cJSON_ArrayForEach(x, a) {
    const char *o = sget(x, "outcome");
    wf(w, "<div class=\"reason %s\">", outcome_class(o));
    badge(w, o);
    ws(w, " <code>");
    hd(w, sget(x, "criterion"));
    ws(w, "</code><div class=\"d\">");
    hd(w, sget(x, "detail"));
    ws(w, "</div><div class=\"e\">Evidence: ");
    hd(w, sget(x, "evidence"));
    ws(w, "</div></div>\n");
  }
  ws(w, "</section>\n");
}

/* Bars of exchanges and errors per day. */
static void html_chart(wr *w, const cJSON *r) {
  section(w, "Traffic per day",
          "Messages exchanged (blue) and errors (red: server errors, OKE rule violations and "
          "mapping errors) on each day of the window with traffic.");
  const cJSON *a = aget(r, "daily"), *x;
  int n = count(a);
  const double W = 760, H = 260, L = 56, R = 10, T = 30, B = 44;
  wf(w,
     "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" "
     "role=\"img\" aria-label=\"Exchanges and errors per day\">\n",
     W, H);
  wf(w,
     "<rect x=\"%.0f\" y=\"6\" width=\"12\" height=\"12\" fill=\"#3b6fb6\"/>"
     "<text x=\"%.0f\" y=\"16\" font-size=\"12\">exchanges</text>"
     "<rect x=\"%.0f\" y=\"6\" width=\"12\" height=\"12\" fill=\"#c0392b\"/>"
     "<text x=\"%.0f\" y=\"16\" font-size=\"12\">errors</text>\n",
     L, L + 16, L + 100, L + 116);
  double max = 0;
  cJSON_ArrayForEach(x, a) {
    if (nval(x, "exchanges") > max)
      max = nval(x, "exchanges");
    if (nval(x, "errors") > max)
      max = nval(x, "errors");
  }
  double pw = W - L - R, ph = H - T - B, y0 = T + ph;
  /* Four grid steps of 1, 2, 2.5 or 5 times a power of ten, whole numbers
   * (counts). */
  double step = 1;
  if (max > 4) {
    double q = max / 4, p = pow(10, floor(log10(q)));
    step = q <= p                    ? p
           : q <= 2 * p              ? 2 * p
           : q <= 2.5 * p && p >= 10 ? 2.5 * p
           : q <= 5 * p              ? 5 * p
                                     : 10 * p;
  }
  double top = 4 * step;
  for (int i = 0; i <= 4 && n; i++) {
    double y = y0 - ph * i / 4;
    char b[48];
    wf(w,
       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
       "stroke-width=\"1\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
       "text-anchor=\"end\" fill=\"#444\">%s</text>\n",
       L, y, W - R, y, i ? "#e2e2e2" : "#888", L - 6, y + 4, fnum(top * i / 4, 1, b));
  }
  if (!n) {
    wf(w, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", L, y0, W - R,
       y0);
    wf(w,
       "<text x=\"%.1f\" y=\"%.1f\" font-size=\"16\" text-anchor=\"middle\" fill=\"#555\">"
       "No traffic in this window</text>\n",
       L + pw / 2, T + ph / 2);
  } else {
    double slot = pw / n, bw = slot * 0.38;
    if (bw > 28)
      bw = 28;
    int every = n > 14 ? (n + 13) / 14 : 1;
    int i = 0;
    cJSON_ArrayForEach(x, a) {
      double cx = L + slot * i + slot / 2;
      double he_ = ph * nval(x, "exchanges") / top, hr = ph * nval(x, "errors") / top;
      char b[2][48];
      wf(w,
         "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3b6fb6\">"
         "<title>",
         cx - bw, y0 - he_, bw, he_);
      hd(w, sget(x, "day"));
      wf(w, ": %s exchanges</title></rect>", ntxt(x, "exchanges", 0, b[0]));
      wf(w,
         "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#c0392b\">"
         "<title>",
         cx, y0 - hr, bw, hr);
      hd(w, sget(x, "day"));
      wf(w, ": %s errors</title></rect>\n", ntxt(x, "errors", 0, b[1]));
      if (i % every == 0) {
        const char *d = sget(x, "day");
        /* 2026-12-05 shows as 12-05; anything else as it is. */
        if (d && strlen(d) == 10 && d[4] == '-')
          d += 5;
        wf(w, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">",
           cx, y0 + 16);
        hd(w, d);
        ws(w, "</text>\n");
      }
      i++;
    }
    wf(w,
       "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#666\">"
       "day (UTC)</text>\n",
       L + pw / 2, H - 6);
  }
  ws(w, "</svg>\n</section>\n");
}

/* A small bar of the answers by status class. */
static void status_bar(wr *w, const cJSON *st) {
  static const struct {
    const char *k, *fill;
  } cl[] = {{"2xx", "#1e7b34"}, {"3xx", "#3b6fb6"}, {"4xx", "#d48a00"}, {"5xx", "#b3261e"}};
  double sum = 0, x = 0;
  for (int i = 0; i < 4; i++)
    sum += nval(st, cl[i].k);
  ws(w, "<svg width=\"120\" height=\"12\" viewBox=\"0 0 120 12\" role=\"img\" "
        "aria-label=\"answers by status\">");
  if (sum <= 0)
    ws(w, "<rect x=\"0\" y=\"0\" width=\"120\" height=\"12\" fill=\"#ddd\"/>");
  for (int i = 0; i < 4 && sum > 0; i++) {
    double wd = 120 * nval(st, cl[i].k) / sum;
    if (wd > 0)
      wf(w, "<rect x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"12\" fill=\"%s\"/>", x, wd,
         cl[i].fill);
    x += wd;
  }
  ws(w, "</svg>");
}

/* The heading row of a table from the columns' HTML headings. */
static void th_row(wr *w, const col *cols) {
  ws(w, "<thead><tr>");
  for (const col *c = cols; !col_end(c); c++)
    if (c->html) {
      ws(w, is_num(c->kind) ? "<th class=\"n\">" : "<th>");
      ws(w, c->html);
      ws(w, "</th>");
    }
  ws(w, "</tr></thead><tbody>\n");
}

/* The cells of row `x`, escaped; "&ndash;" for none. */
static void h_cells(wr *w, const cJSON *x, const col *cols) {
  for (const col *c = cols; !col_end(c); c++) {
    if (!c->html)
      continue;
    char b[48];
    const char *s = cell(x, c, b);
    int code = c->kind == K_CODE;
    ws(w, is_num(c->kind) ? "<td class=\"n\">" : code ? "<td><code>" : "<td>");
    if (is_num(c->kind))
      hd(w, strcmp(s, "-") ? s : NULL);
    else if (c->kind == K_TIME)
      htime(w, s);
    else if (c->kind == K_BADGE)
      badge(w, s);
    else if (c->kind == K_BAR)
      status_bar(w, c->member ? path_get(x, c->member) : NULL);
    else
      hd(w, s);
    ws(w, code ? "</code></td>" : "</td>");
  }
}

/* The rows (elements of an array or members of an object) as a table, or
 * `none_text` when there are none (NULL: nothing). */
static void h_table(wr *w, const cJSON *rows, const col *cols, int narrow, const char *none_text) {
  if (!count(rows)) {
    if (none_text)
      none(w, none_text);
    return;
  }
  ws(w, narrow ? "<table class=\"narrow\">" : "<table>");
  th_row(w, cols);
  const cJSON *x;
  cJSON_ArrayForEach(x, rows) {
    ws(w, "<tr>");
    h_cells(w, x, cols);
    ws(w, "</tr>\n");
  }
  ws(w, "</tbody></table>\n");
}

static void h_section(wr *w, const cJSON *r, const tsec *s) {
  section(w, s->html_title, s->explain);
  h_table(w, sec_rows(r, s), s->cols, s->narrow, s->html_none);
  ws(w, "</section>\n");
}

static void html_differences(wr *w, const cJSON *r) {
  section(w, "Shadow comparison",
          "While in shadow, the connector receives copies of real messages; its answers are "
          "compared with the answers of the system in use.");
  const cJSON *o = oget(r, "differences");
  char b[3][48];
  const char *c = ntxt(o, "compared", 0, b[0]), *d = ntxt(o, "differing", 0, b[1]),
             *rt = rate_txt(o, b[2]);
  wf(w, "<p>Compared: <b>%s</b> &nbsp; Differing: <b>%s</b> &nbsp; Rate: <b>%s</b></p>\n",
     strcmp(c, "-") ? c : "&ndash;", strcmp(d, "-") ? d : "&ndash;",
     strcmp(rt, "-") ? rt : "&ndash;");
  h_table(w, aget(o, "byField"), C_FIELDS, 1, "No differing fields.");
  ws(w, "</section>\n");
}

static void html_runs(wr *w, const cJSON *r) {
  section(w, "Acceptance test runs",
          "The last runs of the acceptance test scenarios, newest first. Failed steps are "
          "listed with what went wrong.");
  const cJSON *a = aget(r, "runs"), *run;
  if (!count(a))
    none(w, "No acceptance runs recorded.");
  cJSON_ArrayForEach(run, a) {
    char b[4][48];
    ws(w, "<div class=\"run\"><h3>Run ");
    hd(w, strcmp(ntxt(run, "id", 0, b[0]), "-") ? b[0] : NULL);
    ws(w, " (");
    hd(w, sget(run, "mode"));
    ws(w, ") ");
    badge(w, sget(run, "outcome"));
    ws(w, "</h3>\n<p>Started ");
    htime(w, sget(run, "startedAt"));
    ws(w, ", finished ");
    htime(w, sget(run, "finishedAt"));
    wf(w, ". Steps: %s passed, %s failed, %s skipped.</p>\n", ntxt(run, "passed", 0, b[1]),
       ntxt(run, "failed", 0, b[2]), ntxt(run, "skipped", 0, b[3]));
    const cJSON *sc = aget(run, "scenarios"), *s;
    h_table(w, sc, C_SCENARIOS, 0, NULL);
    int nf = 0;
    cJSON_ArrayForEach(s, sc) {
      const cJSON *st;
      cJSON_ArrayForEach(st, aget(s, "steps")) {
        if (!step_failed(st))
          continue;
        if (!nf++) {
          ws(w, "<h3>Failed steps</h3><table>");
          th_row(w, C_FAILED_STEPS);
        }
        ws(w, "<tr><td>");
        hd(w, sget(s, "id"));
        ws(w, "</td>");
        h_cells(w, st, C_FAILED_STEPS + 1);
        ws(w, "</tr>\n");
      }
    }
    if (nf)
      ws(w, "</tbody></table>\n");
    ws(w, "</div>\n");
  }
  ws(w, "</section>\n");
}

int okegw_report_html(const cJSON *r, FILE *out) {
  if (!out)
    return -1;
  wr w = {out, 0};
  ws(&w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<title>Acceptance report: ");
  hd(&w, sget(r, "connector"));
  ws(&w, "</title>\n<style>");
  ws(&w, CSS);
  ws(&w, "</style>\n</head>\n<body>\n<h1>OKE gateway acceptance report</h1>\n");
  html_banner(&w, r);
  html_summary(&w, r);
  html_reasons(&w, r);
  h_section(&w, r, &S_CRITERIA);
  html_chart(&w, r);
  h_section(&w, r, &S_INTERACTIONS);
  h_section(&w, r, &S_VIOLATIONS);
  h_section(&w, r, &S_MAPPING_ERRORS);
  h_section(&w, r, &S_DELIVERIES);
  html_differences(&w, r);
  html_runs(&w, r);
  h_section(&w, r, &S_PHASES);
  h_section(&w, r, &S_VERSIONS);
  ws(&w, "<footer>Report format ");
  hd(&w, sget(r, "format"));
  ws(&w, ", generated by okegw at ");
  htime(&w, sget(r, "generatedAt"));
  ws(&w, ".</footer>\n</body>\n</html>\n");
  return finish(&w);
}
