#!/usr/bin/env python3
"""Lua mappings per connector: to_peer/from_peer on flow 2, failures that cost one
request a 502 (and nothing else), syntax errors, SIGHUP reloads (also under
traffic) and the sandbox.

Two ooapi connectors, alpha and beta, on two fake suppliers. The scripts are
written into the test's work dir; alpha usually carries them, beta serves as the
bystander that must keep working whatever alpha's scripts do."""
import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (RawConn, check, check_2xx, check_problem, conf, make_components,  # noqa: E402
                       make_offering, main, ooapi_connector, run_okegw, time_scale)

HEX64 = re.compile(r"^[0-9a-f]{64}$")
PUT_SCRIPT = "flow2.put_offering.lua"


# --------------------------------------------------------------------------
# helpers

def lua(*lines):
    """A script from lines (joined with newlines); line numbers are 1-based."""
    return "\n".join(lines) + "\n"


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError("no line containing %r in script" % needle)


def scripts_dir(t, connector):
    return os.path.join(t.workdir, "scripts", connector)


def write_script(t, connector, interaction, text):
    """Writes scripts/<connector>/<interaction>.lua in the work dir (atomically:
    a reload never sees half a file). Returns its path."""
    d = scripts_dir(t, connector)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, interaction + ".lua")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def flow0(g, n_expected=None):
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200, "flow 0 GET components: %s" % r.short())
    items = r.json().get("items", [])
    if n_expected is not None:
        check(len(items) == n_expected, "flow 0: expected %d components, got %d: %s"
              % (n_expected, len(items), r.short()))
    return items


def two_peers(t):
    alpha = t.peer(make_components(2, numbers=[0, 1]), name="alpha")
    beta = t.peer(make_components(2, numbers=[5, 6]), name="beta")
    return alpha, beta


def two_conf(alpha, beta, alpha_kw=None, beta_kw=None, **gateway):
    return conf([("alpha", ooapi_connector(alpha, **(alpha_kw or {}))),
                 ("beta", ooapi_connector(beta, **(beta_kw or {})))], **gateway)


def put_offering(g, peer, extra=None, idx=0):
    o = make_offering(peer.catalogue[idx]["componentId"])
    o.update(extra or {})
    return o, g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)


def request_logs(g, pred=None):
    return [r for r in g.log_lines() if r.get("msg") == "request" and (pred is None or pred(r))]


def log_for(g, method, path, timeout=3.0):
    """The request log line of METHOD path (the last one), waiting for it."""
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        recs = request_logs(g, lambda r: r.get("method") == method and r.get("path") == path)
        if recs:
            return recs[-1]
        if time.monotonic() >= deadline:
            raise AssertionError("no request log line for %s %s" % (method, path))
        time.sleep(0.05)


def wait_until(fn, timeout=3.0):
    """Polls fn() until it is true or timeout (scaled) passes; returns its last value."""
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(0.02)


def sighup_and_wait(g, pred, what, timeout=5.0):
    """SIGHUP, then wait for one more log line matching pred than before."""
    before = len([r for r in g.log_lines() if pred(r)])
    g.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline:
        if len([r for r in g.log_lines() if pred(r)]) > before:
            return
        time.sleep(0.02)
    raise AssertionError("after SIGHUP: no log line for %s; stderr:\n%s" % (what, g.stderr_tail()))


def reloaded(rec):
    return rec.get("msg") == "mappings of 'alpha' reloaded"


def not_reloaded(rec):
    """A reload with any error changes nothing."""
    return rec.get("msg", "").startswith("reload refused")


def check_mapping_502(r, line, what, connector="alpha", script=PUT_SCRIPT, need_line=True):
    """r is a 502 problem naming the connector and script:line (line: the
    expected line number, None for any; need_line=False: the file alone will do)."""
    p = check_problem(r, 502, what)
    check(p.get("connector") == connector, "%s: problem 'connector' should be %r: %r"
          % (what, connector, p))
    detail = p.get("detail") or ""
    if not need_line:
        check(script in detail, "%s: detail does not name %s: %r" % (what, script, detail))
        return p
    m = re.search(re.escape(script) + r":(\d+)", detail)
    check(m, "%s: detail does not name %s:LINE: %r" % (what, script, detail))
    if line is not None:
        check(int(m.group(1)) == line, "%s: detail names line %s, the failing line is %d: %r"
              % (what, m.group(1), line, detail))
    return p


def check_others_serve(g, alpha, beta, what):
    """beta (no scripts) still serves its catalogue and a PUT; okegw answers at all."""
    r = g.request("GET", "/healthz")
    check(r.status == 200, "%s: /healthz: %s" % (what, r.short()))
    items = flow0(g)
    ids = {c["componentId"] for c in items}
    check({c["componentId"] for c in beta.catalogue} <= ids,
          "%s: beta's components left the catalogue: %r" % (what, sorted(ids)))
    m = beta.mark()
    o, r = put_offering(g, beta)
    check_2xx(r, "%s: PUT to beta" % what)
    got = beta.find("PUT", "/offerings/" + o["offeringId"], since=m)
    check(len(got) == 1 and got[0].json == o, "%s: beta did not get its offering intact: %r" % (what, got))


# --------------------------------------------------------------------------
# a working mapping

MAP_PUT = lua(
    "-- renames primaryCode to x_code, stamps ctx; ctx.config must not carry the token",
    "function to_peer(msg, ctx)",
    "  msg.x_code = msg.primaryCode",
    "  msg.primaryCode = nil",
    "  msg.x_mapped_by = ctx.connector .. '/' .. ctx.interaction .. '/' .. ctx.direction",
    "  msg.x_id = ctx.id",
    "  msg.x_system = ctx.config.test_system",
    "  msg.x_token = ctx.config.token",
    "  return msg",
    "end")

