/* okegw sim (see sim_server.h): the HTTP server of http/server.c in front of
 * one sim connector loaded through the connector host, as the gateway would
 * load it; each request is matched to the OKE interaction a TPL sends a TA
 * and handed to the sim, whose answer goes back unchanged. */
#include "sim/sim_server.h"
#include "base/conf.h"
#include "base/log.h"
#include "base/util.h"
#include "connector/plugin_host.h"
#include "http/server.h"
#include "oke/interaction.h"
#include "oke/problem.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char sim_usage[] =
    "usage: okegw sim --listen HOST:PORT [--seed TEXT] [--access-url-base URL] [--log-level "
    "LEVEL]\n"
    "  serves the simulated supplier (TA) as a plain-HTTP OKE server: point a connector with\n"
    "  plugin = ooapi and base_url = http://HOST:PORT at it\n"
    "  --listen HOST:PORT       address to listen on (port 0: the OS picks; the log says which)\n"
    "  --seed TEXT              the catalogue_seed: tests of a supplier of their own (ids, codes\n"
    "                           and names derived from TEXT); without it the default catalogue\n"
    "  --access-url-base URL    base of the start links it hands out (default\n"
    "                           https://sim.example/start)\n"
    "  --log-level LEVEL        debug, info (default), warn or error\n";

/* The connector's section name: in log lines as "connector". */
#define SIM_CONNECTOR "sim"

typedef struct sim_route {
  const char *pattern; /* "{id}" stands for one path segment */
  const char *method;
  int interaction; /* 0: GET /, the service metadata */
} sim_route;

/* What a TPL sends to a TA (the TA rows of the gateway's route table). */
static const sim_route sim_routes[] = {
    {"/", "GET", 0},
    {"/components", "GET", OKE_I_FLOW0_LIST_COMPONENTS},
    {"/components/{id}", "GET", OKE_I_FLOW0_GET_COMPONENT},
    {"/offerings/{id}", "PUT", OKE_I_FLOW2_PUT_OFFERING},
    {"/offerings/{id}", "PATCH", OKE_I_FLOW2_PATCH_OFFERING},
    {"/offerings/{id}", "GET", OKE_I_FLOW2_GET_OFFERING},
    {"/offerings/{id}/associations", "GET", OKE_I_FLOW2_LIST_ASSOCIATIONS},
    {"/associations/{id}", "PUT", OKE_I_FLOW2_PUT_ASSOCIATION},
    {"/associations/{id}", "PATCH", OKE_I_FLOW2_PATCH_ASSOCIATION},
    {"/associations/{id}", "GET", OKE_I_FLOW2_GET_ASSOCIATION},
    {"/associations/{id}/url", "GET", OKE_I_FLOW2_GET_ASSOCIATION_URL},
};
#define SIM_NROUTES (sizeof sim_routes / sizeof sim_routes[0])

typedef struct sim_app {
  uv_loop_t *loop;
  okegw_conf conf;
  okegw_connector conn;
  int loaded;
  okegw_server *server;
  uv_signal_t sigterm, sigint;
  int signals;
} sim_app;

/* One request with the sim. */
typedef struct sim_call {
  okegw_req *req;
  int interaction;
} sim_call;

/* 1 when path matches pattern; the {id} segment goes to id (size idsz). */
static int path_match(const char *pattern, const char *path, char *id, size_t idsz) {
  const char *p = pattern, *s = path;
  id[0] = '\0';
  while (*p && *s) {
    if (strncmp(p, "{id}", 4) == 0) {
      size_t n = strcspn(s, "/");
      if (n == 0 || n >= idsz)
        return 0;
      memcpy(id, s, n);
      id[n] = '\0';
      p += 4;
      s += n;
    } else if (*p++ != *s++) {
      return 0;
    }
  }
  return !*p && !*s;
}

/* Sends an answer and logs the request line, as the gateway does. */
static void answer(okegw_req *r, int interaction, int status, const char *ctype, const char *body,
                   size_t len, const char *extra_headers) {
  okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
  f.method = r->head ? "HEAD" : r->method;
  f.path = r->path;
  f.status = status;
  f.request_id = r->request_id;
  f.latency_ms = okegw_now_ms() - r->start_ms;
  f.interaction = interaction ? okegw_interaction_name(interaction) : NULL;
  f.connector = SIM_CONNECTOR;
  okegw_log(status >= 500 ? OKEGW_LOG_WARN : OKEGW_LOG_INFO, &f, "request");
  okegw_respond(r, status, ctype, body, len, extra_headers);
}

static void answer_problem(okegw_req *r, int status, const char *extra_headers,
                           const char *detail) {
  char *body = okegw_problem_json(status, okegw_status_text(status), detail, NULL);
  if (!body) {
    answer(r, 0, 503, "text/plain", "out of memory\n", 14, NULL);
    return;
  }
  answer(r, 0, status, OKEGW_PROBLEM_TYPE, body, strlen(body), extra_headers);
  free(body);
}

