#!/usr/bin/env python3
"""The HTTPS listener (OKE R1): TLS 1.3 by default, TLS 1.2 only when set, ALPN http/1.1, a
handshake that stalls is cut off, client certificates (mTLS) name the calling system, and a
reload re-reads the certificate (a bad one keeps the old). Certificates come from a test CA
made with the openssl command at test time."""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (TestFailure, check, check_problem, conf, issue, main,  # noqa: E402
                       make_ca, make_components, ooapi_connector, openssl, time_scale)


def fingerprint(cert):
    out = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").decode()
    return out.strip().split("=", 1)[1]


def tls_port(g):
    rec = g.wait_log(lambda r: r.get("msg") == "listening (TLS)", 5.0)
    check(rec and rec.get("port"), "no 'listening (TLS)' line: %s" % g.stderr_tail())
    return rec["port"]


def client_ctx(ca, version=None, cert=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(*cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def https(port, ctx, method="GET", path="/ooapi/", headers=None):
    """(status, headers, body, the TLS socket's version and ALPN)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10 * time_scale())
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, dict(r.getheaders()), body, c.sock.version(), c.sock.selected_alpn_protocol()
    finally:
        c.close()


def setup(t, certs, **gateway):
    peer = t.peer(make_components(2), name="ta")
    kw = {"listen_tls": "127.0.0.1:0", "tls_cert_file": certs["server"][0],
          "tls_key_file": certs["server"][1]}
    kw.update(gateway)
    g = t.gateway(conf([("ta", ooapi_connector(peer))], **kw))
    return g, peer


def make_pki(t):
    d = os.path.join(t.workdir, "pki")
    ca = make_ca(d)
    return {"ca": ca, "dir": d,
            "server": issue(d, "server", "/CN=okegw.school.test", server=True)}


def test_tls13_accepted_tls12_refused_by_default(t):
    certs = make_pki(t)
    g, _ = setup(t, certs)
    port = tls_port(g)
    status, _, _, version, alpn = https(port, client_ctx(certs["ca"], alpn=["h2", "http/1.1"]))
    check(status == 200, "GET over TLS: %d" % status)
    check(version == "TLSv1.3", "negotiated %s, want TLSv1.3" % version)
    check(alpn == "http/1.1", "ALPN chose %r, want http/1.1" % alpn)
    try:
        https(port, client_ctx(certs["ca"], version="1.2"))
        raise TestFailure("a TLS 1.2 client was served with tls_min_version at its default")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    # a client that does not trust the certificate refuses it; the gateway serves on
    other = make_ca(certs["dir"], "other")
    try:
        https(port, client_ctx(other))
        raise TestFailure("a certificate from another CA was accepted by the client")
    except ssl.SSLCertVerificationError:
        pass
    check(g.request("GET", "/healthz").status == 200, "plain listener still serves")
    # problem answers go through TLS like any other
    status, hdrs, body, _, _ = https(port, client_ctx(certs["ca"]), path="/ooapi/nothing/here")
    check(status == 404 and hdrs.get("Content-Type") == "application/problem+json",
          "a 404 over TLS: %d %r %r" % (status, hdrs.get("Content-Type"), body[:200]))


def test_tls12_when_set(t):
    certs = make_pki(t)
    g, _ = setup(t, certs, tls_min_version="1.2")
    status, _, _, version, _ = https(tls_port(g), client_ctx(certs["ca"], version="1.2"))
    check(status == 200 and version == "TLSv1.2", "TLS 1.2 with tls_min_version = 1.2: %d %s"
          % (status, version))


def test_stalled_handshake_cut_off(t):
    """A client that connects and never finishes its handshake is cut off after
    header_timeout_ms; one that sends half a ClientHello too; others are served meanwhile."""
    certs = make_pki(t)
    g, _ = setup(t, certs, header_timeout_ms=1000, idle_timeout_ms=30000)
    port = tls_port(g)
    silent = socket.create_connection(("127.0.0.1", port))
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
    t0 = time.monotonic()
    status, _, _, _, _ = https(port, client_ctx(certs["ca"]))
    check(status == 200, "a prompt client during two stalled handshakes: %d" % status)
    for s, what in ((silent, "silent"), (half, "half a ClientHello")):
        s.settimeout(5.0 * time_scale())
        try:
            got = s.recv(4096)
        except ConnectionResetError:
            got = b""
        took = time.monotonic() - t0
        check(got == b"" or got[:1] == b"\x15", "%s: got %r" % (what, got[:40]))
        check(took < 3.5 * time_scale(), "%s: cut off after %.1f s, want about 1" % (what, took))
        s.close()


def test_client_certificates_name_the_caller(t):
    """tls_client_auth = required: no certificate, or one from another CA, is refused; a
    connector's client_cert_subject or client_cert_sha256 names the calling system, which is
    then treated like one that presented its inbound_token."""
    certs = make_pki(t)
    d = certs["dir"]
    tpl_cert = issue(d, "tpl", "/O=School/CN=tpl.school.test")
    ta_cert = issue(d, "ta", "/O=Supplier/CN=ta.supplier.test")
    other_ca = make_ca(d, "rogue")
    rogue = issue(d, "rogue-client", "/O=School/CN=tpl.school.test", ca="rogue")
    peer = t.peer(make_components(2), name="alpha")
    tpl = t.peer([], name="planning")
    g = t.gateway(conf([
        ("alpha", ooapi_connector(peer, client_cert_sha256=fingerprint(ta_cert[0]),
                                  inbound_token="alpha-calls-okegw-0001")),
        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                      "base_url": tpl.base_url,
                      "client_cert_subject": "CN=tpl.school.test,O=School"})],
        listen_tls="127.0.0.1:0", tls_cert_file=certs["server"][0],
        tls_key_file=certs["server"][1], tls_client_ca_file=certs["ca"],
        tls_client_auth="required"))
    port = tls_port(g)
    for what, cert in (("no certificate", None), ("a certificate of another CA", rogue)):
        try:
            status, _, _, _, _ = https(port, client_ctx(certs["ca"], cert=cert),
                                       path="/ooapi/components?componentType=test")
            raise TestFailure("%s was served: %d" % (what, status))
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.HTTPException):
            pass
    del other_ca
    # the planning system by its subject: the catalogue, a TPL's read
    status, _, body, _, _ = https(port, client_ctx(certs["ca"], cert=tpl_cert),
                                  path="/ooapi/components?componentType=test")
    check(status == 200 and b"items" in body, "the TPL by certificate reads the catalogue: %d %r"
          % (status, body[:200]))
    rec = g.wait_log(lambda r: r.get("msg") == "request" and r.get("caller") == "planning", 3.0)
    check(rec is not None, "the request was not logged with caller 'planning'")
    # a token beside the certificate must name the same system, and be known
    for what, token, want in (("another system's token", "alpha-calls-okegw-0001", "different"),
                              ("an unknown token", "not-a-token-okegw-00001", "not known")):
        status, _, body, _, _ = https(port, client_ctx(certs["ca"], cert=tpl_cert),
                                      path="/ooapi/components?componentType=test",
                                      headers={"Authorization": "Bearer " + token})
        check(status == 401 and want.encode() in body,
              "the TPL's certificate with %s: %d %r" % (what, status, body[:200]))
    # the supplier by its fingerprint: a TA may not read the catalogue (a TPL's interaction)
    status, _, body, _, _ = https(port, client_ctx(certs["ca"], cert=ta_cert),
                                  path="/ooapi/components?componentType=test")
    check(status == 403, "the TA by certificate reading the catalogue: %d %r" % (status, body[:200]))
    # without a token or a certificate the plain listener has no identity for anyone
    check_problem(g.request("GET", "/ooapi/components?componentType=test"), 401,
                  "plain HTTP without a token")


def test_reload_rereads_the_certificate(t):
    """SIGHUP re-reads tls_cert_file and tls_key_file: a new certificate is served to new
    connections; a broken one keeps the old, and the log says why."""
    certs = make_pki(t)
    d = certs["dir"]
    live_cert = os.path.join(d, "live.pem")
    live_key = os.path.join(d, "live.key")
    shutil.copy(certs["server"][0], live_cert)
    shutil.copy(certs["server"][1], live_key)
    g, _ = setup(t, certs, tls_cert_file=live_cert, tls_key_file=live_key)
    port = tls_port(g)

    def served_serial():
        ctx = client_ctx(certs["ca"])
        with socket.create_connection(("127.0.0.1", port)) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as ts:
                return ts.getpeercert()["serialNumber"]

    first = served_serial()
    new_cert, new_key = issue(d, "server2", "/CN=okegw2.school.test", server=True)
    shutil.copy(new_cert, live_cert)
    shutil.copy(new_key, live_key)
    g.proc.send_signal(signal.SIGHUP)
    check(g.wait_log(lambda r: "TLS certificate and key reloaded" in r.get("msg", ""), 5.0),
          "no reload line: %s" % g.stderr_tail())
    second = served_serial()
    check(second != first, "the same certificate after a reload with a new one")
    with open(live_key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    g.proc.send_signal(signal.SIGHUP)
    rec = g.wait_log(lambda r: r.get("msg", "").startswith("reload refused"), 5.0)
    errs = [r for r in g.log_lines() if r.get("level") == "error" and "tls_key_file" in r.get("msg", "")]
    check(rec and errs, "a broken key was not reported: %r %r" % (rec, errs))
    check(served_serial() == second, "a broken key replaced the working certificate")


def test_check_reports_tls_problems_and_plain_exposure(t):
    """okegw -t: a listen_tls without its key, or an unreadable certificate, is an error
    naming the key; plain HTTP and static tokens on a non-loopback address are warned about."""
    certs = make_pki(t)
    cases = [
        ({"listen_tls": "127.0.0.1:0", "tls_cert_file": certs["server"][0]},
         "listen_tls needs tls_cert_file and tls_key_file"),
        ({"listen_tls": "127.0.0.1:0", "tls_cert_file": certs["ca"] + ".missing",
          "tls_key_file": certs["server"][1]}, "tls_cert_file"),
        ({"listen_tls": "127.0.0.1:0", "tls_cert_file": certs["server"][0],
          "tls_key_file": certs["server"][1], "tls_client_auth": "required"},
         "tls_client_auth = required needs tls_client_ca_file"),
    ]
    for i, (kw, want) in enumerate(cases):
        path = os.path.join(t.workdir, "bad%d.conf" % i)
        with open(path, "w") as f:
            f.write(conf([("ta", ooapi_connector(9))], **kw))
        r = subprocess.run([t.binary, "-t", "-c", path], capture_output=True, text=True)
        check(r.returncode == 1 and want in r.stderr, "okegw -t case %d: rc %d, %r"
              % (i, r.returncode, r.stderr[-400:]))
    path = os.path.join(t.workdir, "exposed.conf")
    with open(path, "w") as f:
        f.write(conf([("ta", ooapi_connector(9, inbound_token="ta-calls-okegw-000001"))],
                     listen="0.0.0.0:8080"))
    r = subprocess.run([t.binary, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 0 and "plain HTTP" in r.stderr and "static token" in r.stderr
          and "ta-calls-okegw-000001" not in r.stderr + r.stdout,
          "okegw -t on an exposed plain listener: rc %d %r" % (r.returncode, r.stderr[-600:]))


if __name__ == "__main__":
    main(globals())
