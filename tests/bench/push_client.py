#!/usr/bin/env python3
"""Send exactly N identical requests with a body to 127.0.0.1:PORT over ONE keep-alive connection.

    push_client.py PORT N METHOD PATH BODY_FILE [-H 'Name: value']... [--timeout S]

Used by bench_outbox.sh for the callgrind figure (flow-3 result PATCHes with the
TA's bearer token). Exits 1 (naming the request) when an answer is not 2xx or
the connection breaks, so a count of N means N requests that went all the way
through. Prints how many answers were 202 (accepted, not yet delivered): for a
durable push that means the delivery did not end within delivery_wait_ms.
Standard library only.
"""
import argparse
import http.client
import sys
import time


def main(argv):
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("method")
    ap.add_argument("path")
    ap.add_argument("body_file")
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv[1:])
    with open(a.body_file, "rb") as f:
        body = f.read()
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Content-Length": str(len(body))}
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
        if not 200 <= r.status < 300:
            sys.stderr.write("request %d/%d: HTTP %d: %r\n" % (i + 1, a.n, r.status, data[:300]))
            return 1
        accepted += r.status == 202
        if r.will_close:
            # the server closed a keep-alive connection: still counts, but say so
            sys.stderr.write("request %d/%d: server closed the connection; reconnecting\n"
                             % (i + 1, a.n))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    conn.close()
    print("%d %s %s: all 2xx (%d of them 202) in %.2f s"
          % (a.n, a.method, a.path, accepted, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
