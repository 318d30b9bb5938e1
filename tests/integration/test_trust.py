#!/usr/bin/env python3
"""Trust between school systems: two planning systems (TPL) share one supplier (TA) and each
sees, changes and gets back only its own exams; a supplier cannot re-point another supplier's
document; a store that loses its file or its disk space never acknowledges into nothing, and
what a delivery opened is not lost when its end cannot be written at first."""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, check_2xx, check_problem, conf, fixture, main,  # noqa: E402
                       make_association, make_components, make_offering, ooapi_connector,
                       time_scale)

TOKENS = {"alpha": "alpha-calls-okegw-0001", "beta": "beta-calls-okegw-00002",
          "north": "north-tpl-calls-okegw-3", "south": "south-tpl-calls-okegw-4"}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def tpl_connector(peer, name):
    return {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": peer.base_url,
            "inbound_token": TOKENS[name]}


def setup(t, **gateway):
    a = t.peer(make_components(3), name="alpha")
    b = t.peer(make_components(2, name_fmt="Beta {i:02d}"), name="beta")
    north = t.peer([], name="north")
    south = t.peer([], name="south")
    g = t.gateway(conf([("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
                        ("beta", ooapi_connector(b, inbound_token=TOKENS["beta"])),
                        ("north", tpl_connector(north, "north")),
                        ("south", tpl_connector(south, "south"))], **gateway))
    check(g.request("GET", "/ooapi/components?componentType=test",
                    headers=auth("north")).status == 200, "catalogue")
    return g, a, b, north, south


def plan(g, ta, who, planner, offering_id=None, association_id=None):
    """`who` plans a zitting with one deelname at `ta`; its peer `planner` knows them (so it
    takes results and reports for them)."""
    o = make_offering(ta.catalogue[0]["componentId"], offering_id)
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth(who)),
              "PUT offering by %s" % who)
    s = make_association(o["offeringId"], association_id=association_id)
    check_2xx(g.request("PUT", "/ooapi/associations/" + s["associationId"], s, headers=auth(who)),
              "PUT association by %s" % who)
    know(planner, o, s)
    return o, s


def know(planner, o, s):
    planner.offerings[o["offeringId"]] = {"offeringId": o["offeringId"]}
    planner.associations[s["associationId"]] = {"associationId": s["associationId"]}


RESULT = {"associationType": "componentOfferingAssociation",
          "result": {"state": "completed", "resultDate": "2026-06-16", "weight": 100, "score": "7.5",
                     "pass": "passed",
                     "consumers": [{"consumerKey": "nl-test-admin", "attendance": "present"}]}}


def result_with_document(doc_id):
    r = json.loads(json.dumps(RESULT))
    r["result"]["consumers"][0]["documents"] = [
        {"documentId": doc_id, "documentType": "other", "documentName": "verslag.pdf"}]
    return r


def test_second_planning_system_sees_nothing_of_the_first(t):
    g, a, _, north, south = setup(t)
    o, s = plan(g, a, "north", north)
    oid, aid = o["offeringId"], s["associationId"]
    for method, path in (("GET", "/ooapi/offerings/" + oid),
                         ("GET", "/ooapi/offerings/%s/associations" % oid),
                         ("GET", "/ooapi/associations/" + aid),
                         ("GET", "/ooapi/associations/%s/url" % aid)):
        r = g.request(method, path, headers=auth("south"))
        check_problem(r, 404, "south %s %s" % (method, path))
        r = g.request(method, path, headers=auth("north"))
        check(r.status == 200, "north %s %s: %s" % (method, path, r.short()))
    cancel = {"offeringType": "component",
              "consumers": [{"consumerKey": "nl-test-admin", "offeringState": "canceled"}]}
    check_problem(g.request("PATCH", "/ooapi/offerings/" + oid, cancel, headers=auth("south")),
                  404, "south cancels north's zitting")
    check_problem(g.request("PATCH", "/ooapi/associations/" + aid,
                            {"associationType": "componentOfferingAssociation",
                             "state": "canceled"}, headers=auth("south")),
                  400, "south cancels north's deelname (as an unknown id: 400, R17)")
    # taking the ids over is a conflict, and nothing reaches the supplier
    mark = a.mark()
    r = g.request("PUT", "/ooapi/offerings/" + oid, o, headers=auth("south"))
    check_problem(r, 409, "south PUTs north's zitting id")
    r = g.request("PUT", "/ooapi/associations/" + aid, s, headers=auth("south"))
    check(r.status in (404, 409), "south PUTs a deelname under north's zitting: %s" % r.short())
    check(a.non_catalogue(since=mark) == [], "the supplier got south's attempts: %r"
          % a.non_catalogue(since=mark))
    # the result still goes to north only
    r = g.request("PATCH", "/ooapi/associations/" + aid, RESULT, headers=auth("alpha"))
    check(r.status == 200, "flow-3 result: %s" % r.short())
    check(len(north.find("PATCH", "/associations/" + aid)) == 1, "north got no result")
    check(south.find("PATCH") == [], "south got a result of north's candidate")


