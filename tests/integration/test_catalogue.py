#!/usr/bin/env python3
"""Flow 0 through okegw: the merged, paged catalogue of several TA connectors."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_problem, conf, make_components, component_name, main,  # noqa: E402
                       new_id, ooapi_connector)

# Peer A: 7 components "Toets 00, 02, .. 12"; peer B: 5 components "Toets 01, 03, .. 09".
# Sorted by name they interleave; 12 in all.


def two_peers(t, a_kw=None, b_kw=None, **gw):
    a = t.peer(make_components(7, numbers=range(0, 14, 2)), name="alpha")
    b = t.peer(make_components(5, numbers=range(1, 10, 2)), name="beta")
    g = t.gateway(conf([("alpha", ooapi_connector(a, test_system="AlphaToets", **(a_kw or {}))),
                        ("beta", ooapi_connector(b, **(b_kw or {})))], **gw))
    return g, a, b


def get_page(g, query):
    r = g.request("GET", "/ooapi/components?" + query)
    check(r.status == 200, "GET /ooapi/components?%s: %s" % (query, r.short()))
    check(r.content_type == "application/json", "catalogue Content-Type is %r" % r.header("content-type"))
    page = r.json()
    for k in ("pageSize", "pageNumber", "hasPreviousPage", "hasNextPage", "items"):
        check(k in page, "page lacks %r: %r" % (k, list(page)))
    check(isinstance(page["items"], list), "items is not a list")
    return page


def test_merged_first_page(t):
    g, a, b = two_peers(t)
    page = get_page(g, "componentType=test")
    check(page["pageSize"] == 10, "default pageSize should be 10, got %r" % page["pageSize"])
    check(page["pageNumber"] == 1, "default pageNumber should be 1, got %r" % page["pageNumber"])
    check(len(page["items"]) == 10, "page 1 of 12 items should hold 10, got %d" % len(page["items"]))
    check(page["hasNextPage"] is True, "hasNextPage should be true on page 1 of 2")
    check(page["hasPreviousPage"] is False, "hasPreviousPage should be false on page 1")
    if "totalPages" in page:
        check(page["totalPages"] == 2, "totalPages should be 2, got %r" % page["totalPages"])
    ids = {c["componentId"] for c in a.catalogue + b.catalogue}
    got = [c.get("componentId") for c in page["items"]]
    check(len(set(got)) == len(got), "duplicate componentIds in a page")
    check(set(got) <= ids, "page holds componentIds no peer has: %r" % (set(got) - ids))
    check(any(i in got for i in (c["componentId"] for c in a.catalogue)), "no item of peer alpha on page 1")
    check(any(i in got for i in (c["componentId"] for c in b.catalogue)), "no item of peer beta on page 1")


def test_page_size_and_number(t):
    g, a, b = two_peers(t)
    p1 = get_page(g, "componentType=test&pageSize=10&pageNumber=1")
    p2 = get_page(g, "componentType=test&pageSize=10&pageNumber=2")
    check(p2["pageSize"] == 10 and p2["pageNumber"] == 2,
          "page 2 envelope says pageSize=%r pageNumber=%r" % (p2["pageSize"], p2["pageNumber"]))
    check(len(p2["items"]) == 2, "page 2 (size 10) of 12 items should hold 2, got %d" % len(p2["items"]))
    check(p2["hasNextPage"] is False, "hasNextPage should be false on the last page")
    check(p2["hasPreviousPage"] is True, "hasPreviousPage should be true on page 2")
    check(p2.get("totalPages") == 2, "totalPages should be 2, got %r" % p2.get("totalPages"))
    all_ids = [c["componentId"] for c in p1["items"] + p2["items"]]
    want = {c["componentId"] for c in a.catalogue + b.catalogue}
    check(len(all_ids) == 12 and set(all_ids) == want,
          "pages 1+2 should hold each of the 12 components once, got %d (%d distinct, %d unknown)"
          % (len(all_ids), len(set(all_ids)), len(set(all_ids) - want)))
    p = get_page(g, "componentType=test&pageSize=20")
    check(len(p["items"]) == 12 and p["hasNextPage"] is False and p.get("totalPages") == 1,
          "pageSize=20 should give all 12 on one page: %d items, hasNextPage=%r, totalPages=%r"
          % (len(p["items"]), p["hasNextPage"], p.get("totalPages")))
    p3 = get_page(g, "componentType=test&pageSize=10&pageNumber=3")
    check(p3["items"] == [] and p3["hasNextPage"] is False,
          "a page past the end should be empty, got %d items" % len(p3["items"]))


def test_merged_sorted_by_name(t):
    g, a, b = two_peers(t)
    p = get_page(g, "componentType=test&pageSize=20")
    names = [component_name(c) for c in p["items"]]
    want = sorted(component_name(c) for c in a.catalogue + b.catalogue)
    check(names == want, "default order should be by nl-NL name ascending:\n got  %r\n want %r" % (names, want))


def test_test_system_other_code(t):
    g, a, b = two_peers(t)
    p = get_page(g, "componentType=test&pageSize=20")
    owner = {c["componentId"]: "AlphaToets" for c in a.catalogue}
    owner.update({c["componentId"]: "beta" for c in b.catalogue})
    for c in p["items"]:
        codes = [oc for oc in c.get("otherCodes") or [] if oc.get("codeType") == "x-testSystem"]
        want = {"codeType": "x-testSystem", "code": owner.get(c["componentId"])}
        check(want in codes, "component %s: otherCodes should contain %r, has %r"
              % (c["componentId"], want, c.get("otherCodes")))
        check(len(codes) == 1, "component %s: expected one x-testSystem entry, got %r" % (c["componentId"], codes))
        # the supplier's own codes survive
        check({"codeType": "x-testProvider", "code": "CEM"} in c["otherCodes"],
              "the supplier's x-testProvider code was lost: %r" % c["otherCodes"])


def test_supplier_test_system_code_is_kept(t):
    """A component keeps the x-testSystem code its supplier gave it (the fixture has "Facet");
    the gateway adds one only where it is missing, and never a second one."""
    comps = make_components(3)
    comps[0]["otherCodes"].insert(0, {"codeType": "x-testSystem", "code": "Facet"})
    a = t.peer(comps, name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(a, test_system="AlphaToets"))]))
    p = get_page(g, "componentType=test")
    check(len(p["items"]) == 3, "expected 3 items, got %d" % len(p["items"]))
    for c in p["items"]:
        systems = [e["code"] for e in c.get("otherCodes") or [] if e.get("codeType") == "x-testSystem"]
        want = ["Facet"] if c["componentId"] == comps[0]["componentId"] else ["AlphaToets"]
        check(systems == want, "component %s: x-testSystem codes %r, want %r"
              % (c["componentId"], systems, want))


def test_peers_asked_with_page_size_250(t):
    g, a, b = two_peers(t)
    get_page(g, "componentType=test")
    for peer in (a, b):
        reqs = peer.find("GET", "/components")
        check(reqs, "peer %s got no GET /ooapi/components" % peer.name)
        r = reqs[0]
        check(r.query.get("pageSize") == "250", "peer %s was asked %r, want pageSize=250" % (peer.name, r))
        check(r.query.get("pageNumber", "1") == "1", "peer %s: first request %r is not page 1" % (peer.name, r))
        check(r.query.get("componentType") == "test",
              "peer %s: componentType=test was not forwarded: %r" % (peer.name, r))


def test_walks_supplier_pages(t):
    big = t.peer(make_components(260, name_fmt="Groot {i:03d}"), name="big")
    g = t.gateway(conf([("big", ooapi_connector(big))]))
    p = get_page(g, "componentType=test&pageSize=250&pageNumber=2")
    check(len(p["items"]) == 10, "page 2 (size 250) of 260 should hold 10 items, got %d" % len(p["items"]))
    check(p.get("totalPages") == 2, "totalPages should be 2, got %r" % p.get("totalPages"))
    nums = sorted(r.query.get("pageNumber") for r in big.find("GET", "/components"))
    check("1" in nums and "2" in nums, "okegw should walk supplier pages 1 and 2, asked %r" % nums)
    check("3" not in nums, "okegw asked for supplier page 3 although page 2 had hasNextPage=false")


def test_get_component_routed_to_owner(t):
    g, a, b = two_peers(t)
    get_page(g, "componentType=test")  # flow 0 first: okegw learns the owners
    target = b.catalogue[2]
    cid = target["componentId"]
    ma, mb = a.mark(), b.mark()
    r = g.request("GET", "/ooapi/components/" + cid)
    check(r.status == 200, "GET /ooapi/components/%s: %s" % (cid, r.short()))
    c = r.json()
    check(c.get("componentId") == cid, "wrong component: %r" % c.get("componentId"))
    check(c.get("name") == target["name"], "name differs from the supplier's: %r" % c.get("name"))
    check(b.find("GET", "/components/" + cid, since=mb), "peer beta got no GET /ooapi/components/%s" % cid)
    check(not a.find(prefix="/components/", since=ma), "peer alpha was asked for beta's component: %r"
          % a.find(since=ma))
    target = a.catalogue[0]
    r = g.request("GET", "/ooapi/components/" + target["componentId"] + "?expand=organization")
    check(r.status == 200 and r.json().get("componentId") == target["componentId"],
          "GET alpha's component: %s" % r.short())
    fwd = a.find("GET", "/components/" + target["componentId"])
    check(fwd and fwd[-1].query.get("expand") == "organization",
          "query string expand=organization was not forwarded to alpha: %r" % fwd)


def test_get_unknown_component_404(t):
    g, a, b = two_peers(t)
    get_page(g, "componentType=test")
    r = g.request("GET", "/ooapi/components/" + new_id())
    check_problem(r, 404, "unknown component")


def test_service_metadata(t):
    g, a, b = two_peers(t)
    r = g.request("GET", "/ooapi/")
    check(r.status == 200, "GET /ooapi/: %s" % r.short())
    check(r.content_type == "application/json", "metadata Content-Type %r" % r.header("content-type"))
    m = r.json()
    check("v5" in (m.get("supportedVersions") or []), "supportedVersions lacks v5: %r" % m.get("supportedVersions"))
    keys = [c.get("consumerKey") for c in m.get("supportedConsumers") or []]
    check("nl-test-admin" in keys, "supportedConsumers lacks nl-test-admin: %r" % m.get("supportedConsumers"))
    for k in ("contactEmail", "specification", "documentation"):
        check(isinstance(m.get(k), str) and m[k], "metadata lacks %r" % k)


def test_outbound_auth(t):
    a = t.peer(make_components(3, numbers=[0, 2, 4]), required_token="s3cret-a", name="alpha")
    b = t.peer(make_components(2, numbers=[1, 3]), required_api_key=("X-Api-Key", "k3y-b"), name="beta")
    g = t.gateway(conf([
        ("alpha", ooapi_connector(a, auth="bearer", token="s3cret-a")),
        ("beta", ooapi_connector(b, auth="apikey", api_key_header="X-Api-Key", api_key="k3y-b"))]))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    n = len(r.json().get("items", []))
    check(n == 5, "both authenticated peers should contribute (5 items), got %d; failed header %r"
          % (n, r.header("okegw-failed-connectors")))
    ra = a.find("GET", "/components")[0]
    check(ra.headers.get("authorization") == "Bearer s3cret-a", "alpha saw Authorization %r"
          % ra.headers.get("authorization"))


if __name__ == "__main__":
    main(globals())
