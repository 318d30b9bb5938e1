/* A plugin that claims ABI major 2: the loader must refuse it by name and
 * version, and the other connectors must keep running. */
#include <oke/plugin.h>

static int init(oke_conn *c, const oke_host *h, void **state) {
  (void)c;
  (void)h;
  *state = 0;
  return OKE_OK;
}

static int deliver(void *state, oke_exchange *x, const oke_request *req) {
  (void)state;
  (void)x;
  (void)req;
  return OKE_EUNSUP;
}

static const oke_plugin plugin = {
    .abi_major = 2,
    .abi_minor = 3,
    .struct_size = sizeof(oke_plugin),
    .name = "future",
    .version = "2.3.0",
    .init = init,
    .deliver = deliver,
};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) { return &plugin; }
