/* okegw: the school's OKE gateway. See README.md for usage. */
#include "store/pg.h"
#include "admin/accept.h"
#include "admin/admin.h"
#include "admin/report.h"
#include "admin/control.h"
#include "auth/jwks.h"
#include "base/conf.h"
#include "pipeline/gateway.h"
#include "pipeline/generation.h"
#include "pipeline/token.h"
#include "http/http_client.h"
#include "http/tls.h"
#include "auth/secret.h"
#include "base/json.h"
#include "base/log.h"
#include "connector/plugin_host.h"
#include "base/util.h"
#include "sim/sim_server.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#ifdef OKEGW_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

static const char usage[] =
    "usage: okegw -c FILE          run the gateway with configuration FILE\n"
    "       okegw -t -c FILE       check FILE, its plugins and scripts; exit 0 when ok\n"
    "       okegw reload -c FILE   make the gateway running with FILE read it again; prints\n"
    "                              whether it took the file, and why not\n"
    "       okegw map -c FILE --connector NAME --interaction ID --in SAMPLE.json [--reverse "
    "[--status N]]\n"
    "                              run one Lua mapping offline and print the result\n"
    "       okegw audit -c FILE [--resource ID] [--since TIME] [--until TIME] [--limit N] "
    "[--store]\n"
    "                              print the audit trail as JSON lines\n"
    "         audit, deliveries and report go through the running gateway's admin API when\n"
    "         admin_listen answers, else (and with --store) through the store directly\n"
    "       okegw deliveries list|show|retry|drop -c FILE [...]\n"
    "                              inspect the outbox; send dead or failed deliveries again or\n"
    "                              drop them (okegw deliveries --help for the details)\n"
    "       okegw phases -c FILE [--connector NAME] [--json] [--limit N]\n"
    "                              print the connectors' phase changes, oldest first\n"
    "       okegw accept -c FILE --connector NAME [--only ID]...\n"
    "                              run the ketentest scenarios through the running gateway\n"
    "                              against a supplier and store the outcome as evidence\n"
    "       okegw accept --base-url URL --role ta [--token T]\n"
    "                              conformance kit: check a supplier's OKE API (okegw accept "
    "--help)\n"
    "       okegw report -c FILE --connector NAME [--since TIME] [--format text|json|html] [-o "
    "FILE] [--store]\n"
    "                              the acceptance evidence and the verdict GO / NO-GO / "
    "INCONCLUSIVE\n"
    "       okegw hash-secret [--generate]\n"
    "                              the client_secret_hash line for a secret read from stdin\n"
    "                              (--generate: for a new random secret, printed once)\n"
    "       okegw config-keys [--markdown]\n"
    "                              list every plugins.conf key with its type, range and default\n"
    "                              (--markdown: the README's reference tables)\n"
    "       okegw sim --listen HOST:PORT [--seed TEXT] [--access-url-base URL]\n"
    "                              serve the simulated supplier (TA) on its own over plain HTTP,\n"
    "                              for a second connector (okegw sim --help for the details)\n"
    "       okegw --version        print the version and the plugin ABI\n";

static int loopback(const char *host) {
  return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
         strcmp(host, "localhost") == 0;
}

/* What is allowed but unsafe outside one machine (DESIGN §9): plain HTTP
 * and static tokens where other machines can reach okegw. */
static void security_warnings(const okegw_conf *conf) {
  int exposed_plain = !loopback(conf->listen_host);
  int exposed = exposed_plain || (conf->listen_tls_host && !loopback(conf->listen_tls_host));
  if (exposed_plain)
    fprintf(stderr,
            "%s: warning: listen = %s:%d serves plain HTTP to other machines; OKE requires TLS "
            "1.3 (R1): use listen_tls, or listen on 127.0.0.1 behind a proxy that terminates "
            "TLS\n",
            conf->path, conf->listen_host, conf->listen_port);
  for (size_t i = 0; exposed && i < conf->nconnectors; i++) {
    const okegw_conf_connector *cc = &conf->connectors[i];
    const char *keys[] = {"inbound_token", "callback_token"};
    for (size_t k = 0; k < 2; k++) {
      const okegw_conf_kv *kv = okegw_conf_find(cc, keys[k]);
      if (kv)
        fprintf(stderr,
                "%s:%d: warning: [connector %s] %s is a static token on a listener other "
                "machines reach; fine for a demo, not for exams\n",
                conf->path, kv->line, cc->name, keys[k]);
    }
  }
}

/* Loads the configuration and every plugin it names without starting
 * anything; prints each problem as FILE:LINE: message. */
