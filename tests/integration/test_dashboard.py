#!/usr/bin/env python3
"""The web dashboard at /admin/ in headless chromium (Chrome DevTools Protocol, cdp.py): the
files with their content types and cache headers, the token asked once, the connector cards
with their phases, a dead letter in the outbox whose "Send again" button gets it delivered
(checked in the store), the audit search, and a page without script or security errors.
Screenshots are kept in the test's work dir (login.png, dashboard.png, retried.png,
audit.png)."""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import (poll, TestFailure, check, conf, main, make_components,  # noqa: E402
                       make_offering, ooapi_connector, request, time_scale, wrapper)
from cdp import Browser  # noqa: E402

TOKEN = "dashboard-token-0123456789abcdef"
FAST = {"retry_first_ms": 100, "retry_max_ms": 400, "delivery_wait_ms": 200}


def shown(t, g, did):
    """`okegw deliveries show`: the delivery as the store has it."""
    p = subprocess.run(wrapper() + [t.binary, "deliveries", "show", "-c", g.conf_path, str(did)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60 * time_scale())
    check(p.returncode == 0, "okegw deliveries show %d: %s" % (did, p.stderr.decode()))
    return json.loads(p.stdout)


def setup(t):
    ta = t.peer(make_components(2), name="ta")
    tb = t.peer(make_components(1, numbers=[7]), name="tb")
    g = t.gateway(conf([
        ("ta", ooapi_connector(ta, delivery_max_age_s=1, **FAST)),
        ("tb", ooapi_connector(tb, phase="pilot", phase_reason="trial with two schools",
                               pilot_components=tb.catalogue[0]["componentId"], **FAST))],
        admin_listen="127.0.0.1:0", admin_token=TOKEN))
    r = g.request("GET", "/ooapi/components?componentType=test&pageSize=50")
    check(r.status == 200, "flow 0: %s" % r.short())
    return g, ta, tb


def test_files(t):
    g, _, _ = setup(t)
    for path, ctype in (("/admin/", "text/html"), ("/admin/index.html", "text/html"),
                        ("/admin/app.js", "text/javascript"), ("/admin/style.css", "text/css")):
        r = request(g.admin_port, "GET", path)
        check(r.status == 200 and r.content_type.startswith(ctype), "%s: %s" % (path, r.short()))
        check(r.header("Cache-Control") == "no-cache" and r.header("ETag"), "%s: cache headers" % path)
        check("script-src 'self'" in (r.header("Content-Security-Policy") or "")
              and r.header("X-Content-Type-Options") == "nosniff", "%s: security headers" % path)
        again = request(g.admin_port, "GET", path, headers={"If-None-Match": r.header("ETag")})
        check(again.status == 304 and not again.body, "%s revalidated: %s" % (path, again.short()))
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dashboard", "app.js")
    with open(src, "rb") as f:
        check(request(g.admin_port, "GET", "/admin/app.js").body == f.read(),
              "the binary serves another app.js than dashboard/app.js")
    r = request(g.admin_port, "GET", "/admin")
    check(r.status == 308 and r.header("Location") == "/admin/", "/admin: %s" % r.short())
    r = request(g.admin_port, "GET", "/admin/../etc/passwd")
    check(r.status == 404, "a path outside the dashboard: %s" % r.short())
    r = request(g.admin_port, "POST", "/admin/index.html", b"x")
    check(r.status == 405, "POST to a file: %s" % r.short())
    check(request(g.admin_port, "GET", "/admin/api/connectors").status == 401,
          "the API without a token")


def test_dashboard_in_chromium(t):
    g, ta, tb = setup(t)
    # a dead letter: ta is down and its deliveries may be one second old
    o = make_offering(ta.catalogue[0]["componentId"])
    ta.down()
    r = g.request("PUT", "/ooapi/offerings/" + o["offeringId"], o)
    check(r.status == 202, "push while ta is down: %s" % r.short())
    did = r.json()["id"]
    poll("delivery %d dead" % did, lambda: shown(t, g, did)["state"] == "dead")
    # traffic for tb's chart
    ob = make_offering(tb.catalogue[0]["componentId"])
    check(g.request("PUT", "/ooapi/offerings/" + ob["offeringId"], ob).status in (200, 201, 202),
          "push to tb")

    shots = lambda name: os.path.join(t.workdir, name)  # noqa: E731
    wait_s = 20 * time_scale()
    with Browser(t.workdir) as b:
        b.navigate("http://127.0.0.1:%d/admin/" % g.admin_port)
        b.wait("!document.getElementById('login').hidden", wait_s, "the token is asked")
        b.screenshot(shots("login.png"))
        b.evaluate("document.getElementById('token').value = 'not-the-token-at-all';"
                   "document.getElementById('login-form').requestSubmit(); true")
        b.wait("!document.getElementById('login').hidden && "
               "!document.getElementById('login-error').hidden", wait_s, "a wrong token refused")
        b.evaluate("document.getElementById('token').value = %s;"
                   "document.getElementById('login-form').requestSubmit(); true"
                   % json.dumps(TOKEN))
        b.wait("document.body.dataset.loaded === '1'", wait_s, "the page loads with the token")
        check(b.evaluate("document.getElementById('login').hidden") is True, "login still shown")
        check(b.evaluate("sessionStorage.getItem('okegw-admin-token')") == TOKEN,
              "the token is not kept in sessionStorage")
        cards = b.evaluate("[...document.querySelectorAll('.card')].map(c => ["
                           "c.dataset.connector, c.querySelector('[data-phase]').dataset.phase,"
                           "c.querySelector('.requests').textContent])")
        check([c[:2] for c in cards] == [["ta", "live"], ["tb", "pilot"]], "cards: %r" % cards)
        check(cards[1][2] == "2", "tb's requests in the last hour (the push, its delivery): %r"
          % cards)
        check(b.evaluate("document.querySelectorAll('.card svg.chart').length") == 2, "charts")
        b.wait("document.querySelectorAll('.card [data-verdict]').length === 2", wait_s,
               "the acceptance verdicts")
        row = b.evaluate("(r => r && [r.dataset.state, r.cells[2].textContent])"
                         "(document.querySelector('tr[data-delivery=\"%d\"]'))" % did)
        check(row == ["dead", "ta"], "the dead letter in the outbox: %r" % row)
        b.screenshot(shots("dashboard.png"))
        # "Open report" opens the HTML report (fetched with the token) in a new window
        b.evaluate("window.open = () => ({location: {set href(u) { window.reportUrl = u; }},"
                   "close() {}}); URL.createObjectURL = blob => { window.reportBlob = blob;"
                   "return 'blob:report'; }; document.querySelector('.card[data-connector=\"tb\"] "
                   ".verdict button').click(); true")
        html = b.wait("window.reportUrl === 'blob:report' && window.reportBlob.type === "
                      "'text/html' && window.reportBlob.text()", wait_s, "the report opened")
        check("<html" in html and "tb" in html, "the report: %r" % html[:200])

        ta.up()
        b.evaluate("document.querySelector('tr[data-delivery=\"%d\"] button.retry').click(); true"
                   % did)
        b.wait("true")  # the confirm dialog is accepted while the click runs
        check(any(("message %d" % did) in d for d in b.dialogs), "no confirmation asked: %r"
              % b.dialogs)
        poll("delivery %d delivered after Send again" % did,
             lambda: shown(t, g, did)["state"] == "delivered")
        check(ta.find("PUT", "/offerings/" + o["offeringId"]), "ta did not get the push")
        b.evaluate("document.getElementById('refresh').click(); true")
        b.wait("!document.querySelector('tr[data-delivery=\"%d\"]')" % did, wait_s,
               "the delivered message leaves the outbox")
        b.screenshot(shots("retried.png"))

        b.evaluate("document.getElementById('a-resource').value = %s;"
                   "document.getElementById('audit-form').requestSubmit(); true"
                   % json.dumps(o["offeringId"]))
        n = b.wait("document.querySelectorAll('#audit tbody tr').length", wait_s, "audit rows")
        check(n >= 2, "audit rows for the offering: %r" % n)
        b.screenshot(shots("audit.png"))
        check(not b.errors, "errors in the page: %r" % b.errors)
    for name in ("login.png", "dashboard.png", "retried.png", "audit.png"):
        with open(shots(name), "rb") as f:
            data = f.read()
        check(data.startswith(b"\x89PNG") and len(data) > 10000, "screenshot %s" % name)


if __name__ == "__main__":
    main(globals())
