#!/usr/bin/env python3
"""/metrics on the admin listener: a chain of traffic (flow 0, a flow-2 PUT, a push that goes
dead, a profile violation, a failing and a runaway Lua mapping, an OAuth token), then Debian's
`promtool check metrics` must accept the exposition, every family must be there, and the
numbers must match the traffic. The admin token guards it."""
import os
import re
import shutil
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, Peer, check, check_problem, conf, main, make_components,  # noqa: E402
                       make_offering, ooapi_connector, request, time_scale)
from test_oauth_out import OAuthPeer, TokenServer, oauth_keys  # noqa: E402
from test_tls import client_ctx, https, make_pki, tls_port  # noqa: E402

TOKEN = "adm-" + "5f0c9e27d1b34a8e"
AUTH = {"Authorization": "Bearer " + TOKEN}
FAST = {"retry_first_ms": 100, "retry_max_ms": 300, "delivery_wait_ms": 200}

FAMILIES = {
    "okegw_requests_total": "counter",
    "okegw_request_duration_seconds": "histogram",
    "okegw_peer_request_duration_seconds": "histogram",
    "okegw_outbox_deliveries": "gauge",
    "okegw_delivery_attempts_total": "counter",
    "okegw_dead_letters_total": "counter",
    "okegw_profile_violations_total": "counter",
    "okegw_mapping_errors_total": "counter",
    "okegw_mapping_budget_kills_total": "counter",
    "okegw_token_refreshes_total": "counter",
    "okegw_tls_handshakes_total": "counter",
    "okegw_connector_phase": "gauge",
    "okegw_connector_up": "gauge",
    "okegw_build_info": "gauge",
    "okegw_store_commit_duration_seconds": "histogram",
    "okegw_store_writable": "gauge",
    "process_start_time_seconds": "gauge",
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{family: type} and [(name, {label: value}, float)] of an exposition."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            check(m is not None, "not a sample line: %r" % line)
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                      for k, v in LABEL.findall(m.group(2) or "")}
            samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def value(samples, name, **labels):
    """The one sample of name with exactly these labels (among others); None if none."""
    found = [v for n, ls, v in samples
             if n == name and all(ls.get(k) == str(x) for k, x in labels.items())]
    check(len(found) <= 1, "%d samples of %s%r" % (len(found), name, labels))
    return found[0] if found else None


def total(samples, name, **labels):
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == str(x) for k, x in labels.items()))


def scrape(g):
    r = request(g.admin_port, "GET", "/metrics", headers=AUTH)
    check(r.status == 200, "/metrics: %s" % r.short())
    check(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8",
          "Content-Type %r" % r.header("Content-Type"))
    return r.body.decode("utf-8")


def promtool(t, text):
    exe = shutil.which("promtool")
    check(exe is not None, "promtool not found (apt-get install prometheus)")
    p = subprocess.run([exe, "check", "metrics"], input=text.encode("utf-8"),
                       capture_output=True, timeout=60)
    path = os.path.join(t.workdir, "metrics.txt")
    with open(path, "w") as f:
        f.write(text)
    check(p.returncode == 0, "promtool check metrics (%s) exit %d: %s %s"
          % (path, p.returncode, p.stdout.decode(), p.stderr.decode()))


def write_script(t, connector, interaction, text):
    d = os.path.join(t.workdir, "scripts", connector)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, interaction + ".lua"), "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# tests