static int check_config(const char *file) {
  okegw_log_set_level(OKEGW_LOG_WARN); /* only what is wrong */
  okegw_conf conf;
  okegw_diag diag = {0};
  int rc = okegw_conf_load(file, &conf, &diag);
  if (rc == 0) {
    security_warnings(&conf);
    okegw_jwks_source_check(&conf, &diag); /* the issuer's keys, when a file */
    char why[512];
    if (okegw_pg_is_uri(conf.store) && okegw_pg_check_uri(conf.store, why, sizeof why) < 0)
      okegw_diag_add(&diag, conf.path, 0, "store: %s", why);
    okegw_token_check(&conf, &diag); /* okegw's own signing key and client hashes */
    okegw_tls *tls = NULL;
    okegw_tls_opts o = okegw_gateway_tls_opts(&conf);
    if (conf.listen_tls_host && okegw_tls_new(&o, &tls, why, sizeof why) < 0)
      okegw_diag_add(&diag, conf.path, conf.tls_line, "%s", why);
    okegw_tls_free(tls);
    for (size_t i = 0; i < conf.nconnectors; i++) {
      okegw_connector c;
      /* init too: a plugin checks its own settings there (e.g. rest's
       * routes); with no loop it cannot reach the network */
      if (okegw_connector_load(&c, &conf, &conf.connectors[i], &diag) == 0 &&
          okegw_connector_init(&c, NULL, NULL, 0) < 0)
        okegw_diag_add(&diag, conf.path,
                       conf.connectors[i].plugin_line ? conf.connectors[i].plugin_line
                                                      : conf.connectors[i].line,
                       "[connector %s] %s (see the plugin's log line above)",
                       conf.connectors[i].name, c.error ? c.error : "refused to initialise");
      okegw_connector_unload(&c);
      okegw_mapset *maps = NULL;
      if (okegw_gen_load_mappings(&conf, &conf.connectors[i], &maps, &diag) == 0)
        okegw_mapset_unref(maps);
    }
    okegw_conf_free(&conf);
  }
  for (size_t i = 0; i < diag.n; i++)
    fprintf(stderr, "%s\n", diag.msgs[i]);
  int ok = diag.n == 0, from_table = 0;
  /* A refused value reads "FILE:LINE: KEY: ..." with KEY a row of the key
   * table; then the whole row (type, range, default) is one command away. */
  for (size_t i = 0; i < diag.n && !from_table; i++)
    for (const okegw_conf_key *k = okegw_conf_keys(); k->name && !from_table; k++) {
      const char *at = strstr(diag.msgs[i], k->name);
      from_table = at && at - diag.msgs[i] >= 2 && at[-2] == ':' && at[-1] == ' ' &&
                   at[strlen(k->name)] == ':';
    }
  okegw_diag_free(&diag);
  if (ok)
    printf("okegw: configuration %s is ok\n", file);
  else
    fprintf(stderr, "okegw: configuration %s has errors\n", file);
  if (from_table)
    fprintf(stderr,
            "okegw: `okegw config-keys` lists every key with its type, range and default\n");
  return ok ? 0 : 1;
}

typedef struct app {
  uv_loop_t *loop;
  okegw_gateway *gw;
  uv_signal_t sigterm, sigint, sighup;
  int signals;
} app;

/* systemd's Type=notify: READY=1 once every listener is up, RELOADING=1
 * and READY=1 around a reload, STOPPING=1 at stop. sd_notify does nothing
 * without NOTIFY_SOCKET (not started by systemd). */
static void notify(const char *state) {
#ifdef OKEGW_HAVE_SYSTEMD
  int rc = sd_notify(0, state);
  if (rc < 0)
    okegw_log(OKEGW_LOG_WARN, NULL, "cannot tell systemd %s: %s", state, strerror(-rc));
#else
  (void)state;
#endif
}

static void on_reload_hook(int reloading) {
  if (!reloading) {
    notify("READY=1");
    return;
  }
  /* MONOTONIC_USEC tells systemd which reload this is */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char state[96];
  snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
  notify(state);
}

static void on_stopped(void *arg) {
  app *a = arg;
  a->gw = NULL;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sighup, NULL);
  okegw_log(OKEGW_LOG_INFO, NULL, "stopped");
}

static void on_signal(uv_signal_t *s, int signum) {
  app *a = s->data;
  if (++a->signals > 1) {
    okegw_log(OKEGW_LOG_WARN, NULL, "second signal: exiting without draining");
    _exit(1); /* not exit: the other event loops still run, atexit cleanups would race them */
  }
  okegw_log(OKEGW_LOG_INFO, NULL, "signal %d: draining and stopping", signum);
  notify("STOPPING=1");
  if (a->gw)
    okegw_gateway_stop(a->gw, on_stopped, a);
}

static void on_sighup(uv_signal_t *s, int signum) {
  app *a = s->data;
  (void)signum;
  okegw_log(OKEGW_LOG_INFO, NULL, "SIGHUP: reloading the configuration");
  if (a->gw)
    okegw_gateway_sighup(a->gw);
}

