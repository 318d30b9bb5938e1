/* A plugin whose descriptor is smaller than ABI 1 needs (it claims the right
 * major but an older, shorter struct): the loader must refuse it. */
#include <oke/plugin.h>

typedef struct short_descriptor {
  uint32_t abi_major, abi_minor;
  size_t struct_size;
  const char *name;
} short_descriptor;

static const short_descriptor desc = {OKE_ABI_MAJOR, 0, sizeof(short_descriptor), "short"};

OKE_EXPORT const oke_plugin *OKE_PLUGIN_ENTRY(void) {
  return (const oke_plugin *)(const void *)&desc;
}
