"""Integration-test harness for okegw (Python 3 standard library only).

Pieces:
  Okegw   - runs the okegw binary on a generated plugins.conf (port 0), finds
            its port from the "listening" JSON log line, stops it with SIGTERM.
  Peer    - a fake OKE supplier (TA) HTTP/1.1 server on 127.0.0.1:0 that
            behaves like a real one for flows 0 and 2 and records every request.
  request / RawConn - HTTP clients (http.client, and a raw socket for
            keep-alive, chunked and malformed traffic).
  conf / ooapi_connector - plugins.conf builders.
  run_tests(globals()) - the runner every test_*.py file ends with.

Everything talks to 127.0.0.1 only. Nothing here reads outside tests/integration.
"""

import argparse
import copy
import http.client
import http.server
import json
import os
import re
import select
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

PROBLEM_CT = "application/problem+json"


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    """assert that survives python -O and carries a message."""
    if not cond:
        raise TestFailure(msg)


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def new_id():
    return str(uuid.uuid4())


def free_port():
    """A port nothing listens on: bind, read the port, close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# Components, offerings, associations built from the fixture shapes

def make_components(n, name_fmt="Toets {i:02d}", numbers=None):
    """n Components shaped like the flow-0 fixture, with fresh UUIDs.
    numbers: the i values used in name_fmt (default 0..n-1)."""
    base = fixture("flow0_get_components_response.json")["items"][0]
    out = []
    numbers = list(numbers) if numbers is not None else list(range(n))
    check(len(numbers) == n, "make_components: numbers must have n entries")
    for i in numbers:
        c = copy.deepcopy(base)
        c["componentId"] = new_id()
        name = name_fmt.format(i=i)
        c["name"] = [{"language": "nl-NL", "value": name}]
        c["abbreviation"] = "T%02d-%s" % (i, c["componentId"][:4])
        c["primaryCode"] = {"codeType": "componentCode", "code": c["abbreviation"]}
        # the gateway stamps x-testSystem itself; leave only x-testProvider
        c["otherCodes"] = [oc for oc in c.get("otherCodes", []) if oc["codeType"] != "x-testSystem"]
        out.append(c)
    return out


def component_name(c):
    for n in c.get("name", []):
        if n.get("language") == "nl-NL":
            return n.get("value")
    return None


def make_offering(component_id, offering_id=None):
    o = fixture("flow2_put_offering_request.json")
    o["offeringId"] = offering_id or new_id()
    o["component"] = component_id
    return o


def make_association(offering_id, kind="student", association_id=None):
    name = {"student": "flow2_put_association_student_request.json",
            "invigilator": "flow2_put_association_invigilator_request.json"}[kind]
    a = fixture(name)
    a["associationId"] = association_id or new_id()
    a["offering"] = offering_id
    return a


# --------------------------------------------------------------------------
# plugins.conf builders

_pg = None  # the PostgreSQL of this test process (OKEGW_TEST_PG)
_pg_dbs = {}  # gateway workdir -> its database's URI


def pg_store(workdir):
    """With OKEGW_TEST_PG=1: the database of the gateway in workdir on this process's PostgreSQL
    (started on first use, stopped at exit), as a store URI. Made empty on first use, as an
    SQLite store file is, and the same for every later start (a restart keeps the store)."""
    global _pg
    import pgtest
    if workdir in _pg_dbs:
        return _pg_dbs[workdir]
    if _pg is None:
        why = pgtest.skip_reason()
        if why:
            raise TestFailure("OKEGW_TEST_PG is set, but " + why)
        _pg = pgtest.PgServer()
    name = "okegw_t%d" % (len(_pg_dbs) + 1)
    _pg.psql("CREATE DATABASE %s" % name, dbname="postgres")
    _pg_dbs[workdir] = _pg.url(dbname=name)
    return _pg_dbs[workdir]


def conf(connectors=(), **gateway):
    """connectors: iterable of (name, dict). gateway: [gateway] keys."""
    g = {"listen": "127.0.0.1:0", "base_path": "/ooapi", "store": "okegw.db",
         "log_level": "info"}
    # OKEGW_TEST_WORKERS=N runs every gateway that does not set its own with N event loops
    if os.environ.get("OKEGW_TEST_WORKERS"):
        g["workers"] = os.environ["OKEGW_TEST_WORKERS"]
    g.update(gateway)
    lines = ["; generated by tests/integration/okegwtest.py", "[gateway]"]
    lines += ["%s = %s" % (k, v) for k, v in g.items()]
    for name, kv in connectors:
        lines += ["", "[connector %s]" % name]
        lines += ["%s = %s" % (k, v) for k, v in kv.items()]
    return "\n".join(lines) + "\n"


def ooapi_connector(target, **kw):
    """A TA connector using the built-in ooapi plugin. target: a Peer or a port."""
    port = target.port if isinstance(target, Peer) else int(target)
    d = {"plugin": "ooapi", "role": "ta", "phase": "live",
         "base_url": "http://127.0.0.1:%d/ooapi" % port, "auth": "none",
         "connect_timeout_ms": 2000, "timeout_ms": 5000}
    d.update(kw)
    return d


def conf_line_of(text, pattern):
    """1-based number of the first line of text matching regex pattern."""
    for i, line in enumerate(text.split("\n"), 1):
        if re.search(pattern, line):
            return i
    raise TestFailure("no line matching %r in config" % pattern)


# --------------------------------------------------------------------------
# The gateway process

class Okegw:
    """Runs `binary -c workdir/plugins.conf`. Use as a context manager or
    call start()/stop(). stderr goes to workdir/okegw-stderr.N.log (N = run)."""

    def __init__(self, binary, conf_text, workdir, extra_args=(), start_timeout=10.0):
        self.binary = binary
        self.conf_text = conf_text
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.conf_path = os.path.join(workdir, "plugins.conf")
        self.proc = None
        self.port = None
        self.admin_port = None  # admin_listen's port, from the "listening (admin)" line
        self.runs = 0
        self.stderr_path = None
        self.last_exit = None
        os.makedirs(workdir, exist_ok=True)

    # context manager -------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, et, ev, tb):
        if self.running():
            rc = self.stop()
            if et is None and rc != 0:
                raise TestFailure("okegw exited with %s on SIGTERM" % rc)
        return False

    # lifecycle -------------------------------------------------------------
    def write_conf(self, conf_text=None):
        if conf_text is not None:
            self.conf_text = conf_text
        text = self.conf_text
        # OKEGW_TEST_PG=1: a gateway on the default store file runs on PostgreSQL instead
        if os.environ.get("OKEGW_TEST_PG") and re.search(r"^store = okegw\.db$", text, re.M):
            store = "store = " + pg_store(self.workdir)
            # the lease must outlast the longest connector timeout_ms by 10 s (okegw -t)
            longest = max([int(x) for x in re.findall(r"^timeout_ms = (\d+)$", text, re.M)] + [0])
            if longest + 10000 > 30000 and not re.search(r"^store_lease_s =", text, re.M):
                store += "\nstore_lease_s = %d" % (-(-(longest + 10000) // 1000))
            text = re.sub(r"^store = okegw\.db$", store, text, flags=re.M)
        with open(self.conf_path, "w") as f:
            f.write(text)

    def start(self):
        check(self.proc is None or self.proc.poll() is not None, "okegw already running")
        check(os.path.exists(self.binary), "okegw binary not found: %s" % self.binary)
        self.write_conf()
        self.runs += 1
        self.stderr_path = os.path.join(self.workdir, "okegw-stderr.%d.log" % self.runs)
        self.stdout_path = os.path.join(self.workdir, "okegw-stdout.%d.log" % self.runs)
        err = open(self.stderr_path, "wb")
        out = open(self.stdout_path, "wb")
        try:
            self.proc = subprocess.Popen(wrapper() + [self.binary, "-c", self.conf_path] + self.extra_args,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.workdir)
        finally:
            err.close()
            out.close()
        self.port = None
        self.admin_port = None
        want_admin = re.search(r"^admin_listen\s*=", self.conf_text, re.M) is not None
        deadline = time.monotonic() + self.start_timeout * time_scale()
        while time.monotonic() < deadline:
            for rec in self.log_lines():
                for msg, attr in (("listening", "port"), ("listening (admin)", "admin_port")):
                    if rec.get("msg") == msg and "port" in rec:
                        try:
                            setattr(self, attr, int(rec["port"]))
                        except (TypeError, ValueError):
                            raise TestFailure("%s line has a bad port: %r" % (msg, rec))
            if self.port is not None and (self.admin_port is not None or not want_admin):
                return self
            if self.proc.poll() is not None:
                raise TestFailure("okegw exited with %s before listening; stderr:\n%s"
                                  % (self.proc.returncode, self.stderr_tail()))
            time.sleep(0.02)
        self.kill()
        raise TestFailure("okegw did not log a 'listening' line within %.0f s; stderr:\n%s"
                          % (self.start_timeout, self.stderr_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait; return the exit code. SIGKILL + failure if it hangs."""
        if self.proc is None:
            return self.last_exit
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            timeout *= time_scale()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TestFailure("okegw did not exit within %.0f s of SIGTERM (killed)" % timeout)
        self.last_exit = self.proc.returncode
        return self.last_exit

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.last_exit = self.proc.returncode

    def restart(self, conf_text=None):
        rc = self.stop()
        check(rc == 0, "okegw exited with %s on SIGTERM (restart)" % rc)
        if conf_text is not None:
            self.conf_text = conf_text
        return self.start()

    # helpers ---------------------------------------------------------------
    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stderr_text(self, run=None):
        path = self.stderr_path if run is None else os.path.join(
            self.workdir, "okegw-stderr.%d.log" % run)
        if not path or not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr_tail(self, n=30):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def log_lines(self, all_runs=False):
        """The parsed JSON lines of stderr (this run, or every run)."""
        runs = range(1, self.runs + 1) if all_runs else [None]
        out = []
        for r in runs:
            for line in self.stderr_text(r).splitlines():
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    def wait_log(self, pred, timeout=3.0):
        """The first log record for which pred(rec) holds, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.log_lines():
                if pred(rec):
                    return rec
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        return request(self.port, method, path, body, headers, timeout)


def poll(what, fn, timeout=15.0, interval=0.1):
    """fn() until it returns something true (which poll returns), for up to timeout seconds
    (scaled by OKEGW_TIME_SCALE); TestFailure naming `what` after that."""
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure("%s: not within %.1f s" % (what, timeout * time_scale()))
        time.sleep(interval)


def wrapper():
    """OKEGW_WRAPPER runs okegw under a tool, e.g. valgrind (see tests/CMakeLists.txt)."""
    return shlex.split(os.environ.get("OKEGW_WRAPPER", ""))


def time_scale():
    """Timeouts of the harness grow under a slow wrapper such as valgrind."""
    return float(os.environ.get("OKEGW_TIME_SCALE", "1"))


def run_okegw(binary, args, timeout=10.0, cwd=None):
    """Run okegw to completion (e.g. -t, --version); returns (rc, stdout+stderr)."""
    timeout *= time_scale()
    p = subprocess.run(wrapper() + [binary] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# HTTP client helpers

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.header_list = headers  # [(name, value)]
        self.headers = {}
        for k, v in headers:
            k = k.lower()
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self):
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise TestFailure("response %d is not JSON (%s): %r" % (self.status, e, self.body[:300]))

    def short(self):
        return "%d %s %s" % (self.status, self.content_type, self.body[:300].decode("utf-8", "replace"))

    def __repr__(self):
        return "<Response %s>" % self.short()


def _encode_body(body, headers):
    headers = dict(headers or {})
    if body is None:
        return None, headers
    if isinstance(body, (dict, list, str)) and not isinstance(body, bytes):
        if isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return data, headers
    return bytes(body), headers


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection. body: dict/list (sent as JSON), str or bytes."""
    data, headers = _encode_body(body, headers)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        b = r.read()
        return Response(r.status, r.reason, r.getheaders(), b)
    finally:
        c.close()


