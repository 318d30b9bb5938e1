/* The control socket: a Unix socket next to the store through which
 * `okegw reload -c FILE` asks the running gateway to reload and hears
 * whether it took the file, and why not. Only the gateway's own user can
 * connect (mode 0600). One request per connection: the line "reload FILE",
 * answered with "ok" or "refused" and then the report, a line each. */
#ifndef OKEGW_CONTROL_H
#define OKEGW_CONTROL_H

#include "base/conf.h"

#include <stddef.h>
#include <uv.h>

typedef struct okegw_control okegw_control;

/* Reloads `file` (as okegw reload names it, made absolute) and fills
 * report; 0 when it was applied. */
typedef int (*okegw_control_reload_fn)(void *ud, const char *file, okegw_diag *report);

/* Listens on path (a stale socket file there is replaced). Returns 0, or -1
 * with the reason in why. */
int okegw_control_start(uv_loop_t *loop, const char *path, okegw_control_reload_fn reload, void *ud,
                        okegw_control **out, char *why, size_t whysz);
/* Stops listening, removes the socket file; NULL is fine. */
void okegw_control_stop(okegw_control *c);

/* okegw reload -c FILE: exit code 0 when the gateway took the file, 1 when
 * it refused it (or, with no gateway running, the file has errors), 2 for
 * bad arguments or no gateway to ask. */
int okegw_control_reload_command(int argc, char **argv);

#endif