def test_results_follow_the_planner_after_cancel_and_new_put(t):
    g, a, _, north, south = setup(t)
    o, s = plan(g, a, "north", north)
    oid, aid = o["offeringId"], s["associationId"]
    cancel = {"offeringType": "component",
              "consumers": [{"consumerKey": "nl-test-admin", "offeringState": "canceled"}]}
    check_2xx(g.request("PATCH", "/ooapi/offerings/" + oid, cancel, headers=auth("north")),
              "north cancels")
    check_problem(g.request("PUT", "/ooapi/offerings/" + oid, o, headers=auth("south")), 409,
                  "south takes the canceled zitting over")
    check_2xx(g.request("PUT", "/ooapi/offerings/" + oid, o, headers=auth("north")),
              "north plans it again")
    report = {"offeringType": "component",
              "consumers": [{"consumerKey": "nl-test-admin", "irregularities": "geen"}]}
    check(g.request("PATCH", "/ooapi/offerings/" + oid, report, headers=auth("alpha")).status
          == 200, "flow-4 report")
    check(g.request("PATCH", "/ooapi/associations/" + aid, RESULT,
                    headers=auth("alpha")).status == 200, "flow-3 result")
    check(len(north.find("PATCH", "/offerings/" + oid)) == 1, "north got no report")
    check(len(north.find("PATCH", "/associations/" + aid)) == 1, "north got no result")
    check(south.find("PATCH") == [], "south got north's traffic: %r" % south.find("PATCH"))


def test_documents_stay_with_the_supplier_that_referenced_them(t):
    g, a, b, north, south = setup(t)
    _, sa = plan(g, a, "north", north)
    o = make_offering(b.catalogue[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("south")),
              "south plans at beta")
    sb = make_association(o["offeringId"])
    check_2xx(g.request("PUT", "/ooapi/associations/" + sb["associationId"], sb,
                        headers=auth("south")), "south's deelname at beta")
    know(south, o, sb)
    doc = "1f0e2d3c-4b5a-4697-8877-66554433aa01"
    a.documents[doc] = b"alpha's report"
    b.documents[doc] = b"beta's forgery"
    check(g.request("PATCH", "/ooapi/associations/" + sa["associationId"], result_with_document(doc),
                    headers=auth("alpha")).status == 200, "alpha's result with a document")
    check(g.request("PATCH", "/ooapi/associations/" + sb["associationId"], result_with_document(doc),
                    headers=auth("beta")).status == 200, "beta's result naming alpha's document")
    r = g.request("GET", "/ooapi/documents/" + doc, headers=auth("north"))
    check(r.status == 200 and r.body == b"alpha's report", "north's document: %s" % r.short())
    check(b.find("GET", "/documents/" + doc) == [], "the document was fetched from beta")
    check_problem(g.request("GET", "/ooapi/documents/" + doc, headers=auth("south")), 404,
                  "south fetches the document north's result carried")
    rec = g.wait_log(lambda x: "referenced first" in x.get("msg", ""))
    check(rec is not None, "no warning about the re-used documentId")


def test_a_refused_result_records_no_document(t):
    g, a, _, north, _ = setup(t)
    _, s = plan(g, a, "north", north)
    doc = "1f0e2d3c-4b5a-4697-8877-66554433aa02"
    bad = result_with_document(doc)
    del bad["result"]["weight"]  # breaks the profile
    check_problem(g.request("PATCH", "/ooapi/associations/" + s["associationId"], bad,
                            headers=auth("alpha")), 400, "invalid result")
    check_problem(g.request("GET", "/ooapi/documents/" + doc, headers=auth("north")), 404,
                  "a refused message opened a document route")


