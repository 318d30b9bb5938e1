/* okegw report (see report.h). */
#include "admin/report.h"
#include "admin/admin_client.h"
#include "base/json.h"
#include "base/util.h"
#include "report/evidence.h"
#include "report/render.h"
#include "report/verdict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: okegw report -c FILE --connector NAME [--since TIME] [--format text|json|html] "
    "[-o FILE] [--store]\n"
    "  the acceptance evidence on connector NAME and its verdict (GO, NO-GO, INCONCLUSIVE)\n"
    "  --since TIME   RFC 3339 UTC or a prefix of it (default: accept_window_s before now)\n"
    "  --format       text (default), json (stable, documented) or html (one page, printable)\n"
    "  -o FILE        write there instead of standard output\n"
    "  --store        read the store directly, not through the running gateway\n"
    "  When the gateway runs (admin_listen answers) the evidence comes from its admin API.\n";

int okegw_report_format_from_name(const char *name) {
  static const char *const names[] = {"text", "json", "html"};
  for (int i = 0; i < 3; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  return -1;
}

static int render(const cJSON *doc, enum okegw_report_format format, FILE *f) {
  if (format == OKEGW_REPORT_HTML)
    return okegw_report_html(doc, f);
  if (format == OKEGW_REPORT_TEXT)
    return okegw_report_text(doc, f);
  char *s = cJSON_Print(doc);
  int rc = s && fputs(s, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
  free(s);
  return rc;
}

/* Writes to path through a temporary file renamed into place, so a reader
 * never sees half a report. */
static int write_file(const cJSON *doc, enum okegw_report_format format, const char *path) {
  char *tmp = okegw_asprintf("%s.tmp.%ld", path, (long)getpid());
  FILE *f = tmp ? fopen(tmp, "w") : NULL;
  if (!f) {
    fprintf(stderr, "okegw report: cannot write %s: %s\n", path,
            tmp ? strerror(errno) : "no memory");
    free(tmp);
    return -1;
  }
  int rc = render(doc, format, f);
  rc |= fclose(f) == 0 ? 0 : -1;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -1;
  if (rc != 0) {
    fprintf(stderr, "okegw report: cannot write %s: %s\n", path, strerror(errno));
    unlink(tmp);
  }
  free(tmp);
  return rc;
}

/* Gathers the evidence and judges it: *doc (the caller deletes it), or -1
 * with why in *why (free it; NULL when out of memory). */
static int build(okegw_store *s, const okegw_conf_connector *cc, const char *since, cJSON **doc,
                 const char **verdict, char **why) {
  char from[40];
  if (!since) {
    okegw_format_rfc3339(okegw_wall_ms() - cc->accept_window_s * 1000LL, 1, from, sizeof from);
    since = from;
  }
  okegw_evidence_window w = {.since = since};
  *doc = NULL;
  *why = NULL;
  if (okegw_evidence_gather(s, cc, &w, doc, why) != OKEGW_STORE_OK)
    return -1;
  if (okegw_verdict_judge(*doc, cc) < 0) {
    *why = okegw_strdup("out of memory");
    return -1;
  }
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(*doc, "verdict");
  if (verdict)
    *verdict = !cJSON_IsString(v)                     ? "INCONCLUSIVE"
               : strcmp(v->valuestring, "GO") == 0    ? "GO"
               : strcmp(v->valuestring, "NO-GO") == 0 ? "NO-GO"
                                                      : "INCONCLUSIVE";
  return 0;
}

/* doc (gathered and judged) to out_path or standard output. */
static int output(const cJSON *doc, enum okegw_report_format format, const char *out_path) {
  int rc = 0;
  if (out_path && strcmp(out_path, "-") != 0) {
    rc = write_file(doc, format, out_path);
  } else if ((rc = render(doc, format, stdout)) < 0 || fflush(stdout) != 0) {
    fprintf(stderr, "okegw report: cannot write the report: %s\n", strerror(errno));
    rc = -1;
  }
  return rc;
}

int okegw_report_write(okegw_store *s, const okegw_conf_connector *cc, const char *since,
                       enum okegw_report_format format, const char *out_path,
                       const char **verdict) {
  cJSON *doc = NULL;
  char *why = NULL;
  int rc = build(s, cc, since, &doc, verdict, &why);
  if (rc < 0) {
    fprintf(stderr, "okegw report: %s\n", why ? why : "out of memory");
    free(why);
  } else {
    rc = output(doc, format, out_path);
  }
  cJSON_Delete(doc);
  return rc;
}

/* The report through the admin API: its JSON document, rendered here in
 * the format asked for (the renderers are the same). The exit code. */
static int report_api(okegw_admin_client *c, const char *name, const char *since,
                      enum okegw_report_format format, const char *out_path) {
  char *en = okegw_admin_client_escape(c, name);
  char *es = since ? okegw_admin_client_escape(c, since) : NULL;
  char *path = en && (es || !since)
                   ? okegw_asprintf("/admin/api/report?format=json&connector=%s%s%s", en,
                                    es ? "&since=" : "", es ? es : "")
                   : NULL;
  free(en);
  free(es);
  if (!path) {
    fprintf(stderr, "okegw report: out of memory\n");
    return 1;
  }
  cJSON *doc = NULL;
  int status = okegw_admin_client_call(c, "report", "GET", path, &doc, NULL, NULL);
  free(path);
  int rc;
  if (status == OKEGW_ADMIN_CLIENT_UNAUTHORISED) {
    rc = 2;
  } else if (status != 200 || !cJSON_IsObject(doc)) {
    if (status >= 0)
      fprintf(stderr, "okegw report: %s\n",
              okegw_admin_client_detail(doc, "the admin API answered no report"));
    rc = status == 400 || status == 404 ? 2 : 1;
  } else {
    rc = output(doc, format, out_path) == 0 ? 0 : 1;
  }
  cJSON_Delete(doc);
  return rc;
}

int okegw_report_stream(okegw_store *s, const okegw_conf_connector *cc, const char *since,
                        enum okegw_report_format format, FILE *out, const char **verdict,
                        char **why) {
  cJSON *doc = NULL;
  int rc = build(s, cc, since, &doc, verdict, why);
  if (rc == 0 && (rc = render(doc, format, out)) < 0)
    *why = okegw_strdup("cannot write the report");
  cJSON_Delete(doc);
  return rc;
}

int okegw_admin_report(int argc, char **argv) {
  const char *file = NULL, *name = NULL, *since = NULL, *out = NULL;
  int format = OKEGW_REPORT_TEXT, store = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    }
    if (strcmp(a, "--store") == 0) {
      store = 1;
      continue;
    }
    if (!has) {
      fprintf(stderr, "okegw report: %s needs a value\n%s", a, usage);
      return 2;
    }
    if (strcmp(a, "-c") == 0)
      file = argv[++i];
    else if (strcmp(a, "--connector") == 0)
      name = argv[++i];
    else if (strcmp(a, "--since") == 0)
      since = argv[++i];
    else if (strcmp(a, "-o") == 0)
      out = argv[++i];
    else if (strcmp(a, "--format") == 0) {
      if ((format = okegw_report_format_from_name(argv[++i])) < 0) {
        fprintf(stderr, "okegw report: --format is text, json or html, not '%s'\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "okegw report: unknown argument '%s'\n%s", a, usage);
      return 2;
    }
  }
  if (!file || !name) {
    fprintf(stderr, "okegw report: needs -c FILE and --connector NAME\n%s", usage);
    return 2;
  }
  long long ms;
  if (since && (okegw_parse_rfc3339(since, &ms) != 0 || strpbrk(since + 10, "tz +-"))) {
    fprintf(stderr,
            "okegw report: --since takes RFC 3339 in UTC (2026-12-01 or 2026-12-01T08:00:00Z), "
            "not '%s'\n",
            since);
    return 2;
  }
  okegw_conf conf;
  if (okegw_conf_load_cli(file, &conf) < 0)
    return 2;
  const okegw_conf_connector *cc = okegw_conf_section(&conf, name);
  int rc = 2;
  okegw_store *s = NULL;
  char *err = NULL;
  okegw_admin_client *c = cc && !store ? okegw_admin_client_open(&conf, file) : NULL;
  if (!cc) {
    fprintf(stderr, "okegw report: %s has no [connector %s]\n", file, name);
  } else if (c) {
    rc = report_api(c, name, since, (enum okegw_report_format)format, out);
    okegw_admin_client_close(c);
  } else if (okegw_store_open_direct(conf.store, 0, &s, &err) != OKEGW_STORE_OK) {
    fprintf(stderr, "okegw report: %s\n", err ? err : "out of memory");
  } else {
    rc = okegw_report_write(s, cc, since, (enum okegw_report_format)format, out, NULL) == 0 ? 0 : 1;
  }
  free(err);
  if (s)
    okegw_store_close(s, NULL, NULL);
  okegw_conf_free(&conf);
  return rc;
}
