#!/usr/bin/env python3
"""Plugin loading and configuration checking: ABI mismatch, okegw -t, --version,
the ooapi plugin loaded as a shared object, a plugin written for ABI 1.0, and
one of ABI 1.2 (timers, JSON member walks, health checks, fini only after the
work in flight has ended)."""
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, conf, conf_line_of, make_components, make_offering,  # noqa: E402
                       main, ooapi_connector, run_okegw)

ABI2 = "okegw_test_abi2.so"
OOAPI_SO = "okegw_test_ooapi.so"
V10 = "okegw_test_v10.so"
V12 = "okegw_test_v12.so"


def abi2_conf(t, good_peer):
    bad = t.plugin(ABI2)
    return conf([
        ("good", ooapi_connector(good_peer)),
        ("future", {"plugin": bad, "role": "ta", "phase": "live",
                    "base_url": "http://127.0.0.1:9/ooapi"}),
    ])


def test_abi2_plugin_refused_gateway_serves(t):
    peer = t.peer(make_components(4), name="good")
    g = t.gateway(abi2_conf(t, peer))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue with a refused plugin: %s" % r.short())
    got = sorted(c["componentId"] for c in r.json()["items"])
    check(got == sorted(c["componentId"] for c in peer.catalogue),
          "the good connector's 4 items should be served, got %d" % len(got))


def test_abi2_plugin_logged(t):
    peer = t.peer(make_components(1), name="good")
    bad = t.plugin(ABI2)
    g = t.gateway(abi2_conf(t, peer))

    def names_future(rec):
        return rec.get("connector") == "future" or any(
            isinstance(v, str) and "future" in v for v in rec.values())

    rec = g.wait_log(lambda r: str(r.get("level")).lower() in ("error", "fatal") and names_future(r), 1.0)
    check(rec is not None, "no error log line naming connector 'future'; log:\n%s" % g.stderr_tail(15))
    # both ABI majors: the plugin's (2) and the host's (1); ignore the path (…abi2.so) and time
    text = " ".join("%s=%s" % (k, v) for k, v in rec.items() if k not in ("time", "ts", "latency_ms"))
    text = text.replace(bad, "").replace(os.path.basename(bad), "")
    check(re.search(r"(?<!\d)2(?!\d)", text) and re.search(r"(?<!\d)1(?!\d)", text),
          "the error should name ABI versions 2 and 1: %r" % rec)
    check(re.search(r"abi", text, re.I), "the error should say it is about the ABI: %r" % rec)


def test_check_config_bad_plugin(t):
    peer_port = 9
    bad = t.plugin(ABI2)
    text = conf([("good", ooapi_connector(peer_port)),
                 ("future", {"plugin": bad, "role": "ta", "phase": "live",
                             "base_url": "http://127.0.0.1:9/ooapi"})])
    path = t.write("plugins.conf", text)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 1, "okegw -t on an ABI-2 plugin should exit 1, got %d: %s" % (rc, out[-500:]))
    line = conf_line_of(text, r"^plugin = .*%s" % re.escape(ABI2))
    check("%s:%d:" % (path, line) in out,
          "output should point at %s:%d: (the plugin line), got: %s" % (path, line, out[-800:]))


