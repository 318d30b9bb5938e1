/* The acceptance report's text and HTML renderings: a full document with
 * hostile strings, and partial or mistyped ones that must still render.
 * With OKEGW_RENDER_HTML_OUT=path the full sample's HTML is also written to
 * path (for tests/integration/report_html_check.py and a look by eye). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/render.h"

static const char *FULL =
    "{\"format\":\"okegw-acceptance-report/1\",\"generatedAt\":\"2026-12-06T19:48:00.000Z\","
    "\"connector\":\"<script>alert(1)</script>\",\"role\":\"ta\",\"phase\":\"shadow\","
    "\"mirrorOf\":\"north & co\",\"since\":\"2026-11-22T19:48:00.000Z\","
    "\"until\":\"2026-12-06T19:48:00.000Z\",\"verdict\":\"NO-GO\","
    "\"reasons\":["
    " {\"criterion\":\"accept_max_dead_letters\",\"outcome\":\"failed\","
    "  \"detail\":\"1 dead letter, at most 0 allowed\","
    "  \"evidence\":\"delivery 12: flow3.patch_association 0f57a72a dead since "
    "2026-12-06T10:00:00.000Z\"},"
    " {\"criterion\":\"accept_max_violation_rate\",\"outcome\":\"insufficient\","
    "  \"detail\":\"a&b\\\"c\",\"evidence\":\"<img src=x onerror=alert(2)>\"}],"
    "\"criteria\":["
    " {\"criterion\":\"accept_min_exchanges\",\"outcome\":\"passed\",\"want\":\"at least 20\","
    "  \"got\":\"143\",\"detail\":\"143 exchanges in the window\"},"
    " {\"criterion\":\"accept_max_dead_letters\",\"outcome\":\"failed\",\"want\":\"at most 0\","
    "  \"got\":\"1\",\"detail\":\"1 dead letter, at most 0 allowed\"},"
    " {\"criterion\":\"accept_max_violation_rate\",\"outcome\":\"insufficient\","
    "  \"want\":\"at most 1%\",\"got\":null,\"detail\":\"a&b\\\"c\"}],"
    "\"totals\":{\"exchanges\":143,\"errors\":3,\"violations\":1,\"mappingErrors\":2,"
    " \"p50Ms\":3.1,\"p99Ms\":40.2},"
    "\"interactions\":{"
    " \"flow0.get_components\":{\"flow\":0,\"exchanges\":120,"
    "  \"status\":{\"2xx\":119,\"3xx\":0,\"4xx\":1,\"5xx\":0},"
    "  \"violations\":{\"count\":0,\"byRule\":{}},\"mappingErrors\":{\"count\":0,\"examples\":[]},"
    "  \"latency\":{\"p50Ms\":2.5,\"p99Ms\":12}},"
    " \"flow2.put_offering\":{\"flow\":2,\"exchanges\":12,"
    "  \"status\":{\"2xx\":10,\"3xx\":0,\"4xx\":1,\"5xx\":1},"
    "  "
    "\"violations\":{\"count\":1,\"byRule\":{\"R10\":{\"count\":1,\"pointer\":\"/consumers/0/"
    "x\"}}},"
    "  \"mappingErrors\":{\"count\":2,\"examples\":[\"ta.lua:12: attempt to index a nil value\"]},"
    "  \"latency\":{\"p50Ms\":3.2,\"p99Ms\":10.1}},"
    " \"flow3.patch_association\":{\"flow\":3,\"exchanges\":0,"
    "  \"status\":{\"2xx\":0,\"3xx\":0,\"4xx\":0,\"5xx\":0},"
    "  \"violations\":{\"count\":0,\"byRule\":{}},\"mappingErrors\":{\"count\":0,\"examples\":[]},"
    "  \"latency\":{\"p50Ms\":null,\"p99Ms\":null}}},"
    "\"violations\":[{\"rule\":\"R10\",\"count\":1,\"pointer\":\"/consumers/0/<x>\","
    " \"interaction\":\"flow2.put_offering\"}],"
    "\"mappingErrors\":[{\"where\":\"ta.lua:12\",\"count\":2,"
    " \"message\":\"attempt to index a nil value \\u001b[31mred\",\"interaction\":"
    "\"flow2.put_offering\"}],"
    "\"deliveries\":{\"pending\":0,\"delivered\":5,\"failed\":0,\"dead\":1,\"dropped\":0},"
    "\"differences\":{\"compared\":40,\"differing\":2,\"rate\":0.05,"
    " \"byField\":[{\"pointer\":\"/items/0/name\",\"count\":2}]},"
    "\"daily\":["
    " {\"day\":\"2026-11-28\",\"exchanges\":3,\"errors\":0},"
    " {\"day\":\"2026-11-30\",\"exchanges\":12,\"errors\":0},"
    " {\"day\":\"2026-12-01\",\"exchanges\":20,\"errors\":1},"
    " {\"day\":\"2026-12-03\",\"exchanges\":28,\"errors\":0},"
    " {\"day\":\"2026-12-05\",\"exchanges\":80,\"errors\":2}],"
    "\"runs\":[{\"id\":3,\"startedAt\":\"2026-12-06T09:00:00.000Z\","
    " \"finishedAt\":\"2026-12-06T09:04:10.000Z\",\"mode\":\"gateway\",\"passed\":120,"
    " \"failed\":1,\"skipped\":14,\"outcome\":\"failed\",\"scenarios\":["
    "  {\"id\":\"4\",\"name\":\"Happy path end to end\",\"passed\":22,\"failed\":1,\"skipped\":2,"
    "   \"steps\":[{\"step\":16,\"name\":\"TPL plans the zitting\",\"outcome\":\"ok\","
    "\"detail\":\"\"},"
    "    {\"step\":17,\"name\":\"TA1 pushes the result\",\"outcome\":\"failed\","
    "     \"detail\":\"expected 200, got 502 <from ta>\"}]},"
    "  {\"id\":\"5\",\"name\":\"Cancel a deelname\",\"passed\":8,\"failed\":0,\"skipped\":0,"
    "   \"steps\":[]}]},"
    " {\"id\":2,\"startedAt\":\"2026-12-05T09:00:00.000Z\","
    " \"finishedAt\":null,\"mode\":\"conformance\",\"passed\":10,"
    " \"failed\":0,\"skipped\":0,\"outcome\":\"incomplete\",\"scenarios\":[]}],"
    "\"phaseHistory\":["
    " {\"at\":\"2026-11-20T08:00:00.000Z\",\"connector\":\"north\",\"from\":null,"
    "  \"to\":\"shadow\",\"reason\":\"trial 'first'\",\"configSha256\":\"ab12cd34\"}],"
    "\"mappingVersions\":[{\"hash\":\"3f2a9b\",\"exchanges\":100,"
    " \"first\":\"2026-11-22T20:00:00.000Z\",\"last\":\"2026-12-06T18:00:00.000Z\"}]}";

/* What a renderer wrote, as one string (the caller frees it). */
static char *render(int html, const cJSON *doc) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  int rc = html ? okegw_report_html(doc, f) : okegw_report_text(doc, f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rc, 0);
  assert_non_null(buf);
  assert_int_equal(strlen(buf), len);
  return buf;
}

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = hay; *p; p++)
    if (strncasecmp(p, needle, n) == 0)
      return 1;
  return 0;
}

