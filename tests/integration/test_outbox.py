#!/usr/bin/env python3
"""The outbox: every push is stored first and then delivered from the store. A peer that is
down, slow or refusing; order per resource; dead letters held until an operator retries them;
deliveries that survive a restart; the status resource GET /deliveries/{id}; the audit rows of
each attempt; and retention of the stored bodies."""
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, Peer, TestFailure, check, check_problem, conf, main,  # noqa: E402
                       make_components, make_offering, ooapi_connector, time_scale, wrapper)

# fast retries, and a sender that waits at most 200 ms for the peer
FAST = {"retry_first_ms": 100, "retry_max_ms": 400, "delivery_wait_ms": 200}


# --------------------------------------------------------------------------
# helpers

def run(t, *args):
    """okegw with args (under OKEGW_WRAPPER, e.g. valgrind); returns (rc, stdout, stderr)."""
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60 * time_scale())
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def listed(t, g, *args):
    """`okegw deliveries list --json` as {id: row}."""
    rc, out, err = run(t, "deliveries", "list", "-c", g.conf_path, "--json", *args)
    check(rc == 0, "okegw deliveries list %s: exit %d: %s" % (" ".join(args), rc, err))
    rows = [json.loads(x) for x in out.splitlines() if x.strip()]
    return {r["id"]: r for r in rows}


def shown(t, g, id):
    rc, out, err = run(t, "deliveries", "show", "-c", g.conf_path, str(id))
    check(rc == 0, "okegw deliveries show %s: exit %d: %s" % (id, rc, err))
    return json.loads(out)


def audit_rows(t, g, resource):
    rc, out, err = run(t, "audit", "-c", g.conf_path, "--resource", resource)
    check(rc == 0, "okegw audit --resource %s: exit %d: %s" % (resource, rc, err))
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def setup_ta(t, n=2, peer_cls=Peer, **kw):
    """One TA connector 'ta' with kw as its keys; its catalogue fetched (flow 0)."""
    p = peer_cls(make_components(n), name="ta")
    t.cleanups.append(p.stop)
    g = t.gateway(conf([("ta", ooapi_connector(p, **kw))]))
    flow0(g, n)
    return g, p


def flow0(g, n, headers=None):
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50", headers=headers)
    check(r.status == 200 and len(r.json().get("items", [])) == n, "flow 0: %s" % r.short())


def put_named(g, o, value, headers=None):
    """PUT the offering with name value (the marker the peer records)."""
    o["name"][0]["value"] = value
    return g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=headers)


def accepted(r, what):
    """A 202 with its Location, Okegw-Delivery and status body; returns the delivery id."""
    check(r.status == 202, "%s: expected 202, got %s" % (what, r.short()))
    j = r.json()
    did = j.get("id")
    check(isinstance(did, int) and did > 0, "%s: 202 body without an id: %r" % (what, j))
    check(r.header("Location") == "/deliveries/%d" % did,
          "%s: Location %r for delivery %d" % (what, r.header("Location"), did))
    check(r.header("Okegw-Delivery") == str(did),
          "%s: Okegw-Delivery %r for delivery %d" % (what, r.header("Okegw-Delivery"), did))
    check(j.get("state") == "pending" and j.get("href") == "/deliveries/%d" % did
          and j.get("connector") and j.get("interaction") and j.get("resourceId"),
          "%s: 202 body: %r" % (what, j))
    return did


def names(peer, oid, since=0):
    """The name markers of the PUTs of offering oid the peer got, in arrival order."""
    out = []
    for rec in peer.find("PUT", "/offerings/" + oid, since=since):
        try:
            out.append(rec.json["name"][0]["value"])
        except (TypeError, KeyError, IndexError):
            out.append(None)
    return out


def collapse(seq):
    """seq without consecutive repeats (a repeat of the last one is at-least-once, not a reorder)."""
    out = []
    for x in seq:
        if not out or out[-1] != x:
            out.append(x)
    return out


