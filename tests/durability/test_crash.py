#!/usr/bin/env python3
"""Crash durability of the outbox: a TA pushes a burst of flow-3 results (PATCH of its
deelnames) through okegw to the planning system (TPL) from several keep-alive connections;
okegw is killed with SIGKILL in the middle of the burst and started again on the same
configuration and store; the burst then finishes. Every push okegw acknowledged (2xx) must
reach the TPL, and per deelname in the order the TA sent them (a repeat of the last one
after the crash is allowed, a reorder is not); in the end nothing is pending, dead or failed.

By default the TPL connector has delivery_wait_ms = 0 (every acknowledgement is a 202 given
as soon as the push is durable) and the TPL takes 5 ms per result, so at the kill the outbox
holds acknowledged pushes that were not delivered yet. `--wait-ms default --tpl-delay-ms 0`
runs the same with okegw's own delivery_wait_ms (the sender mostly gets the TPL's 200).

With --instances 2 (and OKEGW_TEST_PG=1) two okegw instances share one PostgreSQL and the pushes
are spread over both, as a load balancer would (each push to the next instance in turn, so the
pushes of one deelname go through both). One instance is killed with SIGKILL in the middle and
stays down; the load balancer sends everything to the other, which takes the dead one's
resources over once their leases expired (store_lease_s).

Every duplicate the TPL gets is explained by its delivery id (the TPL records the X-Request-Id
okegw sends, the store maps it to the delivery): the same delivery twice (sent before the kill,
its end not recorded, sent again after it), or two deliveries of one push (its sender got no
answer at the kill and sent it again). Anything else fails the test.

    python3 tests/durability/test_crash.py --okegw build/okegw --workdir /tmp/okegw-dur \
        [--sync full|normal] [--pushes 10000] [--associations 200] [--threads 8] [--seed N] \
        [--wait-ms MS|default] [--tpl-delay-ms MS] [--no-kill] [--drain-timeout S] \
        [--instances 1|2] [--lease-s S] [-v]
"""
import argparse
import collections
import copy
import http.client
import http.server
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from okegwtest import (QuietHandler, check, check_2xx, conf, fixture, free_port,  # noqa: E402
                       make_association, make_components, make_offering, ooapi_connector,
                       pg_store, run_tests, time_scale, wrapper)

TOKENS = {"planning": "planning-calls-okegw-crash-1", "alpha": "alpha-calls-okegw-crash-22"}
PER_OFFERING = 25  # deelnames per zitting
BURST_LIMIT_S = 150  # the burst itself; the drain has its own deadline (ctest TIMEOUT 300)
MARK_RE = re.compile(r"^crash-push ([0-9a-f-]{36}) (\d+)$")


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def options(argv):
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--sync", choices=("full", "normal"), default="full",
                    help="[gateway] store_sync of the gateway under test")
    ap.add_argument("--pushes", type=int, default=10000,
                    help="flow-3 pushes in the burst (at least)")
    ap.add_argument("--associations", type=int, default=200, help="deelnames pushed to")
    ap.add_argument("--threads", type=int, default=8, help="sending threads (one connection each)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the kill moment")
    ap.add_argument("--wait-ms", default="0",
                    help="delivery_wait_ms of the TPL connector, or 'default' for okegw's own")
    ap.add_argument("--tpl-delay-ms", type=float, default=5.0,
                    help="the TPL answers each PATCH this much later")
    ap.add_argument("--no-kill", action="store_true", help="the same burst without the kill")
    ap.add_argument("--drain-timeout", type=float, default=120.0,
                    help="seconds the TPL may take to get every acknowledged push")
    ap.add_argument("--instances", type=int, choices=(1, 2), default=1,
                    help="okegw instances on one store (2 needs OKEGW_TEST_PG=1)")
    ap.add_argument("--lease-s", type=int, default=15,
                    help="store_lease_s on PostgreSQL (connectors' timeout_ms is 5 s)")
    return ap.parse_known_args(argv)


OPTS = options([])[0]


def say(msg):
    print("# " + msg, flush=True)


# --------------------------------------------------------------------------
# The flow-3 body: an OKE example with a marker in result.comment

BASE_RESULT = fixture(os.path.join("examples", "flow3_patch_association_attendance_request.json"))


