/* The control socket (see control.h). */
#include "admin/control.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4200 /* "reload " and a path */

/* A socket path as bind() and connect() take it: sun_path holds 107 bytes,
 * a store's folder may be deeper. Then the folder is opened and the socket
 * named through /proc/self/fd (Linux), which keeps the name short. *dirfd
 * is that folder (close it after the call), -1 when not needed. Returns
 * 0, or -1 when even that does not fit. */
static int sock_name(const char *path, char *out, size_t outsz, int *dirfd) {
  *dirfd = -1;
  if (strlen(path) < outsz) {
    snprintf(out, outsz, "%s", path);
    return 0;
  }
  const char *slash = strrchr(path, '/');
  if (!slash || strlen(slash + 1) + 32 >= outsz)
    return -1;
  char *dir = okegw_strndup(path, (size_t)(slash - path) + (slash == path));
  int fd = dir ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
  free(dir);
  if (fd < 0)
    return -1;
  *dirfd = fd;
  snprintf(out, outsz, "/proc/self/fd/%d/%s", fd, slash + 1);
  return 0;
}

typedef struct client client;

struct okegw_control {
  uv_pipe_t pipe;
  char *path;
  okegw_control_reload_fn reload;
  void *ud;
  client *clients; /* connected, closed with the socket at stop */
  size_t nclients;
};

#define CLIENTS_MAX 8

struct client {
  uv_pipe_t pipe;
  okegw_control *ctl;
  client *prev, *next;
  char line[LINE_MAX_BYTES];
  size_t len;
  int answered;
  uv_write_t w;
  char *out;
};

static void client_closed(uv_handle_t *h) {
  client *k = h->data;
  free(k->out);
  free(k);
}

/* Closes a client once (it leaves the list at once). */
static void client_close(client *k) {
  if (uv_is_closing((uv_handle_t *)&k->pipe))
    return;
  okegw_control *ctl = k->ctl;
  if (k->prev)
    k->prev->next = k->next;
  else if (ctl->clients == k)
    ctl->clients = k->next;
  if (k->next)
    k->next->prev = k->prev;
  ctl->nclients--;
  uv_close((uv_handle_t *)&k->pipe, client_closed);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  client_close(w->data);
}

static void answer(client *k, const char *text) {
  k->answered = 1;
  uv_read_stop((uv_stream_t *)&k->pipe);
  k->out = okegw_strdup(text);
  uv_buf_t b = uv_buf_init(k->out ? k->out : "refused\nout of memory\n",
                           (unsigned)strlen(k->out ? k->out : "refused\nout of memory\n"));
  k->w.data = k;
  if (uv_write(&k->w, (uv_stream_t *)&k->pipe, &b, 1, on_written) < 0)
    client_close(k);
}

static void run(client *k) {
  if (strncmp(k->line, "reload ", 7) != 0 || !k->line[7]) {
    answer(k, "refused\nunknown request (this socket takes \"reload FILE\")\n");
    return;
  }
  okegw_diag report = {0};
  int rc = k->ctl->reload(k->ctl->ud, k->line + 7, &report);
  size_t n = 16;
  for (size_t i = 0; i < report.n; i++)
    n += strlen(report.msgs[i]) + 1;
  char *text = malloc(n);
  if (text) {
    size_t used = (size_t)snprintf(text, n, "%s\n", rc == 0 ? "ok" : "refused");
    for (size_t i = 0; i < report.n; i++)
      used += (size_t)snprintf(text + used, n - used, "%s\n", report.msgs[i]);
  }
  for (size_t i = 0; i < report.n; i++)
    okegw_log(rc < 0 ? OKEGW_LOG_ERROR : OKEGW_LOG_INFO, NULL, "okegw reload: %s", report.msgs[i]);
  if (rc < 0)
    okegw_log(OKEGW_LOG_ERROR, NULL, "reload refused: the running configuration stays");
  okegw_diag_free(&report);
  answer(k, text ? text : "refused\nout of memory\n");
  free(text);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  client *k = h->data;
  buf->base = k->line + k->len;
  buf->len = sizeof k->line - 1 - k->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  client *k = s->data;
  if (k->answered)
    return;
  if (n < 0) {
    client_close(k);
    return;
  }
  k->len += (size_t)n;
  k->line[k->len] = '\0';
  char *nl = strchr(k->line, '\n');
  if (nl) {
    *nl = '\0';
    run(k);
  } else if (k->len >= sizeof k->line - 1) {
    answer(k, "refused\nrequest line too long\n");
  }
}

static void on_connection(uv_stream_t *server, int status) {
  okegw_control *ctl = server->data;
  if (status < 0)
    return;
  client *k = calloc(1, sizeof *k);
  if (!k)
    return;
  k->ctl = ctl;
  uv_pipe_init(server->loop, &k->pipe, 0);
  k->pipe.data = k;
  k->next = ctl->clients;
  if (ctl->clients)
    ctl->clients->prev = k;
  ctl->clients = k;
  ctl->nclients++;
  /* one reload at a time is all a person does: a pile of idle clients is not */
  if (uv_accept(server, (uv_stream_t *)&k->pipe) < 0 || ctl->nclients > CLIENTS_MAX ||
      uv_read_start((uv_stream_t *)&k->pipe, on_alloc, on_read) < 0)
    client_close(k);
}