def status(g, did, headers=None):
    r = g.request("GET", "/deliveries/%d" % did, headers=headers)
    check(r.status == 200, "GET /deliveries/%d: %s" % (did, r.short()))
    return r.json()


def wait_state(g, did, state, timeout=10.0, headers=None):
    return poll("delivery %d %s" % (did, state),
                lambda: (lambda j: j if j.get("state") == state else None)(status(g, did, headers)),
                timeout)


class FlakyPeer(Peer):
    """A Peer that first answers some requests with given statuses: fail[(method, rel)] is the
    list of statuses still to answer, one per request."""

    def __init__(self, *a, **kw):
        self.fail = {}
        super().__init__(*a, **kw)

    def handle(self, h, rec):
        with self.lock:
            plan = self.fail.get((rec.method, rec.rel))
            st = plan.pop(0) if plan else None
        if st is not None:
            return h._problem(st, "Temporarily unavailable", "try again later")
        return super().handle(h, rec)


# --------------------------------------------------------------------------
# tests

def test_peer_down_then_back(t):
    g, p = setup_ta(t, 3, **FAST)
    offs = [make_offering(c["componentId"]) for c in p.catalogue]
    p.down()
    ids = {o["offeringId"]: [] for o in offs}
    for k in range(1, 5):
        for o in offs:
            r = put_named(g, o, "seq %d" % k)
            ids[o["offeringId"]].append(accepted(r, "push %d of %s" % (k, o["offeringId"])))
    every = [d for v in ids.values() for d in v]
    check(len(set(every)) == len(every), "delivery ids repeat: %r" % ids)
    for oid, v in ids.items():
        check(v == sorted(v), "ids of %s not in storage order: %r" % (oid, v))
    check(not p.non_catalogue(), "the peer was down but got %r" % p.non_catalogue())
    h = g.request("GET", "/healthz").json()
    check(h.get("outbox") == len(every), "/healthz with the peer down: %r (want outbox %d)"
          % (h, len(every)))
    p.up()
    want = ["seq %d" % k for k in range(1, 5)]
    for o in offs:
        oid = o["offeringId"]
        poll("every push of %s at the peer" % oid, lambda: len(set(names(p, oid))) == 4, 15)
        got = names(p, oid)
        check(collapse(got) == want, "order of %s at the peer: %r" % (oid, got))
        check(p.offerings[oid]["name"][0]["value"] == "seq 4", "the peer kept %r"
              % p.offerings[oid]["name"])
    for did in every:
        j = wait_state(g, did, "delivered", 5)
        check(j.get("attempts", 0) >= 1 and j.get("lastStatus") in (200, 201) and j.get("deliveredAt"),
              "delivery %d: %r" % (did, j))
    rows = listed(t, g, "--connector", "ta")
    for did in every:
        check(did in rows and rows[did]["state"] == "delivered",
              "deliveries list: %d is %r" % (did, rows.get(did)))
    poll("/healthz outbox back to 0", lambda: g.request("GET", "/healthz").json().get("outbox") == 0, 5)
    firsts = [v[0] for v in ids.values()]
    check(all(rows[d]["attempts"] >= 2 for d in firsts),
          "the first push of each resource was tried while the peer was down: %r"
          % [rows[d] for d in firsts])


def test_waiting_bodies_read_back(t):
    # 24 pushes of about 850 KB to one resource while the peer is down: more than the 16 MiB of
    # bodies the outbox keeps in memory, so the later ones wait with their metadata only (and
    # the head waits for its retry). Each must reach the peer whole and in order.
    g, p = setup_ta(t, 1, **FAST)
    o = make_offering(p.catalogue[0]["componentId"])
    oid = o["offeringId"]
    p.down()
    n, pad = 24, 850 * 1000
    ids = []
    for k in range(n):
        r = put_named(g, o, "seq %02d %s" % (k, chr(ord("a") + k) * pad))
        ids.append(accepted(r, "push %d while down" % k))
    p.up()
    poll("all %d pushes at the peer" % n, lambda: len(set(names(p, oid))) == n, 60)
    got = collapse(names(p, oid))
    check([x[:6] for x in got] == ["seq %02d" % k for k in range(n)],
          "order at the peer: %r" % [x[:6] for x in got])
    for k, x in enumerate(got):
        check(x == "seq %02d %s" % (k, chr(ord("a") + k) * pad),
              "push %d arrived changed (%d bytes, starts %r)" % (k, len(x), x[:12]))
    for did in ids:
        wait_state(g, did, "delivered", 10)


