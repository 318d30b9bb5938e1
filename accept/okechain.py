#!/usr/bin/env python3
"""okechain: OKE chain-test scenarios (digest §5.2) run through okegw.

Python 3 standard library only. The runner plays the school's systems: it starts simulated
DR, TPL and TA peers (HTTP/1.1 servers on 127.0.0.1, threads of this process) that store what
they receive and answer from their stores, starts the real okegw on a generated configuration
(--okegw PATH) or talks to one that is already running (--gateway URL --tokens FILE), and runs
scenario files (JSON data, see README.md) step by step:

    ok - scenario 4 step 11 (TA1 reports the result)
    not ok - scenario 4 step 12 (...): why
    skip - scenario 15 step 3 (...): reason
    ...
    N passed, N failed

Exit status 1 when a step failed (or nothing passed). Nothing here reads outside accept/.

This is also the engine of `okegw accept`: --acceptance (test data marked, zittingen cancelled
after each scenario) and --events (one JSON object per line) are its interface; see README.md.
"""

import argparse
import copy
import fnmatch
import glob
import hashlib
import http.client
import http.server
import json
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
SCENARIOS = os.path.join(HERE, "scenarios")
CHAIN_DEFAULTS = os.path.join(HERE, "chain.json")
REPO = os.path.abspath(os.path.join(HERE, ".."))
PROBLEM_CT = "application/problem+json"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ID_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
# Acceptance mode (--acceptance): every id the run mints starts with this UUID group, and every
# name of an offering or person it sends starts with MARK, so a school's gateway and its
# supplier can tell test data from real data.
ACCEPT_ID_GROUP = "acce57ed"
MARK = "TEST okegw-accept "
RUN_SALT = uuid.uuid4().hex  # $generate ids differ per run in acceptance mode


def new_uuid(acceptance=False):
    u = str(uuid.uuid4())
    return ACCEPT_ID_GROUP + u[8:] if acceptance else u


def absent_reason(name):
    return "no %s system in this gateway's acceptance set" % name


class ScenarioError(Exception):
    """A scenario file that cannot be run as written (not a gateway failure)."""


class SkipStep(Exception):
    pass


def load_json(path):
    with open(path, "rb") as f:
        try:
            return json.loads(f.read().decode("utf-8"))
        except ValueError as e:
            raise ScenarioError("%s: not valid JSON: %s" % (path, e))


def one_line(s, limit=400):
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit] + "..."


def short_json(v, limit=160):
    try:
        s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


# --------------------------------------------------------------------------
# JSON pointers (RFC 6901) with one extension: a segment "[key=value]" picks the first
# element of an array whose `key` equals `value` (e.g. /items/[componentId=...]/name).

_MISSING = object()


def _seg(s):
    return s.replace("~1", "/").replace("~0", "~")


def pointer_parts(ptr):
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise ScenarioError("JSON pointer must start with '/': %r" % ptr)
    return [_seg(p) for p in ptr[1:].split("/")]


def _step_into(cur, part):
    m = re.fullmatch(r"\[([^=\]]+)=(.*)\]", part)
    if m:
        if not isinstance(cur, list):
            return _MISSING
        k, v = m.group(1), m.group(2)
        for e in cur:
            if isinstance(e, dict) and k in e and (e[k] == v or str(e[k]) == v):
                return e
        return _MISSING
    if isinstance(cur, dict):
        return cur.get(part, _MISSING)
    if isinstance(cur, list):
        if part.isdigit() and int(part) < len(cur):
            return cur[int(part)]
        return _MISSING
    return _MISSING


def pointer_get(doc, ptr):
    cur = doc
    for part in pointer_parts(ptr):
        cur = _step_into(cur, part)
        if cur is _MISSING:
            return _MISSING
    return cur


def pointer_set(doc, ptr, value, delete=False):
    parts = pointer_parts(ptr)
    if not parts:
        raise ScenarioError("cannot $set the whole document")
    cur = doc
    for part in parts[:-1]:
        nxt = _step_into(cur, part)
        if nxt is _MISSING:
            if isinstance(cur, dict) and not part.startswith("["):
                nxt = cur[part] = {}
            else:
                raise ScenarioError("$set: no %r in %s" % (part, ptr))
        cur = nxt
    last = parts[-1]
    if isinstance(cur, dict):
        if delete:
            cur.pop(last, None)
        else:
            cur[last] = value
    elif isinstance(cur, list):
        if last == "-" and not delete:
            cur.append(value)
        elif last.isdigit() and int(last) < len(cur):
            if delete:
                del cur[int(last)]
            else:
                cur[int(last)] = value
        else:
            raise ScenarioError("$set: bad array index %r in %s" % (last, ptr))
    else:
        raise ScenarioError("$set: %s does not lead to an object or array" % ptr)


# --------------------------------------------------------------------------
# Matchers: a plain value means deep equality; {"$exists": bool}, {"$contains": x}
# (substring, list element, or object subset), {"$startswith": s}, {"$in": [...]},
# {"$ne": v}, {"$len": n}, {"$type": "string|number|object|array|boolean|null"}.

def _is_matcher(v):
    return isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith("$")


def _subset(want, got):
    if _is_matcher(want):
        return match(want, got) is None
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    return want == got


def match(want, got):
    """None when got satisfies want, else a short reason."""
    if _is_matcher(want):
        op, arg = next(iter(want.items()))
        if op == "$exists":
            return None if (got is not _MISSING) == bool(arg) else (
                "absent" if arg else "present: %s" % short_json(got))
        if got is _MISSING:
            return "absent"
        if op == "$contains":
            if isinstance(got, str) and isinstance(arg, str):
                ok = arg in got
            elif isinstance(got, list):
                ok = any(_subset(arg, e) for e in got)
            elif isinstance(got, dict):
                ok = _subset(arg, got)
            else:
                ok = False
            return None if ok else "%s does not contain %s" % (short_json(got), short_json(arg))
        if op == "$startswith":
            return None if isinstance(got, str) and got.startswith(arg) else "%s does not start with %r" % (
                short_json(got), arg)
        if op == "$in":
            return None if got in arg else "%s not in %s" % (short_json(got), short_json(arg))
        if op == "$ne":
            return None if got != arg else "is %s" % short_json(got)
        if op == "$len":
            n = len(got) if isinstance(got, (list, dict, str)) else None
            return None if n == arg else "length %s, want %s" % (n, arg)
        if op == "$type":
            t = {str: "string", bool: "boolean", int: "number", float: "number", dict: "object",
                 list: "array", type(None): "null"}.get(type(got), "?")
            return None if t == arg else "type %s, want %s" % (t, arg)
        raise ScenarioError("unknown matcher %s" % op)
    if got is _MISSING:
        return "absent (want %s)" % short_json(want)
    if want == got and isinstance(want, bool) == isinstance(got, bool):
        return None
    return "%s, want %s" % (short_json(got), short_json(want))


def match_pointers(doc, spec, what):
    errs = []
    for ptr, want in spec.items():
        r = match(want, pointer_get(doc, ptr))
        if r:
            errs.append("%s %s: %s" % (what, ptr or "(body)", r))
    return errs


# --------------------------------------------------------------------------
# PATCH as the receiving systems apply it: RFC 7396 merge patch, except that `consumers`
# entries are merged field by field, matched on consumerKey (digest R16), and `result` is
# replaced as a whole (digest R16: a result is always sent complete).

def merge_consumers(old, new):
    out = [copy.deepcopy(c) for c in (old or []) if isinstance(c, dict)]
    for nc in new or []:
        if not isinstance(nc, dict):
            continue
        for oc in out:
            if oc.get("consumerKey") == nc.get("consumerKey"):
                merge_patch(oc, nc)
                break
        else:
            out.append(copy.deepcopy(nc))
    return out


