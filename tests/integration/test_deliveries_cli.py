#!/usr/bin/env python3
"""okegw deliveries list|show|retry|drop: the operator's view of the outbox. The rows are
written straight into the store of a gateway that ran once (and made the schema), then the
commands are checked against what they print and what they leave in the table."""
import datetime
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, conf, main, make_components, ooapi_connector,  # noqa: E402
                       time_scale, wrapper)

HOUR = 3600 * 1000
T0 = 1795949058000  # 2026-11-29T10:44:18Z
LONG_ERROR = "peer answered 400: " + "the offering has no valid startDateTime; " * 4


def run(t, *args):
    """okegw with args (under OKEGW_WRAPPER, e.g. valgrind); returns (rc, stdout, stderr)."""
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60 * time_scale())
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def rfc3339(ms, millis=True):
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    return s + (".%03dZ" % (ms % 1000) if millis else "Z")


def row(id, connector, state, body=b'{"offeringId":"x"}', **kw):
    r = {"id": id, "created_ms": T0 + id * 1000 + 123, "updated_ms": T0 + id * 1000 + 500,
         "since_ms": T0 + id * 1000 + 123, "connector": connector, "caller": "planning",
         "interaction": "flow2.put_offering", "resource": "offering/res-%d" % id,
         "resource_id": "res-%d" % id, "request_id": "req-%d" % id, "method": "PUT",
         "path": "/offerings/res-%d" % id, "query": None, "content_type": "application/json",
         "body": body, "body_sha256": "ab" * 32, "state": state, "attempts": 3,
         "next_ms": None, "last_status": None, "last_error": None, "delivered_ms": None,
         "keep_until_ms": None, "requeue": 0}
    r.update(kw)
    return r


def future():
    return int(time.time() * 1000) + 7 * 24 * HOUR


ROWS = [
    row(1, "alpha", "dead", last_status=503, last_error="connection refused"),
    row(2, "alpha", "delivered", body=None, last_status=201, delivered_ms=T0 + 2999),
    row(3, "alpha", "failed", last_status=400, last_error=LONG_ERROR),
    row(4, "beta", "dead", body=None, last_error="timed out"),
    row(5, "beta", "pending", next_ms=T0 + 9000, keep_until_ms=future()),
    row(6, "beta", "dead", last_error="timed out", keep_until_ms=T0),
    row(7, "alpha", "dead", last_status=502, last_error="bad gateway"),
    row(8, "beta", "failed", body=b"\xff\x00binary", last_status=415),
    row(9, "alpha", "dropped", body=None),
]


def store(t):
    """A store made by the gateway, filled with ROWS; returns (conf path, db path)."""
    p = t.peer(make_components(1), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(p)), ("beta", ooapi_connector(p))]))
    rc = g.stop()
    check(rc == 0, "okegw exited with %s" % rc)
    path = os.path.join(g.workdir, "okegw.db")
    db = sqlite3.connect(path)
    cols = list(ROWS[0].keys())
    db.executemany("INSERT INTO deliveries(%s) VALUES(%s)" % (
        ", ".join(cols), ", ".join("?" * len(cols))), [[r[c] for c in cols] for r in ROWS])
    db.commit()
    db.close()
    return g.conf_path, path


def db_row(path, id):
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    r = db.execute("SELECT * FROM deliveries WHERE id = ?", (id,)).fetchone()
    db.close()
    return dict(r) if r else None


def json_lines(out):
    return [json.loads(x) for x in out.splitlines()]


def test_list_table(t):
    c, _ = store(t)
    rc, out, err = run(t, "deliveries", "list", "-c", c)
    check(rc == 0 and err == "", "list: %d %s" % (rc, err))
    lines = out.splitlines()
    check(len(lines) == 1 + len(ROWS), "one header and one line per delivery: %r" % lines)
    head = lines[0].split()
    check(head == ["ID", "CREATED", "CONNECTOR", "STATE", "ATTEMPTS", "LAST", "INTERACTION",
                   "RESOURCE", "ERROR"], "header: %r" % lines[0])
    # aligned: every column starts where its header does
    starts = [lines[0].index(h) for h in head]
    for line in lines[1:]:
        for s in starts[1:]:
            check(line[s - 1] == " " and line[s] != " ", "not aligned:\n%s\n%s" % (lines[0], line))
    first = lines[1].split(None, 8)
    check(first[:8] == ["1", "2026-11-29T10:44:19Z", "alpha", "dead", "3", "503",
                        "flow2.put_offering", "res-1"] and first[8] == "connection refused",
          "row 1: %r" % first)
    check(lines[2].split()[5] == "201" and lines[2].rstrip().endswith("-"), "row 2: %r" % lines[2])
    check(lines[4].split()[5] == "-", "no status yet: %r" % lines[4])
    err3 = lines[3][starts[8]:]
    check(len(err3) <= 60 and err3.endswith("...") and LONG_ERROR.startswith(err3[:-3]),
          "long error not cut: %r" % err3)
    check([x.split()[0] for x in lines[1:]] == [str(r["id"]) for r in ROWS], "oldest first")


