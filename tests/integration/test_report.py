#!/usr/bin/env python3
"""okegw report: the acceptance evidence on one connector and its verdict. The verdict flips
from INCONCLUSIVE to GO as traffic meets the connector's accept_* criteria and to NO-GO when a
dead letter appears; a peer that breaks the profile is named by rule and JSON pointer, a
mapping that fails by script:line; the JSON form keeps its documented members."""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_html_check import CheckError, check_html_in_chromium  # noqa: E402
from okegwtest import (poll, TestFailure, check, conf, main, make_components,  # noqa: E402
                       make_offering, ooapi_connector, time_scale, wrapper)

FAST = {"retry_first_ms": 100, "retry_max_ms": 400, "delivery_wait_ms": 500}


def run(t, *args):
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120 * time_scale())
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def report(t, g, name, fmt="json", *extra):
    rc, out, err = run(t, "report", "-c", g.conf_path, "--connector", name, "--format", fmt, *extra)
    check(rc == 0, "okegw report --format %s: exit %d: %s" % (fmt, rc, err))
    return json.loads(out) if fmt == "json" else out


def criterion(doc, key):
    for c in doc["criteria"]:
        if c["criterion"] == key:
            return c
    raise TestFailure("no criterion %s in %r" % (key, doc["criteria"]))


def test_verdict_flips(t):
    p = t.peer(make_components(2), name="ta")
    g = t.gateway(conf([("north", ooapi_connector(
        p, accept_min_exchanges=6, accept_interactions="0 2", accept_scenarios="no",
        delivery_max_age_s=1, **FAST))]))
    doc = report(t, g, "north")
    check(doc["verdict"] == "INCONCLUSIVE" and doc["connector"] == "north",
          "no traffic: %s %r" % (doc["verdict"], doc["reasons"]))
    check(criterion(doc, "accept_min_exchanges")["outcome"] == "insufficient",
          "min exchanges without traffic: %r" % criterion(doc, "accept_min_exchanges"))
    check(all(r["outcome"] == "insufficient" for r in doc["reasons"]),
          "nothing failed yet: %r" % doc["reasons"])
    # traffic: flow 0 reads and flow 2 pushes, every one answered
    comp = p.catalogue[0]["componentId"]
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    for _ in range(3):
        r = g.request("GET", "/ooapi/components/" + comp)
        check(r.status == 200, "component: %s" % r.short())
    for _ in range(3):
        o = make_offering(comp)
        r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
        check(r.status in (200, 201), "zitting: %s" % r.short())
    doc = poll("verdict GO", lambda: (lambda d: d if d["verdict"] == "GO" else None)(
        report(t, g, "north")), 10)
    check(doc["reasons"] == [] and doc["totals"]["exchanges"] >= 6,
          "GO with reasons or too few exchanges: %r %r" % (doc["reasons"], doc["totals"]))
    ix = doc["interactions"]
    check(ix["flow0.get_component"]["status"]["2xx"] == 3
          and ix["flow2.put_offering"]["status"]["2xx"] == 3,
          "per interaction: %r" % ix)
    check(ix["flow2.put_offering"]["latency"]["p99Ms"] is not None, "latency: %r" % ix)
    check(doc["phaseHistory"] and doc["phaseHistory"][-1]["to"] == "live",
          "phase history: %r" % doc["phaseHistory"])
    # a push the peer never takes goes dead: NO-GO, naming the delivery
    p.down()
    o = make_offering(comp)
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status == 202, "push to a peer that is down: %s" % r.short())
    did = r.json()["id"]
    doc = poll("verdict NO-GO", lambda: (lambda d: d if d["verdict"] == "NO-GO" else None)(
        report(t, g, "north")), 15)
    reason = doc["reasons"][0]
    check(reason["criterion"] == "accept_max_dead_letters" and reason["outcome"] == "failed"
          and ("delivery %d" % did) in reason["evidence"] and o["offeringId"] in reason["evidence"],
          "the dead letter's reason: %r" % reason)
    check(doc["deliveries"]["dead"] == 1, "deliveries: %r" % doc["deliveries"])
    text = report(t, g, "north", "text")
    check("NO-GO" in text and "north" in text and "accept_max_dead_letters" in text,
          "text report:\n%s" % text)
    # the page for the examencommissie, opened in a real browser: it renders (the screenshot
    # stays in the work dir as an artefact), names the verdict and the connector, and prints
    html = os.path.join(t.workdir, "report-north.html")
    rc, out, err = run(t, "report", "-c", g.conf_path, "--connector", "north", "--format", "html",
                       "-o", html)
    check(rc == 0, "okegw report --format html: %d %s" % (rc, err))
    with open(html, encoding="utf-8") as f:
        page = f.read()
    # self-contained: nothing loaded from elsewhere (a peer's URL may be quoted as evidence)
    for needle in ("<script", "<link", "src=", "href=", "url(", "@import"):
        check(needle not in page, "the page has %r: not self-contained" % needle)
    check("<svg" in page, "the page has no chart")
    try:
        png, pdf = check_html_in_chromium(html, t.workdir,
                                          needles=("NO-GO", "north", "accept_max_dead_letters",
                                                   "delivery %d" % did))
    except CheckError as e:
        raise TestFailure("the HTML report in headless chromium: %s" % e)
    check(os.path.getsize(pdf) > 1000, "the PDF is %d bytes" % os.path.getsize(pdf))
    p.up()