def merge_patch(target, patch):
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif k == "consumers" and isinstance(v, list):
            target[k] = merge_consumers(target.get(k), v)
        elif k == "result":
            target[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge_patch(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target


def make_page(items, query, default_size=10):
    try:
        size = int(query.get("pageSize", default_size))
        number = int(query.get("pageNumber", 1))
    except ValueError:
        return None
    if size < 1 or number < 1:
        return None
    start = (number - 1) * size
    return {"pageSize": size, "pageNumber": number, "hasPreviousPage": number > 1,
            "hasNextPage": start + size < len(items),
            "totalPages": max(1, (len(items) + size - 1) // size),
            "items": items[start:start + size]}


def ref_id(v, field):
    if isinstance(v, dict):
        return v.get(field)
    return v


def lts(v):
    if isinstance(v, list):
        for e in v:
            if isinstance(e, dict) and e.get("language") == "nl-NL":
                return str(e.get("value", ""))
        return " ".join(str(e.get("value", "")) for e in v if isinstance(e, dict))
    return str(v or "")


# --------------------------------------------------------------------------
# A simulated OKE system (DR, TPL or TA): stores what it receives, answers from its store.

class Recorded:
    def __init__(self, method, path, query_string, headers, body):
        self.method = method
        self.path = path
        self.rel = path[len("/ooapi"):] if path.startswith("/ooapi") else path
        self.rel = self.rel or "/"
        self.query_string = query_string
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(query_string, keep_blank_values=True).items()}
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else _MISSING
        except (ValueError, UnicodeDecodeError):
            self.json = _MISSING

    def __repr__(self):
        return "%s %s%s" % (self.method, self.rel, ("?" + self.query_string) if self.query_string else "")


KINDS = {"offerings": "offeringId", "associations": "associationId", "persons": "personId",
         "groups": "groupId", "organizations": "organizationId", "components": "componentId"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "okechain-peer/1.0"

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, socket.timeout, OSError):
            pass

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, obj=_MISSING, ctype="application/json", raw=None, headers=()):
        data = raw if raw is not None else (b"" if obj is _MISSING else json.dumps(obj).encode("utf-8"))
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def problem(self, status, title, detail=None, headers=()):
        p = {"type": "about:blank", "title": title, "status": str(status)}
        if detail:
            p["detail"] = detail
        self.send(status, p, ctype=PROBLEM_CT, headers=headers)

    def _dispatch(self):
        peer = self.server.peer
        url = urllib.parse.urlsplit(self.path)
        rec = Recorded(self.command, url.path, url.query, self.headers.items(), self._body())
        with peer.lock:
            # okegw's own version check (GET /, digest R31) runs on a timer of its own;
            # not a step's traffic, so the scenarios' counts stay exact
            if not (rec.method == "GET" and rec.rel == "/"):
                peer.requests.append(rec)
        try:
            peer.handle(self, rec)
        except (ConnectionError, BrokenPipeError):
            pass

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = _dispatch


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a, **kw):
        self.open_socks = set()
        self.socks_lock = threading.Lock()
        super().__init__(*a, **kw)

    def process_request(self, request, client_address):
        with self.socks_lock:
            self.open_socks.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.socks_lock:
            self.open_socks.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        """Ends kept-alive connections too, so no client talks to a stopped peer."""
        with self.socks_lock:
            socks = list(self.open_socks)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimPeer:
    """One simulated system under /ooapi on 127.0.0.1:<port>.

    store: kind -> {id: object} for offerings, associations, persons, groups, organizations,
    components; members: groupId -> {personId: MembershipItem}; documents: id -> bytes.
    required_token: okegw must present `Authorization: Bearer <token>` (the connector's
    outbound credential), else 401. faults: answers to give instead of the normal one."""

    def __init__(self, name, role, port=0, required_token=None):
        self.name = name
        self.role = role
        self.required_token = required_token
        self.store = {k: {} for k in KINDS}
        self.members = {}
        self.documents = {}
        self.faults = []
        self.requests = []
        self.lock = threading.RLock()
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.peer = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name="peer-" + name)
        self.thread.start()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/ooapi" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()

    def reset(self, role, required_token):
        """A clean system again (for the next scenario against a long-lived gateway)."""
        with self.lock:
            self.role = role
            self.required_token = required_token
            self.store = {k: {} for k in KINDS}
            self.members = {}
            self.documents = {}
            self.faults = []
            self.requests = []

    def mark(self):
        with self.lock:
            return len(self.requests)

    def since(self, mark):
        with self.lock:
            return list(self.requests[mark:])

    def url_for(self, association_id):
        return "https://afname.%s.example/start/%s" % (self.name, association_id)

    # store ------------------------------------------------------------------
    def put(self, kind, obj):
        with self.lock:
            if kind == "documents":
                for k, v in obj.items():
                    self.documents[k] = v
                return
            if kind == "members":
                for gid, items in obj.items():
                    for m in items:
                        self.members.setdefault(gid, {})[m["personId"]] = copy.deepcopy(m)
                return
            if kind not in KINDS:
                raise ScenarioError("peer %s: unknown store kind %r" % (self.name, kind))
            oid = obj.get(KINDS[kind]) if isinstance(obj, dict) else None
            if not oid:
                raise ScenarioError("peer %s: %s object without %s" % (self.name, kind, KINDS[kind]))
            self.store[kind][oid] = copy.deepcopy(obj)

    def keep_sent(self, method, rel, body):
        """The sender keeps what it sent (a DR holds its toetsinschrijvingen, a TPL its zittingen,
        a TA its own results): PUT stores, PATCH merges into its own copy when it has one."""
        parts = [p for p in rel.split("?")[0].split("/") if p]
        if not isinstance(body, dict):
            return
        with self.lock:
            if len(parts) == 4 and parts[0] == "groups" and parts[2] == "members" and method == "PUT":
                self.members.setdefault(parts[1], {})[parts[3]] = copy.deepcopy(body)
            elif len(parts) == 2 and parts[0] in KINDS:
                st = self.store[parts[0]]
                if method == "PUT":
                    st[parts[1]] = copy.deepcopy(body)
                elif method == "PATCH" and parts[1] in st:
                    merge_patch(st[parts[1]], body)

    def _fault(self, rec):
        with self.lock:
            for f in self.faults:
                if f.get("method") and f["method"] != rec.method:
                    continue
                if f.get("path") and not fnmatch.fnmatchcase(rec.rel, f["path"]):
                    continue
                if f.get("times") is not None:
                    if f["times"] <= 0:
                        continue
                    f["times"] -= 1
                return f
        return None

    # behaviour -------------------------------------------------------------
    def handle(self, h, rec):
        if not rec.path.startswith("/ooapi"):
            return h.problem(404, "Not Found", "this system lives under /ooapi")
        if self.required_token is not None and rec.headers.get("authorization") != "Bearer " + self.required_token:
            return h.problem(401, "Unauthorized", "bearer token missing or wrong")
        f = self._fault(rec)
        if f:
            hdrs = [("Retry-After", str(f["retry_after"]))] if "retry_after" in f else []
            if f.get("delay"):
                time.sleep(f["delay"])
            return h.problem(f.get("status", 500), f.get("title", "Simulated failure"),
                             f.get("detail", "okechain fault injection"), headers=hdrs)
        with self.lock:
            return self._route(h, rec)

    def _route(self, h, rec):
        p, m, q = rec.rel.rstrip("/") or "/", rec.method, rec.query
        seg = [s for s in p.split("/") if s]
        if not seg:
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            return h.send(200, {"specification": "https://openonderwijsapi.nl", "documentation": "",
                                "contactEmail": "chain@test.invalid", "supportedVersions": ["v5"],
                                "supportedConsumers": [{"consumerKey": "nl-test-admin", "version": "1.0.1"}]})
        top = seg[0]
        if top == "documents" and len(seg) == 2:
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            doc = self.documents.get(seg[1])
            if doc is None:
                return h.problem(404, "Not Found", "no such document")
            return h.send(200, raw=doc, ctype="application/octet-stream")
        if top == "components":
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            if len(seg) == 1:
                items = [c for c in self.store["components"].values()
                         if c.get("componentType") == q.get("componentType", c.get("componentType"))]
                if q.get("q"):
                    items = [c for c in items if q["q"].lower() in (lts(c.get("name")) + " " +
                                                                    str(c.get("abbreviation", ""))).lower()]
                return self._page(h, sorted(items, key=lambda c: lts(c.get("name")).lower()), q)
            return self._get(h, "components", seg[1], q)
        if top == "offerings" and len(seg) == 1:
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            items = list(self.store["offerings"].values())
            if q.get("offeringType"):
                items = [o for o in items if o.get("offeringType") == q["offeringType"]]
            return self._page(h, items, q)
        if top == "offerings" and len(seg) == 3 and seg[2] == "associations":
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            if seg[1] not in self.store["offerings"]:
                return h.problem(404, "Not Found", "no such offering")
            items = [a for a in self.store["associations"].values()
                     if ref_id(a.get("offering"), "offeringId") == seg[1]]
            if q.get("role"):
                items = [a for a in items if a.get("role") == q["role"]]
            return self._page(h, items, q)
        if top == "associations" and len(seg) == 3 and seg[2] == "url":
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            a = self.store["associations"].get(seg[1])
            if a is None or a.get("state") == "canceled":
                return h.problem(404, "Not Found", "no active deelname %s" % seg[1])
            return h.send(200, self.url_for(seg[1]))
        if top == "persons" and len(seg) == 3 and seg[2] == "associations":
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            items = [a for a in self.store["associations"].values()
                     if ref_id(a.get("person"), "personId") == seg[1]]
            at = q.get("associationType")
            if at:
                long_form = at if at.endswith("Association") else at + "Association"
                items = [a for a in items if a.get("associationType") == long_form]
            # a conformant DR never embeds the person here (digest R30), whatever expand asks
            return self._page(h, items, q)
        if top == "groups" and len(seg) == 1:
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            items = list(self.store["groups"].values())
            if q.get("q"):
                items = [g for g in items if q["q"].lower() in lts(g.get("name")).lower()
                         or q["q"].lower() in str(ref_id(g.get("primaryCode"), "code") or "").lower()]
            return self._page(h, items, q)
        if top == "groups" and len(seg) == 3 and seg[2] == "members":
            if m != "GET":
                return h.problem(405, "Method Not Allowed")
            if seg[1] not in self.store["groups"]:
                return h.problem(404, "Not Found", "no such group")
            return self._page(h, list(self.members.get(seg[1], {}).values()), q)
        if top == "groups" and len(seg) == 4 and seg[2] == "members":
            if m != "PUT":
                return h.problem(405, "Method Not Allowed")
            body = rec.json
            if not isinstance(body, dict):
                return h.problem(400, "Bad Request", "body is not a JSON object")
            if body.get("personId") != seg[3]:
                return h.problem(400, "Bad Request", "personId does not match the path")
            existed = seg[3] in self.members.get(seg[1], {})
            self.members.setdefault(seg[1], {})[seg[3]] = body
            return h.send(200 if existed else 201)
        if top in KINDS and len(seg) == 2:
            return self._resource(h, rec, top, seg[1])
        return h.problem(404, "Not Found", "unknown path %s" % p)

    def _page(self, h, items, q):
        page = make_page(items, q)
        if page is None:
            return h.problem(400, "Bad Request", "bad paging parameters")
        return h.send(200, page)

    def _expand(self, obj, q):
        exp = [e.strip() for e in q.get("expand", "").split(",") if e.strip()]
        if not exp or not isinstance(obj, dict):
            return obj
        obj = copy.deepcopy(obj)
        for field, kind in (("person", "persons"), ("offering", "offerings"), ("organization", "organizations")):
            if field in exp and isinstance(obj.get(field), str) and obj[field] in self.store[kind]:
                obj[field] = copy.deepcopy(self.store[kind][obj[field]])
        return obj

    def _get(self, h, kind, rid, q):
        obj = self.store[kind].get(rid)
        if obj is None:
            return h.problem(404, "Not Found", "unknown %s %s" % (kind[:-1], rid))
        return h.send(200, self._expand(obj, q))

    def _resource(self, h, rec, kind, rid):
        m = rec.method
        st = self.store[kind]
        if m == "GET":
            return self._get(h, kind, rid, rec.query)
        if m not in ("PUT", "PATCH") or kind in ("components", "organizations"):
            return h.problem(405, "Method Not Allowed")
        body = rec.json
        if not isinstance(body, dict):
            return h.problem(400, "Bad Request", "body is not a JSON object")
        if m == "PUT":
            if body.get(KINDS[kind]) != rid:
                return h.problem(400, "Bad Request", "%s does not match the path" % KINDS[kind])
            existed = rid in st
            st[rid] = body
            return h.send(200 if existed else 201)
        if rid not in st:
            return h.problem(404, "Not Found", "unknown %s %s" % (kind[:-1], rid))
        merge_patch(st[rid], body)
        if kind == "offerings":
            cons = [c for c in body.get("consumers") or [] if isinstance(c, dict)
                    and c.get("consumerKey") == "nl-test-admin"]
            if cons and cons[0].get("offeringState") == "canceled":
                # a canceled offering drops its associations (digest R18)
                for aid in [a for a, o in self.store["associations"].items()
                            if ref_id(o.get("offering"), "offeringId") == rid]:
                    del self.store["associations"][aid]
        if kind == "associations" and self.role == "ta":
            return h.send(200, {"associationId": rid, "message": [{"language": "nl-NL", "value": "verwerkt"}]})
        return h.send(200)


