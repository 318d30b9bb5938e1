#!/usr/bin/env python3
"""Install test: okegw installs, and a supplier's plugin builds out of tree
against the *installed* SDK and is accepted by the *installed* okegw.

  1. cmake --install BUILD --prefix TMP/prefix
  2. the installed default configuration passes okegw -t, and okegw runs on
     it with its store in the installed state folder
  3. examples/plugin-template configured with nothing but
     PKG_CONFIG_PATH=TMP/prefix/lib/pkgconfig (pkg-config route), and the
     installed copy of the template with CMAKE_PREFIX_PATH=TMP/prefix
     (find_package route); both build template.so
  4. TMP/prefix/bin/okegw -t accepts a plugins.conf whose TA connector is
     template.so (and the plugin's own key), and refuses: an unknown key
     (naming the template's keys), a missing base_url (the template's init
     refuses), and a .so path that does not exist

In a sanitizer build the installed okegw is ASan-built and the template is
built plain, as a supplier would: an uninstrumented .so loads into an
instrumented binary (the other way round would not).

Python 3 standard library only. The work folder is removed on success and
kept (its path printed) on failure.
"""

import argparse
import os
import shutil
import signal
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


def run(cmd, env=None, cwd=None, expect=0):
    """Runs cmd; returns (rc, stdout+stderr). expect: the exit code wanted,
    "nonzero", or None for any."""
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    if expect == "nonzero":
        check(p.returncode != 0, "expected failure, got exit 0 from %s\n%s" % (" ".join(cmd), out))
    elif expect is not None:
        check(p.returncode == expect, "exit %d (wanted %d) from %s\n%s"
              % (p.returncode, expect, " ".join(cmd), out))
    return p.returncode, out


def find_one(root, name):
    """The one file called name below root."""
    hits = [os.path.join(d, name) for d, _, files in os.walk(root) if name in files]
    check(len(hits) == 1, "expected one %s below %s, found %r" % (name, root, hits))
    return hits[0]


def clean_env(**set_vars):
    """The environment without any search path that could find another SDK."""
    env = dict(os.environ)
    for k in ("CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "okegw-plugin_DIR",
              "CMAKE_GENERATOR", "CFLAGS", "LDFLAGS"):
        env.pop(k, None)
    env.update(set_vars)
    return env


def build_template(a, src, bld, env, extra):
    _, out = run([a.cmake, "-S", src, "-B", bld, "-DCMAKE_C_COMPILER=" + a.cc] + extra, env=env)
    run([a.cmake, "--build", bld], env=env)
    so = os.path.join(bld, "template.so")
    check(os.path.isfile(so), "no %s after the build" % so)
    return so, out


def template_conf(so, extra=""):
    return ("; written by tests/install/test_install.py\n"
            "[gateway]\nlisten = 127.0.0.1:0\nstore = okegw.db\n\n"
            "[connector supplier]\nplugin = %s\nrole = ta\nphase = live\n"
            "base_url = http://127.0.0.1:9/oke\nauth = none\ntenant = school-1\n%s" % (so, extra))


def okegw_t(okegw, conf_path, text, expect):
    with open(conf_path, "w") as f:
        f.write(text)
    return run([okegw, "-t", "-c", conf_path], expect=expect)


