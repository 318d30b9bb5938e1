/*
 * sim: a simulated test supplier (toetsaanbieder, TA role) living inside the
 * gateway process, so that the default configuration is a working demo with
 * no network peer.
 *
 * It serves flow 0 (the test catalogue, fixed at init) and flow 2 (zittingen
 * and deelnames, kept in memory per connector name: every instance of one
 * connector in the process shares them, see "Shared stores" below). Nothing
 * is persisted: a restart starts from an empty session plan.
 *
 * catalogue_seed = TEXT makes an instance a different supplier: its tests
 * get ids, codes and names derived from TEXT (a tiny hash, the same every
 * run), so two sim connectors, or the built-in one and `okegw sim --seed`,
 * have disjoint catalogues. Without it the catalogue is the fixed one below.
 *
 * Only the plugin ABI (1.2), the C standard library and POSIX threads are
 * used; JSON and query strings go through the host's helpers. Every callback
 * answers synchronously.
 */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <oke/plugin.h>

#define SIM_CONSUMER_KEY "nl-test-admin"
#define SIM_URL_BASE_DEFAULT "https://sim.example/start"
#define SIM_PAGE_SIZE_DEFAULT 10
#define SIM_PAGE_SIZE_MAX 250
#define SIM_MERGE_DEPTH_MAX 64
#define SIM_JSON "application/json"
#define SIM_SEED_MAX 64 /* bytes of catalogue_seed */

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct sim_entry {
  char *id;
  oke_json *doc; /* owned */
} sim_entry;

/* Insertion-ordered id -> document map. A demo holds a handful of objects,
 * so linear lookups are fine and keep listings in a stable order. */
typedef struct sim_store {
  sim_entry *v;
  size_t len;
  size_t cap;
} sim_store;

/* Shared stores.
 *
 * The host makes one instance per event loop ([gateway] workers = N), and a
 * reload starts the new instance of a changed connector before the old one's
 * fini; an unchanged one it carries over without init or fini. All of them
 * must see one session plan, as the gateway sees one connector: a zitting PUT
 * through one loop is read through another. So the plan lives in a
 * process-wide registry, one sim_shared per connector name: the first init
 * creates it, later inits of that name share it, the last fini frees it.
 * Across a reload the new instance therefore keeps the zittingen and
 * deelnames of the old one.
 *
 * Instances run on different threads, so every access to offerings and
 * associations holds `lock`, and documents cross it only as copies (or as a
 * freshly parsed body handed over whole): no instance keeps a pointer into
 * the stores once it unlocks. A store holds no host pointer: each instance
 * works on it with its own host, and the last fini frees it with its own. */
typedef struct sim_shared {
  struct sim_shared *next; /* registry list, under sim_registry_lock */
  char *name;              /* the connector's name; NULL: not in the registry */
  unsigned refs;           /* instances using it, under sim_registry_lock */
  pthread_mutex_t lock;    /* guards the two stores below */
  sim_store offerings;     /* zittingen by offeringId */
  sim_store associations;  /* deelnames by associationId */
} sim_shared;

static pthread_mutex_t sim_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sim_shared *sim_registry;

/* What stays per instance, and why it need not be shared: conn and host are
 * the instance's own (the host is valid until this instance's fini, and logs
 * carry its conn). url_base and catalogue follow from the configuration,
 * the same for every instance of one connector, and the catalogue is derived
 * from catalogue_seed by a fixed hash (no random numbers, no counters), so
 * every instance builds the same one. It is not shared because it need not
 * be, and it must not be: the host's json_print changes a tree while it
 * prints it, and a component is printed straight from the catalogue. The
 * plugin has no timers, counters or id generators: ids come from callers. */
typedef struct sim_state {
  oke_conn *conn;
  const oke_host *host;
  char *url_base;      /* access_url_base without trailing '/' */
  oke_json *catalogue; /* array of Component, read-only after init */
  sim_shared *shared;  /* zittingen and deelnames of this connector name */
} sim_state;

typedef struct sim_paging {
  long size;
  long number;
} sim_paging;

