#!/usr/bin/env python3
"""A PostgreSQL for the benchmarks (tests/integration/pgtest.py: initdb and pg_ctl in a folder
of DIR, on a free port of 127.0.0.1, as an unprivileged user when run as root). Prints
`psql PATH`, `pid PID` (the postmaster's: its process tree is the server), `url URI` (the
superuser's URI without a database name: append `/NAME` after creating NAME) and `ready`, and
runs until SIGTERM, when it stops the server and removes its folder. Prints `skip REASON` and
exits 0 when PostgreSQL's server binaries are missing.

    python3 tests/bench/pg_server.py DIR [NAME=VALUE ...]

NAME=VALUE: server settings (postgres -c), e.g. synchronous_commit=off, or
shared_preload_libraries=pg_stat_statements to see where the server's time goes.
"""
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import pgtest  # noqa: E402


def main():
    why = pgtest.skip_reason()
    if why:
        print("skip " + why, flush=True)
        return 0
    settings = dict(a.split("=", 1) for a in sys.argv[2:])
    server = pgtest.PgServer(workdir=sys.argv[1], settings=settings)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        url = server.url(dbname="postgres")
        print("psql " + server.psql_bin, flush=True)
        with open(os.path.join(server.datadir, "postmaster.pid")) as f:
            print("pid " + f.readline().strip(), flush=True)
        print("url " + url[:url.rindex("/")], flush=True)
        print("ready", flush=True)
        while True:
            signal.pause()
    finally:
        server.stop(check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
