/* The store: the one owner of what okegw keeps (routes, the audit trail,
 * the deliveries of the outbox, the phase history). No other module runs
 * SQL on its tables. The schema version is in the table meta; an older
 * store is upgraded when the gateway opens it (okegw_store_open).
 *
 * The embedded store is one SQLite file (WAL). In the gateway it is owned by
 * a dedicated thread: the loop thread never touches SQLite after startup, it
 * queues jobs, the store thread runs every queued job in one transaction
 * (group commit) and hands the results back through a uv_async. Operator
 * commands open it directly instead (okegw_store_open_direct) and call the
 * synchronous functions at the end of this header.
 *
 * Return codes, everywhere in this interface and in the rc of a callback:
 *   OKEGW_STORE_OK (0)         done
 *   OKEGW_STORE_ERROR (-1)     SQLite failed, out of memory, or the store is
 *                              closing; nothing of the job was written
 *   OKEGW_STORE_NOTFOUND (-2)  the route or delivery asked for is not there
 *   OKEGW_STORE_BADFILE (-3)   (direct use) the file is not an okegw store:
 *                              a statement does not prepare on it
 *   OKEGW_STORE_HANDED (1)     (delivery_add, PostgreSQL) stored; another
 *                              instance holds its resource and delivers it
 * A function that queues a job returns OK or ERROR; when it returns ERROR
 * its callback will not run. Functions that take `char **err` set it, on
 * failure, to a message a person can act on (free it; NULL when even that
 * could not be allocated). */
#ifndef OKEGW_STORE_H
#define OKEGW_STORE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <uv.h>

typedef struct okegw_store okegw_store;

#define OKEGW_NAME_MAX 64 /* connector names, incl. NUL */

enum {
  OKEGW_STORE_OK = 0,
  OKEGW_STORE_ERROR = -1,
  OKEGW_STORE_NOTFOUND = -2,
  OKEGW_STORE_BADFILE = -3,
  OKEGW_STORE_HANDED = 1
};

#define OKEGW_FACTS_MAX 512 /* a route's facts, incl. NUL */

/* What a routing job found. */
typedef struct okegw_route {
  int rc;                              /* OKEGW_STORE_* */
  int existed;                         /* the id was already routed */
  char connector[OKEGW_NAME_MAX];      /* the id's connector */
  char prev_connector[OKEGW_NAME_MAX]; /* bind/claim: the id's connector before, if existed */
  char parent[64];                     /* lookup: the id it was bound under, "" if none */
  int confirmed;                       /* lookup: the peer accepted it (okegw_store_confirm) */
  /* lookup, bind: the system the id belongs to on the school's side (the TPL
   * that planned a zitting or deelname, the system entitled to a document);
   * "" when none was recorded */
  char owner[OKEGW_NAME_MAX];
  /* lookup: what okegw knows of the resource's state, a JSON object as
   * text (pipeline/state.c reads it); "" when nothing */
  char facts[OKEGW_FACTS_MAX];
} okegw_route;

/* A route change written in the same transaction as a delivery's end (so
 * what a delivery opens is retried with it and never lost on its own). */
enum okegw_route_op {
  OKEGW_RW_PUT = 0, /* (kind, id) -> connector, confirmed */
  OKEGW_RW_CONFIRM, /* (kind, id) accepted by its peer */
  OKEGW_RW_FACTS,   /* (kind, id) facts merged with facts (RFC 7396) */
  /* the deelname (association, id) at connector is canceled: its person's
   * flow-6 permission at that connector goes unless another of their
   * deelnames there is still open */
  OKEGW_RW_UNLINK_PERSON
};
typedef struct okegw_route_write {
  enum okegw_route_op op;
  char kind[24];
  char id[160];
  char connector[OKEGW_NAME_MAX];
  char facts[OKEGW_FACTS_MAX];
} okegw_route_write;

typedef void (*okegw_route_cb)(void *ud, const okegw_route *r);