# --------------------------------------------------------------------------
# The gateway process

class Okegw:
    def __init__(self, binary, workdir, conf_text, start_timeout=10.0):
        self.binary = binary
        self.workdir = workdir
        self.conf_text = conf_text
        self.start_timeout = start_timeout
        self.conf_path = os.path.join(workdir, "plugins.conf")
        self.stderr_path = os.path.join(workdir, "okegw-stderr.log")
        self.proc = None
        self.port = None

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        for stale in ("okegw.db", "okegw.db-wal", "okegw.db-shm"):
            try:
                os.unlink(os.path.join(self.workdir, stale))
            except FileNotFoundError:
                pass
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text)
        wrapper = shlex.split(os.environ.get("OKEGW_WRAPPER", ""))
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(wrapper + [self.binary, "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err, cwd=self.workdir)
        deadline = time.monotonic() + self.start_timeout * float(os.environ.get("OKEGW_TIME_SCALE", "1"))
        while time.monotonic() < deadline:
            for rec in self.log():
                if rec.get("msg") == "listening" and "port" in rec:
                    self.port = int(rec["port"])
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("okegw exited with %s before listening: %s"
                                   % (self.proc.returncode, one_line(self.stderr_text()[-1500:])))
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("okegw did not log 'listening' in time: %s" % one_line(self.stderr_text()[-1500:]))

    def reload(self, conf_text):
        """Writes conf_text and asks the running okegw to take it; (exit code, output)."""
        with open(self.conf_path, "w") as f:
            f.write(conf_text)
        p = subprocess.run([self.binary, "reload", "-c", self.conf_path], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, cwd=self.workdir)
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log(self):
        out = []
        for line in self.stderr_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * float(os.environ.get("OKEGW_TIME_SCALE", "1")))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed (no exit within %.0f s of SIGTERM)" % timeout
        return self.proc.returncode


# --------------------------------------------------------------------------
# HTTP client

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {}
        for k, v in headers:
            k = k.lower()
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else _MISSING
        except (ValueError, UnicodeDecodeError):
            self.json = _MISSING

    @property
    def content_type(self):
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    def short(self):
        b = self.body[:240].decode("utf-8", "replace") if self.content_type.endswith("json") or not self.body \
            else "<%d bytes %s>" % (len(self.body), self.content_type)
        return "%d %s %s" % (self.status, self.content_type, one_line(b, 240))


def http_request(base, method, path, body=None, headers=None, timeout=15.0, cafile=None):
    u = urllib.parse.urlsplit(base)
    if u.scheme == "https":
        c = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                        context=ssl.create_default_context(cafile=cafile))
    else:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    full = u.path.rstrip("/") + path
    try:
        c.request(method, full, body=body, headers=headers or {})
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


# --------------------------------------------------------------------------
# Configuration of a chain: systems, tokens, peers

PEER_POOL = {}  # (name, port) -> SimPeer, reused across scenarios with --gateway


def stop_pool():
    for p in PEER_POOL.values():
        try:
            p.stop()
        except Exception:  # noqa: BLE001
            pass
    PEER_POOL.clear()


def token_for(kind, system):
    return "%s-%s-okechain-%s" % (kind, system, hashlib.sha256(system.encode()).hexdigest()[:10])