MAP_GET = lua(
    "function from_peer(msg, ctx)",
    "  msg.x_seen = ctx.connector .. '/' .. ctx.interaction .. '/' .. ctx.direction",
    "  msg.name[1].value = string.upper(msg.name[1].value)",
    "end")


def test_mapping_to_and_from_peer(t):
    alpha, beta = two_peers(t)
    write_script(t, "alpha", "flow2.put_offering", MAP_PUT)
    write_script(t, "alpha", "flow2.get_offering", MAP_GET)
    g = t.gateway(two_conf(alpha, beta, alpha_kw={"test_system": "AlphaToets", "auth": "bearer",
                                                  "token": "s3cret"}))
    alpha.required_token = "s3cret"
    flow0(g, 4)

    o, r = put_offering(g, alpha)
    check_2xx(r, "PUT offering through alpha's mapping")
    got = alpha.find("PUT", "/offerings/" + o["offeringId"])
    check(len(got) == 1, "alpha should get exactly one PUT, got %d" % len(got))
    want = dict(o)
    want["x_code"] = want.pop("primaryCode")
    want["x_mapped_by"] = "alpha/flow2.put_offering/to_peer"
    want["x_id"] = o["offeringId"]
    want["x_system"] = "AlphaToets"
    check(got[0].json == want, "alpha got other JSON than the mapping makes:\n got  %r\n want %r"
          % (got[0].json, want))
    check("json" in (got[0].headers.get("content-type") or ""),
          "mapped body sent without a JSON Content-Type: %r" % got[0].headers.get("content-type"))

    rec = log_for(g, "PUT", "/ooapi/offerings/" + o["offeringId"])
    h = rec.get("mapping")
    check(isinstance(h, str) and HEX64.match(h), "request log line has no 64-hex 'mapping': %r" % rec)
    check(rec.get("connector") == "alpha", "request log line names no connector alpha: %r" % rec)

    r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
    check(r.status == 200, "GET offering through alpha's from_peer: %s" % r.short())
    body = r.json()
    want_get = dict(alpha.offerings[o["offeringId"]])
    want_get["x_seen"] = "alpha/flow2.get_offering/from_peer"
    want_get["name"] = [dict(want_get["name"][0])]
    want_get["name"][0]["value"] = want_get["name"][0]["value"].upper()
    check(body == want_get, "the client got other JSON than from_peer makes:\n got  %r\n want %r"
          % (body, want_get))
    rec = log_for(g, "GET", "/ooapi/offerings/" + o["offeringId"])
    check(rec.get("mapping") == h, "GET log line: same scripts, same hash expected: %r vs %r" % (rec, h))
    ready = g.wait_log(lambda x: x.get("connector") == "alpha" and "ready" in x.get("msg", ""))
    check(ready and ready.get("mapping") == h,
          "the 'connector ready' line should carry the same hash %s: %r" % (h, ready))

    # beta has no scripts: its body passes unchanged, its log lines carry no hash
    ob, r = put_offering(g, beta)
    check_2xx(r, "PUT offering to beta (no scripts)")
    got = beta.find("PUT", "/offerings/" + ob["offeringId"])
    check(len(got) == 1 and got[0].json == ob, "beta's offering changed on the way: %r" % got)
    rec = log_for(g, "PUT", "/ooapi/offerings/" + ob["offeringId"])
    check("mapping" not in rec or rec["mapping"] in ("", "-"),
          "a connector without scripts should log no mapping hash: %r" % rec)


def test_mapping_keeps_numbers(t):
    """A mapping that leaves numbers alone forwards them as the same values
    (as doubles: 1e21 may become 1e+21, but 0.30000000000000004 must not become 0.3)."""
    alpha, beta = two_peers(t)
    write_script(t, "alpha", "flow2.put_offering", lua("function to_peer(msg) msg.x_mapped = true end"))
    g = t.gateway(two_conf(alpha, beta))
    flow0(g, 4)
    numbers = {"int": 123456789012, "float": 7.5, "tenth": 0.1, "small": -2.25e-05, "big": 1e21,
               "integral_float": 3.0, "two_53": 9007199254740992, "sixteen_digits": 1234567890123456,
               "seventeen_digits": 0.30000000000000004, "third": 1 / 3, "neg": -17}
    o, r = put_offering(g, alpha, {"x_numbers": numbers})
    check_2xx(r, "PUT offering with numbers")
    got = alpha.find("PUT", "/offerings/" + o["offeringId"])
    check(got and got[0].json.get("x_mapped") is True, "the mapping did not run: %r" % got)
    back = got[0].json.get("x_numbers") or {}
    changed = ["%s: sent %r, alpha got %r" % (k, v, back.get(k)) for k, v in numbers.items()
               if not (type(back.get(k)) in (int, float) and back.get(k) == v)]
    check(not changed, "numbers changed by a mapping that does not touch them:\n  %s"
          % "\n  ".join(changed))


# --------------------------------------------------------------------------
# failing mappings: 502 for that request, nothing else breaks

def failing_script(fail_lines):
    """to_peer marks msg (x_ok) unless msg.x_case names a failure; fail_lines:
    [(case, lua statement[, need_line])], one line each. Returns (text, {case: line})."""
    lines = ["function to_peer(msg, ctx)"]
    for case, stmt in ((c[0], c[1]) for c in fail_lines):
        lines.append("  if msg.x_case == %r then %s end" % (case, stmt))
    lines += ["  msg.x_ok = true", "  return msg", "end"]
    text = lua(*lines)
    return text, {c[0]: line_of(text, "%r then" % c[0]) for c in fail_lines}


