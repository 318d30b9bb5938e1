#!/usr/bin/env python3
"""OAuth 2.0 for callers: a school system presents a JWT access token of the school's identity
provider instead of its static inbound_token. The keys are made here with the openssl command
line (RSA 2048 and EC P-256), the tokens signed here (RS256, ES256), the JWKS written here, so
okegw's checks are tested against tokens it did not make: the issuer, the audience, the times,
the algorithm (none and HMAC-with-the-public-key are refused), the signature, the client that
names the connector, the scopes that bound what it may do; a key rotation at the issuer is
picked up through one rate-limited fetch of the JWKS URL, while requests wait for it."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (QuietHandler, check, check_problem, conf, main,  # noqa: E402
                       make_components, ooapi_connector, openssl, run_okegw, time_scale)

ISSUER = "https://idp.school.example/realms/oke"
AUDIENCE = "okegw"
CLIENT = "planning-system"
STATIC = "legacy-tpl-calls-okegw-0001"
FLOW0 = "nl-test-admin-flow-0"
CATALOGUE = "/ooapi/components?componentType=test"


# ---- keys, JWKS and tokens, made with the openssl CLI ------------------------

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def der_ecdsa_to_raw(der):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) as JWS wants it: r || s, 32 bytes each."""
    check(der[0] == 0x30, "ECDSA signature is not a DER SEQUENCE")
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        check(der[i] == 0x02, "ECDSA signature: expected an INTEGER")
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        check(len(v) <= 32, "ECDSA signature: integer longer than 32 bytes")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


class Key:
    """A private key in workdir and its public JWK."""

    def __init__(self, workdir, kind, kid):
        self.kind, self.kid = kind, kid
        self.pem = os.path.join(workdir, "%s.pem" % kid)
        if kind == "RSA":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.pem)
            modulus = openssl("rsa", "-in", self.pem, "-noout", "-modulus").decode().strip()
            n = bytes.fromhex(modulus.split("=", 1)[1])
            text = openssl("rsa", "-in", self.pem, "-noout", "-text").decode()
            e = int(re.search(r"publicExponent: (\d+)", text).group(1))
            self.jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(n),
                        "e": b64u(e.to_bytes((e.bit_length() + 7) // 8, "big"))}
            self.alg = "RS256"
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.pem)
            der = openssl("pkey", "-in", self.pem, "-pubout", "-outform", "DER")
            point = der[-65:]
            check(point[0] == 4, "EC public key is not an uncompressed point")
            self.jwk = {"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
                        "x": b64u(point[1:33]), "y": b64u(point[33:])}
            self.alg = "ES256"
        self.public_pem = openssl("pkey", "-in", self.pem, "-pubout")

    def sign(self, signing_input):
        sig = openssl("dgst", "-sha256", "-sign", self.pem, data=signing_input)
        return sig if self.kind == "RSA" else der_ecdsa_to_raw(sig)


def jwks(*keys):
    return json.dumps({"keys": [k.jwk for k in keys]})


def claims(scope=FLOW0, **kw):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": [AUDIENCE, "account"], "client_id": CLIENT, "sub": "svc-123",
         "iat": now, "nbf": now, "exp": now + 300, "scope": scope}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def token(key, payload=None, header=None, alg=None):
    h = {"alg": alg or key.alg, "typ": "at+jwt", "kid": key.kid}
    h.update(header or {})
    signing_input = (b64u(json.dumps(h).encode()) + "." +
                     b64u(json.dumps(payload if payload is not None else claims()).encode())).encode()
    return signing_input.decode() + "." + b64u(key.sign(signing_input))


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


# ---- a JWKS server on 127.0.0.1 that counts its fetches ----------------------

class JwksServer:
    def __init__(self, text, delay=0.0):
        self.text, self.delay, self.fetches = text, delay, 0
        self.lock = threading.Lock()
        outer = self

        class H(QuietHandler):
            def do_GET(self):
                with outer.lock:
                    outer.fetches += 1
                    body, delay = outer.text.encode(), outer.delay
                time.sleep(delay)
                self.send_response(200 if self.path == "/keys" else 404)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/keys" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def set(self, text, delay=0.0):
        with self.lock:
            self.text, self.delay = text, delay

    def count(self):
        with self.lock:
            return self.fetches

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the gateway -------------------------------------------------------------

