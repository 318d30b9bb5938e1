/*
 * The OKE interactions a connector may be asked to carry, as one list
 * (part of the SDK; included by <oke/plugin.h>). Each row is
 *
 *   X(SYMBOL, number, "id", "METHOD", "/path")
 *
 * SYMBOL gives the enum value OKE_I_<SYMBOL>; the number is part of the ABI
 * (rows are only appended, numbers never change); the id names the
 * interaction in logs, in the audit trail and as the file name of a Lua
 * mapping ("flow2.put_offering.lua"); METHOD and /path are the OKE request
 * below the API base ({id} is the path id). The gateway's name table, the
 * rest plugin's route.<id> keys and `okegw map` are generated from it.
 *
 * A TA-side read of flows 3/4 (GET offering, its associations, one
 * association) is the flow-2 interaction.
 */
#ifndef OKE_INTERACTIONS_H
#define OKE_INTERACTIONS_H

/* clang-format off */
#define OKE_INTERACTIONS(X)                                                                        \
  /* ABI 1.0: flows 0 and 2, at a TA */                                                            \
  X(FLOW0_LIST_COMPONENTS,      1, "flow0.list_components",     "GET",   "/components")            \
  X(FLOW0_GET_COMPONENT,        2, "flow0.get_component",       "GET",   "/components/{id}")       \
  X(FLOW2_PUT_OFFERING,         3, "flow2.put_offering",        "PUT",   "/offerings/{id}")        \
  X(FLOW2_PATCH_OFFERING,       4, "flow2.patch_offering",      "PATCH", "/offerings/{id}")        \
  X(FLOW2_GET_OFFERING,         5, "flow2.get_offering",        "GET",   "/offerings/{id}")        \
  X(FLOW2_LIST_ASSOCIATIONS,    6, "flow2.list_associations",   "GET",   "/offerings/{id}/associations") \
  X(FLOW2_PUT_ASSOCIATION,      7, "flow2.put_association",     "PUT",   "/associations/{id}")     \
  X(FLOW2_PATCH_ASSOCIATION,    8, "flow2.patch_association",   "PATCH", "/associations/{id}")     \
  X(FLOW2_GET_ASSOCIATION,      9, "flow2.get_association",     "GET",   "/associations/{id}")     \
  X(FLOW2_GET_ASSOCIATION_URL, 10, "flow2.get_association_url", "GET",   "/associations/{id}/url") \
  /* ABI 1.1: the other flows */                                                                   \
  X(FLOW3_PATCH_ASSOCIATION,   11, "flow3.patch_association",   "PATCH", "/associations/{id}")  /* at a TPL: result */ \
  X(GET_DOCUMENT,              12, "documents.get",             "GET",   "/documents/{id}")     /* flows 3, 4, 5 */ \
  X(FLOW4_PATCH_OFFERING,      13, "flow4.patch_offering",      "PATCH", "/offerings/{id}")     /* at a TPL: session report */ \
  X(FLOW1_LIST_OFFERINGS,      14, "flow1.list_offerings",      "GET",   "/offerings")          /* at a DR */ \
  X(FLOW1_GET_OFFERING,        15, "flow1.get_offering",        "GET",   "/offerings/{id}")     /* at a DR */ \
  X(FLOW1_LIST_ASSOCIATIONS,   16, "flow1.list_associations",   "GET",   "/offerings/{id}/associations") /* at a DR */ \
  X(FLOW1_GET_ASSOCIATION,     17, "flow1.get_association",     "GET",   "/associations/{id}")  /* at a DR */ \
  X(FLOW1_GET_ORGANIZATION,    18, "flow1.get_organization",    "GET",   "/organizations/{id}") /* at a DR */ \
  X(FLOW1_GET_PERSON,          19, "flow1.get_person",          "GET",   "/persons/{id}")       /* at a DR */ \
  X(FLOW1_LIST_GROUPS,         20, "flow1.list_groups",         "GET",   "/groups")             /* at a DR */ \
  X(FLOW1_GET_GROUP,           21, "flow1.get_group",           "GET",   "/groups/{id}")        /* at a DR */ \
  X(FLOW1_LIST_GROUP_MEMBERS,  22, "flow1.list_group_members",  "GET",   "/groups/{id}/members") /* at a DR */ \
  X(FLOW1_PUT_OFFERING,        23, "flow1.put_offering",        "PUT",   "/offerings/{id}")     /* at a TPL */ \
  X(FLOW1_PATCH_OFFERING,      24, "flow1.patch_offering",      "PATCH", "/offerings/{id}")     /* at a TPL */ \
  X(FLOW1_PUT_ASSOCIATION,     25, "flow1.put_association",     "PUT",   "/associations/{id}")  /* at a TPL */ \
  X(FLOW1_PATCH_ASSOCIATION,   26, "flow1.patch_association",   "PATCH", "/associations/{id}")  /* at a TPL */ \
  X(FLOW1_PUT_PERSON,          27, "flow1.put_person",          "PUT",   "/persons/{id}")       /* at a TPL */ \
  X(FLOW1_PUT_GROUP,           28, "flow1.put_group",           "PUT",   "/groups/{id}")        /* at a TPL */ \
  X(FLOW1_PUT_GROUP_MEMBER,    29, "flow1.put_group_member",    "PUT",   "/groups/{id}/members/{personId}") /* at a TPL */ \
  X(FLOW5_PATCH_ASSOCIATION,   30, "flow5.patch_association",   "PATCH", "/associations/{id}")  /* at a DR: result */ \
  X(FLOW5_PUT_ASSOCIATION,     31, "flow5.put_association",     "PUT",   "/associations/{id}")  /* at a DR: extra attempt */ \
  X(FLOW6_LIST_PERSON_ASSOCIATIONS, 32, "flow6.list_person_associations", "GET", "/persons/{id}/associations") /* at a DR */
/* clang-format on */

/* One past the highest number in the list (the last row has it). */
#define OKE_INTERACTION_END 33

#endif /* OKE_INTERACTIONS_H */
