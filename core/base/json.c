#include "base/json.h"
#include "base/util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C(j) ((cJSON *)(j))
#define J(c) ((oke_json *)(c))

void okegw_json_format_number(double d, char buf[32]) {
  if (d == (double)(long long)d && d > -1e18 && d < 1e18) {
    snprintf(buf, 32, "%lld", (long long)d);
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, 32, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      return;
  }
}

int okegw_json_exact_numbers(cJSON *j) {
  for (; j; j = j->next) {
    if (cJSON_IsNumber(j)) {
      char buf[32];
      okegw_json_format_number(j->valuedouble, buf);
      char *raw = cJSON_malloc(strlen(buf) + 1);
      if (!raw)
        return -1;
      memcpy(raw, buf, strlen(buf) + 1);
      /* a raw node is printed verbatim */
      j->type = cJSON_Raw;
      j->valuestring = raw;
    } else if (j->child && okegw_json_exact_numbers(j->child) < 0) {
      return -1;
    }
  }
  return 0;
}

static int dup_walk(const cJSON *j, char *ptr, size_t len, size_t cap) {
  for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
    size_t n = len;
    if (cJSON_IsObject(j)) {
      for (const cJSON *f = j->child; f != e; f = f->next)
        if (e->string && f->string && strcmp(e->string, f->string) == 0) {
          snprintf(ptr + len, cap - len, "/%s", e->string);
          return 1;
        }
      n += (size_t)snprintf(ptr + len, cap - len, "/%s", e->string ? e->string : "");
    } else {
      size_t i = 0;
      for (const cJSON *f = j->child; f != e; f = f->next)
        i++;
      n += (size_t)snprintf(ptr + len, cap - len, "/%zu", i);
    }
    if (n >= cap)
      n = cap - 1;
    if ((cJSON_IsObject(e) || cJSON_IsArray(e)) && dup_walk(e, ptr, n, cap))
      return 1;
    ptr[len] = '\0';
  }
  return 0;
}

/* The fast pass: no pointer text, which only a body that has a duplicate
 * needs (then dup_walk runs again to name it). */
static int has_dup(const cJSON *j) {
  for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
    if (cJSON_IsObject(j) && e->string)
      for (const cJSON *f = j->child; f != e; f = f->next)
        if (f->string && f->string[0] == e->string[0] && strcmp(e->string, f->string) == 0)
          return 1;
    if ((cJSON_IsObject(e) || cJSON_IsArray(e)) && has_dup(e))
      return 1;
  }
  return 0;
}

int okegw_json_find_duplicate(const cJSON *j, char *ptr, size_t ptrsz) {
  if (!ptrsz)
    return 0;
  ptr[0] = '\0';
  return has_dup(j) && dup_walk(j, ptr, 0, ptrsz);
}

/* The number nodes a print turned raw, with what they held before. */
typedef struct raw_nums {
  struct {
    cJSON *node;
    char *was;
  } * v;
  size_t n, cap;
} raw_nums;

/* j and what is below it: every number a raw node with its exact text. */
static int nums_to_raw(cJSON *j, raw_nums *r) {
  if (cJSON_IsNumber(j)) {
    if (r->n == r->cap) {
      size_t cap = r->cap ? r->cap * 2 : 16;
      void *more = realloc(r->v, cap * sizeof *r->v);
      if (!more)
        return -1;
      r->v = more;
      r->cap = cap;
    }
    char buf[32];
    okegw_json_format_number(j->valuedouble, buf);
    size_t len = strlen(buf) + 1;
    char *raw = cJSON_malloc(len);
    if (!raw)
      return -1;
    memcpy(raw, buf, len);
    r->v[r->n].node = j;
    r->v[r->n++].was = j->valuestring;
    j->type = (j->type & ~0xFF) | cJSON_Raw; /* printed verbatim */
    j->valuestring = raw;
    return 0;
  }
  for (cJSON *e = j->child; e; e = e->next)
    if (nums_to_raw(e, r) < 0)
      return -1;
  return 0;
}

static void raw_to_nums(raw_nums *r) {
  for (size_t i = 0; i < r->n; i++) {
    cJSON *j = r->v[i].node;
    cJSON_free(j->valuestring);
    j->valuestring = r->v[i].was;
    j->type = (j->type & ~0xFF) | cJSON_Number;
  }
  free(r->v);
}

char *okegw_json_print(const cJSON *j) {
  /* The caller's tree is changed for the print and changed back before
   * this returns: a copy of the whole tree would cost more than the print.
   * Trees are never shared between threads. */
  cJSON *t = (cJSON *)j;
  raw_nums r = {0};
  char *out = t && nums_to_raw(t, &r) == 0 ? cJSON_PrintUnformatted(t) : NULL;
  raw_to_nums(&r);
  return out;
}