def check_problem(resp, status, what=""):
    """resp is an application/problem+json answer with the given status."""
    pre = (what + ": ") if what else ""
    check(resp.status == status, "%sexpected %d, got %s" % (pre, status, resp.short()))
    check(resp.content_type == PROBLEM_CT,
          "%sexpected Content-Type %s, got %r" % (pre, PROBLEM_CT, resp.header("content-type")))
    p = resp.json()
    check(isinstance(p, dict), "%sproblem body is not an object: %r" % (pre, p))
    check(p.get("status") == str(status),
          "%sproblem 'status' must be the string %r, got %r" % (pre, str(status), p.get("status")))
    check(isinstance(p.get("title"), str) and p.get("title"),
          "%sproblem has no 'title': %r" % (pre, p))
    return p


def check_2xx(resp, what=""):
    check(200 <= resp.status < 300, "%s: expected 2xx, got %s" % (what, resp.short()))


class RawConn:
    """A raw TCP connection for keep-alive, chunked and malformed traffic."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.port = port

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    @staticmethod
    def build(method, path, body=None, headers=None, chunks=None):
        """Bytes of a request. chunks: list of bytes sent with chunked encoding."""
        data, headers = _encode_body(body, headers)
        lines = ["%s %s HTTP/1.1" % (method, path)]
        names = {k.lower() for k in headers}
        if "host" not in names:
            lines.append("Host: 127.0.0.1")
        for k, v in headers.items():
            lines.append("%s: %s" % (k, v))
        if chunks is not None:
            if "transfer-encoding" not in names:
                lines.append("Transfer-Encoding: chunked")
            payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
        else:
            payload = data or b""
            if data is not None and "content-length" not in names:
                lines.append("Content-Length: %d" % len(payload))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

    def request(self, method, path, body=None, headers=None, chunks=None):
        self.send(self.build(method, path, body, headers, chunks))
        return self.read_response(head=(method == "HEAD"))

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("okegw closed the connection before a complete response")
        self.buf += data

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise TestFailure("response line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head=False):
        while True:
            status_line = self._read_line().decode("latin-1")
            m = re.match(r"HTTP/1\.[01] (\d{3})(?: (.*))?$", status_line)
            if not m:
                raise TestFailure("bad status line from okegw: %r" % status_line)
            status = int(m.group(1))
            headers = []
            while True:
                line = self._read_line().decode("latin-1")
                if line == "":
                    break
                k, _, v = line.partition(":")
                headers.append((k.strip(), v.strip()))
            if 100 <= status < 200:
                continue
            break
        hd = {k.lower(): v for k, v in headers}
        if head or status in (204, 304):
            body = b""
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_line() != b"":
                        pass
                    break
                body += self._read_exact(size)
                if self._read_exact(2) != b"\r\n":
                    raise TestFailure("bad chunk framing from okegw")
        elif "content-length" in hd:
            body = self._read_exact(int(hd["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except (EOFError, ConnectionResetError):
                pass
            body, self.buf = self.buf, b""
        return Response(status, m.group(2) or "", headers, body)

    def readable(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def closed_by_peer(self, timeout=1.0):
        """True if okegw closed the connection (EOF/RST) within timeout."""
        if not self.readable(timeout):
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        if not data:
            return True
        self.buf += data
        return False

    def send_until_answered(self, head, pieces, pause=0.0):
        """Send head, then pieces one by one, stopping as soon as okegw answers
        or closes; then read the answer. Returns a Response."""
        self.send(head)
        for p in pieces:
            if self.readable(0):
                break
            try:
                self.sock.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pause:
                time.sleep(pause)
        return self.read_response()


# --------------------------------------------------------------------------
# The fake supplier (TA)

class PeerRequest:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path            # as received, e.g. /ooapi/offerings/ID
        self.rel = path[len("/ooapi"):] if path.startswith("/ooapi") else path
        self.query_string = query
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None
        self.time = time.monotonic()

    def __repr__(self):
        return "%s %s%s" % (self.method, self.path, ("?" + self.query_string) if self.query_string else "")


def _merge_consumers(old, new):
    out = [dict(c) for c in (old or [])]
    for nc in new or []:
        for oc in out:
            if oc.get("consumerKey") == nc.get("consumerKey"):
                for k, v in nc.items():
                    if v is None:
                        oc.pop(k, None)
                    else:
                        oc[k] = v
                break
        else:
            out.append(dict(nc))
    return out


def _merge_patch(target, patch):
    for k, v in patch.items():
        if k == "consumers" and isinstance(v, list):
            target[k] = _merge_consumers(target.get(k), v)
        elif v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge_patch(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target


def _page(items, query, default_size=10):
    try:
        size = int(query.get("pageSize", default_size))
        number = int(query.get("pageNumber", 1))
    except ValueError:
        return None
    if size < 1 or number < 1:
        return None
    total = max(1, (len(items) + size - 1) // size)
    start = (number - 1) * size
    return {"pageSize": size, "pageNumber": number, "hasPreviousPage": number > 1,
            "hasNextPage": start + size < len(items), "totalPages": total,
            "items": items[start:start + size]}


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler base for test peers: no request log, a
    dropped connection is not an error, bodies by length or chunked."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, socket.timeout, OSError):
            pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


class _PeerHandler(QuietHandler):
    server_version = "FakeTA/1.0"

    def _send(self, status, obj=None, ctype="application/json", raw=None):
        if raw is not None:
            data = raw
        elif obj is None:
            data = b""
        else:
            data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _problem(self, status, title, detail=None):
        p = {"type": "about:blank", "title": title, "status": str(status)}
        if detail:
            p["detail"] = detail
        self._send(status, p, ctype=PROBLEM_CT)

    def _dispatch(self):
        peer = self.server.peer
        url = urllib.parse.urlsplit(self.path)
        body = self._read_body()
        rec = PeerRequest(self.command, url.path, url.query, dict(self.headers.items()), body)
        with peer.lock:
            # okegw's version check (GET /, R31) runs on its own timer: kept apart so
            # that the tests' counts of what a peer received stay exact
            if rec.method == "GET" and rec.rel in ("", "/"):
                peer.metadata_requests.append(rec)
            else:
                peer.requests.append(rec)
        if peer.delay:
            time.sleep(peer.delay)
        try:
            peer.handle(self, rec)
        except (ConnectionError, BrokenPipeError):
            pass

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = _dispatch


class _PeerServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a, **kw):
        self.open_conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(*a, **kw)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.open_conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.open_conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        """Cuts every connection still open (e.g. a client's idle keep-alive)."""
        with self.conns_lock:
            conns = list(self.open_conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


UUID_RE = r"[0-9a-fA-F-]{1,64}"


class Peer:
    """A fake OKE supplier (TA) under /ooapi on 127.0.0.1:<port>.

    catalogue: list of Component dicts; delay: seconds before every answer;
    required_token: answer 401 unless `Authorization: Bearer <token>`;
    required_api_key: (header, value) checked likewise;
    fail_components: an HTTP status to answer GET /components with;
    port: the port to listen on (0: any free one).
    down() makes it refuse connections (listener closed, open connections cut)
    and up() listens again on the same port, keeping what it recorded."""

    def __init__(self, catalogue=(), delay=0.0, required_token=None, required_api_key=None,
                 fail_components=None, name="peer", port=0):
        self.catalogue = list(catalogue)
        self.delay = delay
        self.required_token = required_token
        self.required_api_key = required_api_key
        self.fail_components = fail_components
        self.name = name
        self.offerings = {}
        self.associations = {}
        self.documents = {}  # documentId -> bytes, served as application/octet-stream
        self.canned = {}  # (method, rel path) -> (status, JSON value): answered as is
        self.others = {}  # rel path -> JSON of PUT persons, groups, members
        self.requests = []
        self.metadata_requests = []  # GET / (service metadata), see _dispatch
        self.lock = threading.Lock()
        self.serving = False
        self._listen(int(port or 0))

    def _listen(self, port):
        self.server = _PeerServer(("127.0.0.1", port), _PeerHandler)
        self.server.peer = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name="peer-%s" % self.name)
        self.thread.start()
        self.serving = True

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/ooapi" % self.port

    def stop(self):
        if not self.serving:
            return
        self.serving = False
        self.server.shutdown()
        self.server.server_close()

    def down(self):
        """Stops listening and cuts open connections: connecting is refused."""
        if self.serving:
            self.stop()
        self.server.drop_connections()

    def up(self):
        """Listens again on the same port (after down() or stop())."""
        if not self.serving:
            self._listen(self.port)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()
        return False

    # request log -----------------------------------------------------------
    def find(self, method=None, rel=None, prefix=None, since=0):
        """Recorded requests matching method and rel path (exact) or rel prefix."""
        with self.lock:
            reqs = list(self.requests[since:])
        return [r for r in reqs if (method is None or r.method == method)
                and (rel is None or r.rel == rel)
                and (prefix is None or r.rel.startswith(prefix))]

    def non_catalogue(self, since=0):
        """Recorded requests other than flow-0 GET /components..."""
        return [r for r in self.find(since=since)
                if not (r.method == "GET" and r.rel.startswith("/components"))]

    def mark(self):
        with self.lock:
            return len(self.requests)

    def url_for(self, association_id):
        return "https://afname.%s.example/start/%s" % (self.name, association_id)

    # behaviour -------------------------------------------------------------
    def handle(self, h, rec):
        canned = self.canned.get((rec.method, rec.rel))
        if canned is not None:
            return h._send(canned[0], canned[1])
        if not rec.path.startswith("/ooapi"):
            return h._problem(404, "Not Found", "this supplier lives under /ooapi")
        if self.required_token is not None:
            if rec.headers.get("authorization") != "Bearer " + self.required_token:
                return h._problem(401, "Unauthorized", "bearer token missing or wrong")
        if self.required_api_key is not None:
            hn, hv = self.required_api_key
            if rec.headers.get(hn.lower()) != hv:
                return h._problem(401, "Unauthorized", "API key missing or wrong")
        p, m, q = rec.rel, rec.method, rec.query
        if p in ("", "/"):
            if m != "GET":
                return h._problem(405, "Method Not Allowed")
            return h._send(200, fixture("common_get_service_metadata_response.json"))
        if p == "/components":
            if m != "GET":
                return h._problem(405, "Method Not Allowed")
            if self.fail_components:
                return h._problem(self.fail_components, "Supplier failure", "configured to fail")
            items = [c for c in self.catalogue
                     if q.get("componentType", "test") == c.get("componentType")]
            page = _page(items, q)
            if page is None:
                return h._problem(400, "Bad Request", "bad paging parameters")
            return h._send(200, page)
        mm = re.fullmatch(r"/documents/([^/]+)", p)
        if mm:
            doc = self.documents.get(mm.group(1))
            if m != "GET":
                return h._problem(405, "Method Not Allowed")
            if doc is None:
                return h._problem(404, "Not Found", "no such document")
            return h._send(200, raw=doc, ctype="application/octet-stream")
        mm = re.fullmatch(r"/components/([^/]+)", p)
        if mm:
            if m != "GET":
                return h._problem(405, "Method Not Allowed")
            for c in self.catalogue:
                if c["componentId"] == mm.group(1):
                    return h._send(200, c)
            return h._problem(404, "Not Found", "no such component")
        mm = re.fullmatch(r"/offerings/([^/]+)(/associations)?", p)
        if mm:
            oid, sub = mm.group(1), mm.group(2)
            if sub:
                if m != "GET":
                    return h._problem(405, "Method Not Allowed")
                if oid not in self.offerings:
                    return h._problem(404, "Not Found", "no such offering")
                items = [a for a in self.associations.values()
                         if (a.get("offering") if not isinstance(a.get("offering"), dict)
                             else a["offering"].get("offeringId")) == oid]
                page = _page(items, q)
                if page is None:
                    return h._problem(400, "Bad Request", "bad paging parameters")
                return h._send(200, page)
            return self._resource(h, rec, self.offerings, oid, "offeringId")
        mm = re.fullmatch(r"/associations/([^/]+)(/url)?", p)
        if mm:
            aid, sub = mm.group(1), mm.group(2)
            if sub:
                if m != "GET":
                    return h._problem(405, "Method Not Allowed")
                if aid not in self.associations:
                    return h._problem(404, "Not Found", "no such association")
                return h._send(200, self.url_for(aid))
            return self._resource(h, rec, self.associations, aid, "associationId")
        # anything else a DR or TPL may be sent (persons, groups, members): stored as is
        if m == "PUT" and re.fullmatch(r"/(persons|groups)/[^/]+(/members/[^/]+)?", p):
            existed = p in self.others
            self.others[p] = rec.json
            return h._send(200 if existed else 201)
        if m == "GET" and p in self.others:
            return h._send(200, self.others[p])
        return h._problem(404, "Not Found", "unknown path %s" % p)

    def _resource(self, h, rec, store, rid, id_field):
        m = rec.method
        if m == "GET":
            if rid not in store:
                return h._problem(404, "Not Found", "unknown %s" % rid)
            return h._send(200, store[rid])
        if m in ("PUT", "PATCH"):
            if not isinstance(rec.json, dict):
                return h._problem(400, "Bad Request", "body is not a JSON object")
            if m == "PUT":
                if rec.json.get(id_field) != rid:
                    return h._problem(400, "Bad Request", "%s does not match the path" % id_field)
                existed = rid in store
                store[rid] = rec.json
                return h._send(200 if existed else 201)
            if rid not in store:
                return h._problem(404, "Not Found", "unknown %s" % rid)
            _merge_patch(store[rid], rec.json)
            return h._send(200)
        return h._problem(405, "Method Not Allowed")


# --------------------------------------------------------------------------
# Runner

class T:
    """Per-test context: args, a private work dir, and managed peers/gateways."""

    def __init__(self, args, name):
        self.args = args
        self.name = name
        self.binary = args.okegw
        self.plugins = args.plugins
        self.workdir = os.path.join(args.workdir, name)
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir)
        self._peers = []
        self._gateways = []
        self.notes = []
        self.cleanups = []  # callables run at the end of the test (other processes)

    def peer(self, *a, **kw):
        p = Peer(*a, **kw)
        self._peers.append(p)
        return p

    def gateway(self, conf_text, start=True, subdir=None, **kw):
        wd = os.path.join(self.workdir, subdir) if subdir else self.workdir
        g = Okegw(self.binary, conf_text, wd, **kw)
        self._gateways.append(g)
        if start:
            g.start()
        return g

    def plugin(self, name, fallbacks=()):
        """Path of a test plugin in --plugins (first existing of name, fallbacks)."""
        for n in (name,) + tuple(fallbacks):
            p = os.path.join(self.plugins, n)
            if os.path.exists(p):
                if n != name:
                    self.notes.append("used %s (no %s)" % (n, name))
                return p
        raise TestFailure("test plugin %s not found in %s" % (name, self.plugins))

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def cleanup(self):
        """Stops gateways (returns a failure string if one did not exit 0) and peers."""
        problems = []
        for g in self._gateways:
            if g.running():
                try:
                    rc = g.stop()
                    if rc != 0:
                        problems.append("okegw exited with %s on SIGTERM at cleanup" % rc)
                except TestFailure as e:
                    problems.append(str(e))
            elif g.proc is not None and g.last_exit is None and g.proc.returncode not in (0, None):
                problems.append("okegw died with %s during the test" % g.proc.returncode)
        for p in self._peers:
            try:
                p.stop()
            except Exception:
                pass
        for fn in self.cleanups:
            try:
                fn()
            except Exception as e:
                problems.append("cleanup: %s" % e)
        return "; ".join(problems)


