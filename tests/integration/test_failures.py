#!/usr/bin/env python3
"""Degraded operation: connectors that are down, slow, failing or switched off."""
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, free_port, make_association,  # noqa: E402
                       make_components, make_offering, main, ooapi_connector)

WARN_LEVELS = ("warn", "warning", "error", "fatal")


def failed_header(r):
    """Okegw-Failed-Connectors as {name: reason}."""
    h = r.header("okegw-failed-connectors")
    check(h is not None, "no Okegw-Failed-Connectors header; headers: %r" % r.headers)
    out = {}
    for part in h.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, reason = part.partition("=")
        check(eq == "=" and name.strip() and reason.strip(),
              "Okegw-Failed-Connectors entry %r is not name=reason (header %r)" % (part, h))
        out[name.strip()] = reason.strip()
    return out


def logged_problem(g, connector, timeout=2.0):
    return g.wait_log(lambda rec: rec.get("connector") == connector
                      and str(rec.get("level", "")).lower() in WARN_LEVELS, timeout)


def three(t):
    ok = t.peer(make_components(4), name="ok")
    slow = t.peer(make_components(3, numbers=[10, 11, 12]), delay=3.0, name="slow")
    down = free_port()
    g = t.gateway(conf([
        ("good", ooapi_connector(ok)),
        ("down", ooapi_connector(down, connect_timeout_ms=500, timeout_ms=1000)),
        ("slow", ooapi_connector(slow, timeout_ms=500)),
    ]))
    return g, ok, slow


def test_partial_catalogue_when_down_and_slow(t):
    g, ok, slow = three(t)
    t0 = time.monotonic()
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=20")
    dt = time.monotonic() - t0
    check(r.status == 200, "merged page with failing connectors: %s" % r.short())
    check(dt < 2.5, "answer took %.2f s; the slow connector's timeout is 500 ms" % dt)
    got = sorted(c.get("componentId") for c in r.json().get("items", []))
    want = sorted(c["componentId"] for c in ok.catalogue)
    check(got == want, "items should be exactly the ok peer's 4, got %d items" % len(got))
    check(r.json().get("hasNextPage") is False, "hasNextPage should be false")


def test_failed_connectors_header(t):
    g, ok, slow = three(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "merged page: %s" % r.short())
    f = failed_header(r)
    check(set(f) == {"down", "slow"}, "header should name exactly down and slow, got %r (raw %r)"
          % (f, r.header("okegw-failed-connectors")))


def test_failures_logged_per_connector(t):
    g, ok, slow = three(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "merged page: %s" % r.short())
    for name in ("down", "slow"):
        rec = logged_problem(g, name)
        check(rec is not None, "no warn/error log line with connector=%r; log:\n%s" % (name, g.stderr_tail(15)))
        for k in ("time", "level", "msg"):
            check(k in rec, "log line lacks %r: %r" % (k, rec))
    check(logged_problem(g, "good", timeout=0.2) is None,
          "the healthy connector was logged as failing: %r" % logged_problem(g, "good", 0))


def test_no_failed_header_when_all_ok(t):
    a = t.peer(make_components(2), name="a")
    b = t.peer(make_components(2, numbers=[5, 6]), name="b")
    g = t.gateway(conf([("a", ooapi_connector(a)), ("b", ooapi_connector(b))]))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200 and len(r.json()["items"]) == 4, "catalogue: %s" % r.short())
    h = r.header("okegw-failed-connectors")
    check(not h, "Okegw-Failed-Connectors present although nothing failed: %r" % h)


def test_supplier_error_status_is_a_failure(t):
    ok = t.peer(make_components(2), name="ok")
    bad = t.peer(make_components(2, numbers=[7, 8]), fail_components=500, name="bad")
    g = t.gateway(conf([("good", ooapi_connector(ok)), ("broken", ooapi_connector(bad))]))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "merged page with a 500ing supplier: %s" % r.short())
    got = sorted(c["componentId"] for c in r.json()["items"])
    check(got == sorted(c["componentId"] for c in ok.catalogue),
          "only the healthy supplier's items should be listed, got %d" % len(got))
    check("broken" in failed_header(r), "Okegw-Failed-Connectors should name 'broken': %r"
          % r.header("okegw-failed-connectors"))


def test_all_connectors_failing(t):
    g = t.gateway(conf([("down1", ooapi_connector(free_port(), connect_timeout_ms=500)),
                        ("down2", ooapi_connector(free_port(), connect_timeout_ms=500))]))
    t0 = time.monotonic()
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(time.monotonic() - t0 < 3.0, "took too long with every connector refusing")
    # either an empty page naming both, or a 502/503/504 problem: both are honest
    if r.status == 200:
        check(r.json().get("items") == [], "items should be empty: %s" % r.short())
        check(set(failed_header(r)) == {"down1", "down2"}, "header should name both")
    else:
        check(r.status in (502, 503, 504), "expected 200 (empty) or 502/503/504, got %s" % r.short())
        check_problem(r, r.status, "all connectors down")


