#!/usr/bin/env python3
"""ToetsPlatform Classic: a made-up legacy test supplier that does NOT speak OKE.

Used by the integration tests and the demo of the `rest` connector plugin. The
API below is the spec the Lua mappings in scripts/<connector>/ are written
against. Python 3 standard library only; all state is in memory.

Running
    legacy_supplier.py [--port N] [--token T] [--callback URL] [--callback-token T] [--verbose]

    Listens on 127.0.0.1:N (N = 0: the OS picks) and prints one line
    {"listening": PORT} on stdout. HTTP/1.1 with keep-alive; every answer has
    a Content-Length. SIGTERM or SIGINT exits 0.

    --token T           every request except /admin/... must carry
                        "Authorization: Bearer T", else 401.
    --callback URL      where results are pushed (only http://127.0.0.1,
                        localhost or [::1]), e.g.
                        http://127.0.0.1:8080/callbacks/legacy/results
    --callback-token T  sent on the callback as "Authorization: Bearer T".

Conventions
    Bodies are flat JSON objects; answers are JSON (application/json). Ids
    ("uuid", "session_ref", "candidate_ref") are UUIDs in the canonical
    8-4-4-4-12 hex form, chosen by the caller (except the fixed test UUIDs).
    Times are Unix epoch seconds (integers), dates "YYYY-MM-DD", grades
    strings with a Dutch decimal comma ("7,5"). Every error is
        {"error": "<what is wrong>"}
    with status 400 (bad input), 401 (token), 404 (unknown id or endpoint),
    405 (wrong method; Allow header set) or 409 (state conflict). Query
    strings are accepted and ignored.

Catalogue
    GET  /api/v1/tests
        200 [Test, ...] (the fixed list TESTS below, inactive ones included)
        Test = {"uuid", "code": "REK-2F", "title": "Rekenen 2F",
                "minutes": 90, "level": "2F", "active": true}
    GET  /api/v1/tests/{uuid}
        200 Test | 404

Sessions (zittingen)
    POST /api/v1/sessions
        {"session_ref": uuid, "test_uuid": uuid (a known test),
         "title": str (non-empty), "starts_at": int, "ends_at": int (> starts_at),
         "location": str | null (may be left out)}
        201 {"session_ref", "created": true}   new
        200 {"session_ref", "created": false}  existed: fields replaced, status kept
        400 missing field, wrong type, unknown test_uuid
    GET  /api/v1/sessions/{ref}
        200 Session | 404
        Session = the fields above + "status": "planned" | "cancelled"
    POST /api/v1/sessions/{ref}/cancel     (any body, ignored)
        200 {"session_ref", "status": "cancelled", "cancelled_candidates": n}
        The session and its "planned" candidates become "cancelled" (graded or
        absent candidates keep their result). Cancelling twice is fine. 404.
    GET  /api/v1/sessions/{ref}/candidates
        200 [Candidate, ...] in the order they were added | 404

Candidates (deelnemers)
    POST /api/v1/candidates
        {"candidate_ref": uuid, "session_ref": uuid (an existing session),
         "first_name": str, "last_name": str (non-empty),
         "student_number": str | null (may be left out),
         "extra_minutes": int 0..600,
         "role": "candidate" | "supervisor" | "assessor"}
        201 {"candidate_ref", "created": true} | 200 {..., "created": false}
        (existed: fields replaced, status and result kept) | 400
    GET  /api/v1/candidates/{ref}
        200 Candidate | 404
        Candidate = the fields above + "status": "planned" | "cancelled" |
        "graded" | "absent" + "result": null or {"grade", "points",
        "max_points", "graded_on", "attempt"}
    GET  /api/v1/candidates/{ref}/link
        200 {"link": "https://classic.example/start/<ref>"} | 404

Results (pushed, not pulled)
    POST /admin/grade   (no token needed)
        {"candidate_ref": uuid, "grade": "7,5" | null, "points": int | null,
         "max_points": int | null, "graded_on": "YYYY-MM-DD" (default today),
         "absent": bool (default false)}
        Records the result (grade required unless absent; "7.5" is refused:
        use a decimal comma; 0 <= points <= max_points) and POSTs to --callback
            {"candidate_ref", "session_ref", "status": "graded" | "absent",
             "grade": "7,5" | null, "points": int | null,
             "max_points": int | null, "graded_on": "YYYY-MM-DD",
             "attempt": 1}
        (absent: grade, points, max_points are null; attempt counts the
        gradings of this candidate, 1 the first time). The callback is sent
        synchronously (timeout 10 s) and the answer is
        200 {"callback_status": <its HTTP status, 0 when none was sent or the
             transport failed>, "callback_body": <its body or the error, text>}
        400 bad input or a --callback that is not on localhost;
        404 unknown candidate; 409 candidate cancelled.

Inspection
    GET    /admin/requests
        200 [{"method", "path", "query", "headers": {"authorization",
              "content-type", "x-request-id"} (those present),
              "body": parsed JSON | raw text | null}, ...]
        every request received, oldest first, except GET /admin/requests.
    DELETE /admin/requests   clears that list: 200 {"cleared": n}.
"""

