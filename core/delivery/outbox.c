/* The outbox (see outbox.h). Everything here runs on the loop thread; the
 * store thread only writes and reads rows.
 *
 * In memory: one resource queue per (connector, resource) holding its open
 * deliveries in id order (found through a POSIX tsearch tree), a FIFO of
 * queues whose head may go now per connector, a list of queues whose head
 * waits for its next try, and the senders still waiting for an answer. One
 * timer (the tick) fires when the next of those is due; a 1 s poll picks up
 * what an operator changed with `okegw deliveries` and prunes by retention. */
#include "delivery/outbox.h"
#include "oke/interaction.h"
#include "base/log.h"
#include "base/util.h"
#include "ops/metrics.h"

#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define POLL_MS 1000
#define PRUNE_EVERY 60 /* polls */
/* Bodies held in memory: past this, a delivery that waits its turn keeps
 * only its metadata and reads its row again when it is attempted. One that
 * waits for a retry or an operator never keeps its body. So memory does
 * not grow with the bodies of a long outage. */
#define BODIES_MAX (16u << 20)

enum phase {
  P_ADDING,  /* being written; not in a queue yet */
  P_QUEUED,  /* behind another delivery of its resource */
  P_READY,   /* head, in its connector's ready FIFO */
  P_TIMED,   /* head, waiting for next_ms */
  P_FLIGHT,  /* head, an attempt is running */
  P_ENDING,  /* head, its end is being written */
  P_STALLED, /* head, writing its end failed: written again from the tick */
  P_DEAD     /* head, dead-lettered: holds its resource until an operator acts */
};

typedef struct rq rq;
typedef struct dlv dlv;

struct dlv {
  okegw_delivery_rec r;
  okegw_outbox *ob;
  size_t ci; /* index of its connector's state (by name) */
  /* the instance it was handed to (push) or is attempted on; alive while it
   * has this delivery's exchange or its sender in flight */
  okegw_connector *conn;
  int interaction;
  enum phase phase;
  rq *q;
  dlv *next;     /* in its resource queue, by id */
  int dropped;   /* an operator dropped it during an attempt */
  int slim;      /* only metadata in memory: the attempt reads its row first */
  int drop_body; /* its end forgets the body */
  long long end_again_at;
  /* the audit row of the attempt that ended it, one block (audit_dup),
   * kept until the end is written: a failed write takes the row back with
   * it, and the next try writes both again */
  okegw_audit_rec *end_audit;
  okegw_route_write *writes; /* what its end records besides (delivered only) */
  size_t nwrites;
  /* the peer's answer, held for the waiting sender until the routes it
   * opens are written: a sender told 2xx may at once send what needs them
   * (a result on the return route), maybe through another event loop */
  okegw_answer *held;
  dlv *snext; /* stalled list */
  double started;
  /* the sender, while it waits */
  okegw_push_cb cb;
  void *cb_ud;
  const cJSON *parsed;
  long long wait_until;
  dlv *wprev, *wnext;
};

struct rq {
  char *key; /* connector "\n" resource */
  size_t ci;
  dlv *head, *tail;
  rq *rnext;         /* connector's ready FIFO */
  rq *tprev, *tnext; /* timed list */
  rq *aprev, *anext; /* every queue */
};

/* One connector name. Its instance changes with reloads; NULL while the
 * running configuration has no such connector: its deliveries wait. */
typedef struct cstate {
  char name[OKEGW_NAME_MAX];
  okegw_connector *conn;
  int had; /* okegw_outbox_use: it had an instance before */
  size_t in_flight;
  int pumping; /* pump() is on the stack: it picks up what frees meanwhile */
  rq *rhead, *rtail;
} cstate;

struct okegw_outbox {
  uv_loop_t *loop;
  okegw_store *store;
  const okegw_conf *conf;
  cstate **cs; /* one per connector name ever seen */
  size_t ncs;
  void *tree;
  rq *all, *timed;
  dlv *waiting;
  dlv *stalled;
  /* read by other loops' threads (okegw_outbox_used): changed atomically */
  size_t depth;      /* deliveries in queues */
  size_t adding;     /* pushes being stored */
  size_t flying;     /* attempts running */
  size_t jobs;       /* store jobs that call back here */
  size_t body_bytes; /* of the bodies deliveries hold in memory */
  uv_timer_t tick, poll;
  int tick_on, loaded, loading, closing, handles_open, polling;
  /* leases (store.h; PostgreSQL): the lapses seen so far, and whether an
   * attempt waited for the lease to be renewed (the tick pumps again) */
  unsigned lapses;
  int gated;
  long long tick_at; /* when the armed tick fires */
  unsigned polls;
  okegw_delivered_fn delivered;
  void *ud;
  uint64_t rnd;
};

static uint64_t rnd(okegw_outbox *ob) {
  /* xorshift64: jitter needs spread, not secrecy */
  uint64_t x = ob->rnd;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return ob->rnd = x;
}

static void dlv_free(dlv *d) {
  if (d->ob && d->r.body)
    d->ob->body_bytes -= d->r.body_len;
  okegw_delivery_rec_free(&d->r);
  free(d->writes);
  free(d->end_audit);
  if (d->held)
    okegw_answer_copy_free(d->held);
  free(d->held);
  free(d);
}

/* The string members of an audit row. */
#define AUDIT_STRINGS(r)                                                                           \
  {                                                                                                \
    &(r)->request_id, &(r)->interaction, &(r)->caller, &(r)->connector, &(r)->method, &(r)->path,  \
        &(r)->resource_id, &(r)->mapping, &(r)->body_sha256, &(r)->event, &(r)->rules,             \
        &(r)->phase, &(r)->differences, &(r)->violations, &(r)->mapping_error                      \
  }

/* a, with every string it points at, in one block (free() it); NULL when
 * out of memory. */
static okegw_audit_rec *audit_dup(const okegw_audit_rec *a) {
  okegw_audit_rec tmp = *a;
  const char **from[] = AUDIT_STRINGS(&tmp);
  size_t n = sizeof from / sizeof from[0], len = sizeof tmp;
  for (size_t i = 0; i < n; i++)
    len += *from[i] ? strlen(*from[i]) + 1 : 0;
  okegw_audit_rec *c = malloc(len);
  if (!c)
    return NULL;
  *c = tmp;
  const char **to[] = AUDIT_STRINGS(c);
  char *at = (char *)(c + 1);
  for (size_t i = 0; i < n; i++) {
    if (*from[i]) {
      size_t l = strlen(*from[i]) + 1;
      memcpy(at, *from[i], l);
      *to[i] = at;
      at += l;
    }
  }
  return c;
}