/* Opens (creating the schema when new) and starts the store thread. sync
 * is SQLite's synchronous setting for the commits: "full" (each group commit
 * is on disk before its callbacks run: survives a power cut) or "normal"
 * (survives a crash of okegw, not of the machine). Returns OK, or ERROR with
 * a message in *err. */
int okegw_store_open(uv_loop_t *loop, const char *path, const char *sync, okegw_store **out,
                     char **err);
/* Finishes queued jobs, stops the thread, closes the database. `done` runs
 * on the loop once everything is closed (at once for a store opened with
 * okegw_store_open_direct; done may be NULL). */
void okegw_store_close(okegw_store *s, void (*done)(void *), void *arg);

/* Ports: the store fed by several loops. The loop that opened the store has
 * its port built in; every other loop thread that submits jobs opens one on
 * its own loop and binds it to its thread (okegw_store_port_bind). A job
 * takes the port of the thread that submits it, and its callback runs on
 * that port's loop. Close a port on its own loop once nothing it submitted
 * waits for a callback; jobs still under way when it closed end without
 * theirs. Every port is closed (its done has run) before the store closes. */
typedef struct okegw_store_port okegw_store_port;
int okegw_store_port_open(okegw_store *s, uv_loop_t *loop, okegw_store_port **out);
/* Jobs submitted from the calling thread (NULL: the store's own loop's). */
void okegw_store_port_bind(okegw_store_port *p);
/* done (may be NULL) runs on the port's loop once its handle closed. */
void okegw_store_port_close(okegw_store_port *p, void (*done)(void *), void *arg);

/* kind is "component", "offering" or "association". */
int okegw_store_lookup(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                       void *ud);
/* Routes (kind, id) to the connector that owns (parent_kind, parent_id),
 * owned by `owner` (may be NULL) with `facts` (may be NULL; merged into
 * a known id's facts), and records it durably before cb runs.
 * r->connector is the parent's connector (NOTFOUND when the parent is
 * unknown); r->existed, prev_connector and owner tell whether the id was
 * routed before, where and whose. A known id is never re-routed nor given
 * another owner: the caller decides what a difference means. */
int okegw_store_bind(okegw_store *s, const char *kind, const char *id, const char *parent_kind,
                     const char *parent_id, const char *owner, const char *facts, okegw_route_cb cb,
                     void *ud);
/* Records (kind, id) -> connector, owned by `owner`, for every id that is
 * not recorded yet; an id already recorded for another connector keeps it
 * (r->existed = 1, prev_connector = that connector). `facts` (may be NULL)
 * are merged into those of every id the connector holds then. cb may be
 * NULL. */
int okegw_store_claim(okegw_store *s, const char *kind, const char *const *ids, size_t n,
                      const char *connector, const char *owner, const char *facts,
                      okegw_route_cb cb, void *ud);
/* Merges `facts` (a JSON object as text, RFC 7396) into the facts of
 * (kind, id); NOTFOUND when it is not routed. cb may be NULL. */
int okegw_store_set_facts(okegw_store *s, const char *kind, const char *id, const char *facts,
                          okegw_route_cb cb, void *ud);
/* 1 while the store takes writes; 0 after a write batch failed or its file
 * was deleted or replaced under okegw (checked before every write batch),
 * until a batch succeeds on the same file again. */
int okegw_store_healthy(const okegw_store *s);
/* Where the store thread observes the time of each group commit (the
 * gateway's metrics, ops/metrics.h; atomically, as the loop reads it);
 * NULL = nowhere. */
struct okegw_hist;
void okegw_store_commit_histogram(okegw_store *s, struct okegw_hist *h);
/* Marks (kind, id) as accepted by its peer; a bound id starts unconfirmed.
 * cb may be NULL. */
int okegw_store_confirm(okegw_store *s, const char *kind, const char *id, okegw_route_cb cb,
                        void *ud);
/* One exchange for the audit trail (aantoonbaarheid). No bodies: only the
 * SHA-256 of the request body. Strings may be NULL; all are copied. */
