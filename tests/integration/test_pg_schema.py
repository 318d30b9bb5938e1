#!/usr/bin/env python3
"""okegw's schema in PostgreSQL (core/store/pg.c), against a real PostgreSQL this test starts
(pgtest.py): created on first use, left alone when current, refused when a newer okegw made it,
made once when instances start together, and no password in any message. pg_migrate (tests/pg)
runs the migration as an instance's start will. Without PostgreSQL's server binaries every case
is skipped with a note that says so."""
import os
import subprocess
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import check, main, time_scale, wrapper  # noqa: E402
import pgtest  # noqa: E402

TABLES = ["accept_runs", "accept_steps", "audit", "deliveries", "okegw_instances",
          "okegw_leases", "okegw_migrations", "phase_history", "routes"]
VERSION = 2  # OKEGW_PG_SCHEMA_VERSION


def migrate(t, url):
    """(exit code, output) of pg_migrate URL."""
    exe = os.path.join(os.path.dirname(t.args.plugins), "pg_migrate")
    p = subprocess.run(wrapper() + [exe, url], capture_output=True, timeout=60 * time_scale())
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace").strip()


def tables(server):
    out = server.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                      "ORDER BY tablename")
    return out.split()


def test_created_then_left_alone(t):
    server = pgtest.for_case(t)
    if not server:
        return
    rc, out = migrate(t, server.url())
    check(rc == 0 and out == "found 0", "first start on an empty database: %d %r" % (rc, out))
    check(tables(server) == TABLES, "tables: %r" % tables(server))
    rows = server.psql("SELECT version, okegw FROM okegw_migrations ORDER BY version")
    check([r.split("|")[0] for r in rows.split()[::2]] == [str(v) for v in range(1, VERSION + 1)]
          and rows.startswith("1|okegw "), "okegw_migrations: %r" % rows)
    # the partial indexes the outbox reads by
    idx = server.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries' "
                      "ORDER BY indexname").split()
    check(idx == ["deliveries_ended", "deliveries_kept", "deliveries_open", "deliveries_pkey",
                  "deliveries_requeue"], "deliveries' indexes: %r" % idx)
    rc, out = migrate(t, server.url())
    check(rc == 0 and out == "found %d" % VERSION, "second start: %d %r" % (rc, out))
    check(server.psql("SELECT count(*) FROM okegw_migrations") == str(VERSION),
          "a current schema is not migrated again")


def test_newer_schema_refused(t):
    server = pgtest.for_case(t)
    if not server:
        return
    check(migrate(t, server.url())[0] == 0, "first migration")
    server.psql("INSERT INTO okegw_migrations(version, okegw) VALUES (7, 'okegw 9.0.0')")
    rc, out = migrate(t, server.url())
    check(rc == 1 and "schema version 7, made by a newer okegw" in out and
          "knows up to version %d" % VERSION in out, "a newer schema: %d %r" % (rc, out))
    check(server.psql("SELECT count(*) FROM okegw_migrations") == str(VERSION + 1),
          "nothing written")


def test_version_1_upgraded(t):
    """A database an okegw of schema version 1 made (one instance, lease columns on deliveries)
    is brought to version 2 with its open deliveries kept: they get no lease until an
    instance loads them."""
    server = pgtest.for_case(t)
    if not server:
        return
    check(migrate(t, server.url())[0] == 0, "first migration")
    # back to what version 1 was
    server.psql("DROP TABLE okegw_leases; DROP TABLE okegw_instances; "
                "DROP FUNCTION okegw_now_ms(); ALTER TABLE deliveries ADD COLUMN lease_owner TEXT, "
                "ADD COLUMN lease_until_ms BIGINT; DROP INDEX deliveries_requeue; "
                "CREATE INDEX deliveries_requeue ON deliveries(id) WHERE requeue = 1; DELETE FROM okegw_migrations WHERE version = 2; "
                "INSERT INTO deliveries(created_ms, updated_ms, since_ms, connector, interaction, "
                "resource, method, path) VALUES (1, 1, 1, 'ta', 'flow3.patch_association', "
                "'/associations/a', 'PATCH', '/associations/a')")
    rc, out = migrate(t, server.url())
    check(rc == 0 and out == "found 1", "the upgrade: %d %r" % (rc, out))
    check(tables(server) == TABLES, "tables: %r" % tables(server))
    cols = server.psql("SELECT column_name FROM information_schema.columns WHERE table_name = "
                       "'deliveries' AND column_name LIKE 'lease%'")
    check(cols == "", "the lease columns went: %r" % cols)
    check(server.psql("SELECT count(*) FROM deliveries WHERE state = 'pending'") == "1",
          "the open delivery is kept")


def test_instances_starting_together(t):
    """Four instances start at once on an empty database: each waits for the schema lock, one
    creates the tables, the others find them; no error, one row per version."""
    server = pgtest.for_case(t)
    if not server:
        return
    results = []
    lock = threading.Lock()

    def one():
        r = migrate(t, server.url())
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    check(len(results) == 4 and all(rc == 0 for rc, _ in results),
          "every instance started: %r" % results)
    found = "found %d" % VERSION
    check(sorted(out for _, out in results) == ["found 0", found, found, found],
          "one made the schema, three found it: %r" % results)
    check(server.psql("SELECT count(*) FROM okegw_migrations") == str(VERSION),
          "one row per version")


def test_errors_name_no_password(t):
    server = pgtest.for_case(t)
    if not server:
        return
    secret = "Geheim-%d" % os.getpid()
    server.create_role("okegw_ro", secret)
    # a wrong password
    url = server.url(user="okegw_ro", password=secret + "x")
    rc, out = migrate(t, url)
    check(rc == 1 and "cannot connect to PostgreSQL at postgresql://okegw_ro:***@" in out and
          "password authentication failed" in out and secret not in out,
          "wrong password: %d %r" % (rc, out))
    # a user that may connect but not create tables: a clear refusal, nothing half made
    server.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    rc, out = migrate(t, server.url(user="okegw_ro", password=secret))
    check(rc == 1 and "cannot create okegw_migrations" in out and "CREATE" in out and
          secret not in out, "no CREATE privilege: %d %r" % (rc, out))
    check(tables(server) == [], "nothing created: %r" % tables(server))


if __name__ == "__main__":
    main(globals())
