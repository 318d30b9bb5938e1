#!/usr/bin/env python3
"""README.md's walk-through "Add a second supplier and take it from shadow to live", run as it is
written: its ```sh blocks, one after the other in one bash (variables, functions and the background
`okegw sim` carry over as in a person's terminal), in a folder laid out like the repository (the
repository's plugins.conf and scripts/, the fixtures, build/okegw) with the gateway started on that
plugins.conf as the README's first command does. What each block prints must be the ```text block
that follows it (times and configuration hashes aside), no command may fail and nothing may go to
stderr. At the end plugins.conf is the original again, the second supplier is stopped (exit 0) and
its removal is recorded.

The README's addresses are 127.0.0.1:8080 (gateway) and 127.0.0.1:8091 (second supplier); when one is
taken on this machine (another test, a running demo) both the configuration and the blocks get a free
port instead, the one change made to them."""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (REPO, TestFailure, check, free_port, main, run_okegw,  # noqa: E402
                       time_scale, wrapper)

HEADING = "### Add a second supplier and take it from shadow to live"
GATEWAY_ADDR = "127.0.0.1:8080"
SIM_ADDR = "127.0.0.1:8091"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
HASH = re.compile(r"\b[0-9a-f]{12}\b")


def walkthrough_blocks():
    """[(sh_text, expected_text or None)] of the walk-through, in order."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    check(HEADING in lines, "README.md has no heading %r" % HEADING)
    i = lines.index(HEADING) + 1
    blocks = []  # (lang, text)
    while i < len(lines) and not lines[i].startswith("## ") and not lines[i].startswith("### "):
        m = re.match(r"^```(\w*)$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and lines[j] != "```":
                j += 1
            check(j < len(lines), "README.md: unterminated code block at line %d" % (i + 1))
            blocks.append((m.group(1), "\n".join(lines[i + 1:j]) + "\n"))
            i = j
        i += 1
    out = []
    for k, (lang, text) in enumerate(blocks):
        if lang == "sh":
            nxt = blocks[k + 1] if k + 1 < len(blocks) else None
            out.append((text, nxt[1] if nxt and nxt[0] == "text" else None))
        else:
            check(lang == "text" and k > 0 and blocks[k - 1][0] == "sh",
                  "walk-through: a ```%s block that is not the output of a ```sh block" % lang)
    return out


def port_free(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as okegw binds: TIME_WAIT is no owner
    try:
        s.bind((host, int(port)))
        return True
    except OSError:
        return False
    finally:
        s.close()


def listening(addr):
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def normalise(text):
    return [HASH.sub("HASH", TIME.sub("TIME", line.rstrip())) for line in text.strip("\n").split("\n")]


class Shell:
    """One bash in the walk-through's folder; run() sources a block there and returns
    (stdout, stderr, commands that failed). set -E + an ERR trap record every failing command."""

    def __init__(self, t, cwd):
        self.t = t
        self.cwd = cwd
        self.n = 0
        self.proc = subprocess.Popen(["bash"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(t.workdir, "bash.log"), "wb"), cwd=cwd)
        self.send("set -E; trap 'echo \"$BASH_COMMAND (exit $?)\" >> .walk/failed' ERR")

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def run(self, text, timeout=60.0):
        self.n += 1
        w = os.path.join(self.cwd, ".walk")
        base = os.path.join(w, "%d" % self.n)
        with open(base + ".sh", "w") as f:
            f.write(text)
        open(os.path.join(w, "failed"), "w").close()
        self.send(". .walk/%d.sh > .walk/%d.out 2> .walk/%d.err; echo $? > .walk/%d.tmp && "
                  "mv .walk/%d.tmp .walk/%d.rc" % ((self.n,) * 6))
        deadline = time.monotonic() + timeout * time_scale()
        while not os.path.exists(base + ".rc"):
            if self.proc.poll() is not None:
                raise TestFailure("bash exited with %s during block %d" % (self.proc.returncode, self.n))
            if time.monotonic() > deadline:
                raise TestFailure("block %d did not finish within %.0f s:\n%s" % (self.n, timeout, text))
            time.sleep(0.05)

        def read(name):
            with open(os.path.join(w, name), encoding="utf-8", errors="replace") as f:
                return f.read()
        return read("%d.out" % self.n), read("%d.err" % self.n), read("failed")

    def close(self):
        if self.proc.poll() is None:
            # whatever the blocks left running (the second supplier after a failure) goes too
            self.send('[ -n "$SIM" ] && kill $SIM 2>/dev/null; exit 0')
            try:
                self.proc.wait(10 * time_scale())
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def layout(t, gw_addr, sim_addr):
    """A folder like the repository: plugins.conf, scripts/, build/okegw, the fixtures."""
    root = os.path.join(t.workdir, "repo")
    os.makedirs(os.path.join(root, "build"))
    os.makedirs(os.path.join(root, ".walk"))
    shutil.copytree(os.path.join(REPO, "scripts"), os.path.join(root, "scripts"))
    shutil.copytree(os.path.join(REPO, "tests", "integration", "fixtures"),
                    os.path.join(root, "tests", "integration", "fixtures"))
    # build/okegw: the binary under test, under OKEGW_WRAPPER like the gateway (exec keeps the
    # pid, so `kill $SIM` reaches the second supplier itself)
    exe = os.path.join(root, "build", "okegw")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\"\n" % " ".join(shlex.quote(a) for a in wrapper() + [t.binary]))
    os.chmod(exe, 0o755)
    with open(os.path.join(REPO, "plugins.conf"), encoding="utf-8") as f:
        original = f.read()
    check(GATEWAY_ADDR in original, "the repository's plugins.conf does not listen on %s" % GATEWAY_ADDR)
    return root, original.replace(GATEWAY_ADDR, gw_addr)


def phases_json(t, root):
    rc, out = run_okegw(t.binary, ["phases", "-c", "plugins.conf", "--connector", "second", "--json"],
                        cwd=root)
    check(rc == 0, "okegw phases --json: exit %s: %s" % (rc, out))
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_walkthrough(t):
    blocks = walkthrough_blocks()
    check(len(blocks) >= 5, "the walk-through has %d ```sh blocks, expected at least 5" % len(blocks))
    check(all(exp is not None for _, exp in blocks),
          "every ```sh block of the walk-through should be followed by the ```text it prints")
    gw_addr, sim_addr = GATEWAY_ADDR, SIM_ADDR
    if not (port_free(GATEWAY_ADDR) and port_free(SIM_ADDR)):
        gw_addr, sim_addr = "127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()
        t.notes.append("%s or %s taken: ran on %s and %s" % (GATEWAY_ADDR, SIM_ADDR, gw_addr, sim_addr))
    root, conf_text = layout(t, gw_addr, sim_addr)
    g = t.gateway(conf_text, subdir="repo")
    check(g.port == int(gw_addr.rsplit(":", 1)[1]), "the gateway listens on %s, not %s" % (g.port, gw_addr))
    conf_path = os.path.join(root, "plugins.conf")

    sh = Shell(t, root)
    t.cleanups.append(sh.close)
    for n, (text, expected) in enumerate(blocks, 1):
        text = text.replace(GATEWAY_ADDR, gw_addr).replace(SIM_ADDR, sim_addr)
        expected = expected.replace(GATEWAY_ADDR, gw_addr).replace(SIM_ADDR, sim_addr)
        out, err, failed = sh.run(text)
        where = "walk-through block %d:\n%s" % (n, text)
        check(not failed, "%s\ncommands failed:\n%s\nstderr:\n%s" % (where, failed, err))
        check(not err.strip(), "%s\nwrote to stderr:\n%s" % (where, err))
        check(normalise(out) == normalise(expected),
              "%s\nprinted:\n%s\nthe README shows:\n%s" % (where, out, expected))
        check(g.running(), "the gateway stopped during %s" % where)

    # the walk-through cleaned up after itself
    with open(conf_path, encoding="utf-8") as f:
        check(f.read() == conf_text, "plugins.conf is not the original after the walk-through")
    for name in ("plugins.conf.before", "second.log"):
        check(not os.path.exists(os.path.join(root, name)), "%s left behind" % name)
    out, err, failed = sh.run('wait $SIM; echo "second supplier exit $?"\n')
    check(out.strip() == "second supplier exit 0",
          "the second supplier did not stop with exit 0 on kill (SIGTERM): %r %r" % (out, err))
    check(not listening(sim_addr), "something still listens on %s" % sim_addr)

    # the record: shadow, pilot, live with their reasons, and the removal
    rows = phases_json(t, root)
    check([(r["from"], r["to"]) for r in rows] ==
          [(None, "shadow"), ("shadow", "pilot"), ("pilot", "live"), ("live", "off")],
          "phase history of 'second': %r" % rows)
    check(rows[-1]["reason"] == "removed from the configuration" and
          all(r["reason"].startswith("besluit examencommissie") for r in rows[:3]),
          "phase reasons of 'second': %r" % [r["reason"] for r in rows])
    check(len({r["configSha256"] for r in rows}) == 4,
          "every change should name the configuration that made it: %r" % rows)
    # and the gateway serves the original configuration: 6 tests again
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200 and len(r.json()["items"]) == 6,
          "catalogue after the walk-through: %s" % r.short())


if __name__ == "__main__":
    main(globals())