def result_body(aid, seq):
    b = copy.deepcopy(BASE_RESULT)
    b["result"]["comment"] = "crash-push %s %d" % (aid, seq)
    return b


# --------------------------------------------------------------------------
# The planning system (TPL): records every flow-3 PATCH it gets

class _TplHandler(QuietHandler):
    server_version = "RecordingTPL/1.0"

    def _answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()

    def _dispatch(self):
        rec = self.server.recorder
        body = self._read_body()
        key = rec.begin(self.command, self.path, body, self.headers.get("X-Request-Id"))
        try:
            if rec.delay:
                time.sleep(rec.delay)
            self._answer(200 if key else 404)
        finally:
            rec.end(key)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _dispatch


class _TplServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class RecordingTpl:
    def __init__(self, delay=0.0):
        self.lock = threading.Lock()
        self.arrivals = collections.defaultdict(list)  # aid -> [seq, ...] in arrival order
        self.count = collections.Counter()             # (aid, seq) -> times received
        self.first = {}                                # (aid, seq) -> time of first receipt
        self.copies = collections.defaultdict(list)    # (aid, seq) -> [(time, X-Request-Id), ...]
        self.total = 0
        self.strange = []        # requests that are not a marked flow-3 PATCH
        self.changed = []        # marked bodies that differ from what was sent
        self.busy = collections.Counter()  # aid -> requests being handled
        self.overlaps = []       # (time, aid): two deliveries of one deelname at once
        self.delay = delay
        self.server = _TplServer(("127.0.0.1", 0), _TplHandler)
        self.server.recorder = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True, name="tpl")
        self.thread.start()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/ooapi" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def begin(self, method, path, body, rid=None):
        now = time.monotonic()
        if method == "GET" and path.rstrip("/") == "/ooapi":
            return None  # okegw's version check of its peer (GET /, R31): not a push
        m = re.fullmatch(r"/ooapi/associations/([0-9a-f-]{36})", path)
        try:
            js = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            js = None
        comment = js.get("result", {}).get("comment") if isinstance(js, dict) and isinstance(
            js.get("result"), dict) else None
        mk = MARK_RE.match(comment) if isinstance(comment, str) else None
        with self.lock:
            if method != "PATCH" or not m or not mk or mk.group(1) != m.group(1):
                self.strange.append("%s %s %r" % (method, path, body[:200]))
                return None
            aid, seq = mk.group(1), int(mk.group(2))
            if js != result_body(aid, seq):
                self.changed.append((aid, seq, js))
            key = (aid, seq)
            self.total += 1
            self.count[key] += 1
            self.first.setdefault(key, now)
            self.copies[key].append((now, rid))
            self.arrivals[aid].append(seq)
            self.busy[aid] += 1
            if self.busy[aid] > 1:
                self.overlaps.append((now, aid))
            return key

    def end(self, key):
        if key:
            with self.lock:
                self.busy[key[0]] -= 1

    def have_all(self, keys):
        with self.lock:
            return [k for k in keys if k not in self.count]


# --------------------------------------------------------------------------
# The burst: threads on keep-alive connections, each owning a set of deelnames

