#include "oke/interaction.h"

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
    [OKE_I_GET_DOCUMENT] = "documents.get",
    [OKE_I_FLOW4_PATCH_OFFERING] = "flow4.patch_offering",
    [OKE_I_FLOW1_LIST_OFFERINGS] = "flow1.list_offerings",
    [OKE_I_FLOW1_GET_OFFERING] = "flow1.get_offering",
    [OKE_I_FLOW1_LIST_ASSOCIATIONS] = "flow1.list_associations",
    [OKE_I_FLOW1_GET_ASSOCIATION] = "flow1.get_association",
    [OKE_I_FLOW1_GET_ORGANIZATION] = "flow1.get_organization",
    [OKE_I_FLOW1_GET_PERSON] = "flow1.get_person",
    [OKE_I_FLOW1_LIST_GROUPS] = "flow1.list_groups",
    [OKE_I_FLOW1_GET_GROUP] = "flow1.get_group",
    [OKE_I_FLOW1_LIST_GROUP_MEMBERS] = "flow1.list_group_members",
    [OKE_I_FLOW1_PUT_OFFERING] = "flow1.put_offering",
    [OKE_I_FLOW1_PATCH_OFFERING] = "flow1.patch_offering",
    [OKE_I_FLOW1_PUT_ASSOCIATION] = "flow1.put_association",
    [OKE_I_FLOW1_PATCH_ASSOCIATION] = "flow1.patch_association",
    [OKE_I_FLOW1_PUT_PERSON] = "flow1.put_person",
    [OKE_I_FLOW1_PUT_GROUP] = "flow1.put_group",
    [OKE_I_FLOW1_PUT_GROUP_MEMBER] = "flow1.put_group_member",
    [OKE_I_FLOW5_PATCH_ASSOCIATION] = "flow5.patch_association",
    [OKE_I_FLOW5_PUT_ASSOCIATION] = "flow5.put_association",
    [OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS] = "flow6.list_person_associations",
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
