/* The one crossing per message between cJSON and Lua: every edge case that
 * could change a message's meaning on the way through a mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "connector/luajson.h"

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  okegw_luajson_open(L);
  lua_setglobal(L, "json");
  return L;
}

/* JSON text -> cJSON -> Lua -> cJSON -> compare with the expected text. */
static void roundtrip(const char *in, const char *expected) {
  lua_State *L = new_state();
  cJSON *j = cJSON_Parse(in);
  assert_non_null(j);
  char err[256] = "";
  assert_int_equal(okegw_luajson_push(L, j, err, sizeof err), 0);
  cJSON *back = okegw_luajson_to_json(L, -1, err, sizeof err);
  if (!back)
    fail_msg("%s: %s", in, err);
  cJSON *want = cJSON_Parse(expected ? expected : in);
  assert_non_null(want);
  if (!cJSON_Compare(back, want, 1)) {
    char *got = cJSON_PrintUnformatted(back);
    fail_msg("%s came back as %s", in, got);
  }
  cJSON_Delete(want);
  cJSON_Delete(back);
  cJSON_Delete(j);
  lua_close(L);
}

/* Runs Lua code that leaves one value, converts it, compares with text. */
static void from_lua(const char *code, const char *expected_json, const char *expected_err) {
  lua_State *L = new_state();
  assert_int_equal(luaL_dostring(L, code), 0);
  char err[256] = "";
  cJSON *j = okegw_luajson_to_json(L, -1, err, sizeof err);
  if (expected_err) {
    assert_null(j);
    if (!strstr(err, expected_err))
      fail_msg("error '%s' does not contain '%s'", err, expected_err);
  } else {
    if (!j)
      fail_msg("%s: %s", code, err);
    char *got = cJSON_PrintUnformatted(j);
    assert_string_equal(got, expected_json);
    free(got);
    cJSON_Delete(j);
  }
  lua_close(L);
}

static void nulls_and_empty_containers(void **state) {
  (void)state;
  roundtrip("null", NULL);
  roundtrip("{\"a\":null,\"b\":[],\"c\":{},\"d\":[null,[],{}]}", NULL);
  roundtrip("[[[[]]]]", NULL);
  /* a Lua table built without a marker: empty is an object, a sequence an array */
  from_lua("return {}", "{}", NULL);
  from_lua("return {1, 2, 3}", "[1,2,3]", NULL);
  from_lua("return json.array()", "[]", NULL);
  from_lua("return json.object({})", "{}", NULL);
  from_lua("return {x = json.null}", "{\"x\":null}", NULL);
  from_lua("return nil", NULL, "nil (use json.null");
}

static void nested_and_depth(void **state) {
  (void)state;
  roundtrip("{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}", NULL);
  /* 64 levels pass, 65 do not: a message cannot exhaust the C stack */
  char deep[300];
  memset(deep, '[', 64);
  memset(deep + 64, ']', 64);
  deep[128] = '\0';
  roundtrip(deep, NULL);
  lua_State *L = new_state();
  memset(deep, '[', 66);
  memset(deep + 66, ']', 66);
  deep[132] = '\0';
  cJSON *j = cJSON_Parse(deep);
  char err[256];
  assert_int_equal(okegw_luajson_push(L, j, err, sizeof err), -1);
  assert_non_null(strstr(err, "deeper than 64"));
  cJSON_Delete(j);
  from_lua("local t = {} local c = t for i = 1, 70 do c.x = {} c = c.x end return t", NULL,
           "deeper than 64");
  lua_close(L);
}

static void integers_and_floats(void **state) {
  (void)state;
  roundtrip("{\"i\":3,\"f\":2.5,\"neg\":-7,\"big\":9007199254740992,\"e\":1e300}", NULL);
  /* integral JSON numbers become Lua integers (3 // 2 == 1 works), floats stay floats */
  lua_State *L = new_state();
  cJSON *j = cJSON_Parse("[3, 2.5, 9007199254740992]");
  char err[256];
  assert_int_equal(okegw_luajson_push(L, j, err, sizeof err), 0);
  lua_rawgeti(L, -1, 1);
  assert_true(lua_isinteger(L, -1));
  lua_rawgeti(L, -2, 2);
  assert_false(lua_isinteger(L, -1));
  lua_rawgeti(L, -3, 3);
  assert_true(lua_isinteger(L, -1));
  cJSON_Delete(j);
  lua_close(L);
  /* integers beyond 2^53 made in Lua are written digit for digit */
  from_lua("return {9223372036854775807, -9223372036854775807, 9007199254740993}",
           "[9223372036854775807,-9223372036854775807,9007199254740993]", NULL);
  from_lua("return 0/0", NULL, "NaN or infinity");
  from_lua("return {x = math.huge}", NULL, "at /x");
}

