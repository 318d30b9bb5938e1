#!/usr/bin/env python3
"""Going live per supplier: the whole configuration reloaded (SIGHUP, `okegw reload`) while other
suppliers carry traffic, connectors added and removed (queued pushes wait, none lost or sent
twice, fini after the last exchange), a bad file changing nothing; and the phases off, shadow,
pilot and live as production and acceptance callers see them: mirrors with their differences
audited, a shadow supplier's results withheld, pilots by component and organization, and a
narrower phase that never strands a zitting in progress."""
import datetime
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, main,  # noqa: E402
                       make_association, make_components, make_offering, ooapi_connector,
                       request, run_okegw, time_scale)

TOKENS = {"alpha": "alpha-calls-okegw-0001", "beta": "beta-calls-okegw-00002",
          "gamma": "gamma-calls-okegw-0003", "north": "north-tpl-calls-okegw-3",
          "acc": "acceptance-tpl-calls-004"}

RESULT = {"associationType": "componentOfferingAssociation",
          "result": {"state": "completed", "resultDate": "2026-06-16", "weight": 100, "score": "7.5",
                     "pass": "passed",
                     "consumers": [{"consumerKey": "nl-test-admin", "attendance": "present"}]}}

CATALOGUE = "/ooapi/components?componentType=test&pageSize=100"


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def ta(peer, name, **kw):
    return (name, ooapi_connector(peer, inbound_token=TOKENS[name], retry_first_ms=100,
                                  retry_max_ms=200, **kw))


def tpl(peer, name, **kw):
    d = {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": peer.base_url,
         "inbound_token": TOKENS[name]}
    d.update(kw)
    return (name, d)


def ids(g, who):
    r = g.request("GET", CATALOGUE, headers=auth(who))
    check(r.status == 200, "catalogue for %s: %s" % (who, r.short()))
    return {c["componentId"] for c in r.json()["items"]}


def plan(g, peer, who, planner, component=None, **offering):
    """`who` plans a zitting with one deelname at the supplier `peer`; its peer `planner` then
    knows both (so it takes results for them)."""
    o = make_offering(component or peer.catalogue[0]["componentId"])
    o.update(offering)
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth(who))
    check_2xx(r, "PUT offering by %s" % who)
    s = make_association(o["offeringId"])
    check_2xx(g.request("PUT", "/ooapi/associations/" + s["associationId"], s, headers=auth(who)),
              "PUT association by %s" % who)
    planner.offerings[o["offeringId"]] = {"offeringId": o["offeringId"]}
    planner.associations[s["associationId"]] = {"associationId": s["associationId"]}
    return o, s


def reload(t, g, expect_rc=0):
    """okegw reload -c FILE against the running gateway; returns its output."""
    rc, out = run_okegw(t.binary, ["reload", "-c", g.conf_path], timeout=30)
    check(rc == expect_rc, "okegw reload exited %d (expected %d):\n%s" % (rc, expect_rc, out))
    return out


def audit(t, g, **filters):
    rc, out = run_okegw(t.binary, ["audit", "-c", g.conf_path, "--limit", "100000"])
    check(rc == 0, "okegw audit: %s" % out)
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [r for r in rows if all(r.get(k) == v for k, v in filters.items())]


def wait_for(pred, what, timeout=5.0):
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s" % what)


class Traffic:
    """Requests of one production caller in a loop (catalogue and one component), counted."""

    def __init__(self, g, who, component):
        self.g, self.who, self.component = g, who, component
        self.ok = 0
        self.failed = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stopping:
            path = CATALOGUE if i % 2 else "/ooapi/components/" + self.component
            try:
                r = self.g.request("GET", path, headers=auth(self.who))
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failed.append("%s: %s" % (path, r.short()))
            except Exception as e:  # a refused or cut connection is a failed request too
                self.failed.append("%s: %r" % (path, e))
            i += 1

    def stop(self):
        self.stopping = True
        self.thread.join()


# ---- reload ----------------------------------------------------------------------------------