static void maybe_free(okegw_outbox *ob) {
  if (ob->closing && !ob->handles_open && !ob->flying && !ob->jobs) {
    for (size_t i = 0; i < ob->ncs; i++)
      free(ob->cs[i]);
    free(ob->cs);
    free(ob);
  }
}

static const okegw_conf_connector *cconf(const dlv *d) { return d->conn->conf; }

/* The state of connector `name`, added (without an instance) when create. */
static size_t cs_index(okegw_outbox *ob, const char *name, int create) {
  for (size_t i = 0; i < ob->ncs; i++)
    if (strcmp(ob->cs[i]->name, name) == 0)
      return i;
  if (!create || strlen(name) >= OKEGW_NAME_MAX)
    return (size_t)-1;
  /* each state stays where it is: callers hold pointers to it */
  cstate **grown = realloc(ob->cs, (ob->ncs + 1) * sizeof *grown);
  if (!grown)
    return (size_t)-1;
  ob->cs = grown;
  if (!(ob->cs[ob->ncs] = calloc(1, sizeof *ob->cs[ob->ncs])))
    return (size_t)-1;
  snprintf(ob->cs[ob->ncs]->name, OKEGW_NAME_MAX, "%s", name);
  return ob->ncs++;
}

/* ---- what a waiting delivery holds ------------------------------------- */

/* The strings of a delivery that only an attempt uses, each with the row's
 * copy: kept are the id, times, state, attempts, connector, interaction and
 * resource, which order and log the waiting. */
#define ROW_STRINGS(r)                                                                             \
  {                                                                                                \
    &(r)->body, &(r)->caller, &(r)->request_id, &(r)->method, &(r)->path, &(r)->query,             \
        &(r)->content_type, &(r)->body_sha256, &(r)->last_error                                    \
  }

/* Forgets those strings of a stored delivery nobody waits on. */
static void slim(okegw_outbox *ob, dlv *d) {
  if (d->slim || !d->r.id || d->cb)
    return;
  if (d->r.body)
    ob->body_bytes -= d->r.body_len;
  char **strs[] = ROW_STRINGS(&d->r);
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
  d->r.body_len = 0;
  d->slim = 1;
}

/* A delivery waits its turn: it keeps its body while bodies fit. */
static void waiting(okegw_outbox *ob, dlv *d) {
  if (ob->body_bytes > BODIES_MAX)
    slim(ob, d);
}

/* ---- queues ------------------------------------------------------------ */

static int rq_cmp(const void *a, const void *b) {
  return strcmp(((const rq *)a)->key, ((const rq *)b)->key);
}

static rq *rq_get(okegw_outbox *ob, size_t ci, const char *resource, int create) {
  char *key = okegw_asprintf("%s\n%s", ob->cs[ci]->name, resource);
  if (!key)
    return NULL;
  rq probe = {.key = key};
  void *found = tfind(&probe, &ob->tree, rq_cmp);
  if (found || !create) {
    free(key);
    return found ? *(rq **)found : NULL;
  }
  rq *q = calloc(1, sizeof *q);
  if (q)
    q->key = key;
  if (!q || !tsearch(q, &ob->tree, rq_cmp)) {
    free(q);
    free(key);
    return NULL;
  }
  q->ci = ci;
  q->anext = ob->all;
  if (ob->all)
    ob->all->aprev = q;
  ob->all = q;
  return q;
}

static void rq_free(okegw_outbox *ob, rq *q) {
  tdelete(q, &ob->tree, rq_cmp);
  if (q->aprev)
    q->aprev->anext = q->anext;
  else
    ob->all = q->anext;
  if (q->anext)
    q->anext->aprev = q->aprev;
  free(q->key);
  free(q);
}

/* Takes the queue out of the ready FIFO or the timed list. */
static void unlist(okegw_outbox *ob, rq *q) {
  dlv *h = q->head;
  if (h && h->phase == P_READY) {
    cstate *c = ob->cs[q->ci];
    rq **pp = &c->rhead, *prev = NULL;
    while (*pp && *pp != q) {
      prev = *pp;
      pp = &(*pp)->rnext;
    }
    if (*pp) {
      *pp = q->rnext;
      if (c->rtail == q)
        c->rtail = prev;
    }
    q->rnext = NULL;
  } else if (h && h->phase == P_TIMED) {
    if (q->tprev)
      q->tprev->tnext = q->tnext;
    else
      ob->timed = q->tnext;
    if (q->tnext)
      q->tnext->tprev = q->tprev;
    q->tprev = q->tnext = NULL;
  }
  if (h)
    h->phase = P_QUEUED;
}

static void on_tick(uv_timer_t *t);

/* Makes the tick fire at `at` (wall ms) or sooner. */
static void tick_at(okegw_outbox *ob, long long at) {
  if (ob->closing || (ob->tick_on && ob->tick_at <= at))
    return;
  long long now = okegw_wall_ms(), ms = at > now ? at - now : 0;
  ob->tick_on = 1;
  ob->tick_at = now + ms;
  uv_timer_start(&ob->tick, on_tick, (uint64_t)ms, 0);
}

static void attempt(okegw_outbox *ob, dlv *d);

/* Whether an attempt with connector cc may start: with instances sharing
 * PostgreSQL, only while this instance surely holds its resources' leases
 * until the attempt is over, and not after they lapsed (until the open
 * deliveries were read again): another instance may carry them now. */
static int lease_holds(okegw_outbox *ob, const okegw_conf_connector *cc) {
  long long until;
  unsigned lapses;
  okegw_store_lease_state(ob->store, &until, &lapses);
  if (lapses == ob->lapses &&
      okegw_now_ms() + (double)(cc->timeout_ms + OKEGW_ATTEMPT_SLACK_MS) < (double)until)
    return 1;
  if (!ob->gated) {
    ob->gated = 1;
    tick_at(ob, okegw_wall_ms() + 1000);
  }
  return 0;
}

/* Starts what may go now. A plugin may answer inside attempt(), which frees
 * its slot at once: the loop here takes the next one instead of recursing. */
static void pump(okegw_outbox *ob, size_t ci) {
  cstate *c = ob->cs[ci];
  if (c->pumping || !c->conn)
    return; /* without an instance its deliveries wait for one */
  c->pumping = 1;
  while (c->rhead && c->in_flight < (size_t)c->conn->conf->delivery_concurrency &&
         lease_holds(ob, c->conn->conf)) {
    rq *q = c->rhead;
    c->rhead = q->rnext;
    if (!c->rhead)
      c->rtail = NULL;
    q->rnext = NULL;
    attempt(ob, q->head);
  }
  c->pumping = 0;
}