def test_metrics_after_a_chain(t):
    ta = t.peer(make_components(2), name="ta")
    gone = t.peer(make_components(1, numbers=[5]), name="gone")
    lua = t.peer(make_components(1, numbers=[7]), name="lua")
    ts = TokenServer()
    t.cleanups.append(ts.stop)
    sec = OAuthPeer(ts, make_components(1, numbers=[9]), name="sec")
    t.cleanups.append(sec.stop)
    # the lua connector: its answer to a one-test read fails in Lua, its push mapping runs away
    write_script(t, "lua", "flow0.get_component",
                 "function from_peer(msg, ctx)\n  error('no mapping for this test')\nend\n")
    write_script(t, "lua", "flow2.put_offering",
                 "function to_peer(msg, ctx)\n  while true do end\nend\n")
    g = t.gateway(conf([("ta", ooapi_connector(ta, **FAST)),
                        ("gone", ooapi_connector(gone, delivery_max_age_s=1, **FAST)),
                        ("lua", ooapi_connector(lua, **FAST)),
                        ("sec", ooapi_connector(sec, **oauth_keys(t, ts), **FAST))],
                       admin_listen="127.0.0.1:0", admin_token=TOKEN))
    check(g.admin_port and g.admin_port != g.port, "admin port %r" % g.admin_port)

    # without the token: 401, also for /readyz; /healthz is open
    check_problem(request(g.admin_port, "GET", "/metrics"), 401, "/metrics without a token")
    check_problem(request(g.admin_port, "GET", "/metrics",
                          headers={"Authorization": "Bearer wrong"}), 401, "wrong token")

    # flow 0: the merged catalogue from four TAs (one token request for sec)
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200 and len(r.json()["items"]) == 5, "flow 0: %s" % r.short())
    # flow 2 PUT at ta: delivered
    o = make_offering(ta.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status in (200, 201), "flow 2 PUT: %s" % r.short())
    # a profile violation: the body's offeringId is not the path's (R12)
    bad = make_offering(ta.catalogue[1]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + make_offering(ta.catalogue[1]["componentId"])
                  ["offeringId"], bad)
    check_problem(r, 400, "PUT with another id in the body")
    # a mapping error on a read at lua, and a runaway mapping on a push to lua
    r = g.request("GET", "/ooapi/components/" + lua.catalogue[0]["componentId"])
    check(r.status == 502, "read through a failing mapping: %s" % r.short())
    ol = make_offering(lua.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + ol["offeringId"], ol)
    check(r.status >= 400, "push through a runaway mapping: %s" % r.short())
    # a push to a peer that is down goes dead after delivery_max_age_s
    gone.down()
    og = make_offering(gone.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + og["offeringId"], og)
    check(r.status == 202, "push to a peer that is down: %s" % r.short())

    def dead():
        _, s = parse(scrape(g))
        return value(s, "okegw_dead_letters_total", connector="gone") == 1 and s
    s = poll("a dead letter for gone in /metrics", dead, 15)
    text = scrape(g)
    promtool(t, text)
    types, s = parse(text)
    for fam, typ in FAMILIES.items():
        check(types.get(fam) == typ, "family %s: TYPE %r" % (fam, types.get(fam)))
        if fam != "okegw_tls_handshakes_total":  # no TLS listener here: test_tls_handshakes
            check(any(n == fam or n.startswith(fam + "_") for n, _, _ in s),
                  "no sample of %s" % fam)

    # exact numbers of the traffic above
    check(value(s, "okegw_requests_total", connector="ta", flow="2",
                interaction="flow2.put_offering", status_class="2xx") == 1,
          "the delivered flow-2 PUT: %r" % [x for x in s if x[0] == "okegw_requests_total"])
    check(value(s, "okegw_requests_total", connector="", flow="0",
                interaction="flow0.list_components", status_class="2xx") == 1
          or value(s, "okegw_requests_total", flow="0", interaction="flow0.list_components",
                   status_class="2xx") == 1, "flow 0 counted once")
    check(value(s, "okegw_requests_total", connector="gone", flow="2",
                interaction="flow2.put_offering", status_class="2xx") == 1,
          "the 202 of the push to gone")
    check(value(s, "okegw_profile_violations_total", interaction="flow2.put_offering",
                rule="R12", side="request") == 1, "R12 once: %r"
          % [x for x in s if x[0] == "okegw_profile_violations_total"])
    check(value(s, "okegw_mapping_errors_total", connector="lua",
                interaction="flow0.get_component") == 1, "mapping error of the read")
    check(value(s, "okegw_mapping_errors_total", connector="lua",
                interaction="flow2.put_offering") == 1, "mapping error of the push")
    check(value(s, "okegw_mapping_budget_kills_total", connector="lua") == 1, "one budget kill")
    check(value(s, "okegw_mapping_budget_kills_total", connector="ta") == 0, "no kill at ta")
    check(value(s, "okegw_delivery_attempts_total", connector="ta", outcome="delivered") == 1,
          "one delivered attempt at ta")
    check(value(s, "okegw_delivery_attempts_total", connector="lua", outcome="failed") == 1,
          "the runaway push failed once")
    check(value(s, "okegw_delivery_attempts_total", connector="gone", outcome="dead") == 1,
          "one attempt ended dead")
    check(value(s, "okegw_delivery_attempts_total", connector="gone", outcome="retry") >= 1,
          "retries before it died")
    check(value(s, "okegw_outbox_deliveries", connector="gone", state="dead") == 1,
          "the dead letter in the outbox gauge")
    check(value(s, "okegw_outbox_deliveries", connector="ta", state="pending") == 0,
          "nothing pending at ta")
    check(value(s, "okegw_token_refreshes_total", connector="sec", outcome="ok") == 1,
          "one token for sec")
    check(value(s, "okegw_token_refreshes_total", connector="ta", outcome="ok") == 0,
          "no token for ta")
    for name in ("ta", "gone", "lua", "sec"):
        check(value(s, "okegw_connector_phase", connector=name, phase="live") == 1
              and value(s, "okegw_connector_phase", connector=name, phase="off") == 0,
              "phase of %s" % name)
    check(value(s, "okegw_connector_up", connector="ta") == 1, "ta up")
    check(value(s, "okegw_build_info") == 1, "build_info")
    check(value(s, "okegw_peer_request_duration_seconds_count", connector="ta") >= 2,
          "peer requests of ta (flow 0, PUT)")
    check(value(s, "okegw_peer_request_duration_seconds_bucket", connector="ta", le="+Inf")
          == value(s, "okegw_peer_request_duration_seconds_count", connector="ta"),
          "+Inf bucket equals the count")
    check(value(s, "okegw_request_duration_seconds_count", connector="ta", flow="2") == 1,
          "caller side latency of flow 2 at ta")
    check(value(s, "okegw_store_commit_duration_seconds_count") >= 1, "store commits")
    check(value(s, "okegw_store_writable") == 1, "the store takes writes")
    start = value(s, "process_start_time_seconds")
    check(start and abs(start - time.time()) < 600, "start time %r" % start)