typedef struct okegw_audit_rec {
  const char *request_id;
  const char *interaction; /* "flow3.patch_association" */
  const char *caller;      /* connector whose credential was presented */
  const char *connector;   /* the connector that carried it */
  const char *method;
  const char *path;
  const char *resource_id; /* the OKE id it was about */
  const char *mapping;     /* content hash of the Lua mappings used */
  const char *body_sha256; /* of the request body as received */
  const char *event;       /* "request" (a caller's exchange) or "delivery" (an attempt) */
  int status;
  double latency_ms;
  long long delivery_id; /* the outbox delivery it was, 0 = none */
  int attempts;          /* delivery: which attempt this was */
  const char *rules;     /* the OKE rules this exchange broke, flagged not refused ("R21,R28") */
  /* the phase of `connector` the exchange ran under ("off", "shadow",
   * "pilot", "live"): shadow and pilot traffic stay told apart in the trail */
  const char *phase;
  /* event "mirror": where the shadow connector's answer differed from the
   * live one, a JSON array of {"pointer", "change"} (no values: they may be
   * personal data); NULL otherwise */
  const char *differences;
  /* acceptance evidence: the profile violations of the request or the
   * answer, a JSON array of {"rule", "pointer", "side"} (no values), and
   * where a Lua mapping failed ("script.lua:12: message"); NULL = none */
  const char *violations;
  const char *mapping_error;
} okegw_audit_rec;

/* Appends an audit row (written with the next group commit). */
int okegw_store_audit(okegw_store *s, const okegw_audit_rec *r);
/* Audit retention: deletes the rows written before before_ms (wall clock,
 * ms since the epoch), in the store thread; says how many in the log. */
int okegw_store_audit_prune(okegw_store *s, long long before_ms);

/* ---- the outbox ---------------------------------------------------------- */

/* Where a delivery is. The store keeps the names (the text in the state
 * column and in JSON): pending, delivered, failed, dead, dropped. */
typedef enum okegw_delivery_state {
  OKEGW_DLV_PENDING,   /* to be sent, or being sent */
  OKEGW_DLV_DELIVERED, /* the peer took it (2xx) */
  OKEGW_DLV_FAILED,    /* refused for good (4xx, mapping error); may be retried */
  OKEGW_DLV_DEAD,      /* out of time: holds its resource until retried or dropped */
  OKEGW_DLV_DROPPED    /* an operator gave up on it */
} okegw_delivery_state;
#define OKEGW_DLV_NSTATES 5

enum { OKEGW_DLV_REQUEUE_OPERATOR = 1, OKEGW_DLV_REQUEUE_HANDED = 2 };

/* "pending", ...; "?" for a value outside the enum. */
const char *okegw_delivery_state_name(okegw_delivery_state s);
/* The state named `name`: 0, or -1 (out untouched) for an unknown name. */
int okegw_delivery_state_from_name(const char *name, okegw_delivery_state *out);

/* One row of the deliveries table (see the schema in store.c). Times are
 * Unix milliseconds, 0 = none. Strings are NUL-terminated and owned by the
 * record (okegw_delivery_rec_free), except where a function says it
 * borrows them; NULL = none. */
typedef struct okegw_delivery_rec {
  long long id;
  long long created_ms, updated_ms, since_ms, next_ms, delivered_ms, keep_until_ms;
  char *connector, *caller, *interaction, *resource, *resource_id, *request_id;
  char *method, *path, *query, *content_type, *body_sha256, *last_error;
  char *body; /* NULL once it is not kept, or when read without it */
  size_t body_len;
  okegw_delivery_state state;
  int attempts, last_status; /* last_status 0 = none yet */
  /* read-only: set when read from the store */
  int body_kept; /* the store still holds the body */
  /* not yet picked up by the gateway: OKEGW_DLV_REQUEUE_OPERATOR (`okegw
   * deliveries retry|drop` changed it) or _HANDED (PostgreSQL: stored
   * through another instance, or its resource's lease was taken over) */
  int requeue;
} okegw_delivery_rec;

