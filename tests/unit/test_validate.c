/* The OKE profile validator: every example body in tests/validate/cases.txt
 * (valid ones must pass, invalid ones must be caught at the expected pointer),
 * then the format checkers, the score table and the profile's "ignore, never
 * reject" rules one by one.
 *
 * Usage: test_validate tests/validate/cases.txt */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <oke/plugin.h>

#include "base/util.h"
#include "oke/validate.h"

/* core/interaction.c's names; this test links validate.c alone. */
static const struct {
  const char *name;
  int id;
} interactions[] = {
    {"flow0.list_components", OKE_I_FLOW0_LIST_COMPONENTS},
    {"flow0.get_component", OKE_I_FLOW0_GET_COMPONENT},
    {"flow2.put_offering", OKE_I_FLOW2_PUT_OFFERING},
    {"flow2.patch_offering", OKE_I_FLOW2_PATCH_OFFERING},
    {"flow2.get_offering", OKE_I_FLOW2_GET_OFFERING},
    {"flow2.list_associations", OKE_I_FLOW2_LIST_ASSOCIATIONS},
    {"flow2.put_association", OKE_I_FLOW2_PUT_ASSOCIATION},
    {"flow2.patch_association", OKE_I_FLOW2_PATCH_ASSOCIATION},
    {"flow2.get_association", OKE_I_FLOW2_GET_ASSOCIATION},
    {"flow2.get_association_url", OKE_I_FLOW2_GET_ASSOCIATION_URL},
    {"flow3.patch_association", OKE_I_FLOW3_PATCH_ASSOCIATION},
    {"documents.get", OKE_I_GET_DOCUMENT},
    {"flow4.patch_offering", OKE_I_FLOW4_PATCH_OFFERING},
    {"flow1.list_offerings", OKE_I_FLOW1_LIST_OFFERINGS},
    {"flow1.get_offering", OKE_I_FLOW1_GET_OFFERING},
    {"flow1.list_associations", OKE_I_FLOW1_LIST_ASSOCIATIONS},
    {"flow1.get_association", OKE_I_FLOW1_GET_ASSOCIATION},
    {"flow1.get_organization", OKE_I_FLOW1_GET_ORGANIZATION},
    {"flow1.get_person", OKE_I_FLOW1_GET_PERSON},
    {"flow1.list_groups", OKE_I_FLOW1_LIST_GROUPS},
    {"flow1.get_group", OKE_I_FLOW1_GET_GROUP},
    {"flow1.list_group_members", OKE_I_FLOW1_LIST_GROUP_MEMBERS},
    {"flow1.put_offering", OKE_I_FLOW1_PUT_OFFERING},
    {"flow1.patch_offering", OKE_I_FLOW1_PATCH_OFFERING},
    {"flow1.put_association", OKE_I_FLOW1_PUT_ASSOCIATION},
    {"flow1.patch_association", OKE_I_FLOW1_PATCH_ASSOCIATION},
    {"flow1.put_person", OKE_I_FLOW1_PUT_PERSON},
    {"flow1.put_group", OKE_I_FLOW1_PUT_GROUP},
    {"flow1.put_group_member", OKE_I_FLOW1_PUT_GROUP_MEMBER},
    {"flow5.patch_association", OKE_I_FLOW5_PATCH_ASSOCIATION},
    {"flow5.put_association", OKE_I_FLOW5_PUT_ASSOCIATION},
    {"flow6.list_person_associations", OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS},
    {"common.service_metadata", OKEGW_VALIDATE_SERVICE_METADATA},
    {"common.problem", OKEGW_VALIDATE_PROBLEM},
};

static int interaction_id(const char *name) {
  for (size_t i = 0; i < sizeof interactions / sizeof interactions[0]; i++)
    if (strcmp(interactions[i].name, name) == 0)
      return interactions[i].id;
  return -1;
}

typedef struct test_case {
  char file[256];
  int interaction;
  enum okegw_body_kind kind;
  char path_id[64]; /* "" = none */
  int expect_valid;
  char pointer[256];
  char rvt[64]; /* "" = unknown */
} test_case;

static char dir[1024]; /* the folder of cases.txt */

/* A fixture relative to the cases folder, parsed; NULL when it is not JSON. */
static cJSON *load_json(const char *name) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *text = okegw_read_file(path, 16u << 20, NULL);
  if (!text) {
    fail_msg("cannot read %s", path);
    return NULL;
  }
  cJSON *j = cJSON_Parse(text);
  free(text);
  return j;
}

static void print_violations(const char *what, const okegw_violations *v) {
  for (size_t i = 0; i < v->n; i++)
    print_message("  %s: %s [%s] %s\n", what, v->v[i].pointer[0] ? v->v[i].pointer : "\"\"",
                  v->v[i].rule, v->v[i].message);
  if (v->truncated)
    print_message("  %s: (more not listed)\n", what);
}

static int has_pointer(const okegw_violations *v, const char *pointer) {
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->v[i].pointer, pointer) == 0)
      return 1;
  return 0;
}

/* The rule cited at pointer, or NULL. */
static const char *rule_at(const okegw_violations *v, const char *pointer) {
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->v[i].pointer, pointer) == 0)
      return v->v[i].rule;
  return NULL;
}

static void run_case(void **state) {
  const test_case *c = *state;
  cJSON *body = load_json(c->file);
  okegw_validate_ctx ctx = {c->path_id[0] ? c->path_id : NULL, c->rvt[0] ? c->rvt : NULL};
  okegw_violations v = {0};
  int n = okegw_validate(c->interaction, c->kind, body, &ctx, &v);
  assert_int_equal(n, (int)v.n);
  if (c->expect_valid) {
    if (v.n)
      print_violations(c->file, &v);
    assert_int_equal(v.n, 0);
  } else {
    if (!has_pointer(&v, c->pointer)) {
      print_message("  %s: expected a violation at \"%s\", got:\n", c->file, c->pointer);
      print_violations(c->file, &v);
    }
    assert_true(v.n > 0);
    assert_true(has_pointer(&v, c->pointer));
  }
  okegw_violations_free(&v);
  cJSON_Delete(body);
}