def setup(t, keys=None, url=None, tpl_scopes=None):
    """A TA (alpha), a TPL known by its JWTs (planner) and one known by its static token
    (legacy). keys: written as the JWKS file; url: a JWKS URL instead."""
    ta = t.peer(make_components(2), name="alpha")
    tpl = t.peer([], name="planner")
    legacy = t.peer([], name="legacy")
    planner = {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
               "oauth_client_id": CLIENT}
    if tpl_scopes:
        planner["scopes"] = tpl_scopes
    gw = {"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE}
    if url:
        gw["oauth_jwks_url"] = url
        # each event loop keeps its own copy of the issuer's keys (pipeline/workers.h): the
        # fetches counted here are one loop's
        gw["workers"] = 1
    else:
        gw["oauth_jwks_file"] = os.path.basename(t.write("jwks.json", jwks(*keys)))
    g = t.gateway(conf([("alpha", ooapi_connector(ta)), ("planner", planner),
                        ("legacy", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                                    "base_url": legacy.base_url, "inbound_token": STATIC})], **gw))
    return g, ta


def catalogue_reads(ta):
    return len(ta.find(method="GET", prefix="/components"))


def check_accepted(g, ta, tok, what):
    before = catalogue_reads(ta)
    r = g.request("GET", CATALOGUE, headers=bearer(tok))
    check(r.status == 200, "%s: expected 200, got %s" % (what, r.short()))
    check(len(r.json().get("items", [])) == 2, "%s: the merged catalogue has the TA's 2 tests" % what)
    check(catalogue_reads(ta) > before, "%s: the request reached the TA" % what)


def refusals(g, kind):
    """How many times okegw logged refusing an access token as `kind` (jwt.c's names)."""
    return sum(1 for r in g.log_lines()
               if r.get("msg", "").startswith("refused: access token %s:" % kind))


def check_refused(g, ta, tok, what, status=401, kind=None):
    """The request is refused with status; a refused JWT gets RFC 6750's invalid_token and is
    logged as `kind`."""
    before, logged = catalogue_reads(ta), refusals(g, kind) if kind else 0
    r = g.request("GET", CATALOGUE, headers=bearer(tok))
    p = check_problem(r, status, what)
    if kind:
        www = r.header("www-authenticate") or ""
        check(www.startswith("Bearer ") and 'error="invalid_token"' in www and
              "error_description=" in www, "%s: WWW-Authenticate: %r" % (what, www))
        check(g.wait_log(lambda _: refusals(g, kind) > logged, 2.0) is not None,
              "%s: logged as a refusal of kind %r" % (what, kind))
    check(tok not in r.body.decode(errors="replace") and
          all(tok not in v for _, v in r.header_list), "%s: the answer repeats the token" % what)
    check(catalogue_reads(ta) == before, "%s: nothing reached the TA" % what)
    return p


def check_log_clean(g, *tokens):
    text = g.stderr_text()
    for tok in tokens:
        check(tok.split(".")[2] not in text if tok.count(".") == 2 and tok.split(".")[2] else
              tok not in text, "a token appears in okegw's log")


# ---- tests -------------------------------------------------------------------

def test_valid_tokens_rs256_and_es256_reach_the_peer(t):
    rsa, ec = Key(t.workdir, "RSA", "rsa-1"), Key(t.workdir, "EC", "ec-1")
    g, ta = setup(t, keys=[rsa, ec])
    check_accepted(g, ta, token(rsa), "RS256")
    check_accepted(g, ta, token(ec), "ES256")
    # aud as a plain string, the client in azp, scopes as an scp array
    check_accepted(g, ta, token(rsa, claims(aud=AUDIENCE, client_id=None, azp=CLIENT, scope=None,
                                            scp=["openid", FLOW0])), "azp and scp")
    # within the clock skew of 60 s
    now = int(time.time())
    check_accepted(g, ta, token(ec, claims(exp=now - 20, nbf=now + 20)), "inside the skew")
    check_log_clean(g, token(rsa))