void okegw_delivery_rec_free(okegw_delivery_rec *r);
/* dst becomes a copy of src that owns its strings. 0, or -1 out of memory
 * (dst is then empty). */
int okegw_delivery_rec_copy(okegw_delivery_rec *dst, const okegw_delivery_rec *src);

/* The one JSON shape of a delivery (for okegw deliveries, the status
 * resource and any later admin API). Without flags: every member, null when
 * unset:
 *   id, attempts, lastStatus                    numbers
 *   connector, caller, interaction, resource, resourceId, requestId, method,
 *   path, query, contentType, bodySha256, state, lastError   strings
 *   createdAt, updatedAt, windowStartedAt, nextAttemptAt, deliveredAt,
 *   bodyKeptUntil                               RFC 3339 UTC with millis
 *   requeue, bodyKept                           booleans
 * OKEGW_DELIVERY_JSON_BODY adds the body: "body" (a string, or null when not
 * kept), "bodyBytes" (its length) and "bodyEncoding": "base64" when it is
 * not UTF-8 text without NUL bytes and "body" holds it in base64.
 * OKEGW_DELIVERY_JSON_PUBLIC gives what a sender may see instead (GET
 * /deliveries/{id}, the body of a 202): id, state, connector, interaction,
 * resourceId, createdAt, attempts, lastStatus, lastError, nextAttemptAt
 * (only while pending), deliveredAt, all as above but left out when unset
 * (connector and interaction "" then), and "href": "/deliveries/{id}".
 * Invalid UTF-8 in strings shows as U+FFFD. NULL when out of memory. */
enum { OKEGW_DELIVERY_JSON_BODY = 1u << 0, OKEGW_DELIVERY_JSON_PUBLIC = 1u << 1 };
cJSON *okegw_delivery_json(const okegw_delivery_rec *r, unsigned flags);

/* Results of delivery jobs. `recs` (n of them) belong to the callback, which
 * frees each with okegw_delivery_rec_free and the array with free(). */
typedef void (*okegw_delivery_cb)(void *ud, int rc, long long id, okegw_delivery_rec *recs,
                                  size_t n);

/* Inserts r as a new pending delivery; cb gets its id once it is durable
 * (rc OK), or, on a shared store, rc OKEGW_STORE_HANDED: durable, and
 * another instance delivers it, or the next okegw_store_delivery_requeued
 * hands it back behind the resource's older ones. r is borrowed: it must
 * stay unchanged until cb runs. */
int okegw_store_delivery_add(okegw_store *s, const okegw_delivery_rec *r, okegw_delivery_cb cb,
                             void *ud);
/* Writes r's state, attempts, next_ms, since_ms, last_status, last_error,
 * delivered_ms and keep_until_ms (updated_ms = now); drops the body when
 * drop_body; applies the n route writes and adds the audit row (the
 * attempt that ended it; may be NULL) in the same transaction. r, w and
 * audit are copied. cb may be NULL. rc NOTFOUND (PostgreSQL): another
 * instance holds the resource's lease now, and the row is left as it was
 * (the route writes and the audit row are written: the attempt happened). */
int okegw_store_delivery_update(okegw_store *s, const okegw_delivery_rec *r, int drop_body,
                                const okegw_route_write *w, size_t n, const okegw_audit_rec *audit,
                                okegw_delivery_cb cb, void *ud);
/* Every delivery still open (pending or dead), oldest first, without
 * bodies (body_kept tells whether the row has one): the outbox reads a body
 * when it attempts the delivery. On PostgreSQL only those of resources
 * whose lease this instance holds, after taking every lease that is free
 * (see the leases below). */
int okegw_store_delivery_load_open(okegw_store *s, okegw_delivery_cb cb, void *ud);
/* Deliveries an operator changed (`okegw deliveries retry|drop`); their
 * mark is cleared in the same transaction. On PostgreSQL, also those handed
 * to this instance (rec.requeue OKEGW_DLV_REQUEUE_HANDED), after renewing
 * its leases and taking over the expired ones. The outbox asks once a
 * second. */
