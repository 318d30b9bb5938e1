#!/usr/bin/env python3
"""The admin API under /admin/api/ on the admin listener: the admin token, the connectors with
their phases and traffic, the outbox (a dead letter listed, retried and delivered, another
dropped), the audit trail newest first with its filters, reload taken and refused, and the
acceptance report."""
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, Peer, check, check_problem, conf, main, make_components,  # noqa: E402
                       make_offering, ooapi_connector, request, time_scale, wrapper, TestFailure)

TOKEN = "admin-token-0123456789abcdef"
FAST = {"retry_first_ms": 100, "retry_max_ms": 400, "delivery_wait_ms": 200}
AUTH = {"Authorization": "Bearer " + TOKEN}


def run(t, *args):
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60 * time_scale())
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def shown(t, g, did):
    """`okegw deliveries show` straight from the store."""
    rc, out, err = run(t, "deliveries", "show", "-c", g.conf_path, str(did))
    check(rc == 0, "okegw deliveries show %s: exit %d: %s" % (did, rc, err))
    return json.loads(out)


def api(g, method, path, body=None, auth=True):
    return request(g.admin_port, method, "/admin/api/" + path, body,
                   dict(AUTH) if auth else None, timeout=30 * time_scale())


def ok_json(r, what):
    check(r.status == 200 and (r.content_type or "").startswith("application/json"),
          "%s: %s" % (what, r.short()))
    return r.json()


def connectors_conf(ta, tb, **extra_tb):
    kb = ooapi_connector(tb, phase="pilot", phase_reason="trial with two schools",
                         pilot_components=tb.catalogue[0]["componentId"], **FAST)
    kb.update(extra_tb)
    return conf([("ta", ooapi_connector(ta, delivery_max_age_s=1, **FAST)), ("tb", kb)],
                admin_listen="127.0.0.1:0", admin_token=TOKEN)


def setup(t):
    ta = t.peer(make_components(2), name="ta")
    tb = t.peer(make_components(1, numbers=[7]), name="tb")
    g = t.gateway(connectors_conf(ta, tb))
    check(g.admin_port, "no 'listening (admin)' line")
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200 and len(r.json().get("items", [])) == 3, "flow 0: %s" % r.short())
    return g, ta, tb


def put(g, o, value):
    o["name"][0]["value"] = value
    return g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)


def make_dead(t, g, peer, value="first"):
    """A push to a peer that is down, held until it is dead; returns (delivery id, offering)."""
    o = make_offering(peer.catalogue[0]["componentId"])
    peer.down()
    r = put(g, o, value)
    check(r.status == 202, "push while the peer is down: %s" % r.short())
    did = r.json()["id"]
    poll("delivery %d dead" % did, lambda: shown(t, g, did)["state"] == "dead", 15)
    return did, o


# --------------------------------------------------------------------------

