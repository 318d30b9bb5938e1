#!/usr/bin/env python3
"""okegw on PostgreSQL (`store = postgresql://...`), against a real PostgreSQL this test starts
(pgtest.py): pushes stored and delivered, operator commands on the same database, the database
killed and back while okegw runs (pushes refused, not acknowledged, in between; ready again
after), no password in any message, and connector timeouts bounded by the lease. Several
instances on one database: test_pg_instances.py. The rest of the integration suite runs on
PostgreSQL too with OKEGW_TEST_PG=1 (the pg_* tests of ctest). Without PostgreSQL's server
binaries every case is skipped with a note."""
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (Okegw, Peer, check, check_2xx, conf, free_port, main,  # noqa: E402
                       make_components, make_offering, ooapi_connector, poll, request, run_okegw,
                       time_scale, wrapper)
import pgtest  # noqa: E402

FAST = {"retry_first_ms": 100, "retry_max_ms": 400, "delivery_wait_ms": 2000}
SECRET = "Geheim-%d" % os.getpid()


def pg(t):
    """A fresh PostgreSQL for this case with a role okegw (password SECRET) owning database
    okegw_gw, or None with the case skipped."""
    server = pgtest.for_case(t)
    if not server:
        return None
    server.create_role("okegw", SECRET)
    server.create_db("okegw_gw", "okegw")
    return server


def store_url(server):
    return server.url(user="okegw", password=SECRET, dbname="okegw_gw")


def gateway(t, server, peer, subdir=None, start=True, **kw):
    admin = free_port()
    text = conf([("ta", ooapi_connector(peer, **FAST))], store=store_url(server),
                admin_listen="127.0.0.1:%d" % admin, **kw)
    g = t.gateway(text, start=start, subdir=subdir)
    g.admin_port = admin
    return g


def setup(t):
    """(server, TA peer, a gateway on it with its catalogue fetched), or None: skipped."""
    server = pg(t)
    if not server:
        return None
    p = Peer(make_components(2), name="ta")
    t.cleanups.append(p.stop)
    g = gateway(t, server, p)
    flow0(g)
    return server, p, g


def start_fails(t, conf_path, cwd):
    """(exit code, stderr) of an okegw that is expected not to start."""
    proc = subprocess.run(wrapper() + [t.binary, "-c", conf_path], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60 * time_scale(), cwd=cwd)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def flow0(g, n=2):
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200 and len(r.json().get("items", [])) == n, "flow 0: %s" % r.short())


def push(g, p):
    o = make_offering(p.catalogue[0]["componentId"])
    return o["offeringId"], g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)


def okegw_cmd(t, g, *args):
    p = subprocess.run(wrapper() + [t.binary] + list(args) + ["-c", g.conf_path],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60 * time_scale())
    return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")


def test_pushes_and_commands(t):
    case = setup(t)
    if not case:
        return
    server, p, g = case
    ids = []
    for _ in range(5):
        oid, r = push(g, p)
        check_2xx(r, "push on PostgreSQL")
        ids.append(oid)
    check(len(p.find("PUT")) == 5, "the TA got the 5 pushes")
    # the rows are in the database, delivered, with their audit rows
    n = server.psql("SELECT count(*) FROM deliveries WHERE state = 'delivered'", dbname="okegw_gw")
    check(n == "5", "delivered rows: %r" % n)
    # operator commands read the same database
    rc, out, err = okegw_cmd(t, g, "deliveries", "list", "--json")
    rows = [json.loads(x) for x in out.splitlines() if x.strip()]
    check(rc == 0 and len(rows) == 5 and all(r["state"] == "delivered" for r in rows),
          "okegw deliveries list: %d %r %s" % (rc, rows, err))
    rc, out, err = okegw_cmd(t, g, "audit", "--resource", ids[0])
    check(rc == 0 and out.strip(), "okegw audit --resource: %d %r %s" % (rc, out, err))
    # a list longer than one fetch of its cursor (256 rows): every row, in id order (ended
    # now: rows that ended long ago would go with the outbox's retention prune)
    server.psql("INSERT INTO deliveries(created_ms, updated_ms, since_ms, connector, "
                "interaction, resource, method, path, state) SELECT now_ms, now_ms, now_ms, "
                "'ta', 'flow2.put_offering', 'r' || i, 'PUT', '/offerings/x', 'failed' FROM "
                "generate_series(1, 600) AS i, (SELECT (extract(epoch FROM now()) * 1000)::bigint "
                "AS now_ms) AS t", dbname="okegw_gw")
    rc, out, err = okegw_cmd(t, g, "deliveries", "list", "--json", "--limit", "1000")
    listed = [json.loads(x)["id"] for x in out.splitlines() if x.strip()]
    check(rc == 0 and len(listed) == 605 and listed == sorted(listed),
          "a 605-row list: %d rows, in order %s, %s" % (len(listed), listed == sorted(listed), err))
    check(SECRET not in g.stderr_tail(200), "the password is not in the log")


