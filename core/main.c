/* okegw: the school's OKE gateway. See README.md for usage. */
#include "conf.h"
#include "gateway.h"
#include "http_client.h"
#include "log.h"
#include "plugin_host.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char usage[] =
    "usage: okegw -c FILE          run the gateway with configuration FILE\n"
    "       okegw -t -c FILE       check FILE, its plugins and scripts; exit 0 when ok\n"
    "       okegw --version        print the version and the plugin ABI\n";

/* Loads the configuration and every plugin it names without starting
 * anything; prints each problem as FILE:LINE: message. */
static int check_config(const char *file) {
  okegw_conf conf;
  okegw_diag diag = {0};
  int rc = okegw_conf_load(file, &conf, &diag);
  if (rc == 0) {
    for (size_t i = 0; i < conf.nconnectors; i++) {
      okegw_connector c;
      okegw_connector_load(&c, &conf, &conf.connectors[i], &diag);
      okegw_connector_unload(&c);
    }
    okegw_conf_free(&conf);
  }
  for (size_t i = 0; i < diag.n; i++)
    fprintf(stderr, "%s\n", diag.msgs[i]);
  int ok = diag.n == 0;
  okegw_diag_free(&diag);
  if (ok)
    printf("okegw: configuration %s is ok\n", file);
  else
    fprintf(stderr, "okegw: configuration %s has errors\n", file);
  return ok ? 0 : 1;
}

typedef struct app {
  uv_loop_t *loop;
  okegw_gateway *gw;
  uv_signal_t sigterm, sigint;
  int signals;
} app;

static void on_stopped(void *arg) {
  app *a = arg;
  a->gw = NULL;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  okegw_log(OKEGW_LOG_INFO, NULL, "stopped");
}

static void on_signal(uv_signal_t *s, int signum) {
  app *a = s->data;
  if (++a->signals > 1) {
    okegw_log(OKEGW_LOG_WARN, NULL, "second signal: exiting without draining");
    exit(1);
  }
  okegw_log(OKEGW_LOG_INFO, NULL, "signal %d: draining and stopping", signum);
  if (a->gw)
    okegw_gateway_stop(a->gw, on_stopped, a);
}

static int run(const char *file) {
  okegw_conf conf;
  okegw_diag diag = {0};
  if (okegw_conf_load(file, &conf, &diag) < 0) {
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "%s\n", diag.msgs[i]);
    okegw_diag_free(&diag);
    return 1;
  }
  okegw_log_set_level(okegw_log_level_from_name(conf.log_level));
  /* A peer closing its socket must not kill the process. */
  signal(SIGPIPE, SIG_IGN);

  app a = {0};
  a.loop = uv_default_loop();
  okegw_log(OKEGW_LOG_INFO, NULL, "okegw %s starting with %s (%zu connector(s))", OKEGW_VERSION,
            file, conf.nconnectors);
  int rc = okegw_gateway_start(a.loop, &conf, &a.gw);
  uv_signal_init(a.loop, &a.sigterm);
  uv_signal_init(a.loop, &a.sigint);
  a.sigterm.data = a.sigint.data = &a;
  if (rc == 0) {
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
  } else if (a.gw) {
    okegw_gateway_stop(a.gw, on_stopped, &a);
  } else {
    uv_close((uv_handle_t *)&a.sigterm, NULL);
    uv_close((uv_handle_t *)&a.sigint, NULL);
  }
  uv_run(a.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(a.loop) != 0)
    okegw_log(OKEGW_LOG_WARN, NULL, "event loop closed with handles still open");
  okegw_conf_free(&conf);
  okegw_http_global_cleanup();
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *file = NULL;
  int test = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
      printf("okegw %s (plugin ABI %d.%d; built-in plugins: %s)\n", OKEGW_VERSION, OKE_ABI_MAJOR,
             OKE_ABI_MINOR, okegw_builtin_plugins());
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