int okegw_store_delivery_requeued(okegw_store *s, okegw_delivery_cb cb, void *ud);

/* ---- leases: several instances on one PostgreSQL (store/pg_leases.c) ----
 * The deliveries of a resource (connector, resource) are carried by one
 * instance at a time, the holder of its lease. The lease is taken with a
 * push, renewed by okegw_store_delivery_requeued, let go once the resource
 * has no open delivery, and taken over by another instance once it expired
 * (its holder died, or lost the database). With SQLite there is one
 * instance and these do nothing. */

/* The lease's length when okegw_store_set_lease is not called. */
#define OKEGW_STORE_LEASE_S 30
/* Before the outbox starts. */
void okegw_store_set_lease(okegw_store *s, long ttl_s);
/* Until when (okegw_now_ms's clock) this instance's leases surely hold, and
 * how many times they lapsed (a renewal came only after that time: another
 * instance may have taken any of them, so what the outbox holds in memory is
 * read again). SQLite: LLONG_MAX and 0. An attempt may start only when it
 * ends before until_ms. */
void okegw_store_lease_state(const okegw_store *s, long long *until_ms, unsigned *lapses);
/* Lets the lease of (connector, resource) go, unless an open delivery of
 * it is in the store (then it stays this instance's). */
int okegw_store_lease_release(okegw_store *s, const char *connector, const char *resource);
/* The connectors this instance carries (their names; n of them): it takes
 * over the leases of their resources only, never one it could not send to
 * (instances whose configurations differ for a while, during a reload
 * one after the other). Until the first call, all. OK, or ERROR when out of
 * memory (the list before stays). */
int okegw_store_lease_carry(okegw_store *s, const char *const *connectors, size_t n);
/* This instance's name in the leases (host/pid/random); NULL with SQLite. */
const char *okegw_store_instance(const okegw_store *s);
/* One delivery by id, without its body or (with_body) with it; NOTFOUND
 * when there is none. */
int okegw_store_delivery_get(okegw_store *s, long long id, int with_body, okegw_delivery_cb cb,
                             void *ud);
/* Retention: forgets bodies whose keep_until_ms passed and deletes ended
 * deliveries (delivered, failed, dropped) last changed before
 * ended_before_ms. Pending and dead deliveries are never touched. */
int okegw_store_delivery_prune(okegw_store *s, long long ended_before_ms);

/* Records that `connector` owns every id of `ids` (count n) of `kind`, with
 * facts[i] as the facts of ids[i] when facts is given (an entry may be
 * NULL); cb may be NULL. */
int okegw_store_put(okegw_store *s, const char *kind, const char *const *ids, size_t n,
                    const char *connector, const char *const *facts, okegw_route_cb cb, void *ud);

/* ---- phase history -------------------------------------------------------
 * Every phase change a start or reload applies is kept (DESIGN §8): it is
 * part of the acceptance evidence, so rows are only ever added. */

/* A change to record. Strings are copied; at_ms 0 = now. */
typedef struct okegw_phase_change {
  long long at_ms;           /* Unix milliseconds */
  const char *connector;     /* required */
  const char *from;          /* the phase before; NULL or "" for a new connector */
  const char *to;            /* required: off, shadow, pilot or live */
  const char *reason;        /* the section's phase_reason; may be NULL */
  const char *config_sha256; /* hex SHA-256 of the configuration file; may be NULL */
  const char *instance;      /* which okegw applied it (okegw_store_instance); NULL: SQLite */
} okegw_phase_change;

/* A recorded change as read back. Strings are NUL-terminated; NULL = none
 * (from is NULL for a connector that was new). */
typedef struct okegw_phase_rec {
  long long id; /* increasing: the order the changes were recorded in */
  long long at_ms;
  char *connector, *from, *to, *reason, *config_sha256, *instance;
} okegw_phase_rec;

void okegw_phase_rec_free(okegw_phase_rec *r);

