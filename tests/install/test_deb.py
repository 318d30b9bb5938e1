#!/usr/bin/env python3
"""Package test: the .deb CPack builds, what it holds, its unit and its scripts.

  1. configure okegw in a scratch build folder as a package is configured
     (prefix /usr, /etc, /var, no tests), build it, `cpack -G DEB`:
     okegw_<version>_<arch>.deb
  2. dpkg-deb --info: Depends has python3, adduser and the shared libraries
     found by dpkg-shlibdeps (libuv, libsqlite3, libssl, liblua, libsystemd);
     conffiles names /etc/okegw/plugins.conf, and every conffile is in the
     package; postinst, prerm, postrm are there and pass `sh -n`
  3. dpkg-deb --contents: the binary, the three plugins, the unit, the
     configuration, the Lua library, the SDK (headers, .pc, CMake package),
     the plugin template, share/okegw/accept (engine and scenarios), the docs
     and the state folder /var/lib/okegw
  4. the installed plugins.conf names the store /var/lib/okegw/okegw.db and
     the Lua library /usr/share/okegw/scripts/lib; the unit is Type=notify,
     runs /usr/bin/okegw -c /etc/okegw/plugins.conf as User=okegw with
     StateDirectory=okegw and the hardening options, and `systemd-analyze
     verify` accepts it without a warning (its commands pointed at the
     extracted binary, as verify checks that they exist); `systemd-analyze
     security --offline` rates its exposure at most 2.5 ("OK")
  5. dpkg-deb -x into a scratch root; the extracted okegw (the system's
     libraries) checks the extracted plugins.conf with -t, then runs on it
     with the packaged paths moved into the scratch root, the plugins loaded
     from the packaged .so files and its listener on a free port: it tells a
     NOTIFY_SOCKET READY=1, creates its store in the root's var/lib/okegw,
     answers the catalogue through the simulated supplier and says
     STOPPING=1 on SIGTERM. Where the kernel has prctl(PR_SET_MDWE) (Linux
     6.3), both run with writable+executable memory refused, as the unit's
     MemoryDenyWriteExecute=yes does
  6. the postinst, run with stand-ins for adduser, getent, chown, chmod,
     dpkg-statoverride and systemctl on PATH (nothing on this machine
     changes): a first install creates the okegw system user, gives the
     state folder to okegw (0750) and the configuration to root:okegw
     (0640), and enables and starts the service when systemd runs, or only
     enables it when it does not (a container); an upgrade neither creates
     the user again nor enables the service

  7. as root: `dpkg --root` installs the package into an empty root (the
     maintainer scripts run with DPKG_ROOT and stand-ins as in 6); dpkg
     registers /etc/okegw/plugins.conf as a conffile, the postinst made it
     0640; installing again (an upgrade) keeps a changed plugins.conf; a
     purge removes the package and its configuration and keeps the store

What it cannot do in a container without systemd as PID 1: install the .deb
with dpkg into this system and see systemd start the service under the unit's
sandbox (SystemCallFilter, ProtectSystem, the user and StateDirectory).

Python 3 standard library only. The work folder is removed on success and
kept (its path printed) on failure.
"""

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def run(cmd, env=None, cwd=None, expect=0, timeout=900):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if expect is not None:
        check(p.returncode == expect, "exit %d (wanted %d) from %s\n%s"
              % (p.returncode, expect, " ".join(cmd), out))
    return p.returncode, out


def need(tool):
    path = shutil.which(tool)
    check(path, "%s not found (README.md's first command installs it)" % tool)
    return path


def build_deb(a, work):
    bld = os.path.join(work, "build-deb")
    run([a.cmake, "-S", a.source, "-B", bld, "-DCMAKE_INSTALL_PREFIX=/usr",
         "-DCMAKE_INSTALL_SYSCONFDIR=/etc", "-DCMAKE_INSTALL_LOCALSTATEDIR=/var",
         "-DOKEGW_BUILD_TESTS=OFF", "-DCMAKE_C_COMPILER=" + a.cc])
    run([a.cmake, "--build", bld, "-j", str(a.jobs)])
    _, out = run([a.cpack, "-G", "DEB"], cwd=bld)
    debs = [f for f in os.listdir(bld) if f.endswith(".deb")]
    check(len(debs) == 1, "cpack made %r\n%s" % (debs, out))
    check(re.fullmatch(r"okegw_\d+\.\d+\.\d+_[a-z0-9]+\.deb", debs[0]),
          "package file name %s is not okegw_<version>_<arch>.deb" % debs[0])
    return os.path.join(bld, debs[0])