/* Decides what the queue's head does next (the queue must not be listed). */
static void schedule(okegw_outbox *ob, rq *q) {
  dlv *h = q->head;
  if (!h) {
    /* nothing of the resource left here: its lease goes (PostgreSQL) */
    if (!ob->closing)
      okegw_store_lease_release(ob->store, ob->cs[q->ci]->name, strchr(q->key, '\n') + 1);
    rq_free(ob, q);
    return;
  }
  if (!ob->loaded || ob->closing) {
    h->phase = P_QUEUED;
    waiting(ob, h);
    return;
  }
  if (h->r.state == OKEGW_DLV_DEAD) {
    h->phase = P_DEAD;
    slim(ob, h);
    return;
  }
  if (h->r.next_ms > okegw_wall_ms()) {
    slim(ob, h);
    h->phase = P_TIMED;
    q->tprev = NULL;
    q->tnext = ob->timed;
    if (ob->timed)
      ob->timed->tprev = q;
    ob->timed = q;
    tick_at(ob, h->r.next_ms);
    return;
  }
  h->phase = P_READY;
  waiting(ob, h);
  cstate *c = ob->cs[q->ci];
  if (c->rtail)
    c->rtail->rnext = q;
  else
    c->rhead = q;
  c->rtail = q;
  pump(ob, q->ci);
}

/* An attempt of d, or the writing of its end, is under way. */
static int under_way(const dlv *d) {
  return d->phase == P_FLIGHT || d->phase == P_ENDING || d->phase == P_STALLED;
}

/* Puts d in id order into its queue. An older delivery an operator retried
 * goes before the waiting ones, never before one already under way. */
static void enqueue(okegw_outbox *ob, rq *q, dlv *d) {
  d->q = q;
  d->next = NULL;
  dlv *old = q->head;
  if (!q->tail || q->tail->r.id < d->r.id) {
    if (q->tail)
      q->tail->next = d;
    else
      q->head = d;
    q->tail = d;
  } else {
    dlv **pp = &q->head;
    if (under_way(*pp))
      pp = &(*pp)->next;
    while (*pp && (*pp)->r.id < d->r.id)
      pp = &(*pp)->next;
    d->next = *pp;
    *pp = d;
    if (!d->next)
      q->tail = d;
  }
  __atomic_fetch_add(&ob->depth, 1, __ATOMIC_RELAXED);
  d->phase = P_QUEUED;
  if (q->head != d) {
    waiting(ob, d);
    return;
  }
  if (old) {
    /* d displaced the old head: list the queue again under d */
    dlv *keep = q->head;
    q->head = old;
    unlist(ob, q);
    q->head = keep;
  }
  schedule(ob, q);
}

/* Removes d (not under way) from its queue and frees it. */
static void release(okegw_outbox *ob, dlv *d, const okegw_answer *a);

/* Takes d out of memory (an operator dropped it, or its row is gone); a
 * sender still waiting for it hears it now, else it would wait on freed
 * memory (and a worker loop's stop on that sender). */
static void remove_dlv(okegw_outbox *ob, dlv *d) {
  release(ob, d, NULL);
  rq *q = d->q;
  int was_head = q->head == d;
  if (was_head)
    unlist(ob, q);
  dlv **pp = &q->head, *prev = NULL;
  while (*pp && *pp != d) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp)
    *pp = d->next;
  if (q->tail == d)
    q->tail = prev;
  __atomic_fetch_sub(&ob->depth, 1, __ATOMIC_RELAXED);
  dlv_free(d);
  if (was_head || !q->head)
    schedule(ob, q);
}

/* Forgets the deliveries of q that are not under way, without a word to the
 * store: another instance carries the resource now, or may. A sender still
 * waiting hears 202. The queue goes when nothing of it is left. */
static void forget(okegw_outbox *ob, rq *q) {
  dlv *h = q->head;
  int busy = h && under_way(h);
  if (!busy)
    unlist(ob, q);
  for (dlv *d = busy ? h->next : h, *next; d; d = next) {
    next = d->next;
    release(ob, d, NULL);
    __atomic_fetch_sub(&ob->depth, 1, __ATOMIC_RELAXED);
    dlv_free(d);
  }
  if (busy) {
    h->next = NULL;
    q->tail = h;
  } else {
    rq_free(ob, q);
  }
}

/* ---- the sender -------------------------------------------------------- */

static void wait_add(okegw_outbox *ob, dlv *d, long wait_ms) {
  d->wait_until = okegw_wall_ms() + wait_ms;
  d->wprev = NULL;
  d->wnext = ob->waiting;
  if (ob->waiting)
    ob->waiting->wprev = d;
  ob->waiting = d;
  tick_at(ob, d->wait_until);
}

/* Tells the waiting sender how it went (a = NULL: still under way). */
static void release(okegw_outbox *ob, dlv *d, const okegw_answer *a) {
  if (!d->cb)
    return;
  if (d->wprev)
    d->wprev->wnext = d->wnext;
  else if (ob->waiting == d)
    ob->waiting = d->wnext;
  if (d->wnext)
    d->wnext->wprev = d->wprev;
  d->wprev = d->wnext = NULL;
  okegw_push_cb cb = d->cb;
  d->cb = NULL;
  d->parsed = NULL;
  okegw_push_result res = {.rc = OKEGW_STORE_OK, .id = d->r.id, .answer = a, .rec = &d->r};
  cb(d->cb_ud, &res);
}

/* ---- attempts ---------------------------------------------------------- */

enum outcome { DELIVERED, FAILED, RETRY };

static enum outcome classify(const okegw_answer *a, int status) {
  if (a->origin == OKEGW_ANSWER_UNSENT)
    return FAILED;
  if (status >= 200 && status < 300)
    return DELIVERED;
  if (status == 0 || status == 408 || status == 425 || status == 429 || status >= 500)
    return RETRY;
  return FAILED;
}

/* A line for `okegw deliveries`: who said what. */
static char *describe(const okegw_answer *a, int status) {
  const char *who = a->origin == OKEGW_ANSWER_UNSENT     ? "not sent"
                    : a->origin == OKEGW_ANSWER_HOST     ? "okegw"
                    : a->origin == OKEGW_ANSWER_UNMAPPED ? "peer answer not mapped"
                                                         : "peer";
  char detail[256] = "";
  if (a->body && a->body_len) {
    const cJSON *j = okegw_answer_json(a);
    const char *t = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "detail")) : NULL;
    if (!t && j)
      t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "title"));
    if (t) {
      snprintf(detail, sizeof detail, "%s", t);
    } else {
      size_t n = a->body_len < sizeof detail - 1 ? a->body_len : sizeof detail - 1;
      for (size_t i = 0; i < n; i++)
        detail[i] = (unsigned char)a->body[i] < 0x20 ? ' ' : a->body[i];
      detail[n] = '\0';
    }
  }
  return okegw_asprintf("%s: %d%s%s", who, status, *detail ? " " : "", detail);
}

