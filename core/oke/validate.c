/*
 * The OKE profile validator (see validate.h).
 *
 * How to read this file. The profile is written down as data, in three layers,
 * and one generic walker applies it:
 *
 *   1. Enumerations (§3): NULL-terminated string tables, case-sensitive.
 *
 *   2. Object types (§2): one field table per object type. A field is
 *        FIELD(name, kind, cardinality, optional designators)
 *      kind         how the value is checked: K_UUID, K_DATETIME, K_ENUM ...
 *      cardinality  the PDF's: '1' mandatory, '?' optional, '*' optional
 *                   list, '+' mandatory list (>= 1). Fields the PDF marks
 *                   `0` are simply not listed, so they are never looked at.
 *      .flows       the flows that read the field (FL1 | FL5 ...). In any
 *                   other flow it is ignored, whatever it holds (R11).
 *                   0 = every flow.
 *      .when        W_STUDENT: mandatory only for a student (role "student"
 *                   on an association, affiliation "student" on a person).
 *      .type        for objects, references (uuid | object) and consumers.
 *      .values      for enumerations; .min/.max for integers; .max for
 *                   string length.
 *      .rule        the R-rule cited for any violation on this field.
 *                   Without it: formats and enumerations cite R10, a missing
 *                   field the object type's rule (or R12 in a PUT, R16 in a
 *                   PATCH, R8 in an answer).
 *      K_CONSUMERS fields hold a consumers[] array: only the entry whose
 *      consumerKey is exactly "nl-test-admin" is validated (against .type);
 *      entries of other consumers are ignored (R7). Types that pick their
 *      schema by a discriminator (R8) list variants instead of fields.
 *
 *   3. Interactions: rules[interaction][direction] names the body's shape
 *      (object, page of objects, URI string), its object type, the flows its
 *      fields come from, whether it is a PUT (whole object, R12) or a PATCH
 *      (merge patch: mandatory fields may be left out, R15/R16), an optional
 *      `only` list (cancel and result messages: "other fields are ignored"),
 *      and extra checks: a field must be present or absent, must equal the
 *      path id, must be an id rather than an embedded object, and so on.
 *
 * A violation is reported once per (pointer, message); at most
 * OKEGW_VIOLATIONS_MAX are kept.
 */
#include "oke/validate.h"
#include "base/util.h"

#include <oke/plugin.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONSUMER_KEY "nl-test-admin"

/* ---- the vocabulary of the tables ------------------------------------- */

/* The flows a field belongs to (R11). */
enum {
  FL0 = 1 << 0,
  FL1 = 1 << 1,
  FL2 = 1 << 2,
  FL3 = 1 << 3,
  FL4 = 1 << 4,
  FL5 = 1 << 5,
  FL6 = 1 << 6
};

enum kind {
  K_STRING,        /* any string; .max = length limit */
  K_UUID,          /* RFC 4122 UUID */
  K_DATE,          /* YYYY-MM-DD */
  K_DATETIME,      /* RFC 3339 with an offset (R10) */
  K_DURATION,      /* ISO 8601 duration */
  K_TEST_DURATION, /* ISO 8601 duration without years or months (P60M is 60 months) */
  K_EMAIL,         /* an e-mail address */
  K_URI,           /* an absolute URI, at most 2048 characters */
  K_LANGTAG,       /* RFC 3066 language tag as in the YAML pattern (nl-NL) */
  K_ENUM,          /* one of .values */
  K_CODETYPE,      /* one of .values or an x- extension (extensible enumeration) */
  K_BOOL,          /* true or false */
  K_TRUE,          /* always true (fixed value) */
  K_FALSE,         /* always false (fixed value) */
  K_INT,           /* an integer in [.min, .max] (.max 0 = int32 max) */
  K_SCORE,         /* a result score: fits the resultValueType (R20) */
  K_PASSFROM,      /* a score on the scale of the sibling resultValueType */
  K_OBJECT,        /* an embedded object of .type */
  K_REF,           /* an id (UUID) or the embedded object of .type */
  K_CONSUMERS,     /* consumers[]: the nl-test-admin entry is a .type (R7) */
  K_ITEMS,         /* the items of a page: each is the interaction's type (R6) */
  K_ANY            /* present in the profile, its content not checked */
};

enum { W_ALWAYS = 0, W_STUDENT = 1 };

typedef struct field {
  const char *name;
  unsigned char kind;
  char card; /* '1' '?' '*' '+' */
  unsigned char when;
  unsigned char flows; /* FLn bits; 0 = all flows */
  unsigned char type;  /* OT_* for K_OBJECT, K_REF, K_CONSUMERS */
  long min, max;
  const char *const *values;
  const char *rule;
} field;

#define FIELD(name_, kind_, card_, ...)                                                            \
  { .name = (name_), .kind = (kind_), .card = (card_), __VA_ARGS__ }

/* How an object type tells whether it describes a student (for W_STUDENT). */
enum { STUDENT_INHERIT = 0, STUDENT_ROLE, STUDENT_AFFILIATION };

typedef struct variant {
  const char *value;
  unsigned char type;
} variant;

typedef struct otype {
  const char *name;
  const field *fields;
  size_t nfields;
  const char *rule;          /* cited when a mandatory field is missing */
  const char *discriminator; /* R8: the field that picks one of the variants */
  const variant *variants;
  unsigned char student;
} otype;

/* ---- 1. enumerations (§3) --------------------------------------------- */

#define ENUM(name_, ...) static const char *const name_[] = {__VA_ARGS__, NULL}

ENUM(component_types, "test"); /* R26: the profile knows only tests */
ENUM(modes_of_delivery, "distance-learning", "online", "situated");
ENUM(teaching_languages, "nld");
ENUM(result_value_types, "pass-or-fail", "insufficient-satisfactory-good", "US letter", "UK letter",
     "DE grade", "0-100", "0-10", "0.0-10.0", "referenceLevelRKTR", "referenceLevelERK");
ENUM(safety_types, "securedComputer", "fixedLocation", "surveillance");
ENUM(test_statuses, "active", "inactive");
ENUM(offering_states, "active", "canceled");
ENUM(start_options, "individualStart", "triggeredStart");
ENUM(duration_froms, "startDateTime", "individualStartDateTime", "triggeredStartDateTime");
ENUM(duration_untils, "testDuration", "endDateTime");
ENUM(offering_type_component, "component");
ENUM(offering_type_program, "program");
ENUM(offering_type_course, "course");
ENUM(roles, "student", "coordinator", "invigilator", "assessor", "lecturer", "teaching assistant",
     "guest");
ENUM(role_student, "student"); /* R26: programme and course enrolments */
/* pending, denied and queued are OOAPI values the profile does not use. */
ENUM(association_states, "associated", "canceled", "finished");
ENUM(association_type_component, "componentOfferingAssociation");
ENUM(association_type_program, "programOfferingAssociation");
ENUM(association_type_course, "courseOfferingAssociation");
ENUM(result_states, "in progress", "postponed", "queued", "completed");
ENUM(pass_states, "unknown", "passed", "failed");
ENUM(attendances, "notKnown", "notPresent", "notStarted", "notFinished", "present");
ENUM(result_document_types, "assessmentForm", "assessmentFormWithAnswers", "assessmentModel",
     "other");
ENUM(session_document_types, "sessionReport", "attendanceReport", "assessmentModel", "other");
ENUM(membership_states, "active", "canceled");
ENUM(modes_of_study, "full-time", "part-time", "dual training", "self-paced", "extraneous");
ENUM(levels_of_qualification, "1", "2", "3", "4");
ENUM(program_types, "program");
ENUM(organization_types, "root", "institute", "department", "faculty", "branch", "academy",
     "school");
ENUM(group_types, "learning group", "class", "team");
ENUM(affiliations, "student", "employee", "guest");
ENUM(supported_versions, "v4", "v5");
/* Extensible: anything with an x- prefix is accepted too. */
ENUM(code_types, "brin", "crohoCreboCode", "programCode", "courseCode", "componentCode",
     "offeringCode", "organizationId", "buildingId", "bagId", "roomCode", "systemId", "productId",
     "nationalIdentityNumber", "studentNumber", "studielinkNumber", "esi", "userName", "accountId",
     "emailAdress", "groupCode", "isbn", "issn", "orcId", "uuid", "schacHome", "identifier",
     "eckid", "nationalEducationCode");

/* ---- 2. object types (§2) --------------------------------------------- */

enum {
  OT_NONE = 0,
  OT_LTS,
  OT_IDENTIFIER,
  OT_RESULT_DOCUMENT,
  OT_SESSION_DOCUMENT,
  OT_TEST_ENTRY,
  OT_ASSIGNED_NEED,
  OT_COMPONENT,
  OT_COMPONENT_CONSUMER,
  OT_COMPONENT_OFFERING,
  OT_OFFERING_CONSUMER,
  OT_PROGRAM_OFFERING,
  OT_PROGRAM_OFFERING_CONSUMER,
  OT_COURSE_OFFERING,
  OT_ANY_OFFERING,
  OT_COMPONENT_ASSOCIATION,
  OT_ASSOCIATION_CONSUMER,
  OT_RESULT,
  OT_RESULT_CONSUMER,
  OT_PROGRAM_ASSOCIATION,
  OT_PROGRAM_ASSOCIATION_CONSUMER,
  OT_COURSE_ASSOCIATION,
  OT_ANY_ASSOCIATION,
  OT_PERSON,
  OT_PERSON_CONSUMER,
  OT_PROGRAM,
  OT_ORGANIZATION,
  OT_GROUP,
  OT_MEMBERSHIP,
  OT_PAGE,
  OT_SERVICE,
  OT_SUPPORTED_CONSUMER,
  OT_PROBLEM,
  OT_COUNT
};

/* Building blocks (§2.0). */
static const field lts_fields[] = {
    FIELD("language", K_LANGTAG, '1'), /* only nl-NL is processed; others are ignored */
    FIELD("value", K_STRING, '1'),
};
static const field identifier_fields[] = {
    FIELD("codeType", K_CODETYPE, '1', .values = code_types),
    FIELD("code", K_STRING, '1'),
};
/* Documents are never inlined: three mandatory fields (R25). */
static const field result_document_fields[] = {
    FIELD("documentId", K_UUID, '1', .rule = "R25"),
    FIELD("documentType", K_ENUM, '1', .values = result_document_types, .rule = "R25"),
    FIELD("documentName", K_STRING, '1', .rule = "R25"),
};
static const field session_document_fields[] = {
    FIELD("documentId", K_UUID, '1', .rule = "R25"),
    FIELD("documentType", K_ENUM, '1', .values = session_document_types, .rule = "R25"),
    FIELD("documentName", K_STRING, '1', .rule = "R25"),
};
static const field test_entry_fields[] = {
    FIELD("testProvider", K_STRING, '?'),
    FIELD("componentId", K_UUID, '1'),
};
static const field assigned_need_fields[] = {
    FIELD("code", K_STRING, '1'),
    FIELD("description", K_OBJECT, '+', .type = OT_LTS),
    FIELD("startDate", K_DATE, '?'),
    FIELD("endDate", K_DATE, '?'),
};