/* Reads cases.txt; returns the number of cases or -1. */
static int load_cases(const char *path, test_case **out) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
  test_case *cases = NULL;
  int n = 0;
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
      continue;
    char file[256], name[64], kind[16], id[64], pointer[256];
    int used = 0;
    if (sscanf(line, "%255s %63s %15s %63s %255s %n", file, name, kind, id, pointer, &used) < 5) {
      fprintf(stderr, "%s: bad line: %s\n", path, line);
      goto fail;
    }
    test_case *grown = realloc(cases, (size_t)(n + 1) * sizeof *cases);
    if (!grown)
      goto fail;
    cases = grown;
    test_case *c = &cases[n++];
    memset(c, 0, sizeof *c);
    snprintf(c->file, sizeof c->file, "%s", file);
    c->interaction = interaction_id(name);
    c->kind = strcmp(kind, "request") == 0 ? OKEGW_BODY_REQUEST : OKEGW_BODY_RESPONSE;
    if (c->interaction < 0 || (strcmp(kind, "request") != 0 && strcmp(kind, "response") != 0)) {
      fprintf(stderr, "%s: unknown interaction or direction: %s\n", path, line);
      goto fail;
    }
    if (strcmp(id, "-") != 0)
      snprintf(c->path_id, sizeof c->path_id, "%s", id);
    c->expect_valid = strcmp(pointer, "-") == 0;
    if (strcmp(pointer, "\"\"") != 0 && !c->expect_valid)
      snprintf(c->pointer, sizeof c->pointer, "%s", pointer);
    if (used > 0 && line[used])
      snprintf(c->rvt, sizeof c->rvt, "%s", line + used);
  }
  fclose(f);
  *out = cases;
  return n;
fail:
  fclose(f);
  free(cases);
  return -1;
}

/* ---- targeted tests ----------------------------------------------------- */

static int validate(int interaction, enum okegw_body_kind kind, const cJSON *body,
                    const char *path_id, const char *rvt, okegw_violations *v) {
  okegw_validate_ctx ctx = {path_id, rvt};
  memset(v, 0, sizeof *v);
  return okegw_validate(interaction, kind, body, &ctx, v);
}

static int validate_text(int interaction, enum okegw_body_kind kind, const char *json,
                         const char *path_id, okegw_violations *v) {
  cJSON *body = cJSON_Parse(json);
  assert_non_null(body);
  int n = validate(interaction, kind, body, path_id, NULL, v);
  cJSON_Delete(body);
  return n;
}

/* The nl-test-admin entry of obj's consumers. */
static cJSON *profile_entry(cJSON *obj) {
  cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(obj, "consumers")) {
    cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "consumerKey");
    if (cJSON_IsString(k) && strcmp(k->valuestring, "nl-test-admin") == 0)
      return e;
  }
  fail_msg("no nl-test-admin entry");
  return NULL;
}

static void formats_uuid(void **state) {
  (void)state;
  assert_true(okegw_valid_uuid("55c6d605-dfd4-5e70-aa32-16ce78c84f66"));
  assert_true(okegw_valid_uuid("55C6D605-DFD4-5E70-AA32-16CE78C84F66"));
  assert_true(okegw_valid_uuid("00000000-0000-0000-0000-000000000000"));
  assert_false(okegw_valid_uuid("111-2222-33-4444-222"));
  assert_false(okegw_valid_uuid("55c6d605-dfd4-5e70-aa32-16ce78c84f6"));
  assert_false(okegw_valid_uuid("55c6d605-dfd4-5e70-aa32-16ce78c84f666"));
  assert_false(okegw_valid_uuid("55c6d605xdfd4-5e70-aa32-16ce78c84f66"));
  assert_false(okegw_valid_uuid("55c6d605-dfd4-5e70-aa32-16ce78c84fgg"));
  assert_false(okegw_valid_uuid("55c6d605dfd45e70aa3216ce78c84f66"));
  assert_false(okegw_valid_uuid("123454")); /* the MD examples' documentId */
  assert_false(okegw_valid_uuid(""));
  assert_false(okegw_valid_uuid(NULL));
}

static void formats_date(void **state) {
  (void)state;
  assert_true(okegw_valid_date("2026-03-17"));
  assert_true(okegw_valid_date("2024-02-29"));
  assert_true(okegw_valid_date("2000-02-29"));
  assert_false(okegw_valid_date("1900-02-29"));
  assert_false(okegw_valid_date("2026-02-29"));
  assert_false(okegw_valid_date("2026-04-31"));
  assert_false(okegw_valid_date("2026-13-01"));
  assert_false(okegw_valid_date("2026-00-10"));
  assert_false(okegw_valid_date("2026-03-00"));
  assert_false(okegw_valid_date("2026-3-17"));
  assert_false(okegw_valid_date("17-03-2026"));
  assert_false(okegw_valid_date("2026-03-17T09:00:00+01:00"));
  assert_false(okegw_valid_date("2026-03-1"));
  assert_false(okegw_valid_date(""));
  assert_false(okegw_valid_date(NULL));
}