/* Exponential, with equal jitter: half fixed, half random, so what failed
 * together does not come back together. */
static long long backoff(okegw_outbox *ob, const okegw_conf_connector *cc, int attempts) {
  long long b = cc->retry_first_ms;
  for (int i = 1; i < attempts && b < cc->retry_max_ms; i++)
    b *= 2;
  if (b > cc->retry_max_ms)
    b = cc->retry_max_ms;
  long long half = b / 2;
  return half + (long long)(rnd(ob) % (uint64_t)(half + 1));
}

/* The audit row of an attempt: written with the update its answer leads to,
 * in one transaction. */
static okegw_audit_rec attempt_audit(const dlv *d, const okegw_answer *a, int status,
                                     double latency_ms) {
  return (okegw_audit_rec){.request_id = d->r.request_id,
                           .interaction = d->r.interaction,
                           .caller = d->r.caller,
                           .connector = d->r.connector,
                           .method = d->r.method,
                           .path = d->r.path,
                           .resource_id = d->r.resource_id,
                           .mapping = a->mapping && strcmp(a->mapping, "-") ? a->mapping : NULL,
                           .body_sha256 = d->r.body_sha256,
                           .event = "delivery",
                           .status = status,
                           .latency_ms = latency_ms,
                           .delivery_id = d->r.id,
                           .attempts = d->r.attempts,
                           .phase = okegw_phase_name(d->conn->conf->phase),
                           .mapping_error = a->mapping_error};
}

static void on_ended(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n);
static void write_end(okegw_outbox *ob, dlv *d, const okegw_audit_rec *audit);

/* Writes d's end (delivered, failed, dropped or dead). The sender hears the
 * peer's answer now: its push is durable already, and should okegw die
 * before the end is, the push goes again after the restart (at least once).
 * The next delivery of the resource waits until the end is durable, so such
 * a repeat is never a reorder. */
static void end(okegw_outbox *ob, dlv *d, const okegw_answer *a, int drop_body,
                const okegw_audit_rec *audit) {
  if (a)
    release(ob, d, a);
  d->drop_body = drop_body;
  write_end(ob, d, audit);
}

/* audit: the row of the attempt that ended it (NULL when no attempt did,
 * and when written again: d->end_audit keeps it until the end is written). */
static void write_end(okegw_outbox *ob, dlv *d, const okegw_audit_rec *audit) {
  d->phase = P_ENDING;
  ob->jobs++;
  if (audit && !d->end_audit && !(d->end_audit = audit_dup(audit)))
    okegw_store_audit(ob->store, audit); /* no memory to keep it: on its own, now */
  if (okegw_store_delivery_update(ob->store, &d->r, d->drop_body, d->writes, d->nwrites,
                                  d->end_audit, on_ended, d) < 0) {
    if (d->end_audit) /* the attempt is still on record */
      okegw_store_audit(ob->store, d->end_audit);
    free(d->end_audit);
    d->end_audit = NULL;
    on_ended(d, OKEGW_STORE_ERROR, 0, NULL, 0);
  }
}

static void on_ended(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)id;
  (void)recs;
  (void)n;
  dlv *d = ud;
  okegw_outbox *ob = d->ob;
  ob->jobs--;
  if (ob->closing) {
    dlv_free(d);
    maybe_free(ob);
    return;
  }
  /* a held answer once its routes are written, or once writing them failed
   * (the peer took it all the same; they are written when the end is, a
   * second later); else still under way (202), and a dead delivery is
   * still someone's to act on */
  if (d->held) /* the instance the attempt used may have been retired since */
    d->held->conn = ob->cs[d->ci]->conn;
  release(ob, d, d->held);
  if (d->held) {
    okegw_answer_copy_free(d->held);
    free(d->held);
    d->held = NULL;
  }
  if (rc == OKEGW_STORE_NOTFOUND) {
    /* another instance took the resource's lease over: it sends this one
     * again (a duplicate, counted by its id) and those after it */
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){
                  .connector = d->r.connector, .request_id = d->r.request_id, .latency_ms = -1},
              "delivery %lld: another okegw instance carries %s now (this one's lease on it "
              "expired); it is left to that one",
              d->r.id, d->r.resource);
    d->phase = P_QUEUED;
    forget(ob, d->q);
    return;
  }
  if (rc == OKEGW_STORE_OK) {
    free(d->end_audit); /* written with the end */
    d->end_audit = NULL;
  } else {
    /* the resource waits: were the next one to go now, this one would go
     * again after a restart, after it */
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){
                  .connector = d->r.connector, .request_id = d->r.request_id, .latency_ms = -1},
              "could not record that delivery %lld is %s; trying again in a second, later "
              "deliveries of %s wait",
              d->r.id, okegw_delivery_state_name(d->r.state), d->r.resource);
    d->phase = P_STALLED;
    d->end_again_at = okegw_wall_ms() + 1000;
    d->snext = ob->stalled;
    ob->stalled = d;
    tick_at(ob, d->end_again_at);
    return;
  }
  rq *q = d->q;
  if (d->r.state == OKEGW_DLV_DEAD && !d->dropped) {
    schedule(ob, q); /* stays at the head, holding the resource */
    return;
  }
  q->head = d->next;
  if (!q->head)
    q->tail = NULL;
  __atomic_fetch_sub(&ob->depth, 1, __ATOMIC_RELAXED);
  dlv_free(d);
  schedule(ob, q);
}

static void settle(okegw_outbox *ob, dlv *d, const okegw_answer *a);

/* An attempt (or the read before it) is over: its slot is free. 1 when the
 * outbox closes meanwhile, and d is gone. */
static int slot_free(okegw_outbox *ob, dlv *d) {
  ob->cs[d->ci]->in_flight--;
  ob->flying--;
  if (!ob->closing)
    return 0;
  dlv_free(d);
  maybe_free(ob);
  return 1;
}

static void on_attempt_done(void *ud, const okegw_answer *a) {
  dlv *d = ud;
  okegw_outbox *ob = d->ob;
  size_t ci = d->ci;
  if (slot_free(ob, d))
    return;
  settle(ob, d, a);
  pump(ob, ci); /* the slot is free for another resource */
}

