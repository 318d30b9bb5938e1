#!/usr/bin/env python3
"""okegw as the token issuer of a school without an identity provider (token_endpoint = on):
a system gets a JWT at POST {base}/oauth2/token with its client secret (HTTP Basic or the
form) and uses it as its bearer token; the token carries only the scopes its connector may
use; wrong secrets get 401 and slow their client down (429 with a growing Retry-After); the
secret shows up nowhere."""
import base64
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (TestFailure, check, check_problem, conf, issue, main,  # noqa: E402
                       make_ca, make_components, ooapi_connector, openssl)

SECRET = "tpl-client-secret-0123456789"


def hash_secret(t, secret):
    r = subprocess.run([t.binary, "hash-secret"], input=secret + "\n", capture_output=True,
                       text=True)
    if r.returncode != 0 or not r.stdout.startswith("client_secret_hash = "):
        raise TestFailure("okegw hash-secret: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    return r.stdout.split(" = ", 1)[1].strip()


def signing_key(t, kind="ec"):
    path = os.path.join(t.workdir, "signing-%s.key" % kind)
    args = (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec"
            else ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    openssl("genpkey", *args, "-out", path)
    return path


def setup(t, kind="ec", **gateway):
    ta = t.peer(make_components(2), name="alpha")
    tpl = t.peer([], name="planning")
    kw = {"token_endpoint": "on", "token_signing_key_file": signing_key(t, kind)}
    kw.update(gateway)
    g = t.gateway(conf([
        ("alpha", ooapi_connector(ta, inbound_token="alpha-calls-okegw-0001")),
        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                      "base_url": tpl.base_url, "oauth_client_id": "planning-system",
                      "client_secret_hash": hash_secret(t, SECRET)})], **kw))
    return g, ta, tpl


