/* The store's interface: delivery states, the JSON shapes of a delivery,
 * and the deliveries, audit and phase history tables through the gateway's
 * queued jobs and an operator command's direct calls (one reader for both);
 * the upgrades of older stores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"

static void states(void **state) {
  (void)state;
  const char *names[] = {"pending", "delivered", "failed", "dead", "dropped"};
  for (int i = 0; i < OKEGW_DLV_NSTATES; i++) {
    okegw_delivery_state s = OKEGW_DLV_DROPPED;
    assert_string_equal(okegw_delivery_state_name((okegw_delivery_state)i), names[i]);
    assert_int_equal(okegw_delivery_state_from_name(names[i], &s), 0);
    assert_int_equal(s, i);
  }
  okegw_delivery_state s = OKEGW_DLV_DEAD;
  assert_int_equal(okegw_delivery_state_from_name("Pending", &s), -1);
  assert_int_equal(okegw_delivery_state_from_name("", &s), -1);
  assert_int_equal(okegw_delivery_state_from_name(NULL, &s), -1);
  assert_int_equal(s, OKEGW_DLV_DEAD);
  assert_string_equal(okegw_delivery_state_name((okegw_delivery_state)99), "?");
}

#define T0 1796294658123LL

static okegw_delivery_rec sample(void) {
  okegw_delivery_rec r = {.id = 7,
                          .created_ms = T0,
                          .updated_ms = T0 + 1,
                          .since_ms = T0,
                          .next_ms = T0 + 2000,
                          .connector = "alpha",
                          .interaction = "flow3.patch_association",
                          .resource = "/associations/r-1",
                          .resource_id = "r-1",
                          .method = "PATCH",
                          .path = "/associations/r-1",
                          .last_error = "peer: 503 busy \xff",
                          .state = OKEGW_DLV_PENDING,
                          .attempts = 2,
                          .last_status = 503};
  return r;
}

static char *print(const okegw_delivery_rec *r, unsigned flags) {
  cJSON *o = okegw_delivery_json(r, flags);
  assert_non_null(o);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

/* GET /deliveries/{id} and a 202's body: the members a sender has always
 * seen, in their order, absent ones left out. */
static void public_shape(void **state) {
  (void)state;
  okegw_delivery_rec r = sample();
  char *s = print(&r, OKEGW_DELIVERY_JSON_PUBLIC);
  assert_string_equal(
      s, "{\"id\":7,\"state\":\"pending\",\"connector\":\"alpha\",\"interaction\":"
         "\"flow3.patch_association\",\"resourceId\":\"r-1\",\"createdAt\":"
         "\"2026-12-03T10:44:18.123Z\",\"attempts\":2,\"lastStatus\":503,\"lastError\":\"peer: "
         "503 busy \xef\xbf\xbd\",\"nextAttemptAt\":\"2026-12-03T10:44:20.123Z\",\"href\":"
         "\"/deliveries/7\"}");
  free(s);
  okegw_delivery_rec d = {
      .id = 8, .state = OKEGW_DLV_DELIVERED, .next_ms = T0, .delivered_ms = T0 + 5, .attempts = 1};
  s = print(&d, OKEGW_DELIVERY_JSON_PUBLIC | OKEGW_DELIVERY_JSON_BODY);
  assert_string_equal(s, "{\"id\":8,\"state\":\"delivered\",\"connector\":\"\",\"interaction\":"
                         "\"\",\"attempts\":1,\"deliveredAt\":\"2026-12-03T10:44:18.128Z\","
                         "\"href\":\"/deliveries/8\"}");
  free(s);
}

/* The public shape is a subset of the full one, same names (and, where both
 * have a value, the same value), plus href. */
static void public_is_a_subset(void **state) {
  (void)state;
  okegw_delivery_rec r = sample();
  r.delivered_ms = T0 + 9;
  cJSON *pub = okegw_delivery_json(&r, OKEGW_DELIVERY_JSON_PUBLIC);
  cJSON *full = okegw_delivery_json(&r, 0);
  assert_non_null(pub);
  assert_non_null(full);
  size_t n = 0;
  for (cJSON *m = pub->child; m; m = m->next, n++) {
    if (strcmp(m->string, "href") == 0)
      continue;
    cJSON *f = cJSON_GetObjectItemCaseSensitive(full, m->string);
    assert_non_null(f);
    assert_true(cJSON_Compare(m, f, 1));
  }
  assert_int_equal(n, 12);
  assert_int_equal(cJSON_GetArraySize(full), 24);
  cJSON_Delete(pub);
  cJSON_Delete(full);
}

