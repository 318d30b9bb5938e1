/* okegw accept (see accept.h). */
#include "admin/accept.h"
#include "admin/report.h"
#include "base/conf.h"
#include "base/util.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: okegw accept -c FILE --connector NAME [--scenarios DIR] [--only ID]... [--gateway "
    "URL]\n"
    "                    [--cafile FILE] [-v]\n"
    "       okegw accept --base-url URL --role ta [--token T | --token-file FILE] [--set "
    "KEY=VALUE]...\n"
    "                    [--format text|json|html] [-o FILE] [--keep DIR] [-v]\n"
    "  the first runs the ketentest scenarios through the running gateway of FILE against\n"
    "  connector NAME, as the acceptance systems of FILE (acceptance = yes, role tpl and dr),\n"
    "  and stores the outcome (okegw report shows it); the second is the conformance kit:\n"
    "  the TA-side scenarios against a supplier's OKE API at URL, with a report\n";

#define MAX_LIST 64

typedef struct opts {
  const char *file, *connector, *scenarios, *gateway, *cafile;
  const char *base_url, *role, *token, *token_file, *out, *keep;
  int format;
  const char *only[MAX_LIST];
  int nonly;
  const char *sets[MAX_LIST];
  int nsets;
  int verbose;
} opts;

/* ---- the engine ----------------------------------------------------------- */

/* The folder of the engine: $OKEGW_ACCEPT_DIR, the installed one, or the
 * source tree's (a build that was not installed). */
static const char *engine_dir(void) {
  const char *dirs[] = {getenv("OKEGW_ACCEPT_DIR"), OKEGW_ACCEPT_INSTALL_DIR,
                        OKEGW_ACCEPT_SOURCE_DIR};
  static char path[4096];
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    if (!dirs[i] || !*dirs[i])
      continue;
    snprintf(path, sizeof path, "%s/okechain.py", dirs[i]);
    if (access(path, R_OK) == 0)
      return dirs[i];
  }
  return NULL;
}

/* What a run counted and is doing now. */
typedef struct run_state {
  okegw_store *store;
  long long run;
  int passed, failed, skipped, ended, verbose;
  char scenario[32];
  char scenario_name[256];
  int store_failed;
} run_state;

static const char *jstr(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *name, double def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* A scenario id as text, whether the engine wrote it as a string or a number. */
static void id_text(const cJSON *o, const char *name, char *out, size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  if (cJSON_IsString(v))
    snprintf(out, n, "%s", v->valuestring);
  else if (cJSON_IsNumber(v))
    snprintf(out, n, "%d", v->valueint);
  else
    snprintf(out, n, "?");
}

static void on_event(run_state *rs, const cJSON *e) {
  const char *ev = jstr(e, "event");
  if (!ev)
    return;
  if (strcmp(ev, "scenario") == 0) {
    id_text(e, "id", rs->scenario, sizeof rs->scenario);
    snprintf(rs->scenario_name, sizeof rs->scenario_name, "%s",
             jstr(e, "name") ? jstr(e, "name") : "");
  } else if (strcmp(ev, "step") == 0) {
    const char *outcome = jstr(e, "outcome");
    if (!outcome || (strcmp(outcome, "ok") && strcmp(outcome, "skipped")))
      outcome = "failed";
    int cleanup = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "cleanup"));
    char scenario[32];
    id_text(e, "scenario", scenario, sizeof scenario);
    okegw_accept_step st = {.scenario = scenario,
                            .scenario_name = rs->scenario_name,
                            .step = cleanup ? 0 : (int)jnum(e, "step", 0),
                            .name = jstr(e, "name"),
                            .outcome = outcome,
                            .detail = jstr(e, "detail"),
                            .method = jstr(e, "method"),
                            .path = jstr(e, "path"),
                            .status = (int)jnum(e, "status", 0),
                            .ms = jnum(e, "ms", -1)};
    char *err = NULL;
    if (okegw_store_accept_step(rs->store, rs->run, &st, &err) != OKEGW_STORE_OK &&
        !rs->store_failed) {
      fprintf(stderr, "okegw accept: cannot store the step: %s\n", err ? err : "out of memory");
      rs->store_failed = 1;
    }
    free(err);
    if (!cleanup) {
      rs->passed += strcmp(outcome, "ok") == 0;
      rs->skipped += strcmp(outcome, "skipped") == 0;
      rs->failed += strcmp(outcome, "failed") == 0;
    }
    if (strcmp(outcome, "failed") == 0 && !rs->verbose)
      printf("    not ok - %sstep %d (%s): %s\n", cleanup ? "cleanup " : "", st.step,
             st.name ? st.name : "", st.detail ? st.detail : "");
  } else if (strcmp(ev, "scenario_end") == 0 && !rs->verbose) {
    int failed = (int)jnum(e, "failed", 0);
    printf("%-6s scenario %-3s %-52.52s %3d passed %3d failed %3d skipped  %.1fs\n",
           failed ? "FAILED" : "ok", rs->scenario, rs->scenario_name, (int)jnum(e, "passed", 0),
           failed, (int)jnum(e, "skipped", 0), jnum(e, "seconds", 0));
  } else if (strcmp(ev, "end") == 0) {
    rs->ended = 1;
  }
  fflush(stdout);
}