def test_dead_letter_then_retry(t):
    g, p = setup_ta(t, 2, delivery_max_age_s=1, **FAST)
    x = make_offering(p.catalogue[0]["componentId"])
    y = make_offering(p.catalogue[1]["componentId"])
    xid = x["offeringId"]
    p.down()
    first = accepted(put_named(g, x, "first"), "push while down")
    dead = poll("delivery %d dead in `deliveries list --state dead`" % first,
                lambda: listed(t, g, "--state", "dead").get(first), 15, 0.2)
    check(dead["attempts"] >= 2 and dead["connector"] == "ta" and dead["resourceId"] == xid,
          "dead row: %r" % dead)
    check(status(g, first)["state"] == "dead", "GET /deliveries/%d: %r" % (first, status(g, first)))
    second = accepted(put_named(g, x, "second"), "push behind a dead one")
    check(second > first, "ids %d, %d" % (first, second))
    p.up()
    # another resource is not held back
    r = put_named(g, y, "other")
    check(r.status in (200, 201) and r.header("Okegw-Delivery"), "push of another resource: %s"
          % r.short())
    time.sleep(1.5 * min(time_scale(), 3))  # several retry periods: nothing may move for x
    check(not p.find("PUT", "/offerings/" + xid), "sent although an earlier delivery of its resource "
          "is dead: %r" % names(p, xid))
    rows = listed(t, g)
    check(rows[first]["state"] == "dead" and rows[second]["state"] == "pending",
          "before the retry: %r, %r" % (rows[first], rows[second]))
    rc, out, err = run(t, "deliveries", "retry", "-c", g.conf_path, str(first))
    check(rc == 0 and out.startswith("delivery %d: dead -> pending" % first),
          "retry: %d %r %r" % (rc, out, err))
    poll("both pushes of %s at the peer" % xid, lambda: len(set(names(p, xid))) == 2, 10)
    check(collapse(names(p, xid)) == ["first", "second"], "order after the retry: %r" % names(p, xid))
    wait_state(g, first, "delivered", 5)
    wait_state(g, second, "delivered", 5)
    rows = listed(t, g, "--state", "delivered")
    check(first in rows and second in rows, "list --state delivered: %r" % sorted(rows))


def test_final_4xx_not_retried(t):
    g, p = setup_ta(t, 1, **FAST)
    o = make_offering(p.catalogue[0]["componentId"])
    oid = o["offeringId"]
    problem = {"type": "about:blank", "title": "Unprocessable Entity", "status": "422",
               "detail": "startDateTime lies in the past"}
    p.canned[("PUT", "/offerings/" + oid)] = (422, problem)
    r = put_named(g, o, "refused")
    check(r.status == 422, "the peer's 422 relayed: %s" % r.short())
    check(r.json().get("detail") == problem["detail"], "the peer's body relayed: %s" % r.short())
    did = r.header("Okegw-Delivery")
    check(did and did.isdigit(), "no Okegw-Delivery header: %r" % r.headers)
    did = int(did)
    time.sleep(1.0)  # more than two retry periods (100 ms, then 200 ms, at most 400 ms)
    got = p.find("PUT", "/offerings/" + oid)
    check(len(got) == 1, "a final 422 was tried %d times" % len(got))
    j = status(g, did)
    check(j["state"] == "failed" and j.get("lastStatus") == 422 and j.get("attempts") == 1,
          "GET /deliveries/%d: %r" % (did, j))
    rows = listed(t, g, "--state", "failed")
    check(did in rows and rows[did]["lastStatus"] == 422, "list --state failed: %r" % rows)


