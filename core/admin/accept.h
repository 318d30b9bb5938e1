/* okegw accept: runs the shipped ketentest scenarios (accept/ in the source,
 * installed in share/okegw/accept) as acceptance evidence.
 *
 *   okegw accept -c FILE --connector NAME [--scenarios DIR] [--only ID]... [-v]
 *     through the running gateway of FILE against connector NAME, as the
 *     acceptance systems of FILE (connectors with acceptance = yes, role tpl
 *     and dr, whose base_url is on this machine: the run plays them); every
 *     step's outcome is stored as an acceptance run (okegw report shows it).
 *
 *   okegw accept --base-url URL --role ta [--token T | --token-file F]
 *                [--set KEY=VALUE]... [--format text|json|html] [-o FILE] [--keep DIR] [-v]
 *     the conformance kit: starts a private gateway in front of a supplier's
 *     OKE API (no school systems needed), runs the TA-side scenarios (flows 0
 *     and 2, every request and answer checked against the profile) and prints
 *     the report on it.
 *
 * The scenarios are interpreted by the engine accept/okechain.py (Python 3,
 * standard library only), the same one the developer chain tests use; this
 * command starts it, reads its events (one JSON object per line), shows
 * progress and keeps the outcome. Exit code: 0 every scenario passed (kit:
 * and the verdict is GO), 1 a step failed, 2 bad arguments or setup. */
#ifndef OKEGW_ADMIN_ACCEPT_H
#define OKEGW_ADMIN_ACCEPT_H

int okegw_admin_accept(int argc, char **argv);

#endif