static char *sim_strndup(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static char *sim_strdup(const char *s) { return sim_strndup(s, strlen(s)); }

/* UUIDs name one resource in either case (RFC 9562): the gateway hands
 * path ids over lower-cased, a body may spell a reference in upper case. */
static int same_id(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static sim_entry *store_find(sim_store *st, const char *id) {
  for (size_t i = 0; i < st->len; i++)
    if (same_id(st->v[i].id, id))
      return &st->v[i];
  return NULL;
}

/* Create or replace. Takes ownership of doc only when it returns OKE_OK. */
static int store_put(const oke_host *h, sim_store *st, const char *id, oke_json *doc,
                     int *created) {
  sim_entry *e = store_find(st, id);
  if (e) {
    h->json_free(e->doc);
    e->doc = doc;
    *created = 0;
    return OKE_OK;
  }
  if (st->len == st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 16;
    sim_entry *v = realloc(st->v, cap * sizeof *v);
    if (!v)
      return OKE_ENOMEM;
    st->v = v;
    st->cap = cap;
  }
  char *key = sim_strdup(id);
  if (!key)
    return OKE_ENOMEM;
  st->v[st->len].id = key;
  st->v[st->len].doc = doc;
  st->len++;
  *created = 1;
  return OKE_OK;
}

static void store_free(const oke_host *h, sim_store *st) {
  for (size_t i = 0; i < st->len; i++) {
    free(st->v[i].id);
    h->json_free(st->v[i].doc);
  }
  free(st->v);
  st->v = NULL;
  st->len = st->cap = 0;
}

static void shared_free(const oke_host *h, sim_shared *sh) {
  store_free(h, &sh->associations);
  store_free(h, &sh->offerings);
  pthread_mutex_destroy(&sh->lock);
  free(sh->name);
  free(sh);
}

/* The stores of connector `name`, shared with the other live instances of
 * that name, or new ones; NULL when out of memory. Without a name (a host
 * that gives none) the stores are the instance's own. */
static sim_shared *shared_acquire(const char *name) {
  pthread_mutex_lock(&sim_registry_lock);
  sim_shared *sh = sim_registry;
  while (name && sh && strcmp(sh->name, name) != 0)
    sh = sh->next;
  if (name && sh) {
    sh->refs++;
    pthread_mutex_unlock(&sim_registry_lock);
    return sh;
  }
  sh = calloc(1, sizeof *sh);
  if (sh && name && !(sh->name = sim_strdup(name))) {
    free(sh);
    sh = NULL;
  }
  if (sh && pthread_mutex_init(&sh->lock, NULL) != 0) {
    free(sh->name);
    free(sh);
    sh = NULL;
  }
  if (sh) {
    sh->refs = 1;
    if (name) {
      sh->next = sim_registry;
      sim_registry = sh;
    }
  }
  pthread_mutex_unlock(&sim_registry_lock);
  return sh;
}

/* Drops one instance's hold; the last one out frees the stores, with its
 * own host (no other instance can reach them any more). */
static void shared_release(const oke_host *h, sim_shared *sh) {
  pthread_mutex_lock(&sim_registry_lock);
  int last = --sh->refs == 0;
  if (last && sh->name) {
    sim_shared **p = &sim_registry;
    while (*p != sh)
      p = &(*p)->next;
    *p = sh->next;
  }
  pthread_mutex_unlock(&sim_registry_lock);
  if (last)
    shared_free(h, sh);
}

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                              */
/* ------------------------------------------------------------------------ */

/* Set obj[key] = item, accumulating the first failure in *rc. Always
 * consumes item, so builders can chain calls and check rc once at the end. */
static void jset(const oke_host *h, oke_json *obj, const char *key, oke_json *item, int *rc) {
  if (*rc == OKE_OK && obj && item) {
    if (h->json_set(obj, key, item) != OKE_OK)
      *rc = OKE_ENOMEM;
    return;
  }
  if (item)
    h->json_free(item);
  if (*rc == OKE_OK)
    *rc = OKE_ENOMEM;
}

/* Same as jset for arrays. */
static void jappend(const oke_host *h, oke_json *arr, oke_json *item, int *rc) {
  if (*rc == OKE_OK && arr && item) {
    if (h->json_append(arr, item) != OKE_OK)
      *rc = OKE_ENOMEM;
    return;
  }
  if (item)
    h->json_free(item);
  if (*rc == OKE_OK)
    *rc = OKE_ENOMEM;
}

static oke_json *jget(const oke_host *h, const oke_json *obj, const char *key) {
  if (!obj || h->json_type(obj) != OKE_JSON_OBJECT)
    return NULL;
  return h->json_get(obj, key);
}

static const char *jstr(const oke_host *h, const oke_json *obj, const char *key) {
  oke_json *v = jget(h, obj, key);
  return v ? h->json_string(v) : NULL;
}

/* The consumers[] entry whose consumerKey is exactly nl-test-admin. */
static oke_json *consumer_find(const oke_host *h, const oke_json *arr, const char *key) {
  if (!arr || h->json_type(arr) != OKE_JSON_ARRAY)
    return NULL;
  size_t n = h->json_size(arr);
  for (size_t i = 0; i < n; i++) {
    oke_json *c = h->json_at(arr, i);
    const char *k = jstr(h, c, "consumerKey");
    if (k && strcmp(k, key) == 0)
      return c;
  }
  return NULL;
}

static oke_json *consumer_nl(const oke_host *h, const oke_json *doc) {
  return consumer_find(h, jget(h, doc, "consumers"), SIM_CONSUMER_KEY);
}

/* ------------------------------------------------------------------------ */
/* Catalogue                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct sim_component {
  const char *id;
  const char *code;
  const char *name;
  const char *abbreviation;
  const char *description;
  const char *assessment;
  const char *mode_of_delivery;
  const char *duration;
  const char *result_value_type;
  const char *pass_from;
  int exam;
  int licensed;
  int additional_testing_time; /* minutes; >= 10000 means unlimited */
  int retries;
  const char *needs[4];  /* NULL-terminated */
  const char *safety[4]; /* NULL-terminated */
} sim_component;

/* The simulated supplier, as organization reference of every test. */
#define SIM_ORGANIZATION_ID "f5c1e8a2-3b7d-4c9e-8a1f-6d2b4e0c7f91"

/* Sorted by name, the OOAPI default sort of GET /components. */
static const sim_component sim_components[] = {
    {
        .id = "3d0a6c1e-8b2f-4f7a-9e4d-1c5b7a9e2f10",
        .code = "BURG-KT-2026",
        .name = "Burgerschap kennistoets",
        .abbreviation = "BURG-KT",
        .description =
            "Kennistoets burgerschap mbo niveau 2, 3 en 4: politiek-juridische, economische, "
            "sociaal-maatschappelijke en vitale dimensie. Cohort 24-25 en 25-26.",
        .assessment = "Digitale kennistoets, automatisch gescoord",
        .mode_of_delivery = "online",
        .duration = "PT45M",
        .result_value_type = "insufficient-satisfactory-good",
        .pass_from = "satisfactory",
        .exam = 0,
        .licensed = 1,
        .additional_testing_time = 15,
        .retries = 2,
        .needs = {"extraTime", "spoken", NULL},
        .safety = {"securedComputer", NULL},
    },
    {
        .id = "5a9e2b47-1c3d-4e8f-a6b2-7d0c9e4f1a22",
        .code = "ENG-B1-LZ",
        .name = "Engels B1 lezen",
        .abbreviation = "ENG-B1-LZ",
        .description =
            "Leesvaardigheid Engels op ERK-niveau B1, generiek mbo niveau 4. Crebo 25190, cohort "
            "24-25.",
        .assessment = "Digitale toets met meerkeuzevragen, automatisch gescoord",
        .mode_of_delivery = "situated",
        .duration = "PT90M",
        .result_value_type = "referenceLevelERK",
        .pass_from = "B1",
        .exam = 1,
        .licensed = 1,
        .additional_testing_time = 30,
        .retries = 2,
        .needs = {"extraTime", "spoken", NULL},
        .safety = {"securedComputer", "fixedLocation", "surveillance", NULL},
    },
    {
        .id = "7c4f1e93-2a6b-4d5c-8e1f-0b3a5c7d9e34",
        .code = "KD-K0080",
        .name = "Keuzedeel Ondernemerschap",
        .abbreviation = "KD-OND",
        .description =
            "Examen keuzedeel K0080 Ondernemerschap mbo, kennistoets met casus. Cohort 24-25.",
        .assessment = "Digitale toets met open en gesloten vragen, beoordeeld door een examinator",
        .mode_of_delivery = "distance-learning",
        .duration = "PT60M",
        .result_value_type = "0-100",
        .pass_from = "55",
        .exam = 1,
        .licensed = 0,
        .additional_testing_time = 15,
        .retries = 1,
        .needs = {"extraTime", "spell-checker-on-screen", NULL},
        .safety = {"securedComputer", NULL},
    },
    {
        .id = "9e2b5d18-4f7a-4c3e-b1d6-2a8f0c4e6b46",
        .code = "NED3F-LZ-2026",
        .name = "Nederlands lezen 3F",
        .abbreviation = "NED3F-LZ",
        .description =
            "Centraal examen Nederlands lezen op referentieniveau 3F, mbo niveau 4. Crebo 25190, "
            "cohort 24-25 en 25-26.",
        .assessment = "Digitale toetsing, automatisch gescoord",
        .mode_of_delivery = "situated",
        .duration = "PT120M",
        .result_value_type = "0.0-10.0",
        .pass_from = "5.5",
        .exam = 1,
        .licensed = 1,
        .additional_testing_time = 30,
        .retries = 2,
        .needs = {"extraTime", "spoken", "spell-checker-on-screen", NULL},
        .safety = {"securedComputer", "fixedLocation", "surveillance", NULL},
    },
    {
        .id = "b16d3f2a-6e9c-4a1b-9f5e-3c7d1a8b0e58",
        .code = "PVB-VIG-B1K1",
        .name = "Proeve van bekwaamheid Verzorgende IG",
        .abbreviation = "PVB-VIG",
        .description =
            "Proeve van bekwaamheid kerntaak B1-K1 Verzorgende-IG, niveau 3, uitgevoerd in de "
            "beroepspraktijk. Crebo 25655, cohort 23-24 en 24-25.",
        .assessment = "Praktijkbeoordeling door twee beoordelaars met een beoordelingsformulier",
        .mode_of_delivery = "situated",
        .duration = "PT240M",
        .result_value_type = "pass-or-fail",
        .pass_from = "passed",
        .exam = 1,
        .licensed = 1,
        .additional_testing_time = 60,
        .retries = 1,
        .needs = {"extraTime", NULL},
        .safety = {"fixedLocation", "surveillance", NULL},
    },
    {
        .id = "d38a7c5e-0f1b-4e6d-a2c9-5e1b3d7f9a6a",
        .code = "REK2F-2026",
        .name = "Rekenen 2F",
        .abbreviation = "REK2F",
        .description =
            "Rekenexamen mbo op referentieniveau 2F, niveau 2 en 3. Crebo 25655, cohort 24-25.",
        .assessment = "Digitale toetsing, automatisch gescoord",
        .mode_of_delivery = "situated",
        .duration = "PT60M",
        .result_value_type = "referenceLevelRKTR",
        .pass_from = "2F",
        .exam = 1,
        .licensed = 1,
        .additional_testing_time = 10000,
        .retries = 2,
        .needs = {"extraTime", "spoken", NULL},
        .safety = {"securedComputer", "fixedLocation", "surveillance", NULL},
    },
};

#define SIM_NCOMPONENTS (sizeof sim_components / sizeof sim_components[0])

static oke_json *lts_new(const oke_host *h, const char *text) {
  int rc = OKE_OK;
  oke_json *arr = h->json_new_array();
  oke_json *o = h->json_new_object();
  jset(h, o, "language", h->json_new_string("nl-NL"), &rc);
  jset(h, o, "value", h->json_new_string(text), &rc);
  jappend(h, arr, o, &rc);
  if (rc != OKE_OK && arr) {
    h->json_free(arr);
    arr = NULL;
  }
  return arr;
}

static oke_json *ident_new(const oke_host *h, const char *type, const char *code) {
  int rc = OKE_OK;
  oke_json *o = h->json_new_object();
  jset(h, o, "codeType", h->json_new_string(type), &rc);
  jset(h, o, "code", h->json_new_string(code), &rc);
  if (rc != OKE_OK && o) {
    h->json_free(o);
    o = NULL;
  }
  return o;
}

static oke_json *strings_new(const oke_host *h, const char *const *v, size_t max) {
  int rc = OKE_OK;
  oke_json *arr = h->json_new_array();
  for (size_t i = 0; i < max && v[i]; i++)
    jappend(h, arr, h->json_new_string(v[i]), &rc);
  if (rc != OKE_OK && arr) {
    h->json_free(arr);
    arr = NULL;
  }
  return arr;
}

/* ------------------------------------------------------------------------ */
/* Seeded catalogues                                                         */
/* ------------------------------------------------------------------------ */

/* FNV-1a over the seed, a label and a number, then the splitmix64 finisher
 * so that neighbouring numbers give unrelated bits. Not cryptographic: it
 * only has to be stable and to spread. */
static unsigned long long seed_hash(const char *seed, const char *label, unsigned n) {
  unsigned long long x = 1469598103934665603ULL;
  const char *parts[2] = {seed, label};
  for (int p = 0; p < 2; p++) {
    for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++)
      x = (x ^ *c) * 1099511628211ULL;
    x = (x ^ 0xffu) * 1099511628211ULL; /* "ab"+"c" differs from "a"+"bc" */
  }
  for (int i = 0; i < 4; i++)
    x = (x ^ ((n >> (8 * i)) & 0xffu)) * 1099511628211ULL;
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* A version 4 style UUID (RFC 9562 layout: version nibble 4, variant 10)
 * derived from seed and label; out has room for 37 bytes. */
static void seed_uuid(const char *seed, const char *label, char out[37]) {
  unsigned char b[16];
  for (unsigned half = 0; half < 2; half++) {
    unsigned long long x = seed_hash(seed, label, half);
    for (int i = 0; i < 8; i++)
      b[half * 8 + (unsigned)i] = (unsigned char)(x >> (8 * i));
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

/* What a seed changes in a component: its id, code, abbreviation and name,
 * and the supplier's organization, name and test system. The fixed
 * catalogue uses the table's values unchanged. */
typedef struct sim_names {
  char id[37];
  char organization[37];
  char code[64];
  char abbreviation[64];
  char name[128 + SIM_SEED_MAX];
  char provider[64 + SIM_SEED_MAX];
  char system[16 + SIM_SEED_MAX]; /* x-testSystem */
} sim_names;

static void names_for(const char *seed, const sim_component *d, sim_names *n) {
  if (!seed) {
    snprintf(n->id, sizeof n->id, "%s", d->id);
    snprintf(n->organization, sizeof n->organization, "%s", SIM_ORGANIZATION_ID);
    snprintf(n->code, sizeof n->code, "%s", d->code);
    snprintf(n->abbreviation, sizeof n->abbreviation, "%s", d->abbreviation);
    snprintf(n->name, sizeof n->name, "%s", d->name);
    snprintf(n->provider, sizeof n->provider, "Gesimuleerde Toetsaanbieder");
    snprintf(n->system, sizeof n->system, "okegw-sim");
    return;
  }
  /* the label is the table's id, so a test keeps its derived id when rows
   * are added or reordered */
  seed_uuid(seed, d->id, n->id);
  seed_uuid(seed, "organization", n->organization);
  unsigned tag = (unsigned)(seed_hash(seed, "tag", 0) & 0xffffu);
  snprintf(n->code, sizeof n->code, "%s-%04X", d->code, tag);
  snprintf(n->abbreviation, sizeof n->abbreviation, "%s-%04X", d->abbreviation, tag);
  snprintf(n->name, sizeof n->name, "%s (%s)", d->name, seed);
  snprintf(n->provider, sizeof n->provider, "Gesimuleerde Toetsaanbieder %s", seed);
  snprintf(n->system, sizeof n->system, "okegw-sim-%s", seed);
}

/* NULL when seed is a usable catalogue_seed, else why not. */
static const char *seed_problem(const char *seed) {
  size_t len = strlen(seed);
  if (len == 0)
    return "catalogue_seed is empty: leave the key out for the default catalogue";
  if (len > SIM_SEED_MAX)
    return "catalogue_seed is longer than 64 bytes";
  for (const unsigned char *c = (const unsigned char *)seed; *c; c++)
    if (*c < 0x20 || *c == 0x7f)
      return "catalogue_seed holds a control character";
  return NULL;
}

/* One full OOAPI Component (digest 2.1) from a table row. */
static oke_json *component_new(const oke_host *h, const sim_component *d, const char *seed) {
  int rc = OKE_OK;
  oke_json *o = h->json_new_object();
  const char *modes[] = {d->mode_of_delivery, NULL};
  sim_names nm;
  names_for(seed, d, &nm);

  jset(h, o, "componentId", h->json_new_string(nm.id), &rc);
  jset(h, o, "primaryCode", ident_new(h, "componentCode", nm.code), &rc);
  jset(h, o, "componentType", h->json_new_string("test"), &rc);
  jset(h, o, "name", lts_new(h, nm.name), &rc);
  jset(h, o, "abbreviation", h->json_new_string(nm.abbreviation), &rc);
  jset(h, o, "modeOfDelivery", strings_new(h, modes, 1), &rc);
  jset(h, o, "duration", h->json_new_string(d->duration), &rc);
  jset(h, o, "description", lts_new(h, d->description), &rc);
  jset(h, o, "teachingLanguage", h->json_new_string("nld"), &rc);
  jset(h, o, "assessment", lts_new(h, d->assessment), &rc);

  oke_json *codes = h->json_new_array();
  jappend(h, codes, ident_new(h, "x-testSystem", nm.system), &rc);
  jappend(h, codes, ident_new(h, "x-testProvider", nm.provider), &rc);
  jset(h, o, "otherCodes", codes, &rc);
  jset(h, o, "organization", h->json_new_string(nm.organization), &rc);

  oke_json *c = h->json_new_object();
  jset(h, c, "consumerKey", h->json_new_string(SIM_CONSUMER_KEY), &rc);
  jset(h, c, "additionalTestingTime", h->json_new_number(d->additional_testing_time), &rc);
  jset(h, c, "availablePersonalNeeds", strings_new(h, d->needs, 4), &rc);
  jset(h, c, "safety", strings_new(h, d->safety, 4), &rc);
  jset(h, c, "exam", h->json_new_bool(d->exam), &rc);
  jset(h, c, "resultValueType", h->json_new_string(d->result_value_type), &rc);
  jset(h, c, "passFrom", h->json_new_string(d->pass_from), &rc);
  jset(h, c, "retries", h->json_new_number(d->retries), &rc);
  jset(h, c, "status", h->json_new_string("active"), &rc);
  jset(h, c, "licensed", h->json_new_bool(d->licensed), &rc);
  oke_json *consumers = h->json_new_array();
  jappend(h, consumers, c, &rc);
  jset(h, o, "consumers", consumers, &rc);

  if (rc != OKE_OK && o) {
    h->json_free(o);
    o = NULL;
  }
  return o;
}

static oke_json *catalogue_new(const oke_host *h, const char *seed) {
  int rc = OKE_OK;
  oke_json *arr = h->json_new_array();
  for (size_t i = 0; i < SIM_NCOMPONENTS; i++)
    jappend(h, arr, component_new(h, &sim_components[i], seed), &rc);
  if (rc != OKE_OK && arr) {
    h->json_free(arr);
    arr = NULL;
  }
  return arr;
}

/* ------------------------------------------------------------------------ */
/* Query strings (decoded by the host's query_get)                           */
/* ------------------------------------------------------------------------ */

/* A filter's value: 0 with out set ("" when absent), or OKE_EINVAL with *why
 * set for a 400. */
static int query_param(const oke_host *h, const char *query, const char *name, char *out,
                       size_t outsz, const char **why) {
  if (h->query_get(query, name, out, outsz) >= 0)
    return OKE_OK;
  *why = "a query parameter is malformed or too long";
  return OKE_EINVAL;
}

/* Whether the expand parameter's comma list names item. */
static int query_expands(const char *expand, const char *item) {
  for (const char *tok = expand; *tok;) {
    while (*tok == ' ')
      tok++;
    size_t n = strcspn(tok, ",");
    size_t len = n;
    while (len > 0 && tok[len - 1] == ' ')
      len--;
    if (len == strlen(item) && strncmp(tok, item, len) == 0)
      return 1;
    tok += n + (tok[n] == ',');
  }
  return 0;
}

/* A strictly positive decimal integer no larger than max. */
static int parse_posint(const char *s, long max, long *out) {
  long v = 0;
  if (!s || !*s)
    return OKE_EINVAL;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return OKE_EINVAL;
    int d = *s - '0';
    if (v > (max - d) / 10)
      return OKE_EINVAL;
    v = v * 10 + d;
  }
  if (v < 1)
    return OKE_EINVAL;
  *out = v;
  return OKE_OK;
}

/* pageSize / pageNumber. On OKE_EINVAL *why says what to tell the client. */
static int parse_paging(const oke_host *h, const char *query, sim_paging *pg, const char **why) {
  char size[32], number[32];
  pg->size = SIM_PAGE_SIZE_DEFAULT;
  pg->number = 1;
  int found = h->query_get(query, "pageSize", size, sizeof size);
  if (found < 0 || (found && parse_posint(size, SIM_PAGE_SIZE_MAX, &pg->size) != OKE_OK)) {
    *why = "pageSize must be a positive integer of at most 250";
    return OKE_EINVAL;
  }
  found = h->query_get(query, "pageNumber", number, sizeof number);
  if (found < 0 || (found && parse_posint(number, INT_MAX, &pg->number) != OKE_OK)) {
    *why = "pageNumber must be a positive integer";
    return OKE_EINVAL;
  }
  return OKE_OK;
}

/* ------------------------------------------------------------------------ */
/* JSON merge patch (RFC 7396)                                               */
/* ------------------------------------------------------------------------ */

static int merge_patch(const oke_host *h, oke_json *target, const oke_json *patch, int depth);

/* A patch value as it lands in the target: objects lose their null members
 * (RFC 7396 applies the patch to {}), everything else is copied as is. */
static int clean_copy(const oke_host *h, const oke_json *v, int depth, oke_json **out) {
  *out = NULL;
  if (h->json_type(v) != OKE_JSON_OBJECT) {
    *out = h->json_duplicate(v);
    return *out ? OKE_OK : OKE_ENOMEM;
  }
  oke_json *o = h->json_new_object();
  if (!o)
    return OKE_ENOMEM;
  int rc = merge_patch(h, o, v, depth);
  if (rc != OKE_OK) {
    h->json_free(o);
    return rc;
  }
  *out = o;
  return OKE_OK;
}

/* A non-empty array whose entries are all objects with a consumerKey. */
static int keyed_consumers(const oke_host *h, const oke_json *arr) {
  size_t n = h->json_size(arr);
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!jstr(h, h->json_at(arr, i), "consumerKey"))
      return 0;
  return 1;
}

/* Profile rule R16: a consumers entry is merged field by field, matched on
 * consumerKey, so that a cancel {consumerKey, offeringState} does not wipe the
 * rest of the entry as a plain RFC 7396 array replacement would. */
static int merge_consumers(const oke_host *h, oke_json *tarr, const oke_json *parr, int depth) {
  int rc = OKE_OK;
  size_t n = h->json_size(parr);
  for (size_t i = 0; rc == OKE_OK && i < n; i++) {
    oke_json *pe = h->json_at(parr, i);
    oke_json *te = consumer_find(h, tarr, jstr(h, pe, "consumerKey"));
    if (te) {
      rc = merge_patch(h, te, pe, depth);
    } else {
      oke_json *nv;
      if ((rc = clean_copy(h, pe, depth, &nv)) == OKE_OK)
        jappend(h, tarr, nv, &rc);
    }
  }
  return rc;
}

/* Apply patch (an object) onto target in place. target must be a private
 * copy: a failure halfway leaves it partly patched. */
static int merge_patch(const oke_host *h, oke_json *target, const oke_json *patch, int depth) {
  if (depth > SIM_MERGE_DEPTH_MAX)
    return OKE_EINVAL;
  int rc = OKE_OK;
  /* the patch is only read, so its members can be walked in place */
  for (oke_json *pv = h->json_first(patch); rc == OKE_OK && pv; pv = h->json_next(pv)) {
    const char *k = h->json_key(pv);
    if (!k)
      return OKE_EINVAL;
    int pt = h->json_type(pv);
    oke_json *tv = h->json_get(target, k);
    int tt = tv ? h->json_type(tv) : OKE_JSON_INVALID;
    if (pt == OKE_JSON_NULL) {
      if (tv)
        h->json_remove(target, k);
    } else if (pt == OKE_JSON_OBJECT && tt == OKE_JSON_OBJECT) {
      rc = merge_patch(h, tv, pv, depth + 1);
    } else if (pt == OKE_JSON_ARRAY && tt == OKE_JSON_ARRAY && strcmp(k, "consumers") == 0 &&
               keyed_consumers(h, pv)) {
      rc = merge_consumers(h, tv, pv, depth + 1);
    } else {
      oke_json *nv;
      if ((rc = clean_copy(h, pv, depth + 1, &nv)) == OKE_OK)
        jset(h, target, k, nv, &rc);
    }
  }
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

/* Once respond*() has been called the exchange belongs to the host, so a
 * failure there is only logged and deliver() still returns OKE_OK. */
static int respond_json(sim_state *s, oke_exchange *x, int status, const oke_json *j) {
  const oke_host *h = s->host;
  char *txt = h->json_print(j);
  if (!txt)
    return OKE_ENOMEM;
  if (h->respond(x, status, SIM_JSON, txt, strlen(txt)) != OKE_OK)
    h->log(s->conn, OKE_LOG_WARN, "sim: respond(%d) failed", status);
  h->free(txt);
  return OKE_OK;
}

static int respond_empty(sim_state *s, oke_exchange *x, int status) {
  if (s->host->respond(x, status, NULL, NULL, 0) != OKE_OK)
    s->host->log(s->conn, OKE_LOG_WARN, "sim: respond(%d) failed", status);
  return OKE_OK;
}

static int problem(sim_state *s, oke_exchange *x, int status, const char *fmt, ...)
    OKE_PRINTF(4, 5);

static int problem(sim_state *s, oke_exchange *x, int status, const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  const char *title = status == 404 ? "Resource not found" : "Bad request";
  if (s->host->respond_problem(x, status, title, detail) != OKE_OK)
    s->host->log(s->conn, OKE_LOG_WARN, "sim: respond_problem(%d) failed", status);
  return OKE_OK;
}

/* Parse a request body that must be a JSON object. On OKE_EINVAL *why is
 * the reason for a 400. */
static int parse_object(const oke_host *h, const oke_request *req, oke_json **out,
                        const char **why) {
  *out = NULL;
  if (!req->body || req->body_len == 0) {
    *why = "request body is missing";
    return OKE_EINVAL;
  }
  oke_json *j = h->json_parse(req->body, req->body_len);
  if (!j) {
    *why = "request body is not valid JSON";
    return OKE_EINVAL;
  }
  if (h->json_type(j) != OKE_JSON_OBJECT) {
    h->json_free(j);
    *why = "request body must be a JSON object";
    return OKE_EINVAL;
  }
  *out = j;
  return OKE_OK;
}

static const char *req_query(const oke_request *req) { return req->query ? req->query : ""; }

static const char *req_id(const oke_request *req) { return req->id ? req->id : ""; }

/* ------------------------------------------------------------------------ */
/* Views and pages                                                           */
/* ------------------------------------------------------------------------ */

typedef int (*sim_view_fn)(sim_state *s, const oke_json *doc, oke_json **out);

static int view_copy(sim_state *s, const oke_json *doc, oke_json **out) {
  *out = s->host->json_duplicate(doc);
  return *out ? OKE_OK : OKE_ENOMEM;
}

/* An association as GET shows it: person as its id unless expanded. */
static int view_association(sim_state *s, const oke_json *doc, int expand_person, oke_json **out) {
  const oke_host *h = s->host;
  int rc = view_copy(s, doc, out);
  if (rc != OKE_OK || expand_person)
    return rc;
  const char *pid = jstr(h, jget(h, *out, "person"), "personId");
  /* The new string is made before json_set frees the person it points into. */
  if (pid)
    jset(h, *out, "person", h->json_new_string(pid), &rc);
  if (rc != OKE_OK) {
    h->json_free(*out);
    *out = NULL;
  }
  return rc;
}

static int view_association_ref(sim_state *s, const oke_json *doc, oke_json **out) {
  return view_association(s, doc, 0, out);
}

/* An OOAPI page envelope over match[0..n), one page of it. */
static int page_new(sim_state *s, const oke_json *const *match, size_t n, const sim_paging *pg,
                    sim_view_fn view, oke_json **out) {
  const oke_host *h = s->host;
  int rc = OKE_OK;
  size_t size = (size_t)pg->size;
  size_t total = n ? (n + size - 1) / size : 1;
  unsigned long long first = (unsigned long long)(pg->number - 1) * size;

  oke_json *items = h->json_new_array();
  for (unsigned long long i = first; rc == OKE_OK && i < n && i < first + size; i++) {
    oke_json *v = NULL;
    if ((rc = view(s, match[i], &v)) == OKE_OK)
      jappend(h, items, v, &rc);
  }
  oke_json *page = h->json_new_object();
  jset(h, page, "pageSize", h->json_new_number((double)pg->size), &rc);
  jset(h, page, "pageNumber", h->json_new_number((double)pg->number), &rc);
  jset(h, page, "hasPreviousPage", h->json_new_bool(pg->number > 1), &rc);
  jset(h, page, "hasNextPage", h->json_new_bool((unsigned long long)pg->number < total), &rc);
  jset(h, page, "totalPages", h->json_new_number((double)total), &rc);
  jset(h, page, "items", items, &rc);
  if (rc != OKE_OK && page) {
    h->json_free(page);
    page = NULL;
  }
  *out = page;
  return rc;
}

static int respond_page(sim_state *s, oke_exchange *x, const oke_json *const *match, size_t n,
                        const sim_paging *pg, sim_view_fn view) {
  oke_json *page;
  int rc = page_new(s, match, n, pg, view, &page);
  if (rc == OKE_OK) {
    rc = respond_json(s, x, 200, page);
    s->host->json_free(page);
  }
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Flow 0: catalogue                                                         */
/* ------------------------------------------------------------------------ */

/* ASCII case-insensitive substring test; UTF-8 bytes compare exactly. */
static int ci_contains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  if (n == 0)
    return 1;
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i]) {
      int a = (unsigned char)hay[i], b = (unsigned char)needle[i];
      if (a >= 'A' && a <= 'Z')
        a += 'a' - 'A';
      if (b >= 'A' && b <= 'Z')
        b += 'a' - 'A';
      if (a != b)
        break;
      i++;
    }
    if (i == n)
      return 1;
  }
  return 0;
}

