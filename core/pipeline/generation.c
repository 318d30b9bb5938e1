/* Generations (see generation.h). */
#include "pipeline/generation.h"
#include "base/log.h"
#include "base/util.h"
#include "ops/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A configuration shared by a generation and the connectors that were
 * started with it (their plugins keep pointers into it). With several
 * event loops the generations of every loop built from one file share it,
 * read-only: hence the atomic count. */
typedef struct okegw_confbox {
  unsigned refs; /* atomic */
  okegw_conf *conf;
} okegw_confbox;

static okegw_confbox *box_ref(okegw_confbox *b) {
  __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
  return b;
}

static void box_unref(okegw_confbox *b) {
  if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL))
    return;
  okegw_conf_free(b->conf);
  free(b->conf);
  free(b);
}

okegw_gen *okegw_gen_ref(okegw_gen *gen) {
  gen->refs++;
  return gen;
}

/* ---- instance settings -------------------------------------------------- */

/* Host settings a reload changes on a running connector: who may call it,
 * its phase, how the outbox treats it, its mappings. Every other key
 * (plugin, role, address, outbound credentials and TLS, timeouts, the
 * plugin's own keys) belongs to the instance: a change starts a new one. */
static int host_setting(const char *key) {
  static const char *const keys[] = {"phase",
                                     "phase_reason",
                                     "acceptance",
                                     "mirror_of",
                                     "pilot_organizations",
                                     "pilot_components",
                                     "inbound_token",
                                     "callback_token",
                                     "scopes",
                                     "client_cert_subject",
                                     "client_cert_sha256",
                                     "oauth_client_id",
                                     "client_secret_hash",
                                     "validate_answers",
                                     "delivery_wait_ms",
                                     "delivery_max_age_s",
                                     "delivery_concurrency",
                                     "retry_first_ms",
                                     "retry_max_ms",
                                     "keep_bodies_s",
                                     "scripts"};
  size_t n = strlen(key);
  if (strncmp(key, "accept_", 7) == 0)
    return 1; /* acceptance criteria are read by okegw report only */
  /* a secret written as KEY_file or KEY_env is the setting KEY */
  if (n > 5 && strcmp(key + n - 5, "_file") == 0)
    n -= 5;
  else if (n > 4 && strcmp(key + n - 4, "_env") == 0)
    n -= 4;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strlen(keys[i]) == n && strncmp(keys[i], key, n) == 0)
      return 1;
  return 0;
}

