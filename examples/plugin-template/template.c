/*
 * template: a minimal okegw connector plugin for a test supplier (TA).
 *
 * Copy this folder, rename the plugin (the .name below and the target in
 * CMakeLists.txt) and change what deliver() does. As it stands it forwards
 * every OKE exchange to {base_url}{path}?{query} at the supplier, with the
 * connector's credentials and, when set, an X-Tenant header, and relays the
 * supplier's answer unchanged: the shape of a plugin for a supplier that
 * speaks OKE with one small difference.
 *
 * The rules of the SDK (all in <oke/plugin.h>):
 *   - Export one symbol, OKE_PLUGIN_ENTRY, returning a static descriptor.
 *   - Every callback runs on okegw's event-loop thread and must never block:
 *     no sleeping, no blocking sockets, no disk I/O per request. Talk to the
 *     supplier with host->http_request; its callback runs later.
 *   - deliver() that returns OKE_OK must answer the exchange exactly once,
 *     now or later (host->respond or host->respond_problem). When it returns
 *     an error, okegw answers for the plugin and the plugin must not.
 *   - Strings the host passes in live only during the callback unless the
 *     header says otherwise (config values live as long as the connector).
 *   - Link nothing of okegw: everything the host offers is in the oke_host
 *     table handed to init().
 */
#include <oke/forward.h>
#include <oke/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One per [connector NAME] section that uses this plugin. */
typedef struct tmpl {
  oke_conn *conn;
  const oke_host *host;
  const char *base_url; /* the connector's base_url (host-owned) */
  char *tenant_header;  /* "X-Tenant: ..." or NULL when tenant is not set */
} tmpl;

/* One exchange on its way to the supplier and back. */
typedef struct call {
  tmpl *t;
  oke_exchange *x;
} call;

/* The plugin's own keys in its connector section, on top of okegw's (plugin,
 * role, base_url, auth, token, timeout_ms, ...). okegw refuses a key that is
 * neither, so a typo shows at `okegw -t`. */
static const oke_config_key tmpl_keys[] = {
    {"tenant", "the supplier's tenant id, sent as X-Tenant on every request (optional)"},
    {NULL, NULL}};

static int tmpl_init(oke_conn *c, const oke_host *host, void **state) {
  /* refuses a host of another ABI major and a missing base_url (logged) */
  const char *base = oke_forward_base_url(host, c, "template");
  if (!base)
    return OKE_EINVAL;
  tmpl *t = calloc(1, sizeof *t);
  if (!t)
    return OKE_ENOMEM;
  t->conn = c;
  t->host = host;
  t->base_url = base;
  const char *tenant = host->config(c, "tenant");
  if (tenant && *tenant) {
    size_t len = strlen("X-Tenant: ") + strlen(tenant) + 1;
    t->tenant_header = malloc(len);
    if (!t->tenant_header) {
      free(t);
      return OKE_ENOMEM;
    }
    snprintf(t->tenant_header, len, "X-Tenant: %s", tenant);
  }
  *state = t;
  return OKE_OK;
}

/* The supplier's answer (or a transport failure: res->status == 0). A
 * supplier that names things differently would translate res->body here
 * before answering; the Lua mappings of the connector (scripts/NAME/) run on
 * top of whatever the plugin answers. */
static void on_answer(void *ud, const oke_http_response *res) {
  call *k = ud;
  oke_forward_answer(k->t->host, k->t->conn, k->x, k->t->base_url, res);
  free(k);
}

static int tmpl_deliver(void *state, oke_exchange *x, const oke_request *req) {
  tmpl *t = state;
  /* req->interaction says which OKE interaction this is: refuse the ones the
   * supplier does not offer with OKE_EUNSUP, e.g.
   *   if (req->interaction == OKE_I_GET_DOCUMENT) return OKE_EUNSUP; */
  char url[2048];
  int has_query = req->query && *req->query;
  int n = snprintf(url, sizeof url, "%s%s%s%s", t->base_url, req->path, has_query ? "?" : "",
                   has_query ? req->query : "");
  if (n < 0 || (size_t)n >= sizeof url)
    return OKE_EINVAL;

  /* Accept, Content-Type, X-Request-Id and the credentials; room for ours */
  char hdr_buf[1024];
  const char *hdrs[16];
  int nh = oke_forward_headers(t->host, t->conn, req, hdr_buf, sizeof hdr_buf, hdrs,
                               sizeof hdrs / sizeof hdrs[0] - 1);
  if (nh < 0)
    return OKE_EINVAL;
  if (t->tenant_header) {
    hdrs[nh++] = t->tenant_header;
    hdrs[nh] = NULL;
  }

  call *k = calloc(1, sizeof *k);
  if (!k)
    return OKE_ENOMEM;
  k->t = t;
  k->x = x;
  /* the host copies the request before http_request returns: url and
   * headers may live on this stack */
  oke_http_request hr = {.method = req->method,
                         .url = url,
                         .headers = hdrs,
                         .body = req->body,
                         .body_len = req->body_len};
  int rc = t->host->http_request(t->conn, &hr, on_answer, k);
  if (rc != OKE_OK) {
    free(k); /* on_answer will not run */
    return rc;
  }
  return OKE_OK;
}

/* Optional: 0 when healthy; shows in /readyz and the metrics. */
static int tmpl_health(void *state) {
  (void)state;
  return 0;
}

/* Runs after the last exchange of this connector has ended. */
static void tmpl_fini(void *state) {
  tmpl *t = state;
  if (!t)
    return;
  free(t->tenant_header);
  free(t);
}

static const oke_plugin tmpl_plugin = {
    .abi_major = OKE_ABI_MAJOR, /* the ABI these headers define */
    .abi_minor = OKE_ABI_MINOR,
    .struct_size = sizeof(oke_plugin),
    .name = "template",
    .version = "0.1.0",
    .description = "Template: forwards OKE interactions to a test supplier",
    .config_keys = tmpl_keys,
    .init = tmpl_init,
    .deliver = tmpl_deliver,
    .health = tmpl_health,
    .fini = tmpl_fini,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &tmpl_plugin; }