def run_failure_cases(t, cases, gateway_kw):
    """One gateway; alpha's to_peer fails in each of `cases` (see failing_script).
    Every failing request must get a 502 naming alpha and the script's line,
    reach no peer, and leave beta, okegw and alpha's next request unharmed. A
    detail without file:line is collected and reported at the end, so that the
    other checks of every case still run."""
    alpha, beta = two_peers(t)
    text, lines = failing_script(cases)
    write_script(t, "alpha", "flow2.put_offering", text)
    g = t.gateway(two_conf(alpha, beta, **gateway_kw))
    flow0(g, 4)

    o, r = put_offering(g, alpha)
    check_2xx(r, "PUT before any failure")
    got = alpha.find("PUT", "/offerings/" + o["offeringId"])
    check(got and got[0].json.get("x_ok") is True, "the working path of the script did not run: %r" % got)

    def script_errors():
        return [x for x in g.log_lines() if x.get("level") == "error" and x.get("connector") == "alpha"
                and PUT_SCRIPT in x.get("msg", "")]

    soft = []
    for c in cases:
        case, need_line = c[0], (c[2] if len(c) > 2 else True)
        what = "mapping case %r" % case
        m = alpha.mark()
        n_err = len(script_errors())
        o, r = put_offering(g, alpha, {"x_case": case})
        check(r.status == 502, "%s: want 502, got %s" % (what, r.short()))
        try:
            check_mapping_502(r, lines[case], what, need_line=need_line)
        except AssertionError as e:
            soft.append(str(e))
        check(not alpha.non_catalogue(since=m), "%s: something reached alpha: %r"
              % (what, alpha.non_catalogue(since=m)))
        check(wait_until(lambda: len(script_errors()) > n_err),
              "%s: no error log line naming %s" % (what, PUT_SCRIPT))
        check(g.running(), "%s: okegw died" % what)
        check_others_serve(g, alpha, beta, what)
        # the same mapping state keeps serving alpha's good requests
        m = alpha.mark()
        o, r = put_offering(g, alpha, {"x_case": "none"})
        check_2xx(r, "%s: a good PUT to alpha afterwards" % what)
        got = alpha.find("PUT", "/offerings/" + o["offeringId"], since=m)
        check(got and got[0].json.get("x_ok") is True, "%s: alpha's next PUT was not mapped: %r" % (what, got))
    check(not soft, "%d of %d failures were answered without naming the script's line:\n  %s"
          % (len(soft), len(cases), "\n  ".join(soft)))
    return g, alpha, beta


def test_infinite_loop_502(t):
    run_failure_cases(t, [("loop", "while true do end"),
                          ("loop2", "local i = 0; repeat i = i + 1 until i < 0")],
                      {"lua_instructions": 100000})


def test_watched_loop_502(t):
    # a budget above 2,000,000 is watched by a timer, not counted from the
    # first instruction: the loop must still end, also inside pcall
    run_failure_cases(t, [("loop_w", "while true do end"),
                          ("pcall_loop_w", "pcall(function() while true do end end); return msg")],
                      {"lua_instructions": 5000000})


def test_memory_bomb_502(t):
    run_failure_cases(t, [("mem", "local t = {}; for i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end"),
                          ("mem_str", "local s = 'x'; while true do s = s .. s end")],
                      {"lua_memory_kb": 2048, "lua_instructions": 100000000})


def test_forbidden_functions_502(t):
    run_failure_cases(t, [("io", "io.open('/etc/passwd')"),
                          ("os_execute", "os.execute('touch /tmp/okegw-mapping-pwned')"),
                          ("dofile", "dofile('/etc/passwd')"),
                          ("load", "load('return 1')()"),
                          ("loadstring", "loadstring('return 1')()"),
                          ("debug", "debug.sethook()"),
                          ("package", "package.loadlib('libc.so.6', 'system')"),
                          ("os_exit", "os.exit(3)"),
                          ("os_getenv", "msg.env = os.getenv('HOME') .. 'x'")],
                      {"lua_instructions": 100000})
    check(not os.path.exists("/tmp/okegw-mapping-pwned"), "os.execute ran a command")


def test_error_502(t):
    g, _, _ = run_failure_cases(t, [("error", "error('mapping says no: bad offering')"),
                                    ("nil_index", "local x = msg.nothing.deeper"),
                                    # a value JSON cannot carry: the file will do, no line needed
                                    ("bad_return", "return function() end", False),
                                    # errors that carry no position of their own
                                    ("error_table", "error({ code = 1 })"),
                                    ("error_level0", "error('said without a position', 0)")],
                                {})
    r = [x for x in g.log_lines() if "mapping says no: bad offering" in x.get("msg", "")]
    check(r, "the error's message is not in the log")


def test_pcall_does_not_swallow_budget(t):
    run_failure_cases(t, [("pcall_loop", "pcall(function() while true do end end); return msg"),
                          ("pcall_mem", "pcall(function() local t = {} for i = 1, 1e9 do "
                                        "t[i] = string.rep('y', 4096) .. i end end); return msg")],
                      {"lua_instructions": 100000, "lua_memory_kb": 2048})


# --------------------------------------------------------------------------
# broken scripts