class Burst:
    def __init__(self, aids, per_assoc, threads):
        self.lock = threading.Lock()
        self.up = threading.Event()   # the gateway accepts connections
        self.up.set()
        self.ports = []          # the instances the load balancer sends to, in turn
        self.per_assoc = per_assoc
        self.parts = [aids[i::threads] for i in range(threads)]
        self.acked = {}          # (aid, seq) -> (status, monotonic time)
        self.sent = 0            # requests written (resends included)
        self.unanswered = 0      # requests that got no answer (connection broke or refused)
        self.retried_5xx = 0     # answered 5xx/429: sent again
        self.status = collections.Counter()
        self.sends = collections.Counter()  # (aid, seq) -> times sent
        self.errors = []         # a 4xx or another final refusal
        self.in_flight = set()   # (aid, seq) being sent right now
        self.abort = False

    @property
    def total(self):
        return sum(len(p) for p in self.parts) * self.per_assoc

    def n_acked(self):
        with self.lock:
            return len(self.acked)

    def run_thread(self, idx, part):
        conns = {}  # port -> keep-alive connection
        try:
            turn = idx
            for seq in range(1, self.per_assoc + 1):
                for aid in part:
                    turn += 1
                    self._push(conns, turn, aid, seq)
                    if self.abort:
                        return
        finally:
            for conn in conns.values():
                conn.close()

    def _push(self, conns, turn, aid, seq):
        path = "/ooapi/associations/" + aid
        data = json.dumps(result_body(aid, seq)).encode("utf-8")
        headers = dict(auth("alpha"))
        headers["Content-Type"] = "application/json"
        key = (aid, seq)
        while not self.abort:
            self.up.wait(60)
            with self.lock:  # the load balancer: the next instance in turn
                port = self.ports[turn % len(self.ports)]
                self.sent += 1
                self.sends[key] += 1
                self.in_flight.add(key)
            conn = conns.get(port)
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("PATCH", path, body=data, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.will_close:
                    conns.pop(port).close()
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.in_flight.discard(key)
                    self.unanswered += 1
                conns.pop(port).close()
                turn += 1
                time.sleep(0.02)
                continue  # that instance is down: send it again (to the next one)
            with self.lock:
                self.in_flight.discard(key)
                self.status[status] += 1
                if 200 <= status < 300:
                    self.acked[key] = (status, time.monotonic())
                    return
                if status >= 500 or status == 429:
                    self.retried_5xx += 1
                else:
                    self.errors.append("%s seq %d: %d" % (aid, seq, status))
                    return
            time.sleep(0.05)


# --------------------------------------------------------------------------

def cli_count(t, conf_path, state):
    """okegw deliveries list --state STATE --json: (count, JSON lines)."""
    args = ["deliveries", "list", "-c", conf_path, "--state", state, "--limit", "1000000", "--json"]
    p = subprocess.run(wrapper() + [t.binary] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60 * time_scale())
    check(p.returncode == 0, "okegw deliveries list --state %s: rc %d, %s"
          % (state, p.returncode, p.stderr.decode("utf-8", "replace")))
    lines = [x for x in p.stdout.decode("utf-8").splitlines() if x.strip()]
    return len(lines), lines


def plan(g, ta, n_assoc):
    """Flow 2: the TPL plans zittingen at the TA with n_assoc deelnames; returns their ids."""
    r = g.request("GET", "/ooapi/components?componentType=test", headers=auth("planning"))
    check(r.status == 200, "catalogue: %s" % r.short())
    aids = []
    for i in range(0, n_assoc, PER_OFFERING):
        o = make_offering(ta.catalogue[0]["componentId"])
        check_2xx(g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o,
                            headers=auth("planning")), "flow-2 PUT offering")
        for _ in range(min(PER_OFFERING, n_assoc - i)):
            a = make_association(o["offeringId"])
            r = g.request("PUT", "/ooapi/associations/" + a["associationId"], a,
                          headers=auth("planning"))
            check(r.status in (200, 201), "flow-2 PUT association: %s" % r.short())
            aids.append(a["associationId"])
    missing = [a for a in aids if a not in ta.associations]
    check(not missing, "the TA did not get %d deelnames, e.g. %s" % (len(missing), missing[:3]))
    return aids


def delivery_ids(t, conf_path):
    """X-Request-Id -> delivery id of every delivery in the store (okegw deliveries list)."""
    args = ["deliveries", "list", "-c", conf_path, "--limit", "10000000", "--json"]
    p = subprocess.run(wrapper() + [t.binary] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120 * time_scale())
    check(p.returncode == 0, "okegw deliveries list: rc %d, %s"
          % (p.returncode, p.stderr.decode("utf-8", "replace")))
    rows = [json.loads(x) for x in p.stdout.decode("utf-8").splitlines() if x.strip()]
    return {d["requestId"]: d["id"] for d in rows if d.get("requestId")}


def explain_duplicates(dups, copies, sends, ids, kill_t):
    """Sorts each duplicated push by why it came twice: (same, resent, unexplained), lists of
    (key, delivery ids in arrival order)."""
    same, resent, unexplained = [], [], []
    for key in sorted(dups):
        seen = copies[key]
        dids = [ids.get(rid) for _, rid in seen]
        if None in dids:
            unexplained.append((key, dids))
        elif len(set(dids)) > 1 and sends[key] > 1:
            resent.append((key, dids))  # two deliveries: the TA sent the push again
        elif len(set(dids)) == 1 and kill_t is not None and seen[0][0] < kill_t < seen[-1][0]:
            same.append((key, dids))  # one delivery, sent before the kill and again after it
        else:
            unexplained.append((key, dids))
    return same, resent, unexplained


