/* The sim plugin's session plan is one per connector name, shared by every
 * instance of that connector in the process ([gateway] workers = N makes one
 * per event loop; a reload starts the new instance before the old one's
 * fini). The plugin's .so (argv[1]) is loaded once per instance with dlopen,
 * as the host loads a connector, and driven through the ABI by a small host
 * of this file; each instance lives on its own thread with its own uv loop,
 * and its init, deliver and fini run there.
 *
 *   usage: test_sim_shared build/plugins/okegw_sim.so */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cjson/cJSON.h>
#include <oke/plugin.h>

#include "base/json.h"
#include "base/util.h"

static const char *so_path;

/* ---- a host ------------------------------------------------------------- */

struct oke_conn {
  const char *name;
};

struct oke_exchange {
  int status;
  char *body; /* the answer, or a problem's detail */
};

static void t_log(oke_conn *c, int level, const char *fmt, ...) {
  if (level < OKE_LOG_WARN)
    return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[%s] ", c ? c->name : "-");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const char *t_config(oke_conn *c, const char *key) { return NULL; }
static const char *t_name(oke_conn *c) { return c ? c->name : NULL; }

static int t_respond(oke_exchange *x, int status, const char *content_type, const char *body,
                     size_t len) {
  x->status = status;
  x->body = malloc(len + 1);
  if (len)
    memcpy(x->body, body, len);
  x->body[len] = '\0';
  return OKE_OK;
}

static int t_respond_problem(oke_exchange *x, int status, const char *title, const char *detail) {
  return t_respond(x, status, NULL, detail, strlen(detail));
}

static oke_json *t_first(const oke_json *j) {
  const cJSON *c = (const cJSON *)j;
  return cJSON_IsArray(c) || cJSON_IsObject(c) ? (oke_json *)c->child : NULL;
}
static oke_json *t_next(const oke_json *j) {
  return j ? (oke_json *)((const cJSON *)j)->next : NULL;
}
static const char *t_key(const oke_json *j) { return j ? ((const cJSON *)j)->string : NULL; }
static oke_json *t_new_bool(int b) { return (oke_json *)cJSON_CreateBool(b != 0); }
static oke_json *t_new_null(void) { return (oke_json *)cJSON_CreateNull(); }
/* out is "" when the parameter is absent (the ABI's promise) */
static int t_query_get(const char *query, const char *name, char *out, size_t outsz) {
  out[0] = '\0';
  return okegw_query_get(query, name, out, outsz);
}

static oke_host host;

static void host_fill(void) {
  host.abi_major = OKE_ABI_MAJOR;
  host.abi_minor = OKE_ABI_MINOR;
  host.struct_size = sizeof host;
  host.log = t_log;
  host.config = t_config;
  host.name = t_name;
  host.respond = t_respond;
  host.respond_problem = t_respond_problem;
  okegw_json_fill_host(&host); /* the gateway's own JSON services */
  host.json_first = t_first;
  host.json_next = t_next;
  host.json_key = t_key;
  host.json_new_bool = t_new_bool;
  host.json_new_null = t_new_null;
  host.query_get = t_query_get;
}

/* ---- instances, each driven on a loop of its own ------------------------- */

typedef struct worker worker;

typedef struct inst {
  oke_conn conn;
  worker *w; /* the loop it lives on */
  void *dl;
  const oke_plugin *p;
  void *state;
  int rc; /* of init */
} inst;

/* A thread running its own uv loop; run_on() hands it one job at a time and
 * waits until the job ran on that loop. */
struct worker {
  pthread_t thread;
  uv_loop_t loop;
  uv_async_t wake;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void (*job)(void *);
  void *arg;
  int done, quit;
  int running;
};

static void on_wake(uv_async_t *a) {
  worker *w = a->data;
  pthread_mutex_lock(&w->mu);
  void (*job)(void *) = w->job;
  void *arg = w->arg;
  int quit = w->quit;
  pthread_mutex_unlock(&w->mu);
  if (job)
    job(arg);
  if (quit)
    uv_close((uv_handle_t *)&w->wake, NULL);
  pthread_mutex_lock(&w->mu);
  w->job = NULL;
  w->done = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int worker_start(worker *w) {
  if (uv_loop_init(&w->loop) != 0)
    return -1;
  if (uv_async_init(&w->loop, &w->wake, on_wake) != 0) {
    uv_loop_close(&w->loop);
    return -1;
  }
  w->wake.data = w;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->running = pthread_create(&w->thread, NULL, worker_main, w) == 0;
  return w->running ? 0 : -1;
}

static void post(worker *w, void (*job)(void *), void *arg, int quit) {
  pthread_mutex_lock(&w->mu);
  w->job = job;
  w->arg = arg;
  w->quit = quit;
  w->done = 0;
  pthread_mutex_unlock(&w->mu);
  uv_async_send(&w->wake);
}

static void await(worker *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

static void run_on(worker *w, void (*job)(void *), void *arg) {
  post(w, job, arg, 0);
  await(w);
}

static int worker_stop(worker *w) {
  if (!w->running)
    return 0;
  post(w, NULL, NULL, 1);
  await(w);
  pthread_join(w->thread, NULL);
  w->running = 0;
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  return uv_loop_close(&w->loop) == 0 ? 0 : -1;
}

static void job_init(void *arg) {
  inst *in = arg;
  in->rc = -100;
  if (!(in->dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL)))
    return;
  oke_plugin_entry_fn entry;
  *(void **)&entry = dlsym(in->dl, OKE_PLUGIN_ENTRY_SYMBOL);
  if (!entry || !(in->p = entry()))
    return;
  in->rc = in->p->init(&in->conn, &host, &in->state);
}

static void job_fini(void *arg) {
  inst *in = arg;
  in->p->fini(in->state);
  in->state = NULL;
  dlclose(in->dl);
  in->dl = NULL;
}

static void start(worker *w, inst *in, const char *name) {
  memset(in, 0, sizeof *in);
  in->conn.name = name;
  in->w = w;
  run_on(w, job_init, in);
  assert_int_equal(in->rc, OKE_OK);
}

static void stop(inst *in) {
  if (in->state)
    run_on(in->w, job_fini, in);
  else if (in->dl)
    dlclose(in->dl);
  in->dl = NULL;
}

/* What a case runs on: two loops and up to three instances. The teardown,
 * which cmocka runs after a failed case as well, ends what a case left. */
typedef struct fixture {
  worker w[2];
  inst in[3];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  *state = f;
  return f && worker_start(&f->w[0]) == 0 && worker_start(&f->w[1]) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = 0;
  for (size_t i = 0; f && i < sizeof f->in / sizeof f->in[0]; i++)
    stop(&f->in[i]);
  for (int k = 0; f && k < 2; k++)
    rc |= worker_stop(&f->w[k]);
  free(f);
  return rc;
}

/* One exchange, delivered on the instance's loop. */
typedef struct call {
  inst *in;
  int interaction;
  const char *method, *id, *body, *query;
  int rc;
  oke_exchange x;
} call;

static void job_call(void *arg) {
  call *c = arg;
  char path[128];
  snprintf(path, sizeof path, "/%s", c->id);
  oke_request req = {.interaction = c->interaction,
                     .method = c->method,
                     .path = path,
                     .query = c->query ? c->query : "",
                     .id = c->id,
                     .body = c->body,
                     .body_len = c->body ? strlen(c->body) : 0,
                     .content_type = c->body ? "application/json" : NULL,
                     .request_id = "test"};
  c->rc = c->in->p->deliver(c->in->state, &c->x, &req);
}

/* The answer's status; its body, parsed, in *out when out is given. */
static int deliver(inst *in, int interaction, const char *method, const char *id, const char *body,
                   cJSON **out) {
  call c = {.in = in, .interaction = interaction, .method = method, .id = id, .body = body};
  run_on(in->w, job_call, &c);
  assert_int_equal(c.rc, OKE_OK);
  if (out)
    *out = c.x.body && *c.x.body ? cJSON_Parse(c.x.body) : NULL;
  free(c.x.body);
  return c.x.status;
}

#define OFFERING "8557ada3-553e-58c2-b4e2-f69f35e91c78"
#define ASSOCIATION "0f57a72a-7f7d-5cea-87ec-6245bd3a2363"

static const char offering_body[] =
    "{\"offeringId\":\"" OFFERING "\",\"offeringType\":\"component\","
    "\"component\":\"9e2b5d18-4f7a-4c3e-b1d6-2a8f0c4e6b46\",\"name\":[{\"language\":\"nl-NL\","
    "\"value\":\"Zitting 3F\"}],\"consumers\":[{\"consumerKey\":\"nl-test-admin\","
    "\"offeringState\":\"active\"}]}";
static const char association_body[] =
    "{\"associationId\":\"" ASSOCIATION "\",\"associationType\":\"componentOfferingAssociation\","
    "\"role\":\"student\",\"state\":\"associated\",\"offering\":\"" OFFERING "\","
    "\"person\":{\"personId\":\"d6e0e3b6-63a2-4b19-8d7b-5b5ca3e8f0a1\"}}";
static const char cancel_body[] =
    "{\"consumers\":[{\"consumerKey\":\"nl-test-admin\",\"offeringState\":\"canceled\"}]}";

static const char *str_at(const cJSON *j, const char *key) {
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));
}