/* Every instance key of a is in b with the same value. */
static int kv_within(const okegw_conf_connector *a, const okegw_conf_connector *b) {
  for (size_t i = 0; i < a->nkv; i++) {
    if (host_setting(a->kv[i].key))
      continue;
    const char *v = okegw_conf_get(b, a->kv[i].key);
    if (!v || strcmp(v, a->kv[i].value) != 0)
      return 0;
  }
  return 1;
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int okegw_gen_same_instance(const okegw_conf *ca, const okegw_conf_connector *a,
                            const okegw_conf *cb, const okegw_conf_connector *b) {
  /* the secrets as read now: a rotated token file is a new instance */
  return strcmp(a->name, b->name) == 0 && same_str(a->plugin, b->plugin) && kv_within(a, b) &&
         kv_within(b, a) && same_str(a->token, b->token) && same_str(a->api_key, b->api_key) &&
         same_str(a->client_secret, b->client_secret) &&
         ca->max_document_bytes == cb->max_document_bytes &&
         ca->request_timeout_ms == cb->request_timeout_ms;
}

/* ---- building ------------------------------------------------------------ */

int okegw_gen_load_mappings(const okegw_conf *conf, const okegw_conf_connector *cc,
                            okegw_mapset **out, okegw_diag *diag) {
  okegw_map_limits lim = {.memory_bytes = conf->lua_memory_bytes,
                          .instructions = conf->lua_instructions,
                          .time_ms = conf->lua_time_ms,
                          .lib_dir = conf->scripts_lib};
  okegw_diag local = {0};
  okegw_diag *d = diag ? diag : &local;
  int rc = okegw_mapset_load(cc->scripts, !cc->scripts_explicit, &lim, out, d);
  if (!diag) {
    for (size_t i = 0; i < local.n; i++)
      okegw_log(OKEGW_LOG_ERROR, &(okegw_log_fields){.connector = cc->name, .latency_ms = -1}, "%s",
                local.msgs[i]);
    okegw_diag_free(&local);
  }
  return rc;
}

static okegw_connector *find_in(const okegw_gen *gen, const char *name) {
  return gen ? okegw_connector_by_name(gen, name) : NULL;
}

/* A stop waits until no generation and no retiring connector is left. */
static void released(okegw_gateway *g) {
  if (!g->retiring && !g->gens && g->all_released)
    g->all_released(g);
}

/* Frees a connector no generation holds once it drained. */
typedef struct retiring {
  okegw_gateway *g;
  okegw_connector *c;
  okegw_confbox *home, *here;
  char name[OKEGW_NAME_MAX]; /* for the log line once it is gone; "" when it never loaded */
  int quiet;                 /* c->quiet, which its unload clears */
} retiring;

static void gateway_retired(okegw_gateway *g) {
  g->retiring--;
  released(g);
}

/* Frees what a connector held, unless its unload had to leave it loaded
 * (work still in flight points into it and its configurations). */
static void release_connector(okegw_connector *c, okegw_confbox *home, okegw_confbox *here) {
  if (c->abandoned)
    return;
  free(c);
  box_unref(home);
  box_unref(here);
}

static void on_retired(void *arg) {
  retiring *r = arg;
  okegw_gateway *g = r->g;
  if (r->name[0])
    okegw_log(r->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO,
              &(okegw_log_fields){.connector = r->name, .latency_ms = -1},
              "connector '%s' unloaded%s", r->name,
              r->c->abandoned ? " without fini: work was still in flight (kept in memory)" : "");
  release_connector(r->c, r->home, r->here);
  free(r);
  gateway_retired(g);
}

static void retire(okegw_gateway *g, okegw_connector *c) {
  retiring *r = calloc(1, sizeof *r);
  g->retiring++;
  if (!r) {
    /* no memory to wait with: unloaded at once (what is still in flight
     * keeps the plugin loaded, see okegw_connector_unload) */
    okegw_confbox *home = c->home, *here = c->here;
    okegw_connector_unload(c);
    release_connector(c, home, here);
    gateway_retired(g);
    return;
  }
  *r = (retiring){.g = g, .c = c, .home = c->home, .here = c->here, .quiet = c->quiet};
  if (c->plugin && c->conf && !g->stopping) {
    snprintf(r->name, sizeof r->name, "%s", c->conf->name);
    okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO,
              &(okegw_log_fields){.connector = r->name, .latency_ms = -1},
              "connector '%s' drains: no new work; unloaded once its exchanges ended", r->name);
  }
  okegw_connectors_drain(&c, 1, on_retired, r);
}

void okegw_gen_unref(okegw_gen *gen) {
  if (!gen || --gen->refs)
    return;
  for (size_t i = 0; i < gen->nconns; i++) {
    okegw_connector *c = gen->conns[i];
    if (gen->carry && gen->carry[i])
      okegw_mapset_unref(gen->carry[i]); /* never installed: the connector is not its own */
    else if (c && --c->gens == 0)
      retire(gen->g, c);
  }
  free(gen->carry);
  free(gen->conns);
  box_unref(gen->box);
  okegw_gateway *g = gen->g;
  free(gen);
  g->gens--;
  released(g); /* a stop waits for every generation too */
}

/* A new instance for section cc: loaded, its mappings compiled and its
 * plugin initialised. On failure it stays in the generation, unavailable
 * (start), or the build fails (strict). */