static void full_shape_and_body(void **state) {
  (void)state;
  okegw_delivery_rec r = sample();
  r.body = "{\"a\":\"\xc3\xa9\"}";
  r.body_len = strlen(r.body);
  r.body_kept = 1;
  cJSON *o = okegw_delivery_json(&r, 0);
  assert_null(cJSON_GetObjectItem(o, "body"));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "caller")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "deliveredAt")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "bodyKept")));
  assert_string_equal(cJSON_GetObjectItem(o, "windowStartedAt")->valuestring,
                      "2026-12-03T10:44:18.123Z");
  cJSON_Delete(o);

  char *s = print(&r, OKEGW_DELIVERY_JSON_BODY);
  assert_non_null(
      strstr(s, "\"bodyKept\":true,\"bodyBytes\":10,\"body\":\"{\\\"a\\\":\\\"\xc3\xa9\\\"}\"}"));
  assert_null(strstr(s, "bodyEncoding"));
  free(s);
  r.body = "\xff\0binary";
  r.body_len = 8;
  s = print(&r, OKEGW_DELIVERY_JSON_BODY);
  assert_non_null(
      strstr(s, "\"bodyEncoding\":\"base64\",\"bodyBytes\":8,\"body\":\"/wBiaW5hcnk=\"}"));
  free(s);
  r.body = NULL;
  r.body_kept = 0;
  s = print(&r, OKEGW_DELIVERY_JSON_BODY);
  assert_non_null(strstr(s, "\"bodyKept\":false,\"body\":null}"));
  assert_null(strstr(s, "bodyBytes"));
  free(s);
}

/* ---- through the store ---- */

typedef struct waiter {
  int done, rc;
  long long id;
  okegw_delivery_rec *recs;
  size_t n;
} waiter;

static void on_delivery(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  waiter *w = ud;
  w->done = 1;
  w->rc = rc;
  w->id = id;
  w->recs = recs;
  w->n = n;
}

static void wait_for(uv_loop_t *loop, waiter *w) {
  while (!w->done)
    uv_run(loop, UV_RUN_ONCE);
}

static void free_recs(waiter *w) {
  for (size_t i = 0; i < w->n; i++)
    okegw_delivery_rec_free(&w->recs[i]);
  free(w->recs);
  w->recs = NULL;
  w->n = 0;
}

static char dir[64], db[96];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/okegw-test-store-XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  snprintf(db, sizeof db, "%s/okegw.db", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  const char *ext[] = {"", "-wal", "-shm"};
  char p[128];
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", db, ext[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/other.db", dir);
  unlink(p);
  rmdir(dir);
  return 0;
}