def test_unrouted_requests(t):
    """Requests no connector carried are counted under connector="" (an unknown path); the
    exposition of such a run is still accepted. Without an admin_token /metrics is open.
    (The escaping of label values is checked in tests/unit/test_metrics.c.)"""
    ta = t.peer(make_components(1), name="ta")
    g = t.gateway(conf([("ta", ooapi_connector(ta))], admin_listen="127.0.0.1:0"))
    r = g.request("GET", "/ooapi/nothing-here")
    check(r.status == 404, "unknown path: %s" % r.short())
    text = scrape(g)  # no admin_token: open
    promtool(t, text)


def test_tls_handshakes(t):
    """One handshake done, one refused (TLS 1.2 below tls_min_version): counted by outcome."""
    certs = make_pki(t)
    ta = t.peer(make_components(1), name="ta")
    g = t.gateway(conf([("ta", ooapi_connector(ta))], admin_listen="127.0.0.1:0",
                       admin_token=TOKEN, listen_tls="127.0.0.1:0",
                       tls_cert_file=certs["server"][0], tls_key_file=certs["server"][1]))
    port = tls_port(g)
    status = https(port, client_ctx(certs["ca"]))[0]
    check(status == 200, "GET over TLS: %d" % status)
    try:
        https(port, client_ctx(certs["ca"], version="1.2"))
        check(False, "a TLS 1.2 client was served")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass

    def counted():
        _, s = parse(scrape(g))
        return value(s, "okegw_tls_handshakes_total", listener="listen_tls",
                     outcome="failed") == 1 and s
    s = poll("the refused handshake counted", counted, 5)
    check(value(s, "okegw_tls_handshakes_total", listener="listen_tls", outcome="ok") == 1,
          "one handshake done")
    promtool(t, scrape(g))


if __name__ == "__main__":
    main(globals())
