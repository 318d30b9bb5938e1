/* Event loops (see workers.h). */
#include "pipeline/workers.h"
#include "base/log.h"
#include "base/util.h"
#include "connector/mapping.h"
#include "ops/metrics.h"
#include "pipeline/gateway.h"
#include "pipeline/generation.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages between loops ------------------------------------------------ */

typedef struct okegw_msg {
  struct okegw_msg *next;
  void (*run)(struct okegw_msg *m);
} okegw_msg;

/* A loop's letterbox. Posting and closing hold the mutex, so a post never
 * wakes a handle that is closed or closing. */
typedef struct inbox {
  uv_mutex_t mu;
  okegw_msg *head, **tail;
  uv_async_t async;
  int open; /* under mu */
} inbox;

static void on_inbox(uv_async_t *a) {
  inbox *in = a->data;
  uv_mutex_lock(&in->mu);
  okegw_msg *m = in->head;
  in->head = NULL;
  in->tail = &in->head;
  uv_mutex_unlock(&in->mu);
  for (okegw_msg *next; m; m = next) {
    next = m->next;
    m->run(m);
  }
}

/* Opens the inbox on loop; its mutex is made (and destroyed) by the owner
 * of the memory, so that a post to a loop that never opened is refused. */
static int inbox_open(inbox *in, uv_loop_t *loop) {
  in->head = NULL;
  in->tail = &in->head;
  if (uv_async_init(loop, &in->async, on_inbox) != 0)
    return -1;
  in->async.data = in;
  uv_mutex_lock(&in->mu);
  in->open = 1;
  uv_mutex_unlock(&in->mu);
  return 0;
}

/* 0, or -1 when the loop no longer takes messages (m is then not run). */
static int post(inbox *in, okegw_msg *m) {
  m->next = NULL;
  uv_mutex_lock(&in->mu);
  int open = in->open;
  if (open) {
    *in->tail = m;
    in->tail = &m->next;
    uv_async_send(&in->async);
  }
  uv_mutex_unlock(&in->mu);
  return open ? 0 : -1;
}

/* Closes the inbox on its own loop; what is still in it runs first. */
static void inbox_close(inbox *in, uv_close_cb cb) {
  uv_mutex_lock(&in->mu);
  in->open = 0;
  uv_mutex_unlock(&in->mu);
  on_inbox(&in->async);
  uv_close((uv_handle_t *)&in->async, cb);
}

/* ---- the loops ------------------------------------------------------------- */

struct okegw_worker {
  okegw_workers *all;
  int index; /* 1 .. n-1 */
  uv_thread_t thread;
  int thread_made;
  uv_loop_t loop;
  inbox in;
  okegw_store_port *port;
  okegw_gateway *g; /* its gateway; NULL before it started and after it stopped */
  size_t relays;    /* pushes at loop 0 whose result has not come back */
  int releasing;    /* its gateway's stop waits for those */
  void (*released)(void *);
  void *released_arg;
  okegw_gen *pending; /* a reload's generation, built and not installed */
  okegw_diag diag;    /* the problems of the last step, for loop 0 */
  okegw_msg stop_msg, step_msg, stopped_msg;
  int commit; /* the second step: install (1) or drop (0) */
  int built;  /* the first step took */
  int port_closing;
};

struct okegw_workers {
  okegw_gateway *main;
  size_t n;     /* workers started (loops 1 .. n) */
  size_t nmade; /* workers whose memory is there (n - 1 of [gateway] workers) */
  okegw_worker *w;
  inbox in; /* loop 0's */
  /* loop 0 waits for a step of every worker */
  uv_mutex_t mu;
  uv_cond_t cv;
  size_t replies;         /* under mu */
  int failed;             /* under mu: some worker's step failed */
  size_t alive;           /* loop 0 only: threads that have not said they stopped */
  const okegw_gen *model; /* a reload's step 1: loop 0's new generation */
  void (*stopped)(okegw_gateway *g);
};

