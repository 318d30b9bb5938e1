#!/usr/bin/env python3
"""An acceptance setup like a school's: okegw with one live supplier connector (the built-in
`sim` plugin, or `okegw sim --listen` behind a `plugin = ooapi` connector) and two acceptance
connectors, `accept_tpl` and `accept_dr`, whose systems the engine (accept/okechain.py) plays.

    python3 tests/integration/accept_setup.py --okegw build/okegw --workdir /tmp/accept
    python3 tests/integration/accept_setup.py --okegw build/okegw --workdir /tmp/accept --kit
    python3 tests/integration/accept_setup.py ... -- --only 4 -v       # extra engine arguments

It writes plugins.conf and ict.json, starts okegw, runs
`accept/okechain.py --gateway URL --tokens ict.json --acceptance --events events.jsonl` and exits
with the engine's status. write_acceptance_conf() is the piece later integration tests reuse.
Python 3 standard library only; everything on 127.0.0.1.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ENGINE = os.path.join(REPO, "accept", "okechain.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_acceptance_conf(path, store, tpl_port, dr_port, ta_url=None, ta_token=None,
                          ta_inbound="in-ta1-accept-9c41e7", gateway_listen="127.0.0.1:0", tls=None):
    """Writes an okegw plugins.conf at `path` (store file `store`) with the supplier connector and
    the acceptance connectors accept_tpl (engine's TPL on 127.0.0.1:tpl_port) and accept_dr
    (127.0.0.1:dr_port; None leaves the DR out). The supplier is the built-in `sim` plugin
    (connector `sim`) or, with ta_url, an OKE server behind `plugin = ooapi` (connector `ta`,
    outbound ta_token). ta_inbound: the token pushes in the supplier's name carry (None: none).
    tls: (certificate, key, CA file, port) to serve https on 127.0.0.1:port too (listen_tls); the
    CA goes into the ICT file as cafile.
    Returns the ICT dict for okechain.py --tokens (write it with json.dump)."""
    tok = {"tpl": "in-tpl-accept-5b2d8f", "dr": "in-dr-accept-77a0c3"}
    out = {"tpl": "out-tpl-accept-e4a1b9", "dr": "out-dr-accept-3f6d20"}
    lines = ["; acceptance setup (tests/integration/accept_setup.py)", "[gateway]",
             "listen = %s" % gateway_listen, "base_path = /ooapi", "store = %s" % store, "log_level = info",
             "request_timeout_ms = 10000"]
    if tls:
        lines += ["listen_tls = 127.0.0.1:%d" % tls[3], "tls_cert_file = %s" % tls[0], "tls_key_file = %s" % tls[1]]
    lines.append("")
    ta_conn = "ta" if ta_url else "sim"
    lines += ["[connector %s]" % ta_conn]
    if ta_url:
        lines += ["plugin = ooapi", "role = ta", "phase = live", "base_url = %s" % ta_url,
                  "auth = %s" % ("bearer" if ta_token else "none")]
        if ta_token:
            lines.append("token = %s" % ta_token)
        lines += ["connect_timeout_ms = 2000", "timeout_ms = 5000"]
    else:
        lines += ["plugin = sim", "role = ta", "phase = live", "test_system = okegw-sim"]
    if ta_inbound:
        lines.append("inbound_token = %s" % ta_inbound)
    lines.append("")
    ict = {"tokens": {}, "peers": {}, "real": ["ta1"], "connectors": {"ta1": ta_conn}}
    if tls:
        ict["cafile"] = tls[2]
    if ta_inbound:
        ict["tokens"]["ta1"] = ta_inbound
    for name, role, port in (("tpl", "tpl", tpl_port), ("dr", "dr", dr_port)):
        if port is None:
            continue
        conn = "accept_" + name
        lines += ["[connector %s]" % conn, "plugin = ooapi", "role = %s" % role, "phase = live",
                  "acceptance = yes", "base_url = http://127.0.0.1:%d/ooapi" % port, "auth = bearer",
                  "token = %s" % out[name], "inbound_token = %s" % tok[name], "connect_timeout_ms = 2000",
                  "timeout_ms = 5000", ""]
        ict["tokens"][name] = tok[name]
        ict["peers"][name] = {"listen": "127.0.0.1:%d" % port, "token": out[name]}
        ict["connectors"][name] = conn
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return ict


def start_okegw(binary, conf, workdir, timeout=10.0):
    """Starts okegw on conf; (process, port, stderr path)."""
    timeout *= float(os.environ.get("OKEGW_TIME_SCALE", "1"))
    err_path = os.path.join(workdir, "okegw-stderr.log")
    err = open(err_path, "wb")
    wrapper = shlex.split(os.environ.get("OKEGW_WRAPPER", ""))  # e.g. valgrind, as in the other tests
    proc = subprocess.Popen(wrapper + [binary, "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err, cwd=workdir)
    err.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(err_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                if line.startswith("{"):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("msg") == "listening" and "port" in rec:
                        return proc, int(rec["port"]), err_path
        if proc.poll() is not None:
            raise RuntimeError("okegw exited with %s; see %s" % (proc.returncode, err_path))
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("okegw did not listen in time; see %s" % err_path)


def start_sim_server(binary, workdir, timeout=10.0):
    """`okegw sim --listen 127.0.0.1:PORT`: a plain HTTP OKE supplier; (process, base URL)."""
    port = free_port()
    err = open(os.path.join(workdir, "sim-stderr.log"), "wb")
    proc = subprocess.Popen([binary, "sim", "--listen", "127.0.0.1:%d" % port], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, cwd=workdir)
    err.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, "http://127.0.0.1:%d" % port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("okegw sim exited with %s" % proc.returncode)
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("okegw sim did not listen in time")


def stop(proc):
    """SIGTERM, then the exit code (None when it had to be killed)."""
    if proc is None:
        return 0
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10 * float(os.environ.get("OKEGW_TIME_SCALE", "1")))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--okegw", required=True)
    ap.add_argument("--workdir", required=True, help="emptied first")
    ap.add_argument("--kit", action="store_true",
                    help="the supplier conformance kit (accept/kit) against `okegw sim --listen` behind an "
                         "ooapi connector, instead of the chain scenarios against the sim plugin")
    ap.add_argument("--https", action="store_true",
                    help="the gateway serves https with a test CA (made with openssl); the engine gets it as cafile")
    args, rest = ap.parse_known_args()
    if rest and rest[0] == "--":
        rest = rest[1:]
    binary = os.path.abspath(args.okegw)
    workdir = os.path.abspath(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    sim = gw = None
    try:
        conf = os.path.join(workdir, "plugins.conf")
        tls = None
        if args.https:
            sys.path.insert(0, HERE)
            import okegwtest  # noqa: E402  (the test CA helpers)
            ca = okegwtest.make_ca(os.path.join(workdir, "pki"))
            cert, key = okegwtest.issue(os.path.join(workdir, "pki"), "gateway", "/CN=127.0.0.1", server=True)
            tls = (cert, key, ca, free_port())
        if args.kit:
            sim, ta_url = start_sim_server(binary, workdir)
            ict = write_acceptance_conf(conf, "okegw.db", free_port(), None, ta_url=ta_url, tls=tls)
            rest = ["--scenarios", os.path.join(REPO, "accept", "kit")] + rest
        else:
            ict = write_acceptance_conf(conf, "okegw.db", free_port(), free_port(), tls=tls)
        ict_path = os.path.join(workdir, "ict.json")
        with open(ict_path, "w") as f:
            json.dump(ict, f, indent=2)
        gw, port, _ = start_okegw(binary, conf, workdir)
        url = "https://127.0.0.1:%d/ooapi" % tls[3] if tls else "http://127.0.0.1:%d/ooapi" % port
        cmd = [sys.executable, ENGINE, "--gateway", url, "--tokens", ict_path,
               "--acceptance", "--events", os.path.join(workdir, "events.jsonl"),
               "--workdir", os.path.join(workdir, "engine")] + rest
        rc = subprocess.call(cmd)
        if gw.poll() is not None:
            print("okegw died during the run (exit %s)" % gw.returncode)
            rc = 1
        code = stop(gw)
        if code != 0:
            print("okegw exited with %s on SIGTERM (see %s)" % (code, os.path.join(workdir, "okegw-stderr.log")))
            rc = 1
        return rc
    finally:
        stop(gw)
        stop(sim)


if __name__ == "__main__":
    sys.exit(main())
