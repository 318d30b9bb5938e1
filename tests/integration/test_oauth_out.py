#!/usr/bin/env python3
"""Outbound credentials and TLS per connector: OAuth 2.0 client credentials (auth = oauth2)
against a token server, with one token for many requests, a refresh before expiry, one new
token and one retry after a 401, pushes held in the outbox while the token server is down,
client_secret_basic and client_secret_post, the secret kept out of every output; and TLS to a
peer with a private CA (ca_file), TLS 1.3 by default."""
import base64
import http.server
import json
import os
import secrets
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, Peer, QuietHandler, TestFailure, _PeerHandler, _PeerServer,  # noqa: E402
                       check, conf, issue, main, make_ca, make_components, make_offering,
                       ooapi_connector, openssl, time_scale, wrapper)

SECRET = "s3cr3t-" + secrets.token_hex(12)
CLIENT_ID = "okegw-school"
FAST = {"retry_first_ms": 100, "retry_max_ms": 400}


# --------------------------------------------------------------------------
# a token server and a peer that wants its tokens

class _TokenHandler(QuietHandler):
    def do_POST(self):
        ts = self.server.ts
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8"), keep_blank_values=True)
        form = {k: v[0] for k, v in form.items()}
        auth = self.headers.get("Authorization")
        with ts.lock:
            ts.requests.append({"at": time.monotonic(), "form": form, "auth": auth,
                                "ctype": self.headers.get("Content-Type")})
            fail = ts.fail_status
        if fail:
            return self._send(fail, {"error": "temporarily_unavailable"})
        cid = csecret = None
        if ts.method == "client_secret_basic" and auth and auth.startswith("Basic "):
            pair = base64.b64decode(auth[6:]).decode("utf-8")
            cid, _, csecret = pair.partition(":")
            cid, csecret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(csecret)
            if "client_secret" in form:
                cid = None  # two ways at once: refused (RFC 6749 2.3)
        elif ts.method == "client_secret_post" and not auth:
            cid, csecret = form.get("client_id"), form.get("client_secret")
        elif ts.method == "private_key_jwt" and not auth and "client_secret" not in form:
            why = ts.check_assertion(form)
            if why:
                with ts.lock:
                    ts.refusals.append(why)
                return self._send(401, {"error": "invalid_client", "error_description": why})
            cid, csecret = CLIENT_ID, SECRET
        if cid != CLIENT_ID or csecret != SECRET:
            return self._send(401, {"error": "invalid_client"})
        if form.get("grant_type") != "client_credentials":
            return self._send(400, {"error": "unsupported_grant_type"})
        tok = "tok-%d-%s" % (len(ts.requests), secrets.token_hex(8))
        with ts.lock:
            ts.issued.append((tok, time.monotonic(), ts.expires_in))
            ts.valid[tok] = time.monotonic() + ts.expires_in
        self._send(200, {"access_token": tok, "token_type": "Bearer", "expires_in": ts.expires_in,
                         "scope": form.get("scope", "")})

    def _send(self, status, obj):
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")  # stop() then means: refused
        self.close_connection = True
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class TokenServer:
    """POST /token on 127.0.0.1: client credentials, checked by `method`; tokens live
    expires_in seconds; fail_status answers every request with that status; stop() and
    start() keep the port and what was recorded."""

    def __init__(self, method="client_secret_basic", expires_in=3600):
        self.method = method
        self.expires_in = expires_in
        self.fail_status = None
        self.requests = []
        self.issued = []  # (token, issued at, expires_in)
        self.valid = {}  # token -> monotonic expiry
        self.lock = threading.Lock()
        self.public_key = None  # private_key_jwt: PEM file the assertions are checked with
        self.workdir = None
        self.refusals = []
        self.jtis = set()
        self.port = 0
        self.server = None
        self.start()

    def check_assertion(self, form):
        """Why the private_key_jwt client assertion is refused, or None (RFC 7523)."""
        if form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return "client_assertion_type %r" % form.get("client_assertion_type")
        parts = (form.get("client_assertion") or "").split(".")
        if len(parts) != 3:
            return "not a JWS"

        def unb64(x):
            return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        hdr, claims, sig = json.loads(unb64(parts[0])), json.loads(unb64(parts[1])), unb64(parts[2])
        if hdr.get("alg") not in ("RS256", "ES256"):
            return "alg %r" % hdr.get("alg")
        if hdr["alg"] == "ES256":  # r || s to DER for openssl
            if len(sig) != 64:
                return "ES256 signature of %d bytes" % len(sig)

            def der_int(b):
                b = b.lstrip(b"\0") or b"\0"
                if b[0] & 0x80:
                    b = b"\0" + b
                return b"\x02" + bytes([len(b)]) + b
            body = der_int(sig[:32]) + der_int(sig[32:])
            sig = b"\x30" + bytes([len(body)]) + body
        now = time.time()
        if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
            return "iss/sub %r" % claims
        if claims.get("aud") != self.url:
            return "aud %r" % claims.get("aud")
        if not (claims.get("exp", 0) > now - 5 and claims.get("iat", 0) <= now + 5):
            return "iat/exp %r" % claims
        with self.lock:
            if claims.get("jti") in self.jtis or not claims.get("jti"):
                return "jti missing or used before"
            self.jtis.add(claims["jti"])
        n = len(self.requests)
        data = os.path.join(self.workdir, "jws-%d.data" % n)
        sigf = os.path.join(self.workdir, "jws-%d.sig" % n)
        with open(data, "wb") as f:
            f.write((parts[0] + "." + parts[1]).encode())
        with open(sigf, "wb") as f:
            f.write(sig)
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", self.public_key,
                            "-signature", sigf, data], capture_output=True, timeout=30)
        return None if p.returncode == 0 else "bad signature: %s" % p.stdout.decode().strip()

    def start(self):
        if self.server:
            return
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _TokenHandler)
        self.server.daemon_threads = True
        self.server.ts = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/token" % self.port

    def count(self):
        with self.lock:
            return len(self.requests)

    def current_ok(self, tok):
        with self.lock:
            exp = self.valid.get(tok)
        return exp is not None and time.monotonic() < exp

    def revoke(self, tok):
        with self.lock:
            self.valid.pop(tok, None)


