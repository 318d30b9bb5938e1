#!/usr/bin/env python3
"""/healthz and /readyz on the admin listener: alive needs no token, ready and /metrics do;
/readyz is 503 while the store cannot take writes and 200 again after; a supplier that is
down shows as down in its connector's entry (and okegw_connector_up 0) while the gateway
stays ready."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, check, check_problem, conf, main, make_components,  # noqa: E402
                       make_offering, ooapi_connector, request, time_scale)

TOKEN = "adm-" + "e2b7c4d9a0f14c35"
AUTH = {"Authorization": "Bearer " + TOKEN}


def setup(t, **gateway):
    ta = t.peer(make_components(2), name="ta")
    tb = t.peer(make_components(1, numbers=[4]), name="tb")
    g = t.gateway(conf([("ta", ooapi_connector(ta)), ("tb", ooapi_connector(tb))],
                       admin_listen="127.0.0.1:0", admin_token=TOKEN, **gateway))
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200 and len(r.json()["items"]) == 3, "flow 0: %s" % r.short())
    return g, ta, tb


def ready(g, status=200):
    r = request(g.admin_port, "GET", "/readyz", headers=AUTH)
    check(r.status == status, "/readyz: expected %d, got %s" % (status, r.short()))
    check(r.content_type == "application/json", "/readyz content type %r" % r.content_type)
    return r.json()


def entry(j, name):
    got = [c for c in j.get("connectors", []) if c.get("name") == name]
    check(len(got) == 1, "connector %s in /readyz: %r" % (name, j))
    return got[0]


# --------------------------------------------------------------------------
# tests

def test_tokens(t):
    g, _, _ = setup(t)
    h = request(g.admin_port, "GET", "/healthz")
    check(h.status == 200 and h.json().get("status") == "alive", "/healthz: %s" % h.short())
    for path in ("/readyz", "/metrics"):
        check_problem(request(g.admin_port, "GET", path), 401, path + " without the token")
        check_problem(request(g.admin_port, "GET", path, headers={"Authorization": "Bearer x"}),
                      401, path + " with a wrong token")
        check_problem(request(g.admin_port, "GET", path,
                              headers={"Authorization": "Bearer " + TOKEN + "x"}),
                      401, path + " with a longer token")
        r = request(g.admin_port, "GET", path, headers=AUTH)
        check(r.status == 200, "%s with the token: %s" % (path, r.short()))
    j = ready(g)
    check(j["status"] == "ready" and j["store"] == "ok" and j["configuration"] is True
          and j["listening"] is True, "/readyz: %r" % j)
    for name in ("ta", "tb"):
        e = entry(j, name)
        check(e["phase"] == "live" and e["health"] in ("up", "unknown") and e["errors_5m"] == 0
              and isinstance(e["requests_5m"], int) and "reason" in e,
              "entry of %s: %r" % (name, e))
    # flow 0 asked both: that traffic makes them up
    check(entry(j, "ta")["health"] == "up" and entry(j, "ta")["requests_5m"] >= 1,
          "ta after flow 0: %r" % entry(j, "ta"))


def test_store_unwritable_then_back(t):
    g, ta, _ = setup(t)
    ready(g)
    db = os.path.join(g.workdir, "okegw.db")
    away = db + ".away"
    os.rename(db, away)
    try:
        # the next write (an audit row) finds the file gone: not ready
        g.request("GET", "/ooapi/components/" + ta.catalogue[0]["componentId"])
        j = poll("/readyz 503 once the store file is gone",
                 lambda: (lambda r: r.status == 503 and r.json())(
                     request(g.admin_port, "GET", "/readyz", headers=AUTH)), 5)
        check(j["status"] == "not ready" and j["store"] == "failing", "/readyz: %r" % j)
        r = request(g.admin_port, "GET", "/readyz", headers=AUTH)
        check(r.header("Retry-After") is not None, "503 without Retry-After")
        m = request(g.admin_port, "GET", "/metrics", headers=AUTH).body.decode("utf-8")
        check("\nokegw_store_writable 0\n" in m, "okegw_store_writable not 0")
        # the process is alive all the same
        check(request(g.admin_port, "GET", "/healthz").status == 200, "/healthz while failing")
    finally:
        os.rename(away, db)

    def back():
        g.request("GET", "/ooapi/components/" + ta.catalogue[0]["componentId"])
        r = request(g.admin_port, "GET", "/readyz", headers=AUTH)
        return r.status == 200 and r.json()
    j = poll("/readyz 200 once the store file is back", back, 5)
    check(j["store"] == "ok" and j["status"] == "ready", "/readyz: %r" % j)


def test_one_supplier_down(t):
    g, ta, tb = setup(t)
    tb.down()
    cid = tb.catalogue[0]["componentId"]
    for i in range(6):
        r = g.request("GET", "/ooapi/components/" + cid)
        check(r.status in (502, 503, 504), "read %d at a supplier that is down: %s" % (i, r.short()))
    # the other one keeps working
    r = g.request("GET", "/ooapi/components/" + ta.catalogue[0]["componentId"])
    check(r.status == 200, "read at ta: %s" % r.short())
    j = ready(g, 200)
    check(j["status"] == "ready", "one supplier down made the gateway unready: %r" % j)
    b = entry(j, "tb")
    check(b["health"] == "down" and b["requests_5m"] == 7 and b["errors_5m"] == 6
          and "6 of its 7" in b["reason"], "entry of tb: %r" % b)
    a = entry(j, "ta")
    check(a["health"] == "up" and a["errors_5m"] == 0, "entry of ta: %r" % a)
    m = request(g.admin_port, "GET", "/metrics", headers=AUTH).body.decode("utf-8")
    check('okegw_connector_up{connector="tb"} 0\n' in m, "okegw_connector_up of tb not 0")
    check('okegw_connector_up{connector="ta"} 1\n' in m, "okegw_connector_up of ta not 1")
    # back up: a successful exchange does not erase the window; half of it still failed
    tb.up()
    r = g.request("GET", "/ooapi/components/" + cid)
    check(r.status == 200, "read at tb once it is back: %s" % r.short())
    b = entry(ready(g), "tb")
    check(b["requests_5m"] == 8 and b["errors_5m"] == 6, "entry of tb after: %r" % b)


def test_plugin_health_check(t):
    """The plugin's health callback decides too: the ABI 1.2 test plugin says it is unhealthy
    on its 2nd and 3rd check (every 200 ms): its entry is down meanwhile, with the plugin's
    word as the reason, and up again after; the gateway stays ready throughout."""
    so = t.plugin("okegw_test_v12.so")
    peer = t.peer(make_components(1), name="new")
    g = t.gateway(conf([("new", ooapi_connector(peer, plugin=so))],
                       admin_listen="127.0.0.1:0", admin_token=TOKEN))
    def state(want):
        e = entry(ready(g, 200), "new")
        return e if e["health"] == want else None
    down = poll("the plugin's failing health check in /readyz", lambda: state("down"), 5, 0.01)
    check("health check says -5 (transport failure)" in down["reason"], "entry: %r" % down)
    poll("healthy again in /readyz", lambda: state("up"), 5, 0.01)


if __name__ == "__main__":
    main(globals())