static int lts_contains(const oke_host *h, const oke_json *lts, const char *q) {
  if (!lts || h->json_type(lts) != OKE_JSON_ARRAY)
    return 0;
  size_t n = h->json_size(lts);
  for (size_t i = 0; i < n; i++) {
    const char *v = jstr(h, h->json_at(lts, i), "value");
    if (v && ci_contains(v, q))
      return 1;
  }
  return 0;
}

typedef struct sim_filter {
  const char *q;    /* NULL or "" = any */
  int licensed;     /* -1 any, 0 false, 1 true */
  const char *type; /* NULL or "" = any */
} sim_filter;

static int component_matches(const oke_host *h, const oke_json *c, const sim_filter *f) {
  if (f->type && *f->type) {
    const char *t = jstr(h, c, "componentType");
    if (!t || strcmp(t, f->type) != 0)
      return 0;
  }
  if (f->licensed >= 0) {
    oke_json *l = jget(h, consumer_nl(h, c), "licensed");
    int lic = l && h->json_type(l) == OKE_JSON_TRUE;
    if (lic != f->licensed)
      return 0;
  }
  if (f->q && *f->q) {
    const char *abbr = jstr(h, c, "abbreviation");
    if (!lts_contains(h, jget(h, c, "name"), f->q) && !(abbr && ci_contains(abbr, f->q)) &&
        !lts_contains(h, jget(h, c, "description"), f->q))
      return 0;
  }
  return 1;
}