def test_profile_violations_and_mapping_errors_named(t):
    p = t.peer(make_components(2), name="ta")
    comp = p.catalogue[0]["componentId"]
    other = p.catalogue[1]["componentId"]
    broken = dict(p.catalogue[0])
    broken["componentType"] = "quiz"  # not an OKE component type
    p.canned[("GET", "/components/" + comp)] = (200, broken)
    d = os.path.join(t.workdir, "scripts", "north")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "flow2.get_offering.lua"), "w") as f:
        f.write("function from_peer(msg, ctx)\n  local x = nil\n  return x.y\nend\n")
    g = t.gateway(conf([("north", ooapi_connector(p, validate_answers="block", **FAST))]))
    r = g.request("GET", "/ooapi/components?componentType=test")
    for _ in range(2):
        r = g.request("GET", "/ooapi/components/" + comp)
        check(r.status == 502, "an answer that breaks the profile: %s" % r.short())
    r = g.request("GET", "/ooapi/components/" + other)
    check(r.status == 200, "a good answer: %s" % r.short())
    o = make_offering(other)
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status in (200, 201), "zitting: %s" % r.short())
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 502, "a failing mapping: %s" % r.short())
    doc = poll("evidence of every exchange", lambda: (lambda d: d if d["totals"]["exchanges"] >= 5
                                                     else None)(report(t, g, "north")), 5)
    v = doc["interactions"]["flow0.get_component"]["violations"]
    check(v["count"] == 2 and v["byRule"], "violations of flow0.get_component: %r" % v)
    top = doc["violations"][0]
    check(top["pointer"] == "/componentType" and top["interaction"] == "flow0.get_component"
          and top["count"] == 2 and top["rule"], "top violation: %r" % top)
    m = doc["mappingErrors"]
    check(len(m) == 1 and m[0]["where"].endswith("flow2.get_offering.lua:3") and m[0]["count"] == 1
          and m[0]["interaction"] == "flow2.get_offering", "mapping errors: %r" % m)
    check(doc["interactions"]["flow2.get_offering"]["mappingErrors"]["count"] == 1,
          "mapping errors of flow2.get_offering: %r" % doc["interactions"]["flow2.get_offering"])
    check(doc["verdict"] == "NO-GO", "violations over 1%% and a mapping error: %s" % doc["verdict"])
    failed = {r["criterion"] for r in doc["reasons"] if r["outcome"] == "failed"}
    check({"accept_max_violation_rate", "accept_max_mapping_error_rate"} <= failed,
          "failed criteria: %r" % doc["reasons"])
    ev = [r["evidence"] for r in doc["reasons"] if r["criterion"] == "accept_max_violation_rate"][0]
    check("/componentType" in ev and "flow0.get_component" in ev, "violation evidence: %r" % ev)
    # the stable members of the JSON form
    for k in ("format", "connector", "role", "phase", "verdict", "reasons", "criteria", "totals",
              "interactions", "violations", "mappingErrors", "deliveries", "differences", "daily",
              "runs", "phaseHistory", "mappingVersions", "since"):
        check(k in doc, "report without %r" % k)
    check(doc["format"] == "okegw-acceptance-report/1", "format: %r" % doc["format"])


def test_report_usage_and_files(t):
    p = t.peer(make_components(1), name="ta")
    g = t.gateway(conf([("north", ooapi_connector(p))]))
    for args, want in ((["--connector", "north"], "needs -c FILE"),
                       (["-c", g.conf_path, "--connector", "south"], "no [connector south]"),
                       (["-c", g.conf_path, "--connector", "north", "--format", "pdf"], "text, json or html"),
                       (["-c", g.conf_path, "--connector", "north", "--since", "yesterday"], "RFC 3339")):
        rc, out, err = run(t, "report", *args)
        check(rc == 2 and want in err, "okegw report %s: %d %r" % (" ".join(args), rc, err))
    out_path = os.path.join(t.workdir, "report.html")
    rc, out, err = run(t, "report", "-c", g.conf_path, "--connector", "north", "--format", "html",
                       "-o", out_path, "--since", "2026-01-01")
    check(rc == 0 and out == "" and os.path.getsize(out_path) > 0, "-o: %d %r %r" % (rc, out, err))
    check(not [f for f in os.listdir(t.workdir) if ".tmp." in f], "a temporary file was left")
    rc, out, err = run(t, "report", "-c", g.conf_path, "--connector", "north", "--format", "html",
                       "-o", os.path.join(t.workdir, "no", "such", "dir", "r.html"))
    check(rc == 1 and "cannot write" in err, "unwritable -o: %d %r" % (rc, err))


if __name__ == "__main__":
    main(globals())
