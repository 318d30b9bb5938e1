#!/usr/bin/env python3
"""What okegw checks is what it forwards, and the smaller conformance points an independent
OpenAPI validator in front of and behind okegw found: bodies with a NUL or data after the object,
query values of the catalogue and of relayed list reads, the case of UUIDs, the sim's PATCH
answer, the first read of a component not yet in the catalogue, and a peer whose pages never end."""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, fixture, make_association,  # noqa: E402
                       make_components, make_offering, main, new_id, ooapi_connector)

JSON = {"Content-Type": "application/json"}


def flow0(g, query="componentType=test&pageSize=50", headers=None):
    r = g.request("GET", "/ooapi/components?" + query, headers=headers)
    check(r.status == 200, "flow 0 GET components: %s" % r.short())
    return r.json()["items"]


def one_peer(t, **kw):
    peer = t.peer(make_components(3), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(peer, **kw))]))
    flow0(g)
    return g, peer


def refused(g, method, path, body, what, headers=None):
    """The raw body gets 400 problem+json; returns its detail."""
    h = dict(JSON)
    h.update(headers or {})
    p = check_problem(g.request(method, path, body, headers=h), 400, what)
    return p.get("detail", "")


# ---- 1. the body okegw checks is the body it forwards -----------------------

def test_body_nul_and_trailing_data_refused(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    path = "/ooapi/offerings/" + o["offeringId"]
    text = json.dumps(o)
    mark = peer.mark()
    # the \u0000 escape in any string (cJSON ends the string there)
    d = refused(g, "PUT", path, text.replace('"nl-NL"', '"nl-NL\\u0000x"', 1).encode(), "\\u0000")
    check("u0000" in d, "the detail should name the \\u0000 escape: %r" % d)
    refused(g, "PUT", path, text.replace('"offeringId": "', '"offeringId\\u0000": "', 1).encode(),
            "\\u0000 in a member name")
    # a raw NUL byte inside a string, and after the object (it cut the forwarded body short)
    d = refused(g, "PUT", path, text.replace('"nl-NL"', '"nl-\x00NL"', 1).encode(), "raw NUL in a string")
    check("NUL" in d, "the detail should name the NUL byte: %r" % d)
    refused(g, "PUT", path, text.encode() + b"\x00", "raw NUL after the object")
    refused(g, "PUT", path, text.encode() + b"\x00garbage", "raw NUL and data after the object")
    # data after the JSON value
    d = refused(g, "PUT", path, text.encode() + b' {"offeringId": "x"}', "a second object")
    check("after" in d, "the detail should say there is data after the object: %r" % d)
    refused(g, "PUT", path, text.encode() + b"]", "a stray bracket")
    refused(g, "PUT", path, text.encode() + b"\n\x01", "a control character after the object")
    refused(g, "PUT", path, text.replace('"nl-NL"', '"nl-\x01NL"', 1).encode(), "raw control character")
    refused(g, "PUT", path, text.replace('"nl-NL"', '"nl-\xffNL"', 1).encode("latin-1"), "not UTF-8")
    check(not peer.find("PUT", since=mark), "a refused body reached the supplier: %r" % peer.find(since=mark))
    # what is allowed: whitespace after the object, an escaped backslash before "u0000"
    o["x-note"] = "C:\\u0000"  # the text \u0000, not a NUL
    r = g.request("PUT", path, json.dumps(o).encode() + b" \r\n\t ", headers=JSON)
    check_2xx(r, "a body with trailing whitespace and an escaped backslash")
    got = peer.find("PUT", "/offerings/" + o["offeringId"])
    check(len(got) == 1 and got[0].json == o, "the supplier did not get the body as sent: %r" % got)


def test_callback_body_checked_too(t):
    """Supplier callbacks (POST /callbacks/NAME/...) go through the same body parser."""
    token = "callback-token-of-alpha-0123"
    g, peer = one_peer(t, callback_token=token)
    h = {"Authorization": "Bearer " + token}
    path = "/callbacks/alpha/results"
    good = json.dumps({"candidate_ref": new_id(), "grade": "7"})
    refused(g, "POST", path, good.encode() + b"\x00", "callback with a NUL after the object", h)
    refused(g, "POST", path, good.replace('"7"', '"7\\u0000"').encode(), "callback with \\u0000", h)
    refused(g, "POST", path, good.encode() + b"{}", "callback with a second object", h)
    r = g.request("POST", path, good.encode() + b"{}", headers=JSON)
    check(r.status == 401, "the token is checked before the body: %s" % r.short())


# ---- 2. the catalogue's query -------------------------------------------------

def test_catalogue_query_checked_before_fan_out(t):
    g, peer = one_peer(t)
    mark = peer.mark()
    for query, param, allowed in (("componentType=test&licensed=maybe", "licensed", "true or false"),
                                  ("pageSize=7", "pageSize", "10, 20, 50, 100, 250"),
                                  ("pageNumber=0", "pageNumber", "from 1"),
                                  ("sort=startDateTime", "sort", "componentId"),
                                  ("componentType=exam", "componentType", "test")):
        r = g.request("GET", "/ooapi/components?" + query)
        p = check_problem(r, 400, query)
        errs = p.get("errors") or []
        check(errs and errs[0].get("parameter") == param and allowed in errs[0].get("detail", ""),
              "%s: the problem should name %s and what it takes (%s): %r" % (query, param, allowed, p))
    check(not peer.find(since=mark), "a refused catalogue query was fanned out: %r" % peer.find(since=mark))
    # what the YAML and the digest allow, and parameters they do not declare, pass
    items = flow0(g, "componentType=test&licensed=true&sort=-name,componentId&x-own=1&pageSize=20")
    check(len(items) == 3, "the catalogue should still hold 3 components, got %d" % len(items))


def test_catalogue_sort_is_a_list(t):
    """The YAML's sort is a list (sort=name,-componentId or sort= repeated): okegw, which sorts
    the merged catalogue itself, follows every key."""
    comps = make_components(4)
    for c in comps[:3]:
        c["name"] = [{"language": "nl-NL", "value": "Zelfde naam"}]
    peer = t.peer(comps, name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(peer))]))
    same = sorted((c["componentId"] for c in comps[:3]), reverse=True)
    for query in ("sort=-name,-componentId", "sort=-name&sort=-componentId"):
        ids = [c["componentId"] for c in flow0(g, "componentType=test&" + query)]
        check(ids[:3] == same and ids[3] == comps[3]["componentId"],
              "%s: want %r then %s, got %r" % (query, same, comps[3]["componentId"], ids))
    ids = [c["componentId"] for c in flow0(g, "componentType=test&sort=-name,componentId")]
    check(ids[:3] == same[::-1], "sort=-name,componentId: got %r" % ids)


