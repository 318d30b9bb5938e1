#!/usr/bin/env python3
"""A small Chrome DevTools Protocol client on the Python standard library:
starts Debian's headless chromium with --remote-debugging-port=0, finds its
page target, and talks to it over a minimal WebSocket (RFC 6455) client.

    with Browser(workdir) as b:
        b.navigate("http://127.0.0.1:PORT/admin/")
        b.wait("document.body.dataset.loaded === '1'")
        b.evaluate("document.title")
        b.screenshot("page.png")

JavaScript dialogs (confirm, alert) are accepted as they open and kept in
b.dialogs; uncaught exceptions and console or security errors are kept in
b.errors, so a test can require a page that runs cleanly.
"""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from report_html_check import chromium_binary


class CDPError(Exception):
    pass


class WebSocket:
    """Client side of RFC 6455: text frames out (masked), frames in."""

    def __init__(self, url, timeout=30.0):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (u.path or "/", u.hostname, u.port, key))
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CDPError("websocket handshake: connection closed")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise CDPError("websocket handshake refused: %r" % head[:200])

    def send(self, text):
        data = text.encode("utf-8")
        n = len(data)
        if n < 126:
            hdr = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise CDPError("websocket closed by chromium")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next whole text message (continuations joined; pings answered)."""
        parts = []
        while True:
            b0, b1 = self._exact(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if op == 0x8:
                raise CDPError("websocket closed by chromium")
            if op == 0x9:  # ping: pong back
                self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | len(data)) + b"\0\0\0\0" + data)
                continue
            if op in (0x1, 0x2, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode("utf-8")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Browser:
    def __init__(self, workdir, width=1280, height=900, timeout=60.0):
        self.workdir = workdir
        self.width, self.height, self.timeout = width, height, timeout
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.dialogs = []
        self.errors = []
        self.profile = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *a):
        self.stop()
        return False

    def start(self):
        self.profile = tempfile.mkdtemp(prefix="okegw-cdp-")
        cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
               "--disable-extensions", "--hide-scrollbars", "--remote-debugging-port=0",
               "--window-size=%d,%d" % (self.width, self.height),
               "--user-data-dir=" + self.profile, "about:blank"]
        log = open(os.path.join(self.workdir, "chromium.log"), "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        port = None
        while time.monotonic() < deadline and port is None:
            if self.proc.poll() is not None:
                raise CDPError("chromium exited with %s (see chromium.log)" % self.proc.returncode)
            try:
                with open(port_file) as f:
                    first = f.readline().strip()
                    port = int(first) if first else None
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        if port is None:
            raise CDPError("chromium did not open its debugging port")
        page = None
        while time.monotonic() < deadline and page is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
                    targets = json.load(r)
                page = next((t for t in targets if t.get("type") == "page"), None)
            except OSError:
                pass
            if page is None:
                time.sleep(0.1)
        if page is None:
            raise CDPError("chromium shows no page target")
        self.ws = WebSocket(page["webSocketDebuggerUrl"], timeout=self.timeout)
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(m)
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def stop(self):
        if self.ws:
            self.ws.close()
            self.ws = None
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def _event(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(p.get("message", ""))
            self.send("Page.handleJavaScriptDialog", accept=True)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: %s" % (d.get("exception", {}).get("description")
                                                  or d.get("text")))
        elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
            self.errors.append("console.error: %r" % [a.get("value") for a in p.get("args", [])])
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            # a 401 while the page has no token yet is expected; anything else is not
            if e.get("level") == "error" and not (e.get("source") == "network"
                                                  and "401" in e.get("text", "")):
                self.errors.append("%s: %s" % (e.get("source"), e.get("text")))

    def send(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def call(self, method, **params):
        want = self.send(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == want:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self._event(msg)

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError("%s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r.get("result", {}).get("value")

    def navigate(self, url):
        self.call("Page.navigate", url=url)

    def wait(self, expr, timeout=15.0, what=None):
        """expr evaluated until its value is truthy; returns that value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expr)
                if last:
                    return last
            except CDPError as e:
                last = "error: %s" % e
            time.sleep(0.1)
        raise CDPError("%s: not within %.0f s (last: %r)" % (what or expr, timeout, last))

    def screenshot(self, path):
        """A PNG of the whole page (as tall as its content)."""
        h = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or self.height
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=max(h, 200),
                  deviceScaleFactor=1, mobile=False)
        r = self.call("Page.captureScreenshot", format="png")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path