int okegw_workers_count(const okegw_conf *conf) {
  if (conf->workers > 0)
    return conf->workers;
  unsigned n = uv_available_parallelism();
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static void reply(okegw_worker *w, int ok) {
  okegw_workers *ws = w->all;
  uv_mutex_lock(&ws->mu);
  ws->replies++;
  if (!ok)
    ws->failed = 1;
  uv_cond_signal(&ws->cv);
  uv_mutex_unlock(&ws->mu);
}

/* Blocks loop 0 until `expect` workers replied; 0 when none failed. */
static int await_replies(okegw_workers *ws, size_t expect) {
  uv_mutex_lock(&ws->mu);
  while (ws->replies < expect)
    uv_cond_wait(&ws->cv, &ws->mu);
  int failed = ws->failed;
  ws->replies = 0;
  ws->failed = 0;
  uv_mutex_unlock(&ws->mu);
  return failed ? -1 : 0;
}

/* loop 0: a worker's thread is about to end */
static void run_stopped(okegw_msg *m) {
  okegw_worker *w = (okegw_worker *)((char *)m - offsetof(okegw_worker, stopped_msg));
  okegw_workers *ws = w->all;
  if (--ws->alive == 0 && ws->stopped) {
    void (*cb)(okegw_gateway *) = ws->stopped;
    ws->stopped = NULL;
    cb(ws->main);
  }
}

static void on_worker_inbox_closed(uv_handle_t *h) { (void)h; }

/* The worker's gateway has stopped (or never started): tell loop 0, and
 * let the loop end. */
static void worker_end(void *arg) {
  okegw_worker *w = arg;
  w->g = NULL;
  w->stopped_msg.run = run_stopped;
  if (post(&w->all->in, &w->stopped_msg) < 0)
    okegw_log(OKEGW_LOG_ERROR, NULL, "event loop %d: loop 0 no longer listens", w->index);
  inbox_close(&w->in, on_worker_inbox_closed);
}

static void run_stop(okegw_msg *m) {
  okegw_worker *w = (okegw_worker *)((char *)m - offsetof(okegw_worker, stop_msg));
  if (w->g)
    okegw_gateway_stop(w->g, worker_end, w);
}

static void worker_main(void *arg) {
  okegw_worker *w = arg;
  okegw_workers *ws = w->all;
  char name[16];
  snprintf(name, sizeof name, "okegw-loop-%d", w->index);
  pthread_setname_np(pthread_self(), name); /* top -H: the split over the loops */
  int rc = uv_loop_init(&w->loop);
  if (rc != 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "event loop %d: %s", w->index, uv_strerror(rc));
    w->stopped_msg.run = run_stopped;
    post(&ws->in, &w->stopped_msg);
    reply(w, 0);
    return;
  }
  if (inbox_open(&w->in, &w->loop) < 0 ||
      okegw_store_port_open(ws->main->store, &w->loop, &w->port) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "event loop %d: out of memory", w->index);
    if (w->in.open) {
      inbox_close(&w->in, on_worker_inbox_closed);
      uv_run(&w->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&w->loop);
    w->stopped_msg.run = run_stopped;
    post(&ws->in, &w->stopped_msg);
    reply(w, 0);
    return;
  }
  okegw_store_port_bind(w->port);
  okegw_gateway *g = NULL;
  rc = okegw_gateway_start_worker(&w->loop, ws->main, w, &g);
  w->g = g;
  reply(w, rc == 0);
  if (rc < 0 && g) {
    okegw_gateway_stop(g, worker_end, w);
  } else if (rc < 0) {
    okegw_store_port_bind(NULL);
    okegw_store_port_close(w->port, worker_end, w);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&w->loop) != 0)
    okegw_log(OKEGW_LOG_WARN, NULL, "event loop %d closed with handles still open", w->index);
  okegw_mapping_thread_end();
}

static void on_main_inbox_closed(uv_handle_t *h) {
  okegw_workers *ws = h->data;
  for (size_t i = 0; i < ws->nmade; i++)
    uv_mutex_destroy(&ws->w[i].in.mu);
  uv_mutex_destroy(&ws->in.mu);
  uv_mutex_destroy(&ws->mu);
  uv_cond_destroy(&ws->cv);
  free(ws->w);
  free(ws);
}