# ---- 3. query values of relayed list reads -------------------------------------

TOKENS = {"dr": "dr-system-calls-okegw-1", "planning": "planning-calls-okegw-22",
          "alpha": "alpha-supplier-calls-333"}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def test_relayed_list_queries_checked(t):
    dr = t.peer([], name="dr")
    a = t.peer(make_components(2), name="alpha")
    g = t.gateway(conf([
        ("dr", {"plugin": "ooapi", "role": "dr", "phase": "live", "base_url": dr.base_url,
                "inbound_token": TOKENS["dr"]}),
        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                      "base_url": t.peer([], name="planning").base_url,
                      "inbound_token": TOKENS["planning"]}),
        ("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
    ]))
    gid, pid, oid = new_id(), new_id(), new_id()
    bad = [("planning", "/offerings?offeringType=zitting", "offeringType"),
           ("planning", "/offerings?pageSize=7", "pageSize"),
           ("planning", "/offerings?since=tomorrow", "since"),
           ("planning", "/offerings?teachingLanguage=NL", "teachingLanguage"),
           ("planning", "/offerings?sort=groupId", "sort"),
           ("planning", "/groups?groupType=cohort", "groupType"),
           ("planning", "/groups?pageNumber=-2", "pageNumber"),
           ("planning", "/groups/%s/members?pageSize=1000" % gid, "pageSize"),
           ("planning", "/offerings/%s/associations?role=teacher" % oid, "role"),
           ("planning", "/offerings/%s/associations?associationType=componentOffering" % oid,
            "associationType"),
           ("alpha", "/persons/%s/associations?associationType=programOfferingAssociation" % pid,
            "associationType"),
           ("alpha", "/persons/%s/associations?result-state=done" % pid, "result-state")]
    marks = {p.name: p.mark() for p in (dr, a)}
    for who, path, param in bad:
        r = g.request("GET", "/ooapi" + path, headers=auth(who))
        p = check_problem(r, 400, path)
        check(any(e.get("parameter") == param for e in p.get("errors") or []),
              "%s: the problem should name %s: %r" % (path, param, p))
    for p in (dr, a):
        check(not p.find(since=marks[p.name]), "a refused query reached %s: %r" % (p.name, p.find()))
    # valid values (and undeclared parameters) are relayed as sent
    q = "offeringType=component&component.componentType=test&since=2026-03-01&until=2026-04-30&pageSize=50"
    g.request("GET", "/ooapi/offerings?" + q, headers=auth("planning"))
    got = dr.find("GET", "/offerings")
    check(got and got[-1].query_string == q, "the DR did not get the valid list read as sent: %r" % got)
    g.request("GET", "/ooapi/groups?groupType=learning%20group&q=klas", headers=auth("planning"))
    got = dr.find("GET", "/groups")
    check(got and got[-1].query.get("groupType") == "learning group", "groups read: %r" % got)