def test_refused_plugins_say_why(t):
    """Missing entry symbol, a descriptor too small for ABI 1, and a missing file: -t names
    each on its own plugin line, and a running gateway keeps serving the good connector."""
    peer = t.peer(make_components(2), name="good")
    cases = [("nosym", t.plugin("okegw_test_nosym.so"), r"does not export oke_plugin_entry"),
             ("small", t.plugin("okegw_test_small.so"), r"not binary compatible"),
             ("gone", os.path.join(t.workdir, "gone.so"), r"cannot load plugin")]
    conns = [("good", ooapi_connector(peer))]
    conns += [(n, {"plugin": so, "role": "ta", "phase": "live"}) for n, so, _ in cases]
    text = conf(conns)
    path = t.write("plugins.conf", text)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 1, "okegw -t with three bad plugins should exit 1, got %d: %s" % (rc, out[-500:]))
    for name, so, why in cases:
        line = conf_line_of(text, r"^plugin = %s$" % re.escape(so))
        check(re.search(r"%s:%d: \[connector %s\] .*%s" % (re.escape(path), line, name, why), out),
              "no %s:%d: line for connector %s saying %r in: %s" % (path, line, name, why, out[-1200:]))
    g = t.gateway(text)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200 and len(r.json()["items"]) == 2,
          "the good connector should still serve its 2 items: %s" % r.short())
    for name, _, why in cases:
        rec = g.wait_log(lambda x, n=name: x.get("connector") == n and x.get("level") == "error", 1.0)
        check(rec is not None and re.search(why, rec.get("msg", "")),
              "no error log line for connector %s saying %r" % (name, why))


def test_check_config_runs_plugin_checks(t):
    """-t initialises each plugin (without network), so a plugin's own settings are checked
    too: a rest route with an unknown placeholder is reported on the connector's plugin line."""
    text = conf([("classic", {"plugin": "rest", "role": "ta", "phase": "live",
                              "base_url": "http://127.0.0.1:9",
                              "route.flow2.get_offering": "GET /sessions/{ref}"})])
    path = t.write("plugins.conf", text)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 1, "okegw -t with a bad rest route should exit 1, got %d: %s" % (rc, out[-500:]))
    check("plugins.conf:%d: [connector classic]" % conf_line_of(text, r"^plugin = rest") in out,
          "no error on the plugin line: %s" % out[-800:])
    check("route.flow2.get_offering" in out, "the plugin's reason is missing: %s" % out[-800:])


def test_check_config_good(t):
    text = conf([("good", ooapi_connector(9, auth="bearer", token="x")),
                 ("sim", {"plugin": "sim", "role": "ta", "phase": "off"})])
    path = t.write("plugins.conf", text)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 0, "okegw -t on a good config should exit 0, got %d: %s" % (rc, out[-800:]))


def _check_bad(t, text, pattern, what):
    path = t.write("plugins.conf", text)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 1, "okegw -t with %s should exit 1, got %d: %s" % (what, rc, out[-500:]))
    line = conf_line_of(text, pattern)
    check("plugins.conf:%d:" % line in out,
          "okegw -t with %s should report plugins.conf:%d:, got: %s" % (what, line, out[-800:]))


def test_check_config_unknown_gateway_key(t):
    text = conf([("good", ooapi_connector(9))], frobnicate="yes")
    _check_bad(t, text, r"^frobnicate", "an unknown [gateway] key")


def test_check_config_bad_phase(t):
    text = conf([("good", ooapi_connector(9, phase="sometimes"))])
    _check_bad(t, text, r"^phase = sometimes", "phase = sometimes")


def test_check_config_unknown_connector_key(t):
    text = conf([("good", ooapi_connector(9, colour="blue"))])
    _check_bad(t, text, r"^colour", "an unknown key in an ooapi connector section")


def test_check_config_unknown_builtin(t):
    text = conf([("good", ooapi_connector(9, plugin="nosuchplugin"))])
    _check_bad(t, text, r"^plugin = nosuchplugin", "an unknown built-in plugin name")


def test_bad_config_refuses_to_start(t):
    text = conf([("good", ooapi_connector(9, phase="sometimes"))])
    path = t.write("plugins.conf", text)
    try:
        rc, out = run_okegw(t.binary, ["-c", path], timeout=5)
    except Exception as e:  # subprocess.TimeoutExpired: it kept running
        raise AssertionError("okegw kept running with an invalid config (%s)" % type(e).__name__)
    check(rc != 0, "okegw should exit non-zero on an invalid config, got 0")
    check("plugins.conf:%d:" % conf_line_of(text, r"^phase") in out,
          "the startup error should point at the line: %s" % out[-500:])


def test_version(t):
    rc, out = run_okegw(t.binary, ["--version"])
    check(rc == 0, "okegw --version should exit 0, got %d: %s" % (rc, out))
    check(re.search(r"\d+\.\d+\.\d+", out), "okegw --version printed no version: %r" % out)