/* §2.1 Component (toets), flow 0. */
static const field component_fields[] = {
    FIELD("componentId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("componentType", K_ENUM, '1', .values = component_types, .rule = "R26"),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("abbreviation", K_STRING, '1', .max = 256),
    FIELD("modeOfDelivery", K_ENUM, '*', .values = modes_of_delivery),
    FIELD("duration", K_TEST_DURATION, '?'),
    FIELD("description", K_OBJECT, '*', .type = OT_LTS),
    FIELD("teachingLanguage", K_ENUM, '1', .values = teaching_languages),
    FIELD("assessment", K_OBJECT, '*', .type = OT_LTS),
    FIELD("otherCodes", K_OBJECT, '*', .type = OT_IDENTIFIER),
    FIELD("organization", K_REF, '?', .type = OT_ORGANIZATION),
    FIELD("consumers", K_CONSUMERS, '1', .type = OT_COMPONENT_CONSUMER),
};
static const field component_consumer_fields[] = {
    FIELD("additionalTestingTime", K_INT, '?'), /* >= 10000 means unlimited (R28) */
    /* HulpmiddelType: warn, never reject, values outside the three (§6 #10). */
    FIELD("availablePersonalNeeds", K_STRING, '*'),
    FIELD("safety", K_ENUM, '*', .values = safety_types),
    FIELD("exam", K_BOOL, '?'),
    FIELD("resultValueType", K_ENUM, '?', .values = result_value_types),
    FIELD("passFrom", K_PASSFROM, '?', .rule = "R20"),
    FIELD("retries", K_INT, '?'),
    FIELD("status", K_ENUM, '?', .values = test_statuses),
    FIELD("licensed", K_BOOL, '?'),
};

/* §2.2 ComponentOffering: planbare toets (flow 1) and zitting (flows 2, 4). */
static const field component_offering_fields[] = {
    FIELD("offeringId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("offeringType", K_ENUM, '1', .values = offering_type_component),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("description", K_OBJECT, '+', .type = OT_LTS),
    FIELD("teachingLanguage", K_ENUM, '1', .values = teaching_languages),
    FIELD("modeOfDelivery", K_ENUM, '*', .values = modes_of_delivery),
    FIELD("resultExpected", K_TRUE, '1', .rule = "R26"),
    FIELD("resultValueType", K_ENUM, '?', .values = result_value_types, .flows = FL1),
    FIELD("otherCodes", K_OBJECT, '*', .type = OT_IDENTIFIER),
    FIELD("consumers", K_CONSUMERS, '1', .type = OT_OFFERING_CONSUMER),
    FIELD("startDateTime", K_DATETIME, '1'),
    FIELD("endDateTime", K_DATETIME, '1'),
    FIELD("component", K_REF, '?', .type = OT_COMPONENT),
    FIELD("organization", K_REF, '?', .type = OT_ORGANIZATION),
};
static const field offering_consumer_fields[] = {
    FIELD("offeringState", K_ENUM, '1', .values = offering_states, .flows = FL1 | FL2),
    FIELD("duration", K_TEST_DURATION, '?', .flows = FL2),
    FIELD("lastPossibleStartDateTime", K_DATETIME, '?', .flows = FL2),
    FIELD("startOptions", K_ENUM, '?', .values = start_options, .flows = FL2),
    FIELD("durationFrom", K_ENUM, '?', .values = duration_froms, .flows = FL2),
    FIELD("durationUntil", K_ENUM, '?', .values = duration_untils, .flows = FL2),
    FIELD("safety", K_ENUM, '*', .values = safety_types, .flows = FL2),
    FIELD("locationCode", K_STRING, '?', .flows = FL2),
    FIELD("finalResultAllowed", K_BOOL, '?', .flows = FL1),
    FIELD("finalResultsAllowed", K_BOOL, '?', .flows = FL1), /* the PDF spelling (§6 #3) */
    FIELD("testsToBeUsed", K_OBJECT, '*', .type = OT_TEST_ENTRY, .flows = FL1),
    FIELD("irregularities", K_STRING, '?', .flows = FL4),
    FIELD("documents", K_OBJECT, '*', .type = OT_SESSION_DOCUMENT, .flows = FL4),
};

/* §2.12 ProgramOffering (opleiding) and §2.4 CourseOffering (opleidingsdeel). */
static const field program_offering_fields[] = {
    FIELD("offeringId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("offeringType", K_ENUM, '1', .values = offering_type_program),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("description", K_OBJECT, '+', .type = OT_LTS),
    FIELD("teachingLanguage", K_ENUM, '1', .values = teaching_languages),
    FIELD("resultExpected", K_FALSE, '1', .rule = "R26"),
    FIELD("consumers", K_CONSUMERS, '1', .type = OT_PROGRAM_OFFERING_CONSUMER),
    FIELD("startDate", K_DATE, '1'),
    FIELD("endDate", K_DATE, '1'),
    FIELD("program", K_REF, '?', .type = OT_PROGRAM), /* PDF: "1 (recommended)" */
    FIELD("organization", K_REF, '?', .type = OT_ORGANIZATION),
};
static const field program_offering_consumer_fields[] = {
    FIELD("cohort", K_STRING, '1'),
    FIELD("location", K_STRING, '1'),
};
static const field course_offering_fields[] = {
    FIELD("offeringId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("offeringType", K_ENUM, '1', .values = offering_type_course),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("description", K_OBJECT, '+', .type = OT_LTS),
    FIELD("teachingLanguage", K_ENUM, '1', .values = teaching_languages),
    FIELD("resultExpected", K_FALSE, '1', .rule = "R26"),
    FIELD("startDate", K_DATE, '1'),
    FIELD("endDate", K_DATE, '1'),
    FIELD("programOffering", K_REF, '?', .type = OT_PROGRAM_OFFERING),
    FIELD("organization", K_REF, '?', .type = OT_ORGANIZATION),
};
static const variant offering_variants[] = {
    {"component", OT_COMPONENT_OFFERING},
    {"program", OT_PROGRAM_OFFERING},
    {"course", OT_COURSE_OFFERING},
    {NULL, OT_NONE},
};

/* §2.3 ComponentOfferingAssociation: toetsinschrijving (flows 1, 5) and
 * deelname (flows 2, 3). */
static const field component_association_fields[] = {
    FIELD("associationId", K_UUID, '1'),
    FIELD("associationType", K_ENUM, '1', .values = association_type_component),
    FIELD("role", K_ENUM, '1', .values = roles),
    FIELD("state", K_ENUM, '1', .values = association_states),
    /* Students only: staff carry no consumers (R27). */
    FIELD("consumers", K_CONSUMERS, '1', .when = W_STUDENT, .type = OT_ASSOCIATION_CONSUMER),
    /* Ignored in flow-1 and flow-2 writes (R11). */
    FIELD("result", K_OBJECT, '?', .type = OT_RESULT, .flows = FL3 | FL5),
    FIELD("person", K_REF, '1', .type = OT_PERSON),
    FIELD("offering", K_REF, '1', .type = OT_COMPONENT_OFFERING),
};
static const field association_consumer_fields[] = {
    FIELD("additionalTimeInMin", K_INT, '?', .flows = FL2), /* >= 10000 = unlimited (R28) */
    FIELD("personalNeeds", K_STRING, '*', .flows = FL2),    /* warn-only values (§6 #10) */
    FIELD("attempt", K_INT, '?', .min = 1, .flows = FL1 | FL5),
    FIELD("attemptLeft", K_INT, '?', .flows = FL1), /* null = unlimited */
    FIELD("programOfferingAssociationId", K_UUID, '?', .flows = FL1),
    FIELD("courseOfferingAssociationId", K_UUID, '?', .flows = FL1),
    FIELD("orgAssociationId", K_UUID, '?', .flows = FL5),
};
/* Result (R20): complete in every message, weight always 100. */
static const field result_fields[] = {
    FIELD("state", K_ENUM, '1', .values = result_states),
    FIELD("pass", K_ENUM, '?', .values = pass_states),
    FIELD("comment", K_STRING, '?'),
    FIELD("score", K_SCORE, '?', .rule = "R20"),
    FIELD("resultDate", K_DATE, '1'),
    FIELD("consumers", K_CONSUMERS, '1', .type = OT_RESULT_CONSUMER),
    FIELD("weight", K_INT, '1', .min = 100, .max = 100, .rule = "R20"),
};
static const field result_consumer_fields[] = {
    FIELD("attendance", K_ENUM, '1', .values = attendances, .rule = "R20"),
    FIELD("executedOfferingName", K_STRING, '?'), /* mandatory in flow 5: a flow-5 check */
    FIELD("assessorId", K_STRING, '?'),
    FIELD("assessorCode", K_STRING, '?'),
    FIELD("irregularities", K_STRING, '?'),
    FIELD("final", K_BOOL, '?'), /* absent = false */
    FIELD("rawScore", K_INT, '?'),
    FIELD("maxRawScore", K_INT, '?'),
    FIELD("testDate", K_DATETIME, '?'), /* a date-time, not a date (§6 #23) */
    FIELD("documents", K_OBJECT, '*', .type = OT_RESULT_DOCUMENT),
};

/* §2.13 ProgramOfferingAssociation and §2.5 CourseOfferingAssociation. */
static const field program_association_fields[] = {
    FIELD("associationId", K_UUID, '1'),
    FIELD("associationType", K_ENUM, '1', .values = association_type_program),
    FIELD("role", K_ENUM, '1', .values = role_student, .rule = "R26"),
    FIELD("state", K_ENUM, '1', .values = association_states),
    FIELD("consumers", K_CONSUMERS, '1', .type = OT_PROGRAM_ASSOCIATION_CONSUMER),
    FIELD("person", K_REF, '1', .type = OT_PERSON),
    FIELD("offering", K_REF, '1', .type = OT_PROGRAM_OFFERING),
};
static const field program_association_consumer_fields[] = {
    FIELD("startDate", K_DATE, '?'),
    FIELD("expectedEndDate", K_DATE, '?'),
    FIELD("finalEndDate", K_DATE, '?'),
    FIELD("sequenceCode", K_STRING, '?'),
};
static const field course_association_fields[] = {
    FIELD("associationId", K_UUID, '1'),
    FIELD("associationType", K_ENUM, '1', .values = association_type_course),
    FIELD("role", K_ENUM, '1', .values = role_student, .rule = "R26"),
    FIELD("state", K_ENUM, '1', .values = association_states),
    FIELD("person", K_REF, '1', .type = OT_PERSON),
    FIELD("offering", K_REF, '1', .type = OT_COURSE_OFFERING),
};
static const variant association_variants[] = {
    {"componentOfferingAssociation", OT_COMPONENT_ASSOCIATION},
    {"programOfferingAssociation", OT_PROGRAM_ASSOCIATION},
    {"courseOfferingAssociation", OT_COURSE_ASSOCIATION},
    {NULL, OT_NONE},
};

/* §2.10 Person. */
static const field person_fields[] = {
    FIELD("personId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("givenName", K_STRING, '1', .max = 256),
    FIELD("surnamePrefix", K_STRING, '?'),
    FIELD("surname", K_STRING, '1', .max = 256),
    FIELD("displayName", K_STRING, '1', .max = 256),
    FIELD("activeEnrollment", K_TRUE, '1', .rule = "R27"),
    FIELD("affiliations", K_ENUM, '*', .values = affiliations),
    FIELD("mail", K_EMAIL, '1', .max = 256),
    FIELD("languageOfChoice", K_LANGTAG, '*'),
    FIELD("otherCodes", K_OBJECT, '*', .type = OT_IDENTIFIER),
    FIELD("consumers", K_CONSUMERS, '1', .when = W_STUDENT, .type = OT_PERSON_CONSUMER,
          .rule = "R27"),
};
static const field person_consumer_fields[] = {
    FIELD("preferredName", K_STRING, '1', .max = 256),
    FIELD("assignedNeeds", K_OBJECT, '*', .type = OT_ASSIGNED_NEED, .flows = FL1),
    FIELD("idCheckName", K_STRING, '1', .when = W_STUDENT, .rule = "R27"),
};

/* §2.11 Program, §2.9 Organization, §2.7 Group, §2.8 MembershipItem. */
static const field program_fields[] = {
    FIELD("programId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("programType", K_ENUM, '1', .values = program_types, .rule = "R26"),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("description", K_OBJECT, '+', .type = OT_LTS),
    FIELD("abbreviation", K_STRING, '1', .max = 256),
    FIELD("teachingLanguage", K_ENUM, '1', .values = teaching_languages),
    FIELD("modeOfStudy", K_ENUM, '?', .values = modes_of_study),
    FIELD("duration", K_DURATION, '?'), /* a programme may well last P4Y */
    FIELD("firstStartDate", K_DATE, '1'),
    FIELD("levelOfQualification", K_ENUM, '?', .values = levels_of_qualification),
    FIELD("otherCodes", K_OBJECT, '*', .type = OT_IDENTIFIER),
    FIELD("validFrom", K_DATE, '1'),
    FIELD("validTo", K_DATE, '1'),
};
static const field organization_fields[] = {
    FIELD("organizationId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("organizationType", K_ENUM, '1', .values = organization_types),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("shortName", K_STRING, '1', .max = 256),
    FIELD("description", K_OBJECT, '*', .type = OT_LTS),
    FIELD("addresses", K_ANY, '*'),
    FIELD("link", K_URI, '?'),
    FIELD("logo", K_URI, '?'),
    FIELD("otherCodes", K_OBJECT, '*', .type = OT_IDENTIFIER),
    FIELD("parent", K_REF, '?', .type = OT_ORGANIZATION),
    FIELD("children", K_REF, '*', .type = OT_ORGANIZATION),
};
static const field group_fields[] = {
    FIELD("groupId", K_UUID, '1'),
    FIELD("primaryCode", K_OBJECT, '1', .type = OT_IDENTIFIER),
    FIELD("groupType", K_ENUM, '1', .values = group_types),
    FIELD("name", K_OBJECT, '+', .type = OT_LTS),
    FIELD("description", K_OBJECT, '*', .type = OT_LTS),
    FIELD("startDate", K_DATE, '?'),
    FIELD("endDate", K_DATE, '?'),
    FIELD("personCount", K_INT, '?'),
    FIELD("otherCodes", K_OBJECT, '*', .type = OT_IDENTIFIER),
    FIELD("organization", K_REF, '?', .type = OT_ORGANIZATION),
};
static const field membership_fields[] = {
    FIELD("personId", K_UUID, '1'),
    FIELD("startDateTime", K_DATETIME, '1'),
    FIELD("endDateTime", K_DATETIME, '?'),
    FIELD("state", K_ENUM, '?', .values = membership_states),
    FIELD("role", K_ENUM, '?', .values = roles),
};

/* §2.14 envelopes: the page of every list (R6), GET / (R31), problem (R5). */
static const field page_fields[] = {
    FIELD("pageSize", K_INT, '1', .min = 1, .rule = "R6"),
    FIELD("pageNumber", K_INT, '1', .min = 1, .rule = "R6"),
    FIELD("hasPreviousPage", K_BOOL, '1', .rule = "R6"),
    FIELD("hasNextPage", K_BOOL, '1', .rule = "R6"),
    FIELD("totalPages", K_INT, '?', .rule = "R6"),
    FIELD("items", K_ITEMS, '1', .rule = "R6"), /* always present, may be empty */
};
static const field service_fields[] = {
    FIELD("contactEmail", K_EMAIL, '1'),
    FIELD("specification", K_URI, '1'),
    FIELD("documentation", K_URI, '1'),
    FIELD("supportedVersions", K_ENUM, '*', .values = supported_versions),
    FIELD("supportedConsumers", K_CONSUMERS, '1', .type = OT_SUPPORTED_CONSUMER, .rule = "R31"),
};
static const field supported_consumer_fields[] = {
    FIELD("version", K_STRING, '1'), /* optional in the PDF, always sent (§6 #36) */
};
static const field problem_fields[] = {
    FIELD("status", K_STRING, '1'), /* a string, "404" (§6 #38) */
    FIELD("title", K_STRING, '1'),
    FIELD("detail", K_STRING, '?'),
};

#define TYPE(name_, fields_, ...)                                                                  \
  {                                                                                                \
    .name = (name_), .fields = (fields_), .nfields = sizeof(fields_) / sizeof(fields_)[0],         \
    __VA_ARGS__                                                                                    \
  }
#define DISPATCH(name_, discriminator_, variants_)                                                 \
  { .name = (name_), .discriminator = (discriminator_), .variants = (variants_) }

static const otype types[OT_COUNT] = {
    [OT_LTS] = TYPE("LanguageTypedString", lts_fields, .rule = "R10"),
    [OT_IDENTIFIER] = TYPE("IdentifierEntry", identifier_fields, .rule = "R10"),
    [OT_RESULT_DOCUMENT] = TYPE("Document", result_document_fields, .rule = "R25"),
    [OT_SESSION_DOCUMENT] = TYPE("Document", session_document_fields, .rule = "R25"),
    [OT_TEST_ENTRY] = TYPE("TestEntry", test_entry_fields, .rule = "R7"),
    [OT_ASSIGNED_NEED] = TYPE("AssignedNeedsEntry", assigned_need_fields, .rule = "R7"),
    [OT_COMPONENT] = TYPE("Component", component_fields),
    [OT_COMPONENT_CONSUMER] =
        TYPE("nl-test-admin Component", component_consumer_fields, .rule = "R7"),
    [OT_COMPONENT_OFFERING] = TYPE("ComponentOffering", component_offering_fields),
    [OT_OFFERING_CONSUMER] = TYPE("nl-test-admin Offering", offering_consumer_fields, .rule = "R7"),
    [OT_PROGRAM_OFFERING] = TYPE("ProgramOffering", program_offering_fields),
    [OT_PROGRAM_OFFERING_CONSUMER] =
        TYPE("nl-test-admin ProgramOffering", program_offering_consumer_fields, .rule = "R7"),
    [OT_COURSE_OFFERING] = TYPE("CourseOffering", course_offering_fields),
    [OT_ANY_OFFERING] = DISPATCH("Offering", "offeringType", offering_variants),
    [OT_COMPONENT_ASSOCIATION] =
        TYPE("ComponentOfferingAssociation", component_association_fields, .student = STUDENT_ROLE),
    [OT_ASSOCIATION_CONSUMER] =
        TYPE("nl-test-admin Association", association_consumer_fields, .rule = "R7"),
    [OT_RESULT] = TYPE("Result", result_fields, .rule = "R20"),
    [OT_RESULT_CONSUMER] = TYPE("nl-test-admin Result", result_consumer_fields, .rule = "R7"),
    [OT_PROGRAM_ASSOCIATION] =
        TYPE("ProgramOfferingAssociation", program_association_fields, .student = STUDENT_ROLE),
    [OT_PROGRAM_ASSOCIATION_CONSUMER] = TYPE("nl-test-admin ProgramOfferingAssociation",
                                             program_association_consumer_fields, .rule = "R7"),
    [OT_COURSE_ASSOCIATION] =
        TYPE("CourseOfferingAssociation", course_association_fields, .student = STUDENT_ROLE),
    [OT_ANY_ASSOCIATION] = DISPATCH("Association", "associationType", association_variants),
    [OT_PERSON] = TYPE("Person", person_fields, .student = STUDENT_AFFILIATION),
    [OT_PERSON_CONSUMER] = TYPE("nl-test-admin Person", person_consumer_fields, .rule = "R7"),
    [OT_PROGRAM] = TYPE("Program", program_fields),
    [OT_ORGANIZATION] = TYPE("Organization", organization_fields),
    [OT_GROUP] = TYPE("Group", group_fields),
    [OT_MEMBERSHIP] = TYPE("MembershipItem", membership_fields),
    [OT_PAGE] = TYPE("page", page_fields, .rule = "R6"),
    [OT_SERVICE] = TYPE("service metadata", service_fields, .rule = "R31"),
    [OT_SUPPORTED_CONSUMER] =
        TYPE("supportedConsumers entry", supported_consumer_fields, .rule = "R31"),
    [OT_PROBLEM] = TYPE("problem", problem_fields, .rule = "R5"),
};

/* ---- 3. interactions -------------------------------------------------- */

enum { SHAPE_NONE = 0, SHAPE_OBJECT, SHAPE_PAGE, SHAPE_URI };

enum {
  C_END = 0,
  C_PRESENT,     /* path must be there (and not null) */
  C_ABSENT,      /* path must not be there */
  C_PATH_ID,     /* path must equal ctx->path_id */
  C_ID_ONLY,     /* path must be an id, not an embedded object */
  C_OBJECT_ONLY, /* path must be the embedded object, not an id */
  C_EQUALS,      /* path, when present, must be the string arg */
  C_DIFFERS,     /* path, when present, must differ from the field at path arg */
  C_CONTAINS     /* path must be a list holding the string arg */
};

/* A path is dotted field names from the object; a "consumers" step enters
 * the nl-test-admin entry: "result.consumers.attendance". */
typedef struct check {
  unsigned char what;
  const char *path;
  const char *arg;
  const char *rule;
  const char *message;
} check;

typedef struct body_rules {
  unsigned char shape;
  unsigned char type;      /* the object, or each item of a page */
  unsigned char flows;     /* the flows whose fields this body carries (R11) */
  unsigned char put;       /* PUT: the whole object including its id (R12) */
  unsigned char patch;     /* merge patch: mandatory fields may be left out (R15, R16) */
  const char *const *only; /* fields read; NULL = every field of the type */
  const check *checks;
} body_rules;

#define BODY(shape_, type_, flows_, ...)                                                           \
  { .shape = (shape_), .type = (type_), .flows = (flows_), __VA_ARGS__ }

#define ID_FIXED "a PATCH never carries the resource id: ids cannot change"

static const check put_offering[] = {
    {C_PATH_ID, "offeringId", NULL, "R12", NULL},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check put_flow1_association[] = {
    {C_PATH_ID, "associationId", NULL, "R12", NULL},
    {C_ID_ONLY, "person", NULL, "R14", "in flow 1 person is the personId, not an embedded Person"},
    {C_ID_ONLY, "offering", NULL, "R14", "in flow 1 offering is the offeringId, not an object"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check put_flow2_association[] = {
    {C_PATH_ID, "associationId", NULL, "R12", NULL},
    {C_OBJECT_ONLY, "person", NULL, "R14", "a flow-2 deelname always embeds the Person object"},
    {C_ID_ONLY, "offering", NULL, "R14", "offering is the zitting's offeringId, not an object"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check put_person[] = {
    {C_PATH_ID, "personId", NULL, "R12", NULL},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check put_group[] = {
    {C_PATH_ID, "groupId", NULL, "R12", NULL},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check patch_offering[] = {
    {C_PRESENT, "offeringType", NULL, "R15", "a PATCH on an offering always carries offeringType"},
    {C_ABSENT, "offeringId", NULL, "R15", ID_FIXED},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check patch_association[] = {
    {C_PRESENT, "associationType", NULL, "R15",
     "a PATCH on an association always carries associationType"},
    {C_ABSENT, "associationId", NULL, "R15", ID_FIXED},
    {C_END, NULL, NULL, NULL, NULL},
};
/* Flow 2 PATCHes only cancel (R18): {offeringType, consumers[{offeringState}]}
 * and {associationType, state}. */
static const check cancel_offering[] = {
    {C_PRESENT, "offeringType", NULL, "R15", "a PATCH on an offering always carries offeringType"},
    {C_ABSENT, "offeringId", NULL, "R15", ID_FIXED},
    {C_PRESENT, "consumers.offeringState", NULL, "R18",
     "cancelling a zitting sets the nl-test-admin offeringState to \"canceled\""},
    {C_EQUALS, "consumers.offeringState", "canceled", "R18",
     "a flow-2 PATCH only cancels: offeringState must be \"canceled\""},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check cancel_association[] = {
    {C_PRESENT, "associationType", NULL, "R15",
     "a PATCH on an association always carries associationType"},
    {C_ABSENT, "associationId", NULL, "R15", ID_FIXED},
    {C_PRESENT, "state", NULL, "R18", "removing a deelname sets state to \"canceled\""},
    {C_EQUALS, "state", "canceled", "R18",
     "a flow-2 PATCH only cancels: state must be \"canceled\""},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check result_flow3[] = {
    {C_PRESENT, "associationType", NULL, "R15",
     "a PATCH on an association always carries associationType"},
    {C_ABSENT, "associationId", NULL, "R15", ID_FIXED},
    {C_PRESENT, "result", NULL, "R20",
     "a flow-3 PATCH carries the result (attendance and/or score)"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check session_report[] = {
    {C_PRESENT, "offeringType", NULL, "R15", "a PATCH on an offering always carries offeringType"},
    {C_ABSENT, "offeringId", NULL, "R15", ID_FIXED},
    {C_PRESENT, "consumers.irregularities", NULL, "R7",
     "a session report carries the nl-test-admin irregularities"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check result_flow5[] = {
    {C_PRESENT, "associationType", NULL, "R15",
     "a PATCH on an association always carries associationType"},
    {C_ABSENT, "associationId", NULL, "R15", ID_FIXED},
    {C_PRESENT, "consumers.orgAssociationId", NULL, "R23",
     "a flow-5 result carries orgAssociationId, the original toetsinschrijving"},
    {C_PATH_ID, "consumers.orgAssociationId", NULL, "R23", NULL},
    {C_PRESENT, "consumers.attempt", NULL, "R23", "a flow-5 result carries the attempt number"},
    {C_PRESENT, "result", NULL, "R23", "a flow-5 message carries the result"},
    {C_PRESENT, "result.consumers.executedOfferingName", NULL, "R23",
     "a flow-5 result names the zitting in executedOfferingName"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check attempt_flow5[] = {
    {C_PATH_ID, "associationId", NULL, "R12", NULL},
    {C_PRESENT, "consumers.orgAssociationId", NULL, "R24",
     "an extra attempt points at the original toetsinschrijving with orgAssociationId"},
    {C_DIFFERS, "consumers.orgAssociationId", "associationId", "R24",
     "an extra attempt has a new associationId, not the original one"},
    {C_PRESENT, "consumers.attempt", NULL, "R24", "an extra attempt carries its attempt number"},
    {C_PRESENT, "result", NULL, "R24", "an extra attempt carries its result"},
    {C_PRESENT, "result.consumers.executedOfferingName", NULL, "R23",
     "a flow-5 result names the zitting in executedOfferingName"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check program_enrolments_flow6[] = {
    {C_EQUALS, "associationType", "programOfferingAssociation", "R30",
     "flow 6 returns programme enrolments (programOfferingAssociation) only"},
    {C_ID_ONLY, "person", NULL, "R30", "flow 6 never embeds the Person"},
    {C_END, NULL, NULL, NULL, NULL},
};
static const check service_metadata[] = {
    {C_CONTAINS, "supportedVersions", "v5", "R31", "supportedVersions must include \"v5\""},
    {C_END, NULL, NULL, NULL, NULL},
};

/* "Other fields are ignored" (R18 and the flow 3/4/5 message tables). */
static const char *const only_cancel_offering[] = {"offeringType", "consumers.offeringState", NULL};
static const char *const only_cancel_association[] = {"associationType", "state", NULL};
static const char *const only_result_flow3[] = {"associationType", "result", NULL};
static const char *const only_session_report[] = {"offeringType", "consumers.irregularities",
                                                  "consumers.documents", NULL};
static const char *const only_result_flow5[] = {"associationType", "consumers.orgAssociationId",
                                                "consumers.attempt", "result", NULL};

#define REQ OKEGW_BODY_REQUEST
#define RESP OKEGW_BODY_RESPONSE
#define RULES_COUNT (OKEGW_VALIDATE_PROBLEM + 1)

_Static_assert(OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS < OKEGW_VALIDATE_SERVICE_METADATA,
               "the pseudo-interactions must stay above enum oke_interaction");

/* A read (GET) carries the fields of every flow that fed the stored object:
 * a TA's zitting includes the flow-4 report, a DR's toetsinschrijving the
 * flow-5 result. */
static const body_rules rules[RULES_COUNT][2] = {
    /* Flow 0, TA: the test catalogue. */
    [OKE_I_FLOW0_LIST_COMPONENTS][RESP] = BODY(SHAPE_PAGE, OT_COMPONENT, FL0),
    [OKE_I_FLOW0_GET_COMPONENT][RESP] = BODY(SHAPE_OBJECT, OT_COMPONENT, FL0),

    /* Flow 1 pull, DR. */
    [OKE_I_FLOW1_LIST_OFFERINGS][RESP] = BODY(SHAPE_PAGE, OT_ANY_OFFERING, FL1),
    [OKE_I_FLOW1_GET_OFFERING][RESP] = BODY(SHAPE_OBJECT, OT_ANY_OFFERING, FL1),
    [OKE_I_FLOW1_LIST_ASSOCIATIONS][RESP] = BODY(SHAPE_PAGE, OT_ANY_ASSOCIATION, FL1 | FL5),
    [OKE_I_FLOW1_GET_ASSOCIATION][RESP] = BODY(SHAPE_OBJECT, OT_ANY_ASSOCIATION, FL1 | FL5),
    [OKE_I_FLOW1_GET_ORGANIZATION][RESP] = BODY(SHAPE_OBJECT, OT_ORGANIZATION, FL1),
    [OKE_I_FLOW1_GET_PERSON][RESP] = BODY(SHAPE_OBJECT, OT_PERSON, FL1),
    [OKE_I_FLOW1_LIST_GROUPS][RESP] = BODY(SHAPE_PAGE, OT_GROUP, FL1),
    [OKE_I_FLOW1_GET_GROUP][RESP] = BODY(SHAPE_OBJECT, OT_GROUP, FL1),
    [OKE_I_FLOW1_LIST_GROUP_MEMBERS][RESP] = BODY(SHAPE_PAGE, OT_MEMBERSHIP, FL1),

    /* Flow 1 push, DR -> TPL. */
    [OKE_I_FLOW1_PUT_OFFERING][REQ] =
        BODY(SHAPE_OBJECT, OT_ANY_OFFERING, FL1, .put = 1, .checks = put_offering),
    [OKE_I_FLOW1_PATCH_OFFERING][REQ] =
        BODY(SHAPE_OBJECT, OT_ANY_OFFERING, FL1, .patch = 1, .checks = patch_offering),
    [OKE_I_FLOW1_PUT_ASSOCIATION][REQ] =
        BODY(SHAPE_OBJECT, OT_ANY_ASSOCIATION, FL1, .put = 1, .checks = put_flow1_association),
    [OKE_I_FLOW1_PATCH_ASSOCIATION][REQ] =
        BODY(SHAPE_OBJECT, OT_ANY_ASSOCIATION, FL1, .patch = 1, .checks = patch_association),
    [OKE_I_FLOW1_PUT_PERSON][REQ] =
        BODY(SHAPE_OBJECT, OT_PERSON, FL1, .put = 1, .checks = put_person),
    [OKE_I_FLOW1_PUT_GROUP][REQ] = BODY(SHAPE_OBJECT, OT_GROUP, FL1, .put = 1, .checks = put_group),
    /* The path id is the {personId} of /groups/{groupId}/members/{personId}. */
    [OKE_I_FLOW1_PUT_GROUP_MEMBER][REQ] =
        BODY(SHAPE_OBJECT, OT_MEMBERSHIP, FL1, .put = 1, .checks = put_person),

    /* Flow 2, TPL -> TA, and the TA-side reads of flows 2, 3 and 4. */
    [OKE_I_FLOW2_PUT_OFFERING][REQ] =
        BODY(SHAPE_OBJECT, OT_COMPONENT_OFFERING, FL2, .put = 1, .checks = put_offering),
    [OKE_I_FLOW2_PATCH_OFFERING][REQ] =
        BODY(SHAPE_OBJECT, OT_COMPONENT_OFFERING, FL2, .patch = 1, .only = only_cancel_offering,
             .checks = cancel_offering),
    [OKE_I_FLOW2_GET_OFFERING][RESP] = BODY(SHAPE_OBJECT, OT_COMPONENT_OFFERING, FL2 | FL4),
    [OKE_I_FLOW2_LIST_ASSOCIATIONS][RESP] = BODY(SHAPE_PAGE, OT_COMPONENT_ASSOCIATION, FL2 | FL3),
    [OKE_I_FLOW2_PUT_ASSOCIATION][REQ] = BODY(SHAPE_OBJECT, OT_COMPONENT_ASSOCIATION, FL2, .put = 1,
                                              .checks = put_flow2_association),
    [OKE_I_FLOW2_PATCH_ASSOCIATION][REQ] =
        BODY(SHAPE_OBJECT, OT_COMPONENT_ASSOCIATION, FL2, .patch = 1,
             .only = only_cancel_association, .checks = cancel_association),
    [OKE_I_FLOW2_GET_ASSOCIATION][RESP] = BODY(SHAPE_OBJECT, OT_COMPONENT_ASSOCIATION, FL2 | FL3),
    [OKE_I_FLOW2_GET_ASSOCIATION_URL][RESP] = BODY(SHAPE_URI, OT_NONE, FL2),

    /* Flows 3 and 4, TA -> TPL. */
    [OKE_I_FLOW3_PATCH_ASSOCIATION][REQ] =
        BODY(SHAPE_OBJECT, OT_COMPONENT_ASSOCIATION, FL3, .patch = 1, .only = only_result_flow3,
             .checks = result_flow3),
    [OKE_I_FLOW4_PATCH_OFFERING][REQ] = BODY(SHAPE_OBJECT, OT_COMPONENT_OFFERING, FL4, .patch = 1,
                                             .only = only_session_report, .checks = session_report),

    /* Flow 5, TPL -> DR. */
    [OKE_I_FLOW5_PATCH_ASSOCIATION][REQ] =
        BODY(SHAPE_OBJECT, OT_COMPONENT_ASSOCIATION, FL5, .patch = 1, .only = only_result_flow5,
             .checks = result_flow5),
    [OKE_I_FLOW5_PUT_ASSOCIATION][REQ] =
        BODY(SHAPE_OBJECT, OT_COMPONENT_ASSOCIATION, FL5, .put = 1, .checks = attempt_flow5),

    /* Flow 6, DR -> TA (R30). */
    [OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS][RESP] =
        BODY(SHAPE_PAGE, OT_ANY_ASSOCIATION, FL6, .checks = program_enrolments_flow6),

    /* Not interactions of their own. */
    [OKEGW_VALIDATE_SERVICE_METADATA][RESP] =
        BODY(SHAPE_OBJECT, OT_SERVICE, 0, .checks = service_metadata),
    [OKEGW_VALIDATE_PROBLEM][RESP] = BODY(SHAPE_OBJECT, OT_PROBLEM, 0),
};

/* ---- format checkers -------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }

/* n digits at s (stops at the NUL, so never reads past the string). */
static int digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i]))
      return 0;
  return 1;
}

static int number(const char *s, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (s[i] - '0');
  return v;
}

int okegw_valid_uuid(const char *s) { return okegw_is_uuid(s); }

/* YYYY-MM-DD at s, a date that exists. */
static int date_at(const char *s) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
    return 0;
  int y = number(s, 4), m = number(s + 5, 2), d = number(s + 8, 2);
  if (m < 1 || m > 12 || d < 1)
    return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[m - 1] + (m == 2 && leap);
}

int okegw_valid_date(const char *s) { return s && date_at(s) && s[10] == '\0'; }

enum { DT_OK, DT_BAD, DT_NO_OFFSET };

static int datetime_check(const char *s) {
  if (!s || !date_at(s) || (s[10] != 'T' && s[10] != 't'))
    return DT_BAD;
  const char *t = s + 11;
  if (!digits(t, 2) || t[2] != ':' || !digits(t + 3, 2) || t[5] != ':' || !digits(t + 6, 2))
    return DT_BAD;
  if (number(t, 2) > 23 || number(t + 3, 2) > 59 || number(t + 6, 2) > 60)
    return DT_BAD;
  const char *p = t + 8;
  if (*p == '.') {
    if (!is_digit(*++p))
      return DT_BAD;
    while (is_digit(*p))
      p++;
  }
  if (*p == '\0')
    return DT_NO_OFFSET;
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
    return DT_OK;
  if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
      p[6] == '\0' && number(p + 1, 2) <= 23 && number(p + 4, 2) <= 59)
    return DT_OK;
  return DT_BAD;
}

int okegw_valid_datetime(const char *s) { return datetime_check(s) == DT_OK; }

enum { DUR_OK, DUR_BAD, DUR_CALENDAR };

/* The YAML pattern -?P(nY)?(nM)?(n[DW])?(T(nH)?(nM)?(n(.n)?S)?)? with at
 * least one amount, and no empty T part. DUR_CALENDAR: valid, but it counts
 * years or months. */
static int duration_check(const char *s) {
  if (!s)
    return DUR_BAD;
  const char *p = s;
  if (*p == '-')
    p++;
  if (*p++ != 'P')
    return DUR_BAD;
  int rank = 0, any = 0, calendar = 0;
  while (*p && *p != 'T') {
    if (!is_digit(*p))
      return DUR_BAD;
    while (is_digit(*p))
      p++;
    int r = *p == 'Y' ? 1 : *p == 'M' ? 2 : (*p == 'D' || *p == 'W') ? 3 : 0;
    if (!r || r <= rank)
      return DUR_BAD;
    calendar |= r < 3;
    rank = r, any = 1, p++;
  }
  if (*p == 'T') {
    p++;
    rank = 0;
    int timed = 0;
    while (*p) {
      if (!is_digit(*p))
        return DUR_BAD;
      while (is_digit(*p))
        p++;
      int fraction = 0;
      if (*p == '.') {
        if (!is_digit(*++p))
          return DUR_BAD;
        while (is_digit(*p))
          p++;
        fraction = 1;
      }
      int r = *p == 'H' ? 1 : *p == 'M' ? 2 : *p == 'S' ? 3 : 0;
      if (!r || r <= rank || (fraction && r != 3))
        return DUR_BAD;
      rank = r, timed = 1, p++;
    }
    if (!timed)
      return DUR_BAD;
    any = 1;
  }
  if (!any)
    return DUR_BAD;
  return calendar ? DUR_CALENDAR : DUR_OK;
}

int okegw_valid_duration(const char *s, int test_duration) {
  int r = duration_check(s);
  return r == DUR_OK || (r == DUR_CALENDAR && !test_duration);
}

/* ^[a-z]{2,4}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$ (the YAML's). */
static int langtag_valid(const char *s) {
  size_t n = 0;
  while (is_lower(s[n]))
    n++;
  if (n < 2 || n > 4)
    return 0;
  const char *p = s + n;
  if (p[0] == '-' && is_upper(p[1]) && is_lower(p[2]) && is_lower(p[3]) && is_lower(p[4]))
    p += 5;
  if (*p == '-') {
    p++;
    if (is_upper(p[0]) && is_upper(p[1]))
      p += 2;
    else if (digits(p, 3))
      p += 3;
    else
      return 0;
  }
  return *p == '\0';
}

/* local@domain.tld, no spaces: enough to catch a field mix-up. */
static int email_valid(const char *s) {
  const char *at = strchr(s, '@');
  if (!at || at == s || strchr(at + 1, '@'))
    return 0;
  const char *dot = strrchr(at + 1, '.');
  if (!dot || dot == at + 1 || dot[1] == '\0')
    return 0;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= ' ')
      return 0;
  return 1;
}

/* scheme:rest (RFC 3986 absolute URI), at most 2048 characters (§2.0). */
static int uri_valid(const char *s) {
  const char *p = s;
  if (!is_lower(*p) && !is_upper(*p))
    return 0;
  while (is_lower(*p) || is_upper(*p) || is_digit(*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  if (*p != ':' || p[1] == '\0')
    return 0;
  size_t n = 0;
  for (; s[n]; n++)
    if ((unsigned char)s[n] <= ' ' || s[n] == 0x7f || n >= 2048)
      return 0;
  return 1;
}

static int in_list(const char *const *values, const char *s) {
  for (; *values; values++)
    if (strcmp(*values, s) == 0)
      return 1;
  return 0;
}

/* ---- scores (§3 score table) ------------------------------------------ */

static const char *const rktr_levels[] = {"1F", "1S", "2F", "2S", "3F", "3S", "4F", "4S", NULL};
static const char *const erk_levels[] = {"A1", "A2", "B1", "B2", "C1", "C2", NULL};

/* An integer of 1..max_digits digits, at most limit. */
static int whole_score(const char *s, size_t max_digits, int limit) {
  size_t n = strlen(s);
  return n >= 1 && n <= max_digits && digits(s, n) && number(s, n) <= limit;
}

static int score_0_100(const char *s) { return whole_score(s, 3, 100); }
static int score_0_10(const char *s) { return whole_score(s, 2, 10); }

/* ^\d{1,2}(\.\d)?$, 0.0-10.0, a dot and never a comma. */
static int score_decimal(const char *s) {
  size_t n = 0;
  while (is_digit(s[n]))
    n++;
  if (n < 1 || n > 2)
    return 0;
  int tenths = number(s, n) * 10;
  if (s[n] == '.') {
    if (!is_digit(s[n + 1]) || s[n + 2] != '\0')
      return 0;
    tenths += s[n + 1] - '0';
  } else if (s[n] != '\0') {
    return 0;
  }
  return tenths <= 100;
}

static int score_pass_fail(const char *s) {
  static const char *const v[] = {"passed", "failed", NULL};
  return in_list(v, s);
}

static int score_ovg(const char *s) {
  static const char *const v[] = {"insufficient", "satisfactory", "good", NULL};
  return in_list(v, s);
}

/* ^[A-DF][+-]?$ */
static int score_us_letter(const char *s) {
  if (!((s[0] >= 'A' && s[0] <= 'D') || s[0] == 'F'))
    return 0;
  const char *p = s + 1;
  if (*p == '+' || *p == '-')
    p++;
  return *p == '\0';
}

/* ^(A\*|[A-G])[+-]?$|^U$ */
static int score_uk_letter(const char *s) {
  if (strcmp(s, "U") == 0)
    return 1;
  if (s[0] < 'A' || s[0] > 'G')
    return 0;
  const char *p = s + 1;
  if (s[0] == 'A' && *p == '*')
    p++;
  if (*p == '+' || *p == '-')
    p++;
  return *p == '\0';
}

/* ^[1-6]([.,][037])?$ (lenient) */
static int score_de_grade(const char *s) {
  if (s[0] < '1' || s[0] > '6')
    return 0;
  if (s[1] == '\0')
    return 1;
  return (s[1] == '.' || s[1] == ',') && (s[2] == '0' || s[2] == '3' || s[2] == '7') &&
         s[3] == '\0';
}

/* 2F, or "Op weg naar 2F". */
static int score_rktr(const char *s) {
  static const char prefix[] = "Op weg naar ";
  if (strncmp(s, prefix, sizeof prefix - 1) == 0)
    s += sizeof prefix - 1;
  return in_list(rktr_levels, s);
}

static int score_erk(const char *s) { return in_list(erk_levels, s); }

static const struct {
  const char *type;
  int (*fits)(const char *score);
} scales[] = {
    {"0-100", score_0_100},
    {"0-10", score_0_10},
    {"0.0-10.0", score_decimal},
    {"pass-or-fail", score_pass_fail},
    {"insufficient-satisfactory-good", score_ovg},
    {"US letter", score_us_letter},
    {"UK letter", score_uk_letter},
    {"DE grade", score_de_grade},
    {"referenceLevelRKTR", score_rktr},
    {"referenceLevelERK", score_erk},
};

int okegw_score_fits(const char *result_value_type, const char *score) {
  if (!result_value_type || !score)
    return 0;
  for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
    if (strcmp(scales[i].type, result_value_type) == 0)
      return scales[i].fits(score);
  return 0;
}

static int score_fits_any(const char *score) {
  for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
    if (scales[i].fits(score))
      return 1;
  return 0;
}

/* ---- the violation list ----------------------------------------------- */

void okegw_violations_free(okegw_violations *v) {
  if (!v)
    return;
  free(v->v);
  v->v = NULL;
  v->n = v->cap = 0;
  v->truncated = 0;
}

/* 0, or -1 when out of memory. A repeat of (pointer, message) is dropped. */
static int violations_add(okegw_violations *out, const char *pointer, const char *rule,
                          const char *message) {
  for (size_t i = 0; i < out->n; i++)
    if (strcmp(out->v[i].pointer, pointer) == 0 && strcmp(out->v[i].message, message) == 0)
      return 0;
  if (out->n >= OKEGW_VIOLATIONS_MAX) {
    out->truncated = 1;
    return 0;
  }
  if (out->n == out->cap) {
    size_t cap = out->cap ? out->cap * 2 : 8;
    if (cap > OKEGW_VIOLATIONS_MAX)
      cap = OKEGW_VIOLATIONS_MAX;
    okegw_violation *v = realloc(out->v, cap * sizeof *v);
    if (!v)
      return -1;
    out->v = v;
    out->cap = cap;
  }
  okegw_violation *x = &out->v[out->n++];
  snprintf(x->pointer, sizeof x->pointer, "%s", pointer);
  snprintf(x->message, sizeof x->message, "%s", message);
  x->rule = rule;
  return 0;
}

/* ---- the walker ------------------------------------------------------- */

typedef struct walk {
  okegw_violations *out;
  const body_rules *r;
  const char *path_id;
  const char *rvt;         /* the known resultValueType, or NULL */
  const char *const *only; /* the body's `only` list while inside its object */
  char ptr[256];           /* RFC 6901 pointer of the value at hand */
  size_t plen;
  char names[256]; /* dotted field names from the body's object, for `only` */
  size_t nlen;
  int oom;
} walk;

static void vadd_at(walk *w, const char *ptr, const char *rule, const char *fmt, ...)
    OKE_PRINTF(4, 5);

static void vadd_at(walk *w, const char *ptr, const char *rule, const char *fmt, ...) {
  if (w->oom)
    return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (violations_add(w->out, ptr, rule, msg) < 0)
    w->oom = 1;
}

#define vadd(w, rule, ...) vadd_at((w), (w)->ptr, (rule), __VA_ARGS__)

/* Appends "/key" (escaped per RFC 6901); returns the length to restore. A
 * pointer that does not fit is cut short rather than overrun. */
static size_t ptr_push(walk *w, const char *key) {
  size_t old = w->plen, n = w->plen;
  if (n < sizeof w->ptr - 1)
    w->ptr[n++] = '/';
  for (const char *k = key; *k && n < sizeof w->ptr - 2; k++) {
    if (*k == '~' || *k == '/') {
      w->ptr[n++] = '~';
      w->ptr[n++] = *k == '~' ? '0' : '1';
    } else {
      w->ptr[n++] = *k;
    }
  }
  w->ptr[n] = '\0';
  w->plen = n;
  return old;
}

/* Decimal digits of i into b (24 bytes): snprintf costs more than the whole
 * check of a field, and this runs for every element of every list. */
static const char *utoa(size_t i, char b[24]) {
  char *p = b + 23;
  *p = '\0';
  do {
    *--p = (char)('0' + i % 10);
    i /= 10;
  } while (i && p > b);
  return p;
}

/* Appends n bytes of s at dst[*len] (capacity cap), cutting short rather
 * than overrunning; keeps dst NUL-terminated. */
static void append(char *dst, size_t *len, size_t cap, const char *s, size_t n) {
  if (*len + 1 >= cap)
    return;
  if (n > cap - 1 - *len)
    n = cap - 1 - *len;
  memcpy(dst + *len, s, n);
  *len += n;
  dst[*len] = '\0';
}

static size_t ptr_push_index(walk *w, size_t i) {
  char b[24];
  return ptr_push(w, utoa(i, b));
}

static void ptr_pop(walk *w, size_t old) {
  w->plen = old;
  w->ptr[old] = '\0';
}

static size_t name_push(walk *w, const char *name) {
  size_t old = w->nlen;
  if (old)
    append(w->names, &w->nlen, sizeof w->names, ".", 1);
  append(w->names, &w->nlen, sizeof w->names, name, strlen(name));
  return old;
}

static void name_pop(walk *w, size_t old) {
  w->nlen = old;
  w->names[old] = '\0';
}

/* Whether the field at w->names is read: it is listed, lies on the way to a
 * listed field, or lies inside one. */
static int only_allows(const walk *w) {
  if (!w->only)
    return 1;
  for (const char *const *o = w->only; *o; o++) {
    size_t n = strlen(*o);
    if (strncmp(*o, w->names, w->nlen < n ? w->nlen : n) != 0)
      continue;
    if (n == w->nlen || (n > w->nlen && (*o)[w->nlen] == '.') ||
        (n < w->nlen && w->names[n] == '.'))
      return 1;
  }
  return 0;
}

static const char *format_rule(const field *f) { return f->rule ? f->rule : "R10"; }

static const char *missing_rule(const walk *w, const otype *t, const field *f) {
  if (f->rule)
    return f->rule;
  if (f->kind == K_CONSUMERS)
    return "R7";
  if (t->rule)
    return t->rule;
  return w->r->put ? "R12" : w->r->patch ? "R16" : "R8";
}

/* Appends ", value" (or "value") to a message part, cut short when full. */
static void list_append(char *buf, size_t cap, const char *value) {
  size_t n = strlen(buf);
  if (n + 1 < cap)
    snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", value);
}

/* "a, b, c" for a message. */
static void list_values(const char *const *values, char *buf, size_t cap) {
  buf[0] = '\0';
  for (; *values; values++)
    list_append(buf, cap, *values);
}

static void walk_object(walk *w, int type, const cJSON *obj, int partial, int student);
static void walk_item(walk *w, const cJSON *obj);

/* 1 / 0 when the object says whether it is about a student; -1 when not. */
static int is_student(const otype *t, const cJSON *obj) {
  if (t->student == STUDENT_ROLE) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(obj, "role");
    return cJSON_IsString(role) ? strcmp(role->valuestring, "student") == 0 : -1;
  }
  if (t->student == STUDENT_AFFILIATION) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "affiliations"), *e;
    if (!cJSON_IsArray(a))
      return -1;
    cJSON_ArrayForEach(e, a) {
      if (cJSON_IsString(e) && strcmp(e->valuestring, "student") == 0)
        return 1;
    }
    return 0;
  }
  return -1;
}

static void want_string(walk *w, const field *f, const char *what) {
  vadd(w, format_rule(f), "%s must be %s", f->name, what);
}

/* One value of a field (one element, for a list). */
static void check_value(walk *w, const field *f, const cJSON *parent, const cJSON *v, int student) {
  const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
  const char *rule = format_rule(f);
  switch ((enum kind)f->kind) {
  case K_STRING:
    if (!s)
      want_string(w, f, "a string");
    else if (f->max && strlen(s) > (size_t)f->max)
      vadd(w, rule, "%s is longer than %ld characters", f->name, f->max);
    break;
  case K_UUID:
    if (!s)
      want_string(w, f, "a UUID string");
    else if (!okegw_valid_uuid(s))
      vadd(w, rule, "\"%.60s\" is not a UUID", s);
    break;
  case K_DATE:
    if (!s)
      want_string(w, f, "a date string (YYYY-MM-DD)");
    else if (!okegw_valid_date(s))
      vadd(w, rule, "\"%.40s\" is not a date (YYYY-MM-DD)", s);
    break;
  case K_DATETIME:
    if (!s)
      want_string(w, f, "a date-time string");
    else if (datetime_check(s) == DT_NO_OFFSET)
      vadd(w, rule,
           "\"%.40s\" has no time-zone offset: write Z or +hh:mm (2026-03-17T09:00:00+01:00)", s);
    else if (datetime_check(s) != DT_OK)
      vadd(w, rule, "\"%.40s\" is not an RFC 3339 date-time with offset", s);
    break;
  case K_DURATION:
  case K_TEST_DURATION: {
    int r = s ? duration_check(s) : DUR_BAD;
    if (!s)
      want_string(w, f, "an ISO 8601 duration string");
    else if (r == DUR_BAD)
      vadd(w, rule, "\"%.40s\" is not an ISO 8601 duration (like PT40M)", s);
    else if (r == DUR_CALENDAR && f->kind == K_TEST_DURATION)
      vadd(w, rule, "\"%.40s\" counts years or months (P60M is 60 months); for minutes write PT..M",
           s);
    break;
  }
  case K_EMAIL:
    if (!s)
      want_string(w, f, "an e-mail address");
    else if (!email_valid(s) || (f->max && strlen(s) > (size_t)f->max))
      vadd(w, rule, "%s is not an e-mail address", f->name);
    break;
  case K_URI:
    if (!s)
      want_string(w, f, "a URI string");
    else if (!uri_valid(s))
      vadd(w, rule, "%s is not an absolute URI of at most 2048 characters", f->name);
    break;
  case K_LANGTAG:
    if (!s)
      want_string(w, f, "a language tag string");
    else if (!langtag_valid(s))
      vadd(w, rule, "\"%.40s\" is not a language tag like nl-NL", s);
    break;
  case K_ENUM:
  case K_CODETYPE:
    if (!s) {
      want_string(w, f, "a string");
    } else if (!in_list(f->values, s) &&
               !(f->kind == K_CODETYPE && strncmp(s, "x-", 2) == 0 && s[2])) {
      char allowed[160];
      list_values(f->values, allowed, sizeof allowed);
      vadd(w, rule, "\"%.40s\" is not %s %s (%s)", s, f->kind == K_CODETYPE ? "a" : "an allowed",
           f->kind == K_CODETYPE ? "codeType or x- extension" : f->name, allowed);
    }
    break;
  case K_BOOL:
  case K_TRUE:
  case K_FALSE:
    if (!cJSON_IsBool(v))
      vadd(w, rule, "%s must be true or false", f->name);
    else if (f->kind != K_BOOL && cJSON_IsTrue(v) != (f->kind == K_TRUE))
      vadd(w, rule, "%s is always %s in the profile", f->name,
           f->kind == K_TRUE ? "true" : "false");
    break;
  case K_INT: {
    /* Range first: casting an out-of-range double to an integer is undefined. */
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0.5;
    long max = f->max ? f->max : INT32_MAX;
    if (!cJSON_IsNumber(v) || d < -2147483648.0 || d > 2147483647.0 || d != (double)(long)d)
      vadd(w, rule, "%s must be a whole number (int32)", f->name);
    else if (d < (double)f->min || d > (double)max)
      vadd(w, rule, f->min == f->max ? "%s must be %ld" : "%s must be at least %ld", f->name,
           f->min);
    break;
  }
  case K_SCORE:
    if (!s)
      want_string(w, f, "a string");
    else if (w->rvt && !okegw_score_fits(w->rvt, s))
      vadd(w, rule, "score \"%.40s\" does not fit resultValueType %s", s, w->rvt);
    else if (!w->rvt && !score_fits_any(s))
      vadd(w, rule, "score \"%.40s\" fits none of the resultValueType scales", s);
    break;
  case K_PASSFROM: {
    const cJSON *rvt = cJSON_GetObjectItemCaseSensitive(parent, "resultValueType");
    if (!s)
      want_string(w, f, "a string");
    else if (cJSON_IsString(rvt) && in_list(result_value_types, rvt->valuestring) &&
             !okegw_score_fits(rvt->valuestring, s))
      vadd(w, rule, "passFrom \"%.40s\" does not fit resultValueType %s", s, rvt->valuestring);
    break;
  }
  case K_OBJECT:
    if (!cJSON_IsObject(v))
      vadd(w, rule, "%s must be an object (%s)", f->name, types[f->type].name);
    else
      walk_object(w, f->type, v, 0, student);
    break;
  case K_REF:
    if (s) {
      if (!okegw_valid_uuid(s))
        vadd(w, rule, "\"%.60s\" is not a UUID", s);
    } else if (cJSON_IsObject(v)) {
      walk_object(w, f->type, v, 0, student);
    } else {
      vadd(w, rule, "%s must be an id (UUID) or an object (%s)", f->name, types[f->type].name);
    }
    break;
  case K_CONSUMERS:
  case K_ITEMS:
  case K_ANY: break;
  }
}

/* consumers[]: validate the nl-test-admin entry, ignore the others (R7). */
static void check_consumers(walk *w, const otype *t, const field *f, const cJSON *v, int partial,
                            int student, int required) {
  const char *rule = missing_rule(w, t, f);
  if (!cJSON_IsArray(v)) {
    vadd(w, rule, "%s must be a list of consumer entries", f->name);
    return;
  }
  int found = 0;
  const char *near = NULL;
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    const cJSON *key =
        cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "consumerKey") : NULL;
    const char *k = cJSON_IsString(key) ? key->valuestring : NULL;
    if (k && strcmp(k, CONSUMER_KEY) == 0) {
      size_t old = ptr_push_index(w, i);
      if (found)
        vadd(w, rule, "a second \"" CONSUMER_KEY "\" entry; there must be one");
      else
        walk_object(w, f->type, e, partial, student);
      ptr_pop(w, old);
      found = 1;
    } else if (k && strcasecmp(k, CONSUMER_KEY) == 0) {
      near = k;
    }
    i++;
  }
  if (found || !required)
    return;
  if (partial) {
    if (i == 0)
      vadd(w, "R16", "%s is mandatory: [] cannot remove it", f->name);
  } else if (near) {
    vadd(w, rule,
         "no %s entry with consumerKey \"" CONSUMER_KEY "\": \"%.40s\" does not count, the key "
         "is case-sensitive",
         f->name, near);
  } else {
    vadd(w, rule, "no %s entry with consumerKey \"" CONSUMER_KEY "\"", f->name);
  }
}

static void check_items(walk *w, const field *f, const cJSON *v) {
  if (!cJSON_IsArray(v)) {
    vadd(w, format_rule(f), "items must be a list");
    return;
  }
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    size_t old = ptr_push_index(w, i++);
    walk_item(w, e);
    ptr_pop(w, old);
  }
}

/* One field of an object: presence, null and [] (R16), then its value(s). */
static void check_field(walk *w, const otype *t, const field *f, const cJSON *obj, const cJSON *v,
                        int partial, int student) {
  int required = (f->card == '1' || f->card == '+') && (f->when != W_STUDENT || student == 1);
  if (!v || cJSON_IsNull(v)) {
    if (!required)
      return; /* null on an optional field = absent */
    if (partial && v)
      vadd(w, "R16", "%s is mandatory: null cannot remove it", f->name);
    else if (!partial)
      vadd(w, missing_rule(w, t, f), "%s is mandatory%s", f->name, v ? " and cannot be null" : "");
    return;
  }
  if (f->kind == K_CONSUMERS) {
    check_consumers(w, t, f, v, partial, student, required);
    return;
  }
  if (f->kind == K_ITEMS) {
    check_items(w, f, v);
    return;
  }
  if (f->card != '*' && f->card != '+') {
    check_value(w, f, obj, v, student);
    return;
  }
  if (!cJSON_IsArray(v)) {
    vadd(w, format_rule(f), "%s must be a list", f->name);
    return;
  }
  if (cJSON_GetArraySize(v) == 0) {
    if (required && partial)
      vadd(w, "R16", "%s is mandatory: [] cannot remove it", f->name);
    else if (required)
      vadd(w, missing_rule(w, t, f), "%s needs at least one entry", f->name);
    return;
  }
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    size_t old = ptr_push_index(w, i++);
    check_value(w, f, obj, e, student);
    ptr_pop(w, old);
  }
}

/* obj is checked against type; partial = a merge patch, where mandatory
 * fields may be left out; student = inherited answer to "is it a student". */
static void walk_object(walk *w, int type, const cJSON *obj, int partial, int student) {
  const otype *t = &types[type];
  if (!cJSON_IsObject(obj)) {
    vadd(w, t->rule ? t->rule : "R10", "expected an object (%s)", t->name);
    return;
  }
  if (t->discriminator) { /* R8: pick the schema by the discriminator */
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, t->discriminator);
    size_t old = ptr_push(w, t->discriminator);
    int next = OT_NONE;
    if (!d || cJSON_IsNull(d)) {
      if (!partial) /* a PATCH reports it as R15 */
        vadd(w, "R8", "%s is mandatory: it says which %s schema applies", t->discriminator,
             t->name);
    } else {
      for (const variant *v = t->variants; v->value; v++)
        if (cJSON_IsString(d) && strcmp(d->valuestring, v->value) == 0)
          next = v->type;
      if (next == OT_NONE) {
        char allowed[160] = "";
        for (const variant *v = t->variants; v->value; v++)
          list_append(allowed, sizeof allowed, v->value);
        vadd(w, "R8", "%s must be one of: %s", t->discriminator, allowed);
      }
    }
    ptr_pop(w, old);
    if (next != OT_NONE)
      walk_object(w, next, obj, partial, student);
    return;
  }
  int s = is_student(t, obj);
  if (s >= 0)
    student = s;
  for (size_t i = 0; i < t->nfields && !w->oom; i++) {
    const field *f = &t->fields[i];
    if (f->flows && !(f->flows & w->r->flows))
      continue; /* another flow's field (R11) */
    size_t nold = name_push(w, f->name);
    if (only_allows(w)) {
      size_t pold = ptr_push(w, f->name);
      check_field(w, t, f, obj, cJSON_GetObjectItemCaseSensitive(obj, f->name), partial, student);
      ptr_pop(w, pold);
    }
    name_pop(w, nold);
  }
}

/* ---- interaction checks ----------------------------------------------- */

enum { PATH_FOUND, PATH_MISSING, PATH_BLOCKED };

/* Follows a dotted path from obj; a "consumers" step enters the nl-test-admin
 * entry. ptr gets the value's pointer, or where the first missing step would
 * be. PATH_BLOCKED: something on the way has the wrong type (reported by the
 * type walk already). */
static int resolve(const cJSON *obj, const char *path, const char *base, char *ptr, size_t cap,
                   const cJSON **out) {
  char seg[64];
  const cJSON *cur = obj;
  size_t len = 0;
  if (cap)
    ptr[0] = '\0';
  append(ptr, &len, cap, base, strlen(base));
  while (*path) {
    size_t n = strcspn(path, ".");
    size_t sn = n < sizeof seg - 1 ? n : sizeof seg - 1;
    memcpy(seg, path, sn);
    seg[sn] = '\0';
    path += n + (path[n] == '.');
    if (!cJSON_IsObject(cur))
      return PATH_BLOCKED;
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, seg);
    append(ptr, &len, cap, "/", 1);
    append(ptr, &len, cap, seg, sn);
    if (!next)
      return PATH_MISSING;
    if (strcmp(seg, "consumers") == 0) {
      if (cJSON_IsNull(next))
        return PATH_MISSING;
      if (!cJSON_IsArray(next))
        return PATH_BLOCKED;
      const cJSON *e, *entry = NULL;
      size_t i = 0;
      cJSON_ArrayForEach(e, next) {
        const cJSON *k =
            cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "consumerKey") : NULL;
        if (cJSON_IsString(k) && strcmp(k->valuestring, CONSUMER_KEY) == 0) {
          entry = e;
          break;
        }
        i++;
      }
      if (!entry)
        return PATH_MISSING;
      char b[24];
      append(ptr, &len, cap, "/", 1);
      const char *digits = utoa(i, b);
      append(ptr, &len, cap, digits, strlen(digits));
      next = entry;
    }
    if (*path && cJSON_IsNull(next))
      return PATH_MISSING;
    cur = next;
  }
  *out = cur;
  return PATH_FOUND;
}

/* Two ids name one resource: UUIDs compare without regard to case (RFC
 * 9562; the gateway lower-cases path ids), other ids exactly. */
static int same_id(const char *a, const char *b) {
  if (okegw_is_uuid(a) && okegw_is_uuid(b))
    return strcasecmp(a, b) == 0;
  return strcmp(a, b) == 0;
}

static void run_checks(walk *w, const cJSON *obj) {
  for (const check *c = w->r->checks; c && c->what != C_END; c++) {
    char ptr[256], other_ptr[256];
    const cJSON *v = NULL, *other = NULL;
    int r = resolve(obj, c->path, w->ptr, ptr, sizeof ptr, &v);
    const char *s = r == PATH_FOUND && cJSON_IsString(v) ? v->valuestring : NULL;
    switch (c->what) {
    case C_PRESENT:
      if (r == PATH_MISSING || (r == PATH_FOUND && cJSON_IsNull(v)))
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    case C_ABSENT:
      if (r == PATH_FOUND)
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    case C_PATH_ID:
      if (s && w->path_id && !same_id(s, w->path_id))
        vadd_at(w, ptr, c->rule, "%s \"%.60s\" differs from the id in the path \"%.60s\"", c->path,
                s, w->path_id);
      break;
    case C_ID_ONLY:
      if (r == PATH_FOUND && cJSON_IsObject(v))
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    case C_OBJECT_ONLY:
      if (s)
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    case C_EQUALS:
      if (s && strcmp(s, c->arg) != 0)
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    case C_DIFFERS:
      if (s && resolve(obj, c->arg, w->ptr, other_ptr, sizeof other_ptr, &other) == PATH_FOUND &&
          cJSON_IsString(other) && same_id(s, other->valuestring))
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    case C_CONTAINS: {
      int has = 0;
      const cJSON *e;
      if (r == PATH_FOUND && cJSON_IsArray(v)) {
        cJSON_ArrayForEach(e, v) {
          has |= cJSON_IsString(e) && strcmp(e->valuestring, c->arg) == 0;
        }
      }
      if (!has && r != PATH_BLOCKED)
        vadd_at(w, ptr, c->rule, "%s", c->message);
      break;
    }
    }
  }
}

/* The body's object (or one item of a page): the type walk, then the
 * interaction's checks. */
static void walk_item(walk *w, const cJSON *obj) {
  const char *const *saved_only = w->only;
  char saved_names[sizeof w->names];
  size_t saved_nlen = w->nlen;
  memcpy(saved_names, w->names, sizeof saved_names);
  w->only = w->r->only;
  name_pop(w, 0);
  walk_object(w, w->r->type, obj, w->r->patch, -1);
  if (cJSON_IsObject(obj))
    run_checks(w, obj);
  w->only = saved_only;
  memcpy(w->names, saved_names, sizeof saved_names);
  w->nlen = saved_nlen;
}

int okegw_validate_has_body(int interaction, enum okegw_body_kind kind) {
  if (interaction < 0 || interaction >= RULES_COUNT || (kind != REQ && kind != RESP))
    return 0;
  return rules[interaction][kind].shape != SHAPE_NONE;
}

int okegw_validate(int interaction, enum okegw_body_kind kind, const cJSON *body,
                   const okegw_validate_ctx *ctx, okegw_violations *out) {
  if (!out)
    return -1;
  if (interaction < 0 || interaction >= RULES_COUNT || (kind != REQ && kind != RESP))
    return (int)out->n;
  const body_rules *r = &rules[interaction][kind];
  if (r->shape == SHAPE_NONE)
    return (int)out->n;

  walk w = {.out = out, .r = r};
  if (ctx) {
    w.path_id = ctx->path_id;
    if (ctx->result_value_type && in_list(result_value_types, ctx->result_value_type))
      w.rvt = ctx->result_value_type;
  }
  if (!body) {
    vadd(&w, "R5", "the body is missing or is not JSON");
  } else if (r->shape == SHAPE_URI) {
    if (!cJSON_IsString(body) || !uri_valid(body->valuestring))
      vadd(&w, "R10", "the answer is a JSON string holding an absolute URI");
  } else if (r->shape == SHAPE_PAGE) {
    if (!cJSON_IsObject(body))
      vadd(&w, "R6", "a list answer is a page object {pageSize, pageNumber, ..., items}");
    else
      walk_object(&w, OT_PAGE, body, 0, -1);
  } else {
    walk_item(&w, body);
  }
  return w.oom ? -1 : (int)out->n;
}

/* ---- what an interaction does not carry -------------------------------- */

typedef struct prune {
  walk w;        /* names and `only` */
  char *removed; /* dotted names, comma-separated, cut at size */
  size_t size, len;
  int n;
} prune;

static void pruned(prune *p, cJSON *obj, cJSON *m) {
  if (p->removed && p->len + 1 < p->size) {
    int k = snprintf(p->removed + p->len, p->size - p->len, "%s%s%s%s", p->len ? "," : "",
                     p->w.names, p->w.nlen ? "." : "", m->string);
    p->len = k < 0 ? p->len : p->len + (size_t)k < p->size ? p->len + (size_t)k : p->size - 1;
  }
  cJSON_Delete(cJSON_DetachItemViaPointer(obj, m));
  p->n++;
}

static void prune_object(prune *p, int type, cJSON *obj);

static void prune_value(prune *p, const field *f, cJSON *v) {
  if (f->kind != K_OBJECT && f->kind != K_REF && f->kind != K_CONSUMERS)
    return;
  cJSON *e;
  if (f->kind != K_CONSUMERS) {
    if (cJSON_IsArray(v)) {
      cJSON_ArrayForEach(e, v) { prune_object(p, f->type, e); }
    } else {
      prune_object(p, f->type, v);
    }
    return;
  }
  /* consumers[]: the nl-test-admin entry has a table; in a message that
   * carries only some fields (a cancel, a result), other consumers' entries
   * carry nothing of it */
  cJSON *next;
  for (e = cJSON_IsArray(v) ? v->child : NULL; e; e = next) {
    next = e->next;
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "consumerKey"));
    if (k && strcmp(k, CONSUMER_KEY) == 0) {
      prune_object(p, f->type, e);
    } else if (p->w.only) {
      cJSON_Delete(cJSON_DetachItemViaPointer(v, e));
      p->n++;
    }
  }
}

static void prune_object(prune *p, int type, cJSON *obj) {
  const otype *t = &types[type];
  if (!cJSON_IsObject(obj))
    return;
  if (t->discriminator) {
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, t->discriminator));
    for (const variant *v = t->variants; d && v->value; v++)
      if (strcmp(d, v->value) == 0)
        prune_object(p, v->type, obj);
    return;
  }
  cJSON *next;
  for (cJSON *m = obj->child; m; m = next) {
    next = m->next;
    if (!m->string || strcmp(m->string, "consumerKey") == 0)
      continue;
    const field *f = NULL;
    for (size_t i = 0; i < t->nfields && !f; i++)
      if (strcmp(t->fields[i].name, m->string) == 0)
        f = &t->fields[i];
    if (f && f->flows && !(f->flows & p->w.r->flows)) {
      pruned(p, obj, m); /* another flow's field (R11) */
      continue;
    }
    size_t old = name_push(&p->w, m->string);
    int keep = only_allows(&p->w);
    name_pop(&p->w, old);
    if (!keep) {
      pruned(p, obj, m); /* "other fields are ignored" */
      continue;
    }
    if (f) {
      old = name_push(&p->w, m->string);
      prune_value(p, f, m);
      name_pop(&p->w, old);
    }
  }
}

int okegw_validate_prune(int interaction, cJSON *body, char *removed, size_t size) {
  if (removed && size)
    removed[0] = '\0';
  if (interaction < 0 || interaction >= RULES_COUNT || !cJSON_IsObject(body))
    return 0;
  const body_rules *r = &rules[interaction][REQ];
  if (r->shape != SHAPE_OBJECT)
    return 0;
  prune p = {.w = {.r = r, .only = r->only}, .removed = size ? removed : NULL, .size = size};
  prune_object(&p, r->type, body);
  return p.n;
}

/* ---- query parameters of collection GETs ------------------------------ */

/* The query parameters the YAML declares for a list interaction, as data.
 * Parameters not in a table are passed through unchecked (digest §6 #12);
 * the undeclared ones the digest names with their values (licensed,
 * componentType, since/until) are checked like declared ones. */
enum qkind {
  Q_PAGE_SIZE,   /* one of 10, 20, 50, 100, 250 (R6) */
  Q_PAGE_NUMBER, /* a whole number from 1 */
  Q_ENUM,        /* one of .values */
  Q_SORT,        /* a list of .values, comma-separated or repeated */
  Q_BOOL,        /* true or false */
  Q_DATE,        /* a date; a date-time is accepted too (digest §6 #13) */
  Q_LANG3        /* ^[a-z]{3}$ (teachingLanguage) */
};

typedef struct qparam {
  const char *name;
  unsigned char kind;
  const char *const *values;
} qparam;

ENUM(q_sort_components, "name", "-name", "componentId", "-componentId");
ENUM(q_sort_offerings, "offeringId", "-offeringId", "name", "-name", "startDateTime",
     "-startDateTime", "endDateTime", "-endDateTime");
ENUM(q_sort_associations, "associationId", "-associationId");
ENUM(q_sort_groups, "groupId", "-groupId", "name", "-name", "startDate", "-startDate");
ENUM(q_component_types, "test", "lecture", "practical", "tutorial", "consultation", "project",
     "workshop", "excursion", "independent study", "external", "skills training");
ENUM(q_offering_types, "component", "course", "program");
/* the query enum of the YAML holds every OOAPI state, the body's only three */
ENUM(q_association_states, "pending", "canceled", "denied", "associated", "queued", "finished");
ENUM(q_association_types_long, "programOfferingAssociation", "courseOfferingAssociation",
     "componentOfferingAssociation");
ENUM(q_association_types_short, "programOffering", "courseOffering", "componentOffering");

#define QPAGE                                                                                      \
  {"pageSize", Q_PAGE_SIZE, NULL}, { "pageNumber", Q_PAGE_NUMBER, NULL }
#define QEND                                                                                       \
  { NULL, 0, NULL }

static const qparam q_components[] = {
    QPAGE,
    {"sort", Q_SORT, q_sort_components},
    {"licensed", Q_BOOL, NULL},
    {"componentType", Q_ENUM, q_component_types},
    QEND,
};
static const qparam q_offerings[] = {
    QPAGE,
    {"sort", Q_SORT, q_sort_offerings},
    {"offeringType", Q_ENUM, q_offering_types},
    {"component.componentType", Q_ENUM, q_component_types},
    {"resultExpected", Q_BOOL, NULL},
    {"teachingLanguage", Q_LANG3, NULL},
    {"since", Q_DATE, NULL},
    {"until", Q_DATE, NULL},
    QEND,
};
static const qparam q_offering_associations[] = {
    QPAGE,
    {"sort", Q_SORT, q_sort_associations},
    {"associationType", Q_ENUM, q_association_types_long},
    {"role", Q_ENUM, roles},
    {"state", Q_ENUM, q_association_states},
    {"result-state", Q_ENUM, result_states},
    QEND,
};
static const qparam q_groups[] = {
    QPAGE,
    {"sort", Q_SORT, q_sort_groups},
    {"groupType", Q_ENUM, group_types},
    {"since", Q_DATE, NULL},
    {"until", Q_DATE, NULL},
    QEND,
};
static const qparam q_group_members[] = {
    QPAGE,
    QEND,
};
/* the short associationType spelling on this path (digest §6 #15) */
static const qparam q_person_associations[] = {
    QPAGE,
    {"sort", Q_SORT, q_sort_associations},
    {"associationType", Q_ENUM, q_association_types_short},
    {"role", Q_ENUM, roles},
    {"state", Q_ENUM, q_association_states},
    {"result-state", Q_ENUM, result_states},
    QEND,
};

static const qparam *const query_rules[OKE_INTERACTION_END] = {
    [OKE_I_FLOW0_LIST_COMPONENTS] = q_components,
    [OKE_I_FLOW1_LIST_OFFERINGS] = q_offerings,
    [OKE_I_FLOW1_LIST_ASSOCIATIONS] = q_offering_associations,
    [OKE_I_FLOW2_LIST_ASSOCIATIONS] = q_offering_associations,
    [OKE_I_FLOW1_LIST_GROUPS] = q_groups,
    [OKE_I_FLOW1_LIST_GROUP_MEMBERS] = q_group_members,
    [OKE_I_FLOW6_LIST_PERSON_ASSOCIATIONS] = q_person_associations,
};

static int qvalue_ok(const qparam *q, const char *v) {
  size_t n = strlen(v);
  switch (q->kind) {
  case Q_PAGE_SIZE:
    return !strcmp(v, "10") || !strcmp(v, "20") || !strcmp(v, "50") || !strcmp(v, "100") ||
           !strcmp(v, "250");
  case Q_PAGE_NUMBER: {
    /* a whole number from 1 that fits the YAML's int32 */
    if (!n || n > 10 || !digits(v, n))
      return 0;
    long long x = strtoll(v, NULL, 10);
    return x >= 1 && x <= INT32_MAX;
  }
  case Q_ENUM: return in_list(q->values, v);
  case Q_SORT: {
    /* ATTR1,-ATTR2: every item one of the values */
    char item[64];
    for (const char *p = v;;) {
      size_t len = strcspn(p, ",");
      if (!len || len >= sizeof item)
        return 0;
      memcpy(item, p, len);
      item[len] = '\0';
      if (!in_list(q->values, item))
        return 0;
      if (!p[len])
        return 1;
      p += len + 1;
    }
  }
  case Q_BOOL: return !strcmp(v, "true") || !strcmp(v, "false");
  case Q_DATE: return okegw_valid_date(v) || okegw_valid_datetime(v);
  case Q_LANG3: return n == 3 && is_lower(v[0]) && is_lower(v[1]) && is_lower(v[2]);
  }
  return 0;
}

/* What a parameter takes, for the message. */
static void qallowed(const qparam *q, char *buf, size_t cap) {
  char list[140];
  switch (q->kind) {
  case Q_PAGE_SIZE: snprintf(buf, cap, "one of 10, 20, 50, 100, 250"); break;
  case Q_PAGE_NUMBER: snprintf(buf, cap, "a whole number from 1"); break;
  case Q_ENUM:
    list_values(q->values, list, sizeof list);
    snprintf(buf, cap, "one of %s", list);
    break;
  case Q_SORT:
    list_values(q->values, list, sizeof list);
    snprintf(buf, cap, "a comma-separated list of %s", list);
    break;
  case Q_BOOL: snprintf(buf, cap, "true or false"); break;
  case Q_DATE: snprintf(buf, cap, "a date (YYYY-MM-DD)"); break;
  case Q_LANG3: snprintf(buf, cap, "three lower-case letters (ISO 639-2, e.g. nld)"); break;
  }
}

enum { QBAD_VALUE, QBAD_ENCODING, QBAD_REPEATED };

/* A violation at "?name": the parameter, what it takes and what came. */
static int qadd(okegw_violations *out, const qparam *q, int why, const char *got) {
  char ptr[140], allowed[168], msg[256];
  snprintf(ptr, sizeof ptr, "?%s", q->name);
  qallowed(q, allowed, sizeof allowed);
  if (why == QBAD_ENCODING)
    snprintf(msg, sizeof msg, "%.30s must be %s; its value is not percent-encoded text", q->name,
             allowed);
  else if (why == QBAD_REPEATED)
    snprintf(msg, sizeof msg, "%.30s is given more than once; give it once (%s)", q->name, allowed);
  else
    snprintf(msg, sizeof msg, "%.30s must be %s; got '%.40s'", q->name, allowed, got);
  return violations_add(out, ptr, q->kind == Q_PAGE_SIZE ? "R6" : "R10", msg);
}

int okegw_validate_query(int interaction, const char *query, okegw_violations *out) {
  if (!out)
    return -1;
  if (interaction < 0 || interaction >= OKE_INTERACTION_END || !query_rules[interaction] || !query)
    return (int)out->n;
  const qparam *rules_q = query_rules[interaction];
  unsigned seen = 0; /* one bit per row: a repeated single value is ambiguous */
  for (const char *p = query; *p;) {
    size_t len = strcspn(p, "&");
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    char key[128], val[256];
    if (klen && klen < sizeof key && okegw_url_decode(p, klen, key, sizeof key, 1) >= 0) {
      for (size_t i = 0; rules_q[i].name; i++) {
        const qparam *q = &rules_q[i];
        if (strcmp(key, q->name) != 0)
          continue;
        const char *v = eq ? eq + 1 : p + len;
        size_t vlen = eq ? len - klen - 1 : 0;
        long dl = okegw_url_decode(v, vlen, val, sizeof val, 1);
        int rc = 0;
        if (dl < 0 || strlen(val) != (size_t)dl)
          rc = qadd(out, q, QBAD_ENCODING, NULL);
        else if (q->kind != Q_SORT && (seen & (1u << i)))
          rc = qadd(out, q, QBAD_REPEATED, NULL);
        else if (!qvalue_ok(q, val))
          rc = qadd(out, q, QBAD_VALUE, val);
        if (rc < 0)
          return -1;
        seen |= 1u << i;
        break;
      }
    }
    p += len;
    if (*p == '&')
      p++;
  }
  return (int)out->n;
}

/* ---- problem+json ----------------------------------------------------- */

static const char *title_for(int status) {
  switch (status) {
  case 422: return "Unprocessable Content";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  default: return "Bad Request";
  }
}

char *okegw_violations_problem(const okegw_violations *v, int status) {
  size_t n = v ? v->n : 0;
  char st[16], detail[64];
  snprintf(st, sizeof st, "%d", status);
  snprintf(detail, sizeof detail, "%zu violation(s) of the OKE profile", n);
  cJSON *o = cJSON_CreateObject();
  cJSON *errors = NULL;
  int ok = o && cJSON_AddStringToObject(o, "type", "about:blank") &&
           cJSON_AddStringToObject(o, "title", title_for(status)) &&
           cJSON_AddStringToObject(o, "status", st) &&
           cJSON_AddStringToObject(o, "detail", detail) &&
           (errors = cJSON_AddArrayToObject(o, "errors")) != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(errors, e)) {
      cJSON_Delete(e);
      ok = 0;
      break;
    }
    /* e belongs to errors now: freed with o. */
    /* a query parameter's violation names the parameter: it has no pointer */
    int param = v->v[i].pointer[0] == '?';
    ok = cJSON_AddStringToObject(e, param ? "parameter" : "pointer",
                                 v->v[i].pointer + (param ? 1 : 0)) &&
         cJSON_AddStringToObject(e, "detail", v->v[i].message) &&
         cJSON_AddStringToObject(e, "rule", v->v[i].rule ? v->v[i].rule : "");
  }
  if (ok && v && v->truncated)
    ok = cJSON_AddTrueToObject(o, "truncated") != NULL;
  char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return s;
}

char *okegw_violations_evidence(const okegw_violations *v, const char *side, size_t max) {
  cJSON *a = cJSON_CreateArray();
  int ok = a != NULL;
  for (size_t i = 0; ok && v && i < v->n && i < max; i++) {
    cJSON *e = cJSON_CreateObject();
    ok = e && cJSON_AddItemToArray(a, e);
    if (!ok) {
      cJSON_Delete(e);
      break;
    }
    ok = cJSON_AddStringToObject(e, "rule", v->v[i].rule ? v->v[i].rule : "") &&
         cJSON_AddStringToObject(e, "pointer", v->v[i].pointer) &&
         cJSON_AddStringToObject(e, "side", side);
  }
  char *s = ok ? cJSON_PrintUnformatted(a) : NULL;
  cJSON_Delete(a);
  return s;
}