static void formats_datetime(void **state) {
  (void)state;
  assert_true(okegw_valid_datetime("2026-03-17T09:00:00+01:00"));
  assert_true(okegw_valid_datetime("2026-03-17T08:00:00Z"));
  assert_true(okegw_valid_datetime("2026-03-17T08:00:00.250Z"));
  assert_true(okegw_valid_datetime("2026-03-17T08:00:00-05:30"));
  assert_true(okegw_valid_datetime("2025-08-25T00:00:00+02:00"));
  /* R10: without an offset the moment is ambiguous, OKE rejects it. */
  assert_false(okegw_valid_datetime("2022-06-21T12:45:00"));
  assert_false(okegw_valid_datetime("2026-03-17T09:00:00.5"));
  assert_false(okegw_valid_datetime("2026-03-17T09:00+01:00"));
  assert_false(okegw_valid_datetime("2026-03-17 09:00:00+01:00"));
  assert_false(okegw_valid_datetime("2026-03-17T09:00:00+0100"));
  assert_false(okegw_valid_datetime("2026-03-17T09:00:00+1:00"));
  assert_false(okegw_valid_datetime("2026-03-17T24:00:00Z"));
  assert_false(okegw_valid_datetime("2026-03-17T09:60:00Z"));
  assert_false(okegw_valid_datetime("2026-02-30T09:00:00Z"));
  assert_false(okegw_valid_datetime("2026-03-17"));
  assert_false(okegw_valid_datetime("2026-03-17T09:00:00Z "));
  assert_false(okegw_valid_datetime(NULL));

  /* The validator tells a missing offset apart from garbage. */
  okegw_violations v;
  cJSON *body = load_json("examples/flow2_put_offering_request.json");
  cJSON_ReplaceItemInObjectCaseSensitive(body, "startDateTime",
                                         cJSON_CreateString("2026-03-17T09:00:00"));
  assert_int_equal(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 1);
  assert_string_equal(v.v[0].pointer, "/startDateTime");
  assert_string_equal(v.v[0].rule, "R10");
  assert_non_null(strstr(v.v[0].message, "offset"));
  okegw_violations_free(&v);
  cJSON_Delete(body);
}

static void formats_duration(void **state) {
  (void)state;
  /* Generic ISO 8601 (a programme's duration). */
  assert_true(okegw_valid_duration("PT40M", 0));
  assert_true(okegw_valid_duration("P60M", 0)); /* 60 months: valid ISO */
  assert_true(okegw_valid_duration("P0D", 0));
  assert_true(okegw_valid_duration("P4Y", 0));
  assert_true(okegw_valid_duration("P1Y2M3DT4H5M6.5S", 0));
  assert_true(okegw_valid_duration("P2W", 0));
  assert_true(okegw_valid_duration("-PT5M", 0));
  assert_false(okegw_valid_duration("P", 0));
  assert_false(okegw_valid_duration("PT", 0));
  assert_false(okegw_valid_duration("P1DT", 0));
  assert_false(okegw_valid_duration("60", 0));
  assert_false(okegw_valid_duration("PT40", 0));
  assert_false(okegw_valid_duration("pt40m", 0));
  assert_false(okegw_valid_duration("P1M1Y", 0));  /* order */
  assert_false(okegw_valid_duration("PT1.5M", 0)); /* fractions on seconds only */
  assert_false(okegw_valid_duration("P1W1D", 0));
  assert_false(okegw_valid_duration(NULL, 0));
  /* A test or session duration: OKE flags years and months (R10). */
  assert_true(okegw_valid_duration("PT40M", 1));
  assert_true(okegw_valid_duration("PT1H30M", 1));
  assert_true(okegw_valid_duration("P0D", 1));
  assert_false(okegw_valid_duration("P60M", 1));
  assert_false(okegw_valid_duration("P1Y", 1));
  assert_true(okegw_valid_duration("P1DT30H4S", 1)); /* the YAML's example: days are fine */
}