def token_request(g, form, basic=None, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        raw = "%s:%s" % (urllib.parse.quote(basic[0], safe=""), urllib.parse.quote(basic[1], safe=""))
        h["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode()
    h.update(headers or {})
    return g.request("POST", "/ooapi/oauth2/token", urllib.parse.urlencode(form).encode(),
                     headers=h)


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_client_gets_a_token_and_uses_it(t):
    g, ta, _ = setup(t)
    r = token_request(g, {"grant_type": "client_credentials"}, basic=("planning-system", SECRET))
    check(r.status == 200, "token with HTTP Basic: %s" % r.short())
    body = r.json()
    check(body.get("token_type") == "Bearer" and body.get("expires_in", 0) > 0,
          "token answer: %r" % body)
    check(r.header("Cache-Control") == "no-store", "Cache-Control %r" % r.header("Cache-Control"))
    c = claims(body["access_token"])
    check(c.get("client_id") == "planning-system" and c.get("iss") == "okegw",
          "claims: %r" % c)
    check(set(c["scope"].split()) == {"nl-test-admin-flow-0", "nl-test-admin-flow-1-5",
                                       "nl-test-admin-flow-2-3-4"},
          "a TPL's default scopes: %r" % c["scope"])
    bearer = {"Authorization": "Bearer " + body["access_token"]}
    r = g.request("GET", "/ooapi/components?componentType=test", headers=bearer)
    check(r.status == 200, "the catalogue with the issued token: %s" % r.short())
    rec = g.wait_log(lambda x: x.get("msg") == "request" and x.get("caller") == "planning", 3.0)
    check(rec is not None, "the request was not logged as the planning system's")
    # client_secret_post, asking for one scope only: then flow 2 is refused
    r = token_request(g, {"grant_type": "client_credentials", "client_id": "planning-system",
                          "client_secret": SECRET, "scope": "nl-test-admin-flow-0"})
    check(r.status == 200 and r.json().get("scope") == "nl-test-admin-flow-0",
          "token with client_secret_post for flow 0: %s" % r.short())
    narrow = {"Authorization": "Bearer " + r.json()["access_token"]}
    check(g.request("GET", "/ooapi/components?componentType=test", headers=narrow).status == 200,
          "flow 0 with a flow-0 token")
    check_problem(g.request("GET", "/ooapi/offerings/" + "0f57a72a-7f7d-5cea-87ec-6245bd3a2363",
                            headers=narrow), 403, "flow 2 with a flow-0 token")
    # a scope the system may not use is not granted
    r = token_request(g, {"grant_type": "client_credentials", "scope": "nl-test-admin-flow-6"},
                      basic=("planning-system", SECRET))
    check(r.status == 400 and r.json().get("error") == "invalid_scope",
          "flow 6 for a TPL: %s" % r.short())
    # a token changed by one character is refused
    tok = body["access_token"]
    forged = tok[:-2] + ("A" if tok[-2] != "A" else "B") + tok[-1]
    check_problem(g.request("GET", "/ooapi/components", headers={"Authorization": "Bearer " + forged}),
                  401, "a forged token")
    out = g.stderr_text()
    check(SECRET not in out and tok not in out, "the secret or the token is in the log")


def test_wrong_secrets_slow_down(t):
    g, _, _ = setup(t, kind="rsa")
    waits = []
    for i in range(3):
        r = token_request(g, {"grant_type": "client_credentials"},
                          basic=("planning-system", "not-the-secret-%d" % i))
        if r.status == 429:
            waits.append(int(r.header("Retry-After") or 0))
            time.sleep(waits[-1] + 0.2)
            r = token_request(g, {"grant_type": "client_credentials"},
                              basic=("planning-system", "not-the-secret-%d" % i))
        p = check_problem(r, 401, "wrong secret %d" % i)
        check(p.get("error") == "invalid_client", "OAuth error member: %r" % p)
        check("Basic" in (r.header("WWW-Authenticate") or ""), "WWW-Authenticate %r"
              % r.header("WWW-Authenticate"))
        r = token_request(g, {"grant_type": "client_credentials"}, basic=("planning-system", SECRET))
        check(r.status == 429, "right after failure %d even the right secret waits: %s"
              % (i + 1, r.short()))
        waits.append(int(r.header("Retry-After") or 0))
        time.sleep(waits[-1] + 0.2)
    check(waits[0] >= 1 and waits[-1] > waits[0], "the pauses do not grow: %r" % waits)
    logged = [x for x in g.log_lines() if "wrong client secret" in x.get("msg", "")]
    check(len(logged) >= 3, "failures not logged: %d" % len(logged))
    r = token_request(g, {"grant_type": "client_credentials"}, basic=("planning-system", SECRET))
    check(r.status == 200, "the right secret after the pause: %s" % r.short())
    # unknown clients share one slowdown, and look like a wrong secret
    r = token_request(g, {"grant_type": "client_credentials"}, basic=("nobody", SECRET))
    check(check_problem(r, 401, "unknown client").get("error") == "invalid_client", "unknown")
    r = token_request(g, {"grant_type": "client_credentials"}, basic=("someone-else", SECRET))
    check(r.status == 429, "a second made-up id right after: %s" % r.short())


def test_bad_token_requests(t):
    g, _, _ = setup(t)
    r = token_request(g, {"grant_type": "password"}, basic=("planning-system", SECRET))
    check(r.status == 400 and r.json().get("error") == "unsupported_grant_type", r.short())
    r = token_request(g, {"grant_type": "client_credentials", "client_secret": SECRET},
                      basic=("planning-system", SECRET))
    check(r.status == 400 and r.json().get("error") == "invalid_request", r.short())
    r = g.request("POST", "/ooapi/oauth2/token", {"grant_type": "client_credentials"})
    check(r.status == 400 and r.json().get("error") == "invalid_request", "JSON body: %s" % r.short())
    check_problem(g.request("GET", "/ooapi/oauth2/token"), 405, "GET on the token endpoint")
    for bad in ("!!!", "====", "=" * 796, "YQ==YQ==", "YTpi===="):
        r = token_request(g, {"grant_type": "client_credentials"},
                          headers={"Authorization": "Basic " + bad})
        check(r.status == 400, "a broken Basic header %r: %s" % (bad[:12], r.short()))
    check(g.request("GET", "/healthz").status == 200, "healthz after broken Basic headers")


def test_a_forged_rsa_token_does_not_hurt_tls_connections(t):
    """Forged RS256 tokens, over plain HTTP and over the TLS connection itself, are refused
    without ending that TLS connection: it serves its next request."""
    from test_tls import client_ctx, tls_port
    d = os.path.join(t.workdir, "pki")
    ca = make_ca(d)
    cert, key = issue(d, "server", "/CN=okegw.school.test", server=True)
    g, _, _ = setup(t, kind="rsa", listen_tls="127.0.0.1:0", tls_cert_file=cert,
                    tls_key_file=key)
    r = token_request(g, {"grant_type": "client_credentials"}, basic=("planning-system", SECRET))
    check(r.status == 200, "token: %s" % r.short())
    tok = r.json()["access_token"]
    forged = tok[:-4] + ("AAAA" if tok[-4:] != "AAAA" else "BBBB")
    conn = http.client.HTTPSConnection("127.0.0.1", tls_port(g), context=client_ctx(ca),
                                       timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        check(first.status == 200, "healthz over TLS: %d" % first.status)
        check_problem(g.request("GET", "/ooapi/components",
                                headers={"Authorization": "Bearer " + forged}), 401, "forged")
        conn.request("GET", "/ooapi/components", headers={"Authorization": "Bearer " + forged})
        third = conn.getresponse()
        third.read()
        check(third.status == 401, "a forged token over TLS: %d" % third.status)
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        second.read()
        check(second.status == 200, "the TLS connection after a forged token: %d" % second.status)
    finally:
        conn.close()


def test_off_by_default_and_checked(t):
    ta = t.peer(make_components(1), name="alpha")
    g = t.gateway(conf([("alpha", ooapi_connector(ta, inbound_token="alpha-calls-okegw-0001"))]))
    check_problem(g.request("POST", "/ooapi/oauth2/token", b"grant_type=client_credentials",
                            headers={"Content-Type": "application/x-www-form-urlencoded"}),
                  404, "token_endpoint off")
    path = os.path.join(t.workdir, "bad.conf")
    with open(path, "w") as f:
        f.write(conf([("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                                    "base_url": "http://127.0.0.1:9/",
                                    "client_secret_hash": "plain-text-secret"})],
                     token_endpoint="on"))
    r = subprocess.run([t.binary, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 1 and "token_signing_key_file" in r.stderr
          and "client_secret_hash" in r.stderr and "plain-text-secret" not in r.stderr,
          "okegw -t: %d %r" % (r.returncode, r.stderr[-600:]))


if __name__ == "__main__":
    main(globals())