static int start_connector(okegw_gateway *g, okegw_gen *gen, const okegw_conf_connector *cc,
                           int strict, okegw_diag *diag, okegw_connector **out) {
  okegw_connector *c = calloc(1, sizeof *c);
  if (!c) {
    okegw_diag_add(diag, gen->conf->path, cc->line, "[connector %s] out of memory", cc->name);
    return -1;
  }
  *out = c;
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.connector = cc->name;
  okegw_diag local = {0};
  okegw_diag *d = strict ? diag : &local;
  size_t before = d->n;
  int rc = okegw_connector_load(c, gen->conf, cc, d) < 0 ? -1 : 0;
  /* after the load, which starts from a zeroed connector */
  c->metrics = okegw_metrics_connector(g->metrics, cc->name);
  c->quiet = g->main != NULL;
  c->home = box_ref(gen->box);
  c->here = box_ref(gen->box);
  c->gens = 1;
  if (rc == 0) {
    c->loop = g->loop;
    c->http = g->http;
    c->max_document_bytes = gen->conf->max_document_bytes;
    if (okegw_gen_load_mappings(gen->conf, cc, &c->maps, d) < 0) {
      free(c->error);
      c->error = okegw_strdup("its Lua mappings do not compile (see the log); fix them and "
                              "reload");
      rc = -1;
    } else if (okegw_connector_init(c, g->loop, g->http, gen->conf->request_timeout_ms) < 0) {
      if (d->n == before)
        okegw_diag_add(d, gen->conf->path, cc->plugin_line ? cc->plugin_line : cc->line,
                       "[connector %s] %s", cc->name, c->error ? c->error : "refused to start");
      rc = -1;
    }
  }
  for (size_t i = 0; i < local.n; i++)
    okegw_log(OKEGW_LOG_ERROR, &f, "%s", local.msgs[i]);
  okegw_diag_free(&local);
  if (rc < 0) {
    okegw_log(OKEGW_LOG_ERROR, &f, "connector '%s' %s: %s", cc->name,
              strict ? "not started" : "disabled", c->error ? c->error : "?");
    return strict ? -1 : 0;
  }
  f.mapping = okegw_mapset_hash(c->maps);
  okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO, &f,
            "connector '%s' ready: plugin %s %s, role %s, phase %s, mappings %s (%s)", cc->name,
            c->plugin->name, c->plugin->version ? c->plugin->version : "",
            okegw_role_name(cc->role), okegw_phase_name(cc->phase), okegw_mapset_dir(c->maps),
            f.mapping);
  return 0;
}

/* Fresh mappings for a connector carried over; swapped in at install. */
typedef struct carried {
  okegw_connector *c;
  okegw_mapset *maps;
} carried;

/* model: another loop's generation of the same file (shared is its box):
 * a connector that started there must start here too, or the loops would
 * disagree about it (one says 503 where another takes the push). */
