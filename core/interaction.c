#include "interaction.h"

#include <oke/plugin.h>
#include <string.h>

static const char *const names[] = {
    [OKE_I_UNKNOWN] = "unknown",
    [OKE_I_FLOW0_LIST_COMPONENTS] = "flow0.list_components",
    [OKE_I_FLOW0_GET_COMPONENT] = "flow0.get_component",
    [OKE_I_FLOW2_PUT_OFFERING] = "flow2.put_offering",
    [OKE_I_FLOW2_PATCH_OFFERING] = "flow2.patch_offering",
    [OKE_I_FLOW2_GET_OFFERING] = "flow2.get_offering",
    [OKE_I_FLOW2_LIST_ASSOCIATIONS] = "flow2.list_associations",
    [OKE_I_FLOW2_PUT_ASSOCIATION] = "flow2.put_association",
    [OKE_I_FLOW2_PATCH_ASSOCIATION] = "flow2.patch_association",
    [OKE_I_FLOW2_GET_ASSOCIATION] = "flow2.get_association",
    [OKE_I_FLOW2_GET_ASSOCIATION_URL] = "flow2.get_association_url",
    [OKE_I_FLOW3_PATCH_ASSOCIATION] = "flow3.patch_association",
};

#define COUNT ((int)(sizeof names / sizeof names[0]))

const char *okegw_interaction_name(int i) {
  return i > 0 && i < COUNT && names[i] ? names[i] : "unknown";
}

int okegw_interaction_by_name(const char *name) {
  for (int i = 1; i < COUNT; i++)
    if (names[i] && strcmp(names[i], name) == 0)
      return i;
  return 0;
}

int okegw_interaction_count(void) { return COUNT; }
