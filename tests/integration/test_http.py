#!/usr/bin/env python3
"""The HTTP/1.1 front end: keep-alive, chunked bodies, HEAD, limits, slow clients, errors,
shutdown."""
import json
import os
import resource
import select
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (RawConn, check, check_2xx, check_problem, conf,  # noqa: E402
                       make_association, make_components, make_offering, main, new_id,
                       ooapi_connector, request, time_scale, wrapper)

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


def test_client_speaks_while_answered(t):
    """Bytes a client sends while its request is still with the supplier wait for its answer:
    requests sent then are answered after it, in order; a client that half-closes after its
    request still gets the whole answer, then the connection ends."""
    g, peer = setup(t)
    comp = peer.catalogue[0]["componentId"]
    path = "/ooapi/components/" + comp
    peer.delay = 0.5
    with RawConn(g.port) as c:
        c.send(RawConn.build("GET", path))
        time.sleep(0.2)  # the first is with the supplier now
        c.send(RawConn.build("GET", "/ooapi/nope"))
        time.sleep(0.1)
        c.send(RawConn.build("GET", path))
        rs = [c.read_response() for _ in range(3)]
        check([r.status for r in rs] == [200, 404, 200],
              "requests sent during an answer: %r, want [200, 404, 200]" % [r.status for r in rs])
        check(all(rs[i].json().get("componentId") == comp for i in (0, 2)),
              "the answers to the component reads: %s / %s" % (rs[0].short(), rs[2].short()))
    with RawConn(g.port) as c:
        c.send(RawConn.build("GET", path))
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        check(r.status == 200 and r.json().get("componentId") == comp,
              "a client that half-closed after its request: %s" % r.short())
        check(c.closed_by_peer(2.0 * time_scale()), "okegw kept a half-closed connection open")
    peer.delay = 0
    with RawConn(g.port) as c:
        check(c.request("GET", "/ooapi/").status == 200, "okegw still serves")


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



def test_head_has_headers_but_no_body(t):
    """HEAD runs as GET: the same status and headers, Content-Length included, and no body, so
    the next answer on the keep-alive connection is read from the right place."""
    g, peer = setup(t)
    with RawConn(g.port) as c:
        for path, status in (("/ooapi/components?componentType=test", 200), ("/ooapi/nope", 404)):
            get = c.request("GET", path)
            check(get.status == status and get.body, "GET %s: %s" % (path, get.short()))
            head = c.request("HEAD", path)
            check(head.status == status, "HEAD %s: %s" % (path, head.short()))
            check(head.header("content-length") == str(len(get.body)),
                  "HEAD %s: Content-Length %r, the GET's body has %d bytes"
                  % (path, head.header("content-length"), len(get.body)))
            check(head.content_type == get.content_type,
                  "HEAD %s: Content-Type %r, GET has %r" % (path, head.content_type, get.content_type))
            check(c.buf == b"" and not c.readable(0.3), "HEAD %s: bytes after the head: %r"
                  % (path, (c.buf + (c.sock.recv(200) if c.readable(0) else b""))[:200]))
        r = c.request("GET", "/ooapi/")
        check(r.status == 200 and r.json(), "GET after HEAD on the same connection: %s" % r.short())
    check(not peer.find("HEAD"), "a HEAD went to the supplier as HEAD: %r" % peer.find("HEAD"))