static int on_list_components(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  const char *query = req_query(req);
  const char *why = NULL;
  sim_paging pg;
  char q[256], lic[16], type[64];
  int rc = parse_paging(h, query, &pg, &why);
  if (rc == OKE_OK)
    rc = query_param(h, query, "q", q, sizeof q, &why);
  if (rc == OKE_OK)
    rc = query_param(h, query, "componentType", type, sizeof type, &why);
  int has_lic = h->query_get(query, "licensed", lic, sizeof lic);
  if (rc == OKE_OK && has_lic && strcmp(lic, "true") != 0 && strcmp(lic, "false") != 0) {
    why = "licensed must be true or false";
    rc = OKE_EINVAL;
  }
  if (rc != OKE_OK)
    return problem(s, x, 400, "%s", why);
  sim_filter f = {q, has_lic ? strcmp(lic, "true") == 0 : -1, type};

  size_t total = h->json_size(s->catalogue), n = 0;
  const oke_json **match = malloc((total ? total : 1) * sizeof *match);
  if (!match)
    return OKE_ENOMEM;
  for (size_t i = 0; i < total; i++) {
    const oke_json *c = h->json_at(s->catalogue, i);
    if (c && component_matches(h, c, &f))
      match[n++] = c;
  }
  rc = respond_page(s, x, match, n, &pg, view_copy);
  free(match);
  return rc;
}