def test_syntax_error(t):
    alpha, beta = two_peers(t)
    good = lua("function to_peer(msg) msg.x_ok = true end")
    path = write_script(t, "alpha", "flow2.put_offering", good)
    g = t.gateway(two_conf(alpha, beta))
    flow0(g, 4)
    rc, out = run_okegw(t.binary, ["-t", "-c", g.conf_path])
    check(rc == 0, "okegw -t with good scripts: want exit 0, got %d:\n%s" % (rc, out))
    oa, r = put_offering(g, alpha)
    check_2xx(r, "PUT to alpha before the script broke")
    ob, r = put_offering(g, beta)
    check_2xx(r, "PUT to beta")
    rc = g.stop()
    check(rc == 0, "SIGTERM: exit %r" % rc)

    broken = lua("function to_peer(msg, ctx)",
                 "  msg.x_ok = true",
                 "  msg.x = = 1",
                 "end")
    write_script(t, "alpha", "flow2.put_offering", broken)
    rc, out = run_okegw(t.binary, ["-t", "-c", g.conf_path])
    check(rc == 1, "okegw -t on a broken script: want exit 1, got %d:\n%s" % (rc, out))
    check(PUT_SCRIPT + ":3:" in out, "okegw -t should name %s:3:, got:\n%s" % (PUT_SCRIPT, out))
    # the whole path, so that the report can be acted on (checked at the end)
    soft = [] if "%s:3:" % path in out else ["okegw -t should report the script as %s:3: ..., got:\n%s"
                                              % (path, out)]

    g.start()
    dis = g.wait_log(lambda x: x.get("connector") == "alpha" and "disabled" in x.get("msg", ""))
    check(dis, "no log line saying connector alpha is disabled:\n%s" % g.stderr_tail())
    err = [x for x in g.log_lines() if PUT_SCRIPT + ":3:" in x.get("msg", "")]
    check(err, "the log does not name %s:3:" % PUT_SCRIPT)

    m = alpha.mark()
    r = g.request("GET", "/ooapi/offerings/" + oa["offeringId"])
    p = check_problem(r, 503, "GET an offering of the disabled connector")
    check(p.get("connector") == "alpha" and "alpha" in (p.get("detail") or ""),
          "503 should name connector alpha: %r" % p)
    r = g.request("PUT", "/ooapi/offerings/" + oa["offeringId"], oa)
    p = check_problem(r, 503, "PUT an offering to the disabled connector")
    check(p.get("connector") == "alpha", "503 should name connector alpha: %r" % p)
    check(not alpha.non_catalogue(since=m), "the disabled connector forwarded: %r" % alpha.non_catalogue(since=m))

    items = flow0(g)
    ids = {c["componentId"] for c in items}
    check(ids == {c["componentId"] for c in beta.catalogue},
          "the catalogue should be beta's alone: %r" % sorted(ids))
    r = g.request("GET", "/ooapi/offerings/" + ob["offeringId"])
    check(r.status == 200 and r.json() == ob, "GET beta's offering: %s" % r.short())
    check_others_serve(g, alpha, beta, "alpha disabled")
    check(not soft, "; ".join(soft))


# --------------------------------------------------------------------------
# reload

def version_script(mark):
    return lua("-- version %s" % mark,
               "function to_peer(msg, ctx)",
               "  msg.v = %s" % mark,
               "  return msg",
               "end")


def test_reload(t):
    alpha, beta = two_peers(t)
    write_script(t, "alpha", "flow2.put_offering", version_script(1))
    g = t.gateway(two_conf(alpha, beta))
    flow0(g, 4)

    def put_v(expect_v, what):
        o, r = put_offering(g, alpha)
        check_2xx(r, what)
        got = alpha.find("PUT", "/offerings/" + o["offeringId"])
        check(len(got) == 1 and got[0].json.get("v") == expect_v,
              "%s: the peer should see v=%r, got %r" % (what, expect_v, got and got[0].json.get("v")))
        return log_for(g, "PUT", "/ooapi/offerings/" + o["offeringId"]).get("mapping")

    h1 = put_v(1, "PUT with v1")
    check(isinstance(h1, str) and HEX64.match(h1), "v1 log hash: %r" % h1)

    write_script(t, "alpha", "flow2.put_offering", version_script(2))
    sighup_and_wait(g, reloaded, "alpha reloaded (v2)")
    h2 = put_v(2, "PUT after reloading v2")
    check(isinstance(h2, str) and HEX64.match(h2) and h2 != h1,
          "the mapping hash should change with the script: v1 %r, v2 %r" % (h1, h2))

    # an unchanged folder: no reload, same hash
    sighup_and_wait(g, lambda x: x.get("msg", "").startswith("reloaded:"), "reload summary")
    check(put_v(2, "PUT after a no-op SIGHUP") == h2, "a SIGHUP without changes changed the hash")

    # broken: syntax error on line 3; then an error while running the chunk
    for what, text, line in (("syntax error", lua("function to_peer(msg)", "  msg.v = 3", "  msg.v = = 3",
                                                  "end"), 3),
                             ("error at load", lua("function to_peer(msg) msg.v = 4 end", "",
                                                   "error('refusing to load')"), 3)):
        write_script(t, "alpha", "flow2.put_offering", text)
        sighup_and_wait(g, not_reloaded, "alpha not reloaded (%s)" % what)
        errs = [x for x in g.log_lines() if x.get("level") == "error" and
                "%s:%d:" % (PUT_SCRIPT, line) in x.get("msg", "")]
        check(errs, "%s: no error log line naming %s:%d:\n%s" % (what, PUT_SCRIPT, line, g.stderr_tail()))
        check(put_v(2, "PUT after a broken reload (%s)" % what) == h2,
              "%s: the request should still run on v2's hash" % what)
        check_others_serve(g, alpha, beta, "after a broken reload (%s)" % what)

    # and fixing it works again
    write_script(t, "alpha", "flow2.put_offering", version_script(5))
    sighup_and_wait(g, reloaded, "alpha reloaded (v5)")
    h5 = put_v(5, "PUT after reloading v5")
    check(h5 not in (h1, h2), "v5 hash should be new: %r" % h5)