def test_connector_added_by_reload_under_traffic(t):
    """A connector added by a reload is in the merged catalogue within 1 s while another supplier
    carries continuous traffic; not one of those requests fails (SIGHUP and okegw reload)."""
    a = t.peer(make_components(3), name="alpha")
    b = t.peer(make_components(2, name_fmt="Beta {i:02d}"), name="beta")
    c = t.peer(make_components(2, name_fmt="Gamma {i:02d}"), name="gamma")
    north = t.peer([], name="north")
    base = [ta(a, "alpha"), tpl(north, "north")]
    g = t.gateway(conf(base))
    check(ids(g, "north") == {x["componentId"] for x in a.catalogue}, "alpha's catalogue")
    load = Traffic(g, "north", a.catalogue[0]["componentId"])
    try:
        time.sleep(0.3)
        g.write_conf(conf(base + [ta(b, "beta")]))
        started = time.monotonic()
        out = reload(t, g)
        check("added: beta" in out and "took" in out, "okegw reload's report: %s" % out)
        want = {x["componentId"] for x in a.catalogue + b.catalogue}
        wait_for(lambda: ids(g, "north") == want, "beta in the catalogue", timeout=1.0)
        check(time.monotonic() - started < 1.0 * time_scale(), "beta took over 1 s to appear")
        # and by SIGHUP, a third one
        g.write_conf(conf(base + [ta(b, "beta"), ta(c, "gamma")]))
        g.proc.send_signal(signal.SIGHUP)
        want |= {x["componentId"] for x in c.catalogue}
        wait_for(lambda: ids(g, "north") == want, "gamma in the catalogue", timeout=1.0)
        time.sleep(0.5)
    finally:
        load.stop()
    check(load.ok > 10, "too little traffic to tell: %d requests" % load.ok)
    check(not load.failed, "%d of %d requests failed during the reloads: %s"
          % (len(load.failed), load.ok + len(load.failed), load.failed[:3]))
    # the report of a reload that changes nothing
    out = reload(t, g)
    check("4 connector(s) kept" in out, "a reload without changes: %s" % out)


def test_bad_file_changes_nothing(t):
    """A file with an error (a value, a plugin, a mapping) changes nothing: okegw reload exits 1
    naming FILE:LINE, SIGHUP logs the refusal, and the running configuration keeps serving."""
    a = t.peer(make_components(2), name="alpha")
    north = t.peer([], name="north")
    good = conf([ta(a, "alpha"), tpl(north, "north")])
    g = t.gateway(good)
    before = ids(g, "north")
    for what, text, needle in (
            ("a bad value", good.replace("phase = live", "phase = sometimes", 1), "phase"),
            ("an unknown plugin", good + "\n[connector delta]\nplugin = /nonexistent/delta.so\n",
             "delta"),
            ("a pilot without a subset", good.replace("phase = live", "phase = pilot", 1),
             "pilot_components"),
            ("a removed TA and a typo", conf([tpl(north, "north")]) + "listen_typo = 1\n", "")):
        g.write_conf(text)
        rc, out = run_okegw(t.binary, ["reload", "-c", g.conf_path], timeout=30)
        check(rc == 1, "%s: okegw reload exited %d: %s" % (what, rc, out))
        check("%s:" % g.conf_path in out and needle in out and "keeps its configuration" in out,
              "%s: the report should name the file and line: %s" % (what, out))
        check(ids(g, "north") == before, "%s: the catalogue changed" % what)
    # SIGHUP with the bad file: refused in the log, nothing changes
    g.proc.send_signal(signal.SIGHUP)
    check(g.wait_log(lambda r: r.get("msg", "").startswith("reload refused"), 5.0),
          "SIGHUP with a bad file: no refusal logged: %s" % g.stderr_tail())
    check(ids(g, "north") == before, "SIGHUP with a bad file changed the catalogue")
    g.write_conf(good)
    reload(t, g)
    # a control client that says nothing, and one that says something else, do not keep the
    # gateway from stopping
    sock = os.path.join(g.workdir, "okegw.db.ctl")
    idle = connect_unix(sock)
    other = connect_unix(sock)
    other.sendall(b"shutdown\n")
    check(other.recv(4096).startswith(b"refused\n"), "an unknown request was not refused")
    other.close()
    check(os.stat(sock).st_mode & 0o077 == 0, "the control socket is open to others")
    rc = g.stop()
    idle.close()
    check(rc == 0, "okegw exited %s with an idle control client" % rc)
    # no gateway: exit 2, the socket named
    rc, out = run_okegw(t.binary, ["reload", "-c", g.conf_path])
    check(rc == 2 and ".ctl" in out, "okegw reload without a gateway: %d %s" % (rc, out))