/* Three pushes written by the gateway's jobs, one of them dead. */
static void fill(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  const char *bodies[] = {"{\"n\":1}", "{\"n\":2}", "\x01\x02"};
  long long ids[3];
  for (int i = 0; i < 3; i++) {
    okegw_delivery_rec r = sample();
    r.created_ms = r.since_ms = T0 + i;
    r.caller = i == 1 ? "planning" : NULL;
    r.body = (char *)bodies[i];
    r.body_len = strlen(bodies[i]);
    r.last_error = NULL;
    r.last_status = 0;
    waiter w = {0};
    assert_int_equal(okegw_store_delivery_add(s, &r, on_delivery, &w), OKEGW_STORE_OK);
    wait_for(&loop, &w);
    assert_int_equal(w.rc, OKEGW_STORE_OK);
    ids[i] = w.id;
  }
  okegw_delivery_rec dead = sample();
  dead.id = ids[1];
  dead.state = OKEGW_DLV_DEAD;
  dead.attempts = 5;
  dead.next_ms = 0;
  waiter w = {0};
  assert_int_equal(okegw_store_delivery_update(s, &dead, 0, NULL, 0, NULL, on_delivery, &w),
                   OKEGW_STORE_OK);
  wait_for(&loop, &w);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  /* the gateway's own read: NOTFOUND is a code, not an empty success */
  waiter g = {0};
  assert_int_equal(okegw_store_delivery_get(s, 4242, 0, on_delivery, &g), OKEGW_STORE_OK);
  wait_for(&loop, &g);
  assert_int_equal(g.rc, OKEGW_STORE_NOTFOUND);
  assert_int_equal(g.n, 0);
  okegw_audit_rec a = {.request_id = "req-1",
                       .interaction = "flow3.patch_association",
                       .resource_id = "r-1",
                       .status = 202,
                       .latency_ms = 1.5};
  assert_int_equal(okegw_store_audit(s, &a), OKEGW_STORE_OK);
  a.resource_id = "r-2";
  a.event = "delivery";
  a.phase = "shadow";
  a.delivery_id = ids[0];
  a.attempts = 2;
  assert_int_equal(okegw_store_audit(s, &a), OKEGW_STORE_OK);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct seen {
  long long ids[8];
  okegw_delivery_state states[8];
  int kept[8];
  size_t n;
  int stop_after;
} seen;

static int on_row(void *ud, const okegw_delivery_rec *r) {
  seen *x = ud;
  x->ids[x->n] = r->id;
  x->states[x->n] = r->state;
  x->kept[x->n] = r->body_kept;
  x->n++;
  return x->stop_after && (int)x->n >= x->stop_after ? -7 : 0;
}

typedef struct changes {
  okegw_dlv_change c[8];
  size_t n;
} changes;

static void on_change(void *ud, const okegw_dlv_change *c) {
  changes *x = ud;
  x->c[x->n++] = *c;
}

static void direct_deliveries(void **state) {
  (void)state;
  fill();
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open_direct(db, 1, &s, &err), OKEGW_STORE_OK);

  seen all = {0};
  okegw_delivery_filter f = {.state = -1};
  assert_int_equal(okegw_store_deliveries_list(s, &f, on_row, &all, &err), OKEGW_STORE_OK);
  assert_int_equal(all.n, 3);
  assert_int_equal(all.states[0], OKEGW_DLV_PENDING);
  assert_int_equal(all.states[1], OKEGW_DLV_DEAD);
  assert_true(all.kept[2]);
  seen dead = {0};
  f.state = OKEGW_DLV_DEAD;
  assert_int_equal(okegw_store_deliveries_list(s, &f, on_row, &dead, &err), OKEGW_STORE_OK);
  assert_int_equal(dead.n, 1);
  assert_int_equal(dead.ids[0], all.ids[1]);
  seen stopped = {.stop_after = 2};
  f.state = -1;
  assert_int_equal(okegw_store_deliveries_list(s, &f, on_row, &stopped, &err), -7);
  assert_int_equal(stopped.n, 2);
  seen limited = {0};
  f.limit = 1;
  f.connector = "alpha";
  assert_int_equal(okegw_store_deliveries_list(s, &f, on_row, &limited, &err), OKEGW_STORE_OK);
  assert_int_equal(limited.n, 1);

  okegw_delivery_rec r;
  assert_int_equal(okegw_store_deliveries_get(s, all.ids[2], 1, &r, &err), OKEGW_STORE_OK);
  assert_int_equal(r.body_len, 2);
  assert_memory_equal(r.body, "\x01\x02", 2);
  assert_string_equal(r.connector, "alpha");
  assert_null(r.caller);
  okegw_delivery_rec_free(&r);
  assert_int_equal(okegw_store_deliveries_get(s, 4242, 0, &r, &err), OKEGW_STORE_NOTFOUND);

  /* retry: only the dead one goes back; a pending one and a missing one are
   * reported, nothing else changes */
  changes c = {0};
  long long ids[] = {all.ids[1], all.ids[0], 4242};
  assert_int_equal(
      okegw_store_deliveries_retry(s, ids, 3, NULL, OKEGW_DLV_DEAD, on_change, &c, &err),
      OKEGW_STORE_OK);
  assert_int_equal(c.n, 3);
  assert_int_equal(c.c[0].outcome, OKEGW_DLV_CHANGE_DONE);
  assert_int_equal(c.c[0].was, OKEGW_DLV_DEAD);
  assert_int_equal(c.c[1].outcome, OKEGW_DLV_CHANGE_WRONG_STATE);
  assert_int_equal(c.c[1].was, OKEGW_DLV_PENDING);
  assert_int_equal(c.c[2].outcome, OKEGW_DLV_CHANGE_MISSING);
  assert_int_equal(okegw_store_deliveries_get(s, all.ids[1], 0, &r, &err), OKEGW_STORE_OK);
  assert_int_equal(r.state, OKEGW_DLV_PENDING);
  assert_true(r.requeue);
  okegw_delivery_rec_free(&r);
  /* by connector: no dead ones left */
  changes none = {0};
  assert_int_equal(
      okegw_store_deliveries_retry(s, NULL, 0, "alpha", OKEGW_DLV_DEAD, on_change, &none, &err),
      OKEGW_STORE_OK);
  assert_int_equal(none.n, 0);

  changes d = {0};
  long long drop[] = {all.ids[2]};
  assert_int_equal(okegw_store_deliveries_drop(s, drop, 1, on_change, &d, &err), OKEGW_STORE_OK);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.c[0].outcome, OKEGW_DLV_CHANGE_DONE);
  assert_true(d.c[0].body_kept);
  assert_int_equal(d.c[0].kept_until_ms, 0);
  assert_int_equal(okegw_store_deliveries_get(s, all.ids[2], 1, &r, &err), OKEGW_STORE_OK);
  assert_int_equal(r.state, OKEGW_DLV_DROPPED);
  assert_null(r.body);
  assert_false(r.body_kept);
  okegw_delivery_rec_free(&r);
  /* a dropped one cannot be retried (it is neither dead nor failed) */
  changes again = {0};
  assert_int_equal(
      okegw_store_deliveries_retry(s, drop, 1, NULL, OKEGW_DLV_DEAD, on_change, &again, &err),
      OKEGW_STORE_OK);
  assert_int_equal(again.c[0].outcome, OKEGW_DLV_CHANGE_WRONG_STATE);
  okegw_store_close(s, NULL, NULL);

  /* the running gateway picks both changes up, once */
  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  waiter w = {0};
  assert_int_equal(okegw_store_delivery_requeued(s, on_delivery, &w), OKEGW_STORE_OK);
  wait_for(&loop, &w);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  assert_int_equal(w.n, 2);
  assert_int_equal(w.recs[0].state, OKEGW_DLV_PENDING);
  /* rows come without bodies; the outbox reads one per attempt */
  assert_null(w.recs[0].body);
  assert_true(w.recs[0].body_kept);
  assert_int_equal(w.recs[1].state, OKEGW_DLV_DROPPED);
  waiter b = {0};
  assert_int_equal(okegw_store_delivery_get(s, w.recs[0].id, 1, on_delivery, &b), OKEGW_STORE_OK);
  wait_for(&loop, &b);
  assert_int_equal(b.rc, OKEGW_STORE_OK);
  assert_int_equal(b.n, 1);
  assert_non_null(b.recs[0].body);
  assert_true(b.recs[0].body_len > 0);
  free_recs(&b);
  free_recs(&w);
  waiter w2 = {0};
  assert_int_equal(okegw_store_delivery_requeued(s, on_delivery, &w2), OKEGW_STORE_OK);
  wait_for(&loop, &w2);
  assert_int_equal(w2.n, 0);
  free_recs(&w2);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int on_audit(void *ud, const cJSON *row) {
  char **out = ud;
  char *line = cJSON_PrintUnformatted(row);
  char *both = okegw_asprintf("%s%s\n", *out ? *out : "", line);
  free(line);
  free(*out);
  *out = both;
  return 0;
}