class OAuthPeer(Peer):
    """A Peer that answers 401 unless the request carries a bearer token the token server
    issued and still holds valid; records each token it saw and whether it was valid."""

    def __init__(self, ts, *a, **kw):
        self.ts = ts
        self.seen = []  # (method, rel, token, valid)
        self.conns = []  # (method, rel, okegw's port of the connection it came on)
        super().__init__(*a, **kw)

    def handle(self, h, rec):
        auth = rec.headers.get("authorization") or rec.headers.get("Authorization") or ""
        tok = auth[7:] if auth.startswith("Bearer ") else None
        ok = tok is not None and self.ts.current_ok(tok)
        with self.lock:
            self.seen.append((rec.method, rec.rel, tok, ok))
            self.conns.append((rec.method, rec.rel, h.client_address[1]))
        if not ok:
            return h._problem(401, "Unauthorized", "bearer token missing, expired or revoked")
        return super().handle(h, rec)

    def seen_of(self, method, rel):
        with self.lock:
            return [s for s in self.seen if s[0] == method and s[1] == rel]


def oauth_keys(t, ts, **kw):
    path = t.write("ta.secret", SECRET + "\n")
    d = {"auth": "oauth2", "token_url": ts.url, "client_id": CLIENT_ID,
         "client_secret_file": path}
    d.update(kw)
    return d


def flow0(g, n):
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200 and len(r.json().get("items", [])) == n, "flow 0: %s" % r.short())


def logged(g, what, pred, timeout=5.0):
    rec = g.wait_log(pred, timeout * time_scale())
    check(rec is not None, "no log line %s in: %s" % (what, g.stderr_tail(15)))
    return rec


def no_secret(g):
    err = g.stderr_text()
    check(SECRET not in err, "the client secret is in okegw's stderr")
    check(base64.b64encode(("%s:%s" % (CLIENT_ID, SECRET)).encode()).decode() not in err,
          "the Basic credentials are in okegw's stderr")