/* GET /: the service metadata a connector checks at first contact (R31). */
static void answer_metadata(okegw_req *r) {
  cJSON *o = okegw_service_metadata();
  cJSON_AddStringToObject(o, "documentation", "okegw sim: a simulated test supplier");
  char *body = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!body) {
    answer_problem(r, 503, NULL, "out of memory");
    return;
  }
  answer(r, 0, 200, "application/json", body, strlen(body), NULL);
  free(body);
}

static void on_sim_answer(void *ud, const okegw_answer *a) {
  sim_call *call = ud;
  answer(call->req, call->interaction, a->status, a->content_type, a->body, a->body_len,
         a->extra_headers);
  free(call);
}

static void on_request(okegw_req *r, void *ud) {
  sim_app *app = ud;
  char id[256], allow[64] = "";
  const sim_route *hit = NULL;
  for (size_t i = 0; i < SIM_NROUTES; i++) {
    if (!path_match(sim_routes[i].pattern, r->path, id, sizeof id))
      continue;
    if (strcmp(sim_routes[i].method, r->method) == 0) {
      hit = &sim_routes[i];
      break;
    }
    size_t used = strlen(allow);
    snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", sim_routes[i].method);
  }
  if (!hit && allow[0]) {
    char hdr[96], detail[160];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    snprintf(detail, sizeof detail, "%s is not allowed here; allowed: %s", r->method, allow);
    answer_problem(r, 405, hdr, detail);
    return;
  }
  if (!hit) {
    answer_problem(r, 404, NULL,
                   "no such OKE resource at this simulated supplier: it serves GET /, flow 0 "
                   "(/components) and flow 2 (/offerings, /associations)");
    return;
  }
  if (!hit->interaction) {
    answer_metadata(r);
    return;
  }
  path_match(hit->pattern, r->path, id, sizeof id);
  /* ids are UUIDs in one form, lower case, as the gateway hands them on */
  if (okegw_is_uuid(id))
    okegw_uuid_lower(id);
  sim_call *call = calloc(1, sizeof *call);
  if (!call) {
    answer_problem(r, 503, NULL, "out of memory");
    return;
  }
  call->req = r;
  call->interaction = hit->interaction;
  oke_request req = {.interaction = hit->interaction,
                     .method = r->method,
                     .path = r->path,
                     .query = r->query,
                     .id = id,
                     .body = r->body,
                     .body_len = r->body_len,
                     .content_type = okegw_req_header(r, "Content-Type"),
                     .request_id = r->request_id};
  okegw_connector_deliver(&app->conn, &req, NULL, on_sim_answer, call);
}

/* ---- start and stop ----------------------------------------------------- */

static void on_drained(void *arg) {
  sim_app *app = arg;
  okegw_server_free(app->server);
  app->server = NULL;
  if (app->loaded)
    okegw_connector_unload(&app->conn);
  app->loaded = 0;
  uv_close((uv_handle_t *)&app->sigterm, NULL);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  okegw_log(OKEGW_LOG_INFO, NULL, "stopped");
}

static void on_signal(uv_signal_t *s, int signum) {
  sim_app *app = s->data;
  if (++app->signals > 1) {
    okegw_log(OKEGW_LOG_WARN, NULL, "second signal: exiting without draining");
    exit(1);
  }
  okegw_log(OKEGW_LOG_INFO, NULL, "signal %d: draining and stopping", signum);
  if (app->server)
    okegw_server_drain(app->server, on_drained, app);
}

/* A value that goes into the generated plugins.conf: one line. */
static int one_line(const char *opt, const char *v) {
  for (const unsigned char *c = (const unsigned char *)v; *c; c++)
    if (*c < 0x20 || *c == 0x7f) {
      fprintf(stderr, "okegw sim: %s holds a control character\n", opt);
      return 0;
    }
  return 1;
}

/* The configuration of the sim connector, through the same reader as
 * plugins.conf, so --seed means exactly what catalogue_seed means there. */
