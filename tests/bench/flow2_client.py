#!/usr/bin/env python3
"""Send exactly N identical PUTs to 127.0.0.1:PORT over ONE keep-alive connection.

    flow2_client.py PORT N PATH BODY_FILE [TIMEOUT_S]

Used by bench_flow2.sh for the callgrind figure. Exits 1 (naming the request)
when an answer is not 2xx or the connection breaks, so a count of N means N
requests that went all the way through. Standard library only.
"""
import http.client
import sys
import time


def main(argv):
    if len(argv) not in (5, 6):
        sys.stderr.write(__doc__)
        return 2
    port, n, path, body_file = int(argv[1]), int(argv[2]), argv[3], argv[4]
    timeout = float(argv[5]) if len(argv) == 6 else 60.0
    with open(body_file, "rb") as f:
        body = f.read()
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Content-Length": str(len(body))}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    for i in range(n):
        try:
            conn.request("PUT", path, body, headers)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            sys.stderr.write("request %d/%d: %s: %s\n" % (i + 1, n, type(e).__name__, e))
            return 1
        if not 200 <= r.status < 300:
            sys.stderr.write("request %d/%d: HTTP %d: %r\n" % (i + 1, n, r.status, data[:300]))
            return 1
        if r.will_close:
            # the server closed a keep-alive connection: still counts, but say so
            sys.stderr.write("request %d/%d: server closed the connection; reconnecting\n"
                             % (i + 1, n))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.close()
    print("%d PUT %s: all 2xx in %.2f s" % (n, path, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