/* What every rendering of any document must satisfy: no markup from the
 * document, nothing fetched from elsewhere. */
static void assert_safe_html(const char *h) {
  assert_non_null(strstr(h, "<!DOCTYPE html>"));
  assert_non_null(strstr(h, "</html>"));
  assert_false(contains_nocase(h, "<script"));
  assert_false(contains_nocase(h, "<img"));
  assert_false(contains_nocase(h, "http://"));
  assert_false(contains_nocase(h, "https://"));
  assert_false(contains_nocase(h, "<link"));
  assert_false(contains_nocase(h, "@import"));
  assert_false(contains_nocase(h, "url("));
  assert_non_null(strstr(h, "<svg"));
  assert_non_null(strstr(h, "@media print"));
}

static void full_html(void **state) {
  (void)state;
  cJSON *doc = cJSON_Parse(FULL);
  assert_non_null(doc);
  char *h = render(1, doc);
  assert_safe_html(h);
  assert_non_null(strstr(h, "Verdict: NO-GO"));
  assert_non_null(strstr(h, "banner bad"));
  assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert_non_null(strstr(h, "a&amp;b&quot;c"));
  assert_null(strstr(h, "a&b\"c"));
  assert_non_null(strstr(h, "&lt;img src=x onerror=alert(2)&gt;"));
  assert_non_null(strstr(h, "north &amp; co"));
  assert_non_null(strstr(h, "trial &#39;first&#39;"));
  assert_non_null(strstr(h, "1 dead letter, at most 0 allowed"));
  assert_non_null(strstr(h, "expected 200, got 502 &lt;from ta&gt;"));
  assert_non_null(strstr(h, "/consumers/0/&lt;x&gt;"));
  assert_non_null(strstr(h, "ta.lua:12"));
  assert_non_null(strstr(h, "flow2.put_offering"));
  assert_non_null(strstr(h, "5.0%"));
  assert_null(strstr(h, "\x1b"));
  assert_null(strstr(h, "No traffic in this window"));
  /* a bar per day and series, with the day on its label */
  assert_non_null(strstr(h, "2026-12-05: 80 exchanges"));
  assert_non_null(strstr(h, "2026-12-05: 2 errors"));
  assert_non_null(strstr(h, ">12-05</text>"));
  const char *out = getenv("OKEGW_RENDER_HTML_OUT");
  if (out && *out) {
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    assert_int_equal(okegw_report_html(doc, f), 0);
    assert_int_equal(fclose(f), 0);
  }
  free(h);
  cJSON_Delete(doc);
}

