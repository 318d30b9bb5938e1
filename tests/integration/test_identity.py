#!/usr/bin/env python3
"""Caller identity and the return route: each system presents its own token; the same path
means another interaction for another caller (a TA's PATCH of an association is a flow-3
result for the planning system); a TA may only write back to what it was sent."""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, fixture, main,  # noqa: E402
                       make_association, make_components, make_offering, ooapi_connector)

TOKENS = {"alpha": "alpha-calls-okegw-0001", "beta": "beta-calls-okegw-00002",
          "planning": "planning-calls-okegw-3"}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def setup(t, planning_scopes=None, **gateway):
    a = t.peer(make_components(3), name="alpha")
    b = t.peer(make_components(2), name="beta")
    tpl = t.peer([], name="planning")
    planning = {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
                "inbound_token": TOKENS["planning"]}
    if planning_scopes:
        planning["scopes"] = planning_scopes
    g = t.gateway(conf([("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
                        ("beta", ooapi_connector(b, inbound_token=TOKENS["beta"])),
                        ("planning", planning)], **gateway))
    return g, a, b, tpl


def plan_at_alpha(g, a, tpl):
    r = g.request("GET", "/ooapi/components?componentType=test", headers=auth("planning"))
    check(r.status == 200, "catalogue: %s" % r.short())
    o = fixture("flow2_put_offering_request.json")
    o["component"] = a.catalogue[0]["componentId"]
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("planning")),
              "PUT offering")
    s = fixture("flow2_put_association_student_request.json")
    check_2xx(g.request("PUT", "/ooapi/associations/" + s["associationId"], s,
                        headers=auth("planning")), "PUT association")
    # the planning system knows what it planned
    tpl.offerings[o["offeringId"]] = {"offeringId": o["offeringId"]}
    tpl.associations[s["associationId"]] = {"associationId": s["associationId"]}
    return o, s


RESULT = {"associationType": "componentOfferingAssociation",
          "result": {"state": "completed", "resultDate": "2026-06-16", "weight": 100, "score": "7.5",
                     "pass": "passed",
                     "consumers": [{"consumerKey": "nl-test-admin", "attendance": "present"}]}}
REPORT = {"offeringType": "component",
          "consumers": [{"consumerKey": "nl-test-admin", "irregularities": "Brandalarm om 10:12",
                         "documents": []}]}


def test_no_or_wrong_token_is_401(t):
    g, _, _, _ = setup(t)
    for headers in (None, {"Authorization": "Bearer not-a-token-of-anyone"},
                    {"Authorization": "Basic cGxhbm5pbmc6eA=="}):
        r = g.request("GET", "/ooapi/components?componentType=test", headers=headers)
        check_problem(r, 401, "headers %r" % headers)
        check(r.header("WWW-Authenticate", "").startswith("Bearer"), "no WWW-Authenticate: %r" % r)


def test_result_goes_back_to_planning(t):
    g, a, b, tpl = setup(t)
    o, s = plan_at_alpha(g, a, tpl)
    aid = s["associationId"]
    r = g.request("PATCH", "/ooapi/associations/" + aid, RESULT, headers=auth("alpha"))
    check(r.status == 200, "flow-3 PATCH from the TA that got the deelname: %s" % r.short())
    got = tpl.find("PATCH", "/associations/" + aid)
    check(len(got) == 1 and got[0].json == RESULT, "planning got %r" % got)
    check(not a.find("PATCH") and not b.find("PATCH"), "a supplier got the result back")
    rec = g.wait_log(lambda x: x.get("msg") == "request" and x.get("method") == "PATCH")
    check(rec and rec.get("caller") == "alpha" and rec.get("connector") == "planning"
          and rec.get("interaction") == "flow3.patch_association", "log line: %r" % rec)
    # flow 4: the session report of its own zitting
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"], REPORT, headers=auth("alpha"))
    check(r.status == 200, "flow-4 PATCH: %s" % r.short())
    got = tpl.find("PATCH", "/offerings/" + o["offeringId"])
    check(len(got) == 1 and got[0].json == REPORT, "planning got %r" % got)


def test_other_ta_is_refused_and_nothing_forwarded(t):
    g, a, b, tpl = setup(t)
    o, s = plan_at_alpha(g, a, tpl)
    mark = tpl.mark()
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], RESULT, headers=auth("beta"))
    check_problem(r, 403, "beta writing alpha's deelname")
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"], REPORT, headers=auth("beta"))
    check_problem(r, 403, "beta reporting on alpha's zitting")
    r = g.request("PATCH", "/ooapi/associations/0b8c2a53-9e4b-4d0e-8a7f-3f1d2c4b5a69", RESULT,
                  headers=auth("alpha"))
    check_problem(r, 400, "a deelname never delivered (R17: no 404 on a PATCH of an association)")
    check(not tpl.find(since=mark), "the planning system got %r" % tpl.find(since=mark))
    rec = g.wait_log(lambda x: x.get("level") == "warn" and x.get("connector") == "beta"
                     and "refused" in x.get("msg", ""))
    check(rec is not None, "the refusal is not in the log")