def document_through_gateway(t, content, **gateway):
    """A gateway with a TA that referenced a document (`content`) in a flow-4 report to the
    planning system: (gateway, TA peer, document id, the planning system's headers)."""
    tokens = {"alpha": "alpha-calls-okegw-0001", "planning": "planning-calls-okegw-3"}
    a = t.peer(make_components(1), name="alpha")
    tpl = t.peer([], name="planning")
    g = t.gateway(conf([("alpha", ooapi_connector(a, inbound_token=tokens["alpha"])),
                        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                                      "base_url": tpl.base_url, "inbound_token": tokens["planning"]})],
                       **gateway))
    plan = {"Authorization": "Bearer " + tokens["planning"]}
    check(g.request("GET", "/ooapi/components?componentType=test", headers=plan).status == 200,
          "catalogue")
    o = make_offering(a.catalogue[0]["componentId"])
    check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, headers=plan), "PUT offering")
    tpl.offerings[o["offeringId"]] = {"offeringId": o["offeringId"]}  # the planning system knows it
    doc_id = new_id()
    a.documents[doc_id] = content
    report = {"offeringType": "component",
              "consumers": [{"consumerKey": "nl-test-admin", "irregularities": "geen",
                             "documents": [{"documentId": doc_id, "documentType": "sessionReport",
                                            "documentName": "proces-verbaal.pdf"}]}]}
    r = g.request("PATCH", "/ooapi/offerings/" + o["offeringId"], report,
                  headers={"Authorization": "Bearer " + tokens["alpha"]})
    check(r.status == 200, "flow-4 report with a document: %s" % r.short())
    return g, a, doc_id, plan


def test_head_of_a_streamed_document(t):
    """A streamed answer (a document) to HEAD: status and headers, no chunks."""
    g, a, doc_id, plan = document_through_gateway(t, b"%PDF-1.4\n" + bytes(range(256)) * 40)
    with RawConn(g.port) as c:
        get = c.request("GET", "/ooapi/documents/" + doc_id, headers=plan)
        check(get.status == 200 and get.body == a.documents[doc_id], "GET document: %s" % get.short())
        head = c.request("HEAD", "/ooapi/documents/" + doc_id, headers=plan)
        check(head.status == 200, "HEAD document: %s" % head.short())
        check(head.content_type == "application/octet-stream", "HEAD document: %r" % head.header_list)
        check(c.buf == b"" and not c.readable(0.3), "HEAD document: bytes after the head: %r"
              % (c.buf + (c.sock.recv(200) if c.readable(0) else b""))[:200])
        r = c.request("GET", "/ooapi/documents/" + doc_id, headers=plan)
        check(r.status == 200 and r.body == a.documents[doc_id], "GET after HEAD: %s" % r.short())