int okegw_control_start(uv_loop_t *loop, const char *path, okegw_control_reload_fn reload, void *ud,
                        okegw_control **out, char *why, size_t whysz) {
  *out = NULL;
  char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
  int dirfd;
  if (sock_name(path, name, sizeof name, &dirfd) < 0) {
    snprintf(why, whysz,
             "control_socket '%s': its folder cannot be opened, or its name is too long", path);
    return -1;
  }
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(why, whysz, "control_socket '%s' exists and is not a socket", path);
      if (dirfd >= 0)
        close(dirfd);
      return -1;
    }
    /* another gateway answering there keeps it; one that did not stop
     * cleanly left it behind */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
      close(fd);
    if (live) {
      snprintf(why, whysz, "another gateway answers on control_socket '%s' (the same store?)",
               path);
      if (dirfd >= 0)
        close(dirfd);
      return -1;
    }
    unlink(path);
  }
  okegw_control *c = calloc(1, sizeof *c);
  if (!c || !(c->path = okegw_strdup(path))) {
    free(c);
    snprintf(why, whysz, "out of memory");
    return -1;
  }
  c->reload = reload;
  c->ud = ud;
  uv_pipe_init(loop, &c->pipe, 0);
  c->pipe.data = c;
  /* only the gateway's user may ask it to reload */
  mode_t old = umask(0077);
  int rc = uv_pipe_bind(&c->pipe, name);
  umask(old);
  if (dirfd >= 0)
    close(dirfd);
  int bound = rc == 0;
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&c->pipe, 8, on_connection);
  if (rc < 0) {
    snprintf(why, whysz, "cannot listen on %s: %s", path, uv_strerror(rc));
    if (!bound)
      c->path[0] = '\0'; /* not ours to remove */
    okegw_control_stop(c);
    return -1;
  }
  *out = c;
  return 0;
}

static void control_closed(uv_handle_t *h) {
  okegw_control *c = h->data;
  free(c->path);
  free(c);
}

void okegw_control_stop(okegw_control *c) {
  if (!c)
    return;
  while (c->clients)
    client_close(c->clients);
  if (c->path[0])
    unlink(c->path);
  uv_close((uv_handle_t *)&c->pipe, control_closed);
}

/* ---- okegw reload ------------------------------------------------------- */

int okegw_control_reload_command(int argc, char **argv) {
  const char *file = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
      file = argv[++i];
    } else {
      fprintf(stderr, "okegw reload: unknown argument '%s'\nusage: okegw reload -c FILE\n",
              argv[i]);
      return 2;
    }
  }
  if (!file) {
    fprintf(stderr, "usage: okegw reload -c FILE\n");
    return 2;
  }
  okegw_log_set_level(OKEGW_LOG_ERROR);
  okegw_conf conf;
  okegw_diag diag = {0};
  if (okegw_conf_load(file, &conf, &diag) < 0) {
    /* the gateway would refuse it the same way: nothing to ask */
    for (size_t i = 0; i < diag.n; i++)
      fprintf(stderr, "%s\n", diag.msgs[i]);
    fprintf(stderr, "okegw reload: %s has errors; the running gateway keeps its configuration\n",
            file);
    okegw_diag_free(&diag);
    return 1;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  char *sock = okegw_strdup(conf.control_socket ? conf.control_socket : "");
  okegw_conf_free(&conf);
  int dirfd = -1;
  int fd = sock && sock_name(sock, sa.sun_path, sizeof sa.sun_path, &dirfd) == 0
               ? socket(AF_UNIX, SOCK_STREAM, 0)
               : -1;
  int connected = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (dirfd >= 0)
    close(dirfd);
  if (!connected) {
    fprintf(stderr,
            "okegw reload: no running gateway answers on %s (%s): is okegw running with %s?\n",
            sock ? sock : "?", strerror(errno), file);
    if (fd >= 0)
      close(fd);
    free(sock);
    return 2;
  }
  /* starting new connectors may take a while: their plugins start */
  struct timeval tv = {.tv_sec = 120};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* the gateway takes only the file it runs with: it compares the two */
  char *full = realpath(file, NULL);
  char *req = okegw_asprintf("reload %s\n", full ? full : file);
  free(full);
  size_t reqlen = req ? strlen(req) : 0;
  if (!req || write(fd, req, reqlen) != (ssize_t)reqlen) {
    free(req);
    fprintf(stderr, "okegw reload: cannot write to %s: %s\n", sock, strerror(errno));
    close(fd);
    free(sock);
    return 2;
  }
  free(req);
  char buf[4096];
  size_t len = 0;
  char *all = NULL;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    char *grown = realloc(all, len + (size_t)n + 1);
    if (!grown)
      break;
    all = grown;
    memcpy(all + len, buf, (size_t)n);
    len += (size_t)n;
    all[len] = '\0';
  }
  close(fd);
  if (!all || !len) {
    fprintf(stderr, "okegw reload: the gateway on %s did not answer%s%s\n", sock, n < 0 ? ": " : "",
            n < 0 ? strerror(errno) : "");
    free(all);
    free(sock);
    return 2;
  }
  int ok = strncmp(all, "ok\n", 3) == 0;
  const char *rest = strchr(all, '\n');
  rest = rest ? rest + 1 : "";
  fputs(rest, ok ? stdout : stderr);
  if (ok)
    printf("okegw reload: the running gateway took %s\n", file);
  else
    fprintf(stderr, "okegw reload: the running gateway refused %s; it keeps its configuration\n",
            file);
  free(all);
  free(sock);
  return ok ? 0 : 1;
}