def test_kill_during_flow3_burst(t):
    o = OPTS
    seed = o.seed if o.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    pg = bool(os.environ.get("OKEGW_TEST_PG"))
    check(o.instances == 1 or pg, "--instances 2 needs OKEGW_TEST_PG=1 (one PostgreSQL for both)")
    ta = t.peer(make_components(1), name="alpha")
    tpl = RecordingTpl(o.tpl_delay_ms / 1000.0)
    t.cleanups.append(tpl.stop)
    # on PostgreSQL a killed instance's resources wait for its leases to expire: a short lease,
    # and peer timeouts that fit in it (store_lease_s >= timeout_ms + 10 s)
    planning = {"plugin": "ooapi", "role": "tpl", "phase": "live", "base_url": tpl.base_url,
                "inbound_token": TOKENS["planning"], "timeout_ms": 5000 if pg else 10000}
    if o.wait_ms != "default":
        planning["delivery_wait_ms"] = int(o.wait_ms)
    extra = {"store_lease_s": o.lease_s} if pg else {}

    def gw_conf(store="okegw.db"):
        return conf([("planning", planning),
                     ("alpha", ooapi_connector(ta, inbound_token=TOKENS["alpha"]))],
                    listen="127.0.0.1:%d" % free_port(), store_sync=o.sync, store=store, **extra)

    g = t.gateway(gw_conf(), start_timeout=30)
    gws = [g]
    if o.instances == 2:  # the second on the first one's database
        gws.append(t.gateway(gw_conf(store=pg_store(g.workdir)), subdir="b", start_timeout=30))
    aids = plan(g, ta, o.associations)

    # one push first: the marker member passes validation and reaches the TPL unchanged
    probe = result_body(aids[0], 0)
    r = g.request("PATCH", "/ooapi/associations/" + aids[0], probe, headers=auth("alpha"))
    check(r.status in (200, 202), "a flow-3 PATCH with a comment: %s" % r.short())
    end = time.monotonic() + 10
    while (aids[0], 0) not in tpl.count and time.monotonic() < end:
        time.sleep(0.02)
    check(tpl.count.get((aids[0], 0)) == 1 and not tpl.changed and not tpl.strange,
          "the TPL did not get the probe unchanged: changed %r, other %r"
          % (tpl.changed, tpl.strange))

    per = -(-o.pushes // len(aids))
    burst = Burst(aids, per, o.threads)
    burst.ports = [x.port for x in gws]
    kill_frac = rnd.uniform(0.4, 0.6)
    kill_at = int(burst.total * kill_frac)
    say("%s, %d instance(s); sync=%s seed=%d delivery_wait_ms=%s tpl delay %g ms: %d deelnames x "
        "%d pushes = %d, %d threads; %s"
        % ("PostgreSQL" if pg else "SQLite", o.instances, o.sync, seed, o.wait_ms, o.tpl_delay_ms,
           len(aids), per, burst.total, o.threads,
           "no kill" if o.no_kill else "kill after %d acknowledged (%.0f%%)"
           % (kill_at, kill_frac * 100)))

    threads = [threading.Thread(target=burst.run_thread, args=(i, p), daemon=True,
                                name="push-%d" % i) for i, p in enumerate(burst.parts)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    kill_t = restart_t = None
    acked_at_kill, flying_at_kill, unreceived_at_kill = {}, 0, []
    try:
        while not o.no_kill and burst.n_acked() < kill_at:
            check(any(th.is_alive() for th in threads),
                  "the burst ended before the kill: %d acknowledged, errors %r"
                  % (burst.n_acked(), burst.errors[:5]))
            check(time.monotonic() - t0 < BURST_LIMIT_S, "the burst is too slow: %d acknowledged "
                  "in %d s" % (burst.n_acked(), BURST_LIMIT_S))
            time.sleep(0.002)
        if not o.no_kill:
            victim = gws[rnd.randrange(len(gws))]
            if len(gws) == 1:
                burst.up.clear()
            with burst.lock:
                acked_at_kill = dict(burst.acked)
                flying_at_kill = len(burst.in_flight)
            with tpl.lock:
                unreceived_at_kill = [k for k in acked_at_kill if k not in tpl.count]
            victim.kill()
            kill_t = time.monotonic()
            if len(gws) == 1:
                g.start()
                restart_t = time.monotonic()
                burst.ports = [g.port]
                burst.up.set()
                say("killed %.2f s into the burst with %d acknowledged, %d requests in flight, "
                    "%d acknowledged not yet at the TPL; listening again %.2f s later"
                    % (kill_t - t0, len(acked_at_kill), flying_at_kill, len(unreceived_at_kill),
                       restart_t - kill_t))
            else:
                # it stays down; the load balancer notices and sends everything to the other
                time.sleep(0.2)
                with burst.lock:
                    burst.ports = [x.port for x in gws if x is not victim]
                g = [x for x in gws if x is not victim][0]
                restart_t = kill_t
                say("killed instance %s %.2f s into the burst with %d acknowledged, %d requests "
                    "in flight, %d acknowledged not yet at the TPL; the other carries on"
                    % ("b" if victim is not gws[0] else "a", kill_t - t0, len(acked_at_kill),
                       flying_at_kill, len(unreceived_at_kill)))
        for th in threads:
            th.join(max(1.0, BURST_LIMIT_S - (time.monotonic() - t0)))
        check(not any(th.is_alive() for th in threads), "the burst did not finish in time")
    finally:
        burst.abort = True
        burst.up.set()
    burst_end = time.monotonic()
    check(not burst.errors, "%d pushes refused, e.g. %s" % (len(burst.errors), burst.errors[:5]))

    # every acknowledged push reaches the TPL
    acked = dict(burst.acked)
    deadline = burst_end + o.drain_timeout
    missing = tpl.have_all(acked)
    while missing and time.monotonic() < deadline:
        time.sleep(0.1)
        missing = tpl.have_all(missing)
    drained_t = time.monotonic()
    with tpl.lock:
        first = dict(tpl.first)
        copies = {k: list(v) for k, v in tpl.copies.items()}
        count = collections.Counter({k: n for k, n in tpl.count.items() if k[1] > 0})
        arrivals = {a: [s for s in seqs if s > 0] for a, seqs in tpl.arrivals.items()}
        received_total = sum(count.values())
        strange, changed, overlaps = list(tpl.strange), list(tpl.changed), list(tpl.overlaps)
    dups = {k: n for k, n in count.items() if n > 1}
    recovered = [first[k] for k in unreceived_at_kill if k in first]
    got_unacked = [k for k in count if k not in acked]
    after = restart_t if restart_t is not None else t0
    say("pushes %d, requests sent %d (again after no answer %d, after 5xx %d), acknowledged %d (%s)"
        % (burst.total, burst.sent, burst.unanswered, burst.retried_5xx, len(acked),
           ", ".join("%d: %d" % kv for kv in sorted(burst.status.items()))))
    say("TPL received %d PATCHes of %d distinct pushes; duplicates %d pushes (%d extra copies); "
        "received but never acknowledged %d"
        % (received_total, len(count), len(dups), sum(n - 1 for n in dups.values()),
           len(got_unacked)))
    since = "restart" if o.instances == 1 else "kill"
    if kill_t is not None:
        say("acknowledged but not at the TPL at the kill: %d, all of them there %s after the %s"
            % (len(unreceived_at_kill),
               "-" if not unreceived_at_kill else
               "%.2f s" % (max(recovered) - restart_t) if len(recovered) == len(unreceived_at_kill)
               else "never (%d missing)" % (len(unreceived_at_kill) - len(recovered)), since))
    if missing:
        say("burst %.2f s; %d acknowledged pushes still not at the TPL %.2f s after the burst ended"
            % (burst_end - t0, len(missing), drained_t - burst_end))
    else:
        say("burst %.2f s; every acknowledged push at the TPL %.2f s after the %s, %.2f s after "
            "the burst ended" % (burst_end - t0, drained_t - after,
                                 since if restart_t is not None else "start",
                                 drained_t - burst_end))
    same, resent, unexplained = explain_duplicates(dups, copies, burst.sends,
                                                   delivery_ids(t, g.conf_path) if dups else {},
                                                   kill_t)
    if dups:
        say("duplicates by delivery id: %d the same delivery sent before the kill and again "
            "after it (its end was not recorded), %d pushes the TA sent again after getting no "
            "answer (two deliveries), %d unexplained" % (len(same), len(resent), len(unexplained)))
        for what, rows in (("same delivery", same), ("sent again", resent),
                           ("UNEXPLAINED", unexplained)):
            for key, dids in rows[:3]:
                say("  %s: %s seq %d, deliveries %s" % (what, key[0][:8], key[1], dids))

    # the outbox, seen by the operator's command while okegw still runs
    end = time.monotonic() + (15 if not missing else 0)
    while True:
        pending, pending_lines = cli_count(t, g.conf_path, "pending")
        if pending == 0 or time.monotonic() >= end:
            break
        time.sleep(0.5)
    dead, dead_lines = cli_count(t, g.conf_path, "dead")
    failed, failed_lines = cli_count(t, g.conf_path, "failed")
    pend = [json.loads(x) for x in pending_lines]
    untried = sum(1 for d in pend if not d.get("attempts") and not d.get("nextAttemptAt"))
    say("okegw deliveries list --state pending: %d (never attempted, none scheduled: %d), dead %d, "
        "failed %d" % (pending, untried, dead, failed))
    for d in pend[:3]:
        say("  pending %s %s attempts %s next %s last %s %s" % (
            d.get("id"), d.get("resourceId"), d.get("attempts"), d.get("nextAttemptAt"),
            d.get("lastStatus"), d.get("lastError")))

    never_sent = [k for k in count if k[1] > per]
    reordered = []
    for aid, seqs in arrivals.items():
        for i in range(1, len(seqs)):
            if seqs[i] < seqs[i - 1]:
                reordered.append("%s: %d after %d (arrivals %s)"
                                 % (aid, seqs[i], seqs[i - 1], seqs[max(0, i - 4):i + 3]))
                break
    outside = [a for tm, a in overlaps
               if kill_t is None or tm < kill_t or tm > restart_t + 2.0]
    summary = ("%s instances=%d sync=%s pushes=%d sent=%d acked=%d received=%d dup=%d "
               "(same delivery %d, sent again %d) missing=%d reordered=%d %s "
               "drain=%s pending=%d dead=%d failed=%d"
               % ("pg" if pg else "sqlite", o.instances, o.sync, burst.total, burst.sent,
                  len(acked), received_total, len(dups), len(same), len(resent),
                  len(missing), len(reordered),
                  "kill@%.1fs" % (kill_t - t0) if kill_t is not None else "no-kill",
                  ">%.0fs" % (drained_t - after) if missing else "%.2fs" % (drained_t - after),
                  pending, dead, failed))
    say("summary: " + summary)

    check(not strange, "the TPL got %d unexpected requests, e.g. %s" % (len(strange), strange[:3]))
    check(not changed, "%d pushes reached the TPL changed, e.g. %r" % (len(changed), changed[:2]))
    check(not missing, "%d acknowledged pushes never reached the TPL within %.0f s (%d deliveries "
          "pending, %d of them never attempted), e.g. %s" % (
              len(missing), o.drain_timeout, pending, untried, ", ".join(
                  "%s seq %d (%d)" % (k[0], k[1], acked[k][0]) for k in sorted(missing)[:5])))
    check(not never_sent, "the TPL got pushes never sent: %r" % never_sent[:5])
    check(not unexplained, "%d duplicates not explained by their delivery ids, e.g. %s"
          % (len(unexplained), unexplained[:3]))
    check(not reordered, "%d deelnames got their pushes out of order, e.g. %s"
          % (len(reordered), "; ".join(reordered[:3])))
    check(not outside, "%d times two deliveries of one deelname were at the TPL at once, e.g. %s"
          % (len(outside), outside[:3]))
    check(dead == 0 and failed == 0, "dead/failed deliveries: %s" % (dead_lines + failed_lines)[:3])
    check(pending == 0, "%d deliveries still pending, e.g. %s" % (pending, pending_lines[:2]))
    t.notes.append(summary)


if __name__ == "__main__":
    OPTS, rest = options(sys.argv[1:])
    sys.exit(run_tests(globals(), rest))