def setup(t, ts, n=3, env=None, **kw):
    p = OAuthPeer(ts, make_components(n), name="ta")
    t.cleanups.append(p.stop)
    t.cleanups.append(ts.stop)
    keys = ooapi_connector(p, **oauth_keys(t, ts))
    keys.update(kw)
    g = t.gateway(conf([("ta", keys)], log_level="debug"), start=False)
    if env:
        os.environ.update(env)
        t.cleanups.append(lambda: [os.environ.pop(k, None) for k in env])
    g.start()
    flow0(g, n)
    return g, p


def run(t, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(wrapper() + [t.binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60 * time_scale(), env=e)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# OAuth 2.0

def test_one_token_for_many_pushes(t):
    ts = TokenServer("client_secret_basic")
    g, p = setup(t, ts)
    offs = [make_offering(c["componentId"]) for c in p.catalogue for _ in range(3)]
    for o in offs:
        r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
        check(r.status in (200, 201), "push: %s" % r.short())
    check(ts.count() == 1, "%d token requests for flow 0 and %d pushes (want 1): %r"
          % (ts.count(), len(offs), ts.requests))
    req = ts.requests[0]
    check(req["form"].get("scope") == "nl-test-admin-flow-0 nl-test-admin-flow-2-3-4",
          "scope asked for a TA: %r" % req["form"].get("scope"))
    check(req["ctype"] == "application/x-www-form-urlencoded", "token request type %r"
          % req["ctype"])
    check("client_secret" not in req["form"], "client_secret_basic sent the secret in the form")
    bad = [s for s in p.seen if not s[3]]
    check(not bad, "the peer saw requests without a valid token: %r" % bad)
    no_secret(g)


def test_one_token_for_every_event_loop(t):
    ts = TokenServer("client_secret_basic")
    p = OAuthPeer(ts, make_components(2), name="ta")
    t.cleanups.append(p.stop)
    t.cleanups.append(ts.stop)
    keys = ooapi_connector(p, **oauth_keys(t, ts))
    g = t.gateway(conf([("ta", keys)], workers=2, log_level="debug"))
    # each read on a connection of its own: the kernel spreads them over the two loops'
    # listeners (SO_REUSEPORT), and each loop's instance of ta asks the peer with a client
    # of its own (connections of its own)
    n = 40
    for _ in range(n):
        flow0(g, 2)
    with p.lock:
        reads = [c for c in p.conns if c[0] == "GET" and c[1] == "/components"]
    check(len(reads) >= n, "the peer got %d catalogue reads for %d (want every one)"
          % (len(reads), n))
    check(len({c[2] for c in reads}) >= 2, "every read reached the peer on one connection: "
          "one event loop served them all")
    check(ts.count() == 1, "%d token requests for two event loops (want 1): %r"
          % (ts.count(), ts.requests))
    tok = ts.issued[0][0]
    with p.lock:
        other = [s for s in p.seen if s[2] != tok or not s[3]]
        carried = len(p.seen)
    check(carried >= n and not other, "requests without the one token: %r" % other)
    no_secret(g)


def test_client_secret_post_from_env(t):
    ts = TokenServer("client_secret_post")
    var = "OKEGW_TEST_SECRET_%d" % os.getpid()
    p = OAuthPeer(ts, make_components(2), name="ta")
    t.cleanups.append(p.stop)
    t.cleanups.append(ts.stop)
    keys = ooapi_connector(p, auth="oauth2", token_url=ts.url, client_id=CLIENT_ID,
                           client_secret_env=var, token_auth_method="client_secret_post",
                           oauth_scope="nl-test-admin-flow-2-3-4 extra")
    os.environ[var] = SECRET
    t.cleanups.append(lambda: os.environ.pop(var, None))
    g = t.gateway(conf([("ta", keys)], log_level="debug"))
    flow0(g, 2)
    o = make_offering(p.catalogue[0]["componentId"])
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status in (200, 201), "push: %s" % r.short())
    check(ts.count() == 1, "token requests: %r" % ts.requests)
    req = ts.requests[0]
    check(req["auth"] is None and req["form"].get("client_id") == CLIENT_ID,
          "client_secret_post request: %r" % {k: v for k, v in req.items() if k != "form"})
    check(req["form"].get("scope") == "nl-test-admin-flow-2-3-4 extra", "scope %r"
          % req["form"].get("scope"))
    no_secret(g)


def test_refresh_before_expiry(t):
    life = 4 * max(1, int(time_scale()))
    ts = TokenServer(expires_in=life)
    g, p = setup(t, ts, n=2)
    first = ts.issued[0]
    o = make_offering(p.catalogue[0]["componentId"])
    # past its refresh time (a tenth of the lifetime before the end, at least 10 s, at most
    # half), before its end: the token still serves and a new one is fetched
    lead = min(max(life / 10.0, 10.0), life / 2.0)
    time.sleep(max(0.0, first[1] + life - lead + 0.3 - time.monotonic()))
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status in (200, 201), "push in the second half of the lifetime: %s" % r.short())
    poll("a second token", lambda: len(ts.issued) >= 2, 5)
    second = ts.issued[1]
    check(second[1] < first[1] + first[2], "the token was fetched again only after it expired")
    time.sleep(max(0.0, first[1] + first[2] - time.monotonic()) + 0.2)
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status in (200, 201), "push after the first token expired: %s" % r.short())
    bad = [s for s in p.seen if not s[3]]
    check(not bad, "the peer saw expired or missing tokens: %r" % bad)
    check(p.seen[-1][2] != first[0], "a request after expiry still carried the first token")
    no_secret(g)