static int run(const char *file) {
  okegw_log_set_format("auto"); /* until the file says */
  okegw_conf *conf = calloc(1, sizeof *conf);
  if (!conf || okegw_conf_load_cli(file, conf) < 0) {
    free(conf);
    return 1;
  }
  okegw_log_set_level(okegw_log_level_from_name(conf->log_level));
  okegw_log_set_format(conf->log_format);
  /* A peer closing its socket must not kill the process. */
  signal(SIGPIPE, SIG_IGN);

  app a = {0};
  a.loop = uv_default_loop();
  okegw_log(OKEGW_LOG_INFO, NULL, "okegw %s starting with %s (%zu connector(s))", OKEGW_VERSION,
            file, conf->nconnectors);
  /* Signals are caught before the gateway listens: a SIGTERM right after
   * the "listening" line is a drain, not a kill. They are handled once the
   * loop runs, when a.gw is set. */
  uv_signal_init(a.loop, &a.sigterm);
  uv_signal_init(a.loop, &a.sigint);
  uv_signal_init(a.loop, &a.sighup);
  a.sigterm.data = a.sigint.data = a.sighup.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sighup, on_sighup, SIGHUP);
  int rc = okegw_gateway_start(a.loop, conf, &a.gw); /* takes conf over */
  if (rc == 0) {
    okegw_gateway_set_reload_hook(a.gw, on_reload_hook);
    notify("READY=1");
  }
  if (rc != 0) {
    uv_signal_stop(&a.sigterm);
    uv_signal_stop(&a.sigint);
    uv_signal_stop(&a.sighup);
  }
  if (rc != 0 && a.gw) {
    okegw_gateway_stop(a.gw, on_stopped, &a);
  } else if (rc != 0) {
    uv_close((uv_handle_t *)&a.sigterm, NULL);
    uv_close((uv_handle_t *)&a.sigint, NULL);
    uv_close((uv_handle_t *)&a.sighup, NULL);
  }
  uv_run(a.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(a.loop) != 0)
    okegw_log(OKEGW_LOG_WARN, NULL, "event loop closed with handles still open");
  okegw_http_global_cleanup();
  return rc == 0 ? 0 : 1;
}

/* okegw map: one mapping, offline, on a sample. Exit 0 with the result on
 * stdout, 1 when the mapping fails (file:line on stderr), 2 on bad usage. */
static int map_command(int argc, char **argv) {
  const char *file = NULL, *connector = NULL, *interaction = NULL, *in = NULL;
  int reverse = 0, status = 200;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
      file = argv[++i];
    else if (strcmp(argv[i], "--connector") == 0 && i + 1 < argc)
      connector = argv[++i];
    else if (strcmp(argv[i], "--interaction") == 0 && i + 1 < argc)
      interaction = argv[++i];
    else if (strcmp(argv[i], "--in") == 0 && i + 1 < argc)
      in = argv[++i];
    else if (strcmp(argv[i], "--reverse") == 0)
      reverse = 1;
    else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc)
      status = atoi(argv[++i]);
    else {
      fprintf(stderr, "okegw map: unknown argument '%s'\n%s", argv[i], usage);
      return 2;
    }
  }
  if (!file || !connector || !interaction || !in) {
    fprintf(stderr, "okegw map: -c, --connector, --interaction and --in are required\n%s", usage);
    return 2;
  }
  if (!okegw_interaction_by_name(interaction)) {
    fprintf(stderr, "okegw map: '%s' is not an interaction id; known ids:\n", interaction);
    for (int i = 1; i < okegw_interaction_count(); i++)
      fprintf(stderr, "  %-32s %-5s %s\n", okegw_interaction_name(i), okegw_interaction_method(i),
              okegw_interaction_path(i));
    return 2;
  }
  okegw_conf conf;
  if (okegw_conf_load_cli(file, &conf) < 0)
    return 2;
  okegw_diag diag = {0};
  int rc = 2;
  const okegw_conf_connector *cc = okegw_conf_section(&conf, connector);
  okegw_mapset *maps = NULL;
  size_t len = 0;
  char *text = NULL;
  cJSON *sample = NULL, *out = NULL;
  if (!cc) {
    fprintf(stderr, "okegw map: no [connector %s] in %s\n", connector, file);
    goto done;
  }
  if (okegw_gen_load_mappings(&conf, cc, &maps, &diag) < 0) {
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "%s\n", diag.msgs[i]);
    rc = 1;
    goto done;
  }
  if (!(text = okegw_read_file(in, 64u << 20, &len))) {
    fprintf(stderr, "okegw map: cannot read %s\n", in);
    goto done;
  }
  if (!(sample = cJSON_ParseWithLength(text, len))) {
    fprintf(stderr, "okegw map: %s is not valid JSON\n", in);
    goto done;
  }
  okegw_map_ctx ctx = {.connector = cc->name,
                       .interaction = interaction,
                       .id = "",
                       .phase = okegw_phase_name(cc->phase),
                       .status = reverse ? status : 0,
                       .conf = cc};
  char err[1024];
  if (okegw_mapset_run(maps, interaction, reverse, sample, &ctx, &out, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    rc = 1;
    goto done;
  }
  if (!out)
    fprintf(stderr, "okegw map: %s/%s.lua has no %s: the message passes unchanged\n",
            okegw_mapset_dir(maps), interaction, reverse ? "from_peer" : "to_peer");
  char *printed =
      okegw_json_exact_numbers(out ? out : sample) == 0 ? cJSON_Print(out ? out : sample) : NULL;
  if (printed) {
    printf("%s\n", printed);
    free(printed);
    rc = 0;
  }
done:
  cJSON_Delete(out);
  cJSON_Delete(sample);
  free(text);
  okegw_mapset_unref(maps);
  okegw_diag_free(&diag);
  okegw_conf_free(&conf);
  return rc;
}