def installed_run(okegw, conf_dir, statedir):
    """okegw on the installed configuration (on a free port): it must come up,
    answer /healthz and keep its store in the installed state folder."""
    with open(os.path.join(conf_dir, "plugins.conf")) as f:
        text = f.read()
    check("\nlisten = 127.0.0.1:8080" in text, "installed plugins.conf has no listen line to change")
    live = os.path.join(conf_dir, "test-live.conf")  # next to it: same relative paths
    with open(live, "w") as f:
        f.write(text.replace("\nlisten = 127.0.0.1:8080", "\nlisten = 127.0.0.1:0"))
    errlog = os.path.join(conf_dir, "test-live.stderr")
    with open(errlog, "wb") as err:
        proc = subprocess.Popen([okegw, "-c", live], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        port = None
        deadline = time.time() + 20
        while port is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
            with open(errlog, errors="replace") as f:
                for line in f:
                    if '"msg":"listening"' in line and '"port":' in line:
                        port = int(line.split('"port":')[1].split(",")[0].split("}")[0])
        with open(errlog, errors="replace") as f:
            log = f.read()
        check(port, "installed okegw did not start on its installed configuration:\n" + log)
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10) as r:
            check(r.status == 200, "/healthz answered %d" % r.status)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    check(proc.returncode == 0, "okegw exited %d after SIGTERM" % proc.returncode)
    check(os.path.isfile(os.path.join(statedir, "okegw.db")),
          "the store is not in the installed state folder %s" % statedir)
    check(not os.path.exists(os.path.join(conf_dir, "okegw.db")),
          "the store was created next to the configuration instead")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="okegw's build folder")
    ap.add_argument("--source", required=True, help="okegw's source folder")
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="okegw-install-")
    ok = False
    try:
        prefix = os.path.join(work, "prefix")
        run([a.cmake, "--install", a.build, "--prefix", prefix])
        okegw = os.path.join(prefix, "bin", "okegw")
        check(os.access(okegw, os.X_OK), "no %s" % okegw)
        for name in ("ooapi.so", "sim.so", "rest.so"):
            find_one(os.path.join(prefix, "lib"), name)
        for h in os.listdir(os.path.join(a.source, "include", "oke")):
            check(os.path.isfile(os.path.join(prefix, "include", "oke", h)), "SDK header %s not installed" % h)
        check(os.path.isfile(os.path.join(prefix, "share", "okegw", "scripts", "lib", "oke.lua")),
              "scripts/lib not installed in share/okegw")
        print("ok - installed into %s" % prefix)

        # the default configuration, as installed
        conf = find_one(prefix, "plugins.conf")
        check(conf.endswith(os.path.join("okegw", "plugins.conf")), "config at %s" % conf)
        run([okegw, "-t", "-c", conf])
        statedir = os.path.join(prefix, "var", "lib", "okegw")
        installed_run(okegw, os.path.dirname(conf), statedir)
        print("ok - installed plugins.conf passes okegw -t; okegw runs on it, store in %s" % statedir)

        # route 1: pkg-config only (find_package switched off, so an SDK
        # installed elsewhere on this machine cannot be picked up instead)
        pc = find_one(prefix, "okegw-plugin.pc")
        env = clean_env(PKG_CONFIG_PATH=os.path.dirname(pc))
        so_pc, out = build_template(a, os.path.join(a.source, "examples", "plugin-template"),
                                    os.path.join(work, "build-pkgconfig"), env,
                                    ["-DCMAKE_DISABLE_FIND_PACKAGE_okegw-plugin=TRUE"])
        check("okegw plugin SDK" in out and "pkg-config" in out and prefix in out,
              "pkg-config route: the template did not report the SDK from %s:\n%s" % (prefix, out))
        print("ok - examples/plugin-template built with PKG_CONFIG_PATH only")

        # route 2: the installed template with find_package(okegw-plugin)
        env = clean_env()
        so_cm, out = build_template(a, os.path.join(prefix, "share", "okegw", "plugin-template"),
                                    os.path.join(work, "build-cmake"), env,
                                    ["-DCMAKE_PREFIX_PATH=" + prefix])
        check("CMake package in " + prefix in out,
              "find_package route: the template did not use the package in %s:\n%s" % (prefix, out))
        print("ok - installed plugin-template built with CMAKE_PREFIX_PATH and find_package")

        confdir = os.path.join(work, "conf")
        os.makedirs(confdir)
        cpath = os.path.join(confdir, "plugins.conf")
        for so in (so_pc, so_cm):
            # `tenant` is the template's own key: accepted only when okegw
            # loaded this .so and read its descriptor
            _, out = okegw_t(okegw, cpath, template_conf(so), 0)
            check("is ok" in out, "okegw -t said:\n" + out)
            _, out = okegw_t(okegw, cpath, template_conf(so, "colour = blue\n"), "nonzero")
            check("unknown key 'colour' (plugin template adds: tenant)" in out,
                  "an unknown key was not refused naming the template's keys:\n" + out)
            _, out = okegw_t(okegw, cpath, template_conf(so).replace(
                "base_url = http://127.0.0.1:9/oke\n", ""), "nonzero")
            check("base_url is required for the template plugin" in out
                  and "plugin template refused to initialise" in out,
                  "the template's init did not refuse a connector without base_url:\n" + out)
        print("ok - the installed okegw -t accepts template.so (both builds) and its key 'tenant'")

        missing = os.path.join(work, "nowhere", "template.so")
        _, out = okegw_t(okegw, cpath, template_conf(missing), "nonzero")
        check("cannot load plugin" in out, "a missing .so was not refused clearly:\n" + out)
        print("ok - a plugin path that does not exist fails okegw -t")
        ok = True
    except TestFailure as e:
        print("FAIL - %s" % e)
    finally:
        if ok and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work folder kept: %s" % work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