static void unicode(void **state) {
  (void)state;
  roundtrip("{\"naam\":\"Zoë Çelik 🎓\",\"€\":\"\\u20ac\"}", NULL);
  from_lua("return {s = '\\xff\\xfe'}", NULL, "not valid UTF-8 at /s");
  from_lua("return {['\\xc0\\x80'] = 1}", NULL, "key that is not valid UTF-8");
  from_lua("return 'a\\0b'", NULL, "not valid UTF-8");
  assert_true(okegw_utf8_valid("\xf0\x9f\x8e\x93", 4));
  assert_false(okegw_utf8_valid("\xed\xa0\x80", 3));     /* a UTF-16 surrogate */
  assert_false(okegw_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
  assert_false(okegw_utf8_valid("\xe2\x82", 2));         /* cut short */
}

static void not_json(void **state) {
  (void)state;
  from_lua("return {print}", NULL, "a function (JSON has no such value) at /0");
  from_lua("return {1, 2, x = 3}", NULL, "mixing string and number keys");
  from_lua("return json.array({1, nil, 3})", NULL, "keys other than 1..n");
  from_lua("return {a = {b = {coroutine.create(print)}}}", NULL, "at /a/b/0");
  from_lua("return {['a/b~c'] = {print}}", NULL, "at /a~1b~0c/0");
}

/* A name twice in one object: found with its pointer (okegw refuses such a
 * body), and the crossing keeps the first value, as cJSON's lookups do. */
static void duplicate_names(void **state) {
  (void)state;
  char ptr[64];
  cJSON *j = cJSON_Parse("{\"a\":1,\"b\":[{\"x\":1},{\"y\":2,\"y\":3}],\"c\":{}}");
  assert_true(okegw_json_find_duplicate(j, ptr, sizeof ptr));
  assert_string_equal(ptr, "/b/1/y");
  lua_State *L = new_state();
  char err[128];
  assert_int_equal(okegw_luajson_push(L, j, err, sizeof err), 0);
  cJSON *back = okegw_luajson_to_json(L, -1, err, sizeof err);
  char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(back, "b"));
  assert_string_equal(text, "[{\"x\":1},{\"y\":2}]");
  free(text);
  cJSON_Delete(back);
  cJSON_Delete(j);
  lua_close(L);
  j = cJSON_Parse("{\"a\":{\"b\":1},\"b\":{\"a\":2}}");
  assert_false(okegw_json_find_duplicate(j, ptr, sizeof ptr));
  cJSON_Delete(j);
}

/* okegw_json_print writes numbers exactly and leaves the tree as it was,
 * also when it prints one item of a list (never its siblings). */
static void print_exact_tree_unchanged(void **state) {
  (void)state;
  cJSON *j = cJSON_Parse("{\"a\":[0.1,3,1e300,{\"b\":-2.5}],\"s\":\"x\",\"n\":null}");
  assert_non_null(j);
  char *before = cJSON_PrintUnformatted(j);
  char *out = okegw_json_print(j);
  assert_string_equal(out, "{\"a\":[0.1,3,1e+300,{\"b\":-2.5}],\"s\":\"x\",\"n\":null}");
  free(out);
  char *after = cJSON_PrintUnformatted(j);
  assert_string_equal(before, after);
  cJSON *three = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "a"), 1);
  assert_true(cJSON_IsNumber(three) && three->valuedouble == 3 && !three->valuestring);
  out = okegw_json_print(three);
  assert_string_equal(out, "3");
  free(out);
  out = okegw_json_print(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "a"), 3));
  assert_string_equal(out, "{\"b\":-2.5}");
  free(out);
  free(before);
  free(after);
  cJSON_Delete(j);
}

