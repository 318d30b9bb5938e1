/* Names of the OKE interactions (enum oke_interaction): used in logs, in the
 * audit trail, and as the file names of Lua mappings. Generated from the
 * SDK's list, <oke/interactions.h>. */
#ifndef OKEGW_INTERACTION_H
#define OKEGW_INTERACTION_H

/* "flow2.put_offering" for OKE_I_FLOW2_PUT_OFFERING; "unknown" otherwise. */
const char *okegw_interaction_name(int interaction);
/* Its OKE request: "PUT" and "/offerings/{id}"; "" for an unknown number. */
const char *okegw_interaction_method(int interaction);
const char *okegw_interaction_path(int interaction);
/* The interaction with that name, or 0 (OKE_I_UNKNOWN). */
int okegw_interaction_by_name(const char *name);
/* One past the highest interaction number. */
int okegw_interaction_count(void);

struct cJSON;
/* The OKE service metadata (GET /, R31): supportedVersions and
 * supportedConsumers as this profile speaks them; the caller adds contact
 * and documentation. NULL when out of memory. */
struct cJSON *okegw_service_metadata(void);

#endif