import argparse
import datetime
import json
import re
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The fixed catalogue. The UUIDs are part of the test contract.
TESTS = [
    {"uuid": "3f6c8a1e-2b4d-4e7a-9c15-7d2e8b0a4f11", "code": "REK-2F",
     "title": "Rekenen 2F", "minutes": 90, "level": "2F", "active": True},
    {"uuid": "8a2e4c6b-1d3f-4a5e-8b7c-9e0f1a2b3c22", "code": "REK-3F",
     "title": "Rekenen 3F", "minutes": 120, "level": "3F", "active": True},
    {"uuid": "c4d5e6f7-8a9b-4c0d-9e1f-2a3b4c5d6e33", "code": "NED-LZ-2F",
     "title": "Nederlands Lezen 2F", "minutes": 90, "level": "2F", "active": True},
    {"uuid": "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a44", "code": "ENG-LU-B1",
     "title": "Engels Luisteren B1", "minutes": 60, "level": "B1", "active": True},
    {"uuid": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d55", "code": "NED-TV-3F",
     "title": "Nederlands Taalverzorging 3F", "minutes": 75, "level": "3F", "active": False},
]
TEST_UUIDS = [t["uuid"] for t in TESTS]

LINK_BASE = "https://classic.example/start/"
ROLES = ("candidate", "supervisor", "assessor")
UUID_RE = re.compile(r"^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)
GRADE_RE = re.compile(r"^(10|[1-9])(,[0-9])?$")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CALLBACK_TIMEOUT_S = 10
MAX_BODY = 1 << 20


class BadInput(Exception):
    """A 4xx answer: raise BadInput(status, message)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.tests = {t["uuid"]: t for t in TESTS}
        self.sessions = {}    # session_ref -> dict (insertion ordered)
        self.candidates = {}  # candidate_ref -> dict (insertion ordered)
        self.requests = []


# ---- validation -------------------------------------------------------------

def _field(body, name, kind, nullable=False, optional=False):
    if name not in body:
        if optional:
            return None
        raise BadInput(400, f"missing field '{name}'")
    v = body[name]
    if v is None and nullable:
        return None
    if kind is int:
        ok = isinstance(v, int) and not isinstance(v, bool)
    else:
        ok = isinstance(v, kind)
    if not ok:
        want = {int: "an integer", str: "a string", bool: "true or false"}[kind]
        raise BadInput(400, f"'{name}' must be {want}{' or null' if nullable else ''}")
    return v


def _uuid(body, name):
    v = _field(body, name, str)
    if not UUID_RE.match(v):
        raise BadInput(400, f"'{name}' must be a UUID, got '{v}'")
    return v.lower()


def _text(body, name):
    v = _field(body, name, str)
    if not v.strip():
        raise BadInput(400, f"'{name}' must not be empty")
    return v


def _object(body):
    if not isinstance(body, dict):
        raise BadInput(400, "the body must be a JSON object")
    return body


# ---- the API ----------------------------------------------------------------

def list_tests(st):
    return 200, list(st.tests.values())


def get_test(st, uuid):
    t = st.tests.get(uuid.lower())
    if not t:
        raise BadInput(404, f"no test {uuid}")
    return 200, t


def put_session(st, body):
    b = _object(body)
    s = {
        "session_ref": _uuid(b, "session_ref"),
        "test_uuid": _uuid(b, "test_uuid"),
        "title": _text(b, "title"),
        "starts_at": _field(b, "starts_at", int),
        "ends_at": _field(b, "ends_at", int),
        "location": _field(b, "location", str, nullable=True, optional=True),
    }
    if s["test_uuid"] not in st.tests:
        raise BadInput(400, f"unknown test_uuid {s['test_uuid']}")
    if s["ends_at"] <= s["starts_at"]:
        raise BadInput(400, "'ends_at' must be after 'starts_at'")
    old = st.sessions.get(s["session_ref"])
    s["status"] = old["status"] if old else "planned"
    st.sessions[s["session_ref"]] = s
    return (200 if old else 201), {"session_ref": s["session_ref"], "created": not old}


def _session(st, ref):
    s = st.sessions.get(ref.lower())
    if not s:
        raise BadInput(404, f"no session {ref}")
    return s


def get_session(st, ref):
    return 200, _session(st, ref)


def cancel_session(st, ref):
    s = _session(st, ref)
    s["status"] = "cancelled"
    n = 0
    for c in st.candidates.values():
        if c["session_ref"] == s["session_ref"] and c["status"] == "planned":
            c["status"] = "cancelled"
            n += 1
    return 200, {"session_ref": s["session_ref"], "status": "cancelled", "cancelled_candidates": n}


def session_candidates(st, ref):
    s = _session(st, ref)
    return 200, [c for c in st.candidates.values() if c["session_ref"] == s["session_ref"]]


def put_candidate(st, body):
    b = _object(body)
    c = {
        "candidate_ref": _uuid(b, "candidate_ref"),
        "session_ref": _uuid(b, "session_ref"),
        "first_name": _text(b, "first_name"),
        "last_name": _text(b, "last_name"),
        "student_number": _field(b, "student_number", str, nullable=True, optional=True),
        "extra_minutes": _field(b, "extra_minutes", int),
        "role": _field(b, "role", str),
    }
    if c["session_ref"] not in st.sessions:
        raise BadInput(400, f"unknown session_ref {c['session_ref']}")
    if not 0 <= c["extra_minutes"] <= 600:
        raise BadInput(400, "'extra_minutes' must be 0..600")
    if c["role"] not in ROLES:
        raise BadInput(400, f"'role' must be one of {', '.join(ROLES)}")
    old = st.candidates.get(c["candidate_ref"])
    c["status"] = old["status"] if old else "planned"
    c["result"] = old["result"] if old else None
    st.candidates[c["candidate_ref"]] = c
    return (200 if old else 201), {"candidate_ref": c["candidate_ref"], "created": not old}


def _candidate(st, ref):
    c = st.candidates.get(ref.lower())
    if not c:
        raise BadInput(404, f"no candidate {ref}")
    return c


def get_candidate(st, ref):
    return 200, _candidate(st, ref)


def candidate_link(st, ref):
    c = _candidate(st, ref)
    return 200, {"link": LINK_BASE + c["candidate_ref"]}


def record_grade(st, body):
    """Validates and stores a result; returns the callback payload."""
    b = _object(body)
    ref = _uuid(b, "candidate_ref")
    absent = _field(b, "absent", bool, optional=True) or False
    graded_on = _field(b, "graded_on", str, optional=True)
    if graded_on is None:
        graded_on = datetime.date.today().isoformat()
    try:
        if len(graded_on) != 10:
            raise ValueError
        datetime.date.fromisoformat(graded_on)
    except ValueError:
        raise BadInput(400, f"'graded_on' must be YYYY-MM-DD, got '{graded_on}'") from None
    grade = points = max_points = None
    if not absent:
        grade = _field(b, "grade", str)
        if "." in grade:
            raise BadInput(400, f"'grade' uses a decimal comma, like '7,5' (got '{grade}')")
        if not GRADE_RE.match(grade) or float(grade.replace(",", ".")) > 10:
            raise BadInput(400, f"'grade' must be 1 .. 10 with at most one decimal, got '{grade}'")
        points = _field(b, "points", int, nullable=True, optional=True)
        max_points = _field(b, "max_points", int, nullable=True, optional=True)
        if points is not None and points < 0:
            raise BadInput(400, "'points' must not be negative")
        if max_points is not None and (max_points <= 0 or (points or 0) > max_points):
            raise BadInput(400, "'max_points' must be positive and at least 'points'")
    c = _candidate(st, ref)
    if c["status"] == "cancelled":
        raise BadInput(409, f"candidate {ref} is cancelled")
    attempt = (c["result"]["attempt"] + 1) if c["result"] else 1
    c["status"] = "absent" if absent else "graded"
    c["result"] = {"grade": grade, "points": points, "max_points": max_points,
                   "graded_on": graded_on, "attempt": attempt}
    return {"candidate_ref": c["candidate_ref"], "session_ref": c["session_ref"],
            "status": c["status"], "grade": grade, "points": points,
            "max_points": max_points, "graded_on": graded_on, "attempt": attempt}


def send_callback(url, token, payload):
    """POSTs payload to url; returns (status, body text); status 0 on failure."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers,
                                 method="POST")
    # No proxies: the callback goes to localhost whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=CALLBACK_TIMEOUT_S) as res:
            return res.status, res.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except Exception as e:  # noqa: BLE001 - any transport failure is reported
        return 0, f"callback failed: {e}"