def test_reload_keeps_requests_in_flight(t):
    """A GET whose answer is still on its way when the mapping is swapped is
    mapped back with the version it started with (and logs that version's hash)."""
    alpha, beta = two_peers(t)
    gate = threading.Event()
    reached = threading.Event()
    orig = alpha.handle

    def gated(h, rec):
        if rec.method == "GET" and rec.rel.startswith("/offerings/"):
            reached.set()
            gate.wait(60 * time_scale())
        return orig(h, rec)
    alpha.handle = gated

    def get_script(mark):
        return lua("function from_peer(msg, ctx)", "  msg.x_version = %r" % mark, "end")
    write_script(t, "alpha", "flow2.get_offering", get_script("old"))
    g = t.gateway(two_conf(alpha, beta, alpha_kw={"timeout_ms": 120000}))
    flow0(g, 4)
    o, r = put_offering(g, alpha)
    check_2xx(r, "PUT offering")
    path = "/ooapi/offerings/" + o["offeringId"]

    box = {}
    th = threading.Thread(target=lambda: box.update(r=g.request("GET", path, timeout=120 * time_scale())),
                          daemon=True)
    th.start()
    try:
        check(reached.wait(10 * time_scale()), "the GET did not reach alpha")
        h_old = [x for x in g.log_lines() if x.get("connector") == "alpha" and "ready" in x.get("msg", "")]
        write_script(t, "alpha", "flow2.get_offering", get_script("new"))
        sighup_and_wait(g, reloaded, "alpha reloaded while a GET is in flight")
    finally:
        gate.set()
    th.join(30 * time_scale())
    check("r" in box, "the GET in flight got no answer")
    r = box["r"]
    check(r.status == 200 and r.json().get("x_version") == "old",
          "the GET in flight should be mapped back by the version it started with: %s" % r.short())
    rec = log_for(g, "GET", path)
    check(h_old and rec.get("mapping") == h_old[0].get("mapping"),
          "the GET in flight should log the old hash %r: %r" % (h_old and h_old[0].get("mapping"), rec))
    r = g.request("GET", path)
    check(r.status == 200 and r.json().get("x_version") == "new", "the next GET: %s" % r.short())
    h_new = [x.get("mapping") for x in g.log_lines() if reloaded(x)]
    check(log_for(g, "GET", path).get("mapping") == h_new[-1], "the next GET should log the new hash")


def test_reload_under_traffic(t):
    alpha, beta = two_peers(t)
    alpha.delay = 0.005  # requests are in flight while the mapping changes
    marks = ("A", "B")
    texts = {mk: lua("-- version %s" % mk,
                     "function to_peer(msg, ctx)",
                     "  msg.v = %r" % mk,
                     "  msg.x_mark = 'mapped-' .. %r" % mk,
                     "  return msg",
                     "end") for mk in marks}
    write_script(t, "alpha", "flow2.put_offering", texts["A"])
    g = t.gateway(two_conf(alpha, beta))
    flow0(g, 4)

    total = 300
    nthreads = 2
    lock = threading.Lock()
    sent = [0]
    results = []  # (offering id, status, body)
    errors = []
    stop = threading.Event()
    comp = alpha.catalogue[0]["componentId"]

    def sender(k):
        conn = None
        try:
            while True:
                with lock:
                    if sent[0] >= total and stop.is_set():
                        return
                    sent[0] += 1
                if conn is None:
                    conn = RawConn(g.port, timeout=10.0 * time_scale())
                o = make_offering(comp)
                try:
                    r = conn.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
                except (EOFError, ConnectionError) as e:
                    errors.append("thread %d: connection lost: %s" % (k, e))
                    return
                with lock:
                    results.append((o["offeringId"], r.status, r.body))
                if (r.header("connection") or "").lower() == "close":
                    conn.close()
                    conn = None
        except Exception as e:  # noqa: BLE001
            errors.append("thread %d: %s: %s" % (k, type(e).__name__, e))
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(nthreads)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    swaps = 5
    version = "A"
    deadline = time.monotonic() + 60 * time_scale()
    for i in range(swaps):
        # spread the swaps over the stream: swap i after (i + 1) / (swaps + 1) of it
        while len(results) < total * (i + 1) // (swaps + 1) and not errors and time.monotonic() < deadline:
            time.sleep(0.005)
        version = "B" if version == "A" else "A"
        write_script(t, "alpha", "flow2.put_offering", texts[version])
        sighup_and_wait(g, reloaded, "alpha reloaded (swap %d)" % (i + 1))
    stop.set()  # the swaps are done: the senders finish the stream (at least `total`)
    for th in threads:
        th.join(60 * time_scale())
    dt = time.monotonic() - t0
    check(not errors, "senders failed: %s" % "; ".join(errors[:5]))
    check(not any(th.is_alive() for th in threads), "senders still running after 60 s")
    check(len(results) == sent[0] and len(results) >= total,
          "sent %d requests, %d answered (want >= %d)" % (sent[0], len(results), total))
    bad = [(i, s, b[:200]) for i, s, b in results if not 200 <= s < 300]
    check(not bad, "%d of %d PUTs failed during reloads, e.g. %r" % (len(bad), len(results), bad[:3]))

    got = {}
    for rq in alpha.find("PUT", prefix="/offerings/"):
        got.setdefault(rq.rel.rsplit("/", 1)[1], []).append(rq.json)
    ids = [i for i, _, _ in results]
    missing = [i for i in ids if i not in got]
    check(not missing, "%d PUTs never reached alpha" % len(missing))
    seen = {"A": 0, "B": 0}
    for i in ids:
        for body in got[i]:
            v = body.get("v") if isinstance(body, dict) else None
            check(v in seen and body.get("x_mark") == "mapped-" + v,
                  "offering %s reached alpha with v=%r x_mark=%r (want one version's marks)"
                  % (i, v, body.get("x_mark") if isinstance(body, dict) else body))
            seen[v] += 1
    check(seen["A"] and seen["B"], "both versions should have carried traffic: %r" % seen)

    # every request ran on one of the two versions, and its log line says which
    loaded = [x.get("mapping") for x in g.log_lines() if reloaded(x)]
    check(len(loaded) == swaps, "want %d 'reloaded' log lines, got %d" % (swaps, len(loaded)))
    hashes = set(loaded)
    check(len(hashes) == 2 and all(HEX64.match(h or "") for h in hashes),
          "the swaps should alternate two hashes: %r" % loaded)
    hash_of = {loaded[0]: "B", loaded[1]: "A"}
    by_path = {x.get("path"): x for x in request_logs(g)}
    for i in ids:
        rec = by_path.get("/ooapi/offerings/" + i)
        check(rec is not None, "no request log line for offering %s" % i)
        check(rec.get("mapping") in hash_of, "offering %s logged with mapping %r" % (i, rec.get("mapping")))
        check(hash_of[rec["mapping"]] == got[i][0].get("v"),
              "offering %s: the log says version %s, the peer got v=%r"
              % (i, hash_of[rec["mapping"]], got[i][0].get("v")))
    t.notes.append("%d PUTs in %.1fs, %r" % (len(results), dt, seen))