def test_database_down_and_back(t):
    case = setup(t)
    if not case:
        return
    server, p, g = case
    before, r = push(g, p)
    check_2xx(r, "push before")
    server.kill()
    # not acknowledged into nothing: refused while the database is gone
    oid, r = push(g, p)
    check(r.status == 503, "push while PostgreSQL is down: %s" % r.short())
    poll("/readyz not ready", lambda: request(g.admin_port, "GET", "/readyz").status == 503 or None,
         timeout=15)
    server.restart()
    ok = poll("pushes taken again", lambda: push(g, p)[1].status in (200, 201) or None,
              timeout=30)
    check(ok, "okegw connected again")
    poll("/readyz ready", lambda: request(g.admin_port, "GET", "/readyz").status == 200 or None,
         timeout=15)
    n = server.psql("SELECT count(*) FROM deliveries WHERE resource_id = '%s'" % before,
                    dbname="okegw_gw")
    check(n == "1", "the push acknowledged before the crash is there: %r" % n)
    check(SECRET not in g.stderr_tail(400), "the password is not in the log")


def test_lease_bounds_the_timeouts(t):
    """An attempt must end while its resource's lease surely holds: okegw -t refuses a
    connector timeout_ms the lease cannot cover, and so does a reload, which cannot change the
    running store_lease_s (a restart does)."""
    case = setup(t)
    if not case:
        return
    server, p, g = case
    long = g.conf_text.replace("timeout_ms = 5000", "timeout_ms = 25000")
    check(long != g.conf_text, "the configuration as written: %s" % g.conf_text)
    path = t.write("long.conf", long.replace("store = ", "store_lease_s = 30\nstore = ", 1))
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc != 0 and "timeout_ms (25000) needs store_lease_s of at least 35" in out,
          "okegw -t: %d %s" % (rc, out))
    g.write_conf(long.replace("store = ", "store_lease_s = 40\nstore = ", 1))
    rc, out = run_okegw(t.binary, ["reload", "-c", g.conf_path], timeout=30)
    check(rc == 1 and "needs store_lease_s of at least 35; the running one is 30 s" in out,
          "okegw reload: %d %s" % (rc, out))
    check_2xx(push(g, p)[1], "the running configuration carries on")


def test_bad_uri_and_unreachable(t):
    # checked by okegw -t, and the password never printed
    path = t.write("bad.conf", "[gateway]\nlisten = 127.0.0.1:0\n"
                   "store = postgresql://okegw:%s@127.0.0.1:5432/okegw?nosuch=1\n" % SECRET)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc != 0 and "store: " in out and "nosuch" in out and SECRET not in out,
          "okegw -t on a bad URI: %d %s" % (rc, out))
    # a database that does not answer: okegw does not start, and says where it tried
    port = free_port()
    path = t.write("down.conf", "[gateway]\nlisten = 127.0.0.1:0\n"
                   "store = postgresql://okegw:%s@127.0.0.1:%d/okegw?connect_timeout=3\n"
                   % (SECRET, port))
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 0, "a good URI passes okegw -t: %s" % out)
    g = Okegw(t.binary, open(path).read(), os.path.join(t.workdir, "down"))
    g.write_conf()
    rc, err = start_fails(t, g.conf_path, g.workdir)
    check(rc != 0 and
          ("cannot connect to PostgreSQL at postgresql://okegw:***@127.0.0.1:%d" % port) in err,
          "unreachable database: %d %s" % (rc, err[-600:]))
    check(SECRET not in err, "no password in the message")


if __name__ == "__main__":
    main(globals())