def test_ooapi_plugin_as_shared_object(t):
    so = t.plugin(OOAPI_SO, fallbacks=("okegw_ooapi.so",))
    peer = t.peer(make_components(3), name="so")
    g = t.gateway(conf([("remote", ooapi_connector(peer, plugin=so, test_system="SoToets"))]))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue via the .so plugin: %s" % r.short())
    items = r.json()["items"]
    check(sorted(c["componentId"] for c in items) == sorted(c["componentId"] for c in peer.catalogue),
          "the .so connector should list the peer's 3 components, got %d" % len(items))
    for c in items:
        check({"codeType": "x-testSystem", "code": "SoToets"} in (c.get("otherCodes") or []),
              "x-testSystem missing via the .so plugin: %r" % c.get("otherCodes"))
    o = make_offering(peer.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check_2xx(r, "PUT offering via the .so plugin")
    got = peer.find("PUT", "/offerings/" + o["offeringId"])
    check(got and got[0].json == o, "the .so plugin did not forward the offering intact")
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json() == o, "GET offering via the .so plugin: %s" % r.short())


def _msgs(g, connector, prefix):
    return [r.get("msg", "") for r in g.log_lines()
            if r.get("connector") == connector and r.get("msg", "").startswith(prefix)]


def test_v10_plugin_loads_and_serves(t):
    """A plugin built for ABI 1.0 (minor 0, descriptor filled by hand, 1.0 members only)
    is loaded by this host and carries reads and pushes."""
    so = t.plugin(V10)
    peer = t.peer(make_components(3), name="old")
    g = t.gateway(conf([("old", ooapi_connector(peer, plugin=so))]))
    rec = g.wait_log(lambda r: r.get("connector") == "old" and "v10 plugin up" in r.get("msg", ""), 2.0)
    check(rec is not None, "the 1.0 plugin did not start; log:\n%s" % g.stderr_tail(15))
    check("host ABI 1.2" in rec["msg"], "the host should say ABI 1.2: %r" % rec["msg"])
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue via the 1.0 plugin: %s" % r.short())
    check(sorted(c["componentId"] for c in r.json()["items"])
          == sorted(c["componentId"] for c in peer.catalogue),
          "the 1.0 plugin should list the peer's 3 components: %s" % r.short())
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o), "PUT via the 1.0 plugin")
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json() == o, "GET offering via the 1.0 plugin: %s" % r.short())
    check(g.stop() == 0, "okegw should stop cleanly with a 1.0 plugin")


def test_v12_timers_and_json_helpers(t):
    """A 1.2 plugin answers through a timer, copies every JSON answer member by member
    (json_first/next/key), and its self-test of the bool/null constructors, query_get,
    oke_strerror and the interaction names reads as expected."""
    so = t.plugin(V12)
    peer = t.peer(make_components(3), name="new")
    # one event loop: one instance of the plugin, whose own counts this reads
    g = t.gateway(conf([("new", ooapi_connector(peer, plugin=so, answer_delay_ms=50))],
                       workers=1))
    rec = g.wait_log(lambda r: r.get("connector") == "new" and
                     r.get("msg", "").startswith("v12 selftest: "), 2.0)
    check(rec is not None, "no self-test line; log:\n%s" % g.stderr_tail(15))
    got = json.loads(rec["msg"][len("v12 selftest: "):])
    want = {"keys": "a,b,c", "t": True, "f": False, "n": None, "q": "a b c", "absent": 0,
            "too_long": -1, "name": "flow2.put_offering", "err": "transport failure"}
    check(got == want, "self-test: got %r, want %r" % (got, want))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue via the 1.2 plugin: %s" % r.short())
    items = r.json()["items"]
    byid = {c["componentId"]: c for c in peer.catalogue}
    check(sorted(c["componentId"] for c in items) == sorted(byid),
          "the 1.2 plugin should list the peer's 3 components: %s" % r.short())
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o), "PUT via the 1.2 plugin")
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json() == o,
          "the offering copied member by member should equal the original: %s" % r.short())
    check(g.stop() == 0, "okegw should stop cleanly")
    check(len(_msgs(g, "new", "v12 answered")) == 3, "the 3 answers should come from the timer")
    fini = _msgs(g, "new", "v12 fini: ")
    check(fini == ["v12 fini: pending=0 answered=3 stop=-1 ticked=1"],
          "fini: its repeating timer stopped by the host before, nothing pending: %r" % fini)