int okegw_workers_start(okegw_gateway *g, int n) {
  if (n <= 1)
    return 0;
  okegw_workers *ws = calloc(1, sizeof *ws);
  okegw_worker *w = calloc((size_t)n - 1, sizeof *w);
  int made = 0; /* mutexes: ws->mu, ws->in.mu, then each worker's: n + 1 */
  int ok = ws && w;
  while (ok && made < n + 1 &&
         (ok = uv_mutex_init(made == 0   ? &ws->mu
                             : made == 1 ? &ws->in.mu
                                         : &w[made - 2].in.mu) == 0))
    made++;
  int cond = ok && uv_cond_init(&ws->cv) == 0;
  if (!cond || inbox_open(&ws->in, g->loop) < 0) {
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory: no event loops but loop 0");
    for (int i = made - 1; i >= 0; i--)
      uv_mutex_destroy(i == 0 ? &ws->mu : i == 1 ? &ws->in.mu : &w[i - 2].in.mu);
    if (cond)
      uv_cond_destroy(&ws->cv);
    free(ws);
    free(w);
    return -1;
  }
  ws->main = g;
  ws->w = w;
  ws->nmade = (size_t)n - 1;
  g->workers = ws;
  /* one at a time: plugin init and libcurl's global init are not made for
   * threads starting together */
  for (int i = 1; i < n; i++) {
    okegw_worker *k = &w[i - 1];
    k->all = ws;
    k->index = i;
    if (uv_thread_create(&k->thread, worker_main, k) != 0) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "cannot start event loop %d", i);
      return -1;
    }
    k->thread_made = 1;
    ws->n++;
    ws->alive++;
    if (await_replies(ws, 1) < 0)
      return -1;
  }
  okegw_metrics_set_loops(g->metrics, n);
  okegw_log(OKEGW_LOG_INFO, NULL, "%d event loops serve requests", n);
  return 0;
}

/* ---- reload: two steps ------------------------------------------------------ */

static void run_prepare(okegw_msg *m) {
  okegw_worker *w = (okegw_worker *)((char *)m - offsetof(okegw_worker, step_msg));
  int ok = 0;
  /* the model is loop 0's, which waits meanwhile */
  if (w->g && w->g->gen && !w->g->stopping)
    ok = okegw_gen_build_like(w->g, w->all->model, w->g->gen, 1, &w->diag, &w->pending) == 0;
  w->built = ok;
  reply(w, ok);
}

static void run_finish(okegw_msg *m) {
  okegw_worker *w = (okegw_worker *)((char *)m - offsetof(okegw_worker, step_msg));
  okegw_gen *gen = w->pending;
  w->pending = NULL;
  if (gen && w->commit && w->g && !w->g->stopping)
    okegw_gateway_install_worker(w->g, gen);
  else if (gen)
    okegw_gen_unref(gen);
  reply(w, 1);
}

/* Posts a step to every worker that runs; the number posted. */
static size_t post_step(okegw_workers *ws, void (*run)(okegw_msg *)) {
  size_t sent = 0;
  for (size_t i = 0; i < ws->n; i++) {
    okegw_worker *w = &ws->w[i];
    w->step_msg.run = run;
    sent += post(&w->in, &w->step_msg) == 0;
  }
  return sent;
}

int okegw_workers_prepare(okegw_gateway *g, const okegw_gen *gen, okegw_diag *report) {
  okegw_workers *ws = g->workers;
  if (!ws)
    return 0;
  ws->model = gen;
  /* one loop at a time, as at start: a plugin's init need not be made for
   * threads running it together */
  int rc = 0;
  for (size_t i = 0; i < ws->n; i++) {
    okegw_worker *w = &ws->w[i];
    w->step_msg.run = run_prepare;
    w->built = 0;
    if (post(&w->in, &w->step_msg) == 0 && await_replies(ws, 1) < 0)
      rc = -1;
  }
  ws->model = NULL;
  for (size_t i = 0; i < ws->n; i++) {
    okegw_worker *w = &ws->w[i];
    /* loop 0 built the file: a worker's problems are its own (a plugin that
     * refused a second instance, no memory) */
    for (size_t k = 0; rc < 0 && k < w->diag.n; k++)
      okegw_diag_add_msg(report, w->diag.msgs[k]);
    if (rc < 0 && !w->built && !w->diag.n) {
      char line[96];
      snprintf(line, sizeof line, "event loop %d could not take the configuration", w->index);
      okegw_diag_add_msg(report, line);
    }
    okegw_diag_free(&w->diag);
  }
  if (rc < 0)
    okegw_workers_finish(g, 0);
  return rc;
}

