#!/usr/bin/env python3
"""okegw accept: the shipped ketentest scenarios through the running gateway against a supplier,
as the school's acceptance systems, with every step stored as an acceptance run; and the
conformance kit (okegw accept --base-url) against a supplier's own OKE API. A supplier that breaks
the profile on one interaction fails exactly the scenarios that touch it, and the report names
the rule and the JSON pointer."""
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accept_setup import start_sim_server, stop, write_acceptance_conf  # noqa: E402
from okegwtest import (TestFailure, check, free_port, main, time_scale,  # noqa: E402
                       wrapper)


HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = [f for f in os.listdir(os.path.join(HERE, "..", "..", "accept", "scenarios"))
             if re.match(r"^\d+-.*\.json$", f)]


def run(t, *args, timeout=600):
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * time_scale())
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def report(t, conf_path, name):
    rc, out, err = run(t, "report", "-c", conf_path, "--connector", name, "--format", "json")
    check(rc == 0, "okegw report: %d %s" % (rc, err))
    return json.loads(out)


def school(t, ta_url=None, **kw):
    """A gateway with the supplier (the built-in sim, or an OKE server at ta_url as connector
    'ta') and the acceptance TPL and DR that okegw accept plays; (gateway, connector name)."""
    path = os.path.join(t.workdir, "school.conf")
    write_acceptance_conf(path, "okegw.db", free_port(), free_port(), ta_url=ta_url, **kw)
    with open(path) as f:
        text = f.read()
    if ta_url:
        text = text.replace("[connector ta]\n", "[connector ta]\nvalidate_answers = block\n")
    return t.gateway(text), "ta" if ta_url else "sim"


def accept(t, g, name, *extra):
    return run(t, "accept", "-c", g.conf_path, "--connector", name,
               "--gateway", "http://127.0.0.1:%d/ooapi" % g.port, *extra)


def steps(g, run_id):
    """The stored steps of a run: (scenario, step, method, path, status, outcome)."""
    db = sqlite3.connect(os.path.join(g.workdir, "okegw.db"))
    try:
        return db.execute("SELECT scenario, step, method, path, status, outcome FROM accept_steps "
                          "WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
    finally:
        db.close()


class Corrupting:
    """A proxy in front of an OKE server that, once `broken`, changes the 200 answers of GETs
    whose path matches `pattern` with `corrupt` (a function on the parsed JSON)."""

    def __init__(self, upstream, pattern, corrupt):
        self.upstream, self.pattern, self.corrupt = upstream, re.compile(pattern), corrupt
        self.broken = False
        self.hits = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                req = urllib.request.Request(outer.upstream + self.path, data=body, method=self.command,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() not in ("host", "connection")})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, ctype, data = r.status, r.headers.get("Content-Type"), r.read()
                except urllib.error.HTTPError as e:
                    status, ctype, data = e.code, e.headers.get("Content-Type"), e.read()
                if (outer.broken and self.command == "GET" and status == 200
                        and outer.pattern.search(self.path.split("?")[0])):
                    outer.hits += 1
                    data = json.dumps(outer.corrupt(json.loads(data))).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def sim_server(t):
    proc, url = start_sim_server(t.binary, t.workdir)
    t.cleanups.append(lambda: stop(proc))
    return url