def test_roles_and_scopes(t):
    g, a, _, tpl = setup(t, planning_scopes="nl-test-admin-flow-0")
    # a TA does not fetch the catalogue, nor plan zittingen
    check_problem(g.request("GET", "/ooapi/components?componentType=test", headers=auth("alpha")),
                  403, "a TA calling flow 0")
    o = fixture("flow2_put_offering_request.json")
    o["component"] = a.catalogue[0]["componentId"]
    check_problem(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("alpha")),
                  403, "a TA planning a zitting")
    # planning with only the flow-0 scope: catalogue yes, zittingsplan no
    r = g.request("GET", "/ooapi/components?componentType=test", headers=auth("planning"))
    check(r.status == 200, "flow 0 with its scope: %s" % r.short())
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("planning"))
    check_problem(r, 403, "flow 2 without the flow-2-3-4 scope")
    check("nl-test-admin-flow-2-3-4" in r.json().get("detail", ""), "detail: %r" % r.json())
    check(not a.non_catalogue(), "the supplier got %r" % a.non_catalogue())


def test_documents_come_from_the_ta_that_referenced_them(t):
    g, a, b, tpl = setup(t)
    o, s = plan_at_alpha(g, a, tpl)
    doc_id = "9b7e4c1a-2d3f-4a5b-8c6d-7e8f9a0b1c2d"
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 400  # binary, about 100 KiB
    a.documents[doc_id] = pdf
    b.documents[doc_id] = b"not this one"
    # before any message referenced it, the document is unknown
    check_problem(g.request("GET", "/ooapi/documents/" + doc_id, headers=auth("planning")), 404,
                  "an unreferenced document")
    report = json.loads(json.dumps(REPORT))
    report["consumers"][0]["documents"] = [{"documentId": doc_id, "documentType": "sessionReport",
                                            "documentName": "proces-verbaal.pdf"}]
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"], report, headers=auth("alpha"))
    check(r.status == 200, "flow-4 report with a document: %s" % r.short())
    r = g.request("GET", "/ooapi/documents/" + doc_id, headers=auth("planning"))
    check(r.status == 200 and r.body == pdf, "document: %d, %d bytes" % (r.status, len(r.body)))
    check(r.header("Content-Type") == "application/octet-stream", "type: %r" % r.header("Content-Type"))
    check(a.find("GET", "/documents/" + doc_id) and not b.find("GET", "/documents/" + doc_id),
          "fetched from the wrong TA")
    # a TA does not fetch documents
    check_problem(g.request("GET", "/ooapi/documents/" + doc_id, headers=auth("alpha")), 403,
                  "a TA fetching a document")


def test_large_documents_stream_and_are_capped(t):
    g, a, b, tpl = setup(t, max_document_bytes=8 << 20)
    o, s = plan_at_alpha(g, a, tpl)
    big, huge = "1f1e1d1c-1b1a-4918-8716-151413121110", "2f2e2d2c-2b2a-4928-8726-252423222120"
    a.documents[big] = os.urandom(6 << 20)    # under the cap: passes whole, in pieces
    a.documents[huge] = os.urandom(12 << 20)  # over it: cut off, never buffered whole
    report = json.loads(json.dumps(REPORT))
    report["consumers"][0]["documents"] = [
        {"documentId": big, "documentType": "sessionReport", "documentName": "pv.pdf"},
        {"documentId": huge, "documentType": "attendanceReport", "documentName": "lijst.pdf"}]
    check(g.request("PATCH", "/ooapi/offerings/" + o["offeringId"], report,
                    headers=auth("alpha")).status == 200, "flow-4 report")
    r = g.request("GET", "/ooapi/documents/" + big, headers=auth("planning"), timeout=60)
    check(r.status == 200 and r.body == a.documents[big], "6 MiB document: %d, %d bytes"
          % (r.status, len(r.body)))
    check((r.header("Transfer-Encoding") or "").lower() == "chunked", "not streamed: %r" % r)
    try:
        r = g.request("GET", "/ooapi/documents/" + huge, headers=auth("planning"), timeout=60)
        check(len(r.body) < len(a.documents[huge]), "a 12 MiB document passed an 8 MiB cap")
    except Exception as e:  # the cut-off answer: the client sees it incomplete
        check("Incomplete" in type(e).__name__ or "Remote" in type(e).__name__
              or "Connection" in type(e).__name__, "unexpected error %r" % e)
    rec = g.wait_log(lambda x: x.get("msg") == "request (cut off)")
    check(rec is not None, "the cut-off is not in the log")
    r = g.request("GET", "/healthz")
    check(r.status == 200, "okegw after a cut-off document: %s" % r.short())