def callback_is_local(url):
    try:
        u = urllib.parse.urlsplit(url)
        return u.scheme in ("http", "https") and u.hostname in LOCAL_HOSTS
    except ValueError:
        return False


# ---- HTTP -------------------------------------------------------------------

# (method, path regex) -> handler(state, *groups) or handler(state, body)
ID = r"([^/]+)"
ROUTES = [
    ("GET", r"/api/v1/tests", list_tests, False),
    ("GET", rf"/api/v1/tests/{ID}", get_test, False),
    ("POST", r"/api/v1/sessions", put_session, True),
    ("GET", rf"/api/v1/sessions/{ID}", get_session, False),
    ("POST", rf"/api/v1/sessions/{ID}/cancel", cancel_session, False),
    ("GET", rf"/api/v1/sessions/{ID}/candidates", session_candidates, False),
    ("POST", r"/api/v1/candidates", put_candidate, True),
    ("GET", rf"/api/v1/candidates/{ID}", get_candidate, False),
    ("GET", rf"/api/v1/candidates/{ID}/link", candidate_link, False),
]
ROUTES = [(m, re.compile(p + "$"), fn, takes_body) for m, p, fn, takes_body in ROUTES]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    # set on the class by main()
    state = None
    token = None
    callback = None
    callback_token = None
    verbose = False

    def version_string(self):
        return "ToetsPlatformClassic/2.3"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if self.verbose:
            sys.stderr.write("legacy_supplier: " + (format % args) + "\n")

    def _send(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise BadInput(400, "body too large")
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        try:
            raw = self._read_body()
        except (ValueError, BadInput):
            self.close_connection = True
            self._send(400, {"error": "unreadable body"})
            return
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text) if raw.strip() else None
            parsed = True
        except ValueError:
            body, parsed = text, False

        st = self.state
        if not (self.command == "GET" and path == "/admin/requests"):
            hdrs = {k: self.headers[k] for k in ("Authorization", "Content-Type", "X-Request-Id")
                    if self.headers.get(k) is not None}
            with st.lock:
                st.requests.append({"method": self.command, "path": path, "query": query,
                                    "headers": {k.lower(): v for k, v in hdrs.items()},
                                    "body": body})

        if path.startswith("/admin/"):
            return self._admin(path, body, parsed)

        if self.token and self.headers.get("Authorization") != "Bearer " + self.token:
            self._send(401, {"error": "missing or wrong bearer token"},
                       {"WWW-Authenticate": 'Bearer realm="classic"'})
            return

        allowed = []
        for method, rx, fn, takes_body in ROUTES:
            m = rx.match(path)
            if not m:
                continue
            if method != self.command:
                allowed.append(method)
                continue
            if takes_body and not parsed:
                self._send(400, {"error": "the body is not valid JSON"})
                return
            args = [urllib.parse.unquote(g) for g in m.groups()]
            try:
                with st.lock:
                    status, out = fn(st, body) if takes_body else fn(st, *args)
                    out = json.loads(json.dumps(out))  # a snapshot, sent after the lock
            except BadInput as e:
                self._send(e.status, {"error": e.message})
                return
            self._send(status, out)
            return
        if allowed:
            self._send(405, {"error": f"{self.command} not allowed on {path}"},
                       {"Allow": ", ".join(sorted(set(allowed)))})
        else:
            self._send(404, {"error": f"no endpoint {path}"})

    def _admin(self, path, body, parsed):
        st = self.state
        if path == "/admin/requests":
            if self.command == "GET":
                with st.lock:
                    log = json.loads(json.dumps(st.requests))
                self._send(200, log)
            elif self.command == "DELETE":
                with st.lock:
                    n = len(st.requests)
                    st.requests.clear()
                self._send(200, {"cleared": n})
            else:
                self._send(405, {"error": "GET or DELETE"}, {"Allow": "GET, DELETE"})
            return
        if path == "/admin/grade":
            if self.command != "POST":
                self._send(405, {"error": "POST only"}, {"Allow": "POST"})
                return
            if not parsed:
                self._send(400, {"error": "the body is not valid JSON"})
                return
            if self.callback and not callback_is_local(self.callback):
                self._send(400, {"error": f"refusing callback URL {self.callback}: "
                                          "only 127.0.0.1 or localhost"})
                return
            try:
                with st.lock:
                    payload = record_grade(st, body)
            except BadInput as e:
                self._send(e.status, {"error": e.message})
                return
            if self.callback:
                status, text = send_callback(self.callback, self.callback_token, payload)
            else:
                status, text = 0, "no --callback configured"
            self._send(200, {"callback_status": status, "callback_body": text})
            return
        self._send(404, {"error": f"no endpoint {path}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def main(argv=None):
    ap = argparse.ArgumentParser(description="ToetsPlatform Classic, a legacy test supplier")
    ap.add_argument("--port", type=int, default=0, help="0 = the OS picks")
    ap.add_argument("--token", help="bearer token required on /api/...")
    ap.add_argument("--callback", help="URL results are POSTed to (localhost only)")
    ap.add_argument("--callback-token", help="bearer token sent on the callback")
    ap.add_argument("--verbose", action="store_true", help="log requests on stderr")
    args = ap.parse_args(argv)

    Handler.state = State()
    Handler.token = args.token
    Handler.callback = args.callback
    Handler.callback_token = args.callback_token
    Handler.verbose = args.verbose
    if args.callback and not callback_is_local(args.callback):
        sys.stderr.write(f"legacy_supplier: --callback {args.callback} is not on localhost; "
                         "/admin/grade will refuse it\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