static int on_get_component(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  size_t n = h->json_size(s->catalogue);
  for (size_t i = 0; i < n; i++) {
    const oke_json *c = h->json_at(s->catalogue, i);
    const char *id = jstr(h, c, "componentId");
    if (id && same_id(id, req_id(req)))
      return respond_json(s, x, 200, c);
  }
  return problem(s, x, 404, "No component with id %s is known at this endpoint.", req_id(req));
}

/* ------------------------------------------------------------------------ */
/* Flow 2: zittingen                                                         */
/* ------------------------------------------------------------------------ */

/* The offering id of an association: a plain id or an embedded offering. */
static const char *assoc_offering_id(const oke_host *h, const oke_json *a) {
  oke_json *o = jget(h, a, "offering");
  if (!o)
    return NULL;
  const char *id = h->json_string(o);
  return id ? id : jstr(h, o, "offeringId");
}

static int offering_canceled(const oke_host *h, const oke_json *off) {
  const char *st = jstr(h, consumer_nl(h, off), "offeringState");
  return st && strcmp(st, "canceled") == 0;
}

/* Replace doc[key] with a copy of the id the object is stored under, since
 * ids never change (R15) whatever a body says. */
static int pin_id(const oke_host *h, oke_json *doc, const char *key, const char *id) {
  int rc = OKE_OK;
  jset(h, doc, key, h->json_new_string(id), &rc);
  return rc;
}