def test_list_filters_and_json(t):
    c, _ = store(t)
    rc, out, err = run(t, "deliveries", "list", "-c", c, "--connector", "beta", "--json")
    check(rc == 0 and err == "", "list --json: %d %s" % (rc, err))
    got = json_lines(out)
    check([x["id"] for x in got] == [4, 5, 6, 8], "beta: %r" % [x["id"] for x in got])
    rc, out, _ = run(t, "deliveries", "list", "-c", c, "--state", "dead", "--json")
    check(rc == 0 and [x["id"] for x in json_lines(out)] == [1, 4, 6, 7], "dead: %r" % out)
    rc, out, _ = run(t, "deliveries", "list", "-c", c, "--state", "dead", "--connector", "alpha",
                     "--json", "--limit", "1")
    check(rc == 0 and [x["id"] for x in json_lines(out)] == [1], "dead at alpha, 1: %r" % out)
    rc, out, _ = run(t, "deliveries", "list", "-c", c, "--connector", "nobody")
    check(rc == 0 and len(out.splitlines()) == 1, "nothing but the header: %r" % out)
    rc, out, _ = run(t, "deliveries", "list", "-c", c, "--json")
    byid = {x["id"]: x for x in json_lines(out)}
    check(sorted(byid) == [r["id"] for r in ROWS], "all rows: %r" % sorted(byid))
    d = byid[1]
    want = {"id": 1, "createdAt": rfc3339(ROWS[0]["created_ms"]),
            "updatedAt": rfc3339(ROWS[0]["updated_ms"]),
            "windowStartedAt": rfc3339(ROWS[0]["since_ms"]), "connector": "alpha",
            "caller": "planning", "interaction": "flow2.put_offering",
            "resource": "offering/res-1", "resourceId": "res-1", "requestId": "req-1",
            "method": "PUT", "path": "/offerings/res-1", "query": None,
            "contentType": "application/json", "bodySha256": "ab" * 32, "state": "dead",
            "attempts": 3, "nextAttemptAt": None, "lastStatus": 503,
            "lastError": "connection refused", "deliveredAt": None, "bodyKeptUntil": None,
            "requeue": False, "bodyKept": True}
    check(d == want, "row 1 as JSON:\n%r\nwanted\n%r" % (d, want))
    check(d["createdAt"] == "2026-11-29T10:44:19.123Z", "createdAt: %r" % d["createdAt"])
    check(byid[2]["deliveredAt"] == rfc3339(T0 + 2999) and byid[2]["bodyKept"] is False,
          "row 2: %r" % byid[2])
    check(byid[5]["nextAttemptAt"] == rfc3339(T0 + 9000), "row 5: %r" % byid[5])
    check(byid[3]["lastError"] == LONG_ERROR, "JSON keeps the whole error: %r" % byid[3])
    check(not any("body" in x for x in byid.values()), "list printed a body")