# ---- 4. one UUID, one resource --------------------------------------------------

def sim_gateway(t):
    return t.gateway(conf([("sim", {"plugin": "sim", "role": "ta", "phase": "live"})]))


def test_uuid_case_is_one_resource(t):
    g = sim_gateway(t)
    items = flow0(g)
    o = make_offering(items[0]["componentId"].upper())
    upper = o["offeringId"] = o["offeringId"].upper()
    check_2xx(g.request("PUT", "/ooapi/offerings/" + upper, o), "PUT a zitting with an upper-case id")
    r = g.request("GET", "/ooapi/offerings/" + upper.lower())
    check(r.status == 200 and r.json().get("offeringId", "").lower() == upper.lower(),
          "the lower-case form should name the same zitting: %s" % r.short())
    # a deelname naming its zitting in lower case is routed to the same supplier
    a = make_association(upper.lower())
    a["associationId"] = a["associationId"].upper()
    check_2xx(g.request("PUT", "/ooapi/associations/" + a["associationId"], a),
              "PUT a deelname naming the zitting in the other case")
    r = g.request("GET", "/ooapi/associations/" + a["associationId"].lower())
    check(r.status == 200, "the deelname by its lower-case id: %s" % r.short())
    rec = g.wait_log(lambda x: x.get("msg") == "request" and x.get("method") == "GET"
                     and x.get("interaction") == "flow2.get_association")
    check(rec and rec.get("connector") == "sim", "log: %r" % rec)


def test_upper_case_catalogue_ids(t):
    """A supplier that writes its componentIds in upper case: the owner is known under the id's
    one form, and the catalogue passes the components on as written."""
    comps = make_components(2)
    for c in comps:
        c["componentId"] = c["componentId"].upper()
    peer = t.peer(comps, name="alpha")
    twin = dict(comps[0], componentId=comps[0]["componentId"].lower())
    other = t.peer([twin], name="other")  # the same component in the other case
    g = t.gateway(conf([("alpha", ooapi_connector(peer)), ("other", ooapi_connector(other))]))
    ids = sorted(c["componentId"] for c in flow0(g))
    check(ids == sorted(c["componentId"] for c in comps), "one entry per component, as written: %r" % ids)
    mark, omark = peer.mark(), other.mark()
    cid = comps[0]["componentId"]
    r = g.request("GET", "/ooapi/components/" + cid.lower())
    # (the test peer compares ids exactly, so it answers 404: what counts is where okegw sent it)
    check(r.status in (200, 404) and r.header("okegw-failed-connectors") is None,
          "GET by the lower-case id: %s" % r.short())
    check(peer.find("GET", "/components/" + cid.lower(), since=mark) and not other.find(since=omark),
          "the read should go to the first owner only (no probe): alpha %r, other %r"
          % (peer.find(since=mark), other.find(since=omark)))
    o = make_offering(cid.lower())
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o), "PUT a zitting for it")
    check(peer.find("PUT", "/offerings/" + o["offeringId"]), "the zitting did not reach its owner")


def test_forwarded_body_keeps_its_ids(t):
    """okegw forwards what it checked: ids in the path and body stay as sent."""
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"].upper())
    upper = o["offeringId"] = o["offeringId"].upper()
    check_2xx(g.request("PUT", "/ooapi/offerings/" + upper, o), "PUT with upper-case ids")
    got = peer.find("PUT", "/offerings/" + upper)
    check(got and got[0].json == o, "the supplier should get path and body as sent: %r" % got)
    # the same zitting by its lower-case id is routed to the same supplier (not 404 at okegw)
    mark = peer.mark()
    g.request("GET", "/ooapi/offerings/" + upper.lower())
    check(peer.find("GET", "/offerings/" + upper.lower(), since=mark),
          "the lower-case read was not routed to the zitting's supplier: %r" % peer.find(since=mark))


# ---- 5. the sim's PATCH answers -------------------------------------------------

def test_sim_patch_answers(t):
    g = sim_gateway(t)
    items = flow0(g)
    o = make_offering(items[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o), "PUT zitting")
    a = make_association(o["offeringId"])
    check_2xx(g.request("PUT", "/ooapi/associations/" + a["associationId"], a), "PUT deelname")
    patch = fixture("flow2_patch_association_cancel_request.json")
    r = g.request("PATCH", "/ooapi/associations/" + a["associationId"], patch)
    check(r.status == 200, "PATCH deelname: %s" % r.short())
    check(r.content_type == "application/json", "the YAML's answer is JSON, got %r" % r.header("content-type"))
    body = r.json()
    check(body.get("associationId") == a["associationId"], "associationId: %r" % body)
    msg = body.get("message")
    check(isinstance(msg, list) and msg and all(isinstance(m.get("value"), str) and m.get("language")
                                                for m in msg), "message must be a list of LTS: %r" % body)
    check(body.get("state") == "canceled", "state: %r" % body)
    # PATCH /offerings/{id}: the YAML's 200 has no body
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"],
                  fixture("flow2_patch_offering_cancel_request.json"))
    check(r.status == 200 and not r.body, "PATCH zitting: %s" % r.short())


