#!/usr/bin/env python3
"""A supplier that does not speak OKE (ToetsPlatform Classic, tests/peers/legacy_supplier.py)
connected with the generic `rest` plugin and the Lua mappings of scripts/classic/: flow 0,
flow 2, and a result pushed to okegw's callback that reaches the planning system as flow 3."""
import datetime
import json
import os
import subprocess
import sys
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (Peer, check, check_2xx, check_problem, conf, fixture, free_port,  # noqa: E402
                       main, new_id, time_scale)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LEGACY = os.path.join(ROOT, "tests", "peers", "legacy_supplier.py")
TOKEN = "classic-callback-secret-0123"
REKENEN_2F = "3f6c8a1e-2b4d-4e7a-9c15-7d2e8b0a4f11"
ROUTES = {
    "route.flow0.list_components": "GET /api/v1/tests",
    "route.flow0.get_component": "GET /api/v1/tests/{id}",
    "route.flow2.put_offering": "POST /api/v1/sessions",
    "route.flow2.get_offering": "GET /api/v1/sessions/{id}",
    "route.flow2.patch_offering": "POST /api/v1/sessions/{id}/cancel",
    "route.flow2.put_association": "POST /api/v1/candidates",
    "route.flow2.get_association": "GET /api/v1/candidates/{id}",
    "route.flow2.get_association_url": "GET /api/v1/candidates/{id}/link",
    "route.flow2.list_associations": "GET /api/v1/sessions/{id}/candidates",
}