/* What an attempt's answer means for the delivery. */
static void settle(okegw_outbox *ob, dlv *d, const okegw_answer *a) {
  const okegw_conf_connector *cc = cconf(d);
  int status = a->origin == OKEGW_ANSWER_UNMAPPED ? a->peer_status : a->status;
  okegw_audit_rec audit = attempt_audit(d, a, status, okegw_now_ms() - d->started);
  long long now = okegw_wall_ms();
  enum outcome o = classify(a, status);
  long long max_at = d->r.since_ms + cc->delivery_max_age_s * 1000LL;
  okegw_metrics_delivery_attempt(d->conn ? d->conn->metrics : NULL,
                                 o == DELIVERED              ? OKEGW_ATTEMPT_DELIVERED
                                 : o == FAILED || d->dropped ? OKEGW_ATTEMPT_FAILED
                                 : now >= max_at             ? OKEGW_ATTEMPT_DEAD
                                                             : OKEGW_ATTEMPT_RETRY,
                                 status);
  d->r.last_status = status;
  free(d->r.last_error);
  d->r.last_error = o == DELIVERED ? NULL : describe(a, status);
  d->r.next_ms = 0;
  long long keep = cc->keep_bodies_s ? now + cc->keep_bodies_s * 1000LL : 0;
  if (o == DELIVERED) {
    if (ob->delivered && (d->writes = calloc(OKEGW_DELIVERED_WRITES, sizeof *d->writes)))
      d->nwrites = ob->delivered(ob->ud, d->conn, &d->r, d->cb ? d->parsed : NULL, d->writes);
    d->r.state = OKEGW_DLV_DELIVERED;
    d->r.delivered_ms = now;
    d->r.keep_until_ms = keep;
    if (d->cb && d->nwrites && (d->held = malloc(sizeof *d->held)) &&
        okegw_answer_copy(d->held, a) < 0) {
      free(d->held);
      d->held = NULL;
    }
    end(ob, d, d->held ? NULL : a, !keep, &audit);
    return;
  }
  if (o == FAILED || d->dropped) {
    /* a failed body stays for an operator's retry until retention */
    d->r.state = d->dropped ? OKEGW_DLV_DROPPED : OKEGW_DLV_FAILED;
    d->r.keep_until_ms = d->dropped ? keep : 0;
    okegw_log(OKEGW_LOG_WARN,
              &(okegw_log_fields){.connector = d->r.connector,
                                  .interaction = d->r.interaction,
                                  .request_id = d->r.request_id,
                                  .status = status,
                                  .latency_ms = -1},
              "delivery %lld %s: %s", d->r.id, okegw_delivery_state_name(d->r.state),
              d->r.last_error);
    end(ob, d, a, d->dropped && !keep, &audit);
    return;
  }
  if (now >= max_at) {
    d->r.state = OKEGW_DLV_DEAD;
    okegw_log(OKEGW_LOG_ERROR,
              &(okegw_log_fields){.connector = d->r.connector,
                                  .interaction = d->r.interaction,
                                  .request_id = d->r.request_id,
                                  .status = status,
                                  .latency_ms = -1},
              "delivery %lld dead after %d attempt(s) in %lld s (%s); later deliveries of %s wait "
              "until it is retried or dropped (okegw deliveries)",
              d->r.id, d->r.attempts, (now - d->r.since_ms) / 1000, d->r.last_error, d->r.resource);
    end(ob, d, NULL, 0, &audit);
    return;
  }
  long long wait = backoff(ob, cc, d->r.attempts), ra = (long long)a->retry_after_s * 1000;
  if (ra > wait)
    wait = ra;
  d->r.next_ms = now + wait < max_at ? now + wait : max_at;
  if (okegw_store_delivery_update(ob->store, &d->r, 0, NULL, 0, &audit, NULL, NULL) < 0)
    okegw_store_audit(ob->store, &audit);
  okegw_log(OKEGW_LOG_INFO,
            &(okegw_log_fields){.connector = d->r.connector,
                                .interaction = d->r.interaction,
                                .request_id = d->r.request_id,
                                .status = status,
                                .latency_ms = -1},
            "delivery %lld attempt %d: %s; next in %lld ms", d->r.id, d->r.attempts,
            d->r.last_error, d->r.next_ms - now);
  release(ob, d, NULL); /* accepted (202): okegw carries on */
  schedule(ob, d->q);
}

static void send_attempt(okegw_outbox *ob, dlv *d);
static void on_row(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n);

/* Starts an attempt: it takes a slot now, and for a slim delivery reads its
 * row before it sends. */
static void attempt(okegw_outbox *ob, dlv *d) {
  cstate *c = ob->cs[d->ci];
  d->conn = c->conn;
  d->phase = P_FLIGHT;
  c->in_flight++;
  ob->flying++;
  if (!d->slim) {
    send_attempt(ob, d);
  } else if (okegw_store_delivery_get(ob->store, d->r.id, 1, on_row, d) < 0) {
    on_row(d, OKEGW_STORE_ERROR, 0, NULL, 0);
  }
}

/* The row of a slim delivery, for its attempt. */
static void on_row(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)id;
  dlv *d = ud;
  okegw_outbox *ob = d->ob;
  size_t ci = d->ci;
  okegw_delivery_rec *row = rc == OKEGW_STORE_OK && n == 1 ? &recs[0] : NULL;
  if (row && !ob->closing) {
    char **mine[] = ROW_STRINGS(&d->r), **theirs[] = ROW_STRINGS(row);
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) {
      free(*mine[i]);
      *mine[i] = *theirs[i];
      *theirs[i] = NULL;
    }
    d->r.body_len = d->r.body ? row->body_len : 0;
    ob->body_bytes += d->r.body_len;
    d->slim = 0;
  }
  for (size_t i = 0; i < n; i++)
    okegw_delivery_rec_free(&recs[i]);
  free(recs);
  if (row && !ob->closing && !d->dropped) {
    send_attempt(ob, d);
    return;
  }
  if (slot_free(ob, d)) /* no attempt */
    return;
  if (row) { /* an operator dropped it while its row was read: never sent */
    const okegw_conf_connector *cc = cconf(d);
    d->r.state = OKEGW_DLV_DROPPED;
    d->r.keep_until_ms = cc->keep_bodies_s ? okegw_wall_ms() + cc->keep_bodies_s * 1000LL : 0;
    end(ob, d, NULL, !d->r.keep_until_ms, NULL);
  } else if (rc == OKEGW_STORE_NOTFOUND) {
    okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = d->r.connector, .latency_ms = -1},
              "delivery %lld is no longer in the store; it is not sent", d->r.id);
    remove_dlv(ob, d);
  } else {
    okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = d->r.connector, .latency_ms = -1},
              "delivery %lld: cannot read it from the store; trying again in a second", d->r.id);
    d->r.next_ms = okegw_wall_ms() + 1000;
    schedule(ob, d->q);
  }
  pump(ob, ci);
}