def test_v12_health_checked_changes_logged(t):
    """health runs every health_interval_ms (200 ms for this plugin); it answers unhealthy
    on its 2nd and 3rd check only: one warning, one line when it is healthy again, and no
    line for the ticks in between."""
    so = t.plugin(V12)
    peer = t.peer(make_components(1), name="new")
    # one event loop: one instance, whose health changes this counts
    g = t.gateway(conf([("new", ooapi_connector(peer, plugin=so))], workers=1))
    bad = g.wait_log(lambda r: r.get("connector") == "new" and "unhealthy" in r.get("msg", ""), 3.0)
    check(bad is not None, "no unhealthy line; log:\n%s" % g.stderr_tail(15))
    check(bad.get("level") == "warn" and "-5" in bad["msg"] and "transport failure" in bad["msg"],
          "the warning should give the code and its meaning: %r" % bad)
    good = g.wait_log(lambda r: r.get("connector") == "new" and "healthy again" in r.get("msg", ""),
                      3.0)
    check(good is not None, "no 'healthy again' line; log:\n%s" % g.stderr_tail(15))
    time.sleep(1.0)  # five more healthy checks: nothing more to say
    lines = [r["msg"] for r in g.log_lines()
             if r.get("connector") == "new" and "healthy" in r.get("msg", "")]
    check(len(lines) == 2, "one line per change, not per check: %r" % lines)


def test_fini_after_in_flight_exchange(t):
    """The plugin holds an answer on a timer past the exchange's guard (the caller gets 504
    meanwhile); stopping the gateway then waits for that answer before fini runs."""
    so = t.plugin(V12)
    peer = t.peer(make_components(1), name="new")
    delay = 2500  # the guard gives up after timeout_ms + 1 s, the stop waits a guard more
    # one event loop: the request and the fini are of the same instance
    g = t.gateway(conf([("new", ooapi_connector(peer, plugin=so, answer_delay_ms=delay,
                                                timeout_ms=300))], workers=1))
    g.request("GET", "/ooapi/components?componentType=test")
    check(_msgs(g, "new", "v12 answered") == [], "the plugin should still hold its answer")
    check(g.stop() == 0, "okegw should stop cleanly with an exchange in flight")
    msgs = [r.get("msg", "") for r in g.log_lines()]
    fini = [i for i, m in enumerate(msgs) if m.startswith("v12 fini: ")]
    answered = [i for i, m in enumerate(msgs) if m.startswith("v12 answered")]
    waiting = [i for i, m in enumerate(msgs) if m.startswith("waiting for 1 exchange")]
    check(len(fini) == 1 and answered and waiting,
          "want a wait, the late answer and fini; log:\n%s" % g.stderr_tail(15))
    check(waiting[0] < answered[0] < fini[0], "fini must come after the late answer: %r" % msgs)
    check(msgs[fini[0]].startswith("v12 fini: pending=0 answered=1"), "fini saw: %r" % msgs[fini[0]])


def test_check_config_v12(t):
    """okegw -t initialises a 1.2 plugin without a loop: timer_start says OKE_ESTATE and
    the plugin copes; no health check runs."""
    so = t.plugin(V12)
    text = conf([("new", ooapi_connector(9, plugin=so, answer_delay_ms=5))])
    path = t.write("plugins.conf", text)
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 0, "okegw -t with the 1.2 plugin should exit 0, got %d: %s" % (rc, out[-800:]))


if __name__ == "__main__":
    main(globals())