def test_store_file_deleted_while_pushes_arrive(t):
    g, a, _, north, _ = setup(t)
    o, s = plan(g, a, "north", north)
    db = os.path.join(g.workdir, "okegw.db")
    acked = []
    for i in range(3):
        r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], RESULT,
                      headers=auth("alpha"))
        check(r.status == 200, "result %d: %s" % (i, r.short()))
        acked.append(r)
    os.unlink(db)
    refused = 0
    for i in range(5):
        r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], RESULT,
                      headers=auth("alpha"))
        if r.status == 503:
            refused += 1
            check(r.header("Retry-After") is not None, "503 without Retry-After: %r" % r)
        else:
            check(r.status == 200, "a push after the delete: %s" % r.short())
            acked.append(r)
    check(refused >= 4, "pushes were acknowledged into a deleted store (%d refused)" % refused)
    h = g.request("GET", "/healthz")
    check(h.status == 503 and h.json()["store"] == "failing", "/healthz: %s" % h.short())
    check(g.request("GET", "/readyz").status == 503, "/readyz still ready")
    check(g.wait_log(lambda x: x.get("level") == "error" and "deleted or replaced"
                     in x.get("msg", "")) is not None, "no error line about the store file")
    got = len(north.find("PATCH", "/associations/" + s["associationId"]))
    check(got >= len(acked), "acknowledged %d, north got %d" % (len(acked), got))
    # a restart makes a new store; what was acknowledged was delivered already
    g.restart()
    check(g.request("GET", "/healthz").status == 200, "healthy after the restart")


def test_huge_2xx_answer_counts_as_delivered(t):
    """A supplier that accepts a push with a 20 MB answer accepted it: one delivery, not a
    retry loop that ends in a dead letter and holds back the resource."""
    g, a, _, north, _ = setup(t)
    o = make_offering(a.catalogue[0]["componentId"])
    a.canned[("PUT", "/offerings/" + o["offeringId"])] = (200, {"echo": "x" * (20 << 20)})
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("north"),
                  timeout=60)
    check(r.status == 201, "the push of a new zitting: %s" % r.short())
    time.sleep(1.0 * time_scale())
    check(len(a.find("PUT", "/offerings/" + o["offeringId"])) == 1,
          "the push went %d times" % len(a.find("PUT", "/offerings/" + o["offeringId"])))
    out = subprocess.run([g.binary, "deliveries", "list", "-c", g.conf_path, "--json"],
                         capture_output=True, text=True, timeout=30).stdout
    states = [json.loads(line)["state"] for line in out.splitlines() if line.strip()]
    check(states.count("delivered") >= 1 and "pending" not in states and "dead" not in states,
          "deliveries: %r" % states)
    # a read of that size is still a failure (its body would be needed)
    a.canned[("GET", "/offerings/" + o["offeringId"])] = (200, {"echo": "x" * (20 << 20)})
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"], headers=auth("north"), timeout=60)
    check(r.status == 502, "a too large read: %s" % r.short())


def test_a_dr_changes_only_what_it_sent(t):
    """Two DRs behind one gateway: the planbare toets of one cannot be replaced (409) or
    changed (404) by the other, nor its toetsinschrijving (400, R17); its own DR changes it.
    A person a DR pushed is read at that DR; a person no DR pushed has no single DR (503)."""
    tpl = t.peer([], name="tpl")
    dr1 = t.peer([], name="dr1")
    dr2 = t.peer([], name="dr2")
    toks = {"dr1": "dr-one-calls-okegw-0001", "dr2": "dr-two-calls-okegw-0002",
            "tpl": "tpl-calls-okegw-000003"}
    g = t.gateway(conf([
        ("dr1", {"plugin": "ooapi", "role": "dr", "phase": "live", "base_url": dr1.base_url,
                 "inbound_token": toks["dr1"]}),
        ("dr2", {"plugin": "ooapi", "role": "dr", "phase": "live", "base_url": dr2.base_url,
                 "inbound_token": toks["dr2"]}),
        ("tpl", {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
                 "inbound_token": toks["tpl"]})]))
    h = {k: {"Authorization": "Bearer " + v} for k, v in toks.items()}
    pt = fixture(os.path.join("examples", "flow1_put_offering_component_request.json"))
    path = "/ooapi/offerings/" + pt["offeringId"]
    check_2xx(g.request("PUT", path, pt, headers=h["dr1"]), "dr1 sends its planbare toets")
    tpl.offerings[pt["offeringId"]] = pt
    check_problem(g.request("PUT", path, pt, headers=h["dr2"]), 409, "dr2 replaces it")
    change = fixture(os.path.join("examples", "flow1_patch_offering_change_request.json"))
    mark = tpl.mark()
    check_problem(g.request("PATCH", path, change, headers=h["dr2"]), 404, "dr2 changes it")
    check(tpl.find(since=mark) == [], "the TPL got dr2's change")
    check(g.request("PATCH", path, change, headers=h["dr1"]).status == 200, "dr1 changes it")
    ti = fixture(os.path.join("examples", "flow1_put_association_component_request.json"))
    ti["offering"] = pt["offeringId"]
    apath = "/ooapi/associations/" + ti["associationId"]
    check_2xx(g.request("PUT", apath, ti, headers=h["dr1"]), "dr1 sends a toetsinschrijving")
    tpl.associations[ti["associationId"]] = ti
    cancel = {"associationType": "componentOfferingAssociation", "state": "canceled"}
    check_problem(g.request("PATCH", apath, cancel, headers=h["dr2"]), 400,
                  "dr2 cancels dr1's toetsinschrijving (as an unknown id, R17)")
    # persons: read where they came from
    person = fixture(os.path.join("examples", "flow1_put_person_request.json"))
    answer = fixture(os.path.join("examples", "flow1_get_person_response.json"))
    tpl_h = {"Authorization": "Bearer " + toks["tpl"]}
    ids = {}
    for dr, peer in (("dr1", dr1), ("dr2", dr2)):
        pid = str(uuid.uuid4())
        ids[dr] = pid
        check_2xx(g.request("PUT", "/ooapi/persons/" + pid, dict(person, personId=pid),
                            headers=h[dr]), "%s pushes person %s" % (dr, pid))
        peer.others["/persons/" + pid] = dict(answer, personId=pid)
    for dr, peer in (("dr1", dr1), ("dr2", dr2)):
        mark = peer.mark()
        r = g.request("GET", "/ooapi/persons/" + ids[dr], headers=tpl_h)
        check(r.status == 200 and r.json().get("personId") == ids[dr],
              "the TPL reads %s's person: %s %s" % (dr, r.status, r.body[:200]))
        check(len(peer.find(method="GET", since=mark)) == 1, "the read reached %s" % dr)
    check_problem(g.request("GET", "/ooapi/persons/" + str(uuid.uuid4()), headers=tpl_h), 503,
                  "a person no DR pushed, with two live DRs")