static void full_text(void **state) {
  (void)state;
  cJSON *doc = cJSON_Parse(FULL);
  assert_non_null(doc);
  char *t = render(0, doc);
  assert_non_null(strstr(t, "VERDICT: NO-GO"));
  assert_non_null(strstr(t, "accept_max_dead_letters (failed): 1 dead letter, at most 0 allowed"));
  assert_non_null(strstr(t, "evidence: delivery 12: flow3.patch_association"));
  assert_non_null(strstr(t, "FAILED scenario 4 step 17 TA1 pushes the result: expected 200, "
                            "got 502 <from ta>"));
  assert_null(strstr(t, "step 16"));
  assert_non_null(strstr(t, "connector  <script>alert(1)</script>"));
  assert_non_null(strstr(t, "(mirror of north & co)"));
  /* the terminal never gets the document's escape sequences */
  assert_null(strstr(t, "\x1b"));
  assert_non_null(strstr(t, "nil value ?[31mred"));
  /* aligned: the header and rows of the criteria table start their
   * columns at the same place */
  const char *hdr = strstr(t, "  CRITERION ");
  assert_non_null(hdr);
  const char *want = strstr(hdr, "WANT");
  const char *row = strstr(hdr, "\n  accept_min_exchanges ");
  assert_non_null(row);
  assert_int_equal(want - hdr, strstr(row, "at least 20") - (row + 1));
  /* null numbers and missing texts show as "-" */
  assert_non_null(strstr(t, "flow3.patch_association"));
  assert_non_null(strstr(t, "p50 3.1 ms, p99 40.2 ms"));
  assert_non_null(strstr(t, "R10"));
  assert_non_null(strstr(t, "/items/0/name"));
  assert_non_null(strstr(t, "rate 5.0%"));
  free(t);
  cJSON_Delete(doc);
}