static oke_json *j_parse(const char *text, size_t len) {
  return text ? J(cJSON_ParseWithLength(text, len)) : NULL;
}
static char *j_print(const oke_json *j) { return j ? okegw_json_print(C(j)) : NULL; }
static void j_free(oke_json *j) { cJSON_Delete(C(j)); }

static int j_type(const oke_json *j) {
  const cJSON *c = C(j);
  if (!c)
    return OKE_JSON_INVALID;
  if (cJSON_IsNull(c))
    return OKE_JSON_NULL;
  if (cJSON_IsFalse(c))
    return OKE_JSON_FALSE;
  if (cJSON_IsTrue(c))
    return OKE_JSON_TRUE;
  if (cJSON_IsNumber(c))
    return OKE_JSON_NUMBER;
  if (cJSON_IsString(c))
    return OKE_JSON_STRING;
  if (cJSON_IsArray(c))
    return OKE_JSON_ARRAY;
  if (cJSON_IsObject(c))
    return OKE_JSON_OBJECT;
  return OKE_JSON_INVALID;
}

static oke_json *j_get(const oke_json *o, const char *key) {
  return cJSON_IsObject(C(o)) && key ? J(cJSON_GetObjectItemCaseSensitive(C(o), key)) : NULL;
}
static oke_json *j_at(const oke_json *a, size_t i) {
  return cJSON_IsArray(C(a)) && i <= (size_t)INT32_MAX ? J(cJSON_GetArrayItem(C(a), (int)i)) : NULL;
}
static size_t j_size(const oke_json *a) {
  return cJSON_IsArray(C(a)) || cJSON_IsObject(C(a)) ? (size_t)cJSON_GetArraySize(C(a)) : 0;
}
static const char *j_string(const oke_json *j) { return cJSON_GetStringValue(C(j)); }
static double j_number(const oke_json *j) { return cJSON_IsNumber(C(j)) ? C(j)->valuedouble : 0; }
static oke_json *j_new_object(void) { return J(cJSON_CreateObject()); }
static oke_json *j_new_array(void) { return J(cJSON_CreateArray()); }
static oke_json *j_new_string(const char *s) { return J(cJSON_CreateString(s)); }
static oke_json *j_new_number(double n) { return J(cJSON_CreateNumber(n)); }
static oke_json *j_dup(const oke_json *j) { return j ? J(cJSON_Duplicate(C(j), 1)) : NULL; }

static int j_set(oke_json *o, const char *key, oke_json *item) {
  if (!cJSON_IsObject(C(o)) || !key || !item) {
    cJSON_Delete(C(item));
    return OKE_EINVAL;
  }
  int ok = cJSON_GetObjectItemCaseSensitive(C(o), key)
               ? cJSON_ReplaceItemInObjectCaseSensitive(C(o), key, C(item))
               : cJSON_AddItemToObject(C(o), key, C(item));
  if (!ok) {
    cJSON_Delete(C(item));
    return OKE_ENOMEM;
  }
  return OKE_OK;
}
static int j_append(oke_json *a, oke_json *item) {
  if (!cJSON_IsArray(C(a)) || !item || !cJSON_AddItemToArray(C(a), C(item))) {
    cJSON_Delete(C(item));
    return OKE_EINVAL;
  }
  return OKE_OK;
}
static void j_remove(oke_json *o, const char *key) {
  if (cJSON_IsObject(C(o)) && key)
    cJSON_DeleteItemFromObjectCaseSensitive(C(o), key);
}
static void h_free(void *p) { free(p); }

void okegw_json_fill_host(oke_host *h) {
  h->json_parse = j_parse;
  h->json_print = j_print;
  h->json_free = j_free;
  h->json_type = j_type;
  h->json_get = j_get;
  h->json_at = j_at;
  h->json_size = j_size;
  h->json_string = j_string;
  h->json_number = j_number;
  h->json_new_object = j_new_object;
  h->json_new_array = j_new_array;
  h->json_new_string = j_new_string;
  h->json_new_number = j_new_number;
  h->json_duplicate = j_dup;
  h->json_set = j_set;
  h->json_append = j_append;
  h->json_remove = j_remove;
  h->free = h_free;
}

int okegw_json_add_text(cJSON *o, const char *name, const char *v, int omit) {
  if (!v && omit)
    return 0;
  char *clean = v ? okegw_utf8_clean(v, 0, 0) : NULL;
  cJSON *item = clean ? cJSON_CreateString(clean) : v ? NULL : cJSON_CreateNull();
  free(clean);
  if (!item || !cJSON_AddItemToObject(o, name, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}