def test_401_one_refresh_one_retry(t):
    ts = TokenServer()
    g, p = setup(t, ts, n=2)
    o = make_offering(p.catalogue[0]["componentId"])
    rel = "/offerings/" + o["offeringId"]
    # the token okegw uses now (under valgrind a start may have fetched a second one already)
    with p.lock:
        old = [s for s in p.seen if s[3]][-1][2]
    before = ts.count()
    ts.revoke(old)  # the supplier drops it before it expires
    r = g.request("PUT", "/ooapi" + rel, o)
    check(r.status in (200, 201), "push after a revoked token: %s" % r.short())
    seen = p.seen_of("PUT", rel)
    check([(s[2] == old, s[3]) for s in seen] == [(True, False), (False, True)],
          "the peer saw %r (want the revoked token, then a new one)" % seen)
    check(ts.count() == before + 1, "token requests: %d (want %d)" % (ts.count(), before + 1))
    # a peer that refuses every token: one new token, one retry, then the 401 stands
    ts_count = ts.count()
    orig = p.ts.current_ok
    p.ts.current_ok = lambda tok: False
    r = g.request("GET", "/ooapi" + rel)
    p.ts.current_ok = orig
    check(r.status >= 400, "a read with refused tokens answered %s" % r.short())
    gets = p.seen_of("GET", rel)
    check(len(gets) == 2, "the peer got %d GETs (want 2: one retry): %r" % (len(gets), gets))
    check(ts.count() == ts_count + 1, "token requests after a second 401: %d (want %d)"
          % (ts.count(), ts_count + 1))
    no_secret(g)


def test_token_server_down(t):
    life = 2 * max(1, int(time_scale()))
    ts = TokenServer(expires_in=life)
    g, p = setup(t, ts, n=2, delivery_wait_ms=200, **FAST)
    ts.stop()
    time.sleep(life + 0.2)  # the token okegw has is gone; no new one can come
    offs = [make_offering(c["componentId"]) for c in p.catalogue]
    for o in offs:
        r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
        check(r.status == 202, "push with the token server down: %s" % r.short())
    check(not p.find("PUT"), "the peer got pushes without a token: %r" % p.find("PUT"))
    cid = p.catalogue[0]["componentId"]
    r = g.request("GET", "/ooapi/components/" + cid)
    check(r.status in (502, 503), "a read with the token server down: %s" % r.short())
    check(not p.find("GET", "/components/" + cid), "the peer got a read without a token")
    logged(g, "about the token endpoint", lambda e: "no OAuth access token" in e.get("msg", "")
           and e.get("level") in ("warn", "warning"))
    logged(g, "on health", lambda e: "is unhealthy" in e.get("msg", ""))
    ts.start()
    for o in offs:
        poll("push of %s delivered" % o["offeringId"],
             lambda: o["offeringId"] in p.offerings, 30)
    logged(g, "on the token", lambda e: "has an OAuth access token" in e.get("msg", ""))
    bad = [s for s in p.seen if not s[3]]
    check(not bad, "the peer saw requests without a valid token: %r" % bad)
    no_secret(g)