def test_slow_peer_202_then_delivered(t):
    delay = 1.0 * min(time_scale(), 3)
    g, p = setup_ta(t, 1, delivery_wait_ms=300, timeout_ms=int(20000 * time_scale()))
    o = make_offering(p.catalogue[0]["componentId"])
    p.delay = delay
    t0 = time.monotonic()
    r = put_named(g, o, "slow")
    dt = time.monotonic() - t0
    did = accepted(r, "push to a slow peer")
    check(dt < delay, "the 202 took %.2f s; the peer answers after %.1f s" % (dt, delay))
    j = wait_state(g, did, "delivered", 10)
    check(j.get("lastStatus") == 201 and j.get("attempts") == 1, "delivery %d: %r" % (did, j))
    check(len(p.find("PUT", "/offerings/" + o["offeringId"])) == 1,
          "the slow peer got %d PUTs" % len(p.find("PUT", "/offerings/" + o["offeringId"])))


def test_concurrency_limit_frees_slots(t):
    """With one attempt at a time to a slow peer, pushes of other resources
    queue up and each goes once the slot before it is free: none is left
    waiting when no further push arrives."""
    delay = 0.3
    g, p = setup_ta(t, 1, delivery_wait_ms=200, delivery_concurrency=1,
                    timeout_ms=int(20000 * time_scale()))
    offs = [make_offering(p.catalogue[0]["componentId"]) for _ in range(4)]
    p.delay = delay
    results = [None] * len(offs)

    def send(i):
        results[i] = put_named(g, offs[i], "c%d" % i)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(offs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30 * time_scale())
    check(all(r is not None and r.status in (201, 202) for r in results),
          "answers: %r" % [r and r.short() for r in results])
    poll("every offering delivered one at a time",
         lambda: all(len(p.find("PUT", "/offerings/" + o["offeringId"])) == 1 for o in offs),
         timeout=10 * time_scale())
    poll("no delivery left pending", lambda: not listed(t, g, "--state", "pending"),
         timeout=5 * time_scale())


def test_outbox_full_refuses_with_retry_after(t):
    """Past outbox_max_open undelivered pushes a new one is refused (503 with
    Retry-After, nothing stored); once the peer caught up, pushes are accepted
    again."""
    p = Peer(make_components(1), name="ta")
    t.cleanups.append(p.stop)
    g = t.gateway(conf([("ta", ooapi_connector(p, **FAST))], outbox_max_open=2))
    flow0(g, 1)
    offs = [make_offering(p.catalogue[0]["componentId"]) for _ in range(3)]
    p.down()
    ids = [accepted(put_named(g, o, "full"), "push %d" % i) for i, o in enumerate(offs[:2])]
    r = put_named(g, offs[2], "full")
    prob = check_problem(r, 503, "a push past outbox_max_open")
    check(r.header("Retry-After") == "60", "no Retry-After on the refusal: %r" % r.headers)
    check("outbox_max_open" in prob.get("detail", ""), "the refusal does not say why: %r" % prob)
    check(len(listed(t, g)) == 2, "the refused push was stored: %r" % listed(t, g))
    p.up()
    for did in ids:
        wait_state(g, did, "delivered", 10)
    poll("the outbox emptied", lambda: g.request("GET", "/healthz").json().get("outbox") == 0, 5)
    r = put_named(g, offs[2], "full")
    check(r.status in (201, 202), "a push after the outbox emptied: %s" % r.short())