def connect_unix(path):
    """Connects to a Unix socket whose path may be longer than sun_path allows (deep build
    directories): through the directory's descriptor, as the gateway itself does."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock.connect("/proc/self/fd/%d/%s" % (fd, os.path.basename(path)))
    finally:
        os.close(fd)
    return sock


def test_removed_connector_keeps_its_pushes(t):
    """Pushes queued for a connector a reload removes stay in the outbox: not sent while it is
    gone, each delivered once when it comes back; an attempt under way ends on the old instance,
    and its plugin is unloaded (fini) only after that."""
    a = t.peer(make_components(2), name="alpha")
    north = t.peer([], name="north")
    with_alpha = conf([ta(a, "alpha", delivery_wait_ms=200), tpl(north, "north")])
    without = conf([tpl(north, "north")])
    g = t.gateway(with_alpha)
    ids(g, "north")
    # one attempt under way (the peer takes 1.5 s) when alpha is removed
    a.delay = 1.5
    slow = make_offering(a.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + slow["offeringId"], slow, headers=auth("north"))
    check(r.status == 202, "the slow push should be under way: %s" % r.short())
    wait_for(lambda: a.find("PUT", "/offerings/" + slow["offeringId"]), "the slow push at alpha")
    arrived = time.time()  # the peer answers 1.5 s after it got the request
    g.write_conf(without)
    out = reload(t, g)
    check("removed: alpha" in out, "report: %s" % out)
    unloaded = g.wait_log(lambda x: x.get("msg") == "connector 'alpha' unloaded", 6.0)
    check(unloaded, "alpha was not unloaded after its attempt: %s" % g.stderr_tail())
    t_unloaded = datetime.datetime.strptime(unloaded["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    check(t_unloaded >= arrived + 1.2, "fini before the attempt under way ended: unloaded %.3f, "
          "request %.3f" % (t_unloaded, arrived))
    # pushes while alpha is gone: never routed there (no owner), so queue some while down
    a.delay = 0
    g.write_conf(with_alpha)
    reload(t, g)
    a.down()
    queued = []
    for _ in range(3):
        o = make_offering(a.catalogue[1]["componentId"])
        r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("north"))
        check(r.status == 202, "push while alpha is down: %s" % r.short())
        queued.append(o["offeringId"])
    g.write_conf(without)
    reload(t, g)
    a.up()
    mark = a.mark()
    time.sleep(1.0)
    check(a.find("PUT", since=mark) == [], "a removed connector's pushes went out: %r"
          % a.find("PUT", since=mark))
    g.write_conf(with_alpha)
    reload(t, g)
    for oid in queued:
        wait_for(lambda: a.find("PUT", "/offerings/" + oid), "queued push %s delivered" % oid)
    time.sleep(0.5)
    for oid in queued + [slow["offeringId"]]:
        n = len(a.find("PUT", "/offerings/" + oid))
        check(n == 1, "zitting %s reached alpha %d times" % (oid, n))
    rc, out = run_okegw(t.binary, ["deliveries", "list", "-c", g.conf_path, "--json"])
    states = [json.loads(x)["state"] for x in out.splitlines() if x.startswith("{")]
    check(states and all(s == "delivered" for s in states), "delivery states: %r" % states)


# ---- phases ----------------------------------------------------------------------------------

def setup(t, beta_kw=None, extra=()):
    """alpha live, beta in the given phase, north a production TPL, acc an acceptance TPL."""
    a = t.peer(make_components(2), name="alpha")
    b = t.peer(make_components(2, name_fmt="Beta {i:02d}"), name="beta")
    north = t.peer([], name="north")
    acc = t.peer([], name="acc")
    conns = [ta(a, "alpha"), ta(b, "beta", **(beta_kw or {})), tpl(north, "north"),
             tpl(acc, "acc", acceptance="yes")] + list(extra)
    return t.gateway(conf(conns)), a, b, north, acc, conns


def test_shadow_is_seen_by_acceptance_only(t):
    """shadow: not in a production caller's catalogue, its zittingen 503 naming the phase;
    an acceptance caller sees it as live and plans there."""
    g, a, b, north, acc, _ = setup(t, {"phase": "shadow"})
    alpha_ids = {x["componentId"] for x in a.catalogue}
    beta_ids = {x["componentId"] for x in b.catalogue}
    check(ids(g, "north") == alpha_ids, "production catalogue: %r" % ids(g, "north"))
    check(ids(g, "acc") == alpha_ids | beta_ids, "acceptance catalogue")
    o = make_offering(b.catalogue[0]["componentId"])
    mark = b.mark()
    p = check_problem(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o,
                                headers=auth("north")), 503, "a production zitting at shadow")
    check(p.get("connector") == "beta" and "shadow" in p.get("detail", ""), "problem: %r" % p)
    check(b.non_catalogue(since=mark) == [], "the shadow supplier got production work")
    check_problem(g.request("GET", "/ooapi/components/" + b.catalogue[1]["componentId"],
                            headers=auth("north")), 503, "a production read of a shadow test")
    plan(g, b, "acc", acc)
    rows = audit(t, g, connector="beta", event="request")
    check(rows and all(r.get("phase") == "shadow" for r in rows), "audit phase: %r" % rows[:2])


def test_mirror_compares_and_never_delays(t):
    """mirror_of: gamma gets a copy of what goes to alpha, mapped on its own; the caller hears
    alpha only; differences are audited per field; gamma down never delays alpha; gamma's
    result for a mirrored deelname is withheld from the production planner."""
    a = t.peer(make_components(2), name="alpha")
    c = t.peer(list(a.catalogue), name="gamma")
    north = t.peer([], name="north")
    acc = t.peer([], name="acc")
    # the mirror comes first in the file and offers the same tests: they stay alpha's
    conns = [ta(c, "gamma", phase="shadow", mirror_of="alpha", delivery_wait_ms=3000),
             ta(a, "alpha", delivery_wait_ms=3000),
             tpl(north, "north"), tpl(acc, "acc", acceptance="yes")]
    g = t.gateway(conf(conns))
    check(len(ids(g, "north")) == 2 and len(ids(g, "acc")) == 2, "catalogue (acceptance last)")
    o, s = plan(g, a, "north", north)
    oid, aid = o["offeringId"], s["associationId"]
    wait_for(lambda: c.find("PUT", "/associations/" + aid), "the mirrored deelname at gamma")
    check(len(c.find("PUT", "/offerings/" + oid)) == 1, "gamma got no copy of the zitting")
    # a read: gamma answers differently; the caller sees alpha's answer
    c.canned[("GET", "/offerings/" + oid)] = (200, dict(o, name=[{"language": "nl-NL",
                                                                   "value": "Anders"}]))
    r = g.request("GET", "/ooapi/offerings/" + oid, headers=auth("north"))
    check(r.status == 200 and r.json()["name"] == o["name"], "the caller got: %s" % r.short())
    rows = wait_for(lambda: [x for x in audit(t, g, connector="gamma", event="mirror")
                             if x.get("interaction") == "flow2.get_offering"], "the mirror row")
    d = rows[-1].get("differences")
    check(rows[-1].get("phase") == "shadow" and isinstance(d, list) and
          {"pointer": "/name/0/value", "change": "value"} in d, "mirror differences: %r" % rows[-1])
    same = [x for x in audit(t, g, connector="gamma", event="mirror")
            if x.get("interaction") == "flow2.put_offering"]
    check(same and same[0].get("differences") == [], "an identical answer: %r" % same)
    # gamma down: alpha's delivery is answered at once, gamma's copy waits on its own
    c.down()
    o2 = make_offering(a.catalogue[1]["componentId"])
    started = time.monotonic()
    r = g.request("PUT", "/ooapi/offerings/" + o2["offeringId"], o2, headers=auth("north"))
    took = time.monotonic() - started
    check(r.status == 201, "the live push with its mirror down: %s" % r.short())
    check(took < 1.0 * time_scale(), "the live push waited %.2f s for its mirror" % took)
    check(len(a.find("PUT", "/offerings/" + o2["offeringId"])) == 1, "alpha got no zitting")
    c.up()
    wait_for(lambda: c.find("PUT", "/offerings/" + o2["offeringId"]), "the copy once gamma is up")
    # gamma reports on the mirrored deelname: recorded, never forwarded to north
    mark = north.mark()
    r = g.request("PATCH", "/ooapi/associations/" + aid, RESULT, headers=auth("gamma"))
    check(r.status == 200 and r.header("Okegw-Withheld") == "shadow", "withheld: %s" % r.short())
    time.sleep(0.3)
    check(north.find("PATCH", since=mark) == [], "the shadow result reached the production TPL")
    check(audit(t, g, connector="gamma", event="withheld"), "no withheld audit row")
    # alpha's result does reach north
    r = g.request("PATCH", "/ooapi/associations/" + aid, RESULT, headers=auth("alpha"))
    check(r.status == 200 and len(north.find("PATCH", "/associations/" + aid)) == 1,
          "alpha's result: %s" % r.short())
    # a zitting the acceptance planner made: gamma's result for its copy goes there
    _, s2 = plan(g, a, "acc", acc)
    wait_for(lambda: c.find("PUT", "/associations/" + s2["associationId"]), "the acceptance copy")
    r = g.request("PATCH", "/ooapi/associations/" + s2["associationId"], RESULT,
                  headers=auth("gamma"))
    check(r.status == 200 and r.header("Okegw-Withheld") is None and
          len(acc.find("PATCH", "/associations/" + s2["associationId"])) == 1,
          "the shadow result for an acceptance planner's zitting: %s" % r.short())


def test_pilot_by_component_and_organization(t):
    """pilot: production zittingen inside pilot_components / pilot_organizations go there, others
    get 503 naming the pilot; production callers see only the pilot components; acceptance
    callers everything."""
    org_in, org_out = "a1b2c3d4-0000-4000-8000-000000000001", "a1b2c3d4-0000-4000-8000-000000000002"
    g, a, b, north, acc, conns = setup(t)
    b_in, b_out = b.catalogue[0]["componentId"], b.catalogue[1]["componentId"]
    conns[1] = ta(b, "beta", phase="pilot", pilot_components=b_in.upper(),
                  pilot_organizations=org_in, phase_reason="GO pilot")
    g.write_conf(conf(conns))
    out = reload(t, g)
    check("phase live -> pilot: GO pilot" in out, "report: %s" % out)
    alpha_ids = {x["componentId"] for x in a.catalogue}
    check(ids(g, "north") == alpha_ids | {b_in}, "production sees the pilot tests only")
    check(ids(g, "acc") == alpha_ids | {b_in, b_out}, "acceptance sees all")
    plan(g, b, "north", north, component=b_in, organization=org_in)
    for comp, org, what in ((b_out, org_in, "a test outside the pilot"),
                            (b_in, org_out, "an organization outside the pilot"),
                            (b_in, None, "no organization")):
        o = make_offering(comp)
        if org:
            o["organization"] = org
        p = check_problem(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o,
                                    headers=auth("north")), 503, what)
        check("pilot" in p.get("detail", "") and p.get("connector") == "beta", "%s: %r" % (what, p))
    plan(g, b, "acc", acc, component=b_out)


def test_live_to_off_keeps_the_zitting_in_progress(t):
    """live -> off: new zittingen are refused (503 naming the phase), the zitting in progress
    keeps flowing: its result reaches its TPL, its cancel reaches the supplier."""
    g, a, b, north, acc, conns = setup(t)
    o, s = plan(g, b, "north", north)
    conns[1] = ta(b, "beta", phase="off", phase_reason="stop na incident")
    g.write_conf(conf(conns))
    reload(t, g)
    check(ids(g, "north") == {x["componentId"] for x in a.catalogue}, "off is not in the catalogue")
    o2 = make_offering(b.catalogue[1]["componentId"])
    p = check_problem(g.request("PUT", "/ooapi/offerings/" + o2["offeringId"], o2,
                                headers=auth("north")), 503, "a new zitting at an off supplier")
    check("off" in p.get("detail", "") and p.get("connector") == "beta", "problem: %r" % p)
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], RESULT, headers=auth("beta"))
    check(r.status == 200, "the result of a zitting in progress: %s" % r.short())
    check(len(north.find("PATCH", "/associations/" + s["associationId"])) == 1,
          "the result did not reach north")
    cancel = {"associationType": "componentOfferingAssociation", "state": "canceled"}
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], cancel,
                  headers=auth("north"))
    check(r.status == 200 and b.find("PATCH", "/associations/" + s["associationId"]),
          "the cancel of a deelname in progress: %s" % r.short())
    rc, out = run_okegw(t.binary, ["phases", "-c", g.conf_path, "--json", "--connector", "beta"])
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    check([(x["from"], x["to"], x["reason"]) for x in rows] ==
          [(None, "live", None), ("live", "off", "stop na incident")], "history: %r" % rows)


def test_second_supplier_shadow_to_live(t):
    """The chain with alpha live and beta taken from shadow to pilot to live by reloads: each
    step what north sees, a zitting with its result through beta at the end, and the history
    with each file's SHA-256."""
    g, a, b, north, acc, conns = setup(t, {"phase": "shadow", "phase_reason": "besluit EC 1"})
    alpha_ids = {x["componentId"] for x in a.catalogue}
    beta_ids = {x["componentId"] for x in b.catalogue}
    check(ids(g, "north") == alpha_ids, "shadow")
    plan(g, a, "north", north)  # the live supplier carries on throughout
    hashes = [hashlib.sha256(open(g.conf_path, "rb").read()).hexdigest()]
    steps = (({"phase": "pilot", "pilot_components": b.catalogue[0]["componentId"],
               "phase_reason": "GO pilot"}, alpha_ids | {b.catalogue[0]["componentId"]}),
             ({"phase": "live", "phase_reason": "GO live"}, alpha_ids | beta_ids))
    for kw, want in steps:
        conns[1] = ta(b, "beta", **kw)
        g.write_conf(conf(conns))
        reload(t, g)
        hashes.append(hashlib.sha256(open(g.conf_path, "rb").read()).hexdigest())
        check(ids(g, "north") == want, "%s: catalogue" % kw["phase"])
        plan(g, a, "north", north)
    o, s = plan(g, b, "north", north, component=b.catalogue[1]["componentId"])
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], RESULT, headers=auth("beta"))
    check(r.status == 200 and north.find("PATCH", "/associations/" + s["associationId"]),
          "beta's result: %s" % r.short())
    rc, out = run_okegw(t.binary, ["phases", "-c", g.conf_path, "--json", "--connector", "beta"])
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    check([(x["from"], x["to"], x["reason"], x["configSha256"]) for x in rows] ==
          [(None, "shadow", "besluit EC 1", hashes[0]), ("shadow", "pilot", "GO pilot", hashes[1]),
           ("pilot", "live", "GO live", hashes[2])], "history: %r" % rows)
    # a restart records nothing new; a change made while okegw was down is recorded at start
    conns[1] = ta(b, "beta", phase="off")
    g.restart(conf(conns))
    rc, out = run_okegw(t.binary, ["phases", "-c", g.conf_path, "--json", "--connector", "beta"])
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    check(len(rows) == 4 and (rows[-1]["from"], rows[-1]["to"]) == ("live", "off"),
          "history after a restart with a change: %r" % rows)


if __name__ == "__main__":
    main(globals())