def test_config_errors_and_secret_not_echoed(t):
    ts = TokenServer()
    t.cleanups.append(ts.stop)
    secret_path = t.write("ta.secret", SECRET + "\n")
    t.write("empty.secret", "\n")
    base = {"plugin": "ooapi", "role": "ta", "phase": "live",
            "base_url": "http://127.0.0.1:1/ooapi", "auth": "oauth2", "token_url": ts.url,
            "client_id": CLIENT_ID, "client_secret_file": secret_path}

    def check_conf(keys, want_rc, *needles, env=None):
        path = t.write("plugins.conf", conf([("ta", keys)]))
        rc, out, err = run(t, "-t", "-c", path, env=env)
        text = out + err
        check(rc == want_rc, "okegw -t with %r: exit %d: %s" % (keys, rc, text))
        for n in needles:
            check(n in text, "okegw -t with %r: no %r in: %s" % (keys, n, text))
        check(SECRET not in text, "okegw -t echoed the client secret")
        return text

    check_conf(base, 0, "is ok")
    check_conf({**base, "token_auth_method": "client_secret_post"}, 0, "is ok")
    check_conf({k: v for k, v in base.items() if k != "token_url"}, 1, "needs 'token_url'")
    check_conf({k: v for k, v in base.items() if k != "client_id"}, 1, "needs 'client_id'")
    check_conf({k: v for k, v in base.items() if k != "client_secret_file"}, 1,
               "client_secret_file' or 'client_secret_env'")
    check_conf({**base, "client_secret_file": "nope.secret"}, 1,
               "client_secret_file: cannot read", "nope.secret")
    check_conf({**base, "client_secret_file": "empty.secret"}, 1, "is empty")
    var = "OKEGW_TEST_EMPTY_%d" % os.getpid()
    no_file = {k: v for k, v in base.items() if k != "client_secret_file"}
    check_conf({**no_file, "client_secret_env": var}, 1, "%s is not set" % var)
    check_conf({**no_file, "client_secret_env": var}, 1, "is empty", env={var: ""})
    check_conf({**no_file, "client_secret_env": var}, 0, "is ok", env={var: SECRET})
    jwt = {k: v for k, v in base.items() if k != "client_secret_file"}
    jwt["token_auth_method"] = "private_key_jwt"
    check_conf(jwt, 1, "private_key_jwt needs 'client_key_file'")
    check_conf({**jwt, "client_key_file": secret_path}, 1, "client_key_file",
               "not an unencrypted PEM private key")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out",
            "p384.key", cwd=t.workdir)
    check_conf({**jwt, "client_key_file": "p384.key"}, 1, "EC P-256 key")
    check_conf({**base, "token_auth_method": "private_key_jwt", "client_key_file": "p384.key"},
               1, "a client secret is not used")
    check_conf({**base, "auth": "none"}, 1, "token_url is only used with auth = oauth2")
    check_conf({**base, "ca_file": "missing-ca.pem"}, 1, "ca_file: cannot read",
               "missing-ca.pem")
    check_conf({**base, "client_cert_file": secret_path}, 1, "needs client_key_file")
    check_conf({**base, "tls_min_version": "1.1"}, 1, "tls_min_version: expected 1.3 or 1.2")
    # the secret is never one of the plugin's keys either
    check_conf({**base, "client_secret": SECRET}, 1, "unknown key 'client_secret'")