static void scores(void **state) {
  (void)state;
  static const struct {
    const char *rvt, *score;
    int fits;
  } t[] = {
      {"0-100", "0", 1},
      {"0-100", "100", 1},
      {"0-100", "101", 0},
      {"0-100", "55.5", 0},
      {"0-100", "-1", 0},
      {"0-10", "10", 1},
      {"0-10", "7", 1},
      {"0-10", "11", 0},
      {"0-10", "7.5", 0},
      {"0.0-10.0", "5.5", 1},
      {"0.0-10.0", "10", 1},
      {"0.0-10.0", "10.0", 1},
      {"0.0-10.0", "0.0", 1}, /* below 1.0: warn, not reject (§6 #6) */
      {"0.0-10.0", "10.5", 0},
      {"0.0-10.0", "5,5", 0}, /* a dot, never a comma */
      {"0.0-10.0", "5.25", 0},
      {"0.0-10.0", ".5", 0},
      {"0.0-10.0", "5.", 0},
      {"pass-or-fail", "passed", 1},
      {"pass-or-fail", "failed", 1},
      {"pass-or-fail", "Passed", 0},
      {"insufficient-satisfactory-good", "satisfactory", 1},
      {"insufficient-satisfactory-good", "excellent", 0},
      {"US letter", "A", 1},
      {"US letter", "B+", 1},
      {"US letter", "F", 1},
      {"US letter", "E", 0},
      {"US letter", "A++", 0},
      {"UK letter", "A*", 1},
      {"UK letter", "G-", 1},
      {"UK letter", "U", 1},
      {"UK letter", "H", 0},
      {"UK letter", "U+", 0},
      {"DE grade", "1", 1},
      {"DE grade", "2,3", 1},
      {"DE grade", "1.7", 1},
      {"DE grade", "7", 0},
      {"DE grade", "2.5", 0},
      {"referenceLevelRKTR", "2F", 1},
      {"referenceLevelRKTR", "Op weg naar 2F", 1},
      {"referenceLevelRKTR", "5F", 0},
      {"referenceLevelRKTR", "op weg naar 2F", 0},
      {"referenceLevelERK", "B2", 1},
      {"referenceLevelERK", "C3", 0},
      {"1-10", "5", 0}, /* not a resultValueType (the YAML examples') */
      {NULL, "5", 0},
      {"0-10", NULL, 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (okegw_score_fits(t[i].rvt, t[i].score) != t[i].fits)
      fail_msg("score \"%s\" on %s: expected %d", t[i].score ? t[i].score : "(null)",
               t[i].rvt ? t[i].rvt : "(null)", t[i].fits);
  }

  /* In a result: the known scale decides; unknown, any scale will do. */
  okegw_violations v;
  cJSON *body = load_json("examples/flow3_patch_association_result_request.json");
  cJSON *result = cJSON_GetObjectItemCaseSensitive(body, "result");
  assert_int_equal(
      validate(OKE_I_FLOW3_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, "pass-or-fail", &v),
      1);
  assert_string_equal(v.v[0].pointer, "/result/score");
  assert_string_equal(v.v[0].rule, "R20");
  okegw_violations_free(&v);
  assert_int_equal(
      validate(OKE_I_FLOW3_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 0);
  cJSON_ReplaceItemInObjectCaseSensitive(result, "score", cJSON_CreateString("10.5"));
  assert_int_equal(
      validate(OKE_I_FLOW3_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 1);
  okegw_violations_free(&v);
  cJSON_Delete(body);
}

/* R16: null removes an optional value, [] empties an optional list; neither
 * may remove a mandatory one. */
static void patch_null_and_empty(void **state) {
  (void)state;
  okegw_violations v;
  assert_int_equal(validate_text(OKE_I_FLOW1_PATCH_OFFERING, OKEGW_BODY_REQUEST,
                                 "{\"offeringType\":\"component\",\"resultValueType\":null,"
                                 "\"modeOfDelivery\":[],\"otherCodes\":[],\"organization\":null,"
                                 "\"consumers\":[{\"consumerKey\":\"nl-test-admin\","
                                 "\"finalResultAllowed\":null,\"testsToBeUsed\":[]}]}",
                                 NULL, &v),
                   0);
  assert_int_equal(validate_text(OKE_I_FLOW1_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST,
                                 "{\"associationType\":\"componentOfferingAssociation\","
                                 "\"consumers\":[{\"consumerKey\":\"nl-test-admin\","
                                 "\"attemptLeft\":null,\"programOfferingAssociationId\":null,"
                                 "\"personalNeeds\":[]}]}",
                                 NULL, &v),
                   0);
  /* Mandatory fields may be left out of a PATCH, but not removed. */
  assert_int_equal(validate_text(OKE_I_FLOW1_PATCH_OFFERING, OKEGW_BODY_REQUEST,
                                 "{\"offeringType\":\"component\",\"name\":null,"
                                 "\"description\":[],\"endDateTime\":null}",
                                 NULL, &v),
                   3);
  assert_string_equal(rule_at(&v, "/name"), "R16");
  assert_string_equal(rule_at(&v, "/description"), "R16");
  assert_string_equal(rule_at(&v, "/endDateTime"), "R16");
  okegw_violations_free(&v);
  /* The discriminator cannot be null either, and the id is never there (R15). */
  assert_int_equal(validate_text(OKE_I_FLOW1_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST,
                                 "{\"associationType\":null,\"state\":\"canceled\","
                                 "\"associationId\":\"55c6d605-dfd4-5e70-aa32-16ce78c84f66\"}",
                                 NULL, &v),
                   2);
  assert_string_equal(rule_at(&v, "/associationType"), "R15");
  assert_string_equal(rule_at(&v, "/associationId"), "R15");
  okegw_violations_free(&v);
  /* A PATCH still checks the values it carries. */
  assert_int_equal(validate_text(OKE_I_FLOW1_PATCH_OFFERING, OKEGW_BODY_REQUEST,
                                 "{\"offeringType\":\"component\","
                                 "\"endDateTime\":\"2026-04-17T18:00:00\"}",
                                 NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/endDateTime"), "R10");
  okegw_violations_free(&v);
}

/* R11: unknown fields, `0` fields and another flow's fields are ignored. */
static void ignored_fields(void **state) {
  (void)state;
  okegw_violations v;
  cJSON *body = load_json("examples/flow2_put_offering_request.json");
  cJSON_AddStringToObject(body, "academicSession", "not even an object"); /* a `0` field */
  cJSON_AddNumberToObject(body, "x-vendorPriority", 7);                   /* unknown */
  cJSON_AddStringToObject(body, "resultValueType", "1-10");               /* read in flow 1 only */
  cJSON *entry = profile_entry(body);
  cJSON_AddStringToObject(entry, "irregularities", "flow 4 only");
  cJSON_AddNumberToObject(entry, "documents", 1);
  cJSON_AddStringToObject(entry, "testsToBeUsed", "flow 1 only");
  assert_int_equal(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body,
                            "8557ada3-553e-58c2-b4e2-f69f35e91c78", NULL, &v),
                   0);
  cJSON_Delete(body);

  /* A flow-2 deelname with flow-1-only fields, broken ones even, and a result:
   * all ignored. The same body as a flow-1 PUT is checked on them. */
  body = load_json("examples/flow2_put_association_student_request.json");
  entry = profile_entry(body);
  cJSON_AddStringToObject(entry, "attempt", "first");
  cJSON_AddNumberToObject(entry, "attemptLeft", -3);
  cJSON_AddStringToObject(entry, "programOfferingAssociationId", "POA-1");
  cJSON_AddNumberToObject(entry, "extraTimeInMin", 30); /* the YAML examples' misspelling */
  cJSON_AddItemToObject(body, "result", cJSON_CreateString("not a result"));
  cJSON_AddStringToObject(body, "remoteState", "whatever");
  assert_int_equal(validate(OKE_I_FLOW2_PUT_ASSOCIATION, OKEGW_BODY_REQUEST, body,
                            "0f57a72a-7f7d-5cea-87ec-6245bd3a2363", NULL, &v),
                   0);
  assert_true(validate(OKE_I_FLOW1_PUT_ASSOCIATION, OKEGW_BODY_REQUEST, body,
                       "0f57a72a-7f7d-5cea-87ec-6245bd3a2363", NULL, &v) > 0);
  assert_string_equal(rule_at(&v, "/consumers/0/attempt"), "R10");
  assert_string_equal(rule_at(&v, "/consumers/0/programOfferingAssociationId"), "R10");
  assert_string_equal(rule_at(&v, "/person"), "R14"); /* flow 1: the personId */
  assert_false(has_pointer(&v, "/result"));
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* Flow-3 and cancel messages: "other fields are ignored". */
  assert_int_equal(validate_text(OKE_I_FLOW2_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST,
                                 "{\"associationType\":\"componentOfferingAssociation\","
                                 "\"state\":\"canceled\",\"role\":\"nobody\",\"person\":7}",
                                 NULL, &v),
                   0);
  assert_int_equal(validate_text(OKE_I_FLOW2_PATCH_OFFERING, OKEGW_BODY_REQUEST,
                                 "{\"offeringType\":\"component\",\"name\":\"x\","
                                 "\"consumers\":[{\"consumerKey\":\"nl-test-admin\","
                                 "\"offeringState\":\"canceled\",\"duration\":\"P60M\"}]}",
                                 NULL, &v),
                   0);
}

/* R7: only the entry whose consumerKey is exactly nl-test-admin counts. */
static void other_consumers(void **state) {
  (void)state;
  okegw_violations v;
  cJSON *body = load_json("examples/flow2_put_offering_request.json");
  cJSON *vendor = cJSON_CreateObject();
  cJSON_AddStringToObject(vendor, "consumerKey", "x-vendor");
  cJSON_AddStringToObject(vendor, "duration", "P60M");
  cJSON_AddStringToObject(vendor, "offeringState", "bogus");
  cJSON_InsertItemInArray(cJSON_GetObjectItemCaseSensitive(body, "consumers"), 0, vendor);
  cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(body, "consumers"),
                       cJSON_CreateString("not even an object"));
  assert_int_equal(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 0);
  /* Its own entry is found at index 1 now. */
  cJSON_ReplaceItemInObjectCaseSensitive(profile_entry(body), "duration",
                                         cJSON_CreateString("P60M"));
  assert_int_equal(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 1);
  assert_string_equal(v.v[0].pointer, "/consumers/1/duration");
  okegw_violations_free(&v);
  /* Two nl-test-admin entries are ambiguous. */
  cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(body, "consumers"),
                       cJSON_Duplicate(profile_entry(body), 1));
  assert_true(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, NULL, &v) >= 2);
  assert_string_equal(rule_at(&v, "/consumers/3"), "R7");
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* Staff carry no consumers; a student must (R7, R27). */
  body = load_json("examples/flow2_put_association_invigilator_request.json");
  assert_int_equal(validate(OKE_I_FLOW2_PUT_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v),
                   0);
  cJSON_ReplaceItemInObjectCaseSensitive(body, "role", cJSON_CreateString("student"));
  assert_int_equal(validate(OKE_I_FLOW2_PUT_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/consumers"), "R7");
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* A student Person needs idCheckName (R27). */
  body = load_json("examples/flow1_put_person_request.json");
  cJSON_DeleteItemFromObjectCaseSensitive(profile_entry(body), "idCheckName");
  assert_int_equal(validate(OKE_I_FLOW1_PUT_PERSON, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 1);
  assert_string_equal(rule_at(&v, "/consumers/0/idCheckName"), "R27");
  okegw_violations_free(&v);
  cJSON_Delete(body);
}

static void interaction_rules(void **state) {
  (void)state;
  okegw_violations v;
  /* No body rules: 0. */
  cJSON *body = load_json("examples/flow2_put_offering_request.json");
  assert_int_equal(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_RESPONSE, body, NULL, NULL, &v),
                   0);
  assert_int_equal(validate(OKE_I_GET_DOCUMENT, OKEGW_BODY_RESPONSE, body, NULL, NULL, &v), 0);
  assert_int_equal(validate(OKE_I_UNKNOWN, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 0);
  assert_int_equal(validate(9999, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 0);
  assert_int_equal(validate(-1, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 0);
  assert_int_equal(okegw_validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, NULL),
                   -1);
  /* ctx NULL: no path id check. */
  assert_int_equal(okegw_validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, &v), 0);
  /* R12: the body id is the path id. */
  assert_int_equal(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body,
                            "5741a2ee-19c9-5405-8d47-dfd14153d43f", NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/offeringId"), "R12");
  okegw_violations_free(&v);
  /* A flow-2 zitting is a component offering; a programme is not (R8 via the enum). */
  cJSON_ReplaceItemInObjectCaseSensitive(body, "offeringType", cJSON_CreateString("program"));
  assert_true(validate(OKE_I_FLOW2_PUT_OFFERING, OKEGW_BODY_REQUEST, body, NULL, NULL, &v) > 0);
  assert_true(has_pointer(&v, "/offeringType"));
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* Flow 1 dispatches on offeringType (R8). */
  assert_int_equal(validate_text(OKE_I_FLOW1_PUT_OFFERING, OKEGW_BODY_REQUEST,
                                 "{\"offeringType\":\"module\"}", NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/offeringType"), "R8");
  okegw_violations_free(&v);

  /* R14: a flow-2 deelname embeds the person. */
  body = load_json("examples/flow2_put_association_student_request.json");
  cJSON_ReplaceItemInObjectCaseSensitive(
      body, "person", cJSON_CreateString("85a48528-c043-5ac3-b35c-b17539c5c8ea"));
  assert_int_equal(validate(OKE_I_FLOW2_PUT_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/person"), "R14");
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* R24: an extra attempt has a new id. R23: flow 5 names the original. */
  body = load_json("examples/flow5_put_association_attempt_request.json");
  cJSON_ReplaceItemInObjectCaseSensitive(
      body, "associationId", cJSON_CreateString("55c6d605-dfd4-5e70-aa32-16ce78c84f66"));
  assert_int_equal(validate(OKE_I_FLOW5_PUT_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/consumers/0/orgAssociationId"), "R24");
  okegw_violations_free(&v);
  cJSON_Delete(body);
  body = load_json("examples/flow5_patch_association_result_request.json");
  assert_int_equal(validate(OKE_I_FLOW5_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST, body,
                            "508cb7c3-93e0-572e-a577-a87cccc2a6f1", NULL, &v),
                   1);
  assert_string_equal(rule_at(&v, "/consumers/0/orgAssociationId"), "R23");
  okegw_violations_free(&v);
  cJSON_DeleteItemFromObjectCaseSensitive(
      profile_entry(cJSON_GetObjectItemCaseSensitive(body, "result")), "executedOfferingName");
  assert_int_equal(
      validate(OKE_I_FLOW5_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST, body, NULL, NULL, &v), 1);
  assert_string_equal(rule_at(&v, "/result/consumers/0/executedOfferingName"), "R23");
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* R30: flow 6 never embeds the person, and lists programme enrolments only. */
  body = load_json("examples/flow6_get_person_associations_response.json");
  cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "items"), 0);
  cJSON_ReplaceItemInObjectCaseSensitive(item, "person", cJSON_CreateObject());
  assert_true(validate(OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS, OKEGW_BODY_RESPONSE, body, NULL, NULL,
                       &v) > 0);
  assert_string_equal(rule_at(&v, "/items/0/person"), "R30");
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* The access URL is a JSON string holding a URI. */
  assert_int_equal(validate_text(OKE_I_FLOW2_GET_ASSOCIATION_URL, OKEGW_BODY_RESPONSE,
                                 "{\"url\":\"https://x\"}", NULL, &v),
                   1);
  okegw_violations_free(&v);
  assert_int_equal(validate_text(OKE_I_FLOW2_GET_ASSOCIATION_URL, OKEGW_BODY_RESPONSE,
                                 "\"not a uri\"", NULL, &v),
                   1);
  okegw_violations_free(&v);

  /* R31: GET / must offer v5. */
  body = load_json("examples/common_get_service_metadata_response.json");
  cJSON_ReplaceItemInObjectCaseSensitive(body, "supportedVersions",
                                         cJSON_CreateStringArray((const char *[]){"v4"}, 1));
  assert_int_equal(
      validate(OKEGW_VALIDATE_SERVICE_METADATA, OKEGW_BODY_RESPONSE, body, NULL, NULL, &v), 1);
  assert_string_equal(rule_at(&v, "/supportedVersions"), "R31");
  okegw_violations_free(&v);
  cJSON_Delete(body);

  /* No body where one is expected. */
  assert_int_equal(
      validate(OKE_I_FLOW3_PATCH_ASSOCIATION, OKEGW_BODY_REQUEST, NULL, NULL, NULL, &v), 1);
  assert_string_equal(v.v[0].pointer, "");
  okegw_violations_free(&v);
}

static void problem_shape(void **state) {
  (void)state;
  okegw_violations v;
  cJSON *body = load_json("invalid/invalid_pagination_envelope.json");
  int n = validate(OKE_I_FLOW0_LIST_COMPONENTS, OKEGW_BODY_RESPONSE, body, NULL, NULL, &v);
  assert_int_equal(n, 3);
  char *text = okegw_violations_problem(&v, 400);
  assert_non_null(text);
  cJSON *p = cJSON_Parse(text);
  assert_non_null(p);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "type")->valuestring, "about:blank");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "title")->valuestring, "Bad Request");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "status")->valuestring, "400");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "detail")->valuestring,
                      "3 violation(s) of the OKE profile");
  assert_null(cJSON_GetObjectItemCaseSensitive(p, "truncated"));
  cJSON *errors = cJSON_GetObjectItemCaseSensitive(p, "errors");
  assert_true(cJSON_IsArray(errors));
  assert_int_equal(cJSON_GetArraySize(errors), 3);
  int i = 0;
  cJSON *e;
  cJSON_ArrayForEach(e, errors) {
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "pointer")->valuestring,
                        v.v[i].pointer);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "detail")->valuestring, v.v[i].message);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "rule")->valuestring, "R6");
    i++;
  }
  cJSON_Delete(p);
  free(text);
  okegw_violations_free(&v);
  cJSON_Delete(body);

  text = okegw_violations_problem(&v, 400); /* none */
  p = cJSON_Parse(text);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "detail")->valuestring,
                      "0 violation(s) of the OKE profile");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "errors")), 0);
  cJSON_Delete(p);
  free(text);
}

