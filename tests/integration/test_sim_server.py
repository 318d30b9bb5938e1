#!/usr/bin/env python3
"""A second supplier on one machine: `okegw sim` serves the simulated TA over plain HTTP, an
ooapi connector of a real gateway points at it beside the built-in sim; catalogue_seed (and
--seed) give a supplier tests of its own, deterministically, and no seed the old catalogue."""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (TestFailure, check, check_2xx, check_problem, conf, main,  # noqa: E402
                       make_association, make_offering, ooapi_connector, request, run_okegw,
                       time_scale, wrapper)

# The built-in sim's catalogue as it has always been: other tests and demos rely on these ids.
DEFAULT_IDS = {
    "3d0a6c1e-8b2f-4f7a-9e4d-1c5b7a9e2f10", "5a9e2b47-1c3d-4e8f-a6b2-7d0c9e4f1a22",
    "7c4f1e93-2a6b-4d5c-8e1f-0b3a5c7d9e34", "9e2b5d18-4f7a-4c3e-b1d6-2a8f0c4e6b46",
    "b16d3f2a-6e9c-4a1b-9f5e-3c7d1a8b0e58", "d38a7c5e-0f1b-4e6d-a2c9-5e1b3d7f9a6a"}
DEFAULT_NAMES = {"Burgerschap kennistoets", "Engels B1 lezen", "Keuzedeel Ondernemerschap",
                 "Nederlands lezen 3F", "Proeve van bekwaamheid Verzorgende IG", "Rekenen 2F"}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class SimServer:
    """`okegw sim --listen 127.0.0.1:0 ARGS` (under OKEGW_WRAPPER like the gateway); the port
    comes from its "listening" log line. stop() sends a signal and wants exit code 0."""

    def __init__(self, t, *args, name="sim"):
        self.t = t
        self.args = ["sim", "--listen", "127.0.0.1:0"] + list(args)
        self.stderr_path = os.path.join(t.workdir, "okegw-sim-%s.log" % name)
        self.proc = None
        self.port = None

    def start(self, timeout=10.0):
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(wrapper() + [self.t.binary] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, cwd=self.t.workdir)
        finally:
            err.close()
        self.t.cleanups.append(self.stop)
        deadline = time.monotonic() + timeout * time_scale()
        while time.monotonic() < deadline:
            for rec in self.log_lines():
                if rec.get("msg") == "listening" and "port" in rec:
                    self.port = int(rec["port"])
                    check(self.port > 0, "okegw sim: listening on port %r" % self.port)
                    return self
            if self.proc.poll() is not None:
                raise TestFailure("okegw sim exited with %s before listening:\n%s"
                                  % (self.proc.returncode, self.stderr_text()))
            time.sleep(0.02)
        raise TestFailure("okegw sim logged no 'listening' line:\n%s" % self.stderr_text())

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
        else:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(10 * time_scale())
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise TestFailure("okegw sim did not stop on signal %d" % sig)
        if rc not in (None, 0):
            raise TestFailure("okegw sim exited with %s:\n%s" % (rc, self.stderr_text()))
        return rc

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        out = []
        for line in self.stderr_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def request(self, method, path, body=None, headers=None):
        return request(self.port, method, path, body, headers)

    def catalogue(self):
        r = self.request("GET", "/components?pageSize=50")
        check(r.status == 200 and "json" in r.content_type, "okegw sim GET /components: %s"
              % r.short())
        return r.json()["items"]


def sim(t, *args, name="sim"):
    return SimServer(t, *args, name=name).start()


def ids(items):
    return {c["componentId"] for c in items}


def names(items):
    return {c["name"][0]["value"] for c in items}


def codes(items):
    return {c["primaryCode"]["code"] for c in items}


def system_of(c):
    return next((o.get("code") for o in c.get("otherCodes", []) if o.get("codeType") == "x-testSystem"),
                None)


def gateway_catalogue(g, n):
    r = g.request("GET", "/ooapi/components?pageSize=50")
    check(r.status == 200, "flow 0 GET components: %s" % r.short())
    items = r.json().get("items", [])
    check(len(items) == n, "merged catalogue: expected %d tests, got %d: %r"
          % (n, len(items), sorted(names(items))))
    return items


def put(g, kind, obj):
    key = {"offerings": "offeringId", "associations": "associationId"}[kind]
    return g.request("PUT", "/ooapi/%s/%s" % (kind, obj[key]), obj)