class Legacy:
    """The legacy supplier as a child process."""

    def __init__(self, workdir, callback):
        self.log = open(os.path.join(workdir, "legacy.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, LEGACY, "--port", "0", "--callback", callback,
                                      "--callback-token", TOKEN],
                                     stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        check(line, "the legacy supplier did not start")
        self.port = json.loads(line)["listening"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15 * time_scale()) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def requests(self, method, path):
        _, reqs = self.call("GET", "/admin/requests")
        return [r for r in reqs if r["method"] == method and r["path"] == path]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def setup(t):
    port = free_port()
    legacy = Legacy(t.workdir, "http://127.0.0.1:%d/callbacks/classic/results" % port)
    t.cleanups.append(legacy.stop)
    tpl = t.peer([], name="planning")
    classic = {"plugin": "rest", "role": "ta", "phase": "live",
               "base_url": "http://127.0.0.1:%d" % legacy.port,
               "scripts": os.path.join(ROOT, "scripts", "classic"),
               "callback_token": TOKEN, "timeout_ms": 5000}
    classic.update(ROUTES)
    planning = {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url}
    g = t.gateway(conf([("classic", classic), ("planning", planning)], listen="127.0.0.1:%d" % port,
                       scripts_lib=os.path.join(ROOT, "scripts", "lib")))
    return g, legacy, tpl


def plan(g):
    """Flow 0 then flow 2 through okegw: a zitting for Rekenen 2F with one student."""
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    o = fixture("flow2_put_offering_request.json")
    o["component"] = REKENEN_2F
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check_2xx(r, "PUT offering")
    a = fixture("flow2_put_association_student_request.json")
    r = g.request("PUT", "/ooapi/associations/" + a["associationId"], a)
    check_2xx(r, "PUT association")
    return o, a


def test_catalogue_from_a_bare_list(t):
    g, legacy, _ = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=10")
    check(r.status == 200, "catalogue: %s" % r.short())
    items = r.json()["items"]
    check(len(items) == 5, "Classic has 5 tests, the page has %d" % len(items))
    rek = [c for c in items if c["componentId"] == REKENEN_2F]
    check(rek, "Rekenen 2F is missing: %r" % [c["componentId"] for c in items])
    c = rek[0]
    check(c["name"] == [{"language": "nl-NL", "value": "Rekenen 2F"}], "name: %r" % c["name"])
    check(c["duration"] == "PT90M", "90 minutes should be PT90M, got %r" % c.get("duration"))
    check({"codeType": "x-testSystem", "code": "classic"} in c["otherCodes"], "otherCodes: %r" % c)
    check(legacy.requests("GET", "/api/v1/tests"), "Classic was not asked GET /api/v1/tests")
    r = g.request("GET", "/ooapi/components/" + REKENEN_2F)
    check(r.status == 200 and r.json()["abbreviation"] == "REK-2F", "one test: %s" % r.short())


def test_flow2_in_classic_shapes(t):
    g, legacy, _ = setup(t)
    o, a = plan(g)
    sessions = legacy.requests("POST", "/api/v1/sessions")
    check(len(sessions) == 1, "Classic got %d session POSTs" % len(sessions))
    s = sessions[0]["body"]
    want_start = int(datetime.datetime.fromisoformat(o["startDateTime"].replace("Z", "+00:00")).timestamp())
    check(s["session_ref"] == o["offeringId"] and s["test_uuid"] == REKENEN_2F,
          "session refs: %r" % s)
    check(s["starts_at"] == want_start, "starts_at %r, want %r (%s)" % (s["starts_at"], want_start,
                                                                        o["startDateTime"]))
    check(isinstance(s["ends_at"], int) and s["ends_at"] > s["starts_at"], "ends_at: %r" % s)
    cands = legacy.requests("POST", "/api/v1/candidates")
    check(len(cands) == 1, "Classic got %d candidate POSTs" % len(cands))
    c = cands[0]["body"]
    check(c["candidate_ref"] == a["associationId"] and c["session_ref"] == o["offeringId"],
          "candidate refs: %r" % c)
    check(c["role"] == "candidate", "role student should be 'candidate': %r" % c)
    check(c["last_name"] == "van Damme" and c["first_name"] == "Maartje", "names: %r" % c)
    check(c["extra_minutes"] == a["consumers"][0]["additionalTimeInMin"], "extra time: %r" % c)
    check(c["student_number"] == "1234567", "student number: %r" % c)
    # reads come back in OKE shapes
    r = g.request("GET", "/ooapi/associations/%s/url" % a["associationId"])
    check(r.status == 200 and r.json() == "https://classic.example/start/" + a["associationId"],
          "start link: %s" % r.short())
    r = g.request("GET", "/ooapi/associations/" + a["associationId"])
    check(r.status == 200, "GET association: %s" % r.short())
    got = r.json()
    check(got["role"] == "student" and got["state"] == "associated", "deelname: %r" % got)
    r = g.request("GET", "/ooapi/offerings/%s/associations" % o["offeringId"])
    check(r.status == 200 and [x["associationId"] for x in r.json()["items"]] == [a["associationId"]],
          "deelnames of the zitting: %s" % r.short())
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json()["component"] == REKENEN_2F, "zitting: %s" % r.short())
    # a flow-2 PATCH that is no cancellation breaks the profile: refused before any mapping
    mark = len(legacy.requests("POST", "/api/v1/sessions/%s/cancel" % o["offeringId"]))
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"],
                  {"offeringType": "component",
                   "consumers": [{"consumerKey": "nl-test-admin", "offeringState": "active"}]})
    check_problem(r, 400, "a PATCH that is not a cancel")
    check([e["pointer"] for e in r.json().get("errors", [])] == ["/consumers/0/offeringState"],
          "errors: %r" % r.json())
    check(len(legacy.requests("POST", "/api/v1/sessions/%s/cancel" % o["offeringId"])) == mark,
          "Classic got the refused PATCH")
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"],
                  fixture("flow2_patch_offering_cancel_request.json"))
    check(r.status == 200, "cancel: %s" % r.short())
    check(legacy.requests("POST", "/api/v1/sessions/%s/cancel" % o["offeringId"]), "no cancel at Classic")