def control_field(info, name):
    m = re.search(r"^ %s: (.*)$" % re.escape(name), info, re.M)
    return m.group(1) if m else None


def check_control(deb, work):
    _, info = run(["dpkg-deb", "--info", deb])
    dep = control_field(info, "Depends") or ""
    names = {d.strip().split(" ")[0] for d in dep.split(",")}
    for want in ("python3", "adduser", "libuv1", "libsqlite3-0", "libssl3", "liblua5.4-0",
                 "libcjson1", "libcurl4", "libcjose0", "libsystemd0", "libc6"):
        check(want in names, "Depends lacks %s: %s" % (want, dep))
    check(control_field(info, "Package") == "okegw", "Package: %s" % control_field(info, "Package"))
    ctl = os.path.join(work, "control")
    run(["dpkg-deb", "--control", deb, ctl])
    for script in ("postinst", "prerm", "postrm"):
        p = os.path.join(ctl, script)
        check(os.path.exists(p), "no %s in the package" % script)
        check(os.stat(p).st_mode & 0o111, "%s is not executable" % script)
        run(["sh", "-n", p])
    with open(os.path.join(ctl, "conffiles")) as f:
        conffiles = f.read().split()
    check("/etc/okegw/plugins.conf" in conffiles, "conffiles: %r" % conffiles)
    return ctl, conffiles


CONTENTS = [
    "/usr/bin/okegw",
    "/usr/lib/systemd/system/okegw.service",
    "/etc/okegw/plugins.conf",
    "/etc/okegw/plugins.conf.default",
    "/usr/share/okegw/scripts/lib/oke.lua",
    "/usr/include/oke/plugin.h",
    "/usr/share/okegw/accept/okechain.py",
    "/usr/share/okegw/accept/chain.json",
    "/usr/share/doc/okegw/README.md",
    "/var/lib/okegw/",
]
CONTENTS_RE = [
    r"/usr/lib/[^ ]*okegw/plugins/ooapi\.so",
    r"/usr/lib/[^ ]*okegw/plugins/sim\.so",
    r"/usr/lib/[^ ]*okegw/plugins/rest\.so",
    r"/usr/lib/[^ ]*pkgconfig/okegw-plugin\.pc",
    r"/usr/lib/[^ ]*cmake/okegw-plugin/okegw-pluginConfig\.cmake",
    r"/usr/share/okegw/plugin-template/CMakeLists\.txt",
    r"/usr/share/okegw/accept/scenarios/.+",
]


def check_contents(deb, conffiles):
    _, out = run(["dpkg-deb", "--contents", deb])
    paths = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6:
            paths.add(f[5][1:] if f[5].startswith("./") else f[5])
    for p in CONTENTS:
        check(p in paths, "the package lacks %s" % p)
    for r in CONTENTS_RE:
        check(any(re.fullmatch(r, p) for p in paths), "the package has nothing like %s" % r)
    for c in conffiles:
        check(c in paths, "conffile %s is not in the package" % c)
    return paths