def test_results_go_to_the_tpl_that_planned(t):
    """Two planning systems share one supplier (ground rule 3): each result and report goes
    back to the one that planned the zitting (ground rule 5)."""
    a = t.peer(make_components(2), name="alpha")
    tpls = {n: t.peer([], name=n) for n in ("north", "south")}
    tokens = {"north": "north-plans-zittingen-1", "south": "south-plans-zittingen-2"}
    conns = [("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"]))]
    conns += [(n, {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": p.base_url,
                   "inbound_token": tokens[n]}) for n, p in tpls.items()]
    g = t.gateway(conf(conns))
    deelnames = {}
    for n in ("north", "south"):
        h = {"Authorization": "Bearer " + tokens[n]}
        check(g.request("GET", "/ooapi/components?componentType=test", headers=h).status == 200,
              "catalogue for %s" % n)
        o = make_offering(a.catalogue[0]["componentId"])
        check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=h), n + " zitting")
        d = make_association(o["offeringId"])
        check_2xx(g.request("PUT", "/ooapi/associations/" + d["associationId"], d, headers=h),
                  n + " deelname")
        tpls[n].offerings[o["offeringId"]] = {}
        tpls[n].associations[d["associationId"]] = {}
        deelnames[n] = (o["offeringId"], d["associationId"])
    for n, (oid, did) in deelnames.items():
        other = "south" if n == "north" else "north"
        r = g.request("PATCH", "/ooapi/associations/" + did, RESULT, headers=auth("alpha"))
        check(r.status == 200, "result for %s's deelname: %s" % (n, r.short()))
        check(tpls[n].find("PATCH", "/associations/" + did), "%s did not get its result" % n)
        check(not tpls[other].find("PATCH", "/associations/" + did), "%s got %s's result" % (other, n))
        r = g.request("PATCH", "/ooapi/offerings/" + oid, REPORT, headers=auth("alpha"))
        check(r.status == 200 and tpls[n].find("PATCH", "/offerings/" + oid)
              and not tpls[other].find("PATCH", "/offerings/" + oid), "report for %s" % n)


def test_audit_trail(t):
    """Every exchange leaves one audit row: who, what, which connector, how it ended, the
    mapping hash and the body's SHA-256 -- never the body."""
    import hashlib
    import subprocess
    g, a, b, tpl = setup(t)
    o, s = plan_at_alpha(g, a, tpl)
    aid = s["associationId"]
    raw = json.dumps(RESULT).encode()
    r = g.request("PATCH", "/ooapi/associations/" + aid, raw,
                  headers=dict(auth("alpha"), **{"Content-Type": "application/json"}))
    check(r.status == 200, "flow-3 PATCH: %s" % r.short())
    check_problem(g.request("PATCH", "/ooapi/associations/" + aid, RESULT, headers=auth("beta")),
                  403, "beta writing alpha's deelname")
    g.stop()  # the rows are committed before okegw exits
    out = subprocess.run([t.binary, "audit", "-c", g.conf_path, "--resource", aid],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "okegw audit: %s" % out.stderr)
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    kinds = [(x.get("interaction"), x.get("caller"), x.get("status")) for x in rows]
    check(("flow2.put_association", "planning", 201) in kinds, "no deelname PUT row: %r" % kinds)
    check(("flow3.patch_association", "alpha", 200) in kinds, "no flow-3 row: %r" % kinds)
    check(("flow3.patch_association", "beta", 403) in kinds, "the refusal is not audited: %r" % kinds)
    f3 = next(x for x in rows if x.get("caller") == "alpha")
    check(f3.get("connector") == "planning" and f3.get("flow") == 3, "row: %r" % f3)
    check(f3.get("body_sha256") == hashlib.sha256(raw).hexdigest(), "digest: %r" % f3)
    check(not any("result" in json.dumps(x) for x in rows), "a body leaked into the trail")
    out = subprocess.run([t.binary, "audit", "-c", g.conf_path, "--since", "2000-01-01",
                          "--until", "2000-12-31"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and out.stdout == "", "a time range with nothing in it: %r" % out.stdout)


if __name__ == "__main__":
    main(globals())