static void send_attempt(okegw_outbox *ob, dlv *d) {
  (void)ob;
  d->r.attempts++;
  d->started = okegw_now_ms();
  oke_request req = {.interaction = d->interaction,
                     .method = d->r.method,
                     .path = d->r.path,
                     .query = d->r.query ? d->r.query : "",
                     .id = d->r.resource_id ? d->r.resource_id : "",
                     .body = d->r.body ? d->r.body : "",
                     .body_len = d->r.body ? d->r.body_len : 0,
                     .content_type = d->r.content_type,
                     .request_id = d->r.request_id ? d->r.request_id : ""};
  okegw_connector_deliver(d->conn, &req, d->cb ? d->parsed : NULL, on_attempt_done, d);
}

static void load(okegw_outbox *ob);

/* ---- timers ------------------------------------------------------------ */

/* Releases senders whose wait is over, starts deliveries whose pause is
 * over, writes stalled ends again; then sleeps until the next of those. */
static void on_tick(uv_timer_t *t) {
  okegw_outbox *ob = t->data;
  ob->tick_on = 0;
  if (ob->gated) { /* attempts that waited for the leases: they may hold now */
    ob->gated = 0;
    for (size_t i = 0; i < ob->ncs; i++)
      pump(ob, i);
  }
  long long now = okegw_wall_ms();
  for (dlv *d = ob->waiting, *next; d; d = next) {
    next = d->wnext;
    if (d->wait_until <= now)
      release(ob, d, NULL);
  }
  for (rq *q = ob->timed, *next; q; q = next) {
    next = q->tnext;
    if (q->head->r.next_ms <= now) {
      unlist(ob, q);
      schedule(ob, q);
    }
  }
  for (dlv **pp = &ob->stalled; *pp;) {
    dlv *d = *pp;
    if (d->end_again_at <= now) {
      *pp = d->snext;
      write_end(ob, d, NULL);
    } else {
      pp = &d->snext;
    }
  }
  long long next = 0;
  for (dlv *d = ob->waiting; d; d = d->wnext)
    next = !next || d->wait_until < next ? d->wait_until : next;
  for (rq *q = ob->timed; q; q = q->tnext)
    next = !next || q->head->r.next_ms < next ? q->head->r.next_ms : next;
  for (dlv *d = ob->stalled; d; d = d->snext)
    next = !next || d->end_again_at < next ? d->end_again_at : next;
  if (next)
    tick_at(ob, next);
}

static size_t conn_index(okegw_outbox *ob, const char *name) { return cs_index(ob, name, 0); }

/* A delivery read from the store becomes a queue entry; NULL when the
 * running configuration has no such connector (it stays in the store until
 * a reload brings one). Whatever the connector's phase, work already routed
 * to it goes on. Takes rec's strings. */
static dlv *adopt(okegw_outbox *ob, okegw_delivery_rec *rec, size_t *skipped) {
  size_t ci = conn_index(ob, rec->connector);
  if (ci == (size_t)-1 || !ob->cs[ci]->conn) {
    (*skipped)++;
    return NULL;
  }
  dlv *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->r = *rec;
  memset(rec, 0, sizeof *rec);
  d->ob = ob;
  d->ci = ci;
  d->slim = !d->r.body; /* rows are read without bodies */
  if (d->r.body)
    ob->body_bytes += d->r.body_len;
  d->interaction = okegw_interaction_by_name(d->r.interaction);
  return d;
}

static dlv *find(rq *q, long long id) {
  for (dlv *d = q ? q->head : NULL; d; d = d->next)
    if (d->r.id == id)
      return d;
  return NULL;
}

static void on_requeued(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)id;
  okegw_outbox *ob = ud;
  ob->jobs--;
  ob->polling = 0;
  size_t handed = 0;
  for (size_t i = 0; i < n; i++) {
    okegw_delivery_rec *rec = &recs[i];
    size_t ci = ob->closing || rc != OKEGW_STORE_OK ? (size_t)-1 : conn_index(ob, rec->connector);
    rq *q = ci != (size_t)-1 ? rq_get(ob, ci, rec->resource, 0) : NULL;
    dlv *d = find(q, rec->id);
    int pending = rec->state == OKEGW_DLV_PENDING;
    if (ci == (size_t)-1) {
      /* closing, or a connector this gateway does not carry */
    } else if (rec->requeue == OKEGW_DLV_REQUEUE_HANDED) {
      /* stored through another instance, or its resource taken over: this
       * instance carries it from now on, in id order with the rest */
      dlv *nd = d ? NULL : adopt(ob, rec, &(size_t){0});
      q = nd ? rq_get(ob, nd->ci, nd->r.resource, 1) : NULL;
      if (q) {
        enqueue(ob, q, nd);
        handed++;
      } else if (nd) {
        dlv_free(nd);
      }
    } else if (d && under_way(d)) {
      d->dropped = !pending;
    } else if (d && pending) {
      int head = q->head == d;
      if (head)
        unlist(ob, q);
      d->r.state = rec->state;
      d->r.since_ms = rec->since_ms;
      d->r.next_ms = rec->next_ms;
      if (head)
        schedule(ob, q);
    } else if (d) {
      okegw_log(OKEGW_LOG_INFO, &(okegw_log_fields){.connector = rec->connector, .latency_ms = -1},
                "delivery %lld %s by an operator", rec->id, okegw_delivery_state_name(rec->state));
      remove_dlv(ob, d);
    } else if (pending) {
      size_t skipped = 0;
      dlv *nd = adopt(ob, rec, &skipped);
      q = nd ? rq_get(ob, nd->ci, nd->r.resource, 1) : NULL;
      if (q) {
        okegw_log(OKEGW_LOG_INFO,
                  &(okegw_log_fields){.connector = nd->r.connector, .latency_ms = -1},
                  "delivery %lld retried by an operator", nd->r.id);
        enqueue(ob, q, nd);
      } else if (nd) {
        dlv_free(nd);
      }
    }
    okegw_delivery_rec_free(rec);
  }
  free(recs);
  if (handed)
    okegw_log(OKEGW_LOG_DEBUG, NULL, "outbox: %zu deliveries handed over to this instance", handed);
  maybe_free(ob);
}