/* Runs the engine on the ICT file with the scenarios of dir, events on a
 * pipe (its fd 3); its own output goes to log (or to the terminal with
 * -v). Returns the engine's exit status, -1 when it could not run. */
static int run_engine(const opts *o, const char *engine, const char *ict, const char *scenarios,
                      const char *log, run_state *rs) {
  int fds[2];
  if (pipe(fds) != 0) {
    fprintf(stderr, "okegw accept: pipe: %s\n", strerror(errno));
    return -1;
  }
  const char *args[16 + 2 * MAX_LIST];
  int n = 0;
  const char *python = getenv("OKEGW_PYTHON") ? getenv("OKEGW_PYTHON") : "python3";
  char script[4096];
  snprintf(script, sizeof script, "%s/okechain.py", engine);
  args[n++] = python;
  args[n++] = script;
  args[n++] = "--gateway";
  args[n++] = o->gateway;
  args[n++] = "--tokens";
  args[n++] = ict;
  args[n++] = "--acceptance";
  args[n++] = "--events";
  args[n++] = "/dev/fd/3";
  args[n++] = "--scenarios";
  args[n++] = scenarios;
  for (int i = 0; i < o->nonly; i++) {
    args[n++] = "--only";
    args[n++] = o->only[i];
  }
  args[n] = NULL;
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "okegw accept: fork: %s\n", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    /* the write end becomes fd 3; the read end may be 3 itself (dup2
     * then replaces it) */
    if (fds[0] != 3)
      close(fds[0]);
    if (fds[1] != 3) {
      dup2(fds[1], 3);
      close(fds[1]);
    }
    if (!o->verbose) {
      int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    }
    execvp(python, (char *const *)args);
    fprintf(stderr, "okegw accept: cannot run %s: %s\n", python, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  FILE *in = fdopen(fds[0], "r");
  char *line = NULL;
  size_t cap = 0;
  while (in && getline(&line, &cap, in) > 0) {
    cJSON *e = cJSON_Parse(line);
    if (e)
      on_event(rs, e);
    cJSON_Delete(e);
  }
  free(line);
  if (in)
    fclose(in);
  else
    close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status)
                           : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ---- the ICT file (the engine's view of the school's systems) ------------- */

/* "http://127.0.0.1:18182/ooapi" -> "127.0.0.1:18182"; NULL when the URL is
 * not plain HTTP on this machine with the OKE base /ooapi (the engine plays
 * the system there). */
static char *local_listen(const char *url) {
  static const char *const hosts[] = {"http://127.0.0.1:", "http://localhost:"};
  for (size_t i = 0; url && i < 2; i++) {
    size_t n = strlen(hosts[i]);
    if (strncmp(url, hosts[i], n) != 0)
      continue;
    char *end = NULL;
    long port = strtol(url + n, &end, 10);
    if (port <= 0 || port > 65535 || strcmp(end, "/ooapi") != 0)
      return NULL;
    return okegw_asprintf("127.0.0.1:%ld", port);
  }
  return NULL;
}

/* Adds system `sys` (a simulated acceptance system) from its section. */
static int add_system(cJSON *ict, const char *sys, const okegw_conf_connector *cc, char *why,
                      size_t whysz) {
  char *listen = local_listen(cc->base_url);
  if (!listen || cc->auth != OKEGW_AUTH_BEARER || !cc->token || !cc->inbound_token) {
    snprintf(why, whysz,
             "[connector %s] (acceptance = yes, role %s) is played by okegw accept: it needs "
             "base_url = http://127.0.0.1:PORT/ooapi, auth = bearer with a token, and an "
             "inbound_token",
             cc->name, okegw_role_name(cc->role));
    free(listen);
    return -1;
  }
  cJSON *peer = cJSON_CreateObject();
  int ok = peer && cJSON_AddItemToObject(cJSON_GetObjectItem(ict, "peers"), sys, peer) &&
           cJSON_AddStringToObject(peer, "listen", listen) &&
           cJSON_AddStringToObject(peer, "token", cc->token) &&
           cJSON_AddStringToObject(cJSON_GetObjectItem(ict, "tokens"), sys, cc->inbound_token) &&
           cJSON_AddStringToObject(cJSON_GetObjectItem(ict, "connectors"), sys, cc->name);
  free(listen);
  if (!ok)
    snprintf(why, whysz, "out of memory");
  return ok ? 0 : -1;
}

static cJSON *ict_new(const okegw_conf_connector *target, const char *cafile) {
  cJSON *ict = cJSON_CreateObject();
  cJSON *real = cJSON_CreateArray();
  if (!ict || !real || !cJSON_AddItemToObject(ict, "real", real) ||
      !cJSON_AddItemToArray(real, cJSON_CreateString("ta1")) ||
      !cJSON_AddObjectToObject(ict, "tokens") || !cJSON_AddObjectToObject(ict, "peers") ||
      !cJSON_AddObjectToObject(ict, "connectors") ||
      !cJSON_AddStringToObject(cJSON_GetObjectItem(ict, "connectors"), "ta1", target->name) ||
      (target->inbound_token && !cJSON_AddStringToObject(cJSON_GetObjectItem(ict, "tokens"), "ta1",
                                                         target->inbound_token)) ||
      (cafile && !cJSON_AddStringToObject(ict, "cafile", cafile))) {
    if (!cJSON_GetObjectItem(ict, "real"))
      cJSON_Delete(real);
    cJSON_Delete(ict);
    return NULL;
  }
  return ict;
}

static int write_json(const char *path, const cJSON *j) {
  char *s = cJSON_Print(j);
  int fd = s ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  size_t len = s ? strlen(s) : 0;
  int ok = fd >= 0 && write(fd, s, len) == (ssize_t)len;
  if (fd >= 0)
    ok &= close(fd) == 0;
  free(s);
  if (!ok)
    fprintf(stderr, "okegw accept: cannot write %s: %s\n", path, strerror(errno));
  return ok ? 0 : -1;
}

/* ---- a work folder -------------------------------------------------------- */

static char *work_dir(const opts *o) {
  if (o->keep) {
    if (mkdir(o->keep, 0700) != 0 && errno != EEXIST) {
      fprintf(stderr, "okegw accept: cannot make %s: %s\n", o->keep, strerror(errno));
      return NULL;
    }
    return okegw_strdup(o->keep);
  }
  const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char *d = okegw_asprintf("%s/okegw-accept-XXXXXX", tmp);
  if (!d || !mkdtemp(d)) {
    fprintf(stderr, "okegw accept: cannot make a work folder in %s: %s\n", tmp, strerror(errno));
    free(d);
    return NULL;
  }
  return d;
}

/* Removes what this command put in a folder it made itself. */
static void work_dir_clean(const opts *o, const char *dir) {
  static const char *const files[] = {"ict.json",   "engine.log", "plugins.conf",
                                      "okegw.log",  "kit.db",     "kit.db-wal",
                                      "kit.db-shm", "kit.db.ctl", "okegw.db.ctl"};
  if (o->keep || !dir)
    return;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char *p = okegw_asprintf("%s/%s", dir, files[i]);
    if (p)
      unlink(p);
    free(p);
  }
  rmdir(dir);
}

