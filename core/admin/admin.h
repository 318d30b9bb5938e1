/* Operator commands on the same binary: they open the store file directly
 * (okegw_store_open_direct) and read and change it only through the store's
 * interface, so they work whether or not the gateway runs. Only `deliveries
 * retry|drop` write to it, each in one short transaction. The functions
 * return the process's exit code. */
#ifndef OKEGW_ADMIN_H
#define OKEGW_ADMIN_H

/* okegw audit -c FILE [--resource ID] [--since TIME] [--until TIME] [--limit N]
 * Prints the matching audit rows as JSON lines, oldest first. TIME is RFC
 * 3339 in UTC (upper-case T and Z) or a prefix of it down to the date; --until
 * covers all of what it names. Exit code: 0, or 2 for bad arguments or an
 * unreadable store. */
int okegw_admin_audit(int argc, char **argv);

/* The outbox (table deliveries), oldest first:
 *   okegw deliveries list -c FILE [--connector NAME] [--state STATE] [--limit N] [--json]
 *   okegw deliveries show -c FILE ID
 *   okegw deliveries retry -c FILE ID [ID ...]
 *   okegw deliveries retry -c FILE --connector NAME [--state dead|failed]
 *   okegw deliveries drop -c FILE ID [ID ...]
 * STATE: pending, delivered, failed, dead or dropped.
 *
 * list prints a table (ID, CREATED, CONNECTOR, STATE, ATTEMPTS, LAST status,
 * INTERACTION, RESOURCE id, ERROR cut to 60 characters; "-" for none), at
 * most N rows (default 1000); with --json one object per line instead. The
 * objects (show prints one, indented; okegw_delivery_json in store.h) have
 * these members, null when unset:
 *   id, attempts, lastStatus          numbers
 *   connector, caller, interaction, resource, resourceId, requestId, method,
 *   path, query, contentType, bodySha256, state, lastError   strings
 *   createdAt, updatedAt              times (RFC 3339 UTC with milliseconds)
 *   windowStartedAt                   start of the current delivery window
 *                                     (the connector's maximum age counts
 *                                     from here)
 *   nextAttemptAt, deliveredAt        times
 *   bodyKeptUntil                     time the body is kept for troubleshooting
 *   requeue                           true while a running gateway has not yet
 *                                     picked up a retry or drop
 *   bodyKept                          whether the body is still stored
 * show adds "body": the body as a string, or null when it was not kept;
 * "bodyBytes": its length; "bodyEncoding": "base64" when the body is not
 * UTF-8 text and "body" holds it in base64.
 *
 * retry sets dead or failed deliveries back to pending with a new delivery
 * window; one whose body was not kept cannot be retried. --connector retries
 * every delivery of that connector in the given state (default dead). drop
 * gives up on pending, dead or failed deliveries and removes their body unless
 * it is kept until later. Both flag the row so a running gateway takes the
 * change within seconds, and print a line per delivery changed.
 *
 * Exit code: 0; 1 when a delivery is missing or refused (show: not found),
 * or the store fails; 2 for bad arguments or an unreadable store. */
int okegw_admin_deliveries(int argc, char **argv);

/* okegw phases -c FILE [--connector NAME] [--json] [--limit N]
 * The phase changes the gateway recorded (table phase_history), oldest
 * first: every connector's, or NAME's; with --limit only the last N. A
 * table (TIME in RFC 3339 UTC, CONNECTOR, FROM ("-" for a connector that
 * was new), TO, CONFIG: the first 12 hex digits of the configuration's
 * SHA-256, REASON: its phase_reason; "-" for none), or with --json one object
 * per line (okegw_phase_json in store.h): at (RFC 3339 UTC with
 * milliseconds), connector, from, to, reason, configSha256; null when unset.
 * Exit code: 0, or 2 for bad arguments or an unreadable store. */
int okegw_admin_phases(int argc, char **argv);

#endif
