#!/usr/bin/env python3
"""Send exactly N identical requests to 127.0.0.1:PORT over ONE keep-alive connection.

    keepalive_client.py PORT N METHOD PATH [--body FILE] [-H 'Name: value']...
                        [--status 2xx|200] [--json] [--items K] [--timeout S]

Used by the benchmarks for their callgrind figures: bench_flow2.sh (deelname
PUTs), bench_outbox.sh (flow-3 result PATCHes with the TA's token) and
bench_read.sh (GETs; --json: each answer JSON; --items K: a JSON page whose
`items` holds exactly K entries). Exits 1 (naming the request) when an answer is not as
wanted (--status: any 2xx, the default, or exactly 200) or the connection
breaks, so a count of N means N requests that went all the way through.
Prints how many answers were 202 (accepted, not yet delivered): for a durable
push that means the delivery did not end within delivery_wait_ms. Standard
library only.
"""
import argparse
import http.client
import json
import sys
import time


def check(a, r, data):
    """None when the answer is as wanted, else why not."""
    if (r.status != 200) if a.status == "200" else not 200 <= r.status < 300:
        return "HTTP %d: %r" % (r.status, data[:300])
    if a.json or a.items is not None:
        try:
            doc = json.loads(data)
        except ValueError as e:
            return "not JSON (%s): %r" % (e, data[:300])
        if a.items is not None and len(doc.get("items", [])) != a.items:
            return "want %d items, got %r" % (a.items, data[:300])
    return None


def main(argv):
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("method")
    ap.add_argument("path")
    ap.add_argument("--body")
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--status", choices=("2xx", "200"), default="2xx")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv[1:])
    body = None
    headers = {"Accept": "application/json"}
    if a.body:
        with open(a.body, "rb") as f:
            body = f.read()
        headers.update({"Content-Type": "application/json", "Content-Length": str(len(body))})
    for h in a.headers:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    accepted = 0
    t0 = time.monotonic()
    for i in range(a.n):
        try:
            conn.request(a.method, a.path, body, headers)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            sys.stderr.write("request %d/%d: %s: %s\n" % (i + 1, a.n, type(e).__name__, e))
            return 1
        why = check(a, r, data)
        if why:
            sys.stderr.write("request %d/%d: %s\n" % (i + 1, a.n, why))
            return 1
        accepted += r.status == 202
        if r.will_close:
            # the server closed a keep-alive connection: still counts, but say so
            sys.stderr.write("request %d/%d: server closed the connection; reconnecting\n"
                             % (i + 1, a.n))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    conn.close()
    print("%d %s %s: all %s (%d of them 202) in %.2f s"
          % (a.n, a.method, a.path, a.status, accepted, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