# --------------------------------------------------------------------------
# the sandbox

def test_sandbox(t):
    attempts = [
        ("dump", "msg.x = string.dump(to_peer)"),
        ("dump_method", "msg.x = ('x').dump(to_peer)"),
        ("require_os", "local os2 = require('os'); os2.execute('true')"),
        ("require_io", "local io2 = require('io'); io2.open('/etc/passwd')"),
        ("require_path", "require('../../etc/passwd')"),
        ("require_abs", "require('/etc/passwd')"),
        ("mt_string", "getmetatable('').__index.upper = nil"),
        ("mt_env", "setmetatable(_ENV, nil)"),
        ("mt_env_get", "getmetatable(_ENV).__index.string = nil"),
        ("gc", "collectgarbage('stop')"),
        ("rawget_G", "rawget(_G, 'io').open('/etc/passwd')"),
        ("G_io", "_G.io.open('/etc/passwd')"),
        ("coroutine", "coroutine.wrap(function() end)()"),
    ]
    alpha, beta = two_peers(t)
    text, lines = failing_script(attempts)
    write_script(t, "alpha", "flow2.put_offering", text)
    # the other interaction of the same connector relies on the string library
    write_script(t, "alpha", "flow2.get_offering",
                 lua("function from_peer(msg)",
                     "  msg.x_upper = ('abc'):upper() .. string.upper('def') .. string.rep('-', 2)",
                     "  msg.x_len = #msg.offeringId",
                     "  return msg",
                     "end"))
    g = t.gateway(two_conf(alpha, beta, lua_instructions=100000))
    flow0(g, 4)
    o0, r = put_offering(g, alpha)
    check_2xx(r, "PUT before the sandbox attempts")

    def get_ok(what):
        r = g.request("GET", "/ooapi/offerings/" + o0["offeringId"])
        check(r.status == 200, "%s: GET with the string-using from_peer: %s" % (what, r.short()))
        b = r.json()
        check(b.get("x_upper") == "ABCDEF--" and b.get("x_len") == len(o0["offeringId"]),
              "%s: the string library of the other script changed: %r" % (what, b.get("x_upper")))

    get_ok("before")
    failures = []
    for case, _ in attempts:
        what = "sandbox %r" % case
        m = alpha.mark()
        o, r = put_offering(g, alpha, {"x_case": case})
        try:
            check_mapping_502(r, lines[case], what)
            check(not alpha.non_catalogue(since=m), "%s: something reached alpha" % what)
        except AssertionError as e:
            failures.append(str(e))
        # whatever the attempt did, nothing else may change
        m = alpha.mark()
        o, r = put_offering(g, alpha, {"x_case": "none"})
        check_2xx(r, "%s: a normal PUT afterwards" % what)
        got = alpha.find("PUT", "/offerings/" + o["offeringId"], since=m)
        check(got and got[0].json.get("x_ok") is True, "%s: next PUT not mapped: %r" % (what, got))
        get_ok(what)
        check_others_serve(g, alpha, beta, what)
    check(not failures, "%d sandbox attempt(s) did not fail cleanly:\n  %s"
          % (len(failures), "\n  ".join(failures)))


TAMPER_PUT_TEXT = """function to_peer(msg)
  if msg.x_case == 'tamper' then
    %s
  end
  msg.x_sig = string.upper('ok') .. string.rep('!', 2) .. table.concat({'a', 'b'}) ..
              math.floor(2.5) .. tostring(msg.name[9]) .. tostring(json.is_array(msg.name))
  msg.x_null = json.null
  return msg
end
"""

TAMPER_GET_TEXT = """function from_peer(msg)
  msg.x_sig = ('abc'):upper() .. string.upper('def') .. string.rep('-', 2) ..
              table.concat({'x', 'y'}) .. math.floor(2.5) .. tostring(msg.name[9]) ..
              tostring(json.is_array(msg.name)) .. tostring(shared_global)
  msg.x_null = json.null
  return msg
end
"""

PUT_SIG = "OK!!ab2niltrue"
GET_SIG = "ABCDEF--xy2niltruenil"


