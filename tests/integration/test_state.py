#!/usr/bin/env python3
"""The stateful OKE rules through the running gateway, each with a valid and an invalid case:
a score fits the scale of its zitting or planbare toets (R20); a canceled zitting takes no new
deelnames and a cancel goes out as only the cancel (R18); flow 6 ends with the deelname; results
only for test enrolments (R19); an extra attempt names its original's person and offering (R24);
documents are never inlined (R25); staff deelnames carry no consumers (R27). What R22 forbids to
refuse (a result going back from completed or final: R21; a result on a staff deelname: R27;
extra time or aids the test does not offer: R28) is forwarded and flagged with its rule."""
import copy
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, fixture, main,  # noqa: E402
                       make_association, make_components, make_offering, ooapi_connector, poll)

TOKENS = {"dr": "dr-system-calls-okegw-1", "planning": "planning-calls-okegw-22",
          "alpha": "alpha-supplier-calls-333"}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def ex(name):
    return fixture(os.path.join("examples", name))


def setup(t, scale="0-10", extra_max=30, needs=("extraTime",), **gateway):
    comps = make_components(2)
    for c in comps:
        e = c["consumers"][0]
        e["resultValueType"] = scale
        e["additionalTestingTime"] = extra_max
        e["availablePersonalNeeds"] = list(needs)
    dr = t.peer([], name="dr")
    tpl = t.peer([], name="planning")
    a = t.peer(comps, name="alpha")
    g = t.gateway(conf([
        ("dr", {"plugin": "ooapi", "role": "dr", "phase": "live", "base_url": dr.base_url,
                "inbound_token": TOKENS["dr"]}),
        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
                      "inbound_token": TOKENS["planning"]}),
        ("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
    ], **gateway))
    check(g.request("GET", "/ooapi/components?componentType=test",
                    headers=auth("planning")).status == 200, "catalogue")
    return g, dr, tpl, a


def plan(g, tpl, a, kind="student", extra=None):
    o = make_offering(a.catalogue[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o,
                        headers=auth("planning")), "PUT zitting")
    s = make_association(o["offeringId"], kind=kind)
    if extra:
        s["consumers"][0].update(extra)
    r = g.request("PUT", "/ooapi/associations/" + s["associationId"], s, headers=auth("planning"))
    tpl.offerings[o["offeringId"]] = {"offeringId": o["offeringId"]}
    tpl.associations[s["associationId"]] = {"associationId": s["associationId"]}
    return o, s, r


def result(score="7", state="completed", final=False):
    return {"associationType": "componentOfferingAssociation",
            "result": {"state": state, "resultDate": "2026-06-16", "weight": 100, "score": score,
                       "pass": "passed",
                       "consumers": [{"consumerKey": "nl-test-admin", "attendance": "present",
                                      "final": final}]}}


def audit_rules(g):
    out = subprocess.run([g.binary, "audit", "-c", g.conf_path], capture_output=True, text=True,
                         timeout=30).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_r20_score_fits_the_zittings_scale(t):
    g, _, tpl, a = setup(t, scale="0-10")
    _, s, r = plan(g, tpl, a)
    check_2xx(r, "PUT deelname")
    aid = s["associationId"]
    r = g.request("PATCH", "/ooapi/associations/" + aid, result("95"), headers=auth("alpha"))
    check_problem(r, 400, "a score of 95 on a 0-10 test")
    check("R20" in r.body.decode() and "/result/score" in r.body.decode(),
          "the refusal names R20 and the pointer: %s" % r.short())
    check(tpl.find("PATCH") == [], "the off-scale result reached the TPL")
    r = g.request("PATCH", "/ooapi/associations/" + aid, result("7"), headers=auth("alpha"))
    check(r.status == 200 and len(tpl.find("PATCH")) == 1, "a 7 on a 0-10 test: %s" % r.short())