/* 1 when dir has the scenario numbered id (a file NN-name.json, NN = id). */
static int scenario_exists(const char *dir, const char *id) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  long want = strtol(id, NULL, 10);
  while (d && !found && (e = readdir(d))) {
    char *end = NULL;
    long n = strtol(e->d_name, &end, 10);
    size_t len = strlen(e->d_name);
    found = end != e->d_name && *end == '-' && n == want && len > 5 &&
            strcmp(e->d_name + len - 5, ".json") == 0;
  }
  if (d)
    closedir(d);
  return found;
}

/* ---- the run, stored ------------------------------------------------------ */

static int stored_run(const opts *o, okegw_store *s, const char *connector, const char *mode,
                      const char *config_sha, const char *engine, const char *ict,
                      const char *scenarios, const char *dir, run_state *rs) {
  char *err = NULL;
  memset(rs, 0, sizeof *rs);
  /* a typo is no acceptance run: it would stand as the last one, not finished */
  for (int i = 0; i < o->nonly; i++)
    if (!scenario_exists(scenarios, o->only[i])) {
      fprintf(stderr, "okegw accept: there is no scenario %s in %s\n", o->only[i], scenarios);
      return -2;
    }
  rs->store = s;
  rs->verbose = o->verbose;
  if (okegw_store_accept_begin(s, connector, mode, config_sha, &rs->run, &err) != OKEGW_STORE_OK) {
    fprintf(stderr, "okegw accept: cannot record the run: %s\n", err ? err : "out of memory");
    free(err);
    return -1;
  }
  char *log = okegw_asprintf("%s/engine.log", dir);
  printf("acceptance run %lld against connector '%s' (%s)\n", rs->run, connector, scenarios);
  fflush(stdout);
  int rc = log ? run_engine(o, engine, ict, scenarios, log, rs) : -1;
  const char *outcome = !rs->ended ? "incomplete" : rs->failed ? "failed" : "passed";
  if (okegw_store_accept_end(s, rs->run, rs->passed, rs->failed, rs->skipped, outcome, &err) !=
      OKEGW_STORE_OK) {
    fprintf(stderr, "okegw accept: cannot record the run's end: %s\n", err ? err : "out of memory");
    free(err);
    rc = -1;
  }
  printf("run %lld %s: %d passed, %d failed, %d skipped\n", rs->run, outcome, rs->passed,
         rs->failed, rs->skipped);
  if (!rs->ended)
    fprintf(stderr, "okegw accept: the scenario engine stopped early (exit %d)%s%s\n", rc,
            o->verbose ? "" : "; its output: ", o->verbose ? "" : log);
  free(log);
  return rs->ended ? 0 : -1;
}

