#!/usr/bin/env python3
"""Two okegw instances on one PostgreSQL (this test starts it, pgtest.py), as a school runs them
behind its load balancer: a zitting planned through instance A gets its result through instance
B, back to the planning system that planned it; a reload of one instance does not disturb the
other; pushes of one resource through both leave in order, each once; a cleanly stopped instance
hands its resources over at once, a killed one after store_lease_s; an instance that lost the
database for longer than its lease finds its resources taken over and does not send them again.
Without PostgreSQL's server binaries every case is skipped with a note."""
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, conf, main, make_components, ooapi_connector,  # noqa: E402
                       poll, run_okegw)
from test_trust import RESULT, TOKENS, auth, plan, tpl_connector  # noqa: E402
import pgtest  # noqa: E402

LEASE_S = 12  # store_lease_s: the peers' timeout_ms (2 s) + 10 s
A_SECRET = "instance-a-%d" % os.getpid()


def pair(t, tpl_delay=None, own_role=False, b_without=None, **gateway):
    """(PostgreSQL, [A, B] gateways on one database, TA alpha, TPLs north and south), or None
    with the case skipped. own_role: A logs in as role okegw_a (password A_SECRET), which owns
    the database, B as the superuser: A can be cut off alone. b_without: a connector B's
    configuration lacks."""
    server = pgtest.for_case(t)
    if not server:
        return None
    if own_role:
        server.create_role("okegw_a", A_SECRET)
    server.create_db("okegw_pair", "okegw_a" if own_role else "postgres")
    a = t.peer(make_components(2), name="alpha")
    north = t.peer([], name="north")
    south = t.peer([], name="south")
    fast = {"timeout_ms": 2000, "connect_timeout_ms": 1000, "retry_first_ms": 100,
            "retry_max_ms": 300}
    slow = {}
    if tpl_delay:  # north answers late, and its senders hear 202 at once
        north.delay = tpl_delay
        slow = {"delivery_wait_ms": 0}
    text = conf([("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"], **fast)),
                 ("north", dict(tpl_connector(north, "north"), **fast, **slow)),
                 ("south", dict(tpl_connector(south, "south"), **fast))],
                store=server.url(dbname="okegw_pair"), store_lease_s=LEASE_S, **gateway)
    url_b = server.url(dbname="okegw_pair")
    url_a = server.url(user="okegw_a", password=A_SECRET, dbname="okegw_pair") if own_role \
        else url_b
    text_b = text
    if b_without:
        at = text.index("[connector %s]" % b_without)
        end = text.find("\n[connector ", at + 1)
        text_b = text[:at] + (text[end + 1:] if end >= 0 else "")
    gws = [t.gateway(tx.replace(url_b, url), subdir=sub)  # A first: it makes the tables
           for sub, url, tx in (("a", url_a, text), ("b", url_b, text_b))]
    for g in gws:
        check(g.request("GET", "/ooapi/components?componentType=test",
                        headers=auth("south")).status == 200, "catalogue")
    return server, gws, a, north, south


def phases(t, g):
    rc, out = run_okegw(t.binary, ["phases", "-c", g.conf_path, "--json"])
    check(rc == 0, "okegw phases: %s" % out)
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_planned_on_a_result_through_b(t):
    case = pair(t)
    if not case:
        return
    server, (ga, gb), alpha, north, south = case
    o, s = plan(ga, alpha, "north", north)
    oid, aid = o["offeringId"], s["associationId"]
    # flow 3 and flow 4 through the other instance: the route A wrote is B's too
    r = gb.request("PATCH", "/ooapi/associations/" + aid, RESULT, headers=auth("alpha"))
    check(r.status == 200, "flow-3 result through B: %s" % r.short())
    check(len(north.find("PATCH", "/associations/" + aid)) == 1, "north got the result")
    check(south.find("PATCH") == [], "south got nothing")
    report = {"offeringType": "component",
              "consumers": [{"consumerKey": "nl-test-admin", "irregularities": "geen"}]}
    check(gb.request("PATCH", "/ooapi/offerings/" + oid, report, headers=auth("alpha")).status
          == 200, "flow-4 report through B")
    check(len(north.find("PATCH", "/offerings/" + oid)) == 1, "north got the report")
    # south sees none of it through either instance
    for g in (ga, gb):
        r = g.request("GET", "/ooapi/associations/" + aid, headers=auth("south"))
        check(r.status == 404, "south reads north's deelname: %s" % r.short())
    # the delivery is one row, seen alike from both instances' configuration
    rc, out = run_okegw(t.binary, ["deliveries", "list", "-c", gb.conf_path, "--json"])
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    check(rc == 0 and [d["resourceId"] for d in rows if d["interaction"].startswith("flow3")]
          == [aid], "okegw deliveries list: %s" % out[-400:])