static int build(okegw_gateway *g, okegw_conf *conf, okegw_confbox *shared, const okegw_gen *model,
                 okegw_gen *prev, int strict, okegw_diag *diag, okegw_gen **out) {
  *out = NULL;
  okegw_gen *gen = calloc(1, sizeof *gen);
  okegw_confbox *box = shared ? box_ref(shared) : calloc(1, sizeof *box);
  size_t n = conf->nconnectors;
  carried *keep = calloc(n ? n : 1, sizeof *keep);
  if (gen)
    gen->conns = calloc(n ? n : 1, sizeof *gen->conns);
  if (!gen || !box || !keep || !gen->conns) {
    okegw_diag_add(diag, conf->path, 0, "out of memory");
    if (gen)
      free(gen->conns);
    free(gen);
    free(keep);
    if (shared) {
      box_unref(box);
      return -1;
    }
    free(box);
    okegw_conf_free(conf);
    free(conf);
    return -1;
  }
  if (!shared) {
    box->refs = 1;
    box->conf = conf;
  }
  gen->refs = 1;
  gen->g = g;
  g->gens++;
  gen->box = box;
  gen->conf = conf;
  gen->number = prev ? prev->number + 1 : 1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const okegw_conf_connector *cc = &conf->connectors[i];
    okegw_connector *old = find_in(prev, cc->name);
    if (old && old->plugin && old->ready && !old->closing &&
        okegw_gen_same_instance(prev->conf, old->conf, conf, cc)) {
      /* the instance stays; its mappings are compiled again from the file */
      if (okegw_gen_load_mappings(conf, cc, &keep[i].maps, diag) < 0) {
        rc = -1;
        break;
      }
      keep[i].c = old;
      continue;
    }
    int must = strict || (model && i < model->nconns && model->conns[i] && model->conns[i]->ready);
    if (start_connector(g, gen, cc, must, diag, &gen->conns[gen->nconns]) < 0)
      rc = -1;
    if (gen->conns[gen->nconns])
      gen->nconns++;
  }
  /* the carried connectors join in the file's order, with the new section;
   * they change only when the generation is installed (carry) */
  okegw_connector **ordered = calloc(n ? n : 1, sizeof *ordered);
  okegw_mapset **carry = calloc(n ? n : 1, sizeof *carry);
  if (rc == 0 && (!ordered || !carry)) {
    okegw_diag_add(diag, conf->path, 0, "out of memory");
    rc = -1;
  }
  if (rc < 0) {
    /* nothing of it runs: new instances stop now, the carried keep theirs */
    free(ordered);
    free(carry);
    for (size_t i = 0; i < n; i++)
      okegw_mapset_unref(keep[i].maps);
    free(keep);
    okegw_gen_unref(gen); /* drains and frees the instances it started */
    return -1;
  }
  for (size_t i = 0, fresh = 0; i < n; i++) {
    ordered[i] = keep[i].c ? keep[i].c : gen->conns[fresh++];
    carry[i] = keep[i].maps;
  }
  free(gen->conns);
  gen->conns = ordered;
  gen->nconns = n;
  gen->carry = carry;
  free(keep);
  for (size_t i = 0; i < n; i++)
    if (conf->connectors[i].inbound_token || conf->connectors[i].client_cert_subject ||
        conf->connectors[i].client_cert_sha256)
      gen->identity = 1;
  if (conf->oauth_issuer || conf->token_endpoint)
    gen->identity = 1;
  *out = gen;
  return 0;
}

int okegw_gen_build(okegw_gateway *g, okegw_conf *conf, okegw_gen *prev, int strict,
                    okegw_diag *diag, okegw_gen **out) {
  return build(g, conf, NULL, NULL, prev, strict, diag, out);
}

int okegw_gen_build_like(okegw_gateway *g, const okegw_gen *model, okegw_gen *prev, int strict,
                         okegw_diag *diag, okegw_gen **out) {
  return build(g, model->conf, model->box, model, prev, strict, diag, out);
}

void okegw_gen_install(okegw_gateway *g, okegw_gen *gen) {
  for (size_t i = 0; gen->carry && i < gen->nconns; i++) {
    okegw_connector *c = gen->conns[i];
    okegw_mapset *maps = gen->carry[i];
    if (!maps)
      continue;
    c->gens++;
    c->conf = &gen->conf->connectors[i]; /* same instance settings, new host settings */
    box_unref(c->here);
    c->here = box_ref(gen->box); /* conf points into it now */
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = c->conf->name;
    if (strcmp(okegw_mapset_hash(maps), okegw_mapset_hash(c->maps)) != 0) {
      f.mapping = okegw_mapset_hash(maps);
      okegw_log(c->quiet ? OKEGW_LOG_DEBUG : OKEGW_LOG_INFO, &f, "mappings of '%s' reloaded",
                c->conf->name);
    }
    /* exchanges in flight hold their own reference to the old set */
    okegw_mapset_unref(c->maps);
    c->maps = maps;
  }
  free(gen->carry);
  gen->carry = NULL;
  okegw_gen *old = g->gen;
  g->gen = gen;
  if (g->outbox)
    okegw_outbox_use(g->outbox, gen->conf, gen->conns, gen->nconns);
  okegw_gen_unref(old);
}