def test_quoted_chunk_extension_accepted(t):
    """Chunk extensions and trailers are read and dropped, whatever RFC 9112 allows in them (a
    quoted value with ';' or an escaped quote in it, several extensions, values or not); broken
    framing still gets 400."""
    g, peer = setup(t)
    r = g.request("GET", "/ooapi/components?componentType=test")
    check(r.status == 200, "flow 0: %s" % r.short())

    def head(oid):
        return ("PUT /ooapi/offerings/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" % oid).encode()

    exts = [b';name="a;b"', b' ; a=1;b=2', b';q="say \\"hi\\" \\\\ ok"', b';bare;x=y ; z = "w"',
            b'', b';A-b.c=~tok!']
    for split in (False, True):
        o = make_offering(peer.catalogue[0]["componentId"])
        data = json.dumps(o).encode()
        step = -(-len(data) // len(exts))
        body = b"".join(b"%x%s\r\n%s\r\n" % (len(data[i:i + step]), exts[k], data[i:i + step])
                        for k, i in enumerate(range(0, len(data), step)))
        body += b'0;last="x y"\r\nX-Trailer: fine\r\n\r\n'
        msg = head(o["offeringId"]) + body + RawConn.build("GET", "/ooapi/")
        with RawConn(g.port) as c:
            if split:  # byte by byte: the reader keeps its place between reads
                for i in range(len(msg)):
                    c.send(msg[i:i + 1])
                    if i % 4 == 0:
                        time.sleep(0.001)
            else:
                c.send(msg)
            r = c.read_response()
            check_2xx(r, "PUT with chunk extensions %s" % ("byte by byte" if split else "at once"))
            r = c.read_response()
            check(r.status == 200, "the request pipelined after the chunked body: %s" % r.short())
        got = peer.find("PUT", "/offerings/" + o["offeringId"])
        check(got and got[0].json == o, "the supplier did not get the offering intact")
    for bad in (b"zz\r\nhello\r\n0\r\n\r\n", b"5;name=\"a\r\nhello\r\n0\r\n\r\n",
                b"5;a\x01b\r\nhello\r\n0\r\n\r\n", b"5\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX\r\n0\r\n\r\n",
                b";x\r\nhello\r\n0\r\n\r\n", b"5;a=(b)\r\nhello\r\n0\r\n\r\n",
                b"5 6\r\nhello\r\n0\r\n\r\n", b"5 \r\nhello\r\n0\r\n\r\n",
                b"5\r\nhello\r\n0\r\nX: \x00\r\n\r\n"):
        with RawConn(g.port) as c:
            r = c.send_until_answered(head(new_id()), [bad])
            check_problem(r, 400, "chunked body %r" % bad)
    with RawConn(g.port) as c:  # both framings at once stays refused (request smuggling)
        both = head(new_id()).replace(b"Transfer-Encoding", b"Content-Length: 5\r\nTransfer-Encoding")
        r = c.send_until_answered(both, [b"5\r\nhello\r\n0\r\n\r\n"])
        check_problem(r, 400, "Content-Length and Transfer-Encoding: chunked together")
    check(len(peer.find("PUT")) == 2, "a broken chunked body reached the supplier")


def slow_send(c, data, pieces, pause, until):
    """Sends data in pieces with a pause between them, until okegw answers or closes or the
    monotonic deadline passes. Returns the seconds it took."""
    t0 = time.monotonic()
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        if c.readable(0) or time.monotonic() > until:
            break
        try:
            c.sock.sendall(data[i:i + step])
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(pause)
    return time.monotonic() - t0


def test_reader_that_stops_is_cut_off(t):
    """send_timeout_ms: a caller that stops taking a large answer (a 16 MB document) loses its
    connection once it took nothing for that long; one that pauses shorter, however often, gets
    every byte; the gateway serves on."""
    size = 16 << 20
    content = bytes(range(256)) * (size // 256)
    g, a, doc_id, plan = document_through_gateway(t, content, send_timeout_ms=1000)
    req = RawConn.build("GET", "/ooapi/documents/" + doc_id, headers=plan)

    def connect():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little
        s.connect(("127.0.0.1", g.port))
        s.sendall(req)
        return s

    def drain(s, limit, pause=0.0, deadline=30.0):
        """Reads up to `limit` bytes (a pause after each 2 MB); (bytes read, ended by okegw)."""
        got, mark, end = 0, 0, time.monotonic() + deadline * time_scale()
        s.settimeout(5.0 * time_scale())
        while got < limit and time.monotonic() < end:
            try:
                b = s.recv(1 << 16)
            except (ConnectionResetError, socket.timeout):
                return got, True
            if not b:
                return got, True
            got += len(b)
            if pause and got - mark >= 2 << 20:
                mark = got
                time.sleep(pause)
        return got, False

    stalled = connect()
    time.sleep(0.5 + 3.0 * time_scale())  # takes nothing for longer than send_timeout_ms
    got, ended = drain(stalled, size + 4096)
    stalled.close()
    check(ended and got < size, "a reader that stopped for 3 s got %d of %d bytes, ended=%s"
          % (got, size, ended))
    check(g.wait_log(lambda r: "send_timeout_ms" in r.get("msg", ""), 3.0),
          "no log line names send_timeout_ms")
    slow = connect()
    got, ended = drain(slow, size + 4096, pause=0.4)
    slow.close()
    check(got > size, "a reader pausing 0.4 s per 2 MB got %d of %d bytes (ended=%s)"
          % (got, size, ended))
    check(g.request("GET", "/healthz").status == 200, "healthz after a stalled reader")


def test_header_deadline_408(t):
    """Headers trickling in (a byte every 0.1 s, so the idle time never runs out) are cut off
    header_timeout_ms after their first byte with 408."""
    peer = t.peer(make_components(1), name="ta")
    g = t.gateway(conf([("ta", ooapi_connector(peer))], header_timeout_ms=1000, idle_timeout_ms=30000))
    req = RawConn.build("GET", "/ooapi/", headers={"X-Pad": "p" * 400})
    with RawConn(g.port) as c:
        took = slow_send(c, req, len(req), 0.1, time.monotonic() + 6.0 * time_scale())
        check(c.readable(2.0 * time_scale()), "no answer to headers trickling for %.1f s" % took)
        r = c.read_response()
        check_problem(r, 408, "headers trickling past header_timeout_ms")
        check(0.8 <= took <= 3.0 * time_scale(), "the 408 came after %.1f s, want about 1" % took)
        check(c.closed_by_peer(2.0), "okegw kept the connection open after 408")
    # the same headers sent at once are fine
    r = g.request("GET", "/ooapi/")
    check(r.status == 200, "GET /ooapi/ afterwards: %s" % r.short())


def test_idle_keep_alive_closed_silently(t):
    """idle_timeout_ms covers a connection with no request begun: it is closed without an answer;
    once a request has begun, header_timeout_ms applies instead."""
    peer = t.peer(make_components(1), name="ta")
    g = t.gateway(conf([("ta", ooapi_connector(peer))], idle_timeout_ms=500, header_timeout_ms=1500))
    with RawConn(g.port) as c:
        check(c.request("GET", "/ooapi/").status == 200, "GET /ooapi/")
        t0 = time.monotonic()
        check(c.closed_by_peer(3.0 * time_scale()), "an idle keep-alive connection was not closed")
        took = time.monotonic() - t0
        check(c.buf == b"", "okegw answered an idle connection: %r" % c.buf[:200])
        # the idle time runs from okegw's answer; under valgrind (a time scale) the client may
        # read that answer a good part of it later
        check(0.3 / time_scale() <= took <= 2.0 * time_scale(),
              "closed after %.1f s idle, want about 0.5" % took)
    with RawConn(g.port) as c:  # a request begun within the idle time: its header deadline counts
        time.sleep(0.3)
        req = RawConn.build("GET", "/ooapi/", headers={"X-Pad": "p" * 400})
        took = slow_send(c, req, len(req), 0.1, time.monotonic() + 6.0 * time_scale())
        check(took >= 1.2, "cut off after %.1f s of a begun request, before header_timeout_ms" % took)
        r = c.read_response()
        p = check_problem(r, 408, "headers trickling past header_timeout_ms")
        check("header_timeout_ms" in p.get("detail", ""), "408 detail: %r" % p)

def test_slow_body_408_and_steady_body_accepted(t):
    """A body below body_min_rate_bytes per second (after the grace of header_timeout_ms) gets
    408; one that takes longer than the grace but keeps up the rate is accepted."""
    peer = t.peer(make_components(1), name="ta")
    g = t.gateway(conf([("ta", ooapi_connector(peer))], header_timeout_ms=1000,
                       body_min_rate_bytes=1024, idle_timeout_ms=30000, max_body_bytes=65536))
    check(g.request("GET", "/ooapi/components?componentType=test").status == 200, "flow 0")
    o = make_offering(peer.catalogue[0]["componentId"])
    o["description"][0]["value"] = "x" * 6000
    data = json.dumps(o).encode()
    head = ("PUT /ooapi/offerings/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (o["offeringId"], len(data))).encode()
    # about 200 bytes a second: cut off a little after the 1 s grace
    with RawConn(g.port) as c:
        c.send(head)
        took = slow_send(c, data, len(data) // 20, 0.1, time.monotonic() + 8.0 * time_scale())
        check(c.readable(2.0 * time_scale()), "no answer to a body trickling for %.1f s" % took)
        r = c.read_response()
        check_problem(r, 408, "a body at 200 bytes/s (minimum 1024)")
        check(1.0 <= took <= 4.0 * time_scale(), "the 408 came after %.1f s, want about 1.3" % took)
    # the same with a chunked body (okegw reads those itself)
    with RawConn(g.port) as c:
        c.send(head.replace(b"Content-Length: %d" % len(data), b"Transfer-Encoding: chunked"))
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 100]), data[i:i + 100])
                           for i in range(0, len(data), 100)) + b"0\r\n\r\n"
        took = slow_send(c, chunked, len(chunked) // 20, 0.1, time.monotonic() + 8.0 * time_scale())
        check(c.readable(2.0 * time_scale()), "no answer to a chunked body trickling for %.1f s" % took)
        r = c.read_response()
        check_problem(r, 408, "a chunked body at 200 bytes/s (minimum 1024)")
        check(1.0 <= took <= 4.0 * time_scale(), "the 408 came after %.1f s, want about 1.3" % took)
    check(not peer.find("PUT"), "the slow body reached the supplier")
    # about 4 KiB a second for about 1.6 s: longer than the grace, but above the rate
    with RawConn(g.port) as c:
        c.send(head)
        took = slow_send(c, data, 16, 0.1, time.monotonic() + 8.0 * time_scale())
        r = c.read_response()
        check_2xx(r, "a body at 4 KiB/s over %.1f s" % took)
    check(peer.find("PUT", "/offerings/" + o["offeringId"]), "the steady body did not reach the supplier")



class Tricklers:
    """n connections to okegw that each send one byte of a request header a second, from a
    thread; a connection okegw answers or closes is opened again (at most `reopen` new ones a
    round, `max_total` in all), so the flood keeps up while the test runs. Records per
    connection how it ended: the status of okegw's answer, or "closed"."""

    REQ = (b"PUT /ooapi/offerings/" + new_id().encode() + b" HTTP/1.1\r\nHost: x\r\n"
           + b"X-Slow: " + b"s" * 200)

    def __init__(self, port, n, reopen=60, max_total=4000):
        self.port, self.n, self.reopen, self.max_total = port, n, reopen, max_total
        self.socks = {}  # fd -> [socket, bytes sent, answer bytes]
        self.ended = []  # status or "closed"
        self.opened = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="tricklers")
        self.error = None

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.socks[s.fileno()] = [s, 0, b""]
        self.opened += 1

    def _end(self, fd, how):
        s = self.socks.pop(fd)[0]
        self.ended.append(how)
        s.close()

    def start(self, within):
        """Opens the n connections (paced, as a flood arrives) and starts the thread."""
        deadline = time.monotonic() + within
        while self.opened < self.n and time.monotonic() < deadline:
            for _ in range(min(50, self.n - self.opened)):
                self._open()
            time.sleep(0.01)
        self.thread.start()

    def _run(self):
        try:
            poll = select.poll()
            registered = set()
            next_byte = time.monotonic()
            while not self.stop_flag.is_set():
                for fd in list(self.socks):
                    if fd not in registered:
                        poll.register(fd, select.POLLIN)
                        registered.add(fd)
                for fd, ev in poll.poll(100):
                    if fd not in self.socks:
                        continue
                    ent = self.socks[fd]
                    try:
                        data = ent[0].recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        ent[2] += data
                        if b"\r\n" not in ent[2]:
                            continue
                    poll.unregister(fd)
                    registered.discard(fd)
                    line = ent[2].split(b"\r\n", 1)[0].split()
                    self._end(fd, int(line[1]) if len(line) > 1 and line[1].isdigit() else "closed")
                if time.monotonic() >= next_byte:
                    next_byte += 1.0
                    for fd, ent in list(self.socks.items()):
                        if ent[1] < len(self.REQ):
                            try:
                                if ent[0].send(self.REQ[ent[1]:ent[1] + 1]) == 1:
                                    ent[1] += 1
                            except (BlockingIOError, InterruptedError):
                                pass  # not connected yet: okegw has not accepted it
                            except OSError:
                                pass  # reset: poll reports it
                    room = min(self.n - len(self.socks), self.reopen, self.max_total - self.opened)
                    for _ in range(max(0, room)):
                        self._open()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = e

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)
        open_now = len(self.socks)
        for fd in list(self.socks):
            self._end(fd, "open")
        return open_now