/* Merge patch onto a copy of e->doc and swap it in on success, so a failure
 * leaves the stored object untouched. The caller holds the store's lock.
 * OKE_EINVAL: the merge patch cannot be applied. */
static int patch_entry(const oke_host *h, sim_entry *e, const oke_json *patch, const char *id_key) {
  oke_json *copy = h->json_duplicate(e->doc);
  if (!copy)
    return OKE_ENOMEM;
  int rc = merge_patch(h, copy, patch, 0);
  if (rc == OKE_OK)
    rc = pin_id(h, copy, id_key, e->id);
  if (rc != OKE_OK) {
    h->json_free(copy);
    return rc;
  }
  h->json_free(e->doc);
  e->doc = copy;
  return OKE_OK;
}

/* The answer to a failed PATCH of a stored object: 404 when it is not there
 * (the lookup comes first), 400 for a bad body or a patch that cannot be
 * applied. Returns 1 when the exchange is done (answered, or *rc to return),
 * 0 when the patch is in and the caller answers. */
static int patch_failed(sim_state *s, oke_exchange *x, const oke_request *req, int found,
                        int parsed, const char *why, int *rc, const char *what) {
  if (!found) {
    *rc = problem(s, x, 404, "No %s with id %s is known at this endpoint.", what, req_id(req));
    return 1;
  }
  if (parsed == OKE_EINVAL) {
    *rc = problem(s, x, 400, "%s", why);
    return 1;
  }
  if (*rc == OKE_EINVAL) {
    *rc = problem(s, x, 400, "the merge patch could not be applied");
    return 1;
  }
  return *rc != OKE_OK;
}

static int on_put_offering(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  const char *why = NULL;
  oke_json *doc;
  int rc = parse_object(h, req, &doc, &why);
  if (rc == OKE_EINVAL)
    return problem(s, x, 400, "%s", why);
  if (rc != OKE_OK)
    return rc;
  const char *id = jstr(h, doc, "offeringId");
  if (!id || !same_id(id, req_id(req))) {
    rc = id ? problem(s, x, 400, "offeringId %s does not match the path id %s", id, req_id(req))
            : problem(s, x, 400, "offeringId is missing");
    h->json_free(doc);
    return rc;
  }
  /* the parsed body is handed over whole: nothing here points into it after */
  int created;
  pthread_mutex_lock(&s->shared->lock);
  rc = store_put(h, &s->shared->offerings, req_id(req), doc, &created);
  pthread_mutex_unlock(&s->shared->lock);
  if (rc != OKE_OK) {
    h->json_free(doc);
    return rc;
  }
  h->log(s->conn, OKE_LOG_DEBUG, "sim: offering %s %s", req_id(req),
         created ? "created" : "replaced");
  return respond_empty(s, x, created ? 201 : 200);
}