static void direct_audit(void **state) {
  (void)state;
  fill();
  okegw_store *s = NULL;
  char *err = NULL, *out = NULL;
  assert_int_equal(okegw_store_open_direct(db, 0, &s, &err), OKEGW_STORE_OK);
  okegw_audit_filter f = {.resource_id = "r-2"};
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &out, &err), OKEGW_STORE_OK);
  assert_non_null(out);
  assert_non_null(strstr(out, "\"request_id\":\"req-1\",\"flow\":3,"));
  assert_non_null(strstr(out, "\"latency_ms\":1.5,\"attempts\":2,"));
  assert_non_null(strstr(out, "\"delivery_id\":1,\"event\":\"delivery\",\"phase\":\"shadow\"}\n"));
  assert_null(strstr(out, "caller"));           /* NULL columns are left out */
  assert_string_equal(strchr(out, '\n'), "\n"); /* one row */
  free(out);
  out = NULL;
  /* but phase is always there: null when the exchange recorded none */
  f = (okegw_audit_filter){.resource_id = "r-1"};
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &out, &err), OKEGW_STORE_OK);
  assert_non_null(out);
  assert_non_null(strstr(out, "\"event\":\"request\",\"phase\":null}\n"));
  free(out);
  out = NULL;
  f = (okegw_audit_filter){.until = "2000-01-01"};
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &out, &err), OKEGW_STORE_OK);
  assert_null(out);
  /* newest first (the admin API): the same rows in the other order, and
   * a limit keeps the newest */
  char *asc = NULL, *desc = NULL, *newest = NULL;
  f = (okegw_audit_filter){0};
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &asc, &err), OKEGW_STORE_OK);
  f.newest_first = 1;
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &desc, &err), OKEGW_STORE_OK);
  f.limit = 1;
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &newest, &err), OKEGW_STORE_OK);
  assert_non_null(asc);
  assert_non_null(desc);
  assert_int_equal(strlen(asc), strlen(desc));
  char *lines[16];
  size_t n = 0;
  for (char *save = NULL, *l = strtok_r(asc, "\n", &save); l && n < 16;
       l = strtok_r(NULL, "\n", &save))
    lines[n++] = l;
  assert_true(n >= 2);
  char *rev = NULL;
  for (size_t i = n; i > 0; i--) {
    char *more = okegw_asprintf("%s%s\n", rev ? rev : "", lines[i - 1]);
    free(rev);
    rev = more;
  }
  assert_string_equal(rev, desc);
  assert_non_null(newest);
  assert_int_equal(strncmp(newest, desc, strlen(newest)), 0);
  assert_string_equal(strchr(newest, '\n'), "\n"); /* one row */
  free(rev);
  free(asc);
  free(desc);
  free(newest);
  okegw_store_close(s, NULL, NULL);
}

static void not_a_store(void **state) {
  (void)state;
  okegw_store *s = NULL;
  char *err = NULL, p[128];
  snprintf(p, sizeof p, "%s/missing.db", dir);
  assert_int_equal(okegw_store_open_direct(p, 0, &s, &err), OKEGW_STORE_ERROR);
  assert_non_null(strstr(err, "cannot open the store"));
  free(err);
  err = NULL;
  assert_int_equal(access(p, F_OK), -1); /* never created */

  snprintf(p, sizeof p, "%s/other.db", dir);
  sqlite3 *other;
  assert_int_equal(sqlite3_open(p, &other), SQLITE_OK);
  sqlite3_exec(other, "CREATE TABLE x(y)", NULL, NULL, NULL);
  sqlite3_close(other);
  assert_int_equal(okegw_store_open_direct(p, 1, &s, &err), OKEGW_STORE_OK);
  okegw_delivery_filter f = {.state = -1};
  seen x = {0};
  assert_int_equal(okegw_store_deliveries_list(s, &f, on_row, &x, &err), OKEGW_STORE_BADFILE);
  assert_non_null(strstr(err, "no such table: deliveries (is this an okegw store?)"));
  free(err);
  err = NULL;
  okegw_delivery_rec r;
  assert_int_equal(okegw_store_deliveries_get(s, 1, 1, &r, &err), OKEGW_STORE_BADFILE);
  free(err);
  err = NULL;
  long long one = 1;
  assert_int_equal(okegw_store_deliveries_drop(s, &one, 1, on_change, NULL, &err),
                   OKEGW_STORE_BADFILE);
  free(err);
  err = NULL;
  okegw_audit_filter af = {0};
  assert_int_equal(okegw_store_audit_query(s, &af, on_audit, NULL, &err), OKEGW_STORE_BADFILE);
  free(err);
  /* a direct store queues nothing: it has no thread */
  assert_int_equal(okegw_store_lookup(s, "component", "x", NULL, NULL), OKEGW_STORE_ERROR);
  okegw_store_close(s, NULL, NULL);
}

typedef struct {
  int done;
  okegw_route r;
} route_waiter;

static void on_route(void *ud, const okegw_route *r) {
  route_waiter *w = ud;
  w->r = *r;
  w->done = 1;
}