def test_trickle_flood_known_tpl_still_served(t):
    """1,000 connections trickling a header byte a second against max_connections = 256: the
    planning system's flow-2 pushes, on a keep-alive connection and on fresh ones, are each
    answered within 1 s; the tricklers are cut off (408 at header_timeout_ms, or 503 when they
    lose their slot to a newer connection)."""
    # Under a slow wrapper (valgrind) the same on a smaller scale, with a scaled bound.
    slow_run = bool(wrapper()) or time_scale() > 1
    n, slots, rounds, reopen = (60, 16, 3, 2) if slow_run else (1000, 256, 8, 60)
    bound = 1.0 * time_scale()
    if slow_run:
        t.notes.append("scaled down under OKEGW_WRAPPER: %d connections, max_connections %d, "
                       "answers within %.0f s" % (n, slots, bound))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 600
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise AssertionError("the file limit (hard %d) is below the %d this test needs" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    tokens = {"alpha": "alpha-calls-okegw-0001", "planning": "planning-calls-okegw-3"}
    a = t.peer(make_components(2), name="alpha")
    tpl = t.peer([], name="planning")
    g = t.gateway(conf([("alpha", ooapi_connector(a, inbound_token=tokens["alpha"])),
                        ("planning", {"plugin": "ooapi", "role": "tpl", "phase": "live",
                                      "base_url": tpl.base_url, "inbound_token": tokens["planning"]})],
                       max_connections=slots, header_timeout_ms=3000, idle_timeout_ms=30000))
    plan = {"Authorization": "Bearer " + tokens["planning"], "Content-Type": "application/json"}
    r = g.request("GET", "/ooapi/components?componentType=test", headers=plan)
    check(r.status == 200, "catalogue: %s" % r.short())
    comp = a.catalogue[0]["componentId"]
    keep = RawConn(g.port, timeout=5.0)  # the planning system's pooled connection
    t.cleanups.append(keep.close)
    o = make_offering(comp)
    check_2xx(keep.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, plan),
              "first push on the keep-alive connection")

    flood = Tricklers(g.port, n, reopen=reopen)
    t.cleanups.append(lambda: flood.stop_flag.is_set() or flood.stop())
    flood.start(within=3.0)
    time.sleep(1.5)  # every slot taken, the flood renewing itself
    slow, worst = [], 0.0
    for i in range(rounds):
        for how in ("keep-alive", "fresh"):
            o = make_offering(comp)
            t0 = time.monotonic()
            if how == "keep-alive":
                r = keep.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, plan)
            else:
                r = request(g.port, "PUT", "/ooapi/offerings/" + o["offeringId"], o, plan, timeout=5.0)
            took = time.monotonic() - t0
            check(200 <= r.status < 300, "push %d (%s connection) during the flood: %s" % (i, how, r.short()))
            worst = max(worst, took)
            if took > bound:
                slow.append("%d %s %.2fs" % (i, how, took))
        time.sleep(0.2)
    check(not slow, "pushes answered later than %.0f s during the flood: %s" % (bound, ", ".join(slow)))
    pushes = 1 + 2 * rounds
    check(len(a.find("PUT", prefix="/offerings/")) == pushes, "the supplier got %d of %d pushes"
          % (len(a.find("PUT", prefix="/offerings/")), pushes))
    # keep trickling past header_timeout_ms: the survivors must be cut off as well
    time.sleep(3.5)
    still_open = flood.stop()
    check(flood.error is None, "trickler thread failed: %r" % flood.error)
    ended = flood.ended
    n408 = ended.count(408)
    n503 = ended.count(503)
    other = [x for x in ended if x not in (408, 503, "closed", "open")]
    check(not other, "tricklers got answers other than 408/503: %r" % sorted(set(map(str, other))))
    check(n408 > 0, "no trickler got 408 at header_timeout_ms (ended: %d 503, %d closed)"
          % (n503, ended.count("closed")))
    check(flood.opened >= n, "only %d trickling connections were opened" % flood.opened)
    t.notes.append("slowest push %.3f s; %d trickling connections: %d got 408, %d got 503, %d closed, "
                   "%d still open at the end" % (worst, flood.opened, n408, n503, ended.count("closed"),
                                                 still_open))
    r = g.request("GET", "/ooapi/components?componentType=test", headers=plan)
    check(r.status == 200, "catalogue after the flood: %s" % r.short())


if __name__ == "__main__":
    main(globals())