def test_accept_against_the_sim_stores_the_run(t):
    g, name = school(t)
    rc, out, err = accept(t, g, name)
    check(rc == 0, "okegw accept against the sim: exit %d\n%s\n%s" % (rc, out, err))
    lines = [x for x in out.splitlines() if re.match(r"^(ok|FAILED)\s+scenario ", x)]
    check(len(lines) == len(SCENARIOS) and all(x.startswith("ok") for x in lines), "a line per scenario, every one ok:\n%s" % out)
    check(re.search(r"^run 1 passed: \d+ passed, 0 failed", out, re.M), "the summary:\n%s" % out)
    doc = report(t, g.conf_path, name)
    run1 = doc["runs"][0]
    check(run1["outcome"] == "passed" and run1["failed"] == 0 and run1["passed"] > 300
          and run1["mode"] == "gateway" and len(run1["scenarios"]) == len(lines),
          "the stored run: %r" % {k: run1[k] for k in run1 if k != "scenarios"})
    crit = {c["criterion"]: c for c in doc["criteria"]}
    check(crit["accept_scenarios"]["outcome"] == "passed", "accept_scenarios: %r" % crit["accept_scenarios"])
    check(doc["verdict"] == "GO", "the sim after a passing run: %s %r" % (doc["verdict"], doc["reasons"]))
    # recognisable test data, and every zitting it planned cancelled at the end
    cleanups = [r for r in run1["scenarios"] for s in r["steps"] if s["name"].startswith("cleanup")]
    check(cleanups, "no cleanup step stored")
    db = sqlite3.connect(os.path.join(g.workdir, "okegw.db"))
    # every id the run sent but the supplier's own tests (flow 0)
    ids = {r[0] for r in db.execute("SELECT resource_id FROM audit WHERE resource_id IS NOT NULL "
                                    "AND interaction NOT LIKE 'flow0.%'")}
    puts = {r[0] for r in db.execute(
        "SELECT resource_id FROM audit WHERE interaction = 'flow2.put_offering' AND status < 300 "
        "AND event = 'request'")}
    canceled = {r[0] for r in db.execute(
        "SELECT resource_id FROM audit WHERE interaction = 'flow2.patch_offering' AND status < 300")}
    db.close()
    minted = {i for i in ids if re.match(r"^[0-9a-f]{8}-", i) and not i.startswith("acce57ed-")}
    check(puts and all(i.startswith("acce57ed-") for i in puts), "zitting ids: %r" % sorted(puts)[:5])
    check(not minted, "ids that are not marked as test data: %r" % sorted(minted)[:5])
    check(puts <= canceled, "zittingen left planned: %r" % sorted(puts - canceled)[:5])


def test_a_broken_supplier_fails_exactly_the_scenarios_that_touch_it(t):
    # the supplier answers GET /offerings/{id} (flow 2) with an offering of a type OKE has not
    proxy = Corrupting(sim_server(t), r"^/offerings/[^/]+$",
                       lambda j: dict(j, offeringType="bogus"))
    t.cleanups.append(proxy.stop)
    g, name = school(t, ta_url=proxy.url, ta_token="out-ta-accept-0b1c2d")
    only = ["--only", "4", "--only", "8", "--only", "9", "--only", "13", "--only", "23"]
    rc, out, err = accept(t, g, name, *only)
    check(rc == 0, "the supplier before it breaks: exit %d\n%s\n%s" % (rc, out, err))
    touching = {s for (s, _, m, p, st, o) in steps(g, 1)
                if m == "GET" and p and re.match(r"^/offerings/[^/?]+$", p) and st == 200 and o == "ok"}
    check(touching and touching != {"4", "8", "9", "13", "23"},
          "the scenarios should differ in reading a zitting back: %r" % touching)
    proxy.broken = True
    rc, out, err = accept(t, g, name, *only)
    check(rc == 1 and proxy.hits, "the broken supplier: exit %d (%d answers broken)\n%s" % (rc, proxy.hits, out))
    failed = {s for (s, _, _, _, _, o) in steps(g, 2) if o == "failed"}
    check(failed == touching, "failed scenarios %r, want exactly those that read a zitting %r"
          % (sorted(failed), sorted(touching)))
    doc = report(t, g.conf_path, name)
    check(doc["runs"][0]["outcome"] == "failed", "the last run: %r" % doc["runs"][0]["outcome"])
    v = doc["interactions"]["flow2.get_offering"]["violations"]
    top = doc["violations"][0]
    check(v["count"] >= 1 and top["interaction"] == "flow2.get_offering"
          and top["pointer"] == "/offeringType" and top["rule"], "violations: %r %r" % (v, top))
    check(doc["verdict"] == "NO-GO", "verdict %s" % doc["verdict"])
    reasons = {r["criterion"]: r for r in doc["reasons"]}
    check("/offeringType" in reasons["accept_max_violation_rate"]["evidence"]
          and "accept_scenarios" in reasons and reasons["accept_scenarios"]["outcome"] == "failed"
          and "/offeringType" in reasons["accept_scenarios"]["evidence"],
          "reasons: %r" % doc["reasons"])


