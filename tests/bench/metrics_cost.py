#!/usr/bin/env python3
"""What /metrics costs per request: okegw under `valgrind --tool=callgrind`, once with WARM
requests and once with WARM + N, each request a flow-0 read of one test (routed to its
supplier) followed by a flow-2 PUT of a new zitting (stored, pushed through the outbox); a
scrape of /metrics at the end of both runs. The difference of the two runs is what N requests
cost: the instructions of the whole process (Ir) and the inclusive instructions of the
instrumentation functions (okegw_metrics_* and okegw_hist_observe_atomic, not the scrape).

    python3 tests/bench/metrics_cost.py [--okegw build/okegw] [-n 200] [--warm 20]

Only 127.0.0.1 is contacted. Not part of ctest (a run takes about a minute)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from okegwtest import Okegw, Peer, conf, make_components, make_offering, ooapi_connector, request  # noqa: E402

# the instrumentation points; okegw_metrics_render/serve (the scrape) and _new/_connector (start)
# are left out
POINTS = ("okegw_metrics_request", "okegw_metrics_exchange", "okegw_metrics_peer_request",
          "okegw_metrics_delivery_attempt", "okegw_metrics_violation",
          "okegw_metrics_mapping_error", "okegw_metrics_token_refresh",
          "okegw_hist_observe_atomic")


def run(binary, workdir, n):
    peer = Peer(make_components(1), name="ta")
    os.environ["OKEGW_WRAPPER"] = ("valgrind --tool=callgrind --callgrind-out-file=%s/cg.out "
                                   "--log-file=%s/valgrind.log" % (workdir, workdir))
    os.environ["OKEGW_TIME_SCALE"] = "30"
    g = Okegw(binary, conf([("ta", ooapi_connector(peer, timeout_ms=60000))],
                           admin_listen="127.0.0.1:0", log_level="info"), workdir,
              start_timeout=60)
    try:
        g.start()
        r = g.request("GET", "/ooapi/components?componentType=test", timeout=60)
        assert r.status == 200, r.short()
        cid = peer.catalogue[0]["componentId"]
        for _ in range(n):
            r = g.request("GET", "/ooapi/components/" + cid, timeout=60)
            assert r.status == 200, r.short()
            o = make_offering(cid)
            r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o, timeout=60)
            assert r.status in (200, 201), r.short()
        r = request(g.admin_port, "GET", "/metrics", timeout=60)
        assert r.status == 200, r.short()
    finally:
        g.stop(timeout=60)
        peer.stop()
    return annotate(os.path.join(workdir, "cg.out"))


def annotate(path):
    """(total Ir, {function: inclusive Ir}) from callgrind_annotate --inclusive=yes."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    total = None
    incl = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\S*PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(?:\S+:)?(\w+)\b", line)
        if m and m.group(2) in POINTS:
            incl[m.group(2)] = incl.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    if total is None:
        raise SystemExit("no PROGRAM TOTALS in callgrind_annotate's output of " + path)
    return total, incl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--okegw", default=os.path.join(HERE, "..", "..", "build", "okegw"))
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    for tool in ("valgrind", "callgrind_annotate"):
        if not shutil.which(tool):
            raise SystemExit("%s not found (apt-get install valgrind)" % tool)
    tmp = tempfile.mkdtemp(prefix="okegw-metrics-cost-")
    try:
        t1, m1 = run(os.path.abspath(a.okegw), os.path.join(tmp, "warm"), a.warm)
        t2, m2 = run(os.path.abspath(a.okegw), os.path.join(tmp, "more"), a.warm + a.n)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    n = a.n
    per_total = (t2 - t1) / n
    per_metrics = sum(m2.get(f, 0) - m1.get(f, 0) for f in POINTS) / n
    print("%d requests (flow-0 read + flow-2 PUT each), the difference of %d and %d:"
          % (n, a.warm + a.n, a.warm))
    print("  whole process      %12.0f Ir per request" % per_total)
    print("  metrics functions  %12.0f Ir per request (%.3f%%)"
          % (per_metrics, 100.0 * per_metrics / per_total if per_total else 0))
    for f in POINTS:
        d = (m2.get(f, 0) - m1.get(f, 0)) / n
        if d:
            print("    %-32s %8.0f" % (f, d))


if __name__ == "__main__":
    main()