class Chain:
    """The systems of one scenario run: simulated peers (and their okegw connectors) or real
    systems reached through an already running okegw."""

    def __init__(self, systems, args, ict):
        self.systems = systems          # name -> {"role", "connector", ...}
        self.args = args
        self.ict = ict or {}
        self.peers = {}                  # name -> SimPeer
        self.real = set(self.ict.get("real", []))
        self.gw = None
        self.base = None
        self.inbound = {}
        self.outbound = {}
        # against a running gateway: systems with neither a token in the ICT file nor a
        # simulated peer (nor real) are not part of that gateway's acceptance set
        self.absent = set()

    def start(self, workdir):
        ict_peers = self.ict.get("peers", {})
        for name, sysdef in self.systems.items():
            self.inbound[name] = (self.ict.get("tokens", {}).get(name) if self.args.gateway
                                  else token_for("in", name))
            if name in self.real:
                continue
            if self.args.gateway and not self.inbound[name] and not ict_peers.get(name):
                self.absent.add(name)
                self.outbound[name] = None
                continue
            if self.args.gateway:
                pd = ict_peers.get(name)
                if not pd:
                    # no listen address: okegw cannot reach it; steps that need it will fail
                    self.outbound[name] = None
                    continue
                host, _, port = pd.get("listen", "127.0.0.1:0").rpartition(":")
                if host not in ("127.0.0.1", "localhost", ""):
                    raise ScenarioError("simulated systems listen on 127.0.0.1 only, not %s" % host)
                self.outbound[name] = pd.get("token")
                # one peer per address for the whole run: okegw keeps connections alive
                key = (name, int(port))
                if key in PEER_POOL:
                    PEER_POOL[key].reset(sysdef["role"], pd.get("token"))
                else:
                    PEER_POOL[key] = SimPeer(name, sysdef["role"], int(port), pd.get("token"))
                self.peers[name] = PEER_POOL[key]
            else:
                self.outbound[name] = token_for("out", name)
                self.peers[name] = SimPeer(name, sysdef["role"], 0, self.outbound[name])
        if self.args.gateway:
            self.base = self.args.gateway.rstrip("/")
        else:
            self.gw = Okegw(self.args.okegw, workdir, self.conf_text())
            self.gw.start()
            self.base = "http://127.0.0.1:%d/ooapi" % self.gw.port

    def conf_text(self):
        lines = ["; generated by accept/okechain.py", "[gateway]", "listen = 127.0.0.1:0",
                 "base_path = /ooapi", "store = okegw.db", "log_level = info", "request_timeout_ms = 10000"]
        for name, sysdef in self.systems.items():
            conn = sysdef.get("connector", name)
            kv = {"plugin": "ooapi", "role": sysdef["role"], "phase": "live",
                  "base_url": self.peers[name].base_url, "auth": "bearer", "token": self.outbound[name],
                  "inbound_token": self.inbound[name], "connect_timeout_ms": 2000, "timeout_ms": 5000}
            kv.update(sysdef.get("conf", {}))
            lines += ["", "[connector %s]" % conn] + ["%s = %s" % (k, v) for k, v in kv.items() if v is not None]
        return "\n".join(lines) + "\n"

    def stop(self):
        problems = []
        if self.gw is not None:
            alive_before = self.gw.alive()
            rc = self.gw.stop()
            if not alive_before:
                problems.append("okegw died during the scenario (exit %s)" % rc)
            elif rc != 0:
                problems.append("okegw exited with %s on SIGTERM" % rc)
        for p in self.peers.values():
            if p in PEER_POOL.values():
                continue
            try:
                p.stop()
            except Exception:  # noqa: BLE001
                pass
        return problems


# --------------------------------------------------------------------------
# Scenario files

def scenario_files(directory):
    files = sorted(glob.glob(os.path.join(directory, "[0-9][0-9]-*.json")))
    out = []
    for f in files:
        n = int(os.path.basename(f)[:2])
        out.append((n, f))
    return out


class Vars:
    def __init__(self, defaults, overrides_list, fresh_ids, pinned=(), acceptance=False):
        self.defaults = dict(defaults)
        self.acceptance = acceptance
        eff = dict(defaults)
        for ov in overrides_list:
            eff.update(ov or {})
        for k, v in list(eff.items()):
            if v == "$uuid" or (fresh_ids and k not in pinned and isinstance(v, str) and UUID_RE.match(v)):
                eff[k] = new_uuid(acceptance)
        self.values = eff
        # an id given another value is replaced wherever the example fixtures use it
        self.remap = {}
        for k, dv in self.defaults.items():
            if isinstance(dv, str) and UUID_RE.match(dv) and eff.get(k) != dv:
                self.remap[dv] = eff[k]

    def sub_str(self, s):
        m = re.fullmatch(r"\$\{([A-Za-z0-9_:.-]+)\}", s)
        if m:
            if m.group(1) not in self.values:
                raise ScenarioError("unknown variable ${%s}" % m.group(1))
            v = self.values[m.group(1)]
            if isinstance(v, str):
                if "${" in v and v != s:
                    return self.sub_str(v)
                return self.remap.get(v, v)
            return self.resolve(copy.deepcopy(v))  # a structured value may use variables too

        def rep(mm):
            if mm.group(1) not in self.values:
                raise ScenarioError("unknown variable ${%s}" % mm.group(1))
            return str(self.values[mm.group(1)])
        s = re.sub(r"\$\{([A-Za-z0-9_:.-]+)\}", rep, s)
        return self.remap.get(s, s)

    def resolve(self, v, ctx=""):
        """Substitutes ${VAR}, loads {"$fixture"} references and expands {"$generate"}."""
        if isinstance(v, str):
            return self.sub_str(v)
        if isinstance(v, list):
            out = []
            for e in v:
                if isinstance(e, dict) and "$generate" in e:
                    out.extend(self.generate(e["$generate"], ctx))
                    continue
                r = self.resolve(e, ctx)
                if isinstance(e, dict) and e.get("$spread") and isinstance(r, list):
                    out.extend(r)
                else:
                    out.append(r)
            return out
        if isinstance(v, dict):
            if "$fixture" in v:
                return self.fixture(v, ctx)
            if "$generate" in v:
                return self.generate(v["$generate"], ctx)
            return {self.sub_str(k) if isinstance(k, str) else k: self.resolve(x, ctx) for k, x in v.items()}
        return v

    def _remap_ids(self, v):
        if isinstance(v, str):
            return self.remap.get(v, v)
        if isinstance(v, list):
            return [self._remap_ids(e) for e in v]
        if isinstance(v, dict):
            return {k: self._remap_ids(x) for k, x in v.items()}
        return v

    def fixture(self, ref, ctx):
        name = self.sub_str(ref["$fixture"])
        path = os.path.join(FIXTURES, name)
        if not os.path.exists(path):
            raise ScenarioError("fixture %s not found in %s" % (name, FIXTURES))
        doc = load_json(path)
        if "$pointer" in ref:
            doc = pointer_get(doc, ref["$pointer"])
            if doc is _MISSING:
                raise ScenarioError("fixture %s has no %s" % (name, ref["$pointer"]))
            doc = copy.deepcopy(doc)
        doc = self._remap_ids(doc)
        for ptr in ref.get("$delete", []):
            pointer_set(doc, self.sub_str(ptr), None, delete=True)
        for ptr, val in (ref.get("$set") or {}).items():
            pointer_set(doc, self.sub_str(ptr), self.resolve(val, ctx))
        return doc

    def generate(self, spec, ctx):
        out = []
        for i in range(int(spec.get("count", 1))):
            item = self.resolve(spec["template"], ctx)
            for ptr, val in (spec.get("set") or {}).items():
                if isinstance(val, str):
                    if self.acceptance:
                        u = str(uuid.uuid5(ID_NS, "%s:%s:%s:%d" % (RUN_SALT, ctx, ptr, i)))
                        u = ACCEPT_ID_GROUP + u[8:]
                    else:
                        u = str(uuid.uuid5(ID_NS, "%s:%s:%d" % (ctx, ptr, i)))
                    val = val.replace("{uuid}", u)
                    val = val.format(i=i + 1)
                pointer_set(item, ptr, val)
            for ptr in spec.get("delete", []):
                pointer_set(item, ptr, None, delete=True)
            out.append(item)
        return out


def expand_includes(steps, base_dir, depth=0):
    out = []
    for s in steps:
        if isinstance(s, dict) and "include" in s:
            if depth > 5:
                raise ScenarioError("includes nested too deep")
            inc = load_json(os.path.join(base_dir, s["include"]))
            inc_steps = inc["steps"] if isinstance(inc, dict) else inc
            out.extend(expand_includes(inc_steps, base_dir, depth + 1))
        else:
            out.append(s)
    return out


# --------------------------------------------------------------------------
# Running one scenario

class Reporter:
    def __init__(self, out=sys.stdout, verbose=False, events=None):
        self.out = out
        self.verbose = verbose
        self.events = events        # a file: one JSON object per line (--events)
        self.passed = self.failed = self.skipped = 0

    def line(self, s):
        print(s, file=self.out, flush=True)

    def event(self, obj):
        if self.events is None:
            return
        try:
            self.events.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self.events.flush()
        except OSError as e:
            self.line("# events: cannot write (%s); no more events" % e)
            self.events = None