static void on_poll(uv_timer_t *t) {
  okegw_outbox *ob = t->data;
  long long until;
  unsigned lapses;
  okegw_store_lease_state(ob->store, &until, &lapses);
  if (lapses != ob->lapses && !ob->loading && !ob->closing) {
    /* this instance's leases ran out before it could renew them (the
     * database was out of reach): another instance may carry any of its
     * resources now. What is not under way is forgotten and read again
     * for the leases it holds; nothing goes before that read is in. */
    okegw_log(OKEGW_LOG_WARN, NULL,
              "outbox: this instance's leases lapsed (PostgreSQL was out of reach for longer "
              "than store_lease_s); its open deliveries are read again");
    ob->lapses = lapses;
    for (rq *q = ob->all, *next; q; q = next) {
      next = q->anext;
      forget(ob, q);
    }
    ob->loaded = 0;
    load(ob);
    return;
  }
  if (!ob->loaded && !ob->loading)
    load(ob); /* the first read failed: nothing may go before it worked */
  if (!ob->loaded || ob->polling)
    return;
  if (okegw_store_delivery_requeued(ob->store, on_requeued, ob) == 0) {
    ob->jobs++;
    ob->polling = 1;
  }
  /* retention right after a start, then once a minute */
  if (ob->polls++ % PRUNE_EVERY == 0)
    okegw_store_delivery_prune(ob->store,
                               okegw_wall_ms() - ob->conf->delivery_retention_s * 1000LL);
}

static void on_loaded(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)id;
  okegw_outbox *ob = ud;
  ob->jobs--;
  ob->loading = 0;
  size_t skipped = 0, loaded = 0, dead = 0;
  for (size_t i = 0; i < n; i++) {
    okegw_delivery_rec *rec = &recs[i];
    size_t ci = conn_index(ob, rec->connector);
    /* a read again after a failed one also finds pushes stored meanwhile */
    int known = ci != (size_t)-1 && find(rq_get(ob, ci, rec->resource, 0), rec->id);
    if (!ob->closing && rc == OKEGW_STORE_OK && !known) {
      dlv *d = adopt(ob, rec, &skipped);
      rq *q = d ? rq_get(ob, d->ci, d->r.resource, 1) : NULL;
      if (q) {
        enqueue(ob, q, d);
        loaded++;
        dead += d->r.state == OKEGW_DLV_DEAD;
      } else if (d) {
        dlv_free(d);
      }
    }
    okegw_delivery_rec_free(rec);
  }
  free(recs);
  if (ob->closing) {
    maybe_free(ob);
    return;
  }
  if (rc != OKEGW_STORE_OK) {
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "outbox: could not read the open deliveries; nothing is sent until that works "
              "(tried again every second)");
    return;
  }
  if (loaded || skipped)
    okegw_log(OKEGW_LOG_INFO, NULL,
              "outbox: %zu open deliveries resumed (%zu dead, waiting for an operator); %zu wait "
              "for a connector the configuration does not have",
              loaded, dead, skipped);
  ob->loaded = 1;
  /* what waited for the load goes now; a read again (a connector came back
   * with a reload) leaves the queues already listed or under way alone */
  for (rq *q = ob->all, *next; q; q = next) {
    next = q->anext;
    if (q->head && q->head->phase == P_QUEUED)
      schedule(ob, q);
  }
}

static void load(okegw_outbox *ob) {
  if (okegw_store_delivery_load_open(ob->store, on_loaded, ob) == 0) {
    ob->jobs++;
    ob->loading = 1;
  }
}

/* ---- public ------------------------------------------------------------ */

void okegw_outbox_use(okegw_outbox *ob, const okegw_conf *conf, okegw_connector *const *conns,
                      size_t nconns) {
  ob->conf = conf;
  int arrived = 0;
  for (size_t i = 0; i < ob->ncs; i++) {
    ob->cs[i]->had = ob->cs[i]->conn != NULL;
    ob->cs[i]->conn = NULL;
  }
  for (size_t i = 0; i < nconns; i++) {
    size_t ci = cs_index(ob, conns[i]->conf->name, 1);
    if (ci == (size_t)-1)
      continue; /* no memory: its deliveries wait in the store */
    arrived |= !ob->cs[ci]->had;
    ob->cs[ci]->conn = conns[i];
  }
  /* leases are taken over for the connectors this instance has (store.h) */
  const char **names = calloc(nconns ? nconns : 1, sizeof *names);
  for (size_t i = 0; names && i < nconns; i++)
    names[i] = conns[i]->conf->name;
  if (!names || okegw_store_lease_carry(ob->store, names, nconns) < 0)
    okegw_log(OKEGW_LOG_ERROR, NULL,
              "out of memory: the connectors whose leases this instance "
              "takes over are those of the configuration before");
  free(names);
  if (ob->closing || !ob->loaded)
    return;
  /* deliveries that waited in memory go now; those a connector that was
   * missing left in the store are read again */
  for (size_t i = 0; i < ob->ncs; i++)
    pump(ob, i);
  if (arrived && !ob->loading)
    load(ob);
}

int okegw_outbox_start(uv_loop_t *loop, okegw_store *store, const okegw_conf *conf,
                       okegw_connector *const *conns, size_t nconns, okegw_delivered_fn delivered,
                       void *ud, okegw_outbox **out) {
  okegw_outbox *ob = calloc(1, sizeof *ob);
  if (!ob)
    return -1;
  ob->loop = loop;
  ob->store = store;
  okegw_outbox_use(ob, conf, conns, nconns);
  ob->delivered = delivered;
  ob->ud = ud;
  ob->rnd = (uint64_t)okegw_wall_ms() * 2654435761u ^ (uint64_t)getpid();
  if (!ob->rnd)
    ob->rnd = 88172645463325252ULL;
  uv_timer_init(loop, &ob->tick);
  uv_timer_init(loop, &ob->poll);
  ob->tick.data = ob->poll.data = ob;
  ob->handles_open = 2;
  uv_timer_start(&ob->poll, on_poll, POLL_MS, POLL_MS);
  uv_unref((uv_handle_t *)&ob->poll);
  load(ob);
  *out = ob;
  return 0;
}