/* ---- cases -------------------------------------------------------------- */

/* Written through one loop's instance, read through another's; a connector
 * of another name keeps a plan of its own. */
static void shared_between_loops(void **state) {
  fixture *f = *state;
  inst *a = &f->in[0], *b = &f->in[1], *other = &f->in[2];
  start(&f->w[0], a, "sim");
  start(&f->w[1], b, "sim");
  start(&f->w[1], other, "sim-other");

  assert_int_equal(deliver(a, OKE_I_FLOW2_PUT_OFFERING, "PUT", OFFERING, offering_body, NULL), 201);
  cJSON *got = NULL;
  assert_int_equal(deliver(b, OKE_I_FLOW2_GET_OFFERING, "GET", OFFERING, NULL, &got), 200);
  cJSON *want = cJSON_Parse(offering_body);
  assert_true(cJSON_Compare(got, want, 1));
  cJSON_Delete(want);
  cJSON_Delete(got);
  /* a PUT through b replaces what a created */
  assert_int_equal(deliver(b, OKE_I_FLOW2_PUT_OFFERING, "PUT", OFFERING, offering_body, NULL), 200);

  /* another connector name: another plan */
  assert_int_equal(deliver(other, OKE_I_FLOW2_GET_OFFERING, "GET", OFFERING, NULL, NULL), 404);
  assert_int_equal(deliver(other, OKE_I_FLOW2_PUT_OFFERING, "PUT", OFFERING, offering_body, NULL),
                   201);

  /* the deelname through b finds the zitting a stored (R13) */
  assert_int_equal(
      deliver(b, OKE_I_FLOW2_PUT_ASSOCIATION, "PUT", ASSOCIATION, association_body, NULL), 201);
  assert_int_equal(deliver(a, OKE_I_FLOW2_GET_ASSOCIATION, "GET", ASSOCIATION, NULL, &got), 200);
  assert_string_equal(str_at(got, "state"), "associated");
  cJSON_Delete(got);
  assert_int_equal(deliver(a, OKE_I_FLOW2_LIST_ASSOCIATIONS, "GET", OFFERING, NULL, &got), 200);
  cJSON *items = cJSON_GetObjectItemCaseSensitive(got, "items");
  assert_int_equal(cJSON_GetArraySize(items), 1);
  assert_string_equal(str_at(cJSON_GetArrayItem(items, 0), "associationId"), ASSOCIATION);
  cJSON_Delete(got);
  assert_int_equal(deliver(other, OKE_I_FLOW2_LIST_ASSOCIATIONS, "GET", OFFERING, NULL, &got), 200);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "items")), 0);
  cJSON_Delete(got);

  /* a cancel through b takes the deelname with it, as a sees it (R18) */
  assert_int_equal(deliver(b, OKE_I_FLOW2_PATCH_OFFERING, "PATCH", OFFERING, cancel_body, NULL),
                   200);
  assert_int_equal(deliver(a, OKE_I_FLOW2_GET_ASSOCIATION, "GET", ASSOCIATION, NULL, &got), 200);
  assert_string_equal(str_at(got, "state"), "canceled");
  cJSON_Delete(got);
  assert_int_equal(deliver(a, OKE_I_FLOW2_PATCH_ASSOCIATION, "PATCH", ASSOCIATION,
                           "{\"remoteState\":\"x\"}", &got),
                   200);
  assert_string_equal(str_at(got, "state"), "canceled");
  cJSON_Delete(got);
  assert_int_equal(deliver(b, OKE_I_FLOW2_GET_ASSOCIATION, "GET", ASSOCIATION, NULL, &got), 200);
  assert_string_equal(str_at(got, "remoteState"), "x");
  cJSON_Delete(got);
  assert_int_equal(deliver(b, OKE_I_FLOW2_GET_ASSOCIATION_URL, "GET", ASSOCIATION, NULL, &got),
                   200);
  assert_string_equal(cJSON_GetStringValue(got), "https://sim.example/start/" ASSOCIATION);
  cJSON_Delete(got);

  stop(a);
  stop(b);
  stop(other);
  /* the plan went with the last instance: a new one starts empty */
  start(&f->w[0], a, "sim");
  assert_int_equal(deliver(a, OKE_I_FLOW2_GET_OFFERING, "GET", OFFERING, NULL, NULL), 404);
}

