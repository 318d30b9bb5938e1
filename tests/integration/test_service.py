#!/usr/bin/env python3
"""Running as a service: log_format (JSON when stderr is not a terminal, text lines with
log_format = text or on a terminal), the systemd notify protocol (READY, RELOADING with
MONOTONIC_USEC, STOPPING) over a NOTIFY_SOCKET the test listens on, and audit retention
(audit_retention_s deletes old audit rows at start; 0 keeps them)."""
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (check, conf, main, request, run_okegw, time_scale,  # noqa: E402
                       wrapper)

SIM = ("sim", {"plugin": "sim", "role": "ta", "phase": "live", "test_system": "okegw-sim"})
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info |warn |error) \S")


def spawn(t, conf_text, env=None, stderr=None):
    """okegw -c WORKDIR/plugins.conf with stderr to a file (or the fd given); the process and
    the stderr path."""
    path = os.path.join(t.workdir, "plugins.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    err_path = os.path.join(t.workdir, "stderr.%d.log" % time.monotonic_ns())
    err = stderr if stderr is not None else open(err_path, "wb")
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(wrapper() + [t.binary, "-c", path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err, cwd=t.workdir, env=e)
    if stderr is None:
        err.close()

    def cleanup():
        if p.poll() is None:
            p.kill()
            p.wait()
    t.cleanups.append(cleanup)
    return p, err_path


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_for(what, fn, timeout=10.0):
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    check(False, "timed out waiting for %s" % what)


def stop(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(20 * time_scale())
    check(rc == 0, "okegw exited with %s on SIGTERM" % rc)


def test_log_json_when_not_a_terminal(t):
    # log_format is not set: auto, and stderr is a file here
    p, err = spawn(t, conf([SIM]))
    port = wait_for("the listening line", lambda: re.search(r'"msg":"listening".*"port":(\d+)',
                                                            read(err)))
    port = int(port.group(1))
    r = request(port, "GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    wait_for("a request line", lambda: '"msg":"request"' in read(err))
    stop(p)
    lines = [x for x in read(err).splitlines() if x.strip()]
    check(len(lines) >= 3, "too few log lines: %r" % lines)
    for x in lines:
        try:
            rec = json.loads(x)
        except ValueError:
            check(False, "not a JSON line with log_format auto and stderr a file: %r" % x)
        check(isinstance(rec, dict) and "time" in rec and "level" in rec and "msg" in rec,
              "JSON line without time, level, msg: %r" % x)
    req = [json.loads(x) for x in lines if '"msg":"request"' in x][0]
    check(req.get("status") == 200 and req.get("method") == "GET" and "latency_ms" in req,
          "request line: %r" % req)
    # log_format = json on purpose stays JSON too
    p, err = spawn(t, conf([SIM], log_format="json"))
    wait_for("the listening line", lambda: '"msg":"listening"' in read(err))
    stop(p)
    check(all(x.startswith("{") for x in read(err).splitlines() if x.strip()),
          "log_format = json wrote a non-JSON line:\n%s" % read(err))


def check_text_log(text, what):
    lines = [x for x in text.replace("\r\n", "\n").splitlines() if x.strip()]
    check(lines, "%s: no log lines" % what)
    for x in lines:
        check(TEXT_LINE.match(x), "%s: not a text log line: %r" % (what, x))
        check(not x.lstrip().startswith("{"), "%s: a JSON line: %r" % (what, x))
    return lines


def test_log_text(t):
    p, err = spawn(t, conf([SIM], log_format="text"))
    m = wait_for("the listening line",
                 lambda: re.search(r"Z info  listening addr=127\.0\.0\.1 port=(\d+)", read(err)))
    port = int(m.group(1))
    r = request(port, "GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    rid = r.header("x-request-id")
    wait_for("a request line", lambda: " request GET " in read(err))
    stop(p)
    lines = check_text_log(read(err), "log_format = text")
    req = [x for x in lines if " request GET " in x]
    check(len(req) == 1, "one request line wanted: %r" % req)
    check(re.search(r"Z info  request GET /ooapi/components 200 "
                    r"\d+\.\dms .*request_id=%s" % re.escape(rid or "-"), req[0]),
          "request line in text: %r (X-Request-Id %s)" % (req[0], rid))


def test_log_text_on_a_terminal(t):
    # log_format auto with stderr a terminal: text
    master, slave = os.openpty()
    try:
        p, _ = spawn(t, conf([SIM]), stderr=slave)
        os.close(slave)
        slave = None
        buf = b""
        deadline = time.monotonic() + 10 * time_scale()
        while b" listening " not in buf and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    buf += os.read(master, 65536)
                except OSError:
                    break
        check(b" listening " in buf, "no listening line on the terminal: %r" % buf)
        stop(p)
        check_text_log(buf.decode("utf-8", "replace"), "log_format auto on a terminal")
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)


class Notify:
    """A NOTIFY_SOCKET as systemd opens it: a Unix datagram socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="okegw-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10.0):
        self.sock.settimeout(timeout * time_scale())
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


def test_sd_notify(t):
    n = Notify()
    t.cleanups.append(n.close)
    p, err = spawn(t, conf([SIM]), env={"NOTIFY_SOCKET": n.path})
    msg = n.next()
    check(msg == "READY=1", "first notification: %r (wanted READY=1)" % msg)
    check('"msg":"listening"' in read(err), "READY=1 came before the listening line")
    # SIGHUP: RELOADING=1 with the monotonic clock, then READY=1
    p.send_signal(signal.SIGHUP)
    msg = n.next()
    m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", msg or "")
    check(m, "on SIGHUP: %r (wanted RELOADING=1 and MONOTONIC_USEC)" % msg)
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    check(0 < now_us - int(m.group(1)) < 60 * 1000000 * time_scale(),
          "MONOTONIC_USEC %s is not the monotonic clock (now %d)" % (m.group(1), now_us))
    msg = n.next()
    check(msg == "READY=1", "after the reload: %r (wanted READY=1)" % msg)
    # okegw reload (the control socket) the same way, also for a refused file
    rc, out = run_okegw(t.binary, ["reload", "-c", os.path.join(t.workdir, "plugins.conf")],
                        timeout=30)
    check(rc == 0, "okegw reload: exit %d\n%s" % (rc, out))
    msg = n.next()
    check((msg or "").startswith("RELOADING=1\nMONOTONIC_USEC="), "okegw reload: %r" % msg)
    check(n.next() == "READY=1", "no READY=1 after okegw reload")
    with open(os.path.join(t.workdir, "plugins.conf"), "a") as f:
        f.write("no_such_key = 1\n")
    rc, out = run_okegw(t.binary, ["reload", "-c", os.path.join(t.workdir, "plugins.conf")],
                        timeout=30)
    check(rc != 0, "a bad file was taken:\n%s" % out)
    msg = n.next()
    check((msg or "").startswith("RELOADING=1\n"), "refused reload: %r" % msg)
    check(n.next() == "READY=1", "no READY=1 after a refused reload (the old one runs)")
    p.send_signal(signal.SIGTERM)
    msg = n.next()
    check(msg == "STOPPING=1", "on SIGTERM: %r (wanted STOPPING=1)" % msg)
    check(p.wait(20 * time_scale()) == 0, "okegw did not exit 0 on SIGTERM")
    check(n.next(timeout=0.3) is None, "a notification after STOPPING=1")


def audit_rows(db):
    c = sqlite3.connect(db)
    try:
        return [r[0] for r in c.execute("SELECT request_id FROM audit ORDER BY at")]
    finally:
        c.close()


def add_audit_row(db, at, request_id):
    c = sqlite3.connect(db)
    try:
        c.execute("INSERT INTO audit(at, request_id, interaction, connector, method, path, status,"
                  " latency_ms, event) VALUES (?, ?, 'flow0.list_components', 'sim', 'GET',"
                  " '/ooapi/components', 200, 1.0, 'request')", (at, request_id))
        c.commit()
    finally:
        c.close()


def test_audit_retention(t):
    db = os.path.join(t.workdir, "okegw.db")
    g = t.gateway(conf([SIM], audit_retention_s="2592000"))
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    fresh = r.header("x-request-id")
    check(g.stop() == 0, "okegw did not stop cleanly")
    check(fresh in audit_rows(db), "the request has no audit row: %r" % audit_rows(db))
    # rows written 31 days and 29 days ago, and one from 2020
    def ago(days):
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - days * 86400))
    add_audit_row(db, ago(31), "old-31d")
    add_audit_row(db, ago(29), "kept-29d")
    add_audit_row(db, "2020-01-01T00:00:00.000Z", "old-2020")
    # audit_retention_s = 0 keeps everything
    g.restart(conf([SIM], audit_retention_s="0"))
    time.sleep(0.5 * time_scale())
    check(g.stop() == 0, "okegw did not stop cleanly")
    rows = audit_rows(db)
    check({"old-31d", "old-2020", "kept-29d", fresh} <= set(rows),
          "audit_retention_s = 0 deleted rows: %r" % rows)
    # 30 days: the two older rows go at start, the others stay
    g.restart(conf([SIM], audit_retention_s="2592000"))
    rec = g.wait_log(lambda r: "audit retention" in r.get("msg", ""), timeout=10 * time_scale())
    check(rec and rec["msg"].startswith("audit retention: 2 row(s)"),
          "no log line saying 2 rows were deleted: %r" % rec)
    check(g.stop() == 0, "okegw did not stop cleanly")
    rows = audit_rows(db)
    check("old-31d" not in rows and "old-2020" not in rows,
          "rows older than audit_retention_s are still there: %r" % rows)
    check("kept-29d" in rows and fresh in rows, "rows within audit_retention_s are gone: %r" % rows)
    # the key's range is checked
    g.write_conf(conf([SIM], audit_retention_s="-1"))
    rc, out = run_okegw(t.binary, ["-t", "-c", g.conf_path])
    check(rc == 1 and "audit_retention_s" in out, "a negative retention was taken: %s" % out)


if __name__ == "__main__":
    main(globals())