def _one_line(s, limit=600):
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit] + "..."


def run_tests(ns, argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--okegw", default=os.path.join(REPO, "build", "okegw"))
    ap.add_argument("--plugins", default=os.path.join(REPO, "build", "tests", "plugins"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--only", action="append", default=[],
                    help="run only the named test(s)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    args = ap.parse_args(argv)
    args.okegw = os.path.abspath(args.okegw)
    args.plugins = os.path.abspath(args.plugins)
    script = os.path.splitext(os.path.basename(ns.get("__file__", "tests")))[0]
    if args.workdir is None:
        args.workdir = tempfile.mkdtemp(prefix="okegw-it-")
    args.workdir = os.path.join(os.path.abspath(args.workdir), script)
    os.makedirs(args.workdir, exist_ok=True)

    if os.environ.get("OKEGW_TEST_PG"):
        import pgtest
        why = pgtest.skip_reason()
        if why:  # ctest's SKIP_RETURN_CODE for the pg_* runs
            print("# skipped (OKEGW_TEST_PG): " + why, flush=True)
            return 77
    tests = [(n, f) for n, f in ns.items() if n.startswith("test_") and callable(f)]
    if args.only:
        tests = [(n, f) for n, f in tests if n in args.only or n[5:] in args.only]
    passed = failed = 0
    for name, fn in tests:
        t = T(args, name)
        reason = None
        tb = None
        t0 = time.monotonic()
        try:
            fn(t)
        except Exception as e:  # noqa: BLE001 (every failure is a test failure)
            reason = "%s%s" % ("" if isinstance(e, AssertionError) else type(e).__name__ + ": ", e)
            tb = traceback.format_exc()
        finally:
            extra = t.cleanup()
        if reason is None and extra:
            reason = extra
        dt = time.monotonic() - t0
        if reason is None:
            passed += 1
            note = (" # " + "; ".join(t.notes)) if t.notes else ""
            print("ok - %s (%.1fs)%s" % (name, dt, note), flush=True)
        else:
            failed += 1
            print("not ok - %s: %s" % (name, _one_line(reason)), flush=True)
            if args.verbose and tb:
                for line in tb.rstrip().splitlines():
                    print("#   " + line)
            for g in t._gateways:
                if g.stderr_path:
                    print("#   okegw stderr: %s" % g.stderr_path)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


def main(ns):
    sys.exit(run_tests(ns))


# ---------------------------------------------------------------------------
# A test PKI made with the openssl command (TLS and OAuth tests)

def openssl(*args, cwd=None, data=None):
    """Runs `openssl ARGS` (stdin: data); its stdout as bytes, or TestFailure."""
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, input=data, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise TestFailure("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def make_ca(dir_, name="ca"):
    """A test CA (EC P-256) in dir_: NAME.pem and NAME.key; returns the certificate's path."""
    os.makedirs(dir_, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj",
            "/CN=okegw test CA %s" % name, cwd=dir_)
    return os.path.join(dir_, name + ".pem")


def issue(dir_, name, subject, ca="ca", server=False):
    """A certificate signed by the CA `ca` of dir_ (for 127.0.0.1 when server, else for a
    client): (certificate path, key path)."""
    with open(os.path.join(dir_, name + ".ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                if server else "extendedKeyUsage=clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            name + ".key", "-out", name + ".csr", "-subj", subject, cwd=dir_)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
            cwd=dir_)
    return os.path.join(dir_, name + ".pem"), os.path.join(dir_, name + ".key")
