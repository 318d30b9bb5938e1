/* okegw dashboard: reads the admin API (/admin/api/) and shows it. Plain
 * DOM code: every value from the API goes in with textContent or as an
 * attribute, never as HTML. The admin token is asked once and kept in
 * sessionStorage (this tab only). */
"use strict";

(function () {
  const API = "/admin/api/";
  const TOKEN_KEY = "okegw-admin-token";
  const REFRESH_MS = 30000;

  const PHASES = {
    off: "Not in use",
    shadow: "Gets a copy of the traffic; its answers are not used",
    pilot: "Used for the pilot exams only",
    live: "Used for all traffic",
  };
  const ROLES = { ta: "Test delivery (TA)", tpl: "Planning (TPL)", dr: "Results (DR)" };
  const HEALTH = {
    up: ["Reachable", "good"],
    down: ["Not reachable", "bad"],
    unknown: ["Not checked yet", "muted"],
  };
  const VERDICTS = {
    GO: ["GO", "good", "The acceptance evidence meets the criteria."],
    "NO-GO": ["NO-GO", "bad", "Some acceptance criteria are not met: see the report."],
    INCONCLUSIVE: ["Not enough evidence yet", "warn", "There is too little traffic to judge."],
  };

  let timer = null;
  let busy = false;

  /* ---- small DOM helpers ---- */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of kids) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function replace(node, ...kids) {
    node.replaceChildren(...kids.filter((k) => k !== null && k !== undefined));
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function showError(msg) {
    const b = document.getElementById("error");
    b.textContent = msg || "";
    b.hidden = !msg;
  }

  /* ---- the API ---- */

  class NeedToken extends Error {}

  async function api(path, method) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch(API + path, { method: method || "GET", headers, cache: "no-store" });
    if (r.status === 401) {
      /* a request still under way with a token the person has since replaced
       * says nothing about the new one */
      if (sessionStorage.getItem(TOKEN_KEY) === token) askToken(!!token);
      throw new NeedToken("the admin token is needed");
    }
    if (!r.ok) {
      let detail = r.status + " " + r.statusText;
      try {
        const p = await r.json();
        if (p && p.detail) detail = p.detail;
      } catch (e) { /* not problem+json */ }
      throw new Error(detail);
    }
    return r;
  }

  async function apiJSON(path, method) {
    return (await api(path, method)).json();
  }

  function askToken(rejected) {
    stopTimer();
    document.getElementById("login-error").hidden = !rejected;
    document.getElementById("login").hidden = false;
    document.getElementById("token").focus();
  }

  /* ---- connections ---- */

  function chart(perMinute) {
    const w = 240, h = 48, n = perMinute.length || 1, bw = w / n;
    const max = Math.max(1, ...perMinute.map((m) => m.requests));
    const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", class: "chart", role: "img" });
    const title = svg("title");
    const total = perMinute.reduce((a, m) => a + m.requests, 0);
    title.textContent = `Requests per minute over the last hour (${total} in all)`;
    s.appendChild(title);
    s.appendChild(svg("line", { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, class: "axis" }));
    perMinute.forEach((m, i) => {
      if (!m.requests) return;
      const rh = Math.max(1.5, (m.requests / max) * (h - 4));
      const bar = svg("rect", { x: i * bw + 0.5, y: h - rh, width: Math.max(1, bw - 1), height: rh, class: "req" });
      const t = svg("title");
      t.textContent = `${new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${m.requests} requests, ${m.errors} failed`;
      bar.appendChild(t);
      s.appendChild(bar);
      if (m.errors) {
        const eh = Math.max(1.5, (m.errors / max) * (h - 4));
        s.appendChild(svg("rect", { x: i * bw + 0.5, y: h - eh, width: Math.max(1, bw - 1), height: eh, class: "err" }));
      }
    });
    return s;
  }

  /* The report is built from the whole acceptance window: asked once per
   * connector every few minutes, not on every refresh. */
  const VERDICT_MS = 5 * 60 * 1000;
  const verdicts = new Map();
  function verdictOf(name) {
    const v = verdicts.get(name);
    if (v && Date.now() - v.at < VERDICT_MS) return v.p;
    const p = apiJSON("report?connector=" + encodeURIComponent(name) + "&format=json");
    verdicts.set(name, { at: Date.now(), p });
    p.catch(() => verdicts.delete(name));
    return p;
  }

  function verdictBlock(c) {
    const box = el("div", { class: "verdict" }, el("span", { class: "label" }, "Acceptance"),
      el("span", { class: "muted" }, "checking…"));
    verdictOf(c.name).then((rep) => {
      const [text, cls, why] = VERDICTS[rep.verdict] || VERDICTS.INCONCLUSIVE;
      const open = el("button", { type: "button", class: "link", onclick: () => openReport(c.name) },
        "Open report");
      replace(box, el("span", { class: "label" }, "Acceptance"),
        el("span", { class: "badge " + cls, "data-verdict": rep.verdict || "" }, text),
        el("span", { class: "why" }, why), open);
    }).catch((e) => {
      if (e instanceof NeedToken) return;
      replace(box, el("span", { class: "label" }, "Acceptance"),
        el("span", { class: "muted" }, "report not available: " + e.message));
    });
    return box;
  }

  async function openReport(name) {
    const w = window.open("", "_blank");
    try {
      const r = await api("report?connector=" + encodeURIComponent(name) + "&format=html");
      const blob = new Blob([await r.arrayBuffer()], { type: "text/html" });
      const url = URL.createObjectURL(blob);
      if (w) w.location.href = url;
      else window.location.href = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      if (w) w.close();
      if (!(e instanceof NeedToken)) showError("The report could not be opened: " + e.message);
    }
  }

  function card(c) {
    const [htext, hcls] = HEALTH[c.health] || HEALTH.unknown;
    const dl = el("dl", { class: "facts" },
      el("dt", null, "Kind"), el("dd", null, ROLES[c.role] || c.role),
      el("dt", null, "Reachable"), el("dd", null, el("span", { class: "dot " + hcls }), htext));
    if (c.phaseReason) dl.append(el("dt", null, "Why this phase"), el("dd", null, c.phaseReason));
    if (c.mirrorOf) dl.append(el("dt", null, "Copy of"), el("dd", null, c.mirrorOf));
    return el("article", { class: "card", "data-connector": c.name },
      el("header", null,
        el("h3", null, c.name),
        el("span", { class: "badge phase-" + c.phase, "data-phase": c.phase, title: PHASES[c.phase] || "" }, c.phase)),
      el("p", { class: "phase-text" }, PHASES[c.phase] || ""),
      dl,
      el("div", { class: "traffic" },
        el("div", { class: "num" }, el("b", { class: "requests" }, c.requests), el("span", null, "requests in the last hour")),
        el("div", { class: "num" + (c.errors ? " bad" : "") }, el("b", { class: "errors" }, c.errors), el("span", null, "failed"))),
      chart(c.perMinute || []),
      verdictBlock(c));
  }

  async function loadConnectors() {
    const list = await apiJSON("connectors");
    const cards = document.getElementById("cards");
    replace(cards, ...(list.length ? list.map(card) : [el("p", { class: "muted" }, "No connections are configured.")]));
    const sel = document.getElementById("a-connector");
    const keep = sel.value;
    replace(sel, el("option", { value: "" }, "any"), ...list.map((c) => el("option", { value: c.name }, c.name)));
    sel.value = keep;
  }

  /* ---- the outbox ---- */

  async function change(d, action) {
    const what = `message ${d.id} (${d.interaction || "?"} to ${d.connector})`;
    const q = action === "retry"
      ? `Send ${what} again now?`
      : `Give up on ${what}? It will never be delivered.`;
    if (!window.confirm(q)) return;
    try {
      const r = await apiJSON(`deliveries/${d.id}/${action}`, "POST");
      showError("");
      flash(action === "retry" ? `Message ${r.id} will be sent again within a few seconds.` : `Message ${r.id} was given up.`);
    } catch (e) {
      if (!(e instanceof NeedToken)) showError(`Could not ${action === "retry" ? "send" : "give up on"} message ${d.id}: ${e.message}`);
    }
    refresh();
  }

  function flash(msg) {
    const u = document.getElementById("updated");
    u.textContent = msg;
  }

  async function loadOutbox() {
    const [dead, failed] = await Promise.all([
      apiJSON("deliveries?state=dead&limit=200"),
      apiJSON("deliveries?state=failed&limit=200"),
    ]);
    const rows = dead.concat(failed).sort((a, b) => b.id - a.id);
    const box = document.getElementById("outbox");
    if (!rows.length) {
      replace(box, el("p", { class: "empty" }, "Nothing needs attention: every message was delivered or is on its way."));
      return;
    }
    const head = el("tr", null, ...["Message", "State", "Connection", "What", "Resource", "Since", "Attempts", "Last problem", ""]
      .map((h) => el("th", { scope: "col" }, h)));
    const body = rows.map((d) => el("tr", { "data-delivery": d.id, "data-state": d.state },
      el("td", null, String(d.id)),
      el("td", null, el("span", { class: "badge " + (d.state === "dead" ? "bad" : "warn") }, d.state)),
      el("td", null, d.connector || ""),
      el("td", null, d.interaction || ""),
      el("td", { class: "mono" }, d.resourceId || ""),
      el("td", null, when(d.windowStartedAt || d.createdAt)),
      el("td", null, String(d.attempts || 0)),
      el("td", { class: "small" }, d.lastError || (d.lastStatus ? "answered " + d.lastStatus : "")),
      el("td", null, el("div", { class: "actions" },
        el("button", { type: "button", class: "retry", disabled: d.bodyKept === false, title: d.bodyKept === false ? "Its content was not kept, so it cannot be sent again" : null, onclick: () => change(d, "retry") }, "Send again"),
        el("button", { type: "button", class: "drop danger", onclick: () => change(d, "drop") }, "Give up")))));
    replace(box, el("div", { class: "scroll" }, el("table", null, el("thead", null, head), el("tbody", null, ...body))));
  }

  /* ---- the audit trail ---- */

  async function searchAudit(ev) {
    if (ev) ev.preventDefault();
    const p = new URLSearchParams({ limit: "100" });
    const c = document.getElementById("a-connector").value;
    const r = document.getElementById("a-resource").value.trim();
    const s = document.getElementById("a-since").value;
    if (c) p.set("connector", c);
    if (r) p.set("resource", r);
    if (s) {
      const d = new Date(s);
      if (!isNaN(d)) p.set("since", d.toISOString().replace(/\.\d{3}Z$/, "Z"));
    }
    const box = document.getElementById("audit");
    replace(box, el("p", { class: "muted" }, "Searching…"));
    try {
      const rows = await apiJSON("audit?" + p.toString());
      if (!rows.length) {
        replace(box, el("p", { class: "empty" }, "Nothing found."));
        return;
      }
      const head = el("tr", null, ...["Time", "Connection", "What", "Request", "Answer", "Resource", "Phase"]
        .map((h) => el("th", { scope: "col" }, h)));
      const body = rows.map((a) => el("tr", null,
        el("td", null, when(a.at)),
        el("td", null, a.connector || a.caller || ""),
        el("td", null, (a.interaction || "") + (a.event && a.event !== "request" ? ` (${a.event})` : "")),
        el("td", { class: "mono small" }, `${a.method || ""} ${a.path || ""}`),
        el("td", null, el("span", { class: "badge " + (a.status >= 500 ? "bad" : a.status >= 400 ? "warn" : "good") }, String(a.status || ""))),
        el("td", { class: "mono small" }, a.resource_id || ""),
        el("td", null, a.phase || "")));
      replace(box, el("p", { class: "muted" }, rows.length === 100 ? "The newest 100:" : `${rows.length} found, newest first:`),
        el("div", { class: "scroll" }, el("table", null, el("thead", null, head), el("tbody", null, ...body))));
    } catch (e) {
      if (!(e instanceof NeedToken)) replace(box, el("p", { class: "bad" }, "The search failed: " + e.message));
    }
  }

  /* ---- refresh ---- */

  function stopTimer() {
    if (timer) clearTimeout(timer);
    timer = null;
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    stopTimer();
    try {
      await Promise.all([loadConnectors(), loadOutbox()]);
      showError("");
      document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString();
      document.body.dataset.loaded = "1";
      document.getElementById("forget").hidden = !sessionStorage.getItem(TOKEN_KEY);
      timer = setTimeout(refresh, REFRESH_MS);
    } catch (e) {
      if (!(e instanceof NeedToken)) {
        showError("The gateway could not be reached: " + e.message);
        timer = setTimeout(refresh, REFRESH_MS);
      }
    } finally {
      busy = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("refresh").addEventListener("click", refresh);
    document.getElementById("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      askToken(false);
    });
    document.getElementById("audit-form").addEventListener("submit", searchAudit);
    document.getElementById("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = document.getElementById("token").value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      document.getElementById("token").value = "";
      document.getElementById("login").hidden = true;
      refresh();
    });
    refresh();
  });
})();