def _mount_tmpfs(path, size):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                          capture_output=True).returncode == 0


def _fill(path):
    """Writes a file until the file system is full; returns its name."""
    name = os.path.join(path, "filler")
    with open(name, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return name


def test_disk_full_while_a_deelname_delivery_ends(t):
    disk = os.path.join(t.workdir, "disk")
    if not _mount_tmpfs(disk, "4m"):
        print("# skip: needs root to mount a small tmpfs for a full disk")
        return
    try:
        a = t.peer(make_components(1), name="alpha")
        north = t.peer([], name="north")
        g = t.gateway(conf([("alpha", ooapi_connector(a, inbound_token=TOKENS["alpha"])),
                            ("north", tpl_connector(north, "north"))],
                           store=os.path.join(disk, "okegw.db")))
        check(g.request("GET", "/ooapi/components?componentType=test",
                        headers=auth("north")).status == 200, "catalogue")
        o = make_offering(a.catalogue[0]["componentId"])
        check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=auth("north")),
                  "PUT offering")
        s = make_association(o["offeringId"])
        # the supplier answers late: the push is durable, then the disk fills up, then the
        # supplier's 200 arrives and its end (with the return route) cannot be written
        a.delay = 1.0 * time_scale()
        import threading
        answers = []
        th = threading.Thread(target=lambda: answers.append(g.request(
            "PUT", "/ooapi/associations/" + s["associationId"], s, headers=auth("north"),
            timeout=30)))
        th.start()
        deadline = time.time() + 10 * time_scale()
        while not a.find("PUT", "/associations/" + s["associationId"]) and time.time() < deadline:
            time.sleep(0.02)
        filler = _fill(disk)
        th.join()
        a.delay = 0
        check(answers and answers[0].status in (200, 201, 202), "deelname PUT: %r" % answers)
        know(north, o, s)
        stalled = g.wait_log(lambda x: "could not record that delivery" in x.get("msg", ""),
                             timeout=5 * time_scale())
        os.unlink(filler)
        check(stalled is not None, "the end was written although the disk was full")
        deadline = time.time() + 10 * time_scale()
        while time.time() < deadline:
            r = g.request("PATCH", "/ooapi/associations/" + s["associationId"], RESULT,
                          headers=auth("alpha"))
            if r.status == 200:
                break
            time.sleep(0.2)
        check(r.status == 200, "the TA's result after space came back: %s" % r.short())
        check(len(north.find("PATCH", "/associations/" + s["associationId"])) == 1,
              "north got no result")
        g.stop()
        # the attempt whose end could not be written at first is on record once, with its
        # answer: its audit row went back with the failed write and came again with the end
        # (on a slow machine an earlier attempt may have timed out: that one is not counted)
        import sqlite3
        db = sqlite3.connect(os.path.join(disk, "okegw.db"))
        rows = db.execute("SELECT status, attempts FROM audit WHERE event = 'delivery' AND "
                          "connector = 'alpha' AND resource_id = ?",
                          (s["associationId"],)).fetchall()
        db.close()
        check(len([r for r in rows if r[0] in (200, 201)]) == 1,
              "the deelname's delivery attempt in the audit trail: %r" % rows)
    finally:
        subprocess.run(["umount", "-l", disk], capture_output=True)


if __name__ == "__main__":
    main(globals())