/* okegw hash-secret [--generate]: the client_secret_hash line for a secret
 * read from stdin (without echo on a terminal), or for a new random one. */
static int hash_secret_command(int argc, char **argv) {
  int generate = argc == 3 && strcmp(argv[2], "--generate") == 0;
  if (argc > 3 || (argc == 3 && !generate)) {
    fprintf(stderr, "usage: okegw hash-secret [--generate]\n");
    return 2;
  }
  char secret[1024];
  if (generate) {
    if (okegw_secret_generate(secret) < 0) {
      fprintf(stderr, "okegw hash-secret: no random bytes\n");
      return 1;
    }
  } else {
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
      fprintf(stderr, "client secret: ");
      quiet = old;
      quiet.c_lflag &= ~(tcflag_t)ECHO;
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(secret, sizeof secret, stdin);
    if (tty) {
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
      fputc('\n', stderr);
    }
    secret[got ? strcspn(secret, "\r\n") : 0] = '\0';
    if (strlen(secret) < 16) {
      fprintf(stderr, "okegw hash-secret: a client secret has at least 16 characters\n");
      return 1;
    }
  }
  char *line = okegw_secret_hash(secret, strlen(secret));
  if (!line) {
    fprintf(stderr, "okegw hash-secret: hashing failed\n");
    return 1;
  }
  if (generate)
    printf("client_secret = %s\n", secret); /* for the calling system, once */
  printf("client_secret_hash = %s\n", line);
  memset(secret, 0, sizeof secret);
  free(line);
  return 0;
}

int main(int argc, char **argv) {
  const char *file = NULL;
  if (argc > 1 && strcmp(argv[1], "hash-secret") == 0)
    return hash_secret_command(argc, argv);
  if (argc > 1 && strcmp(argv[1], "map") == 0)
    return map_command(argc, argv);
  if (argc > 1 && strcmp(argv[1], "reload") == 0)
    return okegw_control_reload_command(argc, argv);
  if (argc > 1 && strcmp(argv[1], "sim") == 0)
    return okegw_sim_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "audit") == 0)
    return okegw_admin_audit(argc, argv);
  if (argc > 1 && strcmp(argv[1], "deliveries") == 0)
    return okegw_admin_deliveries(argc, argv);
  if (argc > 1 && strcmp(argv[1], "phases") == 0)
    return okegw_admin_phases(argc, argv);
  if (argc > 1 && strcmp(argv[1], "report") == 0)
    return okegw_admin_report(argc, argv);
  if (argc > 1 && strcmp(argv[1], "accept") == 0)
    return okegw_admin_accept(argc, argv);
  if (argc > 1 && strcmp(argv[1], "config-keys") == 0) {
    if (argc > 3 || (argc == 3 && strcmp(argv[2], "--markdown") != 0)) {
      fprintf(stderr, "okegw config-keys: unknown argument '%s'\n%s", argv[argc - 1], usage);
      return 2;
    }
    okegw_conf_print_keys(stdout, argc == 3);
    return 0;
  }
  int test = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
      printf("okegw %s (plugin ABI %d.%d; built-in plugins: %s; malloc: %s)\n", OKEGW_VERSION,
             OKE_ABI_MAJOR, OKE_ABI_MINOR, okegw_builtin_plugins(), okegw_malloc_name());
      return 0;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "-t") == 0) {
      test = 1;
    } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      file = argv[++i];
    } else {
      fprintf(stderr, "okegw: unknown argument '%s'\n%s", argv[i], usage);
      return 2;
    }
  }
  if (!file) {
    fputs(usage, stderr);
    return 2;
  }
  return test ? check_config(file) : run(file);
}