def test_bad_tokens_get_401(t):
    rsa, ec = Key(t.workdir, "RSA", "rsa-1"), Key(t.workdir, "EC", "ec-1")
    g, ta = setup(t, keys=[rsa, ec])
    now = int(time.time())
    bad = {
        "wrong audience": ("audience", token(rsa, claims(aud=["account", "other-gateway"]))),
        "wrong issuer": ("issuer", token(rsa, claims(iss=ISSUER + "-evil"))),
        "expired": ("expired", token(rsa, claims(exp=now - 120, iat=now - 600, nbf=now - 600))),
        "no exp": ("expired", token(ec, claims(exp=None))),
        "not yet valid": ("not-yet-valid", token(rsa, claims(nbf=now + 600))),
        "issued in the future": ("not-yet-valid", token(rsa, claims(iat=now + 600, nbf=None))),
        "unknown client": ("client", token(rsa, claims(client_id="some-other-system"))),
    }
    # alg none: no signature at all
    h = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    bad["alg none"] = ("alg", h + "." + b64u(json.dumps(claims()).encode()) + ".")
    # HS256 keyed with the RSA public key PEM (the classic alg confusion)
    for kid in ("rsa-1", None):
        hdr = {"alg": "HS256", "typ": "JWT"}
        if kid:
            hdr["kid"] = kid
        si = b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims()).encode())
        mac = hmac.new(rsa.public_pem, si.encode(), hashlib.sha256).digest()
        bad["HS256 with the public key (kid %s)" % kid] = ("alg", si + "." + b64u(mac))
    # forged: the payload changed after signing, and a signature by a key okegw does not trust
    good = token(rsa)
    parts = good.split(".")
    parts[1] = b64u(json.dumps(claims(scope=FLOW0 + " nl-test-admin-flow-2-3-4")).encode())
    bad["payload changed after signing"] = ("signature", ".".join(parts))
    stranger = Key(t.workdir, "RSA", "stranger")
    bad["signed by another key under a known kid"] = ("signature",
                                                      token(stranger, header={"kid": "rsa-1"}))
    sig = bytearray(base64.urlsafe_b64decode(parts[2] + "=="))
    sig[10] ^= 1
    bad["one bit of the signature flipped"] = ("signature", ".".join(good.split(".")[:2] + [b64u(sig)]))
    bad["ES256 header over an RSA key"] = ("key", token(ec, header={"kid": "rsa-1"}))
    bad["garbage in three parts"] = ("malformed", "abc.def.ghi")
    for what, (kind, tok) in bad.items():
        p = check_refused(g, ta, tok, what, kind=kind)
        check("token" in p.get("detail", ""), "%s: the problem says why: %r" % (what, p))
    check_log_clean(g, *[tok for _, tok in bad.values()])
    # a valid one still passes: none of the above did harm
    check_accepted(g, ta, good, "valid after the refusals")


def test_token_without_the_scope_gets_403(t):
    rsa = Key(t.workdir, "RSA", "rsa-1")
    g, ta = setup(t, keys=[rsa])
    p = check_refused(g, ta, token(rsa, claims(scope="openid nl-test-admin-flow-2-3-4")),
                      "flow-2-3-4 only", status=403)
    check(FLOW0 in p.get("detail", ""), "the 403 names the missing scope: %r" % p)
    check_refused(g, ta, token(rsa, claims(scope="")), "no scope", status=403)
    check_refused(g, ta, token(rsa, claims(scope="nl-test-admin-flow-0x")), "near miss", status=403)


def test_token_scopes_are_bounded_by_the_connector(t):
    rsa = Key(t.workdir, "RSA", "rsa-1")
    g, ta = setup(t, keys=[rsa], tpl_scopes="nl-test-admin-flow-2-3-4")
    # the token grants flow-0, but the connector may not use it
    check_refused(g, ta, token(rsa), "flow-0 outside the connector's scopes", status=403)


def test_static_inbound_token_still_works(t):
    rsa = Key(t.workdir, "RSA", "rsa-1")
    g, ta = setup(t, keys=[rsa])
    check_accepted(g, ta, STATIC, "static inbound_token")
    check_refused(g, ta, STATIC[:-1] + "x", "a wrong static token")
    r = g.request("GET", CATALOGUE)
    check_problem(r, 401, "no token")


def test_key_rotation_through_the_jwks_url(t):
    old, new = Key(t.workdir, "RSA", "2026-old"), Key(t.workdir, "EC", "2026-new")
    srv = JwksServer(jwks(old))
    t.cleanups.append(srv.stop)
    g, ta = setup(t, url=srv.url)
    deadline = time.monotonic() + 5 * time_scale()
    while not g.wait_log(lambda r: "key(s) of the issuer loaded" in r.get("msg", ""), 0.1):
        check(time.monotonic() < deadline, "the JWKS was fetched at start")
    check(srv.count() == 1, "one fetch at start, got %d" % srv.count())
    check_accepted(g, ta, token(old), "the key fetched at start")
    check(srv.count() == 1, "a known kid fetches nothing")
    # the issuer rotates; the first tokens with the new kid wait for one refresh, slowly served
    srv.set(jwks(old, new), delay=0.5)
    results = [None] * 3

    def call(i):
        results[i] = g.request("GET", CATALOGUE, headers=bearer(token(new)))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i, r in enumerate(results):
        check(r is not None and r.status == 200, "waiting request %d: %s" % (i, r and r.short()))
    check(srv.count() == 2, "the waiting requests shared one refresh: %d fetches" % srv.count())
    check_accepted(g, ta, token(new), "the rotated key, cached")
    # a kid the issuer does not have: refused, and within 30 s no other fetch
    ghost = Key(t.workdir, "RSA", "ghost")
    check_refused(g, ta, token(ghost), "unknown kid after a refresh", kind="unknown-kid")
    check_refused(g, ta, token(ghost), "unknown kid again", kind="unknown-kid")
    check(srv.count() == 2, "refreshes are rate-limited: %d fetches" % srv.count())
    check_accepted(g, ta, token(old), "the old key still works")
    check_log_clean(g, token(new))