/* {}, null, a non-object and mistyped members: everything reads as none. */
static void partial_documents(void **state) {
  (void)state;
  const char *docs[] = {
      "{}",
      "[]",
      "42",
      "{\"verdict\":5,\"connector\":[],\"reasons\":{},\"criteria\":\"x\",\"totals\":[],"
      "\"interactions\":[1],\"daily\":[{\"day\":3,\"exchanges\":\"x\",\"errors\":-4},7,null],"
      "\"runs\":[{\"scenarios\":{\"a\":1}},null,{\"scenarios\":[{\"steps\":[{\"outcome\":"
      "\"failed\"},5]},\"x\"]}],\"deliveries\":{\"dead\":\"x\",\"pending\":null},"
      "\"differences\":{\"byField\":[null,{\"count\":\"2\"}],\"rate\":\"high\"},"
      "\"phaseHistory\":[[]],\"mappingVersions\":5,\"violations\":[{}],"
      "\"mappingErrors\":[1,2],\"interactions\":{\"x\":{\"status\":5,\"latency\":[]},\"y\":3}}",
      "{\"verdict\":\"GO\",\"connector\":\"north\",\"daily\":[{\"day\":\"2026-12-01\","
      "\"exchanges\":1e308,\"errors\":0}],\"totals\":{\"exchanges\":1e300}}",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    cJSON *doc = cJSON_Parse(docs[i]);
    assert_non_null(doc);
    char *h = render(1, doc);
    assert_safe_html(h);
    char *t = render(0, doc);
    assert_non_null(strstr(t, "VERDICT: "));
    if (i < 3) {
      assert_non_null(strstr(h, "Verdict: unknown &mdash; the report states no verdict"));
      assert_non_null(strstr(h, "No traffic in this window"));
      assert_non_null(strstr(t, "VERDICT: -"));
      assert_non_null(strstr(t, "no traffic in this window"));
    }
    if (i == 4) {
      assert_non_null(strstr(h, "Verdict: GO &mdash; every acceptance criterion is met"));
      assert_non_null(strstr(h, "banner ok"));
    }
    free(h);
    free(t);
    cJSON_Delete(doc);
  }
  char *h = render(1, NULL);
  assert_safe_html(h);
  free(h);
  char *t = render(0, NULL);
  assert_non_null(strstr(t, "VERDICT: -"));
  free(t);
}

static void inconclusive_banner(void **state) {
  (void)state;
  cJSON *doc = cJSON_Parse("{\"verdict\":\"INCONCLUSIVE\",\"connector\":\"a&b\\\"c\"}");
  assert_non_null(doc);
  char *h = render(1, doc);
  assert_non_null(strstr(h, "Verdict: INCONCLUSIVE &mdash; there is not yet enough evidence"));
  assert_non_null(strstr(h, "banner unk"));
  assert_non_null(strstr(h, "Connector: <b>a&amp;b&quot;c</b>"));
  free(h);
  cJSON_Delete(doc);
}

/* A stream that cannot be written: -1, not silence. */
static void write_error(void **state) {
  (void)state;
  cJSON *doc = cJSON_Parse(FULL);
  assert_non_null(doc);
  FILE *f = fopen("/dev/null", "r");
  assert_non_null(f);
  assert_int_equal(okegw_report_html(doc, f), -1);
  clearerr(f);
  assert_int_equal(okegw_report_text(doc, f), -1);
  fclose(f);
  assert_int_equal(okegw_report_text(doc, NULL), -1);
  assert_int_equal(okegw_report_html(doc, NULL), -1);
  cJSON_Delete(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(full_html),         cmocka_unit_test(full_text),
      cmocka_unit_test(partial_documents), cmocka_unit_test(inconclusive_banner),
      cmocka_unit_test(write_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