def test_r20_flow5_on_the_planbare_toets_scale(t):
    g, dr, tpl, _ = setup(t)
    pt = ex("flow1_put_offering_component_request.json")  # resultValueType 0.0-10.0
    ti = ex("flow1_put_association_component_request.json")
    check(g.request("PUT", "/ooapi/offerings/" + pt["offeringId"], pt, headers=auth("dr")).status
          == 201, "planbare toets")
    check(g.request("PUT", "/ooapi/associations/" + ti["associationId"], ti,
                    headers=auth("dr")).status == 201, "toetsinschrijving")
    dr.associations[ti["associationId"]] = ti
    res = ex("flow5_patch_association_result_request.json")
    bad = copy.deepcopy(res)
    bad["result"]["score"] = "B1"
    check_problem(g.request("PATCH", "/ooapi/associations/" + ti["associationId"], bad,
                            headers=auth("planning")), 400, "B1 on a 0.0-10.0 planbare toets")
    check(dr.find("PATCH") == [], "the DR got an off-scale result")
    check(g.request("PATCH", "/ooapi/associations/" + ti["associationId"], res,
                    headers=auth("planning")).status == 200, "5.4 on a 0.0-10.0 planbare toets")


def test_r18_canceled_zitting_and_cancel_bodies(t):
    g, _, tpl, a = setup(t)
    o, s, r = plan(g, tpl, a)
    check_2xx(r, "PUT deelname")
    oid = o["offeringId"]
    cancel = fixture("flow2_patch_offering_cancel_request.json")
    cancel["name"] = [{"language": "nl-NL", "value": "a field a cancel ignores"}]
    cancel["consumers"][0]["locationCode"] = "B1.23"
    r = g.request("PATCH", "/ooapi/offerings/" + oid, cancel, headers=auth("planning"))
    check(r.status == 200, "cancel: %s" % r.short())
    got = a.find("PATCH", "/offerings/" + oid)
    check(len(got) == 1 and got[0].json == {
        "offeringType": "component",
        "consumers": [{"consumerKey": "nl-test-admin", "offeringState": "canceled"}]},
        "the supplier got more than the cancel: %r" % (got and got[0].json))
    late = make_association(oid)
    r = g.request("PUT", "/ooapi/associations/" + late["associationId"], late,
                  headers=auth("planning"))
    check_problem(r, 409, "a new deelname on a canceled zitting")
    check(a.find("PUT", "/associations/" + late["associationId"]) == [],
          "the deelname reached the supplier")
    # what a canceled zitting still gets: its results (R22)
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], result(),
                  headers=auth("alpha"))
    check(r.status == 200, "a result on a canceled zitting is accepted: %s" % r.short())


def test_fields_an_interaction_does_not_carry_are_not_forwarded(t):
    """A peer gets what the profile defines for the interaction: a flow-3 result only its
    associationType and result (other fields are ignored), a flow-2 zitting without the
    flow-1 field resultValueType (R11); fields the profile does not know (extensions) stay;
    each removal is logged at debug."""
    g, _, tpl, a = setup(t, log_level="debug")
    o = make_offering(a.catalogue[0]["componentId"])
    o["resultValueType"] = "0-10"  # a planbare toets's field (flow 1)
    o["ext"] = {"school": "x"}
    oid = o["offeringId"]
    check_2xx(g.request("PUT", "/ooapi/offerings/" + oid, o, headers=auth("planning")),
              "PUT zitting")
    got = a.find("PUT", "/offerings/" + oid)
    check(len(got) == 1 and "resultValueType" not in got[0].json,
          "the flow-1 field reached the supplier: %r" % (got and got[0].json))
    want = {k: v for k, v in o.items() if k != "resultValueType"}
    check(got[0].json == want, "the zitting changed otherwise: %r" % got[0].json)
    ctype = got[0].headers.get("content-type", "")
    check(ctype.startswith("application/json"), "PUT content type %r" % ctype)
    s = make_association(oid)
    check_2xx(g.request("PUT", "/ooapi/associations/" + s["associationId"], s,
                        headers=auth("planning")), "PUT deelname")
    tpl.associations[s["associationId"]] = {"associationId": s["associationId"]}
    res = result()
    noisy = dict(res, state="associated", remoteState="x",
                 consumers=[{"consumerKey": "nl-test-admin", "personalNeeds": ["extraTime"]},
                            {"consumerKey": "other-school-system", "note": "y"}])
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], noisy,
                  headers=auth("alpha"))
    check(r.status == 200, "flow-3 result with fields it does not carry: %s" % r.short())
    got = tpl.find("PATCH", "/associations/" + s["associationId"])
    check(len(got) == 1 and got[0].json == res,
          "the planning system got more than the result: %r" % (got and got[0].json))
    rec = g.wait_log(lambda x: "not forwarded" in x.get("msg", "")
                     and "remoteState" in x.get("msg", ""), 3.0)
    check(rec and "consumers" in rec["msg"] and rec.get("resource") == s["associationId"],
          "no debug line names the removed fields: %r" % rec)