void okegw_workers_finish(okegw_gateway *g, int commit) {
  okegw_workers *ws = g->workers;
  if (!ws)
    return;
  for (size_t i = 0; i < ws->n; i++)
    ws->w[i].commit = commit;
  await_replies(ws, post_step(ws, run_finish));
}

/* ---- stop ------------------------------------------------------------------- */

void okegw_workers_stop(okegw_gateway *g, void (*done)(okegw_gateway *g)) {
  okegw_workers *ws = g->workers;
  if (!ws || !ws->alive) {
    done(g);
    return;
  }
  ws->stopped = done;
  for (size_t i = 0; i < ws->n; i++) {
    ws->w[i].stop_msg.run = run_stop;
    post(&ws->w[i].in, &ws->w[i].stop_msg); /* refused: that one is ending already */
  }
}

void okegw_workers_free(okegw_gateway *g) {
  okegw_workers *ws = g->workers;
  if (!ws)
    return;
  g->workers = NULL;
  for (size_t i = 0; i < ws->n; i++)
    if (ws->w[i].thread_made)
      uv_thread_join(&ws->w[i].thread);
  ws->in.async.data = ws;
  uv_mutex_lock(&ws->in.mu);
  ws->in.open = 0;
  uv_mutex_unlock(&ws->in.mu);
  uv_close((uv_handle_t *)&ws->in.async, on_main_inbox_closed);
}

static void on_port_closed(void *arg) {
  okegw_worker *w = arg;
  w->port = NULL;
  w->releasing = 0;
  if (w->released)
    w->released(w->released_arg);
}

static void release_now(okegw_worker *w) {
  if (!w->port || w->port_closing)
    return;
  w->port_closing = 1;
  okegw_store_port_bind(NULL);
  okegw_store_port_close(w->port, on_port_closed, w);
}

int okegw_worker_index(const okegw_gateway *g) { return g->worker ? g->worker->index : 0; }

void okegw_worker_release(okegw_gateway *g, void (*done)(void *), void *arg) {
  okegw_worker *w = g->worker;
  w->releasing = 1;
  w->released = done;
  w->released_arg = arg;
  if (!w->relays)
    release_now(w);
}

/* ---- the outbox from a worker ------------------------------------------------ */

/* A worker's push on its way to loop 0 and its result on the way back. */
typedef struct relay {
  okegw_msg msg;
  okegw_worker *w;
  okegw_connector *conn; /* the worker's instance (its calls hold it) */
  okegw_push_cb cb;
  void *ud;
  const cJSON *parsed;
  okegw_push p; /* its strings are copies, owned */
  char *name;   /* conn's name, for loop 0's instance */
  /* the result */
  int rc;
  long long id;
  int has_answer, has_rec;
  okegw_answer a; /* strings owned */
  okegw_delivery_rec rec;
} relay;

#define PUSH_STRINGS(p)                                                                            \
  {                                                                                                \
    &(p)->caller, &(p)->resource_id, &(p)->resource, &(p)->method, &(p)->path, &(p)->query,        \
        &(p)->content_type, &(p)->body_sha256, &(p)->request_id                                    \
  }
#define PUSH_STRINGS_OF(p)                                                                         \
  {                                                                                                \
    (p)->caller, (p)->resource_id, (p)->resource, (p)->method, (p)->path, (p)->query,              \
        (p)->content_type, (p)->body_sha256, (p)->request_id                                       \
  }

static void relay_free(relay *r) {
  const char **ps[] = PUSH_STRINGS(&r->p);
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    free((char *)*ps[i]);
  free((char *)r->p.body);
  okegw_answer_copy_free(&r->a);
  if (r->has_rec)
    okegw_delivery_rec_free(&r->rec);
  free(r->name);
  free(r);
}