static okegw_route lookup_route(uv_loop_t *loop, okegw_store *s, const char *kind, const char *id) {
  route_waiter w = {0};
  assert_int_equal(okegw_store_lookup(s, kind, id, on_route, &w), OKEGW_STORE_OK);
  while (!w.done)
    uv_run(loop, UV_RUN_ONCE);
  return w.r;
}

/* Lookups do not wait for writes (their own connection), except for a
 * route write asked for before them, which they must see. Another
 * connection holds the write lock, so the writer is stuck in BEGIN. */
static void lookups_beside_writes(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  const char *id = "11111111-0000-4000-8000-000000000001";
  route_waiter put = {0};
  assert_int_equal(okegw_store_put(s, "component", &id, 1, "ta", NULL, on_route, &put),
                   OKEGW_STORE_OK);
  while (!put.done)
    uv_run(&loop, UV_RUN_ONCE);

  sqlite3 *raw = NULL;
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  okegw_audit_rec a = {.request_id = "req-locked", .status = 200};
  assert_int_equal(okegw_store_audit(s, &a), OKEGW_STORE_OK); /* the writer now waits */
  uint64_t t0 = uv_hrtime();
  okegw_route r = lookup_route(&loop, s, "component", id);
  assert_int_equal(r.rc, OKEGW_STORE_OK);
  assert_string_equal(r.connector, "ta");
  assert_true(uv_hrtime() - t0 < 2000000000ULL); /* not after the writer's 5 s busy wait */

  /* a route write asked for first: the lookup after it sees it */
  const char *id2 = "22222222-0000-4000-8000-000000000002";
  assert_int_equal(okegw_store_put(s, "component", &id2, 1, "tb", NULL, NULL, NULL),
                   OKEGW_STORE_OK);
  route_waiter w = {0};
  assert_int_equal(okegw_store_lookup(s, "component", id2, on_route, &w), OKEGW_STORE_OK);
  uv_sleep(300);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_false(w.done); /* behind the write, which waits for the lock */
  assert_int_equal(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(raw);
  while (!w.done)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(w.r.rc, OKEGW_STORE_OK);
  assert_string_equal(w.r.connector, "tb");
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A second loop on a thread of its own, feeding the store through a port:
 * its callbacks run on its thread, the main loop's on the main thread. */
typedef struct port_worker {
  okegw_store *s;
  int n;         /* routes to write and read back */
  int on_thread; /* callbacks that ran on this thread */
  int found;     /* lookups that found what this thread wrote */
  int closed;    /* the port's close callback ran */
  uv_thread_t self;
} port_worker;

typedef struct port_call {
  port_worker *w;
  int done;
} port_call;

static void on_port_route(void *ud, const okegw_route *r) {
  port_call *c = ud;
  uv_thread_t me = uv_thread_self();
  c->w->on_thread += uv_thread_equal(&me, &c->w->self);
  c->w->found += r->rc == OKEGW_STORE_OK && strcmp(r->connector, "worker") == 0;
  c->done = 1;
}

static void on_port_closed(void *arg) { ((port_worker *)arg)->closed = 1; }
static void on_port_closed_flag(void *arg) { *(int *)arg = 1; }

static void port_thread(void *arg) {
  port_worker *w = arg;
  w->self = uv_thread_self();
  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store_port *p = NULL;
  assert_int_equal(okegw_store_port_open(w->s, &loop, &p), OKEGW_STORE_OK);
  okegw_store_port_bind(p);
  for (int i = 0; i < w->n; i++) {
    char id[64];
    snprintf(id, sizeof id, "worker-%d", i);
    const char *ids[] = {id};
    port_call put = {w, 0}, get = {w, 0};
    assert_int_equal(
        okegw_store_put(w->s, "component", ids, 1, "worker", NULL, on_port_route, &put),
        OKEGW_STORE_OK);
    while (!put.done)
      uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(okegw_store_lookup(w->s, "component", id, on_port_route, &get),
                     OKEGW_STORE_OK);
    while (!get.done)
      uv_run(&loop, UV_RUN_ONCE);
  }
  okegw_store_port_close(p, on_port_closed, w);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void ports_of_two_loops(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  port_worker w = {.s = s, .n = 200};
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, port_thread, &w), 0);
  /* the main loop writes and reads meanwhile, through the built-in port */
  uv_thread_t main_self = uv_thread_self();
  for (int i = 0; i < 200; i++) {
    char id[64];
    snprintf(id, sizeof id, "main-%d", i);
    const char *ids[] = {id};
    route_waiter put = {0};
    assert_int_equal(okegw_store_put(s, "component", ids, 1, "main", NULL, on_route, &put),
                     OKEGW_STORE_OK);
    while (!put.done)
      uv_run(&loop, UV_RUN_ONCE);
    okegw_route r = lookup_route(&loop, s, "component", id);
    assert_int_equal(r.rc, OKEGW_STORE_OK);
    assert_string_equal(r.connector, "main");
    uv_thread_t me = uv_thread_self();
    assert_true(uv_thread_equal(&me, &main_self));
  }
  uv_thread_join(&t);
  assert_int_equal(w.on_thread, 2 * w.n);
  assert_int_equal(w.found, 2 * w.n);
  assert_true(w.closed);

  /* a job submitted from a thread whose port closed is refused, not lost
   * in a queue nobody empties */
  okegw_store_port *p = NULL;
  assert_int_equal(okegw_store_port_open(s, &loop, &p), OKEGW_STORE_OK);
  okegw_store_port_bind(p);
  int closed = 0;
  okegw_store_port_close(p, on_port_closed_flag, &closed);
  route_waiter after = {0};
  assert_int_equal(okegw_store_lookup(s, "component", "main-1", on_route, &after), OKEGW_STORE_OK);
  while (!after.done) /* unbound by the close: it goes back to the main port */
    uv_run(&loop, UV_RUN_ONCE);
  assert_string_equal(after.r.connector, "main");
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(closed);
  assert_int_equal(uv_loop_close(&loop), 0);
}

#define U1 "ABCDEF01-0000-4000-8000-00000000000A"
#define U2 "ABCDEF02-0000-4000-8000-00000000000B"
#define U3 "ABCDEF03-0000-4000-8000-00000000000C"

/* A store of schema 1 with upper-case ids: lowered once at open, a newer
 * lower-case row wins, open deliveries join their resource's order. */
static void upper_case_ids_migrated(void **state) {
  (void)state;
  fill();
  sqlite3 *raw = NULL;
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw,
                                "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
                                "DROP INDEX deliveries_ended;"
                                "CREATE INDEX deliveries_ended ON deliveries(updated_ms) WHERE "
                                "state IN ('delivered', 'failed', 'dropped');"
                                "INSERT INTO routes(kind, id, connector, parent) VALUES "
                                "('association', '" U1 "', 'ta', '" U2 "'),"
                                "('ta_person', '" U2 "@ta', 'ta', NULL),"
                                "('offering', '" U3 "', 'old', NULL),"
                                "('offering', lower('" U3 "'), 'new', NULL),"
                                "('component', 'NOT-A-UUID', 'ta', NULL);"
                                "UPDATE deliveries SET resource = '/associations/" U1 "', "
                                "  resource_id = '" U1 "' WHERE state IN ('pending', 'dead');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(raw);

  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  okegw_route r = lookup_route(&loop, s, "association", "abcdef01-0000-4000-8000-00000000000a");
  assert_int_equal(r.rc, OKEGW_STORE_OK);
  assert_string_equal(r.parent, "abcdef02-0000-4000-8000-00000000000b");
  r = lookup_route(&loop, s, "association", U1);
  assert_int_equal(r.rc, OKEGW_STORE_NOTFOUND);
  r = lookup_route(&loop, s, "ta_person", "abcdef02-0000-4000-8000-00000000000b@ta");
  assert_int_equal(r.rc, OKEGW_STORE_OK);
  r = lookup_route(&loop, s, "offering", "abcdef03-0000-4000-8000-00000000000c");
  assert_int_equal(r.rc, OKEGW_STORE_OK);
  assert_string_equal(r.connector, "new");
  r = lookup_route(&loop, s, "offering", U3);
  assert_int_equal(r.rc, OKEGW_STORE_NOTFOUND);
  r = lookup_route(&loop, s, "component", "NOT-A-UUID");
  assert_int_equal(r.rc, OKEGW_STORE_OK);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(
      sqlite3_prepare_v2(raw,
                         "SELECT (SELECT value FROM meta WHERE key = 'schema_version'), "
                         "(SELECT count(*) FROM deliveries WHERE resource = "
                         "'/associations/abcdef01-0000-4000-8000-00000000000a' AND resource_id = "
                         "'abcdef01-0000-4000-8000-00000000000a'), "
                         "(SELECT sql FROM sqlite_master WHERE name = 'deliveries_ended')",
                         -1, &st, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "5");
  assert_int_equal(sqlite3_column_int(st, 1), 3);
  /* schema 5: the ended index without the IN list of three */
  assert_non_null(strstr((const char *)sqlite3_column_text(st, 2), "NOT IN ('pending', 'dead')"));
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

/* ---- phase history ---- */

typedef struct phase_waiter {
  int done, rc;
  size_t n;
  long long ids[8], at[8];
  char connector[8][OKEGW_NAME_MAX], from[8][16], to[8][16];
} phase_waiter;

static void on_phases(void *ud, int rc, const okegw_phase_rec *recs, size_t n) {
  phase_waiter *w = ud;
  w->done = 1;
  w->rc = rc;
  w->n = n;
  for (size_t i = 0; i < n && i < 8; i++) {
    w->ids[i] = recs[i].id;
    w->at[i] = recs[i].at_ms;
    snprintf(w->connector[i], sizeof w->connector[i], "%s", recs[i].connector);
    snprintf(w->from[i], sizeof w->from[i], "%s", recs[i].from ? recs[i].from : "(null)");
    snprintf(w->to[i], sizeof w->to[i], "%s", recs[i].to);
  }
}

static phase_waiter record(uv_loop_t *loop, okegw_store *s, const okegw_phase_change *c, size_t n) {
  phase_waiter w = {0};
  assert_int_equal(okegw_store_phase_record(s, c, n, on_phases, &w), OKEGW_STORE_OK);
  while (!w.done)
    uv_run(loop, UV_RUN_ONCE);
  return w;
}

static phase_waiter last_phases(uv_loop_t *loop, okegw_store *s) {
  phase_waiter w = {0};
  assert_int_equal(okegw_store_phase_last(s, on_phases, &w), OKEGW_STORE_OK);
  while (!w.done)
    uv_run(loop, UV_RUN_ONCE);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  return w;
}

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* The gateway's side: what it records at a start or reload and what it
 * asks at the next start. */
static void record_phases(uv_loop_t *loop, okegw_store *s) {
  phase_waiter w = last_phases(loop, s);
  assert_int_equal(w.n, 0); /* nothing recorded yet */

  okegw_phase_change first[] = {
      {.at_ms = T0, .connector = "ta-b", .to = "live", .config_sha256 = SHA_A},
      {.at_ms = T0,
       .connector = "ta-a",
       .from = "",
       .to = "shadow",
       .reason = "besluit EC 2026-11-28: schaduw",
       .config_sha256 = SHA_A},
  };
  w = record(loop, s, first, 2);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  assert_int_equal(w.n, 2);
  assert_true(w.ids[0] > 0 && w.ids[1] == w.ids[0] + 1); /* in the order given */
  assert_string_equal(w.from[1], "(null)");              /* "" is a new connector too */

  okegw_phase_change second[] = {{.connector = "ta-a",
                                  .from = "shadow",
                                  .to = "pilot",
                                  .reason = "GO voor ROC pilot",
                                  .config_sha256 = SHA_B}};
  long long before = okegw_wall_ms();
  w = record(loop, s, second, 1);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  assert_true(w.at[0] >= before && w.at[0] <= okegw_wall_ms()); /* at_ms 0: now */

  /* a change without its connector or phase is refused, cb not run */
  okegw_phase_change bad[] = {{.connector = "ta-a", .from = "pilot"}};
  phase_waiter none = {0};
  assert_int_equal(okegw_store_phase_record(s, bad, 1, on_phases, &none), OKEGW_STORE_ERROR);
  bad[0] = (okegw_phase_change){.to = "live"};
  assert_int_equal(okegw_store_phase_record(s, bad, 1, on_phases, &none), OKEGW_STORE_ERROR);
  assert_int_equal(none.done, 0);
  /* nothing to record: cb may be NULL */
  assert_int_equal(okegw_store_phase_record(s, NULL, 0, NULL, NULL), OKEGW_STORE_OK);

  w = last_phases(loop, s);
  assert_int_equal(w.n, 2);
  assert_string_equal(w.connector[0], "ta-a"); /* by name */
  assert_string_equal(w.to[0], "pilot");
  assert_string_equal(w.from[0], "shadow");
  assert_string_equal(w.connector[1], "ta-b");
  assert_string_equal(w.to[1], "live");
}

static int on_phase_row(void *ud, const okegw_phase_rec *r) {
  char **out = ud;
  cJSON *o = okegw_phase_json(r);
  assert_non_null(o);
  char *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  char *both = okegw_asprintf("%s%s\n", *out ? *out : "", line);
  free(line);
  free(*out);
  *out = both;
  return 0;
}

static char *list_phases(okegw_store *s, const char *connector, long limit) {
  okegw_phase_filter f = {.connector = connector, .limit = limit};
  char *out = NULL, *err = NULL;
  assert_int_equal(okegw_store_phases_list(s, &f, on_phase_row, &out, &err), OKEGW_STORE_OK);
  assert_null(err);
  return out;
}

#define ROW_B                                                                                      \
  "{\"at\":\"2026-12-03T10:44:18.123Z\",\"connector\":\"ta-b\",\"from\":null,\"to\":\"live\","     \
  "\"reason\":null,\"configSha256\":\"" SHA_A "\"}\n"
#define ROW_A1                                                                                     \
  "{\"at\":\"2026-12-03T10:44:18.123Z\",\"connector\":\"ta-a\",\"from\":null,\"to\":\"shadow\","   \
  "\"reason\":\"besluit EC 2026-11-28: schaduw\",\"configSha256\":\"" SHA_A "\"}\n"

static void phase_history(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  record_phases(&loop, s);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  /* read back by an operator command, oldest first */
  assert_int_equal(okegw_store_open_direct(db, 0, &s, &err), OKEGW_STORE_OK);
  char *out = list_phases(s, NULL, 0);
  assert_non_null(out);
  assert_memory_equal(out, ROW_B ROW_A1, strlen(ROW_B ROW_A1));
  const char *third = out + strlen(ROW_B ROW_A1);
  assert_non_null(strstr(third,
                         "\"connector\":\"ta-a\",\"from\":\"shadow\",\"to\":\"pilot\","
                         "\"reason\":\"GO voor ROC pilot\",\"configSha256\":\"" SHA_B "\"}\n"));
  assert_string_equal(strchr(third, '\n'), "\n");
  free(out);
  out = list_phases(s, "ta-b", 0);
  assert_string_equal(out, ROW_B);
  free(out);
  out = list_phases(s, "ta-a", 0);
  assert_true(strncmp(out, ROW_A1, strlen(ROW_A1)) == 0);
  free(out);
  /* --limit: the last N, still oldest first */
  out = list_phases(s, NULL, 2);
  assert_true(strncmp(out, ROW_A1, strlen(ROW_A1)) == 0);
  assert_non_null(strstr(out, "\"to\":\"pilot\""));
  free(out);
  assert_null(list_phases(s, "nobody", 0));
  okegw_store_close(s, NULL, NULL);
}

/* The rows of one record call are all written or none: a row the database
 * refuses takes the others of its call back, not those of other jobs. */
static void phase_record_all_or_nothing(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  okegw_store *s = NULL;
  char *err = NULL;
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  sqlite3 *raw = NULL;
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw,
                                "CREATE TRIGGER refuse BEFORE INSERT ON phase_history WHEN "
                                "NEW.connector = 'refused' BEGIN SELECT RAISE(ABORT, 'no'); END",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(raw);
  okegw_phase_change c[] = {{.connector = "ta-a", .to = "live"},
                            {.connector = "refused", .to = "live"}};
  okegw_audit_rec a = {.request_id = "req-9", .status = 200, .phase = "live"};
  phase_waiter w = {0};
  /* both in the same group commit */
  assert_int_equal(okegw_store_phase_record(s, c, 2, on_phases, &w), OKEGW_STORE_OK);
  assert_int_equal(okegw_store_audit(s, &a), OKEGW_STORE_OK);
  while (!w.done)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(w.rc, OKEGW_STORE_ERROR);
  assert_int_equal(w.n, 0);
  phase_waiter l = last_phases(&loop, s);
  assert_int_equal(l.n, 0);
  w = record(&loop, s, c, 1);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_int_equal(okegw_store_open_direct(db, 0, &s, &err), OKEGW_STORE_OK);
  char *out = list_phases(s, NULL, 0);
  assert_non_null(strstr(out, "\"connector\":\"ta-a\""));
  assert_string_equal(strchr(out, '\n'), "\n"); /* one row */
  free(out);
  out = NULL;
  okegw_audit_filter f = {0};
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &out, &err), OKEGW_STORE_OK);
  assert_non_null(strstr(out, "\"request_id\":\"req-9\""));
  assert_non_null(strstr(out, "\"phase\":\"live\"}"));
  free(out);
  okegw_store_close(s, NULL, NULL);
}

static const char *schema_of(sqlite3 *raw) {
  static char v[16];
  sqlite3_stmt *st = NULL;
  assert_int_equal(
      sqlite3_prepare_v2(raw, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  snprintf(v, sizeof v, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return v;
}

/* A store of schema 2 (as okegw wrote it before phase history): operator
 * commands read it as it is; the gateway upgrades it at open. */
static void schema_2_migrated(void **state) {
  (void)state;
  fill();
  sqlite3 *raw = NULL;
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw,
                                "DROP TABLE phase_history;"
                                "ALTER TABLE audit DROP COLUMN phase;"
                                "UPDATE meta SET value = '2' WHERE key = 'schema_version';",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(raw);

  /* before the gateway opened it: no history, audit rows without a phase */
  okegw_store *s = NULL;
  char *err = NULL, *out = NULL;
  assert_int_equal(okegw_store_open_direct(db, 0, &s, &err), OKEGW_STORE_OK);
  assert_null(list_phases(s, NULL, 0));
  okegw_audit_filter f = {0};
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &out, &err), OKEGW_STORE_OK);
  assert_non_null(strstr(out, "\"event\":\"request\",\"phase\":null}\n"));
  assert_non_null(strstr(out, "\"event\":\"delivery\",\"phase\":null}\n"));
  free(out);
  out = NULL;
  okegw_store_close(s, NULL, NULL);

  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  okegw_phase_change c = {.connector = "ta-a", .to = "shadow"};
  phase_waiter w = record(&loop, s, &c, 1);
  assert_int_equal(w.rc, OKEGW_STORE_OK);
  okegw_audit_rec a = {.request_id = "req-new", .status = 200, .phase = "shadow"};
  assert_int_equal(okegw_store_audit(s, &a), OKEGW_STORE_OK);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_string_equal(schema_of(raw), "5");
  sqlite3_close(raw);
  assert_int_equal(okegw_store_open_direct(db, 0, &s, &err), OKEGW_STORE_OK);
  out = list_phases(s, NULL, 0);
  assert_non_null(strstr(out, "\"connector\":\"ta-a\",\"from\":null,\"to\":\"shadow\""));
  free(out);
  out = NULL;
  assert_int_equal(okegw_store_audit_query(s, &f, on_audit, &out, &err), OKEGW_STORE_OK);
  assert_non_null(strstr(out, "\"event\":\"delivery\",\"phase\":null}\n")); /* old rows */
  assert_non_null(strstr(out, "\"request_id\":\"req-new\""));
  assert_non_null(strstr(out, "\"phase\":\"shadow\"}\n"));
  free(out);
  okegw_store_close(s, NULL, NULL);

  /* opening a store of schema 4 again changes nothing */
  uv_loop_init(&loop);
  assert_int_equal(okegw_store_open(&loop, db, "normal", &s, &err), OKEGW_STORE_OK);
  assert_int_equal(last_phases(&loop, s).n, 1);
  okegw_store_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(states),
      cmocka_unit_test(public_shape),
      cmocka_unit_test(public_is_a_subset),
      cmocka_unit_test(full_shape_and_body),
      cmocka_unit_test_setup_teardown(direct_deliveries, setup, teardown),
      cmocka_unit_test_setup_teardown(direct_audit, setup, teardown),
      cmocka_unit_test_setup_teardown(not_a_store, setup, teardown),
      cmocka_unit_test_setup_teardown(upper_case_ids_migrated, setup, teardown),
      cmocka_unit_test_setup_teardown(lookups_beside_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(ports_of_two_loops, setup, teardown),
      cmocka_unit_test_setup_teardown(phase_history, setup, teardown),
      cmocka_unit_test_setup_teardown(phase_record_all_or_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(schema_2_migrated, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