/* ---- through the school's gateway ---------------------------------------- */

static int accept_gateway(opts *o) {
  okegw_conf conf;
  if (okegw_conf_load_cli(o->file, &conf) < 0)
    return 2;
  int rc = 2;
  cJSON *ict = NULL;
  okegw_store *s = NULL;
  char *dir = NULL, *url = NULL, *ict_path = NULL, *scen = NULL, *err = NULL;
  char why[512] = "";
  const char *engine = engine_dir();
  const okegw_conf_connector *cc = okegw_conf_section(&conf, o->connector);
  if (!cc) {
    fprintf(stderr, "okegw accept: %s has no [connector %s]\n", o->file, o->connector);
    goto done;
  }
  if (cc->role != OKEGW_ROLE_TA) {
    fprintf(stderr,
            "okegw accept: connector '%s' has role %s; the scenarios accept a supplier (role ta), "
            "played against the school's acceptance systems\n",
            cc->name, okegw_role_name(cc->role));
    goto done;
  }
  if (cc->phase == OKEGW_PHASE_OFF) {
    fprintf(stderr,
            "okegw accept: connector '%s' is off: nothing reaches it. Set phase = shadow (or "
            "pilot) and run okegw reload -c %s first\n",
            cc->name, o->file);
    goto done;
  }
  if (!engine) {
    fprintf(stderr, "okegw accept: the scenario engine (okechain.py) is not installed; set "
                    "OKEGW_ACCEPT_DIR to its folder\n");
    goto done;
  }
  if (!(ict = ict_new(cc, o->cafile)))
    goto oom;
  const okegw_conf_connector *tpl = NULL, *dr = NULL;
  for (size_t i = 0; i < conf.nconnectors; i++) {
    const okegw_conf_connector *k = &conf.connectors[i];
    if (!k->acceptance || k->phase == OKEGW_PHASE_OFF)
      continue;
    if (k->role == OKEGW_ROLE_TPL && !tpl)
      tpl = k;
    else if (k->role == OKEGW_ROLE_DR && !dr)
      dr = k;
  }
  if (!tpl) {
    fprintf(stderr,
            "okegw accept: %s has no acceptance planning system to play: add one, e.g.\n"
            "  [connector accept_tpl]\n  plugin = ooapi\n  role = tpl\n  acceptance = yes\n"
            "  base_url = http://127.0.0.1:18182/ooapi\n  auth = bearer\n  token = (what okegw "
            "presents to it)\n  inbound_token = (what it presents to okegw)\n"
            "and the same with role = dr for flows 1 and 5; then okegw reload -c %s\n",
            o->file, o->file);
    goto done;
  }
  if (add_system(ict, "tpl", tpl, why, sizeof why) < 0 ||
      (dr && add_system(ict, "dr", dr, why, sizeof why) < 0)) {
    fprintf(stderr, "okegw accept: %s\n", why);
    goto done;
  }
  if (!o->gateway) {
    const char *host = conf.listen_host;
    if (!host || conf.listen_port <= 0) {
      fprintf(stderr,
              "okegw accept: the gateway's listen address is not known from %s: give "
              "--gateway URL\n",
              o->file);
      goto done;
    }
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
      host = "127.0.0.1";
    url = strchr(host, ':') && strcmp(host, "::") != 0
              ? okegw_asprintf("http://[%s]:%d%s", host, conf.listen_port, conf.base_path)
          : strcmp(host, "::") == 0
              ? okegw_asprintf("http://[::1]:%d%s", conf.listen_port, conf.base_path)
              : okegw_asprintf("http://%s:%d%s", host, conf.listen_port, conf.base_path);
    if (!url)
      goto oom;
    o->gateway = url;
  }
  if (!(dir = work_dir(o)) || !(ict_path = okegw_asprintf("%s/ict.json", dir)) ||
      write_json(ict_path, ict) < 0)
    goto done;
  if (!(scen = o->scenarios ? okegw_strdup(o->scenarios) : okegw_asprintf("%s/scenarios", engine)))
    goto oom;
  if (okegw_store_open_direct(conf.store, 1, &s, &err) != OKEGW_STORE_OK) {
    fprintf(stderr, "okegw accept: %s\n", err ? err : "out of memory");
    goto done;
  }
  run_state rs;
  int ran = stored_run(o, s, cc->name, "gateway", conf.sha256, engine, ict_path, scen, dir, &rs);
  if (ran == 0) {
    rc = rs.failed ? 1 : 0;
    printf("the evidence: okegw report -c %s --connector %s\n", o->file, cc->name);
  } else if (ran != -2) {
    rc = 1;
    o->keep = dir; /* the engine's log, to read */
  }
  goto done;
oom:
  fprintf(stderr, "okegw accept: out of memory\n");
done:
  if (s)
    okegw_store_close(s, NULL, NULL);
  work_dir_clean(o, dir); /* unless kept (--keep, or logs to read) */
  free(err);
  free(scen);
  free(ict_path);
  free(dir);
  free(url);
  cJSON_Delete(ict);
  okegw_conf_free(&conf);
  return rc;
}