def test_flow6_ends_with_the_deelname(t):
    g, dr, tpl, a = setup(t)
    _, s, r = plan(g, tpl, a)
    check_2xx(r, "PUT deelname")
    pid = s["person"]["personId"]
    path = "/ooapi/persons/%s/associations" % pid
    g.request("GET", path, headers=auth("alpha"))
    check(len(dr.find("GET", "/persons/%s/associations" % pid)) == 1, "flow 6 with a deelname")
    cancel = fixture("flow2_patch_association_cancel_request.json")
    check(g.request("PATCH", "/ooapi/associations/" + s["associationId"], cancel,
                    headers=auth("planning")).status == 200, "deelname canceled")
    check_problem(g.request("GET", path, headers=auth("alpha")), 403, "flow 6 after the cancel")


def test_r21_r27_r28_flagged_not_refused(t):
    g, _, tpl, a = setup(t, extra_max=30, needs=("extraTime",))
    _, s, r = plan(g, tpl, a, extra={"additionalTimeInMin": 45, "personalNeeds": ["largeFont"]})
    check_2xx(r, "a deelname asking more than the test offers is forwarded")
    aid = s["associationId"]
    check(g.request("PATCH", "/ooapi/associations/" + aid, result("8", final=True),
                    headers=auth("alpha")).status == 200, "completed, final")
    r = g.request("PATCH", "/ooapi/associations/" + aid, result("8", state="in progress"),
                  headers=auth("alpha"))
    check(r.status == 200, "back to in progress is forwarded (R22): %s" % r.short())
    check(len(tpl.find("PATCH", "/associations/" + aid)) == 2, "the TPL got both results")
    lines = g.log_lines()
    for rule in ("R21", "R28"):
        rec = [x for x in lines if x.get("rule") == rule and x.get("level") == "warn"]
        check(rec and rec[0].get("resource") == aid, "no warning naming %s: %r" % (rule, rec))
    # an exchange's audit row is written after its answer: wait for it
    def both_flagged():
        flagged = [x for x in audit_rules(g) if x.get("rules")]
        return flagged if (any("R21" in x["rules"] for x in flagged) and
                           any("R28" in x["rules"] for x in flagged)) else None
    poll("the audit rows carrying R21 and R28", both_flagged, timeout=10)
    # a result for an invigilator: forwarded, flagged R27
    _, staff, r = plan(g, tpl, a, kind="invigilator")
    check_2xx(r, "staff deelname")
    r = g.request("PATCH", "/ooapi/associations/" + staff["associationId"], result(),
                  headers=auth("alpha"))
    check(r.status == 200, "a result on a staff deelname is forwarded: %s" % r.short())
    check(g.wait_log(lambda x: x.get("rule") == "R27") is not None, "no R27 warning")