def test_token_required(t):
    g, _, _ = setup(t)
    for path in ("connectors", "deliveries", "audit", "report?connector=ta"):
        check_problem(api(g, "GET", path, auth=False), 401, "GET %s without the token" % path)
        r = request(g.admin_port, "GET", "/admin/api/" + path,
                    headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
        check_problem(r, 401, "GET %s with a wrong token" % path)
    check_problem(api(g, "POST", "reload", auth=False), 401, "reload without the token")
    check_problem(api(g, "GET", "nothing-here"), 404, "unknown resource")
    check_problem(api(g, "POST", "connectors"), 405, "POST connectors")
    check_problem(api(g, "GET", "reload"), 405, "GET reload")
    check_problem(api(g, "GET", "deliveries/abc"), 404, "a delivery id that is no number")
    check_problem(api(g, "GET", "deliveries?state=lost"), 400, "unknown state")
    check_problem(api(g, "GET", "deliveries?limit=0"), 400, "limit 0")
    check_problem(api(g, "GET", "audit?since=yesterday"), 400, "since not a time")
    check_problem(api(g, "GET", "report"), 400, "report without a connector")
    check_problem(api(g, "GET", "report?connector=nope"), 404, "report of an unknown connector")
    check_problem(api(g, "GET", "report?connector=ta&format=pdf"), 400, "report as pdf")
    check(TOKEN not in g.stderr_text(), "the admin token is in the log")


def test_connectors(t):
    g, ta, tb = setup(t)
    o = make_offering(ta.catalogue[0]["componentId"])
    r = put(g, o, "one")
    check(r.status in (200, 201, 202), "push: %s" % r.short())
    rows = ok_json(api(g, "GET", "connectors"), "GET connectors")
    check(isinstance(rows, list) and [c.get("name") for c in rows] == ["ta", "tb"],
          "connectors: %r" % rows)
    a, b = rows
    check(a["role"] == "ta" and a["phase"] == "live" and a["phaseReason"] is None
          and b["phase"] == "pilot" and b["phaseReason"] == "trial with two schools",
          "phases: %r" % rows)
    check(a["plugin"] == "ooapi" and a["acceptance"] is False and a["mirrorOf"] is None
          and "mapping" in a and a["mapping"] is None, "connector ta: %r" % a)
    check(a["health"] in ("up", "down", "unknown"), "health: %r" % a["health"])
    # the caller's push and the outbox's one delivery attempt
    check(a["requests"] == 2 and a["errors"] == 0, "ta's traffic: %r" % {k: a[k] for k in
                                                                        ("requests", "errors")})
    check(len(a["perMinute"]) == 60 and sum(m["requests"] for m in a["perMinute"]) == a["requests"]
          and a["perMinute"][-1]["requests"] >= 1, "ta's minutes: %r" % a["perMinute"][-3:])
    check(all(m["minute"].endswith("Z") for m in a["perMinute"]), "minute stamps")


def test_dead_letter_retry(t):
    g, ta, _ = setup(t)
    did, o = make_dead(t, g, ta)
    rows = ok_json(api(g, "GET", "deliveries?state=dead"), "GET deliveries?state=dead")
    check([d["id"] for d in rows] == [did] and rows[0]["state"] == "dead"
          and rows[0]["connector"] == "ta" and rows[0]["resourceId"] == o["offeringId"],
          "dead letters: %r" % rows)
    # the same JSON as okegw deliveries list --json
    rc, out, err = run(t, "deliveries", "list", "-c", g.conf_path, "--json", "--state", "dead")
    check(rc == 0 and [json.loads(x) for x in out.splitlines()] == rows,
          "API and CLI differ: %r vs %r" % (rows, out))
    check(ok_json(api(g, "GET", "deliveries?connector=tb"), "by connector") == [],
          "tb has no deliveries")
    one = ok_json(api(g, "GET", "deliveries/%d" % did), "GET deliveries/%d" % did)
    check(one["id"] == did and one["state"] == "dead", "show: %r" % one)
    card = ok_json(api(g, "GET", "connectors"), "connectors")[0]
    check(card["name"] == "ta" and card["errors"] >= 2 and card["errors"] == card["requests"] - 1,
          "ta's failed delivery attempts as errors: %r" % {k: card[k] for k in ("requests", "errors")})
    check_problem(api(g, "GET", "deliveries/999999"), 404, "unknown delivery")
    check_problem(api(g, "POST", "deliveries/999999/retry"), 404, "retry unknown delivery")
    ta.up()
    r = ok_json(api(g, "POST", "deliveries/%d/retry" % did), "retry")
    check(r["id"] == did and r["state"] == "pending", "after retry: %r" % r)
    poll("delivery %d delivered" % did, lambda: shown(t, g, did)["state"] == "delivered", 15)
    check(ta.find("PUT", "/offerings/" + o["offeringId"]), "the peer did not get the push")
    check_problem(api(g, "POST", "deliveries/%d/retry" % did), 409, "retry of a delivered one")
    check_problem(api(g, "POST", "deliveries/%d/drop" % did), 409, "drop of a delivered one")


def test_dead_letter_drop(t):
    g, ta, _ = setup(t)
    did, _ = make_dead(t, g, ta)
    check_problem(api(g, "GET", "deliveries/%d/drop" % did), 405, "GET on drop")
    r = ok_json(api(g, "POST", "deliveries/%d/drop" % did), "drop")
    check(r["id"] == did and r["state"] == "dropped", "after drop: %r" % r)
    check(shown(t, g, did)["state"] == "dropped", "the store: %r" % shown(t, g, did))
    check_problem(api(g, "POST", "deliveries/%d/retry" % did), 409, "retry of a dropped one")


def test_audit(t):
    g, ta, tb = setup(t)
    oa = make_offering(ta.catalogue[0]["componentId"])
    ob = make_offering(tb.catalogue[0]["componentId"])
    for v in ("one", "two", "three"):
        check(put(g, oa, v).status in (200, 201, 202), "push of oa")
    check(put(g, ob, "b").status in (200, 201, 202), "push of ob")
    poll("audit rows", lambda: len(ok_json(api(g, "GET", "audit?resource=" + oa["offeringId"]),
                                          "audit")) >= 3, 10)

    def same_as_cli():
        """The API's rows and the CLI's (oldest first) reversed, once no row came in between."""
        rows = ok_json(api(g, "GET", "audit"), "GET audit")
        rc, out, err = run(t, "audit", "-c", g.conf_path)
        check(rc == 0, "okegw audit: %s" % err)
        cli = [json.loads(x) for x in out.splitlines() if x.strip()]
        return rows if cli[::-1] == rows else None
    rows = poll("the API's audit rows are the CLI's reversed", same_as_cli, 10)
    ats = [r["at"] for r in rows]
    check(len(rows) >= 5 and ats == sorted(ats, reverse=True), "not newest first: %r" % ats)
    mine = ok_json(api(g, "GET", "audit?resource=" + oa["offeringId"]), "by resource")
    check(mine and all(r["resource_id"] == oa["offeringId"] for r in mine), "by resource: %r" % mine)
    by_tb = ok_json(api(g, "GET", "audit?connector=tb"), "by connector")
    check(by_tb and all("tb" in (r.get("connector"), r.get("caller")) for r in by_tb)
          and len(by_tb) < len(rows), "by connector: %r" % by_tb)
    one = ok_json(api(g, "GET", "audit?limit=1"), "limit 1")
    check(len(one) == 1 and one[0]["at"] >= rows[0]["at"], "limit=1 gives the newest: %r" % one)
    check(ok_json(api(g, "GET", "audit?since=2999-01-01"), "since future") == [], "since future")
    check(ok_json(api(g, "GET", "audit?until=2000-01-01"), "until past") == [], "until past")
    day = rows[0]["at"][:10]
    # rows of a delivery that ended since may come in: at least those read, all of today
    today = ok_json(api(g, "GET", "audit?since=%s&until=%s" % (day, day)), "today")
    check((len(today) >= len(rows) and all(r["at"][:10] == day for r in today))
          or rows[-1]["at"][:10] != day, "since/until of today: %d rows of %d, %r"
          % (len(today), len(rows), [r["at"] for r in today][:3]))


def test_reload(t):
    g, ta, tb = setup(t)
    g.write_conf(connectors_conf(ta, tb, phase="live"))
    r = ok_json(api(g, "POST", "reload"), "reload")
    check(r["taken"] is True and isinstance(r["report"], list), "reload: %r" % r)
    rows = ok_json(api(g, "GET", "connectors"), "connectors after reload")
    check(rows[1]["name"] == "tb" and rows[1]["phase"] == "live", "tb after reload: %r" % rows[1])
    g.write_conf(connectors_conf(ta, tb, phase="sideways"))
    r = ok_json(api(g, "POST", "reload"), "bad reload")
    check(r["taken"] is False and any("phase" in line for line in r["report"]),
          "bad reload: %r" % r)
    rows = ok_json(api(g, "GET", "connectors"), "connectors after a refused reload")
    check(rows[1]["phase"] == "live", "a refused reload changed tb: %r" % rows[1])


def test_report(t):
    g, ta, _ = setup(t)
    r = ok_json(api(g, "GET", "report?connector=ta"), "report json")
    check(r.get("verdict") in ("GO", "NO-GO", "INCONCLUSIVE"), "verdict: %r" % r.get("verdict"))
    rc, out, err = run(t, "report", "-c", g.conf_path, "--connector", "ta", "--format", "json")
    check(rc == 0 and json.loads(out)["verdict"] == r["verdict"], "CLI verdict differs: %s" % err)
    # many at once: they wait their turn for a worker and every one is answered
    results = [None] * 10
    def one(i):
        results[i] = api(g, "GET", "report?connector=ta" if i % 2 else "deliveries").status
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60 * time_scale())
    check(results == [200] * len(results), "concurrent requests: %r" % results)
    h = api(g, "GET", "report?connector=ta&format=html")
    check(h.status == 200 and h.content_type.startswith("text/html") and b"<html" in h.body,
          "report html: %s" % h.short())


if __name__ == "__main__":
    main(globals())