def check_conf_and_unit(root, work):
    with open(os.path.join(root, "etc/okegw/plugins.conf")) as f:
        conf = f.read()
    check(re.search(r"^store = /var/lib/okegw/okegw\.db\b", conf, re.M),
          "installed plugins.conf does not name /var/lib/okegw/okegw.db:\n%s" % conf[:600])
    check(re.search(r"^scripts_lib = /usr/share/okegw/scripts/lib\b", conf, re.M),
          "installed plugins.conf scripts_lib:\n%s" % conf[:600])
    with open(os.path.join(root, "usr/lib/systemd/system/okegw.service")) as f:
        unit = f.read()
    keys = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    want = {
        "Type": "notify", "ExecStart": "/usr/bin/okegw -c /etc/okegw/plugins.conf",
        "ExecReload": "/usr/bin/okegw reload -c /etc/okegw/plugins.conf",
        "StateDirectory": "okegw", "User": "okegw", "Restart": "on-failure",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "CapabilityBoundingSet": "",
        "WantedBy": "multi-user.target",
    }
    for k, v in want.items():
        check(keys.get(k) == [v], "okegw.service %s=%r (wanted %r)" % (k, keys.get(k), v))
    # systemd-analyze verify checks that the commands exist: point them at the
    # extracted binary
    vdir = os.path.join(work, "verify")
    os.makedirs(vdir)
    with open(os.path.join(vdir, "okegw.service"), "w") as f:
        f.write(unit.replace("/usr/bin/okegw", os.path.join(root, "usr/bin/okegw")))
    rc, out = run([need("systemd-analyze"), "verify", "--man=no",
                   os.path.join(vdir, "okegw.service")], expect=None)
    check(rc == 0, "systemd-analyze verify: exit %d\n%s" % (rc, out))
    bad = [x for x in out.splitlines() if "okegw.service" in x]
    check(not bad, "systemd-analyze verify warns:\n%s" % "\n".join(bad))
    # the hardening as systemd rates it: exposure at most 2.5 of 10 ("OK")
    rc, out = run(["systemd-analyze", "security", "--offline=true", "--threshold=25",
                   os.path.join(vdir, "okegw.service")], expect=None)
    m = re.search(r"Overall exposure level for okegw\.service: (\d+\.\d+)", out)
    check(rc == 0 and m, "systemd-analyze security: exit %d\n%s" % (rc, out[-1500:]))
    print("# systemd-analyze security: exposure %s" % m.group(1), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def mdwe_available():
    """Linux >= 6.3 refuses writable+executable memory per process (prctl
    PR_SET_MDWE): what MemoryDenyWriteExecute=yes asks of the unit."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0 else 1)
    os.close(r)
    os.close(w)
    return os.waitpid(pid, 0)[1] == 0


def deny_write_execute():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def check_runs(root, work):
    okegw = os.path.join(root, "usr/bin/okegw")
    conf = os.path.join(root, "etc/okegw/plugins.conf")
    _, out = run([okegw, "--version"])
    check("okegw" in out, "--version: %s" % out)
    # the packaged paths, moved into the scratch root (as a chroot would see them)
    with open(conf) as f:
        text = f.read()
    text = text.replace("/var/lib/okegw/", os.path.join(root, "var/lib/okegw") + "/")
    text = text.replace("/usr/share/okegw/", os.path.join(root, "usr/share/okegw") + "/")
    # the plugins as the packaged .so files (dlopen), not the built-in copies
    plugdir = [os.path.join(d, "okegw/plugins") for d, _, _ in os.walk(os.path.join(root, "usr/lib"))
               if os.path.isdir(os.path.join(d, "okegw/plugins"))][0]
    for p in ("sim", "rest", "ooapi"):
        text, n = re.subn(r"^plugin = %s$" % p, "plugin = %s/%s.so" % (plugdir, p), text,
                          flags=re.M)
        check(n >= 1, "the packaged config has no connector with plugin = %s" % p)
    port = free_port()
    text = re.sub(r"^listen = 127\.0\.0\.1:8080", "listen = 127.0.0.1:%d" % port, text,
                  count=1, flags=re.M)
    check(("127.0.0.1:%d" % port) in text, "no listen = 127.0.0.1:8080 in the packaged config")
    local = os.path.join(root, "etc/okegw/plugins.local.conf")
    with open(local, "w") as f:
        f.write(text)
    # with MemoryDenyWriteExecute's rule in force where the kernel has it: the
    # plugins load (dlopen) and the Lua mappings compile without W+X memory
    mdwe = mdwe_available()
    pre = deny_write_execute if mdwe else None
    print("# MemoryDenyWriteExecute checked with prctl(PR_SET_MDWE): %s"
          % ("yes" if mdwe else "no (kernel < 6.3)"), flush=True)
    p = subprocess.run([okegw, "-t", "-c", local], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       preexec_fn=pre, timeout=60)
    check(p.returncode == 0, "okegw -t on the packaged config: %s" % p.stdout.decode())
    nsock = os.path.join(work, "notify")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(nsock)
    n.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=nsock)
    log = open(os.path.join(work, "okegw.log"), "wb")
    p = subprocess.Popen([okegw, "-c", local], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=log, env=env, cwd=work, preexec_fn=pre)
    try:
        msg = n.recv(4096).decode()
        check(msg == "READY=1", "the packaged okegw told NOTIFY_SOCKET %r" % msg)
        check(os.path.exists(os.path.join(root, "var/lib/okegw/okegw.db")),
              "no store in the state folder")
        with urllib.request.urlopen("http://127.0.0.1:%d/ooapi/components?componentType=test"
                                    % port, timeout=10) as r:
            body = r.read()
            check(r.status == 200 and b"componentId" in body, "catalogue: %d %r" % (r.status,
                                                                                   body[:200]))
        p.send_signal(signal.SIGTERM)
        check(n.recv(4096).decode() == "STOPPING=1", "no STOPPING=1 on SIGTERM")
        check(p.wait(30) == 0, "the packaged okegw did not exit 0 on SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
        n.close()


STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "%s"
case "$(basename "$0")" in
  getent) %s ;;
  dpkg-statoverride) exit 1 ;;
esac
exit 0
"""


def run_postinst(ctl, work, root, args, user_exists):
    """The postinst with DPKG_ROOT=root and stand-ins on PATH; the commands it ran."""
    bindir = os.path.join(work, "stubs-%d" % time.monotonic_ns())
    os.makedirs(bindir)
    calls = os.path.join(bindir, "calls")
    for tool in ("adduser", "getent", "chown", "chmod", "dpkg-statoverride", "systemctl"):
        with open(os.path.join(bindir, tool), "w") as f:
            f.write(STUB % (calls, "exit 0" if user_exists else "exit 2"))
        os.chmod(os.path.join(bindir, tool), 0o755)
    env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
               DPKG_ROOT=root)
    run(["sh", os.path.join(ctl, "postinst")] + args, env=env)
    if not os.path.exists(calls):
        return []
    with open(calls) as f:
        return [c.replace(root, "ROOT") for c in f.read().splitlines()]