def test_show(t):
    c, _ = store(t)
    rc, out, err = run(t, "deliveries", "show", "-c", c, "5")
    check(rc == 0 and err == "", "show 5: %d %s" % (rc, err))
    check(out.startswith("{\n"), "not indented: %r" % out[:40])
    d = json.loads(out)
    check(d["id"] == 5 and d["state"] == "pending" and d["body"] == '{"offeringId":"x"}'
          and d["bodyKept"] is True and d["bodyBytes"] == 18, "show 5: %r" % d)
    check(d["bodyKeptUntil"] == rfc3339(ROWS[4]["keep_until_ms"]), "kept until: %r" % d)
    check("bodyEncoding" not in d, "text body: %r" % d)
    rc, out, _ = run(t, "deliveries", "show", "-c", c, "4")
    d = json.loads(out)
    check(rc == 0 and d["body"] is None and d["bodyKept"] is False, "show 4: %r" % d)
    rc, out, _ = run(t, "deliveries", "show", "-c", c, "8")
    d = json.loads(out)
    check(rc == 0 and d["bodyEncoding"] == "base64" and d["body"] == "/wBiaW5hcnk=",
          "a binary body: %r" % d)
    rc, out, err = run(t, "deliveries", "show", "-c", c, "99")
    check(rc == 1 and out == "" and "no delivery 99" in err
          and err.startswith("okegw deliveries: "), "show 99: %d %r %r" % (rc, out, err))


def test_retry(t):
    c, path = store(t)
    before = int(time.time() * 1000)
    rc, out, err = run(t, "deliveries", "retry", "-c", c, "1", "3")
    after = int(time.time() * 1000)
    check(rc == 0 and err == "", "retry 1 3: %d %s" % (rc, err))
    check(out.splitlines() == [
        "delivery 1: dead -> pending (a running gateway sends it within a few seconds)",
        "delivery 3: failed -> pending (a running gateway sends it within a few seconds)"],
        "retry output: %r" % out)
    for id in (1, 3):
        r = db_row(path, id)
        check(r["state"] == "pending" and r["requeue"] == 1, "row %d: %r" % (id, r))
        check(before <= r["since_ms"] <= after and r["next_ms"] == r["since_ms"]
              and r["updated_ms"] == r["since_ms"], "times of row %d: %r" % (id, r))
        check(r["body"] == ROWS[0]["body"] and r["attempts"] == 3, "row %d: %r" % (id, r))
    # refused: delivered, not kept, missing; the one that can goes through
    rc, out, err = run(t, "deliveries", "retry", "-c", c, "2", "4", "77", "6")
    check(rc == 1, "retry with refusals: exit %d" % rc)
    check("delivery 2 is delivered" in err and "only dead or failed" in err,
          "delivered not refused: %r" % err)
    check("delivery 4" in err and "not kept" in err, "body NULL not refused: %r" % err)
    check("no delivery 77" in err, "missing id: %r" % err)
    check(out.splitlines() == [
        "delivery 6: dead -> pending (a running gateway sends it within a few seconds)"],
        "out: %r" % out)
    check(db_row(path, 2)["state"] == "delivered" and db_row(path, 2)["requeue"] == 0, "row 2")
    check(db_row(path, 4)["state"] == "dead" and db_row(path, 4)["requeue"] == 0, "row 4")
    check(db_row(path, 6)["state"] == "pending", "row 6")
    rc, _, err = run(t, "deliveries", "retry", "-c", c, "5")
    check(rc == 1 and "is pending" in err, "a pending one: %d %r" % (rc, err))


def test_retry_by_connector(t):
    c, path = store(t)
    rc, out, err = run(t, "deliveries", "retry", "-c", c, "--connector", "alpha")
    check(rc == 0 and err == "", "retry --connector alpha: %d %s" % (rc, err))
    check([x.split(":")[0] for x in out.splitlines()] == ["delivery 1", "delivery 7"],
          "the dead ones at alpha: %r" % out)
    check(db_row(path, 3)["state"] == "failed", "a failed one was retried too")
    check(db_row(path, 4)["state"] == "dead", "another connector's row changed")
    rc, out, err = run(t, "deliveries", "retry", "-c", c, "--connector", "alpha", "--state",
                       "failed")
    check(rc == 0 and out.startswith("delivery 3: failed -> pending"), "failed: %r %r" % (out, err))
    # beta: 4 has no body (refused), 6 goes
    rc, out, err = run(t, "deliveries", "retry", "-c", c, "--connector", "beta")
    check(rc == 1 and "delivery 4" in err and out.startswith("delivery 6: dead -> pending"),
          "beta: %d %r %r" % (rc, out, err))
    rc, out, err = run(t, "deliveries", "retry", "-c", c, "--connector", "alpha")
    check(rc == 0 and "nothing to retry" in out, "nothing left: %d %r %r" % (rc, out, err))


