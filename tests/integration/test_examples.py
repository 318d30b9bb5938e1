#!/usr/bin/env python3
"""Every example body of the standard through the real okegw, as the system that would send it:
each valid request reaches its host with the same meaning and each valid answer reaches its
caller unchanged; each invalid_* request is refused with 400 naming the offending field, and an
invalid answer is blocked (validate_answers = block). The list of bodies, with their interaction
and path id, is tests/validate/cases.txt."""
import copy
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import check, check_problem, conf, main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(os.path.dirname(HERE), "validate")
TOKENS = {"dr": "example-dr-token-000001", "planning": "example-tpl-token-00002",
          "ta": "example-ta-token-000003"}
COMPONENT = "6f34dc22-5d57-5c2b-8724-c49e4bd7515c"  # the example chain's test (COMP_REK3F)
D_S2 = "baaed0de-7dd5-529c-aa84-2da6fdb6c2a3"


def load_cases():
    cases = []
    with open(os.path.join(CASES_DIR, "cases.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if not line:
                continue
            parts = line.split()
            file, interaction, kind, pid, pointer = parts[:5]
            with open(os.path.join(CASES_DIR, file), "rb") as b:
                raw = b.read()
            cases.append({"file": file, "interaction": interaction, "kind": kind,
                          "id": None if pid == "-" else pid,
                          "pointer": None if pointer == "-" else ("" if pointer == '""' else pointer),
                          "raw": raw})
    return cases


CASES = load_cases()


def body(case):
    return json.loads(case["raw"])


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


# (caller, method, path template, host) of every interaction with a request body
REQUESTS = {
    "flow1.put_offering": ("dr", "PUT", "/offerings/{id}", "planning"),
    "flow1.patch_offering": ("dr", "PATCH", "/offerings/{id}", "planning"),
    "flow1.put_association": ("dr", "PUT", "/associations/{id}", "planning"),
    "flow1.patch_association": ("dr", "PATCH", "/associations/{id}", "planning"),
    "flow1.put_person": ("dr", "PUT", "/persons/{id}", "planning"),
    "flow1.put_group": ("dr", "PUT", "/groups/{id}", "planning"),
    "flow1.put_group_member": ("dr", "PUT", "/groups/{group}/members/{id}", "planning"),
    "flow2.put_offering": ("planning", "PUT", "/offerings/{id}", "ta"),
    "flow2.patch_offering": ("planning", "PATCH", "/offerings/{id}", "ta"),
    "flow2.put_association": ("planning", "PUT", "/associations/{id}", "ta"),
    "flow2.patch_association": ("planning", "PATCH", "/associations/{id}", "ta"),
    "flow3.patch_association": ("ta", "PATCH", "/associations/{id}", "planning"),
    "flow4.patch_offering": ("ta", "PATCH", "/offerings/{id}", "planning"),
    "flow5.patch_association": ("planning", "PATCH", "/associations/{id}", "dr"),
    "flow5.put_association": ("planning", "PUT", "/associations/{id}", "dr"),
}
# the order a chain produces them in, so every route exists when it is needed
ORDER = ["flow1.put_person", "flow1.put_offering", "flow1.put_association", "flow1.put_group",
         "flow1.put_group_member", "flow1.patch_offering", "flow1.patch_association",
         "flow2.put_offering", "flow2.put_association", "flow3.patch_association",
         "flow4.patch_offering", "flow5.patch_association", "flow5.put_association",
         "flow2.patch_association", "flow2.patch_offering"]


def setup(t):
    peers = {n: t.peer([], name=n) for n in ("dr", "planning", "ta")}
    comp = body(next(c for c in CASES if c["file"].endswith("flow0_get_component_response.json")))
    check(comp["componentId"] == COMPONENT, "the example component changed: %r" % comp["componentId"])
    peers["ta"].catalogue.append(comp)
    conns = []
    for name, role in (("dr", "dr"), ("planning", "tpl"), ("ta", "ta")):
        conns.append((name, {"plugin": "ooapi", "role": role, "phase": "live",
                             "base_url": peers[name].base_url, "inbound_token": TOKENS[name],
                             "validate_answers": "block"}))
    g = t.gateway(conf(conns))
    r = g.request("GET", "/ooapi/components?componentType=test", headers=auth("planning"))
    check(r.status == 200, "catalogue: %s" % r.short())
    return g, peers


def path_of(case, tmpl):
    group = "dc37b4ba-9523-5454-ba01-c58fb638cd00"
    return "/ooapi" + tmpl.replace("{id}", case["id"] or "").replace("{group}", group)


def send(g, peers, case):
    caller, method, tmpl, host = REQUESTS[case["interaction"]]
    p = path_of(case, tmpl)
    rel = p[len("/ooapi"):]
    store = peers[host].offerings if "/offerings/" in rel else peers[host].associations
    # the host knows what it is patched on (its own zitting, deelname, toetsinschrijving)
    if method == "PATCH" and case["id"] not in store:
        store[case["id"]] = {}
    mark = peers[host].mark()
    r = g.request(method, p, case["raw"], headers=dict(auth(caller),
                                                      **{"Content-Type": "application/json"}))
    return r, peers[host].find(method, rel, since=mark), peers


def put_d_s2(g, failures):
    """A second deelname (D_S2) for the examples that report on and cancel it."""
    extra = copy.deepcopy(body(next(c for c in CASES if c["file"].endswith(
        "flow2_put_association_student_request.json"))))
    extra["associationId"] = D_S2
    extra["person"] = dict(extra["person"], personId="0d9f5a7e-1b2c-4d3e-8f4a-5b6c7d8e9f00")
    r = g.request("PUT", "/ooapi/associations/" + D_S2, extra, headers=auth("planning"))
    if r.status not in (200, 201):
        failures.append("setup PUT of D_S2: %s" % r.short())


def test_valid_requests_reach_their_host_unchanged(t):
    g, peers = setup(t)
    valid = [c for c in CASES if c["kind"] == "request" and c["pointer"] is None]
    check(len(valid) >= 25, "only %d valid request examples in cases.txt" % len(valid))
    failures = []
    sent = 0
    for inter in ORDER:
        for case in [c for c in valid if c["interaction"] == inter]:
            if inter == "flow3.patch_association" and case["id"] == D_S2:
                put_d_s2(g, failures)
            r, got, _ = send(g, peers, case)
            sent += 1
            if r.status not in (200, 201):
                failures.append("%s: %s" % (case["file"], r.short()))
            elif len(got) != 1 or got[0].json != body(case):
                failures.append("%s: the host got %r" % (case["file"], got))
    check(not failures, "%d of %d examples did not pass through:\n  %s"
          % (len(failures), sent, "\n  ".join(failures)))


def test_invalid_requests_are_refused_with_a_pointer(t):
    g, peers = setup(t)
    # the routes the invalid bodies would need
    for inter in ORDER:
        for case in [c for c in CASES if c["kind"] == "request" and c["pointer"] is None
                     and c["interaction"] == inter and not inter.endswith("patch_offering")
                     and inter not in ("flow5.patch_association", "flow3.patch_association")]:
            send(g, peers, case)
    setup_failures = []
    put_d_s2(g, setup_failures)
    check(not setup_failures, setup_failures)
    invalid = [c for c in CASES if c["kind"] == "request" and c["pointer"] is not None]
    check(len(invalid) >= 10, "only %d invalid request examples" % len(invalid))
    failures = []
    for case in invalid:
        r, got, _ = send(g, peers, case)
        if r.status != 400:
            failures.append("%s: want 400, got %s" % (case["file"], r.short()))
            continue
        problem = r.json()
        pointers = [e.get("pointer") for e in problem.get("errors", [])]
        if case["pointer"] not in pointers and not (case["pointer"] == "" and r.status == 400):
            failures.append("%s: no error at %r in %r" % (case["file"], case["pointer"], pointers))
        if got:
            failures.append("%s: forwarded anyway: %r" % (case["file"], got))
    check(not failures, "\n  ".join(failures))


# GET interactions: (caller, path from the example body, host)
def answer_route(case):
    b = body(case)
    i = case["interaction"]
    if i == "flow0.get_component":
        return "planning", "/components/" + COMPONENT, "ta"
    if i.startswith("flow1."):
        ids = {"flow1.get_offering": "/offerings/%s" % b.get("offeringId") if isinstance(b, dict) else None,
               "flow1.get_association": "/associations/%s" % b.get("associationId") if isinstance(b, dict) else None,
               "flow1.get_person": "/persons/%s" % b.get("personId") if isinstance(b, dict) else None,
               "flow1.get_organization": "/organizations/%s" % b.get("organizationId") if isinstance(b, dict) else None,
               "flow1.get_group": "/groups/%s" % b.get("groupId") if isinstance(b, dict) else None,
               "flow1.list_offerings": "/offerings",
               "flow1.list_groups": "/groups",
               "flow1.list_group_members": "/groups/dc37b4ba-9523-5454-ba01-c58fb638cd00/members",
               "flow1.list_associations": "/offerings/5741a2ee-19c9-5405-8d47-dfd14153d43f/associations"}
        return "planning", ids.get(i), "dr"
    return None, None, None


def test_valid_answers_reach_the_caller_unchanged(t):
    g, peers = setup(t)
    done, failures = 0, []
    for case in [c for c in CASES if c["kind"] == "response" and c["pointer"] is None]:
        caller, rel, host = answer_route(case)
        if not rel:
            continue
        peers[host].canned[("GET", rel)] = (200, body(case))
        r = g.request("GET", "/ooapi" + rel, headers=auth(caller))
        done += 1
        if r.status != 200 or r.json() != body(case):
            failures.append("%s via GET %s: %s" % (case["file"], rel, r.short()))
        del peers[host].canned[("GET", rel)]
    check(done >= 12, "only %d answers tried" % done)
    check(not failures, "\n  ".join(failures))
    warned = [x for x in g.log_lines() if "breaks the OKE profile" in x.get("msg", "")]
    check(not warned, "valid answers were reported as invalid: %r" % warned[:2])


def test_invalid_answer_is_blocked(t):
    g, peers = setup(t)
    case = next(c for c in CASES if c["file"].endswith("invalid_consumerKey_uppercase.json"))
    peers["ta"].canned[("GET", "/components/" + COMPONENT)] = (200, body(case))
    r = g.request("GET", "/ooapi/components/" + COMPONENT, headers=auth("planning"))
    check_problem(r, 502, "an answer with consumerKey NL-TEST-ADMIN")
    check(case["pointer"] in [e.get("pointer") for e in r.json().get("errors", [])],
          "errors: %r" % r.json())


if __name__ == "__main__":
    main(globals())