static void hundred_cap(void **state) {
  (void)state;
  okegw_violations v;
  cJSON *body = load_json("examples/flow0_get_component_response.json");
  cJSON *safety = cJSON_CreateArray();
  for (int i = 0; i < 150; i++)
    cJSON_AddItemToArray(safety, cJSON_CreateString("Fixed Location"));
  cJSON_ReplaceItemInObjectCaseSensitive(profile_entry(body), "safety", safety);
  assert_int_equal(validate(OKE_I_FLOW0_GET_COMPONENT, OKEGW_BODY_RESPONSE, body, NULL, NULL, &v),
                   OKEGW_VIOLATIONS_MAX);
  assert_int_equal(v.n, 100);
  assert_int_equal(v.truncated, 1);
  assert_string_equal(v.v[99].pointer, "/consumers/0/safety/99");
  char *text = okegw_violations_problem(&v, 400);
  cJSON *p = cJSON_Parse(text);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "truncated")));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "errors")), 100);
  cJSON_Delete(p);
  free(text);
  /* Appending to a full list keeps it full. */
  assert_int_equal(okegw_validate(OKE_I_FLOW0_GET_COMPONENT, OKEGW_BODY_RESPONSE, body, NULL, &v),
                   100);
  okegw_violations_free(&v);
  assert_int_equal(v.n, 0);
  assert_null(v.v);
  cJSON_Delete(body);
}

