/* Lua field mappings per connector.
 *
 * A connector's scripts live in one folder (default scripts/<connector>/).
 * Each file is named after the interaction it maps, e.g.
 * flow2.put_offering.lua, and may define two functions:
 *   to_peer(msg, ctx)    the message on its way to the peer
 *   from_peer(msg, ctx)  the peer's answer on its way back
 * A missing file or function means identity. A function returns the new
 * message, or nothing to keep the (possibly edited) msg it was given.
 *
 * A mapping set is one sandboxed Lua state with every script of the folder
 * compiled into it, a memory quota and an instruction budget per call. The
 * string and table functions whose work does not show in the instruction
 * count charge it to the budget before they run (patterns by an upper bound
 * on their backtracking), a wall-clock limit backs the count up, and the
 * libraries the scripts share are read-only. It is
 * reference counted: a request keeps the set it started with, so a reload
 * never changes a mapping under a request in flight. */
#ifndef OKEGW_MAPPING_H
#define OKEGW_MAPPING_H

#include "base/conf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct okegw_mapset okegw_mapset;

typedef struct okegw_map_limits {
  size_t memory_bytes; /* per Lua state; 0 = 32 MiB */
  long instructions;   /* per call; 0 = 10 million */
  const char *lib_dir; /* where require() looks; NULL = none */
  long time_ms;        /* wall-clock limit per call; 0 = instructions / 10000, at least 1000 */
} okegw_map_limits;

/* What a mapping function sees as its second argument (ctx). */
typedef struct okegw_map_ctx {
  const char *connector;
  const char *interaction;
  const char *id; /* path id, "" if none */
  const char *phase;
  int status;                       /* from_peer: the peer's HTTP status (ctx.status); 0 = none */
  const okegw_conf_connector *conf; /* its key/value pairs become ctx.config */
  /* Optional output: what the script left in ctx.id (e.g. the deelname a
   * supplier's callback is about). */
  char *id_out;
  size_t id_out_size;
} okegw_map_ctx;

/* Compiles every *.lua file in dir. A missing folder is an empty set when
 * `optional` is set. Problems go to diag as FILE:LINE: message; returns 0 or
 * -1 (then *out is NULL). */
int okegw_mapset_load(const char *dir, int optional, const okegw_map_limits *lim,
                      okegw_mapset **out, okegw_diag *diag);
okegw_mapset *okegw_mapset_ref(okegw_mapset *m);
void okegw_mapset_unref(okegw_mapset *m);
/* A thread that ran mappings ends ([gateway] workers): its watchdog timer
 * goes with it. */
void okegw_mapping_thread_end(void);

/* SHA-256 (hex) over the names and contents of the scripts; the same text
 * gives the same hash. "-" for an empty set. */
const char *okegw_mapset_hash(const okegw_mapset *m);
/* The folder the set was loaded from. */
const char *okegw_mapset_dir(const okegw_mapset *m);
/* 1 when the interaction has a function for that direction. */
int okegw_mapset_has(const okegw_mapset *m, const char *interaction, int from_peer);

/* Runs one mapping. On success returns 0 and sets *out to a new tree, or to
 * NULL when there is no function (identity). On failure returns -1 with a
 * message naming file:line in err, or OKEGW_MAP_KILLED when the call was
 * stopped by its memory, instruction or time budget. Never changes `in`. */
#define OKEGW_MAP_KILLED (-2)
int okegw_mapset_run(okegw_mapset *m, const char *interaction, int from_peer, const cJSON *in,
                     const okegw_map_ctx *ctx, cJSON **out, char *err, size_t errsz);
/* The same with the result as JSON text (heap, free(); NULL when there is
 * no function), printed straight from Lua with no tree in between: for a
 * message that is only sent on. Byte for byte okegw_json_print of *out. */
int okegw_mapset_run_text(okegw_mapset *m, const char *interaction, int from_peer, const cJSON *in,
                          const okegw_map_ctx *ctx, char **text, char *err, size_t errsz);

#endif