def test_private_key_jwt(t):
    for alg, args in (("RS256", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                      ("ES256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        openssl("genpkey", *args, "-out", alg + ".key", cwd=t.workdir)
        openssl("pkey", "-in", alg + ".key", "-pubout", "-out", alg + ".pub", cwd=t.workdir)
        ts = TokenServer("private_key_jwt")
        ts.workdir = t.workdir
        ts.public_key = os.path.join(t.workdir, alg + ".pub")
        p = OAuthPeer(ts, make_components(2), name="ta")
        t.cleanups.append(p.stop)
        t.cleanups.append(ts.stop)
        keys = ooapi_connector(p, auth="oauth2", token_url=ts.url, client_id=CLIENT_ID,
                               token_auth_method="private_key_jwt",
                               client_key_file=os.path.join(t.workdir, alg + ".key"))
        g = t.gateway(conf([("ta", keys)]), subdir=alg)
        flow0(g, 2)
        o = make_offering(p.catalogue[0]["componentId"])
        r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
        check(r.status in (200, 201), "%s: push: %s" % (alg, r.short()))
        check(ts.count() == 1 and not ts.refusals and len(ts.issued) == 1,
              "%s: token requests %d, refused: %r" % (alg, ts.count(), ts.refusals))
        g.stop()


# --------------------------------------------------------------------------
# outbound TLS

def tls_pki(t):
    """A test CA and a server certificate for 127.0.0.1 signed by it: their paths."""
    ca = make_ca(t.workdir)
    cert, key = issue(t.workdir, "server", "/CN=127.0.0.1", server=True)
    return ca, cert, key


class TLSPeer(Peer):
    """A Peer served over TLS (only `version`) with the given certificate."""

    def __init__(self, cert, key, version=ssl.TLSVersion.TLSv1_3, client_ca=None, **kw):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if client_ca:  # mutual TLS: a client certificate from this CA is required
            self.ctx.load_verify_locations(client_ca)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.minimum_version = version
        self.ctx.maximum_version = version
        super().__init__(**kw)

    def _listen(self, port):
        self.server = _PeerServer(("127.0.0.1", port), _PeerHandler)
        # the handshake in each connection's own thread, not in accept(): a client that is slow
        # to say hello (okegw under valgrind, one probe per event loop) must not hold the others
        self.server.socket = self.ctx.wrap_socket(self.server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self.server.peer = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.serving = True

    @property
    def base_url(self):
        return "https://127.0.0.1:%d/ooapi" % self.port


def tls_gateway(t, p, sub, **kw):
    keys = ooapi_connector(p, base_url=p.base_url, **kw)
    return t.gateway(conf([("ta", keys)]), subdir=sub)


def left_out(g, why):
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(not (r.status == 200 and r.json().get("items")), "flow 0 reached the peer: %s"
          % r.short())
    return logged(g, "naming %r" % why, lambda e: why in json.dumps(e).lower())


def test_tls_private_ca(t):
    ca, cert, key = tls_pki(t)
    p = TLSPeer(cert, key, catalogue=make_components(2), name="ta")
    t.cleanups.append(p.stop)
    g = tls_gateway(t, p, "with-ca", ca_file=ca)
    flow0(g, 2)
    g.stop()
    g = tls_gateway(t, p, "without-ca")
    left_out(g, "unable to get local issuer certificate")


def test_tls_client_certificate(t):
    ca, cert, key = tls_pki(t)
    issue(t.workdir, "client", "/CN=okegw school")
    p = TLSPeer(cert, key, client_ca=ca, catalogue=make_components(2), name="ta")
    t.cleanups.append(p.stop)
    g = tls_gateway(t, p, "with-cert", ca_file=ca,
                    client_cert_file=os.path.join(t.workdir, "client.pem"),
                    client_key_file=os.path.join(t.workdir, "client.key"))
    flow0(g, 2)
    g.stop()
    g = tls_gateway(t, p, "without-cert", ca_file=ca)
    left_out(g, "left out")


def test_tls_1_2_peer_refused_by_default(t):
    ca, cert, key = tls_pki(t)
    p = TLSPeer(cert, key, version=ssl.TLSVersion.TLSv1_2, catalogue=make_components(2),
                name="ta")
    t.cleanups.append(p.stop)
    g = tls_gateway(t, p, "default", ca_file=ca)
    left_out(g, "protocol version")
    g.stop()
    g = tls_gateway(t, p, "allowed", ca_file=ca, tls_min_version="1.2")
    flow0(g, 2)


if __name__ == "__main__":
    main(globals())