def test_sandbox_tampering_stays_local(t):
    """A script that changes what the sandbox hands it (the string, table, math
    and json libraries, the metatable JSON arrays carry, its globals) may fail
    its own request, but must not change what another script, or the next
    request, sees. One gateway per attempt, since a leak would outlive it."""
    attempts = [
        ("string.upper", "string.upper = function() return 'pwned' end"),
        ("string.rep", "string.rep = nil"),
        ("table.concat", "table.concat = nil"),
        ("math.floor", "math.floor = function() return 99 end"),
        ("json.null", "json.null = 'null-pwned'"),
        ("json.is_array", "json.is_array = function() return 'pwned' end"),
        ("array metatable __index", "getmetatable(msg.name).__index = function() return 'pwned' end"),
        ("array metatable __name", "getmetatable(msg.name).__name = nil"),
        ("global", "shared_global = 'leaked'; tostring = nil"),
        ("rawset string.upper", "rawset(string, 'upper', function() return 'pwned' end)"),
        ("rawset json.null", "rawset(json, 'null', 'null-pwned')"),
        ("the table pairs(string) hands out",
         "local _, t = pairs(string); rawset(t, 'upper', function() return 'pwned' end); t.rep = nil"),
        ("next over pairs(string)",
         "local f, t = pairs(string); local k = f(t); rawset(t, k, nil); string[k] = nil"),
        ("json.object(string) then write", "json.object(string); string.upper = function() return 'pwned' end"),
        ("json.array(math) then rawset", "json.array(math); rawset(math, 'floor', function() return 99 end)"),
        ("setmetatable(string)", "setmetatable(string, { __index = function() return print end })"),
        ("table.insert into string", "table.insert(string, 'x'); table.remove(string)"),
        ("string metatable", "local mt = getmetatable(''); if type(mt) == 'table' then "
                             "mt.__index = { upper = function() return 'pwned' end } end"),
    ]
    alpha, beta = two_peers(t)
    failures = []
    for n, (what, stmt) in enumerate(attempts):
        sub = "case%d" % n
        d = os.path.join(t.workdir, sub, "scripts", "alpha")
        os.makedirs(d)
        with open(os.path.join(d, "flow2.put_offering.lua"), "w") as f:
            f.write(TAMPER_PUT_TEXT % stmt)
        with open(os.path.join(d, "flow2.get_offering.lua"), "w") as f:
            f.write(TAMPER_GET_TEXT)
        g = t.gateway(two_conf(alpha, beta), subdir=sub)
        flow0(g, 4)
        o, r = put_offering(g, alpha)
        check_2xx(r, "%s: PUT before tampering" % what)
        got = alpha.offerings[o["offeringId"]]
        check(got.get("x_sig") == PUT_SIG and "x_null" in got and got["x_null"] is None,
              "%s: to_peer before tampering: %r" % (what, got.get("x_sig")))
        r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
        check(r.status == 200 and r.json().get("x_sig") == GET_SIG and r.json().get("x_null", 0) is None,
              "%s: GET before tampering: %s" % (what, r.short()))

        ot, r = put_offering(g, alpha, {"x_case": "tamper"})
        # the tampering request itself may fail (read-only libraries) or pass
        if r.status == 502:
            check_mapping_502(r, None, "%s: tampering PUT" % what)
        else:
            check_2xx(r, "%s: tampering PUT" % what)

        problems = []
        o2, r = put_offering(g, alpha)
        if not 200 <= r.status < 300:
            problems.append("the next PUT (same script) fails: %s" % r.short())
        elif alpha.offerings[o2["offeringId"]].get("x_sig") != PUT_SIG:
            problems.append("the next PUT (same script) maps differently: x_sig %r, want %r"
                            % (alpha.offerings[o2["offeringId"]].get("x_sig"), PUT_SIG))
        r = g.request("GET", "/ooapi/offerings/" + o["offeringId"])
        if r.status != 200:
            problems.append("another script (flow2.get_offering) fails: %s" % r.short())
        elif r.json().get("x_sig") != GET_SIG or r.json().get("x_null", 0) is not None:
            problems.append("another script (flow2.get_offering) maps differently: x_sig %r, x_null %r, "
                            "want %r, null" % (r.json().get("x_sig"), r.json().get("x_null", "(absent)"),
                                               GET_SIG))
        if problems:
            failures.append("%s (`%s`): %s" % (what, stmt, "; ".join(problems)))
        check_others_serve(g, alpha, beta, what)
        rc = g.stop()
        check(rc == 0, "%s: okegw exited %r on SIGTERM" % (what, rc))
    check(not failures, "%d of %d tampering attempts leaked into other requests:\n  %s"
          % (len(failures), len(attempts), "\n  ".join(failures)))


# --------------------------------------------------------------------------
# runaway mappings: every one fails its own request within 2 s (scaled under
# valgrind), and the gateway answers /healthz all the while

RUNAWAYS = [
    ("rep_empty", "msg.x = string.rep('', 1 << 34)"),
    ("rep_method", "msg.x = ('ab'):rep(1 << 40, ',')"),
    ("table_move", "table.move({}, 1, 1 << 40, 2)"),
    ("concat_huge", "msg.x = table.concat({}, '', 1, 1 << 40)"),
    ("trim_own_text", "local s = 'x' .. (' '):rep(40000) .. 'y'; msg.x = s:match('^%s*(.-)%s*$')"),
    ("gsub_backtrack", "msg.x = (' '):rep(40000):gsub('%s+x', '')"),
    ("xpcall_handler", "xpcall(function() while true do end end, function() while true do end end)"),
    ("xpcall_error_handler", "xpcall(error, function() while true do end end)"),
    ("gc_finaliser", "setmetatable({}, { __gc = function() while true do end end }); msg.y = {}"),
    ("close_handler", "local g <close> = setmetatable({}, { __close = function() while true do end end })"),
    ("pcall_c_loop", "while true do pcall(string.rep, '', 1 << 34) end"),
    ("long_compare", "local a, b = ('a'):rep(1000000) .. 'b', ('a'):rep(1000000) .. 'c'; "
                     "while true do local _ = a < b end"),
    ("long_concat", "local s = ('x'):rep(1000000); while true do local t = s .. 'y' end"),
    # strcoll goes byte by byte over embedded zeros: ~40 ms per comparison here
    ("zeros_compare", "local a, b = ('\\0'):rep(4000000), ('\\0'):rep(4000000) .. 'x'; "
                      "while true do local _ = a < b end"),
]