class ScenarioRun:
    def __init__(self, number, path, args, defaults, ict, rep):
        self.number = number
        self.path = path
        self.args = args
        self.defaults = defaults
        self.ict = ict or {}
        self.rep = rep
        self.doc = load_json(path)
        self.name = self.doc.get("name", os.path.basename(path))
        systems = copy.deepcopy(defaults.get("systems", {}))
        for k, v in (self.doc.get("systems") or {}).items():
            if v is None:
                systems.pop(k, None)
            else:
                systems.setdefault(k, {}).update(v)
        self.systems = systems
        self.vars = Vars(defaults.get("vars", {}),
                         [self.doc.get("vars"), self.ict.get("vars"), dict(args.var or [])],
                         args.fresh_ids, pinned=set(self.ict.get("vars") or {}) | set(dict(args.var or [])),
                         acceptance=args.acceptance)
        self.chain = None
        self.counts = [0, 0, 0]   # passed, failed, skipped
        self.req = None           # what the current step sent: method, path, status, ms
        self.zittingen = {}       # acceptance: offeringId -> TPL-role system that PUT it (flow 2)

    # reporting ---------------------------------------------------------------
    def _label(self, k, step):
        n = step.get("name") if isinstance(step, dict) else None
        return "scenario %d step %d%s" % (self.number, k, (" (%s)" % n) if n else "")

    def _event(self, k, step, outcome, detail, cleanup=False):
        req = self.req or {}
        ev = {"event": "step", "scenario": str(self.number), "step": k if isinstance(k, int) else 0,
              "name": (step.get("name") if isinstance(step, dict) else None) or (
                  k if isinstance(k, str) else ""),
              "outcome": outcome, "detail": detail, "method": req.get("method"), "path": req.get("path"),
              "status": req.get("status"), "ms": req.get("ms")}
        if cleanup:
            ev["cleanup"] = True
        self.rep.event(ev)

    def ok(self, k, step, note=""):
        self.counts[0] += 1
        self.rep.passed += 1
        self.rep.line("ok - %s%s" % (self._label(k, step), note))
        self._event(k, step, "ok", "")

    def not_ok(self, k, step, reasons, resp=None):
        self.counts[1] += 1
        self.rep.failed += 1
        label = self._label(k, step) if step is not None else "scenario %d %s" % (self.number, k)
        detail = one_line("; ".join(reasons), 600)
        self.rep.line("not ok - %s: %s" % (label, detail))
        if resp is not None:
            self.rep.line("#   got: %s" % resp.short())
        if self.chain is not None and self.chain.gw is not None and step is not None:
            self.rep.line("#   okegw log: %s" % self.chain.gw.stderr_path)
        self._event(k, step, "failed", detail)

    def skip(self, k, step, reason, note=""):
        self.counts[2] += 1
        self.rep.skipped += 1
        self.rep.line("skip - %s: %s%s" % (self._label(k, step), reason, note))
        self._event(k, step, "skipped", reason)

    # running -----------------------------------------------------------------
    def run(self, workdir):
        steps = expand_includes(self.doc.get("steps", []), os.path.dirname(self.path))
        self.rep.line("# scenario %d: %s (%s)" % (self.number, self.name, os.path.basename(self.path)))
        self.rep.event({"event": "scenario", "id": str(self.number), "name": self.name,
                        "file": os.path.basename(self.path), "steps": len(steps)})
        try:
            self.chain = Chain(self.systems, self.args, self.ict)
            self.chain.start(workdir)
            for name in self.systems:
                self.vars.values["INBOUND_TOKEN_" + name] = self.chain.inbound.get(name) or ""
                self.vars.values["OUTBOUND_TOKEN_" + name] = self.chain.outbound.get(name) or ""
            self.seed(self._peers_block(), None)
        except (ScenarioError, RuntimeError, OSError) as e:
            self.not_ok("setup", None, [str(e)])
            if self.chain:
                self.chain.stop()
            return self.counts
        try:
            for k, step in enumerate(steps, 1):
                self.run_step(k, step)
            if self.args.acceptance:
                self.cleanup(len(steps))
        finally:
            self.req = None
            for p in self.chain.stop():
                self.not_ok("teardown", None, [p])
        return self.counts

    def cleanup(self, nsteps):
        """Acceptance mode: every zitting a planning system put and did not cancel is cancelled
        now (flow-2 PATCH offeringState canceled, as that planning system), so a school's
        supplier keeps no live test zittingen. Reported, but counted neither way."""
        k = nsteps
        for oid, tpl in list(self.zittingen.items()):
            k += 1
            step = {"name": "cleanup: cancel zitting %s" % oid}
            body = self.vars.resolve({"$fixture": "flow2_patch_offering_cancel_request.json"}, "cleanup")
            path = "/offerings/%s" % oid
            headers = {"Content-Type": "application/merge-patch+json"}
            tok = self.chain.inbound.get(tpl)
            if tok:
                headers["Authorization"] = "Bearer " + tok
            self.req = {"method": "PATCH", "path": path, "status": None, "ms": None}
            t0 = time.monotonic()
            try:
                resp = http_request(self.chain.base, "PATCH", path, json.dumps(body).encode("utf-8"), headers,
                                    timeout=self.args.timeout, cafile=self.ict.get("cafile"))
            except (OSError, http.client.HTTPException) as e:
                self.rep.line("# cleanup failed - %s: %s: %s" % (step["name"], type(e).__name__, e))
                self._event(k, step, "failed", "%s: %s" % (type(e).__name__, e), cleanup=True)
                continue
            self.req.update(status=resp.status, ms=round((time.monotonic() - t0) * 1000.0, 1))
            if 200 <= resp.status < 300:
                del self.zittingen[oid]
                self.rep.line("# cleanup ok - %s" % step["name"])
                self._event(k, step, "ok", "", cleanup=True)
            elif 400 <= resp.status < 500:
                why = pointer_get(resp.json, "/detail") if isinstance(resp.json, dict) else _MISSING
                why = "the gateway does not allow it: %d %s" % (resp.status, why if isinstance(why, str)
                                                                else resp.short())
                self.rep.line("# cleanup skipped - %s: %s" % (step["name"], why))
                self._event(k, step, "skipped", one_line(why, 600), cleanup=True)
            else:
                self.rep.line("# cleanup failed - %s: %s" % (step["name"], resp.short()))
                self._event(k, step, "failed", "status %d: %s" % (resp.status, resp.short()), cleanup=True)

    def _peers_block(self):
        merged = copy.deepcopy(self.defaults.get("peers", {}))
        for name, block in (self.doc.get("peers") or {}).items():
            merged.setdefault(name, {}).update(block)
        # a system the scenario removes ("systems": {"ta2": null}) has no starting data
        return {k: v for k, v in merged.items() if k in self.systems}

    def seed(self, block, k):
        for pname, kinds in (block or {}).items():
            if pname in self.chain.absent:
                if k is None:
                    self.rep.line("# %s: its starting data is not seeded" % absent_reason(pname))
                    continue
                raise SkipStep(absent_reason(pname))
            if pname in self.chain.real:
                if k is None:  # the scenario's starting data: a real system has its own
                    self.rep.line("# %s is a real system: its starting data is not seeded (%s)"
                                  % (pname, ", ".join(sorted(kinds))))
                    continue
                raise SkipStep("needs data seeded into real system %s" % pname)
            peer = self.chain.peers.get(pname)
            if peer is None:
                if pname in self.systems:
                    raise ScenarioError("system %s is not simulated here (no listen address)" % pname)
                raise ScenarioError("seed: unknown system %r" % pname)
            kinds = self.vars.resolve(kinds, "%s:%s:%s" % (self.number, k, pname))
            for kind, objs in kinds.items():
                if kind == "documents":
                    peer.put("documents", {d: make_document(spec) for d, spec in objs.items()})
                elif kind == "members":
                    peer.put("members", objs)
                elif kind == "faults":
                    with peer.lock:
                        peer.faults = list(objs)
                else:
                    for o in (objs if isinstance(objs, list) else [objs]):
                        peer.put(kind, o)

    def run_step(self, k, step):
        if not isinstance(step, dict):
            return self.not_ok(k, {}, ["step is not an object"])
        run_skipped = getattr(self.args, "run_skipped", False)
        self.req = None
        if step.get("skip") and not run_skipped:
            return self.skip(k, step, step["skip"])
        try:
            reasons, resp, notes = self._execute(k, step)
        except SkipStep as e:
            return self.skip(k, step, str(e))
        except ScenarioError as e:
            return self.not_ok(k, step, ["scenario error: %s" % e])
        except (OSError, http.client.HTTPException) as e:
            return self.not_ok(k, step, ["%s: %s" % (type(e).__name__, e)])
        note = (" # " + "; ".join(notes)) if notes else ""
        if self.args.verbose and resp is not None:
            self.rep.line("#   %s %s -> %s" % (step.get("method"), step.get("path"), resp.short()))
        if step.get("skip"):
            return self.skip(k, step, step["skip"], " # would %s" % (
                "pass now: remove the skip?" if not reasons else "still fail: " + one_line("; ".join(reasons), 200)))
        if reasons:
            return self.not_ok(k, step, reasons, resp)
        return self.ok(k, step, note)

    @staticmethod
    def refused(step):
        """The step expects only 4xx answers."""
        want = (step.get("expect") or {}).get("status")
        want = want if isinstance(want, list) else [want]
        return bool(want) and all(isinstance(s, int) and 400 <= s < 500 for s in want)

    def _execute(self, k, step):
        notes = []
        ctx = "%d:%d" % (self.number, k)
        gone = [n for n in list(step.get("needs", [])) + ([step["as"]] if step.get("as") else [])
                if n in self.chain.absent]
        if gone:
            raise SkipStep(absent_reason(gone[0]))
        real = [n for n in step.get("simulated", []) if n in self.chain.real]
        if real:
            raise SkipStep(step.get("simulated_why") or (
                "relies on the simulated %s (its state after messages the runner sent in its name)"
                % ", ".join(real)))
        if self.args.acceptance and step.get("as") in self.chain.real and self.refused(step):
            # a request in the real supplier's name that the gateway must refuse tests the
            # gateway, not the supplier: sent in an acceptance run it would stand in the
            # supplier's evidence as a profile violation of its own
            raise SkipStep("a deliberately refused request in %s's name tests the gateway, not the "
                           "supplier (it would count against the supplier's evidence)" % step["as"])
        if step.get("seed"):
            self.seed(step["seed"], k)
        if "reload" in step:
            return self.reload(step, ctx)
        if "method" not in step:
            # a step without a request: seeding, or checks over the whole scenario so far
            reasons = []
            for chk in step.get("then") or []:
                r, n = self.check_then(chk, {}, _MISSING, ctx)
                reasons += r
                notes += n
            return reasons, None, notes
        caller = step.get("as")
        if caller is not None and caller not in self.systems and caller not in ("anonymous",):
            raise ScenarioError("unknown caller %r" % caller)
        method = step["method"].upper()
        path = self.vars.resolve(step["path"], ctx)
        if not path.startswith("/"):
            path = "/" + path
        headers = {}
        if caller in self.systems:
            tok = self.chain.inbound.get(caller)
            if not tok:
                raise SkipStep("no inbound token for %s" % caller)
            headers["Authorization"] = "Bearer " + tok
        if "auth" in step:
            a = self.vars.resolve(step["auth"], ctx)
            if a is None:
                headers.pop("Authorization", None)
            else:
                headers["Authorization"] = a
        sent = _MISSING
        data = None
        if "raw_body" in step:
            raw = step["raw_body"]
            if isinstance(raw, dict) and "$file" in raw:
                with open(os.path.join(FIXTURES, raw["$file"]), "rb") as f:
                    data = f.read()
            else:
                data = self.vars.resolve(raw, ctx).encode("utf-8")
        elif "body" in step:
            sent = self.vars.resolve(step["body"], ctx)
            if self.args.acceptance:
                mark_names(path, sent)
            data = json.dumps(sent).encode("utf-8")
        if data is not None:
            headers["Content-Type"] = step.get("content_type") or (
                "application/merge-patch+json" if method == "PATCH" else "application/json")
        for hk, hv in (step.get("headers") or {}).items():
            headers[hk] = self.vars.resolve(hv, ctx)
        marks = {n: p.mark() for n, p in self.chain.peers.items()}
        self.req = {"method": method, "path": path, "status": None, "ms": None}
        t0 = time.monotonic()
        resp = http_request(self.chain.base, method, path, data, headers, timeout=self.args.timeout,
                            cafile=self.ict.get("cafile"))
        self.req.update(status=resp.status, ms=round((time.monotonic() - t0) * 1000.0, 1))
        if self.args.acceptance:
            self.track_zitting(caller, method, path, sent, resp)
        reasons = self.check_expect(step.get("expect") or {}, resp, ctx)
        for chk in step.get("then") or []:
            r, n = self.check_then(chk, marks, sent, ctx)
            reasons += r
            notes += n
        if caller in self.chain.peers and 200 <= resp.status < 300 and method in ("PUT", "PATCH") \
                and step.get("keep", True) and isinstance(sent, dict):
            self.chain.peers[caller].keep_sent(method, path, sent)
        for var, ptr in (step.get("capture") or {}).items():
            v = pointer_get(resp.json, ptr) if resp.json is not _MISSING else _MISSING
            if v is _MISSING:
                reasons.append("capture %s: response has no %s" % (var, ptr))
            else:
                self.vars.values[var] = v
        return reasons, resp, notes

    def track_zitting(self, caller, method, path, sent, resp):
        m = re.fullmatch(r"/offerings/([^/?]+)", path)
        if not m or not 200 <= resp.status < 300:
            return
        oid = m.group(1)
        if method == "PUT" and self.systems.get(caller, {}).get("role") == "tpl":
            self.zittingen.setdefault(oid, caller)
        elif method == "PATCH" and isinstance(sent, dict) and any(
                isinstance(c, dict) and c.get("offeringState") == "canceled" for c in sent.get("consumers") or []):
            self.zittingen.pop(oid, None)

    def reload(self, step, ctx):
        """{"reload": {system: {key: value, ...}}}: those connector keys change in okegw's
        plugins.conf, then `okegw reload -c` (expect: {"exit": N}, default 0)."""
        if self.chain.gw is None:
            raise SkipStep("a reload changes the configuration of the okegw this runner starts")
        for name, kv in self.vars.resolve(step["reload"], ctx).items():
            if name not in self.chain.systems:
                raise ScenarioError("reload: unknown system %r" % name)
            self.chain.systems[name].setdefault("conf", {}).update(kv)
        rc, out = self.chain.gw.reload(self.chain.conf_text())
        want = (step.get("expect") or {}).get("exit", 0)
        reasons = [] if rc == want else ["okegw reload exited %d, want %d: %s" % (rc, want, one_line(out))]
        return reasons, None, [one_line(out.strip().splitlines()[0], 120)] if out.strip() else []

    def check_expect(self, exp, resp, ctx):
        errs = []
        want = exp.get("status")
        if want is None:
            want = list(range(200, 300))
        if isinstance(want, int):
            want = [want]
        if resp.status not in want:
            errs.append("status %d, want %s" % (resp.status, "/".join(str(w) for w in want[:6]) +
                                                 ("..." if len(want) > 6 else "")))
            why = problem_text(resp)
            if why:
                # e.g. the gateway's 502 naming the supplier answer's profile violation
                errs.append("answer: %s" % why)
        if exp.get("problem"):
            if resp.content_type != PROBLEM_CT:
                errs.append("Content-Type %r, want %s" % (resp.content_type, PROBLEM_CT))
            elif not isinstance(resp.json, dict):
                errs.append("problem body is not a JSON object")
            else:
                if str(resp.json.get("status")) != str(resp.status):
                    errs.append("problem status %r does not match HTTP %d" % (resp.json.get("status"), resp.status))
                if not resp.json.get("title"):
                    errs.append("problem without title")
        if "content_type" in exp and resp.content_type != exp["content_type"]:
            errs.append("Content-Type %r, want %r" % (resp.content_type, exp["content_type"]))
        for hk, hv in (exp.get("headers") or {}).items():
            got = resp.headers.get(hk.lower(), _MISSING)
            r = match(self.vars.resolve(hv, ctx), got)
            if r:
                errs.append("header %s: %s" % (hk, r))
        if "json" in exp:
            if resp.json is _MISSING:
                errs.append("response body is not JSON")
            else:
                errs += match_pointers(resp.json, self.vars.resolve(exp["json"], ctx), "response")
        if "body" in exp:
            r = match(self.vars.resolve(exp["body"], ctx), resp.json)
            if r:
                errs.append("response body: %s" % r)
        if "equals_stored" in exp:
            es = self.vars.resolve(exp["equals_stored"], ctx)
            peer = self._peer(es["peer"])
            if peer is not None:
                obj = peer.store[es["kind"]].get(es["id"], _MISSING)
                if obj is _MISSING:
                    errs.append("%s holds no %s %s" % (es["peer"], es["kind"], es["id"]))
                elif resp.json != obj:
                    errs.append("response differs from what %s holds: %s" % (es["peer"], short_json(resp.json)))
        if "document" in exp:
            dd = self.vars.resolve(exp["document"], ctx)
            peer = self._peer(dd["peer"])
            if peer is not None:
                doc = peer.documents.get(dd["id"])
                if doc is None:
                    errs.append("%s holds no document %s" % (dd["peer"], dd["id"]))
                elif resp.body != doc:
                    errs.append("document body differs from %s's (%d bytes, want %d)" % (
                        dd["peer"], len(resp.body), len(doc)))
        return errs

    def _peer(self, name):
        if name in self.chain.absent:
            raise SkipStep(absent_reason(name))
        if name in self.chain.real:
            raise SkipStep("cannot look inside real system %s" % name)
        p = self.chain.peers.get(name)
        if p is None:
            if name in self.systems:
                raise SkipStep("system %s is not simulated here (no listen address in the ICT file)" % name)
            raise ScenarioError("no simulated system %r" % name)
        return p

    def check_then(self, chk, marks, sent, ctx):
        """A check after the step's answer. With "within": N it is repeated
        until it holds or N seconds pass (for what okegw delivers later, from
        its outbox)."""
        deadline = time.monotonic() + float(chk.get("within", 0)) * float(
            os.environ.get("OKEGW_TIME_SCALE", "1"))
        while True:
            errs, notes = self._check_then_once(chk, marks, sent, ctx)
            if not errs or time.monotonic() >= deadline:
                return errs, notes
            time.sleep(0.05)

    def _check_then_once(self, chk, marks, sent, ctx):
        chk = self.vars.resolve(chk, ctx)
        name = chk.get("peer")
        notes = []
        if name is None and "log" in chk:
            return self.check_log(chk["log"]), notes
        gone = [n for n in (name if isinstance(name, list) else [name]) if n in self.chain.absent]
        if gone:
            name = [n for n in (name if isinstance(name, list) else [name]) if n not in self.chain.absent]
            if not name:
                raise SkipStep(absent_reason(gone[0]))
            notes.append(absent_reason(", ".join(gone)))
        real = [n for n in (name if isinstance(name, list) else [name]) if n in self.chain.real]
        if real:
            notes.append("%s: real system, not observed" % ", ".join(real))
            name = [n for n in (name if isinstance(name, list) else [name]) if n not in self.chain.real]
            if not name:
                return [], notes
        if name == "*":
            names = list(self.chain.peers)
        elif isinstance(name, list):
            names = name
        else:
            names = [name]
        errs = []
        for n in names:
            peer = self._peer(n)
            got = peer.since(0 if chk.get("since") == "start" else marks.get(n, 0))
            if "received" in chk:
                errs += self._received(n, got, chk["received"], sent)
            if "not_received" in chk:
                bad = [r for r in got if self._req_matches(r, chk["not_received"])]
                if bad:
                    errs.append("%s got %s" % (n, ", ".join(repr(r) for r in bad[:3])))
            if "stored" in chk:
                errs += self._stored(n, peer, chk["stored"])
        return errs, notes

    @staticmethod
    def _req_matches(r, spec):
        if spec.get("method") and r.method != spec["method"].upper():
            return False
        path = spec.get("path")
        if path is not None:
            p, _, q = path.partition("?")
            if r.rel != p:
                return False
            for qk, qv in urllib.parse.parse_qsl(q, keep_blank_values=True):
                if r.query.get(qk) != qv:
                    return False
        if spec.get("path_prefix") and not r.rel.startswith(spec["path_prefix"]):
            return False
        for qk, qv in (spec.get("query") or {}).items():
            if r.query.get(qk) != qv:
                return False
        return True

    def _received(self, n, got, spec, sent):
        cands = [r for r in got if self._req_matches(r, spec)]
        what = "%s %s" % (spec.get("method", "*"), spec.get("path", spec.get("path_prefix", "*")))
        if "count" in spec and len(cands) != spec["count"]:
            return ["%s got %d x %s, want %d (all: %s)" % (n, len(cands), what, spec["count"],
                                                           ", ".join(repr(r) for r in got[:6]) or "nothing")]
        if not cands:
            return ["%s did not get %s (it got: %s)" % (n, what, ", ".join(repr(r) for r in got[:6]) or "nothing")]
        last_errs = []
        for r in reversed(cands):
            errs = []
            if spec.get("same_body"):
                if sent is _MISSING:
                    raise ScenarioError("same_body needs a JSON body in the step")
                if r.json != sent:
                    errs.append("%s got a different body than was sent: %s" % (n, short_json(r.json, 300)))
            if "json" in spec:
                if r.json is _MISSING:
                    errs.append("%s got no JSON body" % n)
                else:
                    errs += match_pointers(r.json, spec["json"], "%s got" % n)
            for hk, hv in (spec.get("headers") or {}).items():
                m = match(hv, r.headers.get(hk.lower(), _MISSING))
                if m:
                    errs.append("%s got header %s: %s" % (n, hk, m))
            if not errs:
                return []
            last_errs = last_errs or errs
        return last_errs

    def _stored(self, n, peer, spec):
        kind = spec["kind"]
        with peer.lock:
            if kind == "documents":
                st = peer.documents
            elif kind == "members":
                st = peer.members.get(spec.get("group"), {})
            else:
                st = peer.store[kind]
            if "count" in spec and len(st) != spec["count"]:
                return ["%s holds %d %s, want %d" % (n, len(st), kind, spec["count"])]
            if "id" not in spec:
                return []
            obj = st.get(spec["id"], _MISSING)
            if spec.get("absent"):
                return [] if obj is _MISSING else ["%s still holds %s %s" % (n, kind, spec["id"])]
            if obj is _MISSING:
                return ["%s holds no %s %s" % (n, kind, spec["id"])]
            return match_pointers(obj, spec.get("json", {}), "%s holds %s" % (n, kind))

    def check_log(self, spec):
        if self.chain.gw is None:
            return []
        for rec in self.chain.gw.log():
            if all(match(v, rec.get(key, _MISSING)) is None for key, v in spec.items()):
                return []
        return ["okegw logged no line with %s" % short_json(spec)]


