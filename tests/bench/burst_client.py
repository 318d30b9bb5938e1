#!/usr/bin/env python3
"""Open N connections to 127.0.0.1:PORT at once, one request on each, then close them.

    burst_client.py PORT N PATH [-H 'Name: value']... [--hold S] [--timeout S]

Used by bench_memory.sh: what okegw's memory does during and after a burst of
connections. First all N are connected (non-blocking); then each sends its
request `GET PATH` (`Connection: close`) but the final CRLF, so the server holds
N connections with a request begun; the client prints "holding N connections"
and waits --hold seconds (the caller reads the server's memory then); then it
sends the final CRLF on each, reads each answer to the end and closes. Prints
the statuses seen; exits 1 when not every connection got a 2xx answer.
Standard library only.
"""
import argparse
import collections
import errno
import selectors
import socket
import sys
import time


def main(argv):
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("path")
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--hold", type=float, default=0.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv[1:])
    head = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n%s"
            "Connection: close\r\n" % (a.path, a.port, "".join(h + "\r\n" for h in a.headers)))
    head = head.encode()
    sel = selectors.DefaultSelector()
    statuses = collections.Counter()
    t0 = time.monotonic()

    def fail(s, what):
        statuses[what] += 1
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass  # not registered
        s.close()

    # 1. connect all
    for _ in range(a.n):
        s = socket.socket()
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", a.port))
        if rc not in (0, errno.EINPROGRESS):
            statuses["connect: %s" % errno.errorcode.get(rc, rc)] += 1
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE)
    connected = []
    while len(sel.get_map()) and time.monotonic() - t0 < a.timeout:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(s, "connect: %s" % errno.errorcode.get(err, err))
                continue
            sel.unregister(s)
            connected.append(s)
    for key in list(sel.get_map().values()):
        fail(key.fileobj, "connect: timeout")
    t_connected = time.monotonic()

    # 2. each sends its request but the final CRLF; hold
    for s in list(connected):
        try:
            s.sendall(head)  # small: fits the socket buffer
        except OSError as e:
            connected.remove(s)
            fail(s, "send: %s" % e.__class__.__name__)
    print("holding %d connections" % len(connected), flush=True)
    time.sleep(a.hold)

    # 3. finish the requests, read the answers to the end, close
    bufs = {}
    for s in connected:
        try:
            s.sendall(b"\r\n")
        except OSError as e:
            fail(s, "send: %s" % e.__class__.__name__)
            continue
        bufs[s] = b""
        sel.register(s, selectors.EVENT_READ)
    while len(sel.get_map()) and time.monotonic() - t0 < a.timeout + a.hold:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError as e:
                fail(s, "recv: %s" % e.__class__.__name__)
                continue
            if data:
                bufs[s] += data
                continue
            line = bufs[s].split(b"\r\n", 1)[0].split()
            if len(line) >= 2 and line[0].startswith(b"HTTP/"):
                statuses[line[1].decode()] += 1
            elif bufs[s]:
                statuses["bad answer"] += 1
            else:
                statuses["closed without answer"] += 1
            sel.unregister(s)
            s.close()
    for key in list(sel.get_map().values()):
        fail(key.fileobj, "timeout")
    ok = sum(v for k, v in statuses.items() if len(k) == 3 and k.startswith("2"))
    print("%d connections (all connected in %.2f s, held %.1f s), answers: %s; done in %.2f s"
          % (a.n, t_connected - t0, a.hold,
             ", ".join("%s %d" % kv for kv in sorted(statuses.items())), time.monotonic() - t0))
    return 0 if ok == a.n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
