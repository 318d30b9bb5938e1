/* okegw sim: the built-in simulated supplier (plugins/sim) served on its own
 * as a plain-HTTP OKE server, so a second connector (plugin = ooapi) can be
 * pointed at a supplier on the same machine with nothing else installed.
 * It answers what a TPL asks a TA (flows 0 and 2) and GET / (R31); it is a
 * demo and test peer, not an exam server: no TLS, no credentials checked. */
#ifndef OKEGW_SIM_SERVER_H
#define OKEGW_SIM_SERVER_H

/* okegw sim --listen HOST:PORT [--seed TEXT] [--access-url-base URL]
 *           [--log-level LEVEL]
 * Runs until SIGINT or SIGTERM. Returns the exit code: 0 after a clean stop,
 * 1 when it cannot start, 2 on bad usage. */
int okegw_sim_main(int argc, char **argv);

#endif