/* The one JSON shape of a change (okegw phases --json, the acceptance
 * report, any later admin API): at (RFC 3339 UTC with milliseconds),
 * connector, from, to, reason, configSha256; strings, null when unset; and
 * "instance" (okegw_store_instance of the instance that applied it) only
 * when recorded, on a store several instances share. NULL when out of
 * memory. */
cJSON *okegw_phase_json(const okegw_phase_rec *r);

/* Results of phase jobs: recs (n of them) are borrowed for the call. */
typedef void (*okegw_phase_cb)(void *ud, int rc, const okegw_phase_rec *recs, size_t n);

/* Records the n changes, all in one transaction (all or none of them), in
 * the order given; cb (may be NULL) runs once they are durable, with the
 * rows as written (id and at_ms filled). ERROR (cb not run) when a change
 * lacks its connector or to. */
int okegw_store_phase_record(okegw_store *s, const okegw_phase_change *changes, size_t n,
                             okegw_phase_cb cb, void *ud);
/* The last recorded change of every connector that has one, by connector
 * name: recs[i].to is the phase it was last recorded in (so a start can
 * record what changed while okegw was down). A connector never recorded is
 * not among them. */
int okegw_store_phase_last(okegw_store *s, okegw_phase_cb cb, void *ud);

/* ---- direct use (operator commands) --------------------------------------
 * On a store opened with okegw_store_open_direct these run synchronously on
 * the calling thread; they are for a command's own process, never for the
 * gateway's loop. Writes are each one short transaction, safe next to a
 * running gateway (which picks them up within seconds). */

/* Opens an existing store file (never creating one), read-only unless
 * writable. Returns OK, or ERROR with a message in *err. */
int okegw_store_open_direct(const char *path, int writable, okegw_store **out, char **err);

typedef struct okegw_delivery_filter {
  const char *connector; /* NULL: any */
  int state;             /* an okegw_delivery_state, or -1: any */
  long limit;            /* at most this many; 0: no limit */
  int with_body;
} okegw_delivery_filter;

/* Called per delivery, oldest first; r is borrowed for the call. A negative
 * return stops the walk and is what the walk returns. */
typedef int (*okegw_delivery_row_cb)(void *ud, const okegw_delivery_rec *r);

int okegw_store_deliveries_list(okegw_store *s, const okegw_delivery_filter *f,
                                okegw_delivery_row_cb cb, void *ud, char **err);
/* One delivery into *out (free with okegw_delivery_rec_free); NOTFOUND when
 * there is none (no message then). */
int okegw_store_deliveries_get(okegw_store *s, long long id, int with_body, okegw_delivery_rec *out,
                               char **err);

/* What a retry or drop did to one delivery. */
typedef enum okegw_dlv_change_outcome {
  OKEGW_DLV_CHANGE_DONE,        /* changed (written once the call returns OK) */
  OKEGW_DLV_CHANGE_MISSING,     /* no such delivery */
  OKEGW_DLV_CHANGE_WRONG_STATE, /* retry: not dead or failed; drop: not pending, dead, failed */
  OKEGW_DLV_CHANGE_NO_BODY      /* retry: its body was not kept, so it cannot be sent again */
} okegw_dlv_change_outcome;

typedef struct okegw_dlv_change {
  long long id;
  okegw_dlv_change_outcome outcome;
  okegw_delivery_state was; /* unless CHANGE_MISSING */
  int body_kept;            /* before the change */
  long long kept_until_ms;  /* drop: the body stays until then; 0 = it is gone */
} okegw_dlv_change;

typedef void (*okegw_dlv_change_cb)(void *ud, const okegw_dlv_change *c);

/* Sets dead or failed deliveries back to pending with a new delivery
 * window: those of ids[0..n), or with connector set every one of that
 * connector in state `state`. Drop gives up on pending, dead or failed
 * deliveries of ids[0..n) and removes their body unless it is kept until
 * later. Both flag each changed row for a running gateway and report every
 * delivery to cb (during the transaction: a DONE one is written only
 * when the call returns OK). All or nothing: on ERROR nothing changed. */