static void on_added(void *ud, int rc, long long id, okegw_delivery_rec *recs, size_t n) {
  (void)recs;
  (void)n;
  dlv *d = ud;
  okegw_outbox *ob = d->ob;
  ob->jobs--;
  __atomic_fetch_sub(&ob->adding, 1, __ATOMIC_RELAXED);
  if (!ob->closing && rc == OKEGW_STORE_HANDED) {
    /* durable; the instance that carries its resource sends it (or this
     * one, behind the resource's older deliveries, after the next poll):
     * the sender hears 202 */
    d->r.id = id;
    release(ob, d, NULL);
    dlv_free(d);
    return;
  }
  if (ob->closing || rc != OKEGW_STORE_OK) {
    okegw_push_cb cb = d->cb;
    void *cb_ud = d->cb_ud;
    dlv_free(d);
    if (cb && !ob->closing) {
      okegw_push_result res = {.rc = OKEGW_STORE_ERROR};
      cb(cb_ud, &res);
    }
    maybe_free(ob);
    return;
  }
  d->r.id = id;
  const okegw_conf_connector *cc = cconf(d);
  rq *q = rq_get(ob, d->ci, d->r.resource, 1);
  if (!q) {
    /* durable already: it goes after the next start */
    okegw_log(OKEGW_LOG_ERROR, NULL, "out of memory: delivery %lld is sent after a restart", id);
    release(ob, d, NULL);
    dlv_free(d);
    return;
  }
  if (cc->delivery_wait_ms)
    wait_add(ob, d, cc->delivery_wait_ms);
  else
    release(ob, d, NULL); /* the sender never waits for the peer */
  enqueue(ob, q, d);
}

int okegw_outbox_push(okegw_outbox *ob, okegw_connector *conn, const okegw_push *p,
                      const cJSON *parsed, okegw_push_cb cb, void *ud) {
  if (ob->closing)
    return -1;
  /* memory holds every open delivery: past the limit the sender must wait */
  if (okegw_outbox_used(ob) >= (size_t)ob->conf->outbox_max_open)
    return OKEGW_OUTBOX_FULL;
  /* a call that started before a reload may push to a connector the
   * reload removed: its delivery waits for a successor of that name */
  size_t ci = cs_index(ob, conn->conf->name, 1);
  dlv *d = ci == (size_t)-1 ? NULL : calloc(1, sizeof *d);
  if (!d)
    return -1;
  d->ob = ob;
  d->ci = ci;
  d->conn = conn;
  d->interaction = p->interaction;
  d->phase = P_ADDING;
  d->cb = cb;
  d->cb_ud = ud;
  d->parsed = parsed;
  okegw_delivery_rec *r = &d->r;
  r->created_ms = r->since_ms = okegw_wall_ms();
  r->state = OKEGW_DLV_PENDING;
  const char *src[] = {conn->conf->name,
                       p->caller,
                       okegw_interaction_name(p->interaction),
                       p->resource ? p->resource : p->path,
                       p->resource_id,
                       p->request_id,
                       p->method,
                       p->path,
                       p->query,
                       p->content_type,
                       p->body_sha256};
  char **dst[] = {&r->connector,   &r->caller,       &r->interaction, &r->resource,
                  &r->resource_id, &r->request_id,   &r->method,      &r->path,
                  &r->query,       &r->content_type, &r->body_sha256};
  int oom = 0;
  for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
    if (src[i] && *src[i] && !(*dst[i] = okegw_strdup(src[i])))
      oom = 1;
  r->body = okegw_strndup(p->body ? p->body : "", p->body_len);
  r->body_len = r->body ? p->body_len : 0;
  ob->body_bytes += r->body_len;
  if (oom || !r->body || !r->method || !r->path) {
    dlv_free(d);
    return -1;
  }
  if (okegw_store_delivery_add(ob->store, r, on_added, d) < 0) {
    dlv_free(d);
    return -1;
  }
  ob->jobs++;
  __atomic_fetch_add(&ob->adding, 1, __ATOMIC_RELAXED);
  return 0;
}

size_t okegw_outbox_depth(const okegw_outbox *ob) {
  return ob ? __atomic_load_n(&ob->depth, __ATOMIC_RELAXED) : 0;
}

size_t okegw_outbox_used(const okegw_outbox *ob) {
  return __atomic_load_n(&ob->depth, __ATOMIC_RELAXED) +
         __atomic_load_n(&ob->adding, __ATOMIC_RELAXED);
}

static void on_handle_closed(uv_handle_t *h) {
  okegw_outbox *ob = h->data;
  ob->handles_open--;
  maybe_free(ob);
}

void okegw_outbox_close(okegw_outbox *ob) {
  if (!ob || ob->closing)
    return;
  /* nobody waits any more: the server answered every request before the
   * gateway closes the outbox */
  ob->closing = 1;
  for (rq *q = ob->all, *qn; q; q = qn) {
    qn = q->anext;
    for (dlv *d = q->head, *dn; d; d = dn) {
      dn = d->next;
      d->q = NULL;
      /* those under way are freed when their attempt or write ends (a
       * stalled one has neither) */
      if (d->phase != P_FLIGHT && d->phase != P_ENDING)
        dlv_free(d);
    }
    q->head = NULL;
    rq_free(ob, q);
  }
  __atomic_store_n(&ob->depth, 0, __ATOMIC_RELAXED);
  uv_timer_stop(&ob->tick);
  uv_timer_stop(&ob->poll);
  uv_close((uv_handle_t *)&ob->tick, on_handle_closed);
  uv_close((uv_handle_t *)&ob->poll, on_handle_closed);
}

const char *okegw_outbox_state_label(int state) {
  static const char *const names[OKEGW_OUTBOX_NSTATES] = {"queued", "pending", "retrying",
                                                          "in_flight", "dead"};
  return state >= 0 && state < OKEGW_OUTBOX_NSTATES ? names[state] : "?";
}

void okegw_outbox_census(const okegw_outbox *ob,
                         void (*cb)(void *ud, const char *connector, const size_t *counts),
                         void *ud) {
  if (!ob || ob->closing || !ob->ncs)
    return;
  size_t *n = calloc(ob->ncs * OKEGW_OUTBOX_NSTATES, sizeof *n);
  if (!n)
    return;
  for (const rq *q = ob->all; q; q = q->anext)
    for (const dlv *d = q->head; d; d = d->next) {
      int s = d->phase == P_DEAD                             ? OKEGW_OUTBOX_DEAD
              : d->phase == P_ADDING || d->phase == P_QUEUED ? OKEGW_OUTBOX_QUEUED
              : d->phase == P_READY                          ? OKEGW_OUTBOX_PENDING
              : d->phase == P_TIMED ? (d->r.attempts ? OKEGW_OUTBOX_RETRYING : OKEGW_OUTBOX_PENDING)
                                    : OKEGW_OUTBOX_IN_FLIGHT;
      n[d->ci * OKEGW_OUTBOX_NSTATES + (size_t)s]++;
    }
  for (size_t i = 0; i < ob->ncs; i++)
    cb(ud, ob->cs[i]->name, n + i * OKEGW_OUTBOX_NSTATES);
  free(n);
}