def problem_text(resp):
    """The title, detail and errors of a problem answer, in one line ("" for other answers)."""
    if resp.content_type != PROBLEM_CT or not isinstance(resp.json, dict):
        return ""
    p = resp.json
    parts = [str(p[k]) for k in ("title", "detail") if isinstance(p.get(k), (str, int))]
    for e in (p.get("errors") if isinstance(p.get("errors"), list) else [])[:5]:
        if isinstance(e, dict):
            where = e.get("pointer") or e.get("parameter") or ""
            parts.append("%s%s" % ((where + ": ") if where else "", e.get("detail", "")))
    return one_line(": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else ""), 400)


def mark_names(path, body):
    """Acceptance mode: the names of offerings (zittingen, flow-1 offerings) and the surnames of
    persons the run sends start with MARK, also a person embedded in a deelname. Applied to the
    body before it is sent, so every check against what was sent sees the marked names."""
    if not isinstance(body, dict):
        return

    def mark(v):
        return v if not isinstance(v, str) or v.startswith(MARK) else MARK + v

    def person(p):
        if isinstance(p, dict) and "surname" in p:
            p["surname"] = mark(p["surname"])

    top = path.split("?")[0].strip("/").split("/")[0]
    if top == "offerings" and isinstance(body.get("name"), list):
        for e in body["name"]:
            if isinstance(e, dict) and "value" in e:
                e["value"] = mark(e["value"])
    if top == "persons":
        person(body)
    if top == "associations":
        person(body.get("person"))
        if isinstance(body.get("offering"), dict) and isinstance(body["offering"].get("name"), list):
            for e in body["offering"]["name"]:
                if isinstance(e, dict) and "value" in e:
                    e["value"] = mark(e["value"])


def make_document(spec):
    """Document bytes for a simulated system: {"text": "..."} or {"size": N, "text": prefix}
    (N bytes, deterministic, binary after the prefix)."""
    if isinstance(spec, str):
        return spec.encode("utf-8")
    prefix = spec.get("text", "%PDF-1.4\n").encode("utf-8")
    size = int(spec.get("size", len(prefix)))
    if size <= len(prefix):
        return prefix[:size] if "size" in spec else prefix
    block = hashlib.sha256(prefix).digest() + bytes(range(256))
    body = (block * (size // len(block) + 1))[: size - len(prefix)]
    return prefix + body


# --------------------------------------------------------------------------
# Command line

def load_ict(path):
    """The ICT file of --tokens: either {"tpl": token, ...} or {"tokens": {...}, "peers": {...},
    "real": [...], "vars": {...}}."""
    d = load_json(path)
    if "tokens" not in d:
        d = {"tokens": d}
    return d


def parse_args(argv):
    ap = argparse.ArgumentParser(description="OKE chain-test scenarios through okegw")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--okegw", help="okegw binary to start per scenario (default build/okegw)")
    g.add_argument("--gateway", help="base URL of a running okegw, e.g. http://127.0.0.1:8080/ooapi")
    ap.add_argument("--tokens", help="ICT file with the inbound tokens (and peers, real systems, vars); "
                                     "required with --gateway")
    ap.add_argument("--scenarios", default=SCENARIOS, help="folder of NN-name.json files")
    ap.add_argument("--workdir", help="where okegw configs, stores and logs go (default: a temp dir)")
    ap.add_argument("--only", action="append", type=int, default=[], help="run only scenario N (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--var", action="append", type=lambda s: tuple(s.split("=", 1)), metavar="NAME=VALUE",
                    help="override a variable")
    ap.add_argument("--fresh-ids", action="store_true",
                    help="give every id variable a fresh UUID (for a long-lived gateway or a real supplier)")
    ap.add_argument("--run-skipped", action="store_true",
                    help="also run steps marked skip and say whether they would pass now")
    ap.add_argument("--print-conf", action="store_true",
                    help="print the okegw connector sections for the simulated systems of --tokens and exit")
    ap.add_argument("--acceptance", action="store_true",
                    help="acceptance run against a school's gateway (with --gateway): fresh ids marked "
                         "acce57ed-..., names marked '%s', zittingen cancelled after each scenario" % MARK.strip())
    ap.add_argument("--events", metavar="PATH",
                    help="append one JSON object per line per scenario, step and end to PATH (e.g. /dev/fd/3)")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every answer okegw gave")
    args = ap.parse_args(argv)
    if args.gateway and not args.tokens:
        ap.error("--gateway needs --tokens FILE")
    if args.acceptance:
        if not args.gateway:
            ap.error("--acceptance runs against a running gateway: give --gateway URL --tokens FILE")
        args.fresh_ids = True
    if not args.gateway:
        args.okegw = os.path.abspath(args.okegw or os.path.join(REPO, "build", "okegw"))
    return args


def list_scenarios(files):
    for n, f in files:
        try:
            d = load_json(f)
            steps = expand_includes(d.get("steps", []), os.path.dirname(f))
            nskip = sum(1 for s in steps if isinstance(s, dict) and s.get("skip"))
            print("%2d  %-44s %3d steps (%d skipped)  %s" % (n, d.get("name", "?")[:44], len(steps), nskip,
                                                             os.path.basename(f)))
        except ScenarioError as e:
            print("%2d  ERROR %s" % (n, e))


def print_conf(defaults, ict):
    for name, sysdef in defaults.get("systems", {}).items():
        if name in ict.get("real", []):
            print("; %s is a real system: configure its connector by hand" % name)
            continue
        pd = ict.get("peers", {}).get(name, {})
        print("[connector %s]" % sysdef.get("connector", name))
        print("plugin = ooapi\nrole = %s\nphase = live" % sysdef["role"])
        print("base_url = http://%s/ooapi" % pd.get("listen", "127.0.0.1:PORT"))
        print("auth = %s" % ("bearer\ntoken = %s" % pd["token"] if pd.get("token") else "none"))
        print("inbound_token = %s\n" % ict.get("tokens", {}).get(name, "<token this system presents>"))


def pin_components(args, ict, rep):
    """A real ta1 without pinned component ids: the first two tests the gateway lists to the TPL
    (GET /components) stand for COMP_REK3F and COMP_NED2F."""
    pinned = dict(ict.get("vars") or {})
    pinned.update(dict(args.var or []))
    if "ta1" not in ict.get("real", []) or "COMP_REK3F" in pinned:
        return
    tok = ict.get("tokens", {}).get("tpl")
    headers = {"Authorization": "Bearer " + tok} if tok else {}
    try:
        resp = http_request(args.gateway.rstrip("/"), "GET", "/components?pageSize=50", None, headers,
                            timeout=args.timeout, cafile=ict.get("cafile"))
    except (OSError, http.client.HTTPException) as e:
        rep.line("# ta1 is real and COMP_REK3F not pinned; listing the components failed: %s" % e)
        return
    items = pointer_get(resp.json, "/items") if resp.status == 200 else _MISSING
    items = [c for c in items if isinstance(c, dict) and c.get("componentId")] if isinstance(items, list) else []
    # the scenarios' results are scores on 0.0-10.0: a test on that scale goes first
    items.sort(key=lambda c: pointer_get(c, "/consumers/[consumerKey=nl-test-admin]/resultValueType") != "0.0-10.0")
    ids = [c["componentId"] for c in items]
    if not ids:
        rep.line("# ta1 is real and COMP_REK3F not pinned; GET /components as the TPL gave no test: %s"
                 % resp.short())
        return
    ict.setdefault("vars", {})["COMP_REK3F"] = ids[0]
    rep.line("# ta1 is real: COMP_REK3F pinned to %s, the first test (on the scale 0.0-10.0 if one is) "
             "GET /components lists to the TPL" % ids[0])
    if len(ids) > 1 and "COMP_NED2F" not in pinned:
        ict["vars"]["COMP_NED2F"] = ids[1]
        rep.line("# COMP_NED2F pinned to %s, the second one" % ids[1])


def run(argv=None, out=sys.stdout):
    args = parse_args(argv)
    defaults = load_json(CHAIN_DEFAULTS)
    ict = load_ict(args.tokens) if args.tokens else {}
    for k in ("systems",):
        for name, v in (ict.get(k) or {}).items():
            defaults["systems"].setdefault(name, {}).update(v)
    # the connector names the gateway gives those systems (messages, log checks)
    for name, conn in (ict.get("connectors") or {}).items():
        if name in defaults["systems"] and conn:
            defaults["systems"][name]["connector"] = conn
    if args.print_conf:
        print_conf(defaults, ict)
        return 0
    files = scenario_files(args.scenarios)
    if args.only:
        files = [(n, f) for n, f in files if n in args.only]
    if args.list:
        list_scenarios(files)
        return 0
    if not files:
        print("no scenarios found", file=out)
        return 1
    if not args.gateway and not os.path.exists(args.okegw):
        print("okegw binary not found: %s" % args.okegw, file=out)
        return 1
    workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="okechain-"))
    os.makedirs(workdir, exist_ok=True)
    events = None
    if args.events:
        try:
            events = open(args.events, "a", encoding="utf-8")
        except OSError as e:
            print("cannot open --events %s: %s" % (args.events, e), file=out)
            return 1
    rep = Reporter(out, events=events)
    if args.gateway:
        pin_components(args, ict, rep)
    summary = []
    t0 = time.monotonic()
    for n, f in files:
        ts = time.monotonic()
        try:
            sr = ScenarioRun(n, f, args, defaults, ict, rep)
        except ScenarioError as e:
            rep.failed += 1
            rep.line("not ok - scenario %d setup: %s" % (n, e))
            summary.append((n, os.path.basename(f), 0, 1, 0, 0.0))
            rep.event({"event": "scenario", "id": str(n), "name": os.path.basename(f),
                       "file": os.path.basename(f), "steps": 0})
            rep.event({"event": "step", "scenario": str(n), "step": 0, "name": "setup", "outcome": "failed",
                       "detail": one_line(str(e), 600), "method": None, "path": None, "status": None, "ms": None})
            rep.event({"event": "scenario_end", "id": str(n), "passed": 0, "failed": 1, "skipped": 0,
                       "seconds": 0.0})
            continue
        p, fl, sk = sr.run(os.path.join(workdir, "%02d" % n))
        dt = time.monotonic() - ts
        summary.append((n, sr.name, p, fl, sk, dt))
        rep.event({"event": "scenario_end", "id": str(n), "passed": p, "failed": fl, "skipped": sk,
                   "seconds": round(dt, 2)})
    stop_pool()
    rep.line("#")
    for n, name, p, fl, sk, dt in summary:
        rep.line("# %s scenario %2d %-46s %3d passed %2d failed %2d skipped  %.1fs" % (
            "ok    " if fl == 0 else "FAILED", n, name[:46], p, fl, sk, dt))
    rep.line("# %d skipped (not counted as passed); %.1fs; work dir %s" % (rep.skipped, time.monotonic() - t0,
                                                                         workdir))
    rep.line("%d passed, %d failed" % (rep.passed, rep.failed))
    rep.event({"event": "end", "passed": rep.passed, "failed": rep.failed, "skipped": rep.skipped})
    if events is not None:
        events.close()
    return 0 if rep.failed == 0 and rep.passed > 0 else 1


def main():
    sys.exit(run())


if __name__ == "__main__":
    main()
