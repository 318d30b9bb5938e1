#!/usr/bin/env python3
"""okegw deliveries, audit and report through a running gateway's admin API: the same output as
with --store (the store directly), retry and drop visible in the gateway's log, the store used
directly once the gateway is stopped, and a wrong admin_token refused with exit 2."""
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, check, conf, free_port, main, make_components,  # noqa: E402
                       make_offering, ooapi_connector, request, time_scale, wrapper, TestFailure)

TOKEN = "cli-admin-token-0123456789abcdef"
FAST = {"retry_first_ms": 100, "retry_max_ms": 400, "delivery_wait_ms": 200}


def run(t, *args):
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120 * time_scale())
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def both(t, g, *args):
    """The command through the API and with --store: (rc, out, err) of each."""
    return run(t, *args[:1], *args[1:], "-c", g.conf_path), \
        run(t, *args[:1], *args[1:], "-c", g.conf_path, "--store")


# RFC 3339, and the HTML report's "2026-12-07 13:51 UTC" (two runs may straddle a minute)
NOW = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d(\.\d+)?Z| \d\d:\d\d UTC)")


def same(t, g, *args, times=False):
    """The command gives the same through the API as from the store; times: every time stamp
    replaced (a report says when it was made)."""
    api, store = both(t, g, *args)
    if times:
        api, store = [(r[0], NOW.sub("TIME", r[1]), r[2]) for r in (api, store)]
    check(api == store, "okegw %s: through the API %r, from the store %r"
          % (" ".join(args), api, store))
    check(api[0] == 0, "okegw %s: exit %d: %s" % (" ".join(args), api[0], api[2]))
    return api[1]


def state(t, g, did):
    rc, out, err = run(t, "deliveries", "show", "-c", g.conf_path, "--store", str(did))
    check(rc == 0, "show %d: %s" % (did, err))
    return json.loads(out)["state"]


def setup(t):
    ta = t.peer(make_components(2), name="ta")
    tb = t.peer(make_components(1, numbers=[7]), name="tb")
    text = conf([("ta", ooapi_connector(ta, delivery_max_age_s=1, **FAST)), ("tb", ooapi_connector(tb, **FAST))],
                admin_listen="127.0.0.1:%d" % free_port(), admin_token=TOKEN)
    g = t.gateway(text)
    check(g.admin_port, "no 'listening (admin)' line")
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200, "flow 0: %s" % r.short())
    return g, ta, tb


def dead_letters(t, g, peer, n):
    """n pushes to a peer that is down, held until dead; their delivery ids."""
    peer.down()
    ids = []
    for i in range(n):
        o = make_offering(peer.catalogue[0]["componentId"])
        o["name"][0]["value"] = "push %d" % i
        r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
        check(r.status == 202, "push while the peer is down: %s" % r.short())
        ids.append(r.json()["id"])
    for did in ids:
        poll("delivery %d dead" % did, lambda: state(t, g, did) == "dead")
    return ids


def change_lines(g, path):
    return [r for r in g.log_lines() if r.get("path") == path and
            str(r.get("msg", "")).startswith("admin API: POST " + path)]


# --------------------------------------------------------------------------

def test_same_output(t):
    g, ta, tb = setup(t)
    ids = dead_letters(t, g, ta, 3)
    out = same(t, g, "deliveries", "list")
    check(out.startswith("ID") and len(out.splitlines()) == 4, "list: %r" % out)
    out = same(t, g, "deliveries", "list", "--json")
    check([json.loads(x)["id"] for x in out.splitlines()] == ids, "list --json: %r" % out)
    same(t, g, "deliveries", "list", "--state", "dead", "--connector", "ta", "--limit", "2")
    same(t, g, "deliveries", "list", "--connector", "tb")
    same(t, g, "deliveries", "list", "--limit", "5000")  # the store: beyond the API's limit
    out = same(t, g, "deliveries", "show", str(ids[0]))
    check(json.loads(out)["body"], "show has the body: %r" % out)
    api, store = both(t, g, "deliveries", "show", "999999")
    check(api == store and api[0] == 1 and "there is no delivery 999999" in api[2],
          "show of an unknown delivery: %r vs %r" % (api, store))
    out = same(t, g, "audit")
    check(len(out.splitlines()) >= 3, "audit: %r" % out)
    same(t, g, "audit", "--limit", "2")      # more rows than asked: from the store
    same(t, g, "audit", "--limit", "100", "--since", "2020-01-01")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    for fmt in ("json", "text", "html"):
        out = same(t, g, "report", "--connector", "ta", "--since", day, "--format", fmt, times=True)
        check(out.strip() and (fmt != "json" or json.loads(out)["connector"] == "ta"),
              "report as %s: %r" % (fmt, out[:200]))
    out_api = os.path.join(g.workdir, "api.json")
    out_store = os.path.join(g.workdir, "store.json")
    a = run(t, "report", "-c", g.conf_path, "--connector", "ta", "--since", day, "--format",
            "json", "-o", out_api)
    s = run(t, "report", "-c", g.conf_path, "--connector", "ta", "--since", day, "--format",
            "json", "-o", out_store, "--store")
    check(a[0] == 0 and s[0] == 0 and a[1] == "" and NOW.sub("T", open(out_api).read()) == NOW.sub("T", open(out_store).read()),
          "report -o: %r %r" % (a, s))
    rc, _, err = run(t, "report", "-c", g.conf_path, "--connector", "nope")
    check(rc == 2 and "no [connector nope]" in err, "report of an unknown connector: %r" % err)
    # nothing went to the log as a change
    check(not [r for r in g.log_lines() if "admin API: POST" in str(r.get("msg"))],
          "reading logged a change")
    check(TOKEN not in g.stderr_text(), "the admin token is in the log")


