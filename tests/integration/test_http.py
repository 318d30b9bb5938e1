#!/usr/bin/env python3
"""The HTTP/1.1 front end: keep-alive, chunked bodies, limits, errors, shutdown."""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (RawConn, check, check_2xx, check_problem, conf, make_association,  # noqa: E402
                       make_components, make_offering, main, new_id, ooapi_connector)

MAX_HEADER = 4096
MAX_BODY = 65536


def setup(t):
    peer = t.peer(make_components(3), name="ta")
    g = t.gateway(conf([("ta", ooapi_connector(peer))],
                       max_header_bytes=MAX_HEADER, max_body_bytes=MAX_BODY))
    return g, peer


def raw_problem(r, status, what):
    """check_problem for a RawConn Response (same object type)."""
    return check_problem(r, status, what)


def test_keep_alive_many_requests(t):
    g, peer = setup(t)
    with RawConn(g.port) as c:
        r = c.request("GET", "/ooapi/")
        check(r.status == 200, "1 GET /ooapi/: %s" % r.short())
        r = c.request("GET", "/ooapi/components?componentType=test")
        check(r.status == 200, "2 GET components: %s" % r.short())
        comp = r.json()["items"][0]["componentId"]
        o = make_offering(comp)
        r = c.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
        check_2xx(r, "3 PUT offering")
        r = c.request("GET", "/ooapi/offerings/" + o["offeringId"])
        check(r.status == 200 and r.json() == o, "4 GET offering: %s" % r.short())
        a = make_association(o["offeringId"])
        r = c.request("PUT", "/ooapi/associations/" + a["associationId"], a)
        check_2xx(r, "5 PUT association")
        r = c.request("GET", "/ooapi/associations/" + a["associationId"])
        check(r.status == 200 and r.json() == a, "6 GET association: %s" % r.short())
        r = c.request("GET", "/ooapi/nope/" + new_id())
        check(r.status == 404, "7 GET unknown path: %s" % r.short())
        r = c.request("GET", "/ooapi/components/" + comp)
        check(r.status == 200, "8 GET component after a 404 on the same connection: %s" % r.short())
        check("close" not in (r.header("connection") or "").lower(),
              "okegw asked to close a keep-alive connection: %r" % r.header("connection"))
        check(not c.closed_by_peer(0.3), "okegw closed the keep-alive connection")
        # an explicit Connection: close is honoured
        r = c.request("GET", "/ooapi/", headers={"Connection": "close"})
        check(r.status == 200, "9 GET with Connection: close: %s" % r.short())
        check(c.closed_by_peer(2.0), "okegw kept the connection open after Connection: close")


def test_pipelined_requests(t):
    g, peer = setup(t)
    with RawConn(g.port) as c:
        c.send(RawConn.build("GET", "/ooapi/") + RawConn.build("GET", "/ooapi/nope")
               + RawConn.build("GET", "/ooapi/"))
        st = [c.read_response().status for _ in range(3)]
        check(st == [200, 404, 200], "three pipelined requests answered %r, want [200, 404, 200]" % st)


def test_chunked_request_body(t):
    g, peer = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "flow 0: %s" % r.short())
    o = make_offering(peer.catalogue[0]["componentId"])
    data = json.dumps(o).encode()
    chunks = [data[i:i + 97] for i in range(0, len(data), 97)]
    with RawConn(g.port) as c:
        r = c.request("PUT", "/ooapi/offerings/" + o["offeringId"],
                      headers={"Content-Type": "application/json"}, chunks=chunks)
        check_2xx(r, "chunked PUT")
        got = peer.find("PUT", "/offerings/" + o["offeringId"])
        check(got, "the chunked PUT did not reach the supplier")
        check(got[0].json == o, "the supplier got a different body: %r" % got[0].body[:200])
        r = c.request("GET", "/ooapi/offerings/" + o["offeringId"])
        check(r.status == 200, "GET after a chunked PUT on the same connection: %s" % r.short())


def test_expect_100_continue(t):
    """A client that sends Expect: 100-continue gets the interim answer before it sends the
    body (curl does this for bodies over 1 KiB and would otherwise wait a second)."""
    g, peer = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "flow 0: %s" % r.short())
    o = make_offering(peer.catalogue[0]["componentId"])
    data = json.dumps(o).encode()
    with RawConn(g.port) as c:
        head = ("PUT /ooapi/offerings/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (o["offeringId"], len(data)))
        c.send(head.encode())
        check(c.readable(2.0), "no 100 Continue within 2 s of the headers")
        line = c._read_line()
        check(line.startswith(b"HTTP/1.1 100"), "first answer should be 100 Continue, got %r" % line)
        check(c._read_line() == b"", "100 Continue should have no headers")
        c.send(data)
        r = c.read_response()
        check(r.status in (200, 201), "PUT after 100 Continue: %s" % r.short())
    check(peer.find("PUT", "/offerings/" + o["offeringId"]), "the peer did not get the offering")


def test_body_under_limit_accepted(t):
    g, peer = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "flow 0: %s" % r.short())
    o = make_offering(peer.catalogue[0]["componentId"])
    o["description"][0]["value"] = "x" * (MAX_BODY - 2500)
    data = json.dumps(o).encode()
    check(len(data) < MAX_BODY, "test bug: body too big")
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], data,
                  {"Content-Type": "application/json"})
    check_2xx(r, "PUT of %d bytes (limit %d)" % (len(data), MAX_BODY))