def test_jwks_file_is_read_again_on_sighup(t):
    old, new = Key(t.workdir, "RSA", "file-old"), Key(t.workdir, "EC", "file-new")
    g, ta = setup(t, keys=[old])
    check_accepted(g, ta, token(old), "a key of the JWKS file")
    # a file is not fetched again on an unknown kid
    check_refused(g, ta, token(new), "a key not in the file", kind="unknown-kid")
    t.write("jwks.json", "{broken")
    g.proc.send_signal(signal.SIGHUP)
    check(g.wait_log(lambda r: "the keys loaded before stay" in r.get("msg", ""), 5) is not None,
          "a broken file on SIGHUP keeps the keys")
    check_accepted(g, ta, token(old), "the old key after a broken reload")
    t.write("jwks.json", jwks(old, new))
    g.proc.send_signal(signal.SIGHUP)
    check(g.wait_log(lambda r: "reloaded from" in r.get("msg", ""), 5) is not None,
          "the file is read again on SIGHUP")
    check_accepted(g, ta, token(new), "the new key after SIGHUP")


def test_issuer_keys_unavailable_gives_503(t):
    rsa = Key(t.workdir, "RSA", "rsa-1")
    srv = JwksServer(jwks(rsa))
    t.cleanups.append(srv.stop)
    g, ta = setup(t, url=srv.url + "-moved")  # the issuer answers 404
    deadline = time.monotonic() + 5 * time_scale()
    while srv.count() < 1:
        check(time.monotonic() < deadline, "the JWKS was fetched at start")
        time.sleep(0.05)
    check(g.wait_log(lambda r: "cannot load the issuer's keys" in r.get("msg", ""), 5) is not None,
          "the failed fetch is logged")
    # the first token tries once more, then okegw says it cannot check tokens (not 401)
    for what in ("after one more fetch", "without another fetch"):
        r = g.request("GET", CATALOGUE, headers=bearer(token(rsa)))
        check_problem(r, 503, what)
        check(r.header("retry-after") is not None, "%s: Retry-After" % what)
    check(srv.count() == 2, "one refresh, then rate-limited: %d fetches" % srv.count())
    check_accepted(g, ta, STATIC, "static inbound_token while the issuer is down")


def test_config_errors_are_clear(t):
    rsa = Key(t.workdir, "RSA", "rsa-1")
    t.write("good.json", jwks(rsa))
    t.write("bad.json", '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    t.write("notjson.json", "not json")
    tpl = {"plugin": "sim", "role": "tpl", "oauth_client_id": CLIENT}
    cases = [
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE}, tpl, "needs the issuer's keys"),
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_jwks_file": "good.json",
          "oauth_jwks_url": "https://idp.school.example/keys"}, tpl, "not both"),
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_jwks_file": "missing.json"},
         tpl, "cannot read the JWKS file"),
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_jwks_file": "bad.json"},
         tpl, "no usable key"),
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_jwks_file": "notjson.json"},
         tpl, "not a JWKS"),
        ({"oauth_issuer": ISSUER, "oauth_jwks_file": "good.json"}, tpl, "needs oauth_audience"),
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE,
          "oauth_jwks_url": "http://idp.school.example/keys"}, tpl, "https://"),
        ({}, tpl, "oauth_client_id needs oauth_issuer"),
        ({"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_jwks_file": "good.json"},
         {"plugin": "sim", "role": "tpl"}, "no connector has oauth_client_id"),
    ]
    for i, (gw, conn, expect) in enumerate(cases):
        path = t.write("case%d.conf" % i, conf([("planner", conn)], **gw))
        rc, out = run_okegw(t.binary, ["-t", "-c", path])
        check(rc != 0 and expect in out, "case %d: expected an error with %r, got rc %d: %s"
              % (i, expect, rc, out))
    ok = t.write("ok.conf", conf([("planner", tpl)], oauth_issuer=ISSUER, oauth_audience=AUDIENCE,
                                 oauth_jwks_file="good.json"))
    rc, out = run_okegw(t.binary, ["-t", "-c", ok])
    check(rc == 0, "a good OAuth configuration passes -t: %s" % out)


if __name__ == "__main__":
    main(globals())