def test_r27_staff_deelname_without_consumers(t):
    g, _, tpl, a = setup(t)
    o = make_offering(a.catalogue[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o,
                        headers=auth("planning")), "zitting")
    s = make_association(o["offeringId"], kind="invigilator")
    bad = copy.deepcopy(s)
    bad["consumers"] = [{"consumerKey": "nl-test-admin", "additionalTimeInMin": 10}]
    check_problem(g.request("PUT", "/ooapi/associations/" + bad["associationId"], bad,
                            headers=auth("planning")), 400, "consumers on a staff deelname")
    check_2xx(g.request("PUT", "/ooapi/associations/" + s["associationId"], s,
                        headers=auth("planning")), "the staff deelname without consumers")


def test_r25_documents_never_inlined(t):
    g, _, tpl, a = setup(t)
    _, s, r = plan(g, tpl, a)
    check_2xx(r, "PUT deelname")
    res = result()
    doc = {"documentId": "1f0e2d3c-4b5a-4697-8877-66554433aa09", "documentType": "other",
           "documentName": "a.pdf"}
    res["result"]["consumers"][0]["documents"] = [dict(doc, content="JVBERi0xLjQK")]
    r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], res, headers=auth("alpha"))
    check_problem(r, 400, "an inlined document")
    check("R25" in r.body.decode(), "the refusal names R25: %s" % r.short())
    res["result"]["consumers"][0]["documents"] = [doc]
    check(g.request("PATCH", "/ooapi/associations/" + s["associationId"], res,
                    headers=auth("alpha")).status == 200, "a referenced document")


def test_r24_attempt_names_its_original(t):
    g, dr, tpl, _ = setup(t)
    pt = ex("flow1_put_offering_component_request.json")
    ti = ex("flow1_put_association_component_request.json")
    g.request("PUT", "/ooapi/offerings/" + pt["offeringId"], pt, headers=auth("dr"))
    check(g.request("PUT", "/ooapi/associations/" + ti["associationId"], ti,
                    headers=auth("dr")).status == 201, "toetsinschrijving")
    att = ex("flow5_put_association_attempt_request.json")
    bad = copy.deepcopy(att)
    bad["person"] = "3c2b1a09-8f7e-4d6c-b5a4-0123456789ab"
    check_problem(g.request("PUT", "/ooapi/associations/" + bad["associationId"], bad,
                            headers=auth("planning")), 400, "an attempt for another person")
    check(dr.find("PUT") == [], "the DR got the wrong attempt")
    r = g.request("PUT", "/ooapi/associations/" + att["associationId"], att,
                  headers=auth("planning"))
    check(r.status in (200, 201), "the attempt of the original's person: %s" % r.short())


def test_r13_created_or_replaced_by_what_okegw_knows(t):
    """A supplier that answers 200 to every PUT: the planning system still hears 201 for a
    zitting okegw had never routed and 200 when it replaces one."""
    g, _, tpl, a = setup(t)
    o = make_offering(a.catalogue[0]["componentId"])
    a.canned[("PUT", "/offerings/" + o["offeringId"])] = (200, None)
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("planning"))
    check(r.status == 201, "a new zitting: %s" % r.short())
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("planning"))
    check(r.status == 200, "the same zitting again: %s" % r.short())


def test_r19_results_only_for_test_enrolments(t):
    g, dr, tpl, _ = setup(t)
    prog = ex("flow1_put_association_program_request.json")
    check(g.request("PUT", "/ooapi/associations/" + prog["associationId"], prog,
                    headers=auth("dr")).status == 201, "programme enrolment")
    res = ex("flow5_patch_association_result_request.json")
    res["consumers"][0]["orgAssociationId"] = prog["associationId"]
    r = g.request("PATCH", "/ooapi/associations/" + prog["associationId"], res,
                  headers=auth("planning"))
    check_problem(r, 400, "a result on a programme enrolment")
    check("R19" in r.body.decode(), "the refusal names R19: %s" % r.short())
    check(dr.find("PATCH") == [], "the DR got a result for a programme enrolment")


if __name__ == "__main__":
    main(globals())