int okegw_store_deliveries_retry(okegw_store *s, const long long *ids, size_t n,
                                 const char *connector, okegw_delivery_state state,
                                 okegw_dlv_change_cb cb, void *ud, char **err);
int okegw_store_deliveries_drop(okegw_store *s, const long long *ids, size_t n,
                                okegw_dlv_change_cb cb, void *ud, char **err);

typedef struct okegw_audit_filter {
  const char *resource_id; /* NULL: any */
  const char *connector;   /* NULL: any; else rows it carried or called with */
  /* RFC 3339 UTC or a prefix of it (checked by the caller): rows at or
   * after since, and up to the end of what until names (2026-06-16 covers
   * the whole day); NULL: no bound */
  const char *since, *until;
  long limit;       /* at most this many; 0: no limit */
  int newest_first; /* 1: newest row first (the admin API); 0: oldest first */
} okegw_audit_filter;

/* Called per audit row, oldest first (newest first with f->newest_first), as a JSON object of its
 * columns (at, request_id, flow, interaction, caller, connector, method, path, resource_id, status,
 * latency_ms, attempts, mapping, body_sha256, delivery_id, event, rules, differences, violations
 * (both JSON), mapping_error; NULL columns left out) and "phase", the connector's phase then (null
 * for rows from before it was recorded); row is borrowed. A negative return stops the walk and is
 * what the walk returns. */
typedef int (*okegw_audit_row_cb)(void *ud, const cJSON *row);

int okegw_store_audit_query(okegw_store *s, const okegw_audit_filter *f, okegw_audit_row_cb cb,
                            void *ud, char **err);

typedef struct okegw_phase_filter {
  const char *connector; /* NULL: any */
  long limit;            /* the last this many changes; 0: all */
} okegw_phase_filter;

/* Called per recorded phase change, oldest first; r is borrowed for the
 * call. A negative return stops the walk and is what the walk returns. A
 * store from before phase history (schema 2, not yet opened by a newer
 * gateway) has none: no calls, OK. */
typedef int (*okegw_phase_row_cb)(void *ud, const okegw_phase_rec *r);

int okegw_store_phases_list(okegw_store *s, const okegw_phase_filter *f, okegw_phase_row_cb cb,
                            void *ud, char **err);

/* ---- acceptance runs (okegw accept; direct use) ----------------------------
 * A run against one connector and the outcome of every step it ran, kept as
 * acceptance evidence (only ever added to). */

/* One step's outcome. Strings are borrowed; step 0 = not numbered (a
 * cleanup), status 0 = nothing sent, ms < 0 = not measured. */
typedef struct okegw_accept_step {
  const char *scenario;      /* the scenario's id ("4") */
  const char *scenario_name; /* may be NULL */
  int step;
  const char *name;
  const char *outcome; /* ok, failed or skipped */
  const char *detail;  /* why it failed or was skipped; may be NULL */
  const char *method, *path;
  int status;
  double ms;
} okegw_accept_step;

/* Starts a run of `mode` ("gateway" or "conformance") against connector;
 * *run gets its id. It stays "incomplete" until okegw_store_accept_end. */
int okegw_store_accept_begin(okegw_store *s, const char *connector, const char *mode,
                             const char *config_sha256, long long *run, char **err);
int okegw_store_accept_step(okegw_store *s, long long run, const okegw_accept_step *a, char **err);
/* outcome: passed, failed or incomplete. */
int okegw_store_accept_end(okegw_store *s, long long run, int passed, int failed, int skipped,
                           const char *outcome, char **err);
/* The last `limit` runs of connector (0: all), newest first, as a new JSON
 * array (*out, the caller deletes it) of {id, startedAt, finishedAt (null
 * while under way), mode, passed, failed, skipped, outcome, scenarios: [{id,
 * name, passed, failed, skipped, steps: [{step, name, outcome, detail}]}]}.
 * A store from before acceptance runs gives an empty array. */
int okegw_store_accept_runs(okegw_store *s, const char *connector, long limit, cJSON **out,
                            char **err);

#endif