def test_reload_of_one_leaves_the_other(t):
    """A reloads with alpha in phase off (and back); B's traffic does not see a single failure,
    B keeps alpha live, and the phase history names the instance that changed it."""
    case = pair(t)
    if not case:
        return
    server, (ga, gb), alpha, north, south = case
    stop = threading.Event()
    stats = {"ok": 0, "failed": []}

    def traffic():
        i = 0
        while not stop.is_set():
            path = "/ooapi/components?componentType=test" if i % 2 else \
                "/ooapi/components/" + alpha.catalogue[0]["componentId"]
            try:
                r = gb.request("GET", path, headers=auth("north"))
                if r.status == 200:
                    stats["ok"] += 1
                else:
                    stats["failed"].append(r.short())
            except Exception as e:  # a cut connection counts too
                stats["failed"].append(repr(e))
            i += 1

    th = threading.Thread(target=traffic, daemon=True)
    th.start()
    comp = "/ooapi/components/" + alpha.catalogue[1]["componentId"]
    orig = ga.conf_text
    try:
        time.sleep(0.3)
        live = "[connector alpha]\nplugin = ooapi\nrole = ta\nphase = live"
        check(live in orig, "the configuration as written: %s" % orig)
        ga.write_conf(orig.replace(live, live.replace("live", "off")))
        rc, out = run_okegw(t.binary, ["reload", "-c", ga.conf_path], timeout=30)
        check(rc == 0 and "took" in out, "okegw reload of A: %s" % out)
        r = ga.request("GET", comp, headers=auth("north"))
        check(r.status == 503, "alpha is off on A: %s" % r.short())
        time.sleep(0.5)
        r = gb.request("GET", comp, headers=auth("north"))
        check(r.status == 200, "alpha is still live on B: %s" % r.short())
        ga.write_conf(orig)
        rc, out = run_okegw(t.binary, ["reload", "-c", ga.conf_path], timeout=30)
        check(rc == 0, "okegw reload of A back: %s" % out)
        time.sleep(0.3)
    finally:
        stop.set()
        th.join(10)
    check(stats["ok"] > 10, "too little traffic to tell: %d" % stats["ok"])
    check(not stats["failed"], "%d of B's requests failed during A's reloads: %s"
          % (len(stats["failed"]), stats["failed"][:3]))
    rows = [p for p in phases(t, gb) if p["connector"] == "alpha"]
    check([p["to"] for p in rows][-2:] == ["off", "live"], "alpha's history: %r" % rows)
    check(rows[-1].get("instance") and rows[-1]["instance"] == rows[-2]["instance"]
          and str(ga.proc.pid) in rows[-1]["instance"], "the instance is named: %r" % rows[-2:])


def push_results(g_list, aid, n, start=1):
    """n flow-3 results for deelname aid, numbered in result.comment, each through the next
    instance in turn; all must be accepted. Returns their statuses."""
    statuses = []
    for i in range(start, start + n):
        body = json.loads(json.dumps(RESULT))
        body["result"]["comment"] = "seq %d" % i
        g = g_list[i % len(g_list)]
        r = g.request("PATCH", "/ooapi/associations/" + aid, body, headers=auth("alpha"))
        check(r.status in (200, 202), "result %d through %s: %s"
              % (i, "AB"[i % len(g_list)], r.short()))
        statuses.append(r.status)
    return statuses


def received(peer, aid):
    """The comments of the results peer got for aid, in arrival order."""
    out = []
    for req in peer.find("PATCH", "/associations/" + aid):
        try:
            out.append(req.json["result"]["comment"])
        except (KeyError, TypeError):
            out.append("?")
    return out


def failing(peer, aid, on):
    """peer answers the results of aid with 503 (on) or takes them again."""
    if on:
        peer.canned[("PATCH", "/associations/" + aid)] = (503, {"status": 503, "title": "down"})
    else:
        peer.canned.pop(("PATCH", "/associations/" + aid), None)


def pending(server):
    return server.psql("SELECT count(*) FROM deliveries WHERE state = 'pending'",
                       dbname="okegw_pair")


def test_one_resource_through_both_in_order(t):
    """A slow planning system: results of one deelname alternate between A and B faster than it
    answers; the instance that holds the deelname's lease sends them all, in order, once
    each; the other hands its pushes over (202)."""
    case = pair(t, tpl_delay=0.05, log_level="debug")
    if not case:
        return
    server, gws, alpha, north, south = case
    o, s = plan(gws[0], alpha, "north", north)
    aid = s["associationId"]
    push_results(gws, aid, 30)
    want = ["seq %d" % i for i in range(1, 31)]
    poll("all 30 results at north", lambda: len(received(north, aid)) >= 30 or None, timeout=20)
    time.sleep(1.5)  # nothing more comes
    check(received(north, aid) == want, "north got %r" % received(north, aid))
    handed = sum(g.stderr_text().count("handed over to this instance") for g in gws)
    check(handed > 0, "no push went through the instance that does not hold the lease")
    left = server.psql("SELECT count(*) FROM okegw_leases", dbname="okegw_pair")
    check(left == "0", "the lease went with the last delivery: %s" % left)