static int on_patch_offering(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  sim_shared *sh = s->shared;
  const char *why = NULL;
  oke_json *patch;
  /* the body is the caller's alone: parsed before the lock is taken */
  int parsed = parse_object(h, req, &patch, &why);
  int rc = OKE_OK;
  /* patch and cascade in one hold, so no other instance sees half of it */
  pthread_mutex_lock(&sh->lock);
  sim_entry *e = store_find(&sh->offerings, req_id(req));
  if (e && parsed == OKE_OK)
    rc = patch_entry(h, e, patch, "offeringId");
  /* A canceled zitting takes its deelnames with it (R18). */
  if (e && parsed == OKE_OK && rc == OKE_OK && offering_canceled(h, e->doc)) {
    for (size_t i = 0; i < sh->associations.len; i++) {
      oke_json *a = sh->associations.v[i].doc;
      const char *oid = assoc_offering_id(h, a);
      if (!oid || !same_id(oid, e->id))
        continue;
      int r = OKE_OK;
      jset(h, a, "state", h->json_new_string("canceled"), &r);
      if (r != OKE_OK) /* only when out of memory */
        h->log(s->conn, OKE_LOG_WARN, "sim: could not cancel association %s",
               sh->associations.v[i].id);
    }
  }
  int found = e != NULL;
  pthread_mutex_unlock(&sh->lock);
  if (parsed == OKE_OK)
    h->json_free(patch);
  if (patch_failed(s, x, req, found, parsed, why, &rc, "offering"))
    return rc;
  return respond_empty(s, x, 200);
}