def test_conformance_kit(t):
    sim = sim_server(t)
    out_json = os.path.join(t.workdir, "kit.json")
    rc, out, err = run(t, "accept", "--base-url", sim, "--role", "ta", "--format", "json", "-o", out_json)
    check(rc == 0 and "conformance of %s: PASSED" % sim in out and "VERDICT: GO" in out,
          "the kit against okegw sim: exit %d\n%s\n%s" % (rc, out, err))
    with open(out_json) as f:
        doc = json.load(f)
    check(doc["verdict"] == "GO" and doc["runs"][0]["mode"] == "conformance"
          and doc["runs"][0]["failed"] == 0 and doc["connector"] == "supplier",
          "the kit's report: %s %r" % (doc["verdict"], doc["runs"][0]))
    check(doc["interactions"]["flow2.put_offering"]["status"]["2xx"] >= 1
          and doc["interactions"]["flow0.get_component"]["status"]["2xx"] >= 1,
          "flows 0 and 2 exercised: %r" % sorted(doc["interactions"]))
    # a supplier whose test answers break the profile
    proxy = Corrupting(sim, r"^/components/[^/]+$", lambda j: dict(j, componentType="quiz"))
    t.cleanups.append(proxy.stop)
    proxy.broken = True
    keep = os.path.join(t.workdir, "kit-broken")
    rc, out, err = run(t, "accept", "--base-url", proxy.url, "--role", "ta", "--keep", keep)
    check(rc == 1 and "conformance of %s: FAILED" % proxy.url in out, "the broken supplier: %d\n%s\n%s"
          % (rc, out, err))
    check("not ok" in out and "/componentType" in out and "VERDICT: NO-GO" in out,
          "the findings should name the pointer:\n%s" % out)
    check(os.path.exists(os.path.join(keep, "okegw.log")) and os.path.exists(os.path.join(keep, "kit.db")),
          "--keep kept nothing: %r" % os.listdir(keep))


def test_setup_errors_are_explained(t):
    g, name = school(t)
    cases = [
        (["accept", "-c", g.conf_path, "--connector", "nope"], "no [connector nope]"),
        (["accept", "-c", g.conf_path, "--connector", "accept_tpl"], "role tpl"),
        (["accept", "-c", g.conf_path], "either -c FILE --connector NAME"),
        (["accept", "--base-url", "ftp://x", "--role", "ta"], "--base-url"),
        (["accept", "--base-url", "http://127.0.0.1:1", "--role", "tpl"], "--role ta"),
        (["accept", "--base-url", "http://127.0.0.1:1", "--role", "ta", "--set", "novalue"], "KEY=VALUE"),
        (["accept", "--base-url", "http://127.0.0.1:1", "--role", "ta", "--token", "a", "--token-file", "b"],
         "not both"),
        (["accept", "-c", g.conf_path, "--connector", name, "--gateway", g.url("/ooapi"), "--only", "4,x"],
         "scenario numbers"),
        (["accept", "-c", g.conf_path, "--connector", name, "--gateway", g.url("/ooapi"), "--only", "99"],
         "no scenario 99"),
    ]
    for args, want in cases:
        rc, out, err = run(t, *args)
        check(rc == 2 and want in err, "okegw %s: %d %r" % (" ".join(args), rc, err))
    check(report(t, g.conf_path, name)["runs"] == [], "a refused run was stored")
    # a gateway without acceptance systems says what to add
    text = open(g.conf_path).read()
    bare = re.sub(r"\[connector accept_tpl\].*", "", text, flags=re.S)
    path = os.path.join(t.workdir, "bare.conf")
    with open(path, "w") as f:
        f.write(bare.replace("store = okegw.db", "store = %s" % os.path.join(g.workdir, "okegw.db")))
    rc, out, err = run(t, "accept", "-c", path, "--connector", name)
    check(rc == 2 and "[connector accept_tpl]" in err and "acceptance = yes" in err,
          "no acceptance systems: %d %r" % (rc, err))
    off = bare.replace("phase = live", "phase = off", 1)
    with open(path, "w") as f:
        f.write(off)
    rc, out, err = run(t, "accept", "-c", path, "--connector", name)
    check(rc == 2 and "is off" in err, "a connector that is off: %d %r" % (rc, err))


if __name__ == "__main__":
    main(globals())