def test_result_callback_reaches_planning(t):
    g, legacy, tpl = setup(t)
    o, a = plan(g)
    aid = a["associationId"]
    tpl.associations[aid] = {"associationId": aid}  # the planning system knows its deelname
    status, answer = legacy.call("POST", "/admin/grade", {"candidate_ref": aid, "grade": "7,5",
                                                         "points": 42, "max_points": 60,
                                                         "graded_on": "2026-06-16"})
    check(status == 200 and answer["callback_status"] == 200, "callback: %r %r" % (status, answer))
    patches = tpl.find("PATCH", "/associations/" + aid)
    check(len(patches) == 1, "planning got %d PATCHes" % len(patches))
    body = patches[0].json
    res = body["result"]
    check(body["associationType"] == "componentOfferingAssociation", "body: %r" % body)
    check(res["score"] == "7.5" and res["pass"] == "passed" and res["state"] == "completed",
          "result: %r" % res)
    check(res["resultDate"] == "2026-06-16" and res["weight"] == 100, "result: %r" % res)
    entry = res["consumers"][0]
    check(entry["attendance"] == "present" and entry["rawScore"] == 42, "entry: %r" % entry)
    rec = g.wait_log(lambda x: x.get("msg") == "request" and x.get("path", "").startswith("/callbacks/"))
    check(rec and rec.get("connector") == "planning" and rec.get("status") == 200,
          "callback log line: %r" % rec)
    # absent
    status, answer = legacy.call("POST", "/admin/grade", {"candidate_ref": aid, "absent": True})
    check(answer["callback_status"] == 200, "absent callback: %r" % answer)
    last = tpl.find("PATCH", "/associations/" + aid)[-1].json["result"]
    check(last["consumers"][0]["attendance"] == "notPresent" and "score" not in last,
          "absent result: %r" % last)


def test_callback_only_on_the_return_route(t):
    g, legacy, tpl = setup(t)
    plan(g)
    # a session and candidate made at Classic directly, never through okegw
    sid, cid = new_id(), new_id()
    legacy.call("POST", "/api/v1/sessions", {"session_ref": sid, "test_uuid": REKENEN_2F, "title": "x",
                                             "starts_at": 1781600000, "ends_at": 1781603600})
    legacy.call("POST", "/api/v1/candidates", {"candidate_ref": cid, "session_ref": sid,
                                               "first_name": "A", "last_name": "B", "extra_minutes": 0,
                                               "role": "candidate"})
    mark = tpl.mark()
    status, answer = legacy.call("POST", "/admin/grade", {"candidate_ref": cid, "grade": "6,0"})
    check(answer["callback_status"] == 404, "a result for an unknown deelname: %r" % answer)
    check(not tpl.find(since=mark), "the planning system got %r" % tpl.find(since=mark))
    # wrong or missing token
    body = {"candidate_ref": cid, "status": "graded", "grade": "6,0", "graded_on": "2026-06-16"}
    r = g.request("POST", "/callbacks/classic/results", body, headers={"Authorization": "Bearer nope"})
    check(r.status == 401, "wrong token: %s" % r.short())
    r = g.request("POST", "/callbacks/classic/results", body)
    check(r.status == 401, "no token: %s" % r.short())
    r = g.request("POST", "/callbacks/planning/results", body,
                  headers={"Authorization": "Bearer " + TOKEN})
    check(r.status == 404, "a connector without callbacks: %s" % r.short())
    # a grade the mapping cannot read fails cleanly with file:line
    r = g.request("POST", "/callbacks/classic/results",
                  dict(body, candidate_ref=cid, grade="zeven"),
                  headers={"Authorization": "Bearer " + TOKEN})
    check_problem(r, 502, "an unreadable grade")
    check("flow3.patch_association.lua:" in r.json().get("detail", ""), "detail: %r" % r.json())
    check(not tpl.find(since=mark), "the planning system got %r" % tpl.find(since=mark))


if __name__ == "__main__":
    main(globals())
