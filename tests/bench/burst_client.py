#!/usr/bin/env python3
"""Open N connections to 127.0.0.1:PORT at once, one request on each, then close them.

    burst_client.py PORT N PATH [-H 'Name: value']... [--timeout S]

Used by bench_memory.sh: what okegw's memory does after a burst of connections.
All N are connected (non-blocking) before any answer is read, so the server
holds up to N of them at the same time. Each sends `GET PATH` with
`Connection: close` and reads its answer to the end; prints the statuses seen.
Exits 1 when not every connection got a 2xx answer within the timeout.
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
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv[1:])
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n%s"
           "Connection: close\r\n\r\n" % (a.path, a.port, "".join(h + "\r\n" for h in a.headers)))
    req = req.encode()
    sel = selectors.DefaultSelector()
    bufs = {}
    statuses = collections.Counter()
    t0 = time.monotonic()
    for _ in range(a.n):
        s = socket.socket()
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", a.port))
        if rc not in (0, errno.EINPROGRESS):
            statuses["connect: %s" % errno.errorcode.get(rc, rc)] += 1
            s.close()
            continue
        bufs[s] = b""
        sel.register(s, selectors.EVENT_WRITE)
    connected = time.monotonic()
    open_ = len(bufs)
    while open_ and time.monotonic() - t0 < a.timeout:
        for key, ev in sel.select(timeout=1.0):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    statuses["connect: %s" % errno.errorcode.get(err, err)] += 1
                    sel.unregister(s)
                    s.close()
                    open_ -= 1
                    continue
                s.sendall(req)  # small: fits the socket buffer
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except OSError as e:
                data = b""
                statuses["recv: %s" % e.__class__.__name__] += 1
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
            open_ -= 1
    for key in list(sel.get_map().values()):
        statuses["timeout"] += 1
        key.fileobj.close()
    ok = sum(v for k, v in statuses.items() if k.startswith("2") and len(k) == 3)
    print("%d connections (all opened in %.2f s), answers: %s; done in %.2f s"
          % (a.n, connected - t0, ", ".join("%s %d" % kv for kv in sorted(statuses.items())),
             time.monotonic() - t0))
    return 0 if ok == a.n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