TRIM_GET = lua(
    "function from_peer(msg)",
    "  msg.x_trimmed = (msg.x_note or ''):match('^%s*(.-)%s*$')",
    "  return msg",
    "end")


def timed_while_healthz(g, fn, what):
    """Runs fn() (a request) in a thread and asks /healthz over and over until
    it is done. Returns (fn's result, seconds fn took); every /healthz must
    answer 200 within 2 s (scaled)."""
    box = {}

    def run():
        t0 = time.monotonic()
        try:
            box["r"] = fn()
        except Exception as e:  # noqa: BLE001 - reported below
            box["e"] = e
        box["dt"] = time.monotonic() - t0

    th = threading.Thread(target=run)
    th.start()
    limit = 2.0 * time_scale()
    n = 0
    while th.is_alive() or n == 0:
        t0 = time.monotonic()
        r = g.request("GET", "/healthz", timeout=limit + 5)
        dt = time.monotonic() - t0
        check(r.status == 200, "%s: /healthz during the mapping: %s" % (what, r.short()))
        check(dt <= limit, "%s: /healthz took %.2f s during the mapping (limit %.1f s)" % (what, dt, limit))
        n += 1
        time.sleep(0.05)
    th.join()
    if "e" in box:
        raise box["e"]
    return box["r"], box["dt"]


def test_runaway_mappings_stop_in_time(t):
    """With the default limits, each runaway (a C function asked for endless
    work, a backtracking pattern, a loop in an xpcall handler, a __gc or
    __close finaliser, a loop over operations on long strings) fails its
    request with a 502 naming the line within 2 s, while /healthz answers."""
    alpha, beta = two_peers(t)
    text, lines = failing_script(RUNAWAYS)
    write_script(t, "alpha", "flow2.put_offering", text)
    write_script(t, "alpha", "flow2.get_offering", TRIM_GET)
    g = t.gateway(two_conf(alpha, beta))
    flow0(g, 4)
    limit = 2.0 * time_scale()
    slow = []
    for case, _ in RUNAWAYS:
        what = "runaway %r" % case
        m = alpha.mark()
        r, dt = timed_while_healthz(g, lambda: put_offering(g, alpha, {"x_case": case})[1], what)
        check(r.status == 502, "%s: want 502, got %s" % (what, r.short()))
        check_mapping_502(r, lines[case], what)
        check(not alpha.non_catalogue(since=m), "%s: something reached alpha" % what)
        if dt > limit:
            slow.append("%s took %.2f s" % (case, dt))
        o, r = put_offering(g, alpha, {"x_case": "none"})
        check_2xx(r, "%s: a normal PUT afterwards" % what)

    # peer data: the supplier's answer carries 40 000 spaces where the
    # mapping trims; the same trim on ordinary long text still works
    o, r = put_offering(g, alpha, {"x_case": "none"})
    check_2xx(r, "PUT for the trim case")
    oid = o["offeringId"]
    alpha.offerings[oid]["x_note"] = "  " + "lorem ipsum dolor sit amet " * 1500 + " "
    r = g.request("GET", "/ooapi/offerings/" + oid)
    check(r.status == 200 and r.json().get("x_trimmed") == ("lorem ipsum dolor sit amet " * 1500).strip(),
          "trim of ordinary 40k text from the peer: %s" % r.short())
    alpha.offerings[oid]["x_note"] = "x" + " " * 40000 + "y"
    r, dt = timed_while_healthz(g, lambda: g.request("GET", "/ooapi/offerings/" + oid), "trim of peer data")
    check_mapping_502(r, 2, "trim of 40k spaces from the peer", script="flow2.get_offering.lua")
    check("string.match" in (r.json().get("detail") or ""), "the trim's 502 does not name string.match: %s"
          % r.short())
    if dt > limit:
        slow.append("trim of peer data took %.2f s" % dt)
    check(not slow, "runaways that took longer than %.1f s: %s" % (limit, "; ".join(slow)))
    check_others_serve(g, alpha, beta, "after the runaways")


def test_print_is_bounded(t):
    """print() in one call logs at most 20 lines and 4 KiB, then one line
    saying the rest was cut; the mapping itself goes on and succeeds."""
    alpha, beta = two_peers(t)
    write_script(t, "alpha", "flow2.put_offering",
                 lua("function to_peer(msg)",
                     "  for i = 1, 1000 do print(('p'):rep(50), i) end",
                     "  print(('q'):rep(1000000))",
                     "  msg.x_ok = true",
                     "  return msg",
                     "end"))
    g = t.gateway(two_conf(alpha, beta))
    flow0(g, 4)
    for n in range(2):
        before = len(g.log_lines())
        o, r = put_offering(g, alpha)
        check_2xx(r, "PUT %d with the printing mapping" % n)
        check(alpha.offerings[o["offeringId"]].get("x_ok") is True, "the printing mapping did not finish")
        log_for(g, "PUT", "/ooapi/offerings/" + o["offeringId"])
        printed = [x.get("msg", "") for x in g.log_lines()[before:] if x.get("msg", "").startswith("lua: ")]
        cut = [x for x in printed if "print output cut" in x]
        check(len(cut) == 1, "PUT %d: want one 'print output cut' line, got %d" % (n, len(cut)))
        check(len(printed) <= 21, "PUT %d: %d print lines logged for one call" % (n, len(printed)))
        size = sum(len(x) for x in printed)
        check(size <= 4096 + 21 * 120, "PUT %d: %d bytes of print output logged for one call" % (n, size))
        check(not any("q" * 100 in x for x in printed), "PUT %d: the megabyte print was logged" % n)


if __name__ == "__main__":
    main(globals())