def test_drop(t):
    c, path = store(t)
    rc, out, err = run(t, "deliveries", "drop", "-c", c, "5", "6", "3")
    check(rc == 0 and err == "", "drop 5 6 3: %d %s" % (rc, err))
    lines = out.splitlines()
    check(len(lines) == 3 and lines[0].startswith("delivery 5: pending -> dropped (body kept")
          and lines[1] == "delivery 6: dead -> dropped (body removed)"
          and lines[2] == "delivery 3: failed -> dropped (body removed)", "drop output: %r" % out)
    r5, r6 = db_row(path, 5), db_row(path, 6)
    check(r5["state"] == "dropped" and r5["requeue"] == 1 and r5["body"] == ROWS[4]["body"],
          "kept until next week, so the body stays: %r" % r5)
    check(r6["state"] == "dropped" and r6["requeue"] == 1 and r6["body"] is None
          and r6["body_sha256"] == "ab" * 32, "kept until long ago: %r" % r6)
    check(r6["updated_ms"] > ROWS[5]["updated_ms"], "updated_ms: %r" % r6)
    rc, out, err = run(t, "deliveries", "drop", "-c", c, "2", "9", "4")
    check(rc == 1 and "delivery 2 is delivered" in err and "delivery 9 is dropped" in err,
          "delivered/dropped not refused: %d %r" % (rc, err))
    check(out == "delivery 4: dead -> dropped (its body was not kept)\n", "out: %r" % out)
    check(db_row(path, 2)["state"] == "delivered" and db_row(path, 2)["body"] is None, "row 2")
    rc, _, err = run(t, "deliveries", "drop", "-c", c, "123")
    check(rc == 1 and "no delivery 123" in err, "missing: %d %r" % (rc, err))


def test_usage_errors(t):
    c, path = store(t)
    for args in ([], ["frobnicate", "-c", c], ["list"], ["list", "-c", c, "--state", "gone"],
                 ["list", "-c", c, "--limit", "0"], ["list", "-c", c, "--limit", "x"],
                 ["list", "-c", c, "7"], ["list", "-c", c, "--bogus"], ["list", "-c"],
                 ["show", "-c", c], ["show", "-c", c, "1", "2"], ["show", "-c", c, "abc"],
                 ["retry", "-c", c], ["retry", "-c", c, "1", "--connector", "alpha"],
                 ["retry", "-c", c, "--connector", "alpha", "--state", "pending"],
                 ["retry", "-c", c, "1", "--state", "dead"], ["retry", "-c", c, "--json", "1"],
                 ["drop", "-c", c], ["drop", "-c", c, "--connector", "alpha"],
                 ["drop", "-c", c, "-5"]):
        rc, out, err = run(t, "deliveries", *args)
        check(rc == 2 and out == "" and "usage: okegw deliveries" in err,
              "%r: %d %r %r" % (args, rc, out, err))
    rc, _, err = run(t, "deliveries", "list", "-c", c, "--state", "gone")
    check(all(s in err for s in ("pending", "delivered", "failed", "dead", "dropped"))
          and err.startswith("okegw deliveries: "), "valid states not named: %r" % err)
    rc, out, _ = run(t, "deliveries", "--help")
    check(rc == 0 and out.startswith("usage: okegw deliveries"), "--help: %d %r" % (rc, out))
    rc, _, err = run(t, "deliveries", "list", "-c", os.path.join(t.workdir, "missing.conf"))
    check(rc == 2 and err, "a missing configuration: %d %r" % (rc, err))
    rc, out, _ = run(t, "--help")
    check(re.search(r"okegw deliveries list\|show\|retry\|drop", out), "not in okegw --help")
    check(db_row(path, 1)["state"] == "dead" and db_row(path, 1)["requeue"] == 0,
          "a usage error changed the store")


def test_with_the_gateway_running(t):
    """The commands share the store with a running gateway."""
    p = t.peer(make_components(1), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(p))]))
    rc, out, err = run(t, "deliveries", "list", "-c", g.conf_path, "--json")
    check(rc == 0 and err == "", "list next to a running gateway: %d %r" % (rc, err))
    check(all(json.loads(x)["connector"] for x in out.splitlines()), "list: %r" % out)
    rc, _, err = run(t, "deliveries", "drop", "-c", g.conf_path, "424242")
    check(rc == 1 and "no delivery 424242" in err, "drop of nothing: %d %r" % (rc, err))


if __name__ == "__main__":
    main(globals())
