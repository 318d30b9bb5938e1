/* Data-driven tests of the mapping helpers (scripts/lib/oke.lua).
 *
 *   test_lua_cases CASES_DIR LIB_DIR
 *
 * Every folder in CASES_DIR is one case:
 *   map.lua    a mapping script (to_peer and/or from_peer)
 *   in.json    the message it is given
 *   out.json   the exact result, compared as JSON values (key order free)
 *   reverse    optional, empty: run from_peer instead of to_peer
 *   error      optional: a text the error must contain, instead of out.json;
 *              several lines are alternatives (a limit that a slow build,
 *              such as a sanitizer build, may reach by another way first)
 *
 * The script runs the way the gateway runs it: copied into a fresh folder as
 * flow2.put_offering.lua, loaded with okegw_mapset_load (lib folder LIB_DIR)
 * and run with okegw_mapset_run. An error may come from loading (a bad rule
 * is found when oke.rules runs at load time) or from running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "connector/mapping.h"
#include "base/util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INTERACTION "flow2.put_offering"

static const char *lib_dir;

/* The whole file as a NUL-terminated string, or NULL. */
static char *slurp(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return okegw_read_file(path, 16u << 20, NULL);
}

static int exists(const char *dir, const char *name) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return stat(path, &st) == 0;
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t len = strlen(text);
  int ok = fwrite(text, 1, len, f) == len;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* Drops trailing white space (the newline an editor adds to `error`). */
static void chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
}

/* Checks an error against the expected substring (or any line of it); fills
 * why on mismatch. */
static void expect_error(const char *got, const char *want, char *why, size_t whysz) {
  if (!want) {
    snprintf(why, whysz, "unexpected error: %s", got);
    return;
  }
  for (const char *line = want; *line;) {
    size_t len = strcspn(line, "\n");
    char *one = okegw_strndup(line, len);
    int found = one && strstr(got, one);
    free(one);
    if (found)
      return;
    line += len + (line[len] == '\n');
  }
  snprintf(why, whysz, "the error\n  %s\ndoes not contain\n  %s", got, want);
}

static void run_case(void **state) {
  const char *dir = *state;
  char why[4096] = "";
  char tmp[] = "/tmp/okegw-lua-case-XXXXXX";
  char script[sizeof tmp + sizeof INTERACTION + 8] = "";
  char err[2048] = "";
  char *map = slurp(dir, "map.lua");
  char *in_text = slurp(dir, "in.json");
  char *want_text = slurp(dir, "out.json");
  char *want_err = slurp(dir, "error");
  int reverse = exists(dir, "reverse");
  cJSON *in = NULL, *want = NULL, *out = NULL;
  okegw_mapset *m = NULL;
  okegw_diag diag = {0};
  int made_tmp = 0;

  if (want_err)
    chomp(want_err);
  if (!map || !in_text || (!want_text && !want_err)) {
    snprintf(why, sizeof why, "%s needs map.lua, in.json and out.json (or error)", dir);
    goto done;
  }
  if (!(in = cJSON_Parse(in_text))) {
    snprintf(why, sizeof why, "%s/in.json is not valid JSON", dir);
    goto done;
  }
  if (!want_err && !(want = cJSON_Parse(want_text))) {
    snprintf(why, sizeof why, "%s/out.json is not valid JSON", dir);
    goto done;
  }
  if (!mkdtemp(tmp)) {
    snprintf(why, sizeof why, "cannot make a temporary folder");
    goto done;
  }
  made_tmp = 1;
  snprintf(script, sizeof script, "%s/%s.lua", tmp, INTERACTION);
  if (write_file(script, map) < 0) {
    snprintf(why, sizeof why, "cannot write %s", script);
    goto done;
  }

  if (okegw_mapset_load(tmp, 0, &(okegw_map_limits){.lib_dir = lib_dir}, &m, &diag) < 0) {
    /* all load problems as one text, for the substring check */
    char all[2048] = "";
    for (size_t i = 0; i < diag.n; i++) {
      size_t used = strlen(all);
      snprintf(all + used, sizeof all - used, "%s%s", i ? "\n" : "", diag.msgs[i]);
    }
    expect_error(all, want_err, why, sizeof why);
    goto done;
  }
  okegw_map_ctx ctx = {
      .connector = "case", .interaction = INTERACTION, .id = "", .phase = "live", .conf = NULL};
  if (okegw_mapset_run(m, INTERACTION, reverse, in, &ctx, &out, err, sizeof err) < 0) {
    expect_error(err, want_err, why, sizeof why);
    goto done;
  }
  if (want_err) {
    char *got = cJSON_PrintUnformatted(out ? out : in);
    snprintf(why, sizeof why, "expected an error containing\n  %s\nbut the mapping gave\n  %s",
             want_err, got ? got : "?");
    free(got);
    goto done;
  }
  if (!cJSON_Compare(out ? out : in, want, 1)) {
    char *got = cJSON_PrintUnformatted(out ? out : in);
    char *exp = cJSON_PrintUnformatted(want);
    snprintf(why, sizeof why, "%s\n  got      %s\n  expected %s",
             out ? "wrong result" : "no function ran (identity)", got ? got : "?", exp ? exp : "?");
    free(got);
    free(exp);
  }

done:
  /* clean up before failing: a failing case must not also leak */
  if (made_tmp) {
    if (*script)
      unlink(script);
    rmdir(tmp);
  }
  okegw_mapset_unref(m);
  okegw_diag_free(&diag);
  cJSON_Delete(out);
  cJSON_Delete(want);
  cJSON_Delete(in);
  free(map);
  free(in_text);
  free(want_text);
  free(want_err);
  if (*why)
    fail_msg("case %s: %s", dir, why);
}