def test_retry_drop_through_the_gateway(t):
    g, ta, _ = setup(t)
    ids = dead_letters(t, g, ta, 3)
    ta.up()
    rc, out, err = run(t, "deliveries", "retry", "-c", g.conf_path, str(ids[0]), "999999")
    check(rc == 1 and out == "delivery %d: dead -> pending (a running gateway sends it within a "
          "few seconds)\n" % ids[0] and err == "okegw deliveries: there is no delivery 999999\n",
          "retry: %r" % ((rc, out, err),))
    path = "/admin/api/deliveries/%d/retry" % ids[0]
    lines = change_lines(g, path)
    check(len(lines) == 1 and lines[0].get("status") == 200 and lines[0].get("level") == "info"
          and "by the admin token" in lines[0]["msg"], "the gateway's log line: %r" % lines)
    check(change_lines(g, "/admin/api/deliveries/999999/retry")[0].get("status") == 404,
          "the refused retry is logged with its status")
    poll("delivery %d delivered" % ids[0], lambda: state(t, g, ids[0]) == "delivered")
    # the same refusal from the store
    api, store = both(t, g, "deliveries", "retry", str(ids[0]))
    check(api == store and api[0] == 1 and "only dead or failed" in api[2],
          "retry of a delivered one: %r vs %r" % (api, store))
    rc, out, err = run(t, "deliveries", "drop", "-c", g.conf_path, str(ids[1]))
    check(rc == 0 and re.fullmatch(r"delivery %d: dead -> dropped \((body kept until "
                                   r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|body removed|its body was not "
                                   r"kept)\)\n" % ids[1], out), "drop: %r" % ((rc, out, err),))
    check(len(change_lines(g, "/admin/api/deliveries/%d/drop" % ids[1])) == 1, "drop not logged")
    # the same line as the store prints for its own drop
    rc, out2, err = run(t, "deliveries", "drop", "-c", g.conf_path, "--store", str(ids[2]))
    check(rc == 0 and out2.replace(str(ids[2]), "N") == out.replace(str(ids[1]), "N"),
          "drop from the store %r, through the API %r" % (out2, out))
    api, store = both(t, g, "deliveries", "drop", str(ids[1]))
    check(api == store and api[0] == 1 and "is dropped" in api[2],
          "drop of a dropped one: %r vs %r" % (api, store))
    # a reload through the API is logged the same way
    r = request(g.admin_port, "POST", "/admin/api/reload", None,
                {"Authorization": "Bearer " + TOKEN}, timeout=30 * time_scale())
    check(r.status == 200 and r.json()["taken"] is True, "reload: %s" % r.short())
    lines = change_lines(g, "/admin/api/reload")
    check(len(lines) == 1 and lines[0].get("status") == 200 and "reload taken" in lines[0]["msg"],
          "reload's log line: %r" % lines)
    # retry --connector has no API form: the store directly, nothing in the gateway's log
    rc, out, err = run(t, "deliveries", "retry", "-c", g.conf_path, "--connector", "ta")
    check(rc == 0 and out == "no dead deliveries at connector ta: nothing to retry\n",
          "retry --connector: %r" % ((rc, out, err),))


def test_gateway_stopped(t):
    g, ta, _ = setup(t)
    ids = dead_letters(t, g, ta, 2)
    with_gw = {}
    for args in (("deliveries", "list"), ("deliveries", "show", str(ids[0])), ("audit",)):
        with_gw[args] = same(t, g, *args)
    check(g.stop() == 0, "okegw did not stop cleanly")
    for args, out in with_gw.items():
        rc, out2, err = run(t, *args[:1], *args[1:], "-c", g.conf_path)
        check(rc == 0 and out2 == out, "okegw %s with the gateway stopped: %r" % (args, err))
    rc, out, err = run(t, "deliveries", "retry", "-c", g.conf_path, str(ids[0]))
    check(rc == 0 and out.startswith("delivery %d: dead -> pending" % ids[0]),
          "retry from the store: %r" % ((rc, out, err),))
    rc, out, err = run(t, "report", "-c", g.conf_path, "--connector", "ta", "--format", "json")
    check(rc == 0 and json.loads(out)["verdict"], "report from the store: %r" % err)


def test_wrong_token(t):
    g, _, _ = setup(t)
    bad = os.path.join(g.workdir, "wrong-token.conf")
    with open(g.conf_path) as f:
        text = f.read()
    check(TOKEN in text, "the token is not in the configuration")
    with open(bad, "w") as f:
        f.write(text.replace(TOKEN, "not-" + TOKEN))
    for args in (("deliveries", "list"), ("deliveries", "show", "1"), ("deliveries", "drop", "1"),
                 ("audit",), ("report", "--connector", "ta")):
        rc, out, err = run(t, *args[:1], *args[1:], "-c", bad)
        check(rc == 2 and out == "" and "admin_token" in err and "401" in err,
              "okegw %s with a wrong token: %r" % (" ".join(args), (rc, out, err)))
        check(TOKEN not in err, "the token is in the message")
        rc, out, err = run(t, *args[:1], *args[1:], "-c", bad, "--store")
        check(rc in (0, 1), "okegw %s --store with a wrong token: %r" % (args, (rc, out, err)))


if __name__ == "__main__":
    main(globals())