/* A reload: the new instance starts before the old one's fini, and keeps
 * the plan; once no instance is left, it is gone. */
static void kept_across_a_reload(void **state) {
  fixture *f = *state;
  inst *old = &f->in[0], *fresh = &f->in[1];
  start(&f->w[0], old, "sim");
  assert_int_equal(deliver(old, OKE_I_FLOW2_PUT_OFFERING, "PUT", OFFERING, offering_body, NULL),
                   201);
  start(&f->w[0], fresh, "sim");
  stop(old);
  assert_int_equal(deliver(fresh, OKE_I_FLOW2_GET_OFFERING, "GET", OFFERING, NULL, NULL), 200);
  start(&f->w[0], old, "sim"); /* and the next reload */
  stop(fresh);
  assert_int_equal(deliver(old, OKE_I_FLOW2_GET_OFFERING, "GET", OFFERING, NULL, NULL), 200);
  stop(old);
  start(&f->w[0], fresh, "sim");
  assert_int_equal(deliver(fresh, OKE_I_FLOW2_GET_OFFERING, "GET", OFFERING, NULL, NULL), 404);
}

/* Two loops at once on one connector: each PUTs zittingen of its own and
 * PATCHes a member of its own into one common zitting. Every PATCH is a read,
 * merge and write: none may be lost to the other loop's. */
