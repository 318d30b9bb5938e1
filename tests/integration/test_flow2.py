#!/usr/bin/env python3
"""Flow 2 (zittingsplan) routed through okegw to the TA that owns the component."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, fixture, make_association,  # noqa: E402
                       make_components, make_offering, main, new_id, ooapi_connector)


def flow0(g, n_expected=None):
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200, "flow 0 GET components: %s" % r.short())
    items = r.json().get("items", [])
    if n_expected is not None:
        check(len(items) == n_expected, "flow 0: expected %d components, got %d" % (n_expected, len(items)))
    return items


def one_peer(t):
    peer = t.peer(make_components(3), name="remindo")
    g = t.gateway(conf([("remindo", ooapi_connector(peer, test_system="RemindoToets"))]))
    flow0(g, 3)
    return g, peer


def put(g, kind, obj):
    key = {"offerings": "offeringId", "associations": "associationId"}[kind]
    return g.request("PUT", "/ooapi/%s/%s" % (kind, obj[key]), obj)


def test_put_offering_reaches_peer(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[1]["componentId"])
    r = put(g, "offerings", o)
    check_2xx(r, "PUT offering")
    got = peer.find("PUT", "/offerings/" + o["offeringId"])
    check(len(got) == 1, "the supplier should get exactly one PUT, got %d" % len(got))
    check(got[0].json == o, "the supplier got different JSON: %r" % got[0].body[:300])
    check("json" in (got[0].headers.get("content-type") or ""),
          "Content-Type not forwarded: %r" % got[0].headers.get("content-type"))
    check(peer.offerings.get(o["offeringId"]) == o, "the supplier did not store the offering")


def test_put_status_passthrough(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    r = put(g, "offerings", o)
    check(r.status == 201, "first PUT (supplier answers 201 Created) -> %s" % r.short())
    o["name"][0]["value"] = "Verplaatst"
    r = put(g, "offerings", o)
    check(r.status == 200, "second PUT (supplier answers 200 replaced) -> %s" % r.short())
    check(peer.offerings[o["offeringId"]]["name"][0]["value"] == "Verplaatst", "replacement not forwarded")


def test_put_associations_reach_peer(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[2]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering")
    for kind in ("student", "invigilator"):
        a = make_association(o["offeringId"], kind)
        r = put(g, "associations", a)
        check_2xx(r, "PUT %s association" % kind)
        got = peer.find("PUT", "/associations/" + a["associationId"])
        check(len(got) == 1, "%s association: supplier got %d PUTs" % (kind, len(got)))
        check(got[0].json == a, "%s association arrived changed: %r" % (kind, got[0].body[:300]))


def test_reads_go_to_peer(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering")
    s = make_association(o["offeringId"], "student")
    i = make_association(o["offeringId"], "invigilator")
    check_2xx(put(g, "associations", s), "PUT student")
    check_2xx(put(g, "associations", i), "PUT invigilator")

    m = peer.mark()
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json() == peer.offerings[o["offeringId"]], "GET offering: %s" % r.short())
    check(peer.find("GET", "/offerings/" + o["offeringId"], since=m), "GET offering did not reach the supplier")

    m = peer.mark()
    r = g.request("GET", "/ooapi/offerings/%s/associations?role=student" % o["offeringId"])
    check(r.status == 200, "GET offering associations: %s" % r.short())
    page = r.json()
    ids = sorted(x.get("associationId") for x in page.get("items", []))
    check(ids == sorted([s["associationId"], i["associationId"]]),
          "offering associations should be the two deelnames, got %r" % ids)
    fwd = peer.find("GET", "/offerings/%s/associations" % o["offeringId"], since=m)
    check(fwd and fwd[0].query.get("role") == "student", "query not forwarded: %r" % fwd)

    r = g.request("GET", "/ooapi/associations/%s?expand=person" % s["associationId"])
    check(r.status == 200 and r.json() == s, "GET association: %s" % r.short())
    fwd = peer.find("GET", "/associations/" + s["associationId"])
    check(fwd and fwd[0].query.get("expand") == "person", "expand=person not forwarded: %r" % fwd)

    r = g.request("GET", "/ooapi/associations/%s/url" % i["associationId"])
    check(r.status == 200, "GET association url: %s" % r.short())
    check(r.json() == peer.url_for(i["associationId"]), "url differs from the supplier's: %r" % r.body)
    check(peer.find("GET", "/associations/%s/url" % i["associationId"]), "url GET did not reach the supplier")


def test_supplier_404_passthrough(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering")
    a = make_association(o["offeringId"])
    check_2xx(put(g, "associations", a), "PUT association")
    # the supplier does not know this one (it was never sent there); okegw knows its offering
    peer.associations.pop(a["associationId"])
    r = g.request("GET", "/ooapi/associations/" + a["associationId"])
    check_problem(r, 404, "GET an association the supplier answers 404 for")


def test_patch_offering_cancel(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering")
    patch = fixture("flow2_patch_offering_cancel_request.json")
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"], patch,
                  {"Content-Type": "application/merge-patch+json"})
    check(r.status == 200, "PATCH cancel: %s" % r.short())
    got = peer.find("PATCH", "/offerings/" + o["offeringId"])
    check(got and got[0].json == patch, "the cancel PATCH did not reach the supplier intact: %r" % got)
    check("json" in (got[0].headers.get("content-type") or ""), "PATCH Content-Type %r"
          % got[0].headers.get("content-type"))
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json()["consumers"][0].get("offeringState") == "canceled",
          "offering not canceled at the supplier: %s" % r.short())


def test_patch_association_cancel(t):
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering")
    a = make_association(o["offeringId"])
    check_2xx(put(g, "associations", a), "PUT association")
    patch = fixture("flow2_patch_association_cancel_request.json")
    r = g.request("PATCH", "/ooapi/associations/" + a["associationId"], patch)
    check_2xx(r, "PATCH association cancel")
    got = peer.find("PATCH", "/associations/" + a["associationId"])
    check(got and got[0].json == patch, "the cancel PATCH did not reach the supplier intact")
    check(peer.associations[a["associationId"]]["state"] == "canceled", "association not canceled")


def test_offering_for_unowned_component(t):
    a = t.peer(make_components(2), name="alpha")
    b = t.peer(make_components(2, numbers=[5, 6]), name="beta")
    g = t.gateway(conf([("alpha", ooapi_connector(a)), ("beta", ooapi_connector(b))]))
    flow0(g, 4)
    o = make_offering(new_id())
    r = put(g, "offerings", o)
    check(400 <= r.status < 500, "offering for a component nobody owns: want 4xx, got %s" % r.short())
    check_problem(r, r.status, "offering for an unowned component")
    for p in (a, b):
        check(not p.non_catalogue(), "something reached %s: %r" % (p.name, p.non_catalogue()))
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(400 <= r.status < 500, "the refused offering must stay unknown: %s" % r.short())


def test_association_for_unknown_offering(t):
    g, peer = one_peer(t)
    a = make_association(new_id())
    r = put(g, "associations", a)
    check(400 <= r.status < 500, "association for an unknown offering: want 4xx, got %s" % r.short())
    check_problem(r, r.status, "association for an unknown offering")
    r = g.request("GET", "/ooapi/offerings/%s/associations" % new_id())
    check(400 <= r.status < 500, "associations of an unknown offering: want 4xx, got %s" % r.short())
    check_problem(r, r.status, "associations of an unknown offering")
    check(not peer.non_catalogue(), "something reached the supplier: %r" % peer.non_catalogue())


def test_put_id_mismatch_400(t):
    """R12: body id != path id may be refused with 400, by okegw or by the supplier."""
    g, peer = one_peer(t)
    o = make_offering(peer.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + new_id(), o)
    check_problem(r, 400, "PUT whose body offeringId differs from the path (supplier refuses it)")


def test_two_peers_route_by_component(t):
    a = t.peer(make_components(3, numbers=[0, 2, 4]), name="alpha")
    b = t.peer(make_components(3, numbers=[1, 3, 5]), name="beta")
    g = t.gateway(conf([("alpha", ooapi_connector(a)), ("beta", ooapi_connector(b))]))
    flow0(g, 6)
    o = make_offering(b.catalogue[1]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering for beta's component")
    check(b.find("PUT", "/offerings/" + o["offeringId"]), "beta did not get its offering")
    check(not a.non_catalogue(), "alpha got beta's traffic: %r" % a.non_catalogue())
    s = make_association(o["offeringId"], "student")
    i = make_association(o["offeringId"], "invigilator")
    check_2xx(put(g, "associations", s), "PUT student")
    check_2xx(put(g, "associations", i), "PUT invigilator")
    r = g.request("GET", "/ooapi/associations/%s/url" % s["associationId"])
    check(r.status == 200 and r.json() == b.url_for(s["associationId"]), "url via beta: %s" % r.short())
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200, "GET offering via beta: %s" % r.short())
    check(len(b.find("PUT", prefix="/associations/")) == 2, "beta should get both associations")
    check(not a.non_catalogue(), "alpha got beta's traffic: %r" % a.non_catalogue())
    # and one for alpha goes to alpha only
    mb = b.mark()
    o2 = make_offering(a.catalogue[2]["componentId"])
    check_2xx(put(g, "offerings", o2), "PUT offering for alpha's component")
    a2 = make_association(o2["offeringId"])
    check_2xx(put(g, "associations", a2), "PUT association for alpha's offering")
    check(a.find("PUT", "/associations/" + a2["associationId"]), "alpha did not get its association")
    check(not b.non_catalogue(since=mb), "beta got alpha's traffic: %r" % b.non_catalogue(since=mb))


def test_routing_survives_restart(t):
    peer = t.peer(make_components(2), name="remindo")
    other = t.peer(make_components(2, numbers=[7, 8]), name="other")
    g = t.gateway(conf([("other", ooapi_connector(other)), ("remindo", ooapi_connector(peer))]))
    flow0(g, 4)
    o = make_offering(peer.catalogue[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering")
    rc = g.stop()
    check(rc == 0, "SIGTERM should exit 0, got %r" % rc)
    check(os.path.exists(os.path.join(g.workdir, "okegw.db")),
          "no store file okegw.db next to plugins.conf: %r" % os.listdir(g.workdir))
    g.start()
    a = make_association(o["offeringId"], "student")
    r = put(g, "associations", a)
    check_2xx(r, "PUT association after a restart (offering routed before it)")
    check(peer.find("PUT", "/associations/" + a["associationId"]),
          "the association did not reach the offering's supplier after the restart")
    check(not other.non_catalogue(), "the other supplier got traffic: %r" % other.non_catalogue())
    r = g.request("GET", "/ooapi/offerings/%s/associations" % o["offeringId"])
    check(r.status == 200 and len(r.json().get("items", [])) == 1, "read back after restart: %s" % r.short())


def sim_conf():
    return conf([("sim", {"plugin": "sim", "role": "ta", "phase": "live"})])


def test_sim_catalogue(t):
    g = t.gateway(sim_conf())
    items = flow0(g)
    check(len(items) >= 5, "the sim connector should offer >= 5 components, got %d" % len(items))
    for c in items:
        check(c.get("componentType") == "test" and c.get("componentId"), "odd sim component: %r" % c)
        check(any(oc.get("codeType") == "x-testSystem" for oc in c.get("otherCodes") or []),
              "sim component has no x-testSystem code: %r" % c.get("otherCodes"))
    cid = items[0]["componentId"]
    r = g.request("GET", "/ooapi/components/" + cid)
    check(r.status == 200 and r.json().get("componentId") == cid, "GET sim component: %s" % r.short())


def test_sim_offering_and_association(t):
    g = t.gateway(sim_conf())
    items = flow0(g)
    check(items, "sim catalogue empty")
    o = make_offering(items[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering to sim")
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json().get("offeringId") == o["offeringId"], "GET sim offering: %s" % r.short())
    a = make_association(o["offeringId"])
    check_2xx(put(g, "associations", a), "PUT association to sim")
    r = g.request("GET", "/ooapi/associations/" + a["associationId"])
    check(r.status == 200 and r.json().get("associationId") == a["associationId"],
          "GET sim association: %s" % r.short())
    r = g.request("GET", "/ooapi/offerings/%s/associations" % o["offeringId"])
    check(r.status == 200, "GET sim offering associations: %s" % r.short())
    ids = [x.get("associationId") for x in r.json().get("items", [])]
    check(a["associationId"] in ids, "sim offering associations lack ours: %r" % ids)
    r = g.request("GET", "/ooapi/associations/%s/url" % a["associationId"])
    check(r.status == 200 and isinstance(r.json(), str) and r.json().startswith("http"),
          "GET sim association url: %s" % r.short())


if __name__ == "__main__":
    main(globals())