static int on_get_offering(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  pthread_mutex_lock(&s->shared->lock);
  sim_entry *e = store_find(&s->shared->offerings, req_id(req));
  oke_json *copy = e ? h->json_duplicate(e->doc) : NULL;
  pthread_mutex_unlock(&s->shared->lock);
  if (!e)
    return problem(s, x, 404, "No offering with id %s is known at this endpoint.", req_id(req));
  if (!copy)
    return OKE_ENOMEM;
  int rc = respond_json(s, x, 200, copy);
  h->json_free(copy);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Flow 2: deelnames                                                         */
/* ------------------------------------------------------------------------ */

static int on_list_associations(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  sim_shared *sh = s->shared;
  const char *query = req_query(req);
  const char *why = NULL;
  sim_paging pg;
  /* role and state are the cheap filters of the profile; others pass. */
  char role[64], state[64];
  int rc = parse_paging(h, query, &pg, &why);
  if (rc == OKE_OK)
    rc = query_param(h, query, "role", role, sizeof role, &why);
  if (rc == OKE_OK)
    rc = query_param(h, query, "state", state, sizeof state, &why);
  int bad_query = rc != OKE_OK;
  oke_json *page = NULL;
  /* the page is built of copies (view_association_ref) before unlocking */
  pthread_mutex_lock(&sh->lock);
  int found = store_find(&sh->offerings, req_id(req)) != NULL;
  if (found && !bad_query) {
    const oke_json **match =
        malloc((sh->associations.len ? sh->associations.len : 1) * sizeof *match);
    size_t n = 0;
    for (size_t i = 0; match && i < sh->associations.len; i++) {
      const oke_json *a = sh->associations.v[i].doc;
      const char *oid = assoc_offering_id(h, a), *v;
      if (!oid || !same_id(oid, req_id(req)))
        continue;
      if (*role && (!(v = jstr(h, a, "role")) || strcmp(v, role) != 0))
        continue;
      if (*state && (!(v = jstr(h, a, "state")) || strcmp(v, state) != 0))
        continue;
      match[n++] = a;
    }
    rc = match ? page_new(s, match, n, &pg, view_association_ref, &page) : OKE_ENOMEM;
    free(match);
  }
  pthread_mutex_unlock(&sh->lock);
  if (!found)
    return problem(s, x, 404, "No offering with id %s is known at this endpoint.", req_id(req));
  if (bad_query)
    return problem(s, x, 400, "%s", why);
  if (rc != OKE_OK)
    return rc;
  rc = respond_json(s, x, 200, page);
  h->json_free(page);
  return rc;
}

static int on_put_association(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  const char *why = NULL;
  oke_json *doc;
  int rc = parse_object(h, req, &doc, &why);
  if (rc == OKE_EINVAL)
    return problem(s, x, 400, "%s", why);
  if (rc != OKE_OK)
    return rc;
  const char *id = jstr(h, doc, "associationId");
  const char *oid = assoc_offering_id(h, doc);
  if (!id) {
    rc = problem(s, x, 400, "associationId is missing");
  } else if (!same_id(id, req_id(req))) {
    rc = problem(s, x, 400, "associationId %s does not match the path id %s", id, req_id(req));
  } else if (!oid) {
    rc = problem(s, x, 400, "unknown offering: the association names no offering");
  } else {
    /* The zitting is PUT before its deelnames (R13): checked and stored in
     * one hold. A stored body is handed over whole: doc and oid are not
     * touched after. */
    int created = 0;
    pthread_mutex_lock(&s->shared->lock);
    int known = store_find(&s->shared->offerings, oid) != NULL;
    if (known)
      rc = store_put(h, &s->shared->associations, req_id(req), doc, &created);
    pthread_mutex_unlock(&s->shared->lock);
    if (!known) {
      rc = problem(s, x, 400, "unknown offering %s", oid);
    } else if (rc == OKE_OK) {
      h->log(s->conn, OKE_LOG_DEBUG, "sim: association %s %s", req_id(req),
             created ? "created" : "replaced");
      return respond_empty(s, x, created ? 201 : 200);
    }
  }
  h->json_free(doc);
  return rc;
}

/* The YAML's 200 answer to a PATCH of an association: {associationId,
 * message (required), state}, built from the stored one (lock held). */
static int patch_association_answer(const oke_host *h, const sim_entry *e, oke_json **out) {
  int rc = OKE_OK;
  oke_json *ans = h->json_new_object();
  const char *state = jstr(h, e->doc, "state");
  jset(h, ans, "associationId", h->json_new_string(e->id), &rc);
  jset(h, ans, "message",
       lts_new(h, state && strcmp(state, "canceled") == 0 ? "De deelname is verwijderd."
                                                          : "De deelname is bijgewerkt."),
       &rc);
  if (state)
    jset(h, ans, "state", h->json_new_string(state), &rc);
  if (rc != OKE_OK && ans) {
    h->json_free(ans);
    ans = NULL;
  }
  *out = ans;
  return rc;
}

static int on_patch_association(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  const char *why = NULL;
  oke_json *patch, *ans = NULL;
  int parsed = parse_object(h, req, &patch, &why);
  int rc = OKE_OK;
  pthread_mutex_lock(&s->shared->lock);
  sim_entry *e = store_find(&s->shared->associations, req_id(req));
  if (e && parsed == OKE_OK && (rc = patch_entry(h, e, patch, "associationId")) == OKE_OK)
    rc = patch_association_answer(h, e, &ans);
  int found = e != NULL;
  pthread_mutex_unlock(&s->shared->lock);
  if (parsed == OKE_OK)
    h->json_free(patch);
  if (!patch_failed(s, x, req, found, parsed, why, &rc, "association"))
    rc = respond_json(s, x, 200, ans);
  if (ans)
    h->json_free(ans);
  return rc;
}

static int on_get_association(sim_state *s, oke_exchange *x, const oke_request *req) {
  char expand_list[256];
  const char *why = NULL;
  int bad_query = query_param(s->host, req_query(req), "expand", expand_list, sizeof expand_list,
                              &why) != OKE_OK;
  int rc = OKE_OK;
  oke_json *view = NULL;
  pthread_mutex_lock(&s->shared->lock);
  sim_entry *e = store_find(&s->shared->associations, req_id(req));
  if (e && !bad_query)
    rc = view_association(s, e->doc, query_expands(expand_list, "person"), &view);
  int found = e != NULL;
  pthread_mutex_unlock(&s->shared->lock);
  if (!found)
    return problem(s, x, 404, "No association with id %s is known at this endpoint.", req_id(req));
  if (bad_query)
    return problem(s, x, 400, "%s", why);
  if (rc != OKE_OK)
    return rc;
  rc = respond_json(s, x, 200, view);
  s->host->json_free(view);
  return rc;
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static char *url_join(const char *base, const char *id) {
  static const char hex[] = "0123456789ABCDEF";
  size_t bl = strlen(base), il = strlen(id);
  char *u = malloc(bl + 1 + 3 * il + 1);
  if (!u)
    return NULL;
  memcpy(u, base, bl);
  char *p = u + bl;
  *p++ = '/';
  for (const unsigned char *r = (const unsigned char *)id; *r; r++) {
    if ((*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') ||
        *r == '-' || *r == '.' || *r == '_' || *r == '~') {
      *p++ = (char)*r;
    } else {
      *p++ = '%';
      *p++ = hex[*r >> 4];
      *p++ = hex[*r & 15];
    }
  }
  *p = '\0';
  return u;
}

static int on_get_association_url(sim_state *s, oke_exchange *x, const oke_request *req) {
  const oke_host *h = s->host;
  pthread_mutex_lock(&s->shared->lock);
  sim_entry *e = store_find(&s->shared->associations, req_id(req));
  char *url = e ? url_join(s->url_base, e->id) : NULL;
  int found = e != NULL;
  pthread_mutex_unlock(&s->shared->lock);
  if (!found)
    return problem(s, x, 404, "No association with id %s is known at this endpoint.", req_id(req));
  if (!url)
    return OKE_ENOMEM;
  /* The body is a bare JSON string; the host's printer does the quoting. */
  oke_json *j = h->json_new_string(url);
  free(url);
  if (!j)
    return OKE_ENOMEM;
  int rc = respond_json(s, x, 200, j);
  h->json_free(j);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Plugin callbacks                                                          */
/* ------------------------------------------------------------------------ */

static int sim_deliver(void *state, oke_exchange *x, const oke_request *req) {
  sim_state *s = state;
  if (!s || !x || !req)
    return OKE_EINVAL;
  switch (req->interaction) {
  case OKE_I_FLOW0_LIST_COMPONENTS: return on_list_components(s, x, req);
  case OKE_I_FLOW0_GET_COMPONENT: return on_get_component(s, x, req);
  case OKE_I_FLOW2_PUT_OFFERING: return on_put_offering(s, x, req);
  case OKE_I_FLOW2_PATCH_OFFERING: return on_patch_offering(s, x, req);
  case OKE_I_FLOW2_GET_OFFERING: return on_get_offering(s, x, req);
  case OKE_I_FLOW2_LIST_ASSOCIATIONS: return on_list_associations(s, x, req);
  case OKE_I_FLOW2_PUT_ASSOCIATION: return on_put_association(s, x, req);
  case OKE_I_FLOW2_PATCH_ASSOCIATION: return on_patch_association(s, x, req);
  case OKE_I_FLOW2_GET_ASSOCIATION: return on_get_association(s, x, req);
  case OKE_I_FLOW2_GET_ASSOCIATION_URL: return on_get_association_url(s, x, req);
  default: return OKE_EUNSUP;
  }
}

static void sim_fini(void *state) {
  sim_state *s = state;
  if (!s)
    return;
  if (s->shared)
    shared_release(s->host, s->shared);
  if (s->catalogue)
    s->host->json_free(s->catalogue);
  free(s->url_base);
  free(s);
}

static int sim_init(oke_conn *c, const oke_host *host, void **state) {
  if (!host || !state)
    return OKE_EINVAL;
  *state = NULL;
  /* the member walk, bool constructor and query decoding are ABI 1.2 */
  if (!OKE_HOST_HAS(host, json_first, 2) || !host->json_new_bool || !host->query_get) {
    host->log(c, OKE_LOG_ERROR, "sim needs a host with plugin ABI 1.2, this one speaks %u.%u",
              host->abi_major, host->abi_minor);
    return OKE_EUNSUP;
  }

  sim_state *s = calloc(1, sizeof *s);
  if (!s)
    return OKE_ENOMEM;
  s->conn = c;
  s->host = host;

  const char *base = host->config(c, "access_url_base");
  if (!base || !*base)
    base = SIM_URL_BASE_DEFAULT;
  size_t bl = strlen(base);
  while (bl > 0 && base[bl - 1] == '/')
    bl--;
  const char *seed = host->config(c, "catalogue_seed");
  const char *why = seed ? seed_problem(seed) : NULL;
  if (why) {
    host->log(c, OKE_LOG_ERROR, "sim: %s", why);
    free(s);
    return OKE_EINVAL;
  }
  s->url_base = sim_strndup(base, bl);
  s->catalogue = catalogue_new(host, seed);
  s->shared = shared_acquire(host->name ? host->name(c) : NULL);
  if (!s->url_base || !s->catalogue || !s->shared) {
    sim_fini(s);
    return OKE_ENOMEM;
  }
  if (seed)
    host->log(c, OKE_LOG_INFO,
              "sim: simulated test supplier '%s' with %zu tests of its own (catalogue_seed), "
              "start links under %s",
              seed, (size_t)SIM_NCOMPONENTS, s->url_base);
  else
    host->log(c, OKE_LOG_INFO, "sim: simulated test supplier with %zu tests, start links under %s",
              (size_t)SIM_NCOMPONENTS, s->url_base);
  *state = s;
  return OKE_OK;
}

static int sim_health(void *state) { return state ? OKE_OK : OKE_ESTATE; }

static const oke_config_key sim_config_keys[] = {
    {"access_url_base", "base of the start links the simulated supplier hands out (default "
                        "https://sim.example/start)"},
    {"catalogue_seed",
     "any text (up to 64 bytes): this instance plays another supplier, its tests get ids, codes "
     "and names derived from the text, the same every run; without it, the default catalogue"},
    {NULL, NULL}};

static const oke_plugin sim_plugin = {
    OKE_PLUGIN_INIT("sim", "1.2.0"),
    .description = "simulated test supplier (TA) for demos and tests: a fixed catalogue of MBO "
                   "tests (or one derived from catalogue_seed) and in-memory zittingen and "
                   "deelnames",
    .config_keys = sim_config_keys,
    .init = sim_init,
    .deliver = sim_deliver,
    .health = sim_health,
    .fini = sim_fini,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &sim_plugin; }
