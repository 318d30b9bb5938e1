#!/usr/bin/env python3
"""Flows 1, 5 and 6 when DR and TPL are separate systems behind okegw: the DR's flow-1 push
reaches the TPL; the TPL's reads of planbare toetsen reach the DR; a result (flow 5) goes to the
DR that sent the toetsinschrijving, and only then; an extra attempt follows its original; a TA
reads programme enrolments (flow 6) only of persons it holds a deelname for."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, fixture, main,  # noqa: E402
                       make_components, ooapi_connector)

TOKENS = {"dr": "dr-system-calls-okegw-1", "planning": "planning-calls-okegw-22",
          "alpha": "alpha-supplier-calls-333"}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def ex(name):
    return fixture(os.path.join("examples", name))


def setup(t):
    dr = t.peer([], name="dr")
    tpl = t.peer([], name="planning")
    a = t.peer(make_components(2), name="alpha")
    g = t.gateway(conf([
        ("dr", {"plugin": "ooapi", "role": "dr", "phase": "live", "base_url": dr.base_url,
                "inbound_token": TOKENS["dr"]}),
        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
                      "inbound_token": TOKENS["planning"]}),
        ("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
    ]))
    return g, dr, tpl, a


def flow1(g, dr, tpl):
    pt = ex("flow1_put_offering_component_request.json")
    ti = ex("flow1_put_association_component_request.json")
    r = g.request("PUT", "/ooapi/offerings/" + pt["offeringId"], pt, headers=auth("dr"))
    check(r.status == 201, "flow-1 PUT planbare toets: %s" % r.short())
    r = g.request("PUT", "/ooapi/associations/" + ti["associationId"], ti, headers=auth("dr"))
    check(r.status == 201, "flow-1 PUT toetsinschrijving: %s" % r.short())
    check(tpl.offerings.get(pt["offeringId"]) == pt, "the TPL did not get the planbare toets")
    check(tpl.associations.get(ti["associationId"]) == ti, "the TPL did not get the inschrijving")
    check(not dr.find(), "the DR got its own push back: %r" % dr.find())
    # the DR holds what it sent (its own GETs and flow-5 targets)
    dr.offerings[pt["offeringId"]] = pt
    dr.associations[ti["associationId"]] = ti
    return pt, ti


def test_flow1_push_and_pull(t):
    g, dr, tpl, _ = setup(t)
    pt, ti = flow1(g, dr, tpl)
    r = g.request("GET", "/ooapi/offerings/" + pt["offeringId"], headers=auth("planning"))
    check(r.status == 200 and r.json() == pt, "TPL reading the planbare toets at the DR: %s" % r.short())
    r = g.request("GET", "/ooapi/associations/" + ti["associationId"], headers=auth("planning"))
    check(r.status == 200 and r.json()["associationId"] == ti["associationId"],
          "TPL reading the toetsinschrijving at the DR: %s" % r.short())
    mark = dr.mark()
    g.request("GET", "/ooapi/offerings?offeringType=component&since=2026-01-01",
              headers=auth("planning"))
    got = dr.find("GET", "/offerings", since=mark)
    check(got and got[0].query.get("since") == "2026-01-01", "the DR did not get the list: %r" % got)
    # a DR does not plan zittingen and a TPL does not push flow 1
    check_problem(g.request("GET", "/ooapi/offerings", headers=auth("dr")), 403, "DR reading flow 1")
    rec = g.wait_log(lambda x: x.get("interaction") == "flow1.put_offering")
    check(rec and rec.get("caller") == "dr" and rec.get("connector") == "planning", "log: %r" % rec)


def test_flow5_result_goes_to_its_dr(t):
    g, dr, tpl, _ = setup(t)
    pt, ti = flow1(g, dr, tpl)
    res = ex("flow5_patch_association_result_request.json")
    r = g.request("PATCH", "/ooapi/associations/" + ti["associationId"], res,
                  headers=auth("planning"))
    check(r.status == 200, "flow-5 PATCH: %s" % r.short())
    got = dr.find("PATCH", "/associations/" + ti["associationId"])
    check(len(got) == 1 and got[0].json == res, "the DR got %r" % got)
    rec = g.wait_log(lambda x: x.get("interaction") == "flow5.patch_association")
    check(rec and rec.get("connector") == "dr", "log: %r" % rec)
    # an id okegw never saw from a DR: refused, nothing forwarded
    mark = dr.mark()
    r = g.request("PATCH", "/ooapi/associations/1d7e1c58-6a0e-4d53-9a54-8e2b7f6c0a11", res,
                  headers=auth("planning"))
    check_problem(r, 400, "a result for an unknown toetsinschrijving (R17)")
    check(not dr.find(since=mark), "the DR got %r" % dr.find(since=mark))
    # an extra attempt: a new id, routed by its orgAssociationId, then a PATCH on the new id
    att = ex("flow5_put_association_attempt_request.json")
    r = g.request("PUT", "/ooapi/associations/" + att["associationId"], att,
                  headers=auth("planning"))
    check(r.status in (200, 201), "flow-5 PUT attempt: %s" % r.short())
    check(dr.associations.get(att["associationId"]) == att, "the DR did not get the attempt")
    r = g.request("PATCH", "/ooapi/associations/" + att["associationId"], res,
                  headers=auth("planning"))
    check(r.status == 200 and dr.find("PATCH", "/associations/" + att["associationId"]),
          "PATCH on the attempt's new id: %s" % r.short())


def test_flow6_only_own_candidates(t):
    g, dr, tpl, a = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test", headers=auth("planning"))
    check(r.status == 200, "catalogue: %s" % r.short())
    o = fixture("flow2_put_offering_request.json")
    o["component"] = a.catalogue[0]["componentId"]
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("planning")),
              "PUT zitting")
    s = fixture("flow2_put_association_student_request.json")
    check_2xx(g.request("PUT", "/ooapi/associations/" + s["associationId"], s,
                        headers=auth("planning")), "PUT deelname")
    pid = s["person"]["personId"]
    g.request("GET", "/ooapi/persons/%s/associations?associationType=programOffering" % pid,
              headers=auth("alpha"))
    got = dr.find("GET", "/persons/%s/associations" % pid)
    check(len(got) == 1 and got[0].query.get("associationType") == "programOffering",
          "the DR did not get the flow-6 read: %r" % got)
    mark = dr.mark()
    other = "3c2b1a09-8f7e-4d6c-b5a4-0123456789ab"
    r = g.request("GET", "/ooapi/persons/%s/associations" % other, headers=auth("alpha"))
    check_problem(r, 403, "flow 6 for a person without a deelname at this TA")
    check(not dr.find(since=mark), "the DR got %r" % dr.find(since=mark))
    check_problem(g.request("GET", "/ooapi/persons/%s/associations" % pid,
                            headers=auth("planning")), 403, "a TPL calling flow 6")


if __name__ == "__main__":
    main(globals())
