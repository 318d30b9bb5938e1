"""A throwaway PostgreSQL server for integration tests (Python 3 standard library only).

The tests need a real PostgreSQL, not a mock, so PgServer runs initdb and pg_ctl from the
server binaries (Debian: the postgresql package) on a fresh cluster in the test's workdir.
It listens on 127.0.0.1 only, on a free port, and never touches the system's cluster
(port 5432, /var/run/postgresql): no pg_ctlcluster, no default socket directory.

initdb and pg_ctl refuse to run as root, so as root (CI) they run as the `postgres` system
user (else `nobody`) through setpriv or runuser; psql runs as the caller over TCP with a
password (scram-sha-256), the way okegw itself connects.

    reason = skip_reason()          # None, or why PostgreSQL cannot be used here
    with PgServer(workdir) as pg:
        pg.create_role("gw", "secret")
        pg.create_db("gwdb", "gw")
        url = pg.url("gw", "secret", "gwdb")
        pg.kill(); pg.restart()     # a crash: committed data must survive

Self-test: python3 tests/integration/pgtest.py [workdir]
"""

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

TOOLS = ("initdb", "pg_ctl", "postgres")
HOST = "127.0.0.1"
SUPERUSER = "postgres"
DBNAME = "okegw"
# sun_path is 108 bytes; the socket itself is DIR/.s.PGSQL.NNNNN
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")
_live = set()  # started servers, stopped at exit so no postmaster outlives a failed test run


def _has_tools(d):
    return all(os.access(os.path.join(d, t), os.X_OK) for t in TOOLS)


def _version_key(name):
    """'9.6' < '15' < '16': Debian's version directories sorted as numbers."""
    try:
        return tuple(int(p) for p in name.split("."))
    except ValueError:
        return (-1,)


def find_pg_bin():
    """The directory with initdb and pg_ctl, or None. Looks at $OKEGW_PG_BIN, then
    /usr/lib/postgresql/<highest version>/bin, then PATH (symlinks resolved, since pg_ctl
    finds postgres beside its real path)."""
    env = os.environ.get("OKEGW_PG_BIN")
    if env:
        # an explicit choice is honoured even when wrong: skip_reason() says why
        return os.path.abspath(env) if _has_tools(env) else None
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for v in sorted(os.listdir(base), key=_version_key, reverse=True):
            d = os.path.join(base, v, "bin")
            if _has_tools(d):
                return d
    found = shutil.which("initdb")
    if found:
        for d in (os.path.dirname(os.path.realpath(found)), os.path.dirname(found)):
            if _has_tools(d):
                return d
    return None


def _find_psql(bindir):
    p = os.path.join(bindir, "psql")
    return p if os.access(p, os.X_OK) else shutil.which("psql")