def check_postinst(ctl, work, root):
    # a container: no systemd running in ROOT
    calls = run_postinst(ctl, work, root, ["configure"], user_exists=False)
    want = [
        "getent passwd okegw",
        "adduser --system --group --home /var/lib/okegw --no-create-home --gecos okegw OKE "
        "gateway okegw",
        "chown okegw:okegw ROOT/var/lib/okegw", "chmod 0750 ROOT/var/lib/okegw",
        "chown root:okegw ROOT/etc/okegw/plugins.conf", "chmod 0640 ROOT/etc/okegw/plugins.conf",
        "systemctl --root=ROOT enable okegw.service",
    ]
    got = [c for c in calls if not c.startswith("dpkg-statoverride")]
    for w in want:
        check(w in got, "postinst (first install, no systemd) did not run %r: %r" % (w, got))
    check(not any("--now" in c or "start" in c or "daemon-reload" in c for c in calls),
          "postinst without systemd running talked to systemd: %r" % calls)
    # systemd running: daemon-reload, enable and start
    os.makedirs(os.path.join(root, "run/systemd/system"))
    calls = run_postinst(ctl, work, root, ["configure"], user_exists=True)
    check(not any(c.startswith("adduser") for c in calls),
          "the user was made again though it exists: %r" % calls)
    check(calls[-2:] == ["systemctl daemon-reload", "systemctl enable --now okegw.service"],
          "postinst (first install, systemd running): %r" % calls)
    # upgrade: restarted if running, not enabled again (an admin may have disabled it)
    calls = run_postinst(ctl, work, root, ["configure", "0.0.9"], user_exists=True)
    check(calls[-2:] == ["systemctl daemon-reload", "systemctl try-restart okegw.service"],
          "postinst (upgrade, systemd running): %r" % calls)
    check(not any("enable" in c for c in calls), "upgrade enabled the service: %r" % calls)


