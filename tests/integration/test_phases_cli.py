#!/usr/bin/env python3
"""okegw phases: the connectors' phase history (table phase_history) as a table or JSON lines,
and the audit trail's "phase" member.

The store is made by a real gateway run (schema 3), which records the phases it started with;
those rows are checked, then replaced here with a known history written with python's sqlite3
into the same schema, so every row the command prints is one the test chose. (Reloads that
change phases are tested end to end in test_phases.py.)"""
import datetime
import json
import os
import re
import sqlite3
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, conf, main, make_components, ooapi_connector, request,  # noqa: E402
                       time_scale, wrapper)

T0 = 1795949058000  # 2026-11-29T10:44:18Z
DAY = 24 * 3600 * 1000
SHA_1 = "3f2a9c0e" + "11" * 28
SHA_2 = "9bd07e44" + "22" * 28
COLUMNS = ["id", "at_ms", "connector", "from_phase", "to_phase", "reason", "config_sha256",
           "instance"]

# (at_ms, connector, from, to, reason, config_sha256); ids follow this order
HISTORY = [
    (T0 + 123, "alpha", None, "shadow", "besluit EC 2026-11-28: schaduwfase", SHA_1),
    (T0 + 456, "beta", "", "live", None, SHA_1),
    (T0 + DAY, "alpha", "shadow", "pilot", "GO: pilot ROC Midden, zie verslag 12", SHA_2),
    (T0 + 2 * DAY + 789, "alpha", "pilot", "live", "GO examencommissie", SHA_2),
    (T0 + 3 * DAY, "beta", "live", "off", None, None),
]


def run(t, *args):
    """okegw with args (under OKEGW_WRAPPER, e.g. valgrind); returns (rc, stdout, stderr)."""
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60 * time_scale())
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def rfc3339(ms, millis=False):
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    return s + (".%03dZ" % (ms % 1000) if millis else "Z")


def store(t, history=HISTORY):
    """A store made by the gateway, with `history` in phase_history; returns (conf, db path)."""
    p = t.peer(make_components(1), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(p)), ("beta", ooapi_connector(p))]))
    r = request(g.port, "GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %d" % r.status)
    rc = g.stop()
    check(rc == 0, "okegw exited with %s" % rc)
    path = os.path.join(g.workdir, "okegw.db")
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(phase_history)")]
    check(cols == COLUMNS, "the gateway's phase_history columns: %r" % cols)
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    check(version == "5", "schema version %r" % version)
    started = db.execute("SELECT connector, from_phase, to_phase, config_sha256 FROM phase_history "
                         "ORDER BY id").fetchall()
    check([r[:3] for r in started] == [("alpha", None, "live"), ("beta", None, "live")]
          and all(r[3] and len(r[3]) == 64 for r in started),
          "the start should record both connectors as new and live, with the file's hash: %r"
          % started)
    db.execute("DELETE FROM phase_history")
    db.executemany("INSERT INTO phase_history(at_ms, connector, from_phase, to_phase, reason, "
                   "config_sha256) VALUES (?, ?, ?, ?, ?, ?)", history)
    db.commit()
    db.close()
    return g.conf_path, path


def expected_json(h):
    at, connector, frm, to, reason, sha = h
    return {"at": rfc3339(at, True), "connector": connector, "from": frm or None, "to": to,
            "reason": reason, "configSha256": sha}


def json_lines(out):
    return [json.loads(x) for x in out.splitlines()]


def test_table(t):
    c, _ = store(t)
    rc, out, err = run(t, "phases", "-c", c)
    check(rc == 0 and err == "", "phases: %d %r" % (rc, err))
    lines = out.splitlines()
    check(len(lines) == 1 + len(HISTORY), "a header and one line per change: %r" % lines)
    head = lines[0].split()
    check(head == ["TIME", "CONNECTOR", "FROM", "TO", "CONFIG", "REASON"], "header: %r" % lines[0])
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for line in lines[1:]:
        for s in starts[1:]:
            check(line[s - 1] == " " and line[s] != " ", "not aligned:\n%s\n%s" % (lines[0], line))
    for line, h in zip(lines[1:], HISTORY):
        at, connector, frm, to, reason, sha = h
        cells = line.split(None, 5)
        want = [rfc3339(at), connector, frm or "-", to, sha[:12] if sha else "-", reason or "-"]
        check(cells == want, "row %r, expected %r" % (cells, want))
    check(lines[1][starts[5]:] == HISTORY[0][4], "the reason in full: %r" % lines[1])


def test_json(t):
    c, _ = store(t)
    rc, out, err = run(t, "phases", "-c", c, "--json")
    check(rc == 0 and err == "", "phases --json: %d %r" % (rc, err))
    got = json_lines(out)
    check(got == [expected_json(h) for h in HISTORY], "JSON lines:\n%s" % out)
    check(all(list(o) == ["at", "connector", "from", "to", "reason", "configSha256"] for o in got),
          "members: %r" % got[0])


def test_connector_and_limit(t):
    c, _ = store(t)
    alpha = [expected_json(h) for h in HISTORY if h[1] == "alpha"]
    rc, out, err = run(t, "phases", "-c", c, "--json", "--connector", "alpha")
    check(rc == 0 and json_lines(out) == alpha, "--connector alpha: %d %r %r" % (rc, out, err))
    rc, out, _ = run(t, "phases", "-c", c, "--connector", "beta")
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 3 and all(x.split()[1] == "beta" for x in lines[1:]),
          "--connector beta: %r" % out)
    rc, out, _ = run(t, "phases", "-c", c, "--json", "--connector", "gamma")
    check(rc == 0 and out == "", "a connector without history: %d %r" % (rc, out))
    # --limit: the last N changes, still oldest first
    rc, out, _ = run(t, "phases", "-c", c, "--json", "--limit", "2")
    check(rc == 0 and json_lines(out) == [expected_json(h) for h in HISTORY[-2:]],
          "--limit 2: %r" % out)
    rc, out, _ = run(t, "phases", "-c", c, "--json", "--limit", "1", "--connector", "alpha")
    check(rc == 0 and json_lines(out) == alpha[-1:], "--limit 1 --connector alpha: %r" % out)


