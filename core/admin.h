/* Operator commands on the same binary: they read the store file directly
 * (read-only), so they work whether or not the gateway runs. */
#ifndef OKEGW_ADMIN_H
#define OKEGW_ADMIN_H

/* okegw audit -c FILE [--resource ID] [--since TIME] [--until TIME] [--limit N]
 * Prints the matching audit rows as JSON lines, oldest first. Exit code: 0,
 * or 2 for bad arguments or an unreadable store. */
int okegw_admin_audit(int argc, char **argv);

#endif