def test_restart_resumes(t):
    g, p = setup_ta(t, 2, **FAST)
    offs = [make_offering(c["componentId"]) for c in p.catalogue]
    p.down()
    ids = []
    for k in range(1, 4):
        for o in offs:
            ids.append(accepted(put_named(g, o, "seq %d" % k), "push %d while down" % k))
    rc = g.stop()
    check(rc == 0, "okegw exited with %s on SIGTERM" % rc)
    check(not p.non_catalogue(), "the peer was down but got %r" % p.non_catalogue())
    p.up()
    g.start()
    rec = g.wait_log(lambda x: "open deliveries resumed" in str(x.get("msg", "")), 5 * time_scale())
    check(rec is not None and rec["msg"].startswith("outbox: %d open deliveries resumed" % len(ids)),
          "no resume line for %d deliveries: %r" % (len(ids), rec))
    for o in offs:
        oid = o["offeringId"]
        poll("every push of %s after the restart" % oid, lambda: len(set(names(p, oid))) == 3, 15)
        check(collapse(names(p, oid)) == ["seq 1", "seq 2", "seq 3"],
              "order of %s after the restart: %r" % (oid, names(p, oid)))
    for did in ids:
        wait_state(g, did, "delivered", 5)


TOKENS = {"alpha": "alpha-calls-okegw-0001", "beta": "beta-calls-okegw-00002",
          "planning": "planning-calls-okegw-3"}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def test_delivery_status_access(t):
    a = t.peer(make_components(2), name="alpha")
    b = t.peer(make_components(1), name="beta")
    tpl = t.peer([], name="planning")
    g = t.gateway(conf([
        ("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
        ("beta", ooapi_connector(b, inbound_token=TOKENS["beta"])),
        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
                      "inbound_token": TOKENS["planning"]})]))
    flow0(g, 3, headers=auth("planning"))
    o = make_offering(a.catalogue[0]["componentId"])
    r = put_named(g, o, "mine", headers=auth("planning"))
    check(r.status == 201, "PUT zitting: %s" % r.short())
    did = r.header("Okegw-Delivery")
    check(did and did.isdigit(), "no Okegw-Delivery header: %r" % r.headers)
    path = "/deliveries/" + did
    check_problem(g.request("GET", path), 401, "GET %s without a token" % path)
    check_problem(g.request("GET", path, headers={"Authorization": "Bearer nobody-has-this"}), 401,
                  "GET %s with an unknown token" % path)
    for other in ("alpha", "beta"):
        check_problem(g.request("GET", path, headers=auth(other)), 404,
                      "GET %s with %s's token" % (path, other))
    r = g.request("GET", path, headers=auth("planning"))
    check(r.status == 200, "GET %s with the sender's token: %s" % (path, r.short()))
    j = r.json()
    check(j.get("id") == int(did) and j.get("state") == "delivered" and j.get("connector") == "alpha"
          and j.get("resourceId") == o["offeringId"] and j.get("href") == path,
          "delivery status: %r" % j)
    check_problem(g.request("GET", "/deliveries/987654", headers=auth("planning")), 404,
                  "an unknown delivery")
    for bad in ("abc", "12x", "-3", "0"):
        check_problem(g.request("GET", "/deliveries/" + bad, headers=auth("planning")), 404,
                      "delivery id %r" % bad)
    r = g.request("POST", path, {"state": "dropped"}, headers=auth("planning"))
    check(r.status == 405, "POST %s: %s" % (path, r.short()))
    check("GET" in (r.header("Allow") or ""), "405 without Allow: GET: %r" % r.headers)