/* ---- query parameters of collection GETs ------------------------------ */

/* The violations of one query: their count, and the pointer of the first. */
static int query_check(int interaction, const char *query, char *first, size_t firstsz) {
  okegw_violations v = {0};
  int n = okegw_validate_query(interaction, query, &v);
  if (first)
    snprintf(first, firstsz, "%s", n > 0 ? v.v[0].pointer : "");
  okegw_violations_free(&v);
  return n;
}

static void query_paging(void **state) {
  (void)state;
  char first[256];
  const int lists[] = {OKE_I_FLOW0_LIST_COMPONENTS,
                       OKE_I_FLOW1_LIST_OFFERINGS,
                       OKE_I_FLOW1_LIST_ASSOCIATIONS,
                       OKE_I_FLOW2_LIST_ASSOCIATIONS,
                       OKE_I_FLOW1_LIST_GROUPS,
                       OKE_I_FLOW1_LIST_GROUP_MEMBERS,
                       OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS};
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    int it = lists[i];
    assert_int_equal(query_check(it, "", NULL, 0), 0);
    assert_int_equal(query_check(it, "pageSize=250&pageNumber=3", NULL, 0), 0);
    assert_int_equal(query_check(it, "pageSize=25", first, sizeof first), 1);
    assert_string_equal(first, "?pageSize");
    assert_int_equal(query_check(it, "pageSize=", NULL, 0), 1);
    assert_int_equal(query_check(it, "pageSize", NULL, 0), 1);
    assert_int_equal(query_check(it, "pageSize=10&pageSize=20", NULL, 0), 1); /* ambiguous */
    assert_int_equal(query_check(it, "pageNumber=0", first, sizeof first), 1);
    assert_string_equal(first, "?pageNumber");
    assert_int_equal(query_check(it, "pageNumber=-1", NULL, 0), 1);
    assert_int_equal(query_check(it, "pageNumber=1.5", NULL, 0), 1);
    assert_int_equal(query_check(it, "pageNumber=2147483648", NULL, 0), 1);
    assert_int_equal(query_check(it, "pageNumber=2147483647", NULL, 0), 0);
    assert_int_equal(query_check(it, "pageSize=abc&pageNumber=x", NULL, 0), 2);
    /* percent-encoded names and values are read decoded */
    assert_int_equal(query_check(it, "page%53ize=%32%30", NULL, 0), 0);
    assert_int_equal(query_check(it, "pageSize=1%00", NULL, 0), 1);
    assert_int_equal(query_check(it, "pageSize=%zz", NULL, 0), 1);
  }
  /* reads of one object and writes have no table */
  assert_int_equal(query_check(OKE_I_FLOW2_GET_OFFERING, "pageSize=7", NULL, 0), 0);
  assert_int_equal(query_check(OKE_I_FLOW2_PUT_OFFERING, "pageSize=7", NULL, 0), 0);
  assert_int_equal(query_check(-1, "pageSize=7", NULL, 0), 0);
  assert_int_equal(query_check(1000, "pageSize=7", NULL, 0), 0);
  assert_int_equal(okegw_validate_query(OKE_I_FLOW0_LIST_COMPONENTS, "", NULL), -1);
}