/* the worker: its push's result */
static void run_result(okegw_msg *m) {
  relay *r = (relay *)m;
  okegw_worker *w = r->w;
  w->relays--;
  r->a.conn = r->conn;
  okegw_push_result res = {.rc = r->rc,
                           .id = r->id,
                           .answer = r->has_answer ? &r->a : NULL,
                           .rec = r->has_rec ? &r->rec : NULL};
  r->cb(r->ud, &res);
  relay_free(r);
  if (w->releasing && !w->relays)
    release_now(w);
}

static void send_back(relay *r) {
  r->msg.run = run_result;
  if (post(&r->w->in, &r->msg) < 0) /* cannot be: a worker ends after its results */
    okegw_log(OKEGW_LOG_ERROR, NULL, "event loop %d has gone: a push's result is lost",
              r->w->index);
}

/* loop 0: the outbox has a result (copied: it lives only during the call) */
static void on_relayed(void *ud, const okegw_push_result *res) {
  relay *r = ud;
  r->rc = res->rc;
  r->id = res->id;
  int ok = 1;
  if (res->answer)
    ok = r->has_answer = okegw_answer_copy(&r->a, res->answer) == 0;
  if (res->rec) { /* for the 202's public view: without the body */
    okegw_delivery_rec rec = *res->rec;
    rec.body = NULL;
    rec.body_len = 0;
    r->has_rec = okegw_delivery_rec_copy(&r->rec, &rec) == 0;
    ok &= r->has_rec;
  }
  if (!ok && r->rc == OKEGW_STORE_OK) {
    /* stored all the same: a sender told to send again makes a duplicate,
     * which delivery is at least once anyway */
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory: delivery %lld answered 503", r->id);
    r->rc = OKEGW_STORE_ERROR;
  }
  send_back(r);
}

/* loop 0: a worker's push into the outbox */
static void run_push(okegw_msg *m) {
  relay *r = (relay *)m;
  okegw_gateway *g = r->w->all->main;
  okegw_connector *conn = g->gen ? okegw_connector_by_name(g->gen, r->name) : NULL;
  int rc = conn ? okegw_outbox_push(g->outbox, conn, &r->p, r->parsed, on_relayed, r) : -1;
  if (rc < 0) {
    r->rc = rc;
    send_back(r);
  }
}

int okegw_gateway_push(okegw_gateway *g, okegw_connector *conn, const okegw_push *p,
                       const cJSON *parsed, okegw_push_cb cb, void *ud) {
  if (g->outbox)
    return okegw_outbox_push(g->outbox, conn, p, parsed, cb, ud);
  relay *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  *r = (relay){.w = g->worker,
               .conn = conn,
               .cb = cb,
               .ud = ud,
               .parsed = parsed,
               .p = {.interaction = p->interaction, .body_len = p->body ? p->body_len : 0}};
  const char **to[] = PUSH_STRINGS(&r->p);
  const char *const from[] = PUSH_STRINGS_OF(p);
  int ok = (r->name = okegw_strdup(conn->conf->name)) != NULL;
  for (size_t i = 0; i < sizeof to / sizeof to[0]; i++)
    if (from[i] && !(*to[i] = okegw_strdup(from[i])))
      ok = 0;
  if (p->body && !(r->p.body = okegw_strndup(p->body, p->body_len)))
    ok = 0;
  r->msg.run = run_push;
  if (!ok || post(&g->main->workers->in, &r->msg) < 0) {
    relay_free(r);
    return -1;
  }
  g->worker->relays++;
  return 0;
}

static const okegw_gateway *outbox_owner(const okegw_gateway *g) { return g->main ? g->main : g; }

long okegw_gateway_outbox_room(const okegw_gateway *g) {
  const okegw_gateway *o = outbox_owner(g);
  if (!o->outbox || !g->gen)
    return 0;
  long used = (long)okegw_outbox_used(o->outbox), max = g->gen->conf->outbox_max_open;
  return used >= max ? 0 : max - used;
}

int okegw_gateway_outbox_full(const okegw_gateway *g) { return okegw_gateway_outbox_room(g) == 0; }

size_t okegw_gateway_outbox_depth(const okegw_gateway *g) {
  return okegw_outbox_depth(outbox_owner(g)->outbox);
}