def test_headers_too_large_431(t):
    g, peer = setup(t)
    with RawConn(g.port) as c:
        req = RawConn.build("GET", "/ooapi/", headers={"X-Padding": "a" * (MAX_HEADER + 1000)})
        r = c.send_until_answered(b"", [req])
        raw_problem(r, 431, "header block over max_header_bytes")
        check(r.header("content-length") is not None, "431 answer without Content-Length")
    with RawConn(g.port) as c:  # many small headers add up too
        hdrs = {"X-H%03d" % i: "v" * 40 for i in range(150)}
        r = c.send_until_answered(b"", [RawConn.build("GET", "/ooapi/", headers=hdrs)])
        raw_problem(r, 431, "many headers over max_header_bytes")


def test_body_too_large_content_length_413(t):
    g, peer = setup(t)
    oid = new_id()
    size = MAX_BODY * 3
    head = ("PUT /ooapi/offerings/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (oid, size)).encode()
    with RawConn(g.port) as c:
        c.send(head)
        # a gateway should refuse on the announced length, without reading the body
        if c.readable(2.0):
            r = c.read_response()
        else:
            body = b"{" + b" " * (size - 2) + b"}"
            r = c.send_until_answered(b"", [body[i:i + 16384] for i in range(0, size, 16384)])
        raw_problem(r, 413, "Content-Length over max_body_bytes")
        check(r.header("content-length") is not None, "413 answer without Content-Length")
    check(not peer.non_catalogue(), "a too-large body reached the supplier")


def test_body_too_large_chunked_413(t):
    g, peer = setup(t)
    oid = new_id()
    head = ("PUT /ooapi/offerings/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n" % oid).encode()
    piece = b"2000\r\n" + b" " * 0x2000 + b"\r\n"  # 8 KiB chunks, 32 of them = 256 KiB
    with RawConn(g.port) as c:
        r = c.send_until_answered(head, [piece] * 32 + [b"0\r\n\r\n"], pause=0.005)
        raw_problem(r, 413, "chunked body growing over max_body_bytes")
    check(not peer.non_catalogue(), "a too-large body reached the supplier")


def test_malformed_request_line_400(t):
    g, peer = setup(t)
    for bad in (b"THIS IS NOT HTTP\r\n\r\n", b"GET /ooapi/ HTTP/9.9 extra\r\n\r\n",
                b"GET\r\nHost: x\r\n\r\n"):
        with RawConn(g.port) as c:
            r = c.send_until_answered(b"", [bad])
            raw_problem(r, 400, "malformed request %r" % bad)


def test_unknown_path_404(t):
    g, peer = setup(t)
    for path in ("/ooapi/nothing-here", "/elsewhere/components", "/ooapi/offerings/%s/frobs" % new_id()):
        r = g.request("GET", path)
        check_problem(r, 404, "GET %s" % path)


def test_wrong_method_405(t):
    g, peer = setup(t)
    oid = new_id()
    for method, path in (("DELETE", "/ooapi/offerings/" + oid), ("POST", "/ooapi/components"),
                         ("DELETE", "/ooapi/associations/" + oid), ("PUT", "/ooapi/components/" + oid)):
        r = g.request(method, path, b"{}" if method in ("POST", "PUT") else None,
                      {"Content-Type": "application/json"} if method in ("POST", "PUT") else None)
        check_problem(r, 405, "%s %s" % (method, path))
    check(not peer.non_catalogue(), "a 405 request reached the supplier: %r" % peer.non_catalogue())


def test_invalid_json_body_400(t):
    g, peer = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "flow 0: %s" % r.short())
    oid = new_id()
    r = g.request("PUT", "/ooapi/offerings/" + oid, b'{"offeringId": "' + oid.encode() + b'",',
                  {"Content-Type": "application/json"})
    check_problem(r, 400, "PUT with a syntactically broken JSON body")
    check(not peer.non_catalogue(), "a broken body reached the supplier")


def test_still_serving_then_sigterm(t):
    g, peer = setup(t)
    # a bit of abuse first (answers are checked elsewhere; here only survival counts)
    for junk in (b"NOT HTTP AT ALL\r\n\r\n",
                 RawConn.build("GET", "/ooapi/", headers={"X-Pad": "a" * 9000}),
                 b"PUT /ooapi/offerings/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{",
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256))):
        with RawConn(g.port) as c:
            try:
                c.send(junk)
                c.readable(0.2)
            except OSError:
                pass
    r = g.request("GET", "/ooapi/")
    check(r.status == 200, "GET /ooapi/ after the abuse: %s" % r.short())
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200 and len(r.json()["items"]) == 3, "catalogue still served: %s" % r.short())
    rc = g.stop()
    check(rc == 0, "SIGTERM should exit 0, got %r" % rc)


def test_sigterm_with_idle_and_stalled_clients(t):
    g, peer = setup(t)
    idle = RawConn(g.port)
    r = idle.request("GET", "/ooapi/")
    check(r.status == 200, "GET /ooapi/: %s" % r.short())
    stalled = RawConn(g.port)
    stalled.send(b"GET /ooapi/ HTTP/1.1\r\nHost: x\r\n")  # never finished
    try:
        rc = g.stop(timeout=5.0)
        check(rc == 0, "SIGTERM should exit 0 with an idle and a stalled client, got %r" % rc)
    finally:
        idle.close()
        stalled.close()


def test_request_id_and_access_log(t):
    g, peer = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "catalogue: %s" % r.short())
    rec = g.wait_log(lambda x: x.get("status") in (200, "200") and "latency_ms" in x, 2.0)
    check(rec is not None, "no log line with status 200 and latency_ms; log:\n%s" % g.stderr_tail(10))
    check(rec.get("request_id"), "the access log line has no request_id: %r" % rec)


if __name__ == "__main__":
    main(globals())
