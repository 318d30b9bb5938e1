#!/usr/bin/env python3
"""Send exactly N identical GETs to 127.0.0.1:PORT over ONE keep-alive connection.

    read_client.py PORT N PATH [-H 'Name: value']... [--items K] [--timeout S]

Used by bench_read.sh for the callgrind figures. Every answer must be 200 with a
JSON body (with --items K: a page whose `items` holds exactly K entries, e.g. the
two suppliers' tests of a merged catalogue); exits 1 naming the request
otherwise, or when the connection breaks, so a count of N means N reads that
went all the way through. Standard library only.
"""
import argparse
import http.client
import json
import sys
import time


def main(argv):
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("path")
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv[1:])
    headers = {"Accept": "application/json"}
    for h in a.headers:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    t0 = time.monotonic()
    for i in range(a.n):
        try:
            conn.request("GET", a.path, None, headers)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            sys.stderr.write("request %d/%d: %s: %s\n" % (i + 1, a.n, type(e).__name__, e))
            return 1
        if r.status != 200:
            sys.stderr.write("request %d/%d: HTTP %d: %r\n" % (i + 1, a.n, r.status, data[:300]))
            return 1
        try:
            doc = json.loads(data)
        except ValueError as e:
            sys.stderr.write("request %d/%d: not JSON (%s): %r\n" % (i + 1, a.n, e, data[:300]))
            return 1
        if a.items is not None and len(doc.get("items", [])) != a.items:
            sys.stderr.write("request %d/%d: want %d items, got %r\n"
                             % (i + 1, a.n, a.items, data[:300]))
            return 1
        if r.will_close:
            # the server closed a keep-alive connection: still counts, but say so
            sys.stderr.write("request %d/%d: server closed the connection; reconnecting\n"
                             % (i + 1, a.n))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    conn.close()
    print("%d GET %s: all 200 in %.2f s" % (a.n, a.path, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