/* okegw_luajson_print gives byte for byte what okegw_json_print prints of
 * okegw_luajson_to_json's tree, and the same error where that fails. */
static void same_text(lua_State *L, const char *code) {
  char e1[256] = "", e2[256] = "";
  cJSON *tree = okegw_luajson_to_json(L, -1, e1, sizeof e1);
  char *printed = tree ? okegw_json_print(tree) : NULL;
  char *direct = okegw_luajson_print(L, -1, e2, sizeof e2);
  if (tree) {
    assert_non_null(printed);
    if (!direct || strcmp(printed, direct) != 0)
      fail_msg("%s: the tree prints\n  %s\nthe direct print gives\n  %s%s", code, printed,
               direct ? direct : "NULL: ", direct ? "" : e2);
  } else {
    if (direct || strcmp(e1, e2) != 0)
      fail_msg("%s: the tree fails with '%s', the direct print gives %s '%s'", code, e1,
               direct ? direct : "NULL", e2);
  }
  free(printed);
  free(direct);
  cJSON_Delete(tree);
}

static void print_is_the_tree_printed(void **state) {
  (void)state;
  static const char *const codes[] = {
      "return {}",
      "return json.array()",
      "return json.null",
      "return {a = json.null, b = true, c = false, d = json.array(), e = {}}",
      "return {0, -0.0, 1, -1, 0.1, 1/3, 2.5e-8, 1e300, -1e-300, 123456789.125, 2^53, 2^53 + 1}",
      "return {9007199254740992, 9007199254740993, -9007199254740993, math.maxinteger, "
      "math.mininteger + 1}",
      "local t = {} for i = 1, 127 do t[i] = string.char(i) end return {s = table.concat(t), "
      "each = t}",
      "return {['\\\\'] = '\\\\', ['\"'] = '\"', ['\\n\\t'] = '\\b\\f\\r\\1\\31\\127', "
      "['z\\195\\171'] = 'Zo\\195\\171 \\226\\130\\172 \\240\\159\\142\\147'}",
      "return {a = {b = {c = {json.array({1, {x = {}}}), 'y'}}}}",
      "return 'top'",
      "return 42",
      /* the errors, with their pointers */
      "return {a = {b = {print}}}",
      "return {x = 0/0}",
      "return {['a/b~c'] = {s = '\xff'}}",
      "return {1, 2, x = 3}",
      "return json.array({1, nil, 3})",
      "return {['\xc0\x80'] = 1}",
      "return {v = nil, w = {nil}}",
      "local t = {} local c = t for i = 1, 70 do c.n = {} c = c.n end return t",
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    lua_State *L = new_state();
    if (luaL_dostring(L, codes[i]) != 0)
      fail_msg("%s: %s", codes[i], lua_tostring(L, -1));
    same_text(L, codes[i]);
    lua_close(L);
  }
  /* a whole OKE message through the crossing and back */
  lua_State *L = new_state();
  cJSON *j = cJSON_Parse(
      "{\"associationId\":\"0f57a72a-7f7d-5cea-87ec-6245bd3a2363\",\"role\":\"student\","
      "\"consumers\":[{\"consumerKey\":\"nl-test-admin\",\"additionalTimeInMin\":23,"
      "\"personalNeeds\":[\"extraTime\"]}],\"person\":{\"givenName\":\"Maartje\","
      "\"surnamePrefix\":\"van\",\"displayName\":\"Damme, M. \\\"Mia\\\"\"},"
      "\"result\":{\"score\":7.5,\"pass\":true,\"note\":null}}");
  assert_non_null(j);
  char err[256];
  assert_int_equal(okegw_luajson_push(L, j, err, sizeof err), 0);
  same_text(L, "an OKE message");
  cJSON_Delete(j);
  lua_close(L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(print_is_the_tree_printed),
      cmocka_unit_test(nulls_and_empty_containers),
      cmocka_unit_test(print_exact_tree_unchanged),
      cmocka_unit_test(nested_and_depth),
      cmocka_unit_test(integers_and_floats),
      cmocka_unit_test(unicode),
      cmocka_unit_test(not_json),
      cmocka_unit_test(duplicate_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