/* ---- the conformance kit -------------------------------------------------- */

/* A free TCP port on 127.0.0.1 (free when asked: the gateway and the
 * engine bind it right after). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                           .sin_port = htons((unsigned short)port)};
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

static int random_token(char out[49]) {
  unsigned char b[24];
  if (RAND_bytes(b, sizeof b) != 1)
    return -1;
  okegw_hex(b, sizeof b, out);
  return 0;
}

static int sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  return nanosleep(&ts, NULL);
}

/* Starts `okegw -c conf` (this binary) with its log in log; waits until it
 * listens on port. Returns its pid, or -1 (it is stopped then). */
static pid_t start_gateway(const char *conf, const char *log, int port) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return -1;
  self[n] = '\0';
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(self, "okegw", "-c", conf, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 300; i++) { /* up to 30 s (a slow machine, valgrind) */
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return -1;
    if (port_open(port))
      return pid;
    sleep_ms(100);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

static int stop_gateway(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 300; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    sleep_ms(100);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t len = strlen(text);
  int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
  if (fd >= 0)
    ok &= close(fd) == 0;
  if (!ok)
    fprintf(stderr, "okegw accept: cannot write %s: %s\n", path, strerror(errno));
  return ok ? 0 : -1;
}

/* The private gateway's configuration: the supplier, live, every answer
 * checked (block), and the simulated planning system that calls it. */
static char *kit_conf(const opts *o, const char *dir, int gw_port, int tpl_port,
                      const char *out_tok, const char *in_tok) {
  size_t cap = 4096;
  for (int i = 0; i < o->nsets; i++)
    cap += strlen(o->sets[i]) + 4;
  char *t = malloc(cap + strlen(o->base_url) + (o->token ? strlen(o->token) : 0) +
                   (o->token_file ? strlen(o->token_file) : 0) + 2 * strlen(dir));
  if (!t)
    return NULL;
  int n = sprintf(t,
                  "; made by okegw accept --base-url (conformance kit)\n"
                  "[gateway]\nlisten = 127.0.0.1:%d\nstore = %s/kit.db\nstore_sync = normal\n"
                  "log_level = info\n\n"
                  "[connector supplier]\nplugin = ooapi\nrole = ta\nphase = live\n"
                  "base_url = %s\nvalidate_answers = block\naccept_min_exchanges = 1\n"
                  "accept_interactions = 0 2\n",
                  gw_port, dir, o->base_url);
  if (o->token)
    n += sprintf(t + n, "auth = bearer\ntoken = %s\n", o->token);
  else if (o->token_file)
    n += sprintf(t + n, "auth = bearer\ntoken_file = %s\n", o->token_file);
  for (int i = 0; i < o->nsets; i++) {
    const char *eq = strchr(o->sets[i], '=');
    n += sprintf(t + n, "%.*s = %s\n", (int)(eq - o->sets[i]), o->sets[i], eq + 1);
  }
  sprintf(t + n,
          "\n[connector kit_tpl]\nplugin = ooapi\nrole = tpl\nphase = live\n"
          "base_url = http://127.0.0.1:%d/ooapi\nauth = bearer\ntoken = %s\ninbound_token = %s\n",
          tpl_port, out_tok, in_tok);
  return t;
}

static int accept_kit(opts *o) {
  if (!o->role || strcmp(o->role, "ta") != 0) {
    fprintf(stderr,
            "okegw accept: the conformance kit has the scenarios of a supplier: --role ta\n");
    return 2;
  }
  if (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0) {
    fprintf(stderr,
            "okegw accept: --base-url takes the supplier's OKE base URL (http:// or "
            "https://), not '%s'\n",
            o->base_url);
    return 2;
  }
  const char *engine = engine_dir();
  if (!engine) {
    fprintf(stderr, "okegw accept: the scenario engine (okechain.py) is not installed; set "
                    "OKEGW_ACCEPT_DIR to its folder\n");
    return 2;
  }
  int rc = 2, gw_port = free_port(), tpl_port = free_port();
  char out_tok[49], in_tok[49];
  if (random_token(out_tok) < 0 || random_token(in_tok) < 0) {
    fprintf(stderr, "okegw accept: no random bytes for the kit's tokens\n");
    return 2;
  }
  char *dir = work_dir(o), *conf_path = NULL, *log = NULL, *text = NULL, *ict_path = NULL;
  char *scen = NULL, *err = NULL, *url = NULL;
  cJSON *ict = NULL;
  okegw_store *s = NULL;
  okegw_conf conf = {0};
  int conf_loaded = 0;
  pid_t gw = -1;
  if (!dir)
    goto done;
  if (gw_port < 0 || tpl_port < 0) {
    fprintf(stderr, "okegw accept: no free port on 127.0.0.1 for the kit: %s\n", strerror(errno));
    goto done;
  }
  if (!(conf_path = okegw_asprintf("%s/plugins.conf", dir)) ||
      !(log = okegw_asprintf("%s/okegw.log", dir)) ||
      !(ict_path = okegw_asprintf("%s/ict.json", dir)) ||
      !(scen = okegw_asprintf("%s/kit", engine)) ||
      !(url = okegw_asprintf("http://127.0.0.1:%d/ooapi", gw_port)) ||
      !(text = kit_conf(o, dir, gw_port, tpl_port, out_tok, in_tok))) {
    fprintf(stderr, "okegw accept: out of memory\n");
    goto done;
  }
  if (write_text(conf_path, text) < 0)
    goto done;
  okegw_diag diag = {0};
  if (okegw_conf_load(conf_path, &conf, &diag) < 0) {
    fprintf(stderr, "okegw accept: the supplier's settings do not make a configuration:\n");
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "  %s\n", diag.msgs[i]);
    okegw_diag_free(&diag);
    goto done;
  }
  conf_loaded = 1;
  const okegw_conf_connector *cc = okegw_conf_section(&conf, "supplier");
  const okegw_conf_connector *tpl = okegw_conf_section(&conf, "kit_tpl");
  char why[512];
  if (!(ict = ict_new(cc, NULL)) || add_system(ict, "tpl", tpl, why, sizeof why) < 0 ||
      write_json(ict_path, ict) < 0)
    goto done;
  if ((gw = start_gateway(conf_path, log, gw_port)) < 0) {
    fprintf(stderr, "okegw accept: the kit's gateway did not start; its log: %s\n", log);
    o->keep = o->keep ? o->keep : dir; /* keep the log to read */
    goto done;
  }
  if (okegw_store_open_direct(conf.store, 1, &s, &err) != OKEGW_STORE_OK) {
    fprintf(stderr, "okegw accept: %s\n", err ? err : "out of memory");
    goto done;
  }
  o->gateway = url;
  run_state rs;
  int ran =
      stored_run(o, s, "supplier", "conformance", conf.sha256, engine, ict_path, scen, dir, &rs);
  if (ran == -1)
    o->keep = dir; /* the engine's and the gateway's logs, to read */
  okegw_store_close(s, NULL, NULL);
  s = NULL;
  if (stop_gateway(gw) != 0)
    fprintf(stderr, "okegw accept: the kit's gateway did not stop cleanly (log %s)\n", log);
  gw = -1;
  if (okegw_store_open_direct(conf.store, 0, &s, &err) != OKEGW_STORE_OK) {
    fprintf(stderr, "okegw accept: %s\n", err ? err : "out of memory");
    goto done;
  }
  const char *verdict = NULL;
  printf("\n");
  if (okegw_report_write(s, cc, NULL, OKEGW_REPORT_TEXT, NULL, &verdict) < 0 ||
      (o->out &&
       okegw_report_write(s, cc, NULL, (enum okegw_report_format)o->format, o->out, NULL) < 0)) {
    rc = 1;
    goto done;
  }
  rc = ran == -2 ? 2 : ran == 0 && !rs.failed && verdict && strcmp(verdict, "GO") == 0 ? 0 : 1;
  printf("conformance of %s: %s\n", o->base_url, rc == 0 ? "PASSED" : "FAILED");
done:
  if (gw > 0)
    stop_gateway(gw);
  if (s)
    okegw_store_close(s, NULL, NULL);
  work_dir_clean(o, dir);
  if (conf_loaded)
    okegw_conf_free(&conf);
  cJSON_Delete(ict);
  if (text)
    OPENSSL_cleanse(text, strlen(text));
  free(text);
  free(err);
  free(url);
  free(scen);
  free(ict_path);
  free(log);
  free(conf_path);
  free(dir);
  return rc;
}