static void query_filters(void **state) {
  (void)state;
  char first[256];
  /* flow 0 */
  int c = OKE_I_FLOW0_LIST_COMPONENTS;
  assert_int_equal(query_check(c, "componentType=test&q=rekenen&licensed=true", NULL, 0), 0);
  assert_int_equal(query_check(c, "licensed=maybe", first, sizeof first), 1);
  assert_string_equal(first, "?licensed");
  assert_int_equal(query_check(c, "componentType=exam", NULL, 0), 1);
  assert_int_equal(query_check(c, "sort=-name", NULL, 0), 0);
  assert_int_equal(query_check(c, "sort=name,-componentId", NULL, 0), 0);
  assert_int_equal(query_check(c, "sort=name&sort=-componentId", NULL, 0), 0); /* a list */
  assert_int_equal(query_check(c, "sort=startDateTime", NULL, 0), 1);
  assert_int_equal(query_check(c, "sort=name,", NULL, 0), 1);
  /* undeclared parameters pass through (digest §6 #12) */
  assert_int_equal(query_check(c, "since=whenever&x-own=1&consumer=nl-test-admin", NULL, 0), 0);
  /* flow 1 */
  int o = OKE_I_FLOW1_LIST_OFFERINGS;
  assert_int_equal(query_check(o,
                               "offeringType=component&component.componentType=test&since=2026-"
                               "03-01&until=2026-04-30&teachingLanguage=nld&resultExpected=false&"
                               "sort=-startDateTime",
                               NULL, 0),
                   0);
  assert_int_equal(query_check(o, "since=2026-03-01T00%3A00%3A00%2B01%3A00", NULL, 0), 0);
  assert_int_equal(query_check(o, "since=2026-02-30", NULL, 0), 1);
  assert_int_equal(query_check(o, "offeringType=zitting", NULL, 0), 1);
  assert_int_equal(query_check(o, "teachingLanguage=NLD", NULL, 0), 1);
  assert_int_equal(query_check(o, "resultExpected=1", NULL, 0), 1);
  assert_int_equal(query_check(o, "sort=groupId", NULL, 0), 1);
  for (int a = OKE_I_FLOW1_LIST_ASSOCIATIONS; a;
       a = a == OKE_I_FLOW1_LIST_ASSOCIATIONS ? OKE_I_FLOW2_LIST_ASSOCIATIONS : 0) {
    assert_int_equal(query_check(a,
                                 "role=teaching+assistant&state=pending&result-state=in%20progress&"
                                 "associationType=componentOfferingAssociation&sort=-associationId",
                                 NULL, 0),
                     0);
    assert_int_equal(query_check(a, "role=teacher", first, sizeof first), 1);
    assert_string_equal(first, "?role");
    assert_int_equal(query_check(a, "associationType=componentOffering", NULL, 0), 1);
    assert_int_equal(query_check(a, "result-state=done", NULL, 0), 1);
    assert_int_equal(query_check(a, "state=Associated", NULL, 0), 1); /* case-sensitive (R10) */
  }
  int g = OKE_I_FLOW1_LIST_GROUPS;
  assert_int_equal(query_check(g, "groupType=learning%20group&sort=startDate", NULL, 0), 0);
  assert_int_equal(query_check(g, "groupType=cohort", NULL, 0), 1);
  assert_int_equal(query_check(OKE_I_FLOW1_LIST_GROUP_MEMBERS, "sort=whatever", NULL, 0), 0);
  /* flow 6: the short associationType spelling */
  int p = OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS;
  assert_int_equal(query_check(p, "associationType=programOffering", NULL, 0), 0);
  assert_int_equal(query_check(p, "associationType=programOfferingAssociation", NULL, 0), 1);
  assert_int_equal(query_check(p, "state=bogus&role=x&sort=name", NULL, 0), 3);
}