def test_second_supplier_beside_builtin_sim(t):
    second = sim(t, "--seed", "second", "--access-url-base", "http://second.example/start/")
    own = second.catalogue()
    g = t.gateway(conf([("sim", {"plugin": "sim", "role": "ta", "phase": "live"}),
                        ("second", ooapi_connector(second.port,
                                                   base_url="http://127.0.0.1:%d" % second.port))]))
    merged = gateway_catalogue(g, 12)
    check(ids(merged) == DEFAULT_IDS | ids(own),
          "merged catalogue is not the built-in sim's tests plus the second supplier's: %r"
          % sorted(ids(merged)))
    check(not (ids(own) & DEFAULT_IDS), "the second supplier shares tests with the built-in sim")

    # a zitting for a test of the second supplier goes to the standalone sim, not the built-in
    comp = sorted(own, key=lambda c: c["componentId"])[0]
    o = make_offering(comp["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering for a test of the second supplier")
    r = second.request("GET", "/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json().get("component") == comp["componentId"],
          "the standalone sim does not hold the zitting: %s" % r.short())
    a = make_association(o["offeringId"])
    check_2xx(put(g, "associations", a), "PUT deelname for the second supplier's zitting")
    r = second.request("GET", "/associations/" + a["associationId"])
    check(r.status == 200 and r.json().get("associationId") == a["associationId"],
          "the standalone sim does not hold the deelname: %s" % r.short())

    # read back through the gateway
    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200 and r.json().get("offeringId") == o["offeringId"],
          "GET offering through the gateway: %s" % r.short())
    r = g.request("GET", "/ooapi/offerings/%s/associations" % o["offeringId"])
    check(r.status == 200 and a["associationId"] in
          [x.get("associationId") for x in r.json().get("items", [])],
          "GET the zitting's deelnames through the gateway: %s" % r.short())
    r = g.request("GET", "/ooapi/associations/" + a["associationId"])
    check(r.status == 200 and r.json().get("associationId") == a["associationId"],
          "GET deelname through the gateway: %s" % r.short())
    r = g.request("GET", "/ooapi/associations/%s/url" % a["associationId"])
    check(r.status == 200 and r.json() == "http://second.example/start/" + a["associationId"],
          "start link of the second supplier: %s" % r.short())

    # the standalone sim logged each as the OKE interaction it is, one JSON line per request
    seen = {(rec.get("interaction"), rec.get("status")) for rec in second.log_lines()
            if rec.get("msg") == "request"}
    for want in [("flow0.list_components", 200), ("flow2.put_offering", 201),
                 ("flow2.put_association", 201), ("flow2.get_association_url", 200)]:
        check(want in seen, "okegw sim logged no request line %r: %r" % (want, sorted(seen, key=str)))
    # the built-in sim never saw the zitting
    check(not any(rec.get("connector") == "sim" and rec.get("interaction") == "flow2.put_offering"
                  for rec in g.log_lines()),
          "the built-in sim was sent the second supplier's zitting")


def test_catalogue_seed_in_one_gateway(t):
    g = t.gateway(conf([("sim", {"plugin": "sim", "role": "ta", "phase": "live"}),
                        ("sim2", {"plugin": "sim", "role": "ta", "phase": "live",
                                  "catalogue_seed": "second"})]))
    merged = gateway_catalogue(g, 12)
    seeded = [c for c in merged if c["componentId"] not in DEFAULT_IDS]
    check(len(seeded) == 6, "the seeded sim should add 6 tests of its own, got %d" % len(seeded))
    # the key in plugins.conf and --seed of okegw sim give the same supplier
    check(ids(seeded) == ids(sim(t, "--seed", "second").catalogue()),
          "catalogue_seed = second and okegw sim --seed second differ")
    o = make_offering(seeded[0]["componentId"])
    check_2xx(put(g, "offerings", o), "PUT offering for a test of the seeded sim")
    a = make_association(o["offeringId"])
    check_2xx(put(g, "associations", a), "PUT deelname at the seeded sim")
    r = g.request("GET", "/ooapi/associations/" + a["associationId"])
    check(r.status == 200 and r.json().get("associationId") == a["associationId"],
          "GET deelname at the seeded sim: %s" % r.short())
    r = g.request("GET", "/ooapi/components/" + seeded[0]["componentId"])
    check(r.status == 200 and r.json().get("componentId") == seeded[0]["componentId"],
          "GET one seeded component: %s" % r.short())