def test_off_connector_not_fanned_out(t):
    on = t.peer(make_components(3), name="on")
    off = t.peer(make_components(3, numbers=[20, 21, 22]), name="off")
    g = t.gateway(conf([("on", ooapi_connector(on)), ("off", ooapi_connector(off, phase="off"))]))
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=20")
    check(r.status == 200, "catalogue: %s" % r.short())
    got = sorted(c["componentId"] for c in r.json()["items"])
    check(got == sorted(c["componentId"] for c in on.catalogue),
          "only the live connector's items should appear, got %d items" % len(got))
    check(not off.requests, "a phase=off connector got traffic: %r" % off.requests)
    h = r.header("okegw-failed-connectors") or ""
    check("off" not in [p.split("=")[0].strip() for p in h.split(",")],
          "a switched-off connector is not a failure: %r" % h)


def _switch_off_setup(t):
    """A connector owns a component and an offering; then it is switched off."""
    peer = t.peer(make_components(3), name="remindo")
    other = t.peer(make_components(2, numbers=[8, 9]), name="other")
    live = conf([("remindo", ooapi_connector(peer)), ("other", ooapi_connector(other))])
    g = t.gateway(live)
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=20")
    check(r.status == 200 and len(r.json()["items"]) == 5, "flow 0: %s" % r.short())
    comp = peer.catalogue[1]["componentId"]
    off = make_offering(comp)
    r = g.request("PUT", "/ooapi/offerings/" + off["offeringId"], off)
    check_2xx(r, "PUT offering while live")
    check(peer.find("PUT", "/offerings/" + off["offeringId"]), "the offering did not reach the peer")
    g.restart(conf([("remindo", ooapi_connector(peer, phase="off")), ("other", ooapi_connector(other))]))
    return g, peer, comp, off


def test_off_connector_keeps_its_zittingen(t):
    """Switching a connector off never strands a zitting already routed to it (DESIGN §8): a
    deelname for it and a read of it still go there."""
    g, peer, comp, off = _switch_off_setup(t)
    mark = peer.mark()
    a = make_association(off["offeringId"])
    r = g.request("PUT", "/ooapi/associations/" + a["associationId"], a)
    check(r.status == 201, "a deelname of a zitting in progress at an off connector: %s" % r.short())
    r = g.request("GET", "/ooapi/offerings/" + off["offeringId"])
    check(r.status == 200, "a read of a zitting in progress at an off connector: %s" % r.short())
    check(len(peer.find(since=mark)) == 2, "the off connector got: %r" % peer.find(since=mark))


def test_off_connector_offering_503(t):
    g, peer, comp, off = _switch_off_setup(t)
    mark = peer.mark()
    o = make_offering(comp)
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    p = check_problem(r, 503, "offering for a component of a switched-off connector")
    check("remindo" in (p.get("detail") or ""), "detail should name the connector: %r" % p)
    check("phase off" in (p.get("detail") or ""), "detail should name the phase: %r" % p)
    check(not peer.find(since=mark), "a phase=off connector got a new zitting: %r"
          % peer.find(since=mark))


def test_routed_request_to_down_connector(t):
    """A flow-2 write whose connector stops answering: promptly accepted (202)
    with a delivery to follow, whose status resource names the timeout."""
    peer = t.peer(make_components(2), name="flaky")
    g = t.gateway(conf([("flaky", ooapi_connector(peer, timeout_ms=800))]))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "flow 0: %s" % r.short())
    o = make_offering(peer.catalogue[0]["componentId"])
    peer.delay = 3.0
    t0 = time.monotonic()
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    dt = time.monotonic() - t0
    check(dt < 2.9, "a 800 ms connector timeout took %.2f s (supplier answers after 3 s)" % dt)
    check(r.status == 202, "expected 202 (accepted, delivery to follow) on a supplier timeout, got %s"
          % r.short())
    loc = r.header("Location") or ""
    check(loc.startswith("/deliveries/"), "202 without a delivery Location: %r" % r.headers)
    d = g.request("GET", loc)
    check(d.status == 200, "GET %s: %s" % (loc, d.short()))
    j = d.json()
    check(j["state"] == "pending" and j["lastStatus"] == 504 and j["attempts"] >= 1,
          "delivery status after a timeout: %r" % j)
    check(j["connector"] == "flaky" and j["resourceId"] == o["offeringId"], "delivery names: %r" % j)


if __name__ == "__main__":
    main(globals())