int okegw_admin_accept(int argc, char **argv) {
  opts o = {.format = OKEGW_REPORT_TEXT};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    }
    if (strcmp(a, "-v") == 0) {
      o.verbose = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "okegw accept: %s needs a value\n%s", a, usage);
      return 2;
    }
    const char *v = argv[++i];
    if (strcmp(a, "-c") == 0)
      o.file = v;
    else if (strcmp(a, "--connector") == 0)
      o.connector = v;
    else if (strcmp(a, "--scenarios") == 0)
      o.scenarios = v;
    else if (strcmp(a, "--gateway") == 0)
      o.gateway = v;
    else if (strcmp(a, "--cafile") == 0)
      o.cafile = v;
    else if (strcmp(a, "--base-url") == 0)
      o.base_url = v;
    else if (strcmp(a, "--role") == 0)
      o.role = v;
    else if (strcmp(a, "--token") == 0)
      o.token = v;
    else if (strcmp(a, "--token-file") == 0)
      o.token_file = v;
    else if (strcmp(a, "-o") == 0)
      o.out = v;
    else if (strcmp(a, "--keep") == 0)
      o.keep = v;
    else if (strcmp(a, "--format") == 0) {
      if ((o.format = okegw_report_format_from_name(v)) < 0) {
        fprintf(stderr, "okegw accept: --format is text, json or html, not '%s'\n", v);
        return 2;
      }
    } else if (strcmp(a, "--only") == 0) {
      /* "--only 4 --only 8" or "--only 4,8": scenario numbers */
      char *list = argv[i];
      size_t len = strlen(list);
      for (size_t k = 0; k < len; k++)
        if (list[k] == ',')
          list[k] = '\0';
      for (size_t k = 0; k <= len; k += strlen(list + k) + 1) {
        const char *p = list + k;
        if (!*p || strspn(p, "0123456789") != strlen(p) || o.nonly >= MAX_LIST) {
          fprintf(stderr, "okegw accept: --only takes scenario numbers: --only 4, or --only 4,8\n");
          return 2;
        }
        o.only[o.nonly++] = p;
      }
    } else if (strcmp(a, "--set") == 0 && o.nsets < MAX_LIST) {
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || strpbrk(v, "\n\r[;")) {
        fprintf(stderr, "okegw accept: --set takes KEY=VALUE (a connector key), not '%s'\n", v);
        return 2;
      }
      o.sets[o.nsets++] = v;
    } else {
      fprintf(stderr, "okegw accept: unknown argument '%s'\n%s", a, usage);
      return 2;
    }
  }
  if ((o.token && strpbrk(o.token, "\r\n")) || (o.base_url && strpbrk(o.base_url, "\r\n ;"))) {
    fprintf(stderr, "okegw accept: --token and --base-url are one line each\n");
    return 2;
  }
  if (o.token && o.token_file) {
    fprintf(stderr, "okegw accept: --token or --token-file, not both\n");
    return 2;
  }
  if (o.base_url && !o.file && !o.connector)
    return accept_kit(&o);
  if (o.file && o.connector && !o.base_url && !o.token && !o.token_file && !o.nsets)
    return accept_gateway(&o);
  fprintf(stderr, "okegw accept: either -c FILE --connector NAME, or --base-url URL --role ta\n%s",
          usage);
  return 2;
}