def test_empty_history(t):
    c, _ = store(t, history=[])
    rc, out, err = run(t, "phases", "-c", c)
    check(rc == 0 and err == "" and out.split() == ["TIME", "CONNECTOR", "FROM", "TO", "CONFIG",
                                                    "REASON"], "empty table: %d %r %r" % (rc, out, err))
    rc, out, err = run(t, "phases", "-c", c, "--json")
    check(rc == 0 and out == "" and err == "", "empty --json: %d %r %r" % (rc, out, err))


def test_missing_store(t):
    path = os.path.join(t.workdir, "nowhere", "okegw.db")
    c = t.write("missing.conf", conf([], store=path))
    rc, out, err = run(t, "phases", "-c", c)
    check(rc == 2 and out == "", "a missing store: %d %r" % (rc, out))
    check(path in err and "no such file" in err, "not a clear error: %r" % err)
    check(not os.path.exists(path), "the store was created")
    rc, _, err = run(t, "phases", "-c", os.path.join(t.workdir, "missing.conf.d"))
    check(rc == 2 and err, "a missing configuration: %d %r" % (rc, err))
    # a file that is no okegw store
    other = os.path.join(t.workdir, "other.db")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE x(y)")
    db.commit()
    db.close()
    c = t.write("other.conf", conf([], store=other))
    rc, _, err = run(t, "phases", "-c", c)
    check(rc == 2 and "is this an okegw store?" in err, "not a store: %d %r" % (rc, err))


def test_usage(t):
    c, _ = store(t)
    for args in (["--limit", "0"], ["--limit", "x"], ["--connector"], ["--state", "live"],
                 ["extra"]):
        rc, out, err = run(t, "phases", "-c", c, *args)
        check(rc == 2 and out == "" and "usage: okegw phases" in err,
              "%r: %d %r %r" % (args, rc, out, err))
    rc, out, err = run(t, "phases")
    check(rc == 2 and "needs -c FILE" in err, "without -c: %d %r" % (rc, err))
    rc, out, _ = run(t, "phases", "--help")
    check(rc == 0 and out.startswith("usage: okegw phases"), "--help: %d %r" % (rc, out))
    rc, out, _ = run(t, "--help")
    check(re.search(r"okegw phases -c FILE", out), "not in okegw --help")


def test_audit_phase_member(t):
    """okegw audit shows the phase an exchange ran under; null for rows without one."""
    c, path = store(t)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO audit(at, request_id, interaction, connector, status, event, phase) "
               "VALUES ('2026-11-29T10:44:19.000Z', 'req-pilot', "
               "'flow2.put_offering', 'alpha', 201, 'request', 'pilot')")
    db.commit()
    db.close()
    rc, out, err = run(t, "audit", "-c", c)
    check(rc == 0 and err == "", "audit: %d %r" % (rc, err))
    rows = json_lines(out)
    check(len(rows) >= 2, "the gateway's own row and ours: %r" % out)
    own = rows[0]  # the catalogue request of store()
    check("phase" in own and own["phase"] is None, "phase of a row without one: %r" % own)
    check(own.get("event") == "request" and own.get("status") == 200 and "at" in own
          and "request_id" in own and "caller" not in own,
          "the other members as before: %r" % own)
    check(rows[-1]["request_id"] == "req-pilot" and rows[-1]["phase"] == "pilot",
          "phase: %r" % rows[-1])


def test_schema_2_store(t):
    """A store from before phase history: read as it is, upgraded by the next gateway start."""
    p = t.peer(make_components(1), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(p))]))
    r = request(g.port, "GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %d" % r.status)
    check(g.stop() == 0, "okegw exited badly")
    path = os.path.join(g.workdir, "okegw.db")
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE phase_history; ALTER TABLE audit DROP COLUMN phase;"
                     "UPDATE meta SET value = '2' WHERE key = 'schema_version';")
    db.close()
    rc, out, err = run(t, "phases", "-c", g.conf_path, "--json")
    check(rc == 0 and out == "" and err == "", "schema 2: %d %r %r" % (rc, out, err))
    rc, out, err = run(t, "audit", "-c", g.conf_path)
    check(rc == 0 and out and all(o["phase"] is None for o in json_lines(out)),
          "audit of schema 2: %d %r %r" % (rc, out, err))
    g.start()
    check(g.stop() == 0, "okegw exited badly after the upgrade")
    db = sqlite3.connect(path)
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    cols = [r[1] for r in db.execute("PRAGMA table_info(phase_history)")]
    audit_cols = [r[1] for r in db.execute("PRAGMA table_info(audit)")]
    db.close()
    check(version == "5" and cols == COLUMNS and "phase" in audit_cols,
          "not upgraded: %r %r %r" % (version, cols, audit_cols))


def test_with_the_gateway_running(t):
    p = t.peer(make_components(1), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(p))]))
    rc, out, err = run(t, "phases", "-c", g.conf_path, "--json")
    check(rc == 0 and err == "", "phases next to a running gateway: %d %r" % (rc, err))


if __name__ == "__main__":
    main(globals())
