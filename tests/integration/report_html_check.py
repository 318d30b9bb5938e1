#!/usr/bin/env python3
"""Opens a rendered acceptance report (HTML) in Debian's headless chromium:
a screenshot, an A4 PDF and the DOM as the browser parsed it.

    check_html_in_chromium(html_path, artefact_dir, needles=()) -> (png, pdf)

raises CheckError when chromium fails, hangs, or an artefact is missing or
trivial (PNG signature and > 10 KB; PDF header and at least one page), or
when a needle is missing from the --dump-dom output.

Run on its own, it renders the unit test's full sample report
(build/tests/test_report_render with OKEGW_RENDER_HTML_OUT) and checks it:

    python3 tests/integration/report_html_check.py [--build build] [--out DIR]

Flags: Debian 12's chromium (>= 120) takes plain --headless (the new
headless mode; --headless=old is gone in recent releases). The PDF header
and footer flag is --no-pdf-header-footer; older releases called it
--print-to-pdf-no-header, and chromium ignores flags it does not know, so
both are passed. Every run gets its own --user-data-dir, a timeout, and is
killed with its whole process group when it overruns.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 10 * 1024
TIMEOUT_S = 120


class CheckError(Exception):
    pass


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise CheckError("chromium not found (apt-get install chromium)")


def run_chromium(args, timeout=TIMEOUT_S):
    """Runs chromium headless with args; returns (stdout bytes, stderr text).
    The browser runs in its own session, so a hang is ended with its whole
    process group (renderer, GPU and zygote processes included)."""
    profile = tempfile.mkdtemp(prefix="okegw-chromium-")
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
           "--disable-extensions", "--hide-scrollbars", "--user-data-dir=" + profile] + args
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            raise CheckError("chromium did not finish within %g s: %s" % (timeout, " ".join(args)))
        if p.returncode != 0:
            raise CheckError("chromium exited with %d: %s\n%s" % (
                p.returncode, " ".join(args), err.decode(errors="replace")[-2000:]))
        return out, err.decode(errors="replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def pdf_pages(data):
    """Pages of a PDF as chromium writes it (page objects are plain text)."""
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    if not pages:
        counts = [int(c) for c in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data, re.S)]
        counts += [int(c) for c in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", data, re.S)]
        pages = max(counts, default=0)
    return pages


def check_html_in_chromium(html_path, artefact_dir, needles=()):
    html_path = os.path.abspath(html_path)
    if not os.path.isfile(html_path):
        raise CheckError("no such file: %s" % html_path)
    os.makedirs(artefact_dir, exist_ok=True)
    base = os.path.splitext(os.path.basename(html_path))[0]
    png = os.path.abspath(os.path.join(artefact_dir, base + ".png"))
    pdf = os.path.abspath(os.path.join(artefact_dir, base + ".pdf"))
    for path in (png, pdf):
        if os.path.exists(path):
            os.unlink(path)
    url = "file://" + html_path

    run_chromium(["--screenshot=" + png, "--window-size=1280,2000", url])
    if not os.path.isfile(png):
        raise CheckError("chromium wrote no screenshot")
    with open(png, "rb") as f:
        data = f.read()
    if not data.startswith(PNG_SIGNATURE):
        raise CheckError("%s is not a PNG" % png)
    if len(data) <= MIN_PNG_BYTES:
        raise CheckError("%s is only %d bytes: an empty page?" % (png, len(data)))

    run_chromium(["--print-to-pdf=" + pdf, "--no-pdf-header-footer",
                  "--print-to-pdf-no-header", url])
    if not os.path.isfile(pdf):
        raise CheckError("chromium wrote no PDF")
    with open(pdf, "rb") as f:
        data = f.read()
    if not data.startswith(b"%PDF-"):
        raise CheckError("%s is not a PDF" % pdf)
    if pdf_pages(data) < 1:
        raise CheckError("%s has no pages" % pdf)

    dom, _ = run_chromium(["--dump-dom", url])
    dom = dom.decode(errors="replace")
    missing = [n for n in needles if n not in dom]
    if missing:
        raise CheckError("not in the page chromium shows: %r" % missing)
    return png, pdf


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--out", default=None, help="artefact directory (default: a temporary one)")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="okegw-report-")
    os.makedirs(out, exist_ok=True)
    html = os.path.join(out, "report.html")
    test = os.path.join(a.build, "tests", "test_report_render")
    env = dict(os.environ, OKEGW_RENDER_HTML_OUT=html)
    subprocess.run([test], env=env, check=True, stdout=subprocess.DEVNULL, timeout=60)
    needles = ["Verdict: NO-GO", "&lt;script&gt;alert(1)&lt;/script&gt;", "<svg",
               "Failed steps", "expected 200, got 502"]
    png, pdf = check_html_in_chromium(html, out, needles)
    with open(pdf, "rb") as f:
        pages = pdf_pages(f.read())
    print("ok: %s (%d bytes), %s (%d pages)" % (png, os.path.getsize(png), pdf, pages))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