def _run_as_user():
    """The unprivileged user the server runs as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root but there is no 'postgres' or 'nobody' user "
                       "to run the PostgreSQL server as")


def _user_prefix(pw):
    """argv prefix that runs a command as pw; setpriv first as it needs no PAM session."""
    if pw is None:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--init-groups", "--"]
    if shutil.which("runuser"):
        return ["runuser", "-u", pw.pw_name, "--"]
    raise RuntimeError("running as root but neither setpriv nor runuser (util-linux) is "
                       "installed to drop privileges for initdb/pg_ctl")


def skip_reason():
    """None when PostgreSQL can be used here, else a one-line reason for skipping."""
    bindir = find_pg_bin()
    if bindir is None:
        if os.environ.get("OKEGW_PG_BIN"):
            return ("OKEGW_PG_BIN=%s has no initdb/pg_ctl/postgres; tests against PostgreSQL "
                    "are skipped" % os.environ["OKEGW_PG_BIN"])
        return ("PostgreSQL server binaries not found (Debian: apt-get install postgresql); "
                "tests against PostgreSQL are skipped")
    if _find_psql(bindir) is None:
        return ("psql not found (Debian: apt-get install postgresql-client); tests against "
                "PostgreSQL are skipped")
    try:
        _user_prefix(_run_as_user())
    except RuntimeError as e:
        return "%s; tests against PostgreSQL are skipped" % e
    return None


def for_case(t):
    """A fresh PostgreSQL in the test case's workdir, stopped at its cleanup; or None, with
    the case noted as skipped and why (t: okegwtest's per-case context)."""
    why = skip_reason()
    if why:
        t.notes.append("skipped: " + why)
        return None
    server = PgServer(t.workdir)
    t.cleanups.append(server.stop)
    return server


def free_port():
    """A port nothing listens on now: bind 127.0.0.1:0, read the port, close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text):
    """A SQL string literal (standard_conforming_strings is on, so only ' is special)."""
    return "'" + text.replace("'", "''") + "'"


def _clean_env(**extra):
    """The caller's environment without PG* variables (PGDATA, PGPORT, PGSERVICE... must not
    steer the tools to another cluster) and with English messages, which we parse."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env["LC_MESSAGES"] = "C"
    env.update(extra)
    return env


def _tail(text, n=25):
    return "\n".join(text.splitlines()[-n:])


def _alive(pid):
    """True while pid runs; a zombie (an init that does not reap) counts as dead."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return out


class PgServer:
    """A throwaway PostgreSQL cluster in `workdir` (a new subdirectory), listening only on
    127.0.0.1 on a free port, its unix socket inside that subdirectory (or off when the
    path is too long or odd for one). Started in the constructor; stop() stops it (pg_ctl
    stop -m fast) and is idempotent; also usable as a context manager.

    Attributes: port, host, user and superuser_password (the superuser), dbname ("okegw",
    created at start), datadir, logfile, dir (the cluster's directory).
    workdir None: a temporary directory, removed by stop(). settings: extra server
    settings ({"log_statement": "all"}), passed as -c options."""

    def __init__(self, workdir=None, bindir=None, settings=None, start_timeout=60):
        self.bindir = bindir or find_pg_bin()
        if self.bindir is None:
            raise RuntimeError(skip_reason() or "PostgreSQL server binaries not found")
        self.psql_bin = _find_psql(self.bindir)
        if self.psql_bin is None:
            raise RuntimeError("psql not found in %s or on PATH" % self.bindir)
        self.host = HOST
        self.user = SUPERUSER
        self.superuser_password = secrets.token_hex(16)
        self.dbname = DBNAME
        self.settings = dict(settings or {})
        self.start_timeout = int(start_timeout)
        self.port = None
        self.running = False
        self._pw = _run_as_user()
        self._prefix = _user_prefix(self._pw)
        self._remove = []  # directories stop() removes
        self._keep = None  # where stop() copies the log of a cluster it removes
        if workdir is None:
            self.dir = self._owned_dir(tempfile.mkdtemp(prefix="okegw-pg-"))
            self._remove.append(self.dir)
        else:
            os.makedirs(workdir, exist_ok=True)
            self.dir = self._owned_dir(tempfile.mkdtemp(prefix="pg-", dir=workdir))
            if self._pw is not None and not self._reachable(self.dir):
                # e.g. a build dir under /root (0700): the server user cannot get there
                self._keep = self.dir
                self.dir = self._owned_dir(tempfile.mkdtemp(prefix="okegw-pg-"))
                self._remove.append(self.dir)
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgresql.log")
        self.socket_dir = os.path.join(self.dir, "sock")
        # the path goes through pg_ctl's sh -c unquoted, and into a 108-byte sun_path
        if len(self.socket_dir) > _MAX_SOCKET_DIR or not re.fullmatch(r"[\w/.-]+", self.socket_dir):
            self.socket_dir = ""  # no unix socket; pg_ctl -w and psql use TCP anyway
        else:
            self._owned_dir(self.socket_dir, create=True)
        try:
            self._initdb()
            self._start(new_port=True)
            self.psql("CREATE DATABASE %s" % quote_ident(self.dbname), dbname="postgres")
        except BaseException:
            self.stop(check=False)
            raise

    # context manager -----------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.stop(check=et is None)
        return False

    # setup --------------------------------------------------------------------------------
    def _owned_dir(self, path, create=False):
        """path, owned by the server user when we are root (created when asked)."""
        if create:
            os.mkdir(path, 0o700)
        if self._pw is not None:
            os.chown(path, self._pw.pw_uid, self._pw.pw_gid)
        return path

    def _reachable(self, path):
        """Whether the server user can enter and write path (every parent traversable)."""
        p = subprocess.run(self._prefix + ["test", "-x", path, "-a", "-w", path],
                           stdin=subprocess.DEVNULL, capture_output=True, cwd="/", timeout=30)
        return p.returncode == 0

    def _server_cmd(self, tool, *args, timeout=120):
        """Runs initdb/pg_ctl (as the server user when root); (returncode, output)."""
        p = subprocess.run(self._prefix + [os.path.join(self.bindir, tool)] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=self.dir, env=_clean_env(),
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def _initdb(self):
        """initdb with password auth over TCP, so tests of wrong passwords mean something."""
        pwfile = os.path.join(self.dir, "pwfile")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.superuser_password + "\n")
        if self._pw is not None:
            os.chown(pwfile, self._pw.pw_uid, self._pw.pw_gid)
        try:
            base = ["-D", self.datadir, "-U", self.user, "--pwfile", pwfile,
                    "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"]
            rc, out = self._server_cmd("initdb", *(base + ["--locale=C.UTF-8"]))
            if rc != 0:
                # no C.UTF-8 locale here (older libc): the C locale still stores UTF-8
                shutil.rmtree(self.datadir, ignore_errors=True)
                rc, out2 = self._server_cmd("initdb", *(base + ["--no-locale"]))
                out = out + "\n-- retried with --no-locale:\n" + out2
            if rc != 0:
                raise RuntimeError("initdb failed (exit %d):\n%s" % (rc, _tail(out)))
        finally:
            os.unlink(pwfile)

    def _options(self):
        opts = {"listen_addresses": HOST, "port": str(self.port),
                "unix_socket_directories": "'%s'" % self.socket_dir,
                "fsync": "on", "synchronous_commit": "on", "max_connections": "100",
                "shared_buffers": "32MB"}
        opts.update({k: str(v) for k, v in self.settings.items()})
        return " ".join("-c %s=%s" % kv for kv in opts.items())

    def _start(self, new_port):
        """pg_ctl start -w; with new_port, up to 3 tries on fresh ports if one is taken."""
        for attempt in range(3 if new_port else 1):
            if new_port:
                self.port = free_port()
            offset = os.path.getsize(self.logfile) if os.path.exists(self.logfile) else 0
            rc, out = self._server_cmd("pg_ctl", "start", "-D", self.datadir, "-l", self.logfile,
                                       "-w", "-t", str(self.start_timeout), "-o", self._options(),
                                       timeout=self.start_timeout + 30)
            if rc == 0:
                self.running = True
                _live.add(self)
                return
            log = self._log_since(offset)
            if not ("already in use" in log or "could not bind" in log):
                break
        raise RuntimeError("pg_ctl start on port %d failed (exit %d):\n%s\n-- %s:\n%s"
                           % (self.port, rc, _tail(out, 10), self.logfile, _tail(log)))

    def _log_since(self, offset=0):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=25):
        return _tail(self._log_since(), n)

    # lifecycle ----------------------------------------------------------------------------
    def postmaster_pid(self):
        """The postmaster's pid from postmaster.pid, or None."""
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def kill(self):
        """SIGKILL the postmaster, then what is left of its children, as a crash would, and
        wait until all are gone so that restart() finds the shared memory free."""
        pid = self.postmaster_pid()
        if pid is None or not _alive(pid):
            self.running = False
            return
        kids = _children(pid)
        os.kill(pid, signal.SIGKILL)
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in [pid] + kids):
            if time.monotonic() > deadline:
                raise RuntimeError("postmaster %d or a child still alive 30 s after SIGKILL"
                                   % pid)
            time.sleep(0.02)
        if os.path.exists("/proc/%d" % pid):
            # a zombie not yet reaped by init: postgres would take its pid in the lock files
            # for a live postmaster and refuse to start
            locks = [os.path.join(self.datadir, "postmaster.pid")]
            if self.socket_dir:
                locks += glob.glob(os.path.join(self.socket_dir, ".s.PGSQL.*.lock"))
            for f in locks:
                try:
                    os.unlink(f)
                except FileNotFoundError:
                    pass
        self.running = False

    def restart(self):
        """Start again on the same port (after kill() or stop())."""
        if self.running:
            self.stop(remove=False)
        self._start(new_port=False)

    def stop(self, check=True, remove=True):
        """pg_ctl stop -m fast; idempotent. SIGKILL when that fails (then RuntimeError if
        check). Removes the cluster if it lives in a temporary directory of ours."""
        err = None
        if self.running and self.postmaster_pid() is not None:
            rc, out = self._server_cmd("pg_ctl", "stop", "-D", self.datadir, "-m", "fast",
                                       "-w", "-t", "60", timeout=90)
            if rc != 0 and self.postmaster_pid() is not None:
                err = "pg_ctl stop failed (exit %d):\n%s\n-- %s:\n%s" % (
                    rc, _tail(out, 10), self.logfile, self.log_tail())
                try:
                    self.kill()
                except RuntimeError as e:
                    err += "\n" + str(e)
        self.running = False
        _live.discard(self)
        if remove and self._remove:
            if self._keep and os.path.exists(self.logfile):
                shutil.copy(self.logfile, os.path.join(self._keep, "postgresql.log"))
            for d in self._remove:
                shutil.rmtree(d, ignore_errors=True)
            self._remove = []
        if err and check:
            raise RuntimeError(err)

    # clients ------------------------------------------------------------------------------
    def url(self, user=None, password=None, dbname=None):
        """postgresql://user[:pw]@127.0.0.1:port/db; no user: the superuser and its password."""
        if user is None:
            user = self.user
            if password is None:
                password = self.superuser_password
        auth = urllib.parse.quote(user, safe="")
        if password is not None:
            auth += ":" + urllib.parse.quote(password, safe="")
        return "postgresql://%s@%s:%d/%s" % (auth, self.host, self.port,
                                             urllib.parse.quote(dbname or self.dbname, safe=""))

    def psql(self, sql, dbname=None, user=None, password=None, timeout=60):
        """Runs sql (a script: one statement after the other) with psql -X -A -t -q and
        ON_ERROR_STOP over TCP; stdout without its final newlines. RuntimeError with
        psql's stderr on failure. No user: the superuser."""
        if user is None:
            user = self.user
            if password is None:
                password = self.superuser_password
        env = _clean_env(PGPASSWORD=password or "", PGCONNECT_TIMEOUT="10",
                         PGSSLMODE="disable")
        if password is None:
            del env["PGPASSWORD"]
        argv = [self.psql_bin, "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1",
                "-h", self.host, "-p", str(self.port), "-U", user, "-d", dbname or self.dbname,
                "-f", "-"]
        p = subprocess.run(argv, input=sql.encode("utf-8"), capture_output=True, env=env,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("psql as %s on %s failed (exit %d): %s\nSQL: %s" % (
                user, dbname or self.dbname, p.returncode,
                p.stderr.decode("utf-8", "replace").strip(), sql[:500]))
        return p.stdout.decode("utf-8", "replace").rstrip("\n")

    def create_role(self, name, password, login=True):
        """A role (LOGIN unless login is False) with a scram password (none if None)."""
        sql = "CREATE ROLE %s %s" % (quote_ident(name), "LOGIN" if login else "NOLOGIN")
        if password is not None:
            sql += " PASSWORD " + quote_literal(password)
        self.psql(sql)

    def create_db(self, name, owner):
        self.psql("CREATE DATABASE %s OWNER %s" % (quote_ident(name), quote_ident(owner)))


@atexit.register
def _stop_all():
    for s in list(_live):
        s.stop(check=False)


def _selftest(workdir):
    t0 = time.monotonic()
    with PgServer(workdir) as pg:
        v = pg.psql("select version()")
        if not v.startswith("PostgreSQL"):
            raise RuntimeError("select version() gave %r" % v)
        pw = "s3cret 'quoted' p@ss"
        pg.create_role("okegw_selftest", pw)
        pg.create_db("okegw_selftest_db", "okegw_selftest")
        who = pg.psql("select current_user", user="okegw_selftest", password=pw,
                      dbname="okegw_selftest_db")
        if who != "okegw_selftest":
            raise RuntimeError("connected as %r, not okegw_selftest" % who)
        try:
            pg.psql("select 1", user="okegw_selftest", password="wrong")
        except RuntimeError:
            pass
        else:
            raise RuntimeError("a wrong password was accepted: host auth is not scram")
        pg.psql("create table t (x int); insert into t values (42)")
        port = pg.port
        pg.kill()
        pg.restart()
        if pg.port != port or pg.psql("select x from t") != "42":
            raise RuntimeError("after kill and restart: port %s, t lost" % pg.port)
    pg.stop()  # idempotent
    print("ok - PostgreSQL %s on 127.0.0.1:%d as %s in %.1f s" % (
        v.split()[1], port, pg._pw.pw_name if pg._pw else "the current user",
        time.monotonic() - t0))


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print("skip: " + why)
        sys.exit(1)
    try:
        _selftest(sys.argv[1] if len(sys.argv) > 1 else None)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print("not ok: %s" % e)
        sys.exit(1)
    print("ok")