def test_audit_rows(t):
    g, p = setup_ta(t, 1, peer_cls=FlakyPeer, **FAST)
    o = make_offering(p.catalogue[0]["componentId"])
    oid = o["offeringId"]
    p.fail[("PUT", "/offerings/" + oid)] = [503, 503]
    did = accepted(put_named(g, o, "audited"), "push to a peer that answers 503 twice")
    wait_state(g, did, "delivered", 10)
    check(len(p.find("PUT", "/offerings/" + oid)) == 3, "attempts at the peer: %d"
          % len(p.find("PUT", "/offerings/" + oid)))

    def rows_complete():
        rows = audit_rows(t, g, oid)
        # the request row and one row per attempt, the last one the 201
        return rows if len(rows) >= 4 and any(x.get("status") == 201 for x in rows) else None
    rows = poll("the audit rows of %s" % oid, rows_complete, 10, 0.2)
    check(all("event" in x for x in rows), "`okegw audit` rows have no \"event\" member (keys: %s)"
          % ", ".join(sorted(rows[0])))
    req = [x for x in rows if x.get("event") == "request"]
    dl = [x for x in rows if x.get("event") == "delivery"]
    check(len(req) == 1, "request rows: %r" % req)
    check(str(req[0].get("delivery_id")) == str(did) and req[0].get("status") == 202
          and req[0].get("method") == "PUT",
          "request row: %r" % req[0])
    check([x.get("attempts") for x in dl] == [1, 2, 3], "delivery rows' attempts: %r" % dl)
    check([x.get("status") for x in dl] == [503, 503, 201], "delivery rows' statuses: %r" % dl)
    check(all(str(x.get("delivery_id")) == str(did) and x.get("connector") == "ta"
              and x.get("interaction") == "flow2.put_offering" and x.get("resource_id") == oid
              for x in dl), "delivery rows: %r" % dl)


def test_retention_keeps_open(t):
    up = t.peer(make_components(1, numbers=[1]), name="up")
    pend = t.peer(make_components(1, numbers=[2]), name="pend")
    dead = t.peer(make_components(1, numbers=[3]), name="dead")
    g = t.gateway(conf([
        ("up", ooapi_connector(up, keep_bodies_s=1, **FAST)),
        ("pend", ooapi_connector(pend, keep_bodies_s=1, **FAST)),
        ("dead", ooapi_connector(dead, keep_bodies_s=1, delivery_max_age_s=1, **FAST))]))
    flow0(g, 3)
    pend.down()
    dead.down()
    o_up = make_offering(up.catalogue[0]["componentId"])
    r = put_named(g, o_up, "delivered")
    check(r.status == 201, "push to a peer that is up: %s" % r.short())
    t_delivered = time.time()
    d_up = int(r.header("Okegw-Delivery"))
    o_fail = make_offering(up.catalogue[0]["componentId"])
    up.canned[("PUT", "/offerings/" + o_fail["offeringId"])] = (
        422, {"type": "about:blank", "title": "Unprocessable Entity", "status": "422"})
    r = put_named(g, o_fail, "failed")
    check(r.status == 422, "push the peer refuses: %s" % r.short())
    d_fail = int(r.header("Okegw-Delivery"))
    d_pend = accepted(put_named(g, make_offering(pend.catalogue[0]["componentId"]), "pending"),
                      "push to a peer that is down")
    d_dead = accepted(put_named(g, make_offering(dead.catalogue[0]["componentId"]), "dead"),
                      "push that goes dead")
    s = shown(t, g, d_up)
    check(s["state"] == "delivered" and s["bodyKept"] is True and s["bodyKeptUntil"]
          and json.loads(s["body"])["name"][0]["value"] == "delivered",
          "a delivered body kept for keep_bodies_s: %r" % s)
    poll("delivery %d dead" % d_dead, lambda: listed(t, g, "--state", "dead").get(d_dead), 10, 0.2)
    wait = t_delivered + 1.2 - time.time()
    if wait > 0:
        time.sleep(wait)  # past keep_bodies_s of the delivered one
    g.restart()
    poll("the delivered body dropped by retention after the restart",
         lambda: shown(t, g, d_up)["bodyKept"] is False, 10, 0.2)
    rows = listed(t, g)
    check(rows[d_up]["state"] == "delivered", "the delivered row itself stays: %r" % rows.get(d_up))
    for did, state in ((d_pend, "pending"), (d_dead, "dead"), (d_fail, "failed")):
        s = shown(t, g, did)
        check(s["state"] == state and s["bodyKept"] is True and s["body"],
              "a %s delivery lost its body to retention: %r" % (state, s))


if __name__ == "__main__":
    main(globals())