static int build_conf(sim_app *app, const char *listen, const char *seed, const char *url_base,
                      const char *level) {
  okegw_buf b = {0};
  int bad = okegw_buf_printf(&b, "[gateway]\nlisten = %s\nlog_level = %s\n\n", listen, level);
  bad |= okegw_buf_printf(&b, "[connector %s]\nplugin = sim\nrole = ta\n", SIM_CONNECTOR);
  if (url_base)
    bad |= okegw_buf_printf(&b, "access_url_base = %s\n", url_base);
  if (seed)
    bad |= okegw_buf_printf(&b, "catalogue_seed = %s\n", seed);
  if (bad || !b.data) {
    okegw_buf_free(&b);
    fprintf(stderr, "okegw sim: out of memory\n");
    return -1;
  }
  okegw_diag diag = {0};
  int rc = okegw_conf_parse("okegw sim options", b.data, &app->conf, &diag);
  okegw_buf_free(&b);
  for (size_t i = 0; i < diag.n; i++)
    fprintf(stderr, "%s\n", diag.msgs[i]);
  okegw_diag_free(&diag);
  if (rc < 0)
    return -1;
  const okegw_conf_connector *cc = &app->conf.connectors[0];
  const char *want[2] = {seed, url_base}, *keys[2] = {"catalogue_seed", "access_url_base"};
  const char *opts[2] = {"--seed", "--access-url-base"};
  for (int i = 0; i < 2; i++) {
    const okegw_conf_kv *kv = okegw_conf_find(cc, keys[i]);
    if (want[i] && (!kv || strcmp(kv->value, want[i]) != 0)) {
      /* e.g. blanks around it, or " #" which starts a comment there */
      fprintf(stderr,
              "okegw sim: %s '%s' cannot be written as a plugins.conf value (%s): leave out "
              "leading and trailing blanks and ' #' or ' ;'\n",
              opts[i], want[i], keys[i]);
      okegw_conf_free(&app->conf);
      return -1;
    }
  }
  return 0;
}

int okegw_sim_main(int argc, char **argv) {
  const char *listen = NULL, *seed = NULL, *url_base = NULL, *level = "info";
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(sim_usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = argv[++i];
    } else if (strcmp(argv[i], "--access-url-base") == 0 && i + 1 < argc) {
      url_base = argv[++i];
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
      level = argv[++i];
    } else {
      fprintf(stderr, "okegw sim: unknown or incomplete argument '%s'\n%s", argv[i], sim_usage);
      return 2;
    }
  }
  if (!listen) {
    fprintf(stderr, "okegw sim: --listen HOST:PORT is required\n%s", sim_usage);
    return 2;
  }
  if (!one_line("--listen", listen) || (seed && !one_line("--seed", seed)) ||
      (url_base && !one_line("--access-url-base", url_base)) || !one_line("--log-level", level))
    return 2;

  sim_app app = {0};
  if (build_conf(&app, listen, seed, url_base, level) < 0)
    return 2;
  okegw_log_set_level(okegw_log_level_from_name(app.conf.log_level));
  signal(SIGPIPE, SIG_IGN);
  app.loop = uv_default_loop();

  okegw_diag diag = {0};
  int rc = okegw_connector_load(&app.conn, &app.conf, &app.conf.connectors[0], &diag);
  app.loaded = 1; /* unloaded in any case: a refused load holds its reason */
  for (size_t i = 0; i < diag.n; i++)
    fprintf(stderr, "%s\n", diag.msgs[i]);
  okegw_diag_free(&diag);
  if (rc == 0) {
    rc = okegw_connector_init(&app.conn, app.loop, NULL, 0);
    if (rc < 0)
      okegw_log(OKEGW_LOG_ERROR, NULL, "okegw sim: the simulated supplier did not start: %s",
                app.conn.error ? app.conn.error : "refused to initialise");
  }
  if (rc == 0) {
    okegw_server_opts so = {.host = app.conf.listen_host,
                            .port = app.conf.listen_port,
                            .max_header_bytes = app.conf.max_header_bytes,
                            .max_body_bytes = app.conf.max_body_bytes,
                            .idle_timeout_ms = app.conf.idle_timeout_ms,
                            .header_timeout_ms = app.conf.header_timeout_ms,
                            .body_min_rate_bytes = app.conf.body_min_rate_bytes,
                            .send_timeout_ms = app.conf.send_timeout_ms,
                            .max_connections = app.conf.max_connections,
                            .handler = on_request,
                            .ud = &app};
    rc = okegw_server_start(app.loop, &so, &app.server);
    if (rc < 0) {
      okegw_log(OKEGW_LOG_ERROR, NULL, "cannot listen on %s:%d: %s", app.conf.listen_host,
                app.conf.listen_port, uv_strerror(rc));
      app.server = NULL;
    }
  }
  if (rc == 0) {
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    okegw_log_fields f = OKEGW_LOG_FIELDS_INIT;
    f.connector = SIM_CONNECTOR;
    f.addr = app.conf.listen_host;
    f.port = okegw_server_port(app.server);
    okegw_log(OKEGW_LOG_INFO, &f, "listening");
    const char *h = app.conf.listen_host;
    if (strncmp(h, "127.", 4) != 0 && strcmp(h, "::1") != 0 && strcmp(h, "localhost") != 0)
      okegw_log(OKEGW_LOG_WARN, &f,
                "okegw sim serves plain HTTP without any credential check to other machines: "
                "fine for a trial, never for exams");
  } else if (app.loaded) {
    okegw_connector_unload(&app.conn);
    app.loaded = 0;
  }
  uv_run(app.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(app.loop) != 0)
    okegw_log(OKEGW_LOG_WARN, NULL, "event loop closed with handles still open");
  okegw_conf_free(&app.conf);
  return rc == 0 ? 0 : 1;
}