def dpkg_root(root, stubs, *args):
    env = dict(os.environ, PATH=stubs + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    return run(["dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends"]
               + list(args), env=env, expect=None)


def check_dpkg_install(deb, work):
    """dpkg --root installs, upgrades and purges the package in an empty root;
    the maintainer scripts run outside it with DPKG_ROOT set and stand-ins
    for what would change this machine (adduser, chown, systemctl)."""
    root = os.path.join(work, "dpkgroot")
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        os.makedirs(os.path.join(root, d))
    for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
        open(os.path.join(root, f), "w").close()
    stubs = os.path.join(work, "dpkg-stubs")
    os.makedirs(stubs)
    calls = os.path.join(stubs, "calls")
    for tool in ("adduser", "getent", "chown", "dpkg-statoverride", "systemctl"):
        with open(os.path.join(stubs, tool), "w") as f:
            f.write(STUB % (calls, "exit 2"))
        os.chmod(os.path.join(stubs, tool), 0o755)
    rc, out = dpkg_root(root, stubs, "-i", deb)
    check(rc == 0, "dpkg --root -i: exit %d\n%s" % (rc, out))
    _, st = run(["dpkg", "--root=" + root, "-s", "okegw"])
    check("Status: install ok installed" in st, "dpkg -s after install:\n%s" % st)
    check(re.search(r"^ /etc/okegw/plugins\.conf [0-9a-f]{32}$", st, re.M),
          "plugins.conf is not a registered conffile:\n%s" % st)
    conf = os.path.join(root, "etc/okegw/plugins.conf")
    check(os.stat(conf).st_mode & 0o777 == 0o640, "plugins.conf mode %o after install (0640)"
          % (os.stat(conf).st_mode & 0o777))
    with open(calls) as f:
        got = f.read()
    check("adduser --system" in got and ("systemctl --root=%s enable okegw.service" % root) in got,
          "postinst under dpkg:\n%s" % got)
    # a school's change to plugins.conf survives an upgrade (here: the same
    # package again, which dpkg runs as an upgrade)
    with open(conf, "a") as f:
        f.write("; changed by the school\n")
    open(os.path.join(root, "var/lib/okegw/okegw.db"), "w").close()
    rc, out = dpkg_root(root, stubs, "--force-confold", "-i", deb)
    check(rc == 0, "dpkg --root -i (again): exit %d\n%s" % (rc, out))
    with open(conf) as f:
        check(f.read().endswith("; changed by the school\n"), "the upgrade replaced plugins.conf")
    # purge: the package's files and its configuration go, the store stays
    rc, out = dpkg_root(root, stubs, "--purge", "okegw")
    check(rc == 0, "dpkg --root --purge: exit %d\n%s" % (rc, out))
    check(not os.path.exists(os.path.join(root, "usr/bin/okegw")), "purge left /usr/bin/okegw")
    check(not os.path.exists(conf), "purge left /etc/okegw/plugins.conf")
    check(os.path.exists(os.path.join(root, "var/lib/okegw/okegw.db")),
          "purge deleted the store (the audit trail is evidence: it is kept)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--cpack", default="cpack")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("OKEGW_TEST_JOBS", "2")))
    ap.add_argument("--deb", help="check this .deb instead of building one")
    a = ap.parse_args()
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "systemd-analyze"):
        need(tool)
    work = tempfile.mkdtemp(prefix="okegw-deb-")
    ok = False
    try:
        deb = a.deb or build_deb(a, work)
        print("# package: %s" % os.path.basename(deb), flush=True)
        ctl, conffiles = check_control(deb, work)
        check_contents(deb, conffiles)
        root = os.path.join(work, "root")
        run(["dpkg-deb", "-x", deb, root])
        check_conf_and_unit(root, work)
        check_runs(root, work)
        check_postinst(ctl, work, root)
        if os.geteuid() == 0:
            check_dpkg_install(deb, work)
        else:
            print("# dpkg --root install not checked: it needs root", flush=True)
        ok = True
        print("ok - %s: contents, unit (systemd-analyze verify, security), runs from the "
              "extracted tree (READY=1, store, catalogue), postinst, dpkg --root install, "
              "upgrade, purge" % os.path.basename(deb))
    except TestFailure as e:
        print("not ok - %s\n# work folder kept: %s" % (e, work))
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