def held_by_a(t, n, **kw):
    """North down; A holds a deelname planned through it, retrying n results pushed through it.
    (server, A, B, north, the deelname's id), or None with the case skipped."""
    case = pair(t, **kw)
    if not case:
        return None
    server, (ga, gb), alpha, north, south = case
    o, s = plan(ga, alpha, "north", north)
    aid = s["associationId"]
    failing(north, aid, True)
    push_results([ga], aid, n)
    poll("A retries", lambda: len(received(north, aid)) >= 2 or None, timeout=10)
    return server, ga, gb, north, aid


def test_clean_stop_hands_over_at_once(t):
    """North is down: A holds the deelname's deliveries, retrying. A stops (SIGTERM): B takes
    them over at its next poll, not a lease later, and delivers them once north is back."""
    case = held_by_a(t, 3)
    if not case:
        return
    server, ga, gb, north, aid = case
    owner = server.psql("SELECT owner FROM okegw_leases", dbname="okegw_pair")
    check(owner.split("/")[1:2] == [str(ga.proc.pid)], "A holds the lease: %r" % owner)
    ga.stop()
    mark = time.monotonic()  # once A is gone (under valgrind its exit takes a while)
    failing(north, aid, False)
    poll("B delivered them", lambda: received(north, aid)[-3:] == ["seq 1", "seq 2", "seq 3"]
         and pending(server) == "0" or None, timeout=10)
    took = time.monotonic() - mark
    check(took < LEASE_S - 4, "B took over in %.1f s, not at once" % took)
    got = received(north, aid)
    check(got[:got.index("seq 2")] == ["seq 1"] * got.index("seq 2"),
          "only seq 1 was tried before the hand-over: %r" % got)


def test_killed_instance_taken_over_after_its_lease(t):
    case = held_by_a(t, 2)
    if not case:
        return
    server, ga, gb, north, aid = case
    ga.kill()
    mark = time.monotonic()
    failing(north, aid, False)
    poll("B delivered them", lambda: received(north, aid)[-2:] == ["seq 1", "seq 2"]
         and pending(server) == "0" or None, timeout=LEASE_S + 10)
    took = time.monotonic() - mark
    check(took > LEASE_S - 3, "B took over after %.1f s, before A's lease (%d s) ran out"
          % (took, LEASE_S))
    owner = server.psql("SELECT count(*) FROM okegw_leases", dbname="okegw_pair")
    check(owner == "0", "no lease left once all is delivered: %s" % owner)


def test_cut_off_instance_lapses_and_lets_go(t):
    """A holds a deelname's deliveries (north down) and loses the database for longer than its
    lease: B takes them over and delivers them once north is back. When A reaches the database
    again it finds its leases lapsed, forgets what it held and sends nothing of it again; a new
    result through A still goes, after the others."""
    case = held_by_a(t, 2, own_role=True)
    if not case:
        return
    server, ga, gb, north, aid = case
    server.psql("ALTER ROLE okegw_a NOLOGIN")
    server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = "
                "'okegw_a'")
    poll("B holds the lease", lambda: server.psql(
        "SELECT count(*) FROM okegw_leases WHERE owner LIKE '%%/%d/%%'" % gb.proc.pid,
        dbname="okegw_pair") == "1" or None, timeout=LEASE_S + 10)
    failing(north, aid, False)
    poll("B delivered them", lambda: received(north, aid)[-2:] == ["seq 1", "seq 2"]
         and pending(server) == "0" or None, timeout=10)
    n = len(received(north, aid))
    server.psql("ALTER ROLE okegw_a LOGIN")
    check(ga.wait_log(lambda r: "leases lapsed" in r.get("msg", ""), 15.0),
          "A says its leases lapsed")
    time.sleep(2)
    check(len(received(north, aid)) == n, "A sent again what B delivered: %r"
          % received(north, aid)[n:])
    push_results([ga], aid, 1, start=3)
    poll("seq 3 delivered", lambda: received(north, aid)[-1:] == ["seq 3"] or None, timeout=10)
    got = received(north, aid)
    check([x for i, x in enumerate(got) if i == 0 or got[i - 1] != x] == ["seq 1", "seq 2",
                                                                          "seq 3"],
          "in order: %r" % got)


def test_a_connector_the_other_lacks(t):
    """B's configuration has no north (instances reloaded one after the other). A is killed
    holding north's deliveries: B does not take them over (it could not send them) and they
    wait; A started again takes them over once the dead one's lease ran out, and delivers."""
    case = held_by_a(t, 2, b_without="north")
    if not case:
        return
    server, ga, gb, north, aid = case
    ga.kill()
    failing(north, aid, False)
    time.sleep(LEASE_S + 3)
    mine = server.psql("SELECT count(*) FROM okegw_leases WHERE owner LIKE '%%/%d/%%'"
                       % gb.proc.pid, dbname="okegw_pair")
    check(mine == "0" and pending(server) == "2", "B took north's resource: %s leases, %s "
          "pending" % (mine, pending(server)))
    ga.start()
    poll("A delivered them", lambda: received(north, aid)[-2:] == ["seq 1", "seq 2"]
         and pending(server) == "0" or None, timeout=15)


if __name__ == "__main__":
    main(globals())