/* ctx.config: the connector's settings without its secrets, a table of the
 * message's own (a change does not reach the next message), and the
 * settings of the call, also when other ones come at the same address. */
static const char config_script[] = "function to_peer(msg, ctx)\n"
                                    "  msg.system = ctx.config.test_system\n"
                                    "  msg.token = ctx.config.token or 'absent'\n"
                                    "  msg.before = ctx.config.mark or 'unmarked'\n"
                                    "  ctx.config.mark = 'marked'\n"
                                    "  return msg\n"
                                    "end\n";

static void run_config(okegw_mapset *m, const okegw_conf_connector *conf, const char *want) {
  cJSON *in = cJSON_Parse("{}"), *out = NULL, *exp = cJSON_Parse(want);
  okegw_map_ctx ctx = {
      .connector = "case", .interaction = INTERACTION, .id = "", .phase = "live", .conf = conf};
  char err[512];
  assert_int_equal(okegw_mapset_run(m, INTERACTION, 0, in, &ctx, &out, err, sizeof err), 0);
  char *got = cJSON_PrintUnformatted(out);
  if (!cJSON_Compare(out, exp, 1))
    fail_msg("ctx.config: got %s, expected %s", got, want);
  free(got);
  cJSON_Delete(in);
  cJSON_Delete(out);
  cJSON_Delete(exp);
}

static void config_per_message(void **state) {
  (void)state;
  char tmp[] = "/tmp/okegw-lua-config-XXXXXX", script[4096];
  assert_non_null(mkdtemp(tmp));
  snprintf(script, sizeof script, "%s/%s.lua", tmp, INTERACTION);
  assert_int_equal(write_file(script, config_script), 0);
  okegw_mapset *m = NULL;
  okegw_diag diag = {0};
  assert_int_equal(okegw_mapset_load(tmp, 0, &(okegw_map_limits){.lib_dir = lib_dir}, &m, &diag),
                   0);
  char k1[] = "test_system", v1[] = "alpha", k2[] = "token", v2[] = "s3cret";
  okegw_conf_kv kv[] = {{.key = k1, .value = v1}, {.key = k2, .value = v2}};
  okegw_conf_connector a = {.name = "case", .kv = kv, .nkv = 2};
  const char *alpha = "{\"system\":\"alpha\",\"token\":\"absent\",\"before\":\"unmarked\"}";
  run_config(m, &a, alpha);
  run_config(m, &a, alpha); /* the first message's mark stayed its own */
  char k3[] = "test_system", v3[] = "beta";
  okegw_conf_kv kvb[] = {{.key = k3, .value = v3}};
  okegw_conf_connector b = {.name = "case", .kv = kvb, .nkv = 1};
  run_config(m, &b, "{\"system\":\"beta\",\"token\":\"absent\",\"before\":\"unmarked\"}");
  run_config(m, &a, alpha);
  /* other settings where the old ones were: a reload may do that */
  char v4[] = "gamma";
  kv[0].value = v4;
  run_config(m, &a, "{\"system\":\"gamma\",\"token\":\"absent\",\"before\":\"unmarked\"}");
  run_config(m, NULL, "{\"token\":\"absent\",\"before\":\"unmarked\"}");
  okegw_mapset_unref(m);
  okegw_diag_free(&diag);
  unlink(script);
  rmdir(tmp);
}

static int only_dirs(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s CASES_DIR LIB_DIR\n", argv[0]);
    return 2;
  }
  lib_dir = argv[2];
  struct dirent **names = NULL;
  int n = scandir(argv[1], &names, only_dirs, alphasort);
  if (n <= 0) {
    fprintf(stderr, "%s: no cases in %s\n", argv[0], argv[1]);
    free(names);
    return 1;
  }
  struct CMUnitTest *tests = calloc((size_t)n + 1, sizeof *tests);
  char **paths = calloc((size_t)n, sizeof *paths);
  size_t count = 0;
  for (int i = 0; tests && paths && i < n; i++) {
    size_t len = strlen(argv[1]) + strlen(names[i]->d_name) + 2;
    char *p = malloc(len);
    if (p) {
      snprintf(p, len, "%s/%s", argv[1], names[i]->d_name);
      struct stat st;
      if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
        paths[count] = p;
        /* the case's folder name is the test's name */
        tests[count] = (struct CMUnitTest){
            .name = p + strlen(argv[1]) + 1, .test_func = run_case, .initial_state = p};
        count++;
      } else {
        free(p);
      }
    }
  }
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
  int rc = 1;
  size_t ncases = count; /* paths[] holds as many */
  if (tests && count > 0)
    tests[count++] =
        (struct CMUnitTest){.name = "config_per_message", .test_func = config_per_message};
  if (tests && paths && count > 0)
    rc = _cmocka_run_group_tests("lua_cases", tests, count, NULL, NULL);
  for (size_t i = 0; paths && i < ncases; i++)
    free(paths[i]);
  free(paths);
  free(tests);
  return rc;
}