def test_seeds_give_their_own_catalogues(t):
    plain = sim(t, name="plain").catalogue()
    check(ids(plain) == DEFAULT_IDS and names(plain) == DEFAULT_NAMES and
          all(system_of(c) == "okegw-sim" for c in plain),
          "without --seed the catalogue must be the old one: %r" % sorted(names(plain)))
    s2 = sim(t, "--seed", "second", name="second")
    second, third = s2.catalogue(), sim(t, "--seed", "third", name="third").catalogue()
    for label, cat in (("second", second), ("third", third)):
        check(len(cat) == 6, "seed %s: 6 tests, got %d" % (label, len(cat)))
        check(all(UUID4.match(c["componentId"]) for c in cat),
              "seed %s: ids are not version 4 UUIDs: %r" % (label, sorted(ids(cat))))
        check(not (ids(cat) & DEFAULT_IDS), "seed %s shares ids with the default" % label)
        check(not (names(cat) & DEFAULT_NAMES), "seed %s keeps default names" % label)
        check(all(("(%s)" % label) in n for n in names(cat)),
              "seed %s: names do not say whose they are: %r" % (label, sorted(names(cat))))
        check(not (codes(cat) & codes(plain)), "seed %s keeps default codes" % label)
        check(all(system_of(c) == "okegw-sim-" + label for c in cat),
              "seed %s: x-testSystem %r" % (label, {system_of(c) for c in cat}))
        check(len({c["organization"] for c in cat}) == 1 and
              cat[0]["organization"] != plain[0]["organization"],
              "seed %s: one organization of its own" % label)
    check(not (ids(second) & ids(third)) and not (codes(second) & codes(third)),
          "seeds second and third give overlapping catalogues")
    # the same seed gives the same catalogue every run
    s2.stop()
    check(sim(t, "--seed", "second", name="second-again").catalogue() == second,
          "seed second gave another catalogue on the second run")


def test_http_answers(t):
    s = sim(t, "--seed", "second")
    r = s.request("GET", "/")
    check(r.status == 200 and "v5" in r.json().get("supportedVersions", []) and
          any(c.get("consumerKey") == "nl-test-admin" for c in r.json().get("supportedConsumers", [])),
          "GET / must declare v5 and nl-test-admin (R31): %s" % r.short())
    check_problem(s.request("GET", "/nothing/here"), 404, "unknown path")
    check_problem(s.request("GET", "/components/"), 404, "empty id")
    r = s.request("DELETE", "/components")
    check_problem(r, 405, "DELETE /components")
    check(r.header("Allow") == "GET", "405 without Allow: GET: %r" % r.header("Allow"))
    r = s.request("POST", "/offerings/" + next(iter(ids(s.catalogue()))))
    check_problem(r, 405, "POST offering")
    check(r.header("Allow") == "PUT, PATCH, GET", "405 Allow of offerings: %r" % r.header("Allow"))
    check_problem(s.request("GET", "/components/" + next(iter(DEFAULT_IDS))), 404,
                  "a default test at a seeded supplier")
    check_problem(s.request("PUT", "/offerings/7b0e9c9d-0d0e-4d43-9a3f-1f6c7a3c2b10", b"{not json",
                            {"Content-Type": "application/json"}), 400, "PUT bad JSON")
    o = make_offering(sorted(ids(s.catalogue()))[0])
    r = s.request("PUT", "/offerings/" + o["offeringId"].upper(), o)
    check(r.status == 201, "PUT offering with the id in upper case: %s" % r.short())
    r = s.request("GET", "/offerings/" + o["offeringId"])
    check(r.status == 200, "GET it back: %s" % r.short())
    check_problem(s.request("GET", "/associations/%s/url" % o["offeringId"]), 404, "url of nothing")
    # SIGINT stops it as cleanly as SIGTERM (exit 0; under valgrind also without leaks)
    s.stop(signal.SIGINT)
    check(any(rec.get("msg") == "stopped" for rec in s.log_lines()), "no 'stopped' log line")


def test_usage_and_bad_settings(t):
    rc, out = run_okegw(t.binary, ["sim"])
    check(rc == 2 and "--listen" in out, "okegw sim without --listen: %s %s" % (rc, out))
    rc, out = run_okegw(t.binary, ["sim", "--listen", "127.0.0.1:0", "--bogus"])
    check(rc == 2 and "--bogus" in out, "unknown option: %s %s" % (rc, out))
    rc, out = run_okegw(t.binary, ["sim", "--listen", "127.0.0.1:0", "--seed", "x" * 65])
    check(rc == 1 and "64" in out, "a seed over 64 bytes: %s %s" % (rc, out))
    rc, out = run_okegw(t.binary, ["sim", "--listen", "127.0.0.1:0", "--seed", " padded"])
    check(rc == 2 and "--seed" in out, "a seed with a leading blank: %s %s" % (rc, out))
    rc, out = run_okegw(t.binary, ["sim", "--listen", "nowhere"])
    check(rc == 2 and "listen" in out, "a bad --listen: %s %s" % (rc, out))
    rc, out = run_okegw(t.binary, ["sim", "--help"])
    check(rc == 0 and "--seed" in out and "--access-url-base" in out, "okegw sim --help: %s" % out)
    path = t.write("seed.conf", conf([("sim", {"plugin": "sim", "role": "ta",
                                               "catalogue_seed": "y" * 65})]))
    rc, out = run_okegw(t.binary, ["-t", "-c", path])
    check(rc == 1 and "catalogue_seed" in out, "okegw -t with a long catalogue_seed: %s %s" % (rc, out))


if __name__ == "__main__":
    main(globals())