static void query_problem(void **state) {
  (void)state;
  okegw_violations v = {0};
  assert_int_equal(okegw_validate_query(OKE_I_FLOW0_LIST_COMPONENTS, "licensed=maybe", &v), 1);
  char *text = okegw_violations_problem(&v, 400);
  cJSON *p = cJSON_Parse(text);
  assert_non_null(p);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "status")->valuestring, "400");
  cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "errors"), 0);
  assert_non_null(e);
  assert_null(cJSON_GetObjectItemCaseSensitive(e, "pointer"));
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "parameter")->valuestring, "licensed");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "detail")->valuestring,
                      "licensed must be true or false; got 'maybe'");
  cJSON_Delete(p);
  free(text);
  okegw_violations_free(&v);
}

/* A UUID names one resource in either case (the gateway lower-cases path
 * ids; the body is forwarded as sent). */
static void path_id_case(void **state) {
  (void)state;
  cJSON *body = cJSON_Parse("{\"personId\":\"55C6D605-0000-4000-8000-0000000000AB\"}");
  okegw_validate_ctx ctx = {.path_id = "55c6d605-0000-4000-8000-0000000000ab"};
  okegw_violations v = {0};
  okegw_validate(OKE_I_FLOW1_PUT_PERSON, OKEGW_BODY_REQUEST, body, &ctx, &v);
  for (size_t i = 0; i < v.n; i++)
    assert_string_not_equal(v.v[i].pointer, "/personId");
  okegw_violations_free(&v);
  ctx.path_id = "55c6d605-0000-4000-8000-0000000000ac";
  okegw_validate(OKE_I_FLOW1_PUT_PERSON, OKEGW_BODY_REQUEST, body, &ctx, &v);
  int seen = 0;
  for (size_t i = 0; i < v.n; i++)
    seen |= strcmp(v.v[i].pointer, "/personId") == 0;
  assert_true(seen);
  okegw_violations_free(&v);
  cJSON_Delete(body);
}

/* okegw_validate_prune: json in, the printed result (sorted as cJSON keeps
 * it) and the names removed. */
static void prune_case(int interaction, const char *in, const char *want, const char *names) {
  cJSON *j = cJSON_Parse(in);
  assert_non_null(j);
  char removed[256];
  int n = okegw_validate_prune(interaction, j, removed, sizeof removed);
  char *out = cJSON_PrintUnformatted(j);
  assert_string_equal(out, want);
  assert_string_equal(removed, names);
  assert_int_equal(n > 0, names[0] != '\0');
  free(out);
  cJSON_Delete(j);
}

static void prune_not_carried(void **state) {
  (void)state;
  /* a session report: only offeringType and the irregularities and documents
   * of the nl-test-admin entry; another consumer's entry goes too */
  prune_case(OKE_I_FLOW4_PATCH_OFFERING,
             "{\"offeringType\":\"component\",\"name\":[],\"consumers\":[{\"consumerKey\":"
             "\"nl-test-admin\",\"irregularities\":\"geen\",\"offeringState\":\"active\"},"
             "{\"consumerKey\":\"x\"}]}",
             "{\"offeringType\":\"component\",\"consumers\":[{\"consumerKey\":\"nl-test-admin\","
             "\"irregularities\":\"geen\"}]}",
             "name,consumers.offeringState");
  /* flow 1 does not carry personalNeeds (R11); an extension stays */
  prune_case(OKE_I_FLOW1_PATCH_ASSOCIATION,
             "{\"associationType\":\"componentOfferingAssociation\",\"ext\":1,\"consumers\":[{"
             "\"consumerKey\":\"nl-test-admin\",\"personalNeeds\":[],\"attempt\":2},{"
             "\"consumerKey\":\"x\",\"personalNeeds\":[]}]}",
             "{\"associationType\":\"componentOfferingAssociation\",\"ext\":1,\"consumers\":[{"
             "\"consumerKey\":\"nl-test-admin\",\"attempt\":2},{\"consumerKey\":\"x\","
             "\"personalNeeds\":[]}]}",
             "consumers.personalNeeds");
  /* nothing to remove, and no request body for a read */
  prune_case(OKE_I_FLOW2_PATCH_ASSOCIATION,
             "{\"associationType\":\"componentOfferingAssociation\",\"state\":\"canceled\"}",
             "{\"associationType\":\"componentOfferingAssociation\",\"state\":\"canceled\"}", "");
  prune_case(OKE_I_FLOW2_GET_OFFERING, "{\"a\":1}", "{\"a\":1}", "");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s tests/validate/cases.txt\n", argv[0]);
    return 2;
  }
  test_case *cases = NULL;
  int n = load_cases(argv[1], &cases);
  if (n <= 0) {
    fprintf(stderr, "%s: no cases\n", argv[1]);
    return 2;
  }
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(formats_uuid),
      cmocka_unit_test(formats_date),
      cmocka_unit_test(formats_datetime),
      cmocka_unit_test(formats_duration),
      cmocka_unit_test(scores),
      cmocka_unit_test(patch_null_and_empty),
      cmocka_unit_test(ignored_fields),
      cmocka_unit_test(other_consumers),
      cmocka_unit_test(interaction_rules),
      cmocka_unit_test(problem_shape),
      cmocka_unit_test(hundred_cap),
      cmocka_unit_test(query_paging),
      cmocka_unit_test(query_filters),
      cmocka_unit_test(query_problem),
      cmocka_unit_test(path_id_case),
      cmocka_unit_test(prune_not_carried),
  };
  size_t nfixed = sizeof fixed / sizeof fixed[0];
  struct CMUnitTest *tests = calloc(nfixed + (size_t)n, sizeof *tests);
  if (!tests)
    return 2;
  for (int i = 0; i < n; i++) {
    tests[i].name = cases[i].file;
    tests[i].test_func = run_case;
    tests[i].initial_state = &cases[i];
  }
  memcpy(tests + n, fixed, sizeof fixed);
  int rc = _cmocka_run_group_tests("validate", tests, nfixed + (size_t)n, NULL, NULL);
  free(tests);
  free(cases);
  return rc;
}