# ---- 6. the probe's answer is checked --------------------------------------------

def broken_component():
    c = make_components(1)[0]
    c["componentType"] = "lecture"  # the profile knows only tests (R26)
    return c


def test_probed_component_checked(t):
    peer = t.peer([broken_component()], name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(peer, validate_answers="block"))]))
    cid = peer.catalogue[0]["componentId"]
    # not in the catalogue yet: okegw probes every TA and relays the owner's answer
    r = g.request("GET", "/ooapi/components/" + cid)
    p = check_problem(r, 502, "a probed component that breaks the profile (validate_answers = block)")
    check(any(e.get("pointer") == "/componentType" for e in p.get("errors") or []), "errors: %r" % p)
    check(peer.find("GET", "/components/" + cid), "the supplier was not asked")
    rec = g.wait_log(lambda x: "breaks the OKE profile" in x.get("msg", ""))
    check(rec and rec.get("connector") == "alpha", "no warning logged: %r" % rec)


def test_probed_component_warn_passes(t):
    peer = t.peer([broken_component()], name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(peer))]))  # validate_answers = warn
    cid = peer.catalogue[0]["componentId"]
    r = g.request("GET", "/ooapi/components/" + cid)
    check(r.status == 200 and r.json().get("componentId") == cid, "warn passes it on: %s" % r.short())
    rec = g.wait_log(lambda x: "breaks the OKE profile" in x.get("msg", ""))
    check(rec and "passed on" in rec.get("msg", ""), "no warning logged: %r" % rec)


# ---- 7. a peer whose pages never end ----------------------------------------------

def test_endless_pages_logged_once(t):
    comps = make_components(2)
    endless = t.peer([], name="endless")
    endless.canned[("GET", "/components")] = (200, {"pageSize": 250, "pageNumber": 1,
                                                    "hasPreviousPage": False, "hasNextPage": True,
                                                    "items": comps})
    other = t.peer([comps[0]], name="other")
    g = t.gateway(conf([("endless", ooapi_connector(endless)), ("other", ooapi_connector(other))]))
    items = flow0(g)
    ids = [c["componentId"] for c in items]
    check(sorted(ids) == sorted(c["componentId"] for c in comps), "each component once: %r" % ids)
    asked = len(endless.find("GET", "/components"))
    check(asked == 40, "okegw should stop at catalogue_max_pages (40), asked %d pages" % asked)
    g.wait_log(lambda x: "more than catalogue_max_pages" in x.get("msg", ""))
    lines = g.log_lines()
    repeats = [x for x in lines if "more than once" in x.get("msg", "")]
    owners = [x for x in lines if "more than one connector" in x.get("msg", "")]
    check(len(repeats) == 1 and repeats[0].get("connector") == "endless"
          and "%d component(s)" % (2 * 39) in repeats[0]["msg"],
          "one line with the count for the connector that repeats itself: %r" % repeats)
    check(len(owners) == 1 and owners[0].get("connector") == "other"
          and "1 component(s)" in owners[0]["msg"] and "'endless'" in owners[0]["msg"],
          "one line for the second owner, naming the first: %r" % owners)


def test_supplier_version_checked_at_first_contact(t):
    """R31: okegw asks each OKE supplier's GET / when it starts; one that does not declare
    OOAPI v5 with the nl-test-admin consumer is logged and reported unhealthy, a good one not."""
    good = t.peer(make_components(1), name="good")
    old = t.peer(make_components(1), name="old")
    old.canned[("GET", "/")] = (200, {"supportedVersions": ["v4"], "supportedConsumers": []})
    g = t.gateway(conf([("good", ooapi_connector(good)), ("old", ooapi_connector(old))]))
    rec = g.wait_log(lambda x: x.get("connector") == "old" and "R31" in x.get("msg", ""), 5.0)
    check(rec is not None and rec.get("level") == "warn", "no R31 warning for the old supplier")
    check(len(old.metadata_requests) >= 1 and len(good.metadata_requests) >= 1,
          "okegw did not ask GET / of both suppliers")
    good_rec = g.wait_log(lambda x: x.get("connector") == "good" and "R31" in x.get("msg", ""), 2.0)
    check(good_rec is not None and good_rec.get("level") == "info",
          "the good supplier: %r" % good_rec)


if __name__ == "__main__":
    main(globals())