enum { ROUNDS = 150 };
#define COMMON "c0ffee00-0000-4000-8000-000000000000"

typedef struct burst {
  inst *in;
  int k;
  int failures;
} burst;

static void job_burst(void *arg) {
  burst *bu = arg;
  for (int i = 0; i < ROUNDS; i++) {
    char id[40], body[256], mine[40];
    snprintf(id, sizeof id, "00000000-0000-4000-8%03d-%012d", bu->k, i);
    snprintf(body, sizeof body, "{\"offeringId\":\"%s\",\"consumers\":[]}", id);
    call c = {.in = bu->in,
              .interaction = OKE_I_FLOW2_PUT_OFFERING,
              .method = "PUT",
              .id = id,
              .body = body};
    job_call(&c);
    bu->failures += c.rc != OKE_OK || c.x.status != 201;
    free(c.x.body);

    snprintf(mine, sizeof mine, "w%d_%d", bu->k, i);
    snprintf(body, sizeof body, "{\"x\":{\"%s\":true}}", mine);
    call p = {.in = bu->in,
              .interaction = OKE_I_FLOW2_PATCH_OFFERING,
              .method = "PATCH",
              .id = COMMON,
              .body = body};
    job_call(&p);
    bu->failures += p.rc != OKE_OK || p.x.status != 200;
    free(p.x.body);

    call g = {.in = bu->in, .interaction = OKE_I_FLOW2_GET_OFFERING, .method = "GET", .id = COMMON};
    job_call(&g);
    cJSON *doc = g.x.body ? cJSON_Parse(g.x.body) : NULL;
    bu->failures += g.x.status != 200 || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                                             cJSON_GetObjectItemCaseSensitive(doc, "x"), mine));
    cJSON_Delete(doc);
    free(g.x.body);
  }
}

static void concurrent_loops(void **state) {
  fixture *f = *state;
  burst bu[2];
  for (int k = 0; k < 2; k++) {
    start(&f->w[k], &f->in[k], "sim");
    bu[k] = (burst){.in = &f->in[k], .k = k};
  }
  assert_int_equal(deliver(&f->in[0], OKE_I_FLOW2_PUT_OFFERING, "PUT", COMMON,
                           "{\"offeringId\":\"" COMMON "\",\"x\":{}}", NULL),
                   201);
  for (int k = 0; k < 2; k++)
    post(&f->w[k], job_burst, &bu[k], 0);
  for (int k = 0; k < 2; k++)
    await(&f->w[k]);
  assert_int_equal(bu[0].failures, 0);
  assert_int_equal(bu[1].failures, 0);

  cJSON *got = NULL;
  assert_int_equal(deliver(&f->in[1], OKE_I_FLOW2_GET_OFFERING, "GET", COMMON, NULL, &got), 200);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "x")), 2 * ROUNDS);
  cJSON_Delete(got);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < ROUNDS; i += 7) {
      char id[40];
      snprintf(id, sizeof id, "00000000-0000-4000-8%03d-%012d", k, i);
      assert_int_equal(deliver(&f->in[1 - k], OKE_I_FLOW2_GET_OFFERING, "GET", id, NULL, NULL),
                       200);
    }
}

/* The .so stays loaded between the cases (as in the gateway, where the
 * built-in sim never unloads), so a plan left behind by a case would show in
 * the next one's "starts empty" checks; unloaded at the end, whatever is
 * still allocated is a leak valgrind names. */
static void *pin;

static int pin_plugin(void **state) {
  (void)state;
  pin = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  if (!pin)
    fprintf(stderr, "cannot load %s: %s\n", so_path, dlerror());
  return pin ? 0 : -1;
}

static int unpin_plugin(void **state) {
  (void)state;
  return pin ? dlclose(pin) : 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s okegw_sim.so\n", argv[0]);
    return 2;
  }
  so_path = argv[1];
  host_fill();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(shared_between_loops, setup, teardown),
      cmocka_unit_test_setup_teardown(kept_across_a_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(concurrent_loops, setup, teardown),
  };
  return cmocka_run_group_tests(tests, pin_plugin, unpin_plugin);
}
