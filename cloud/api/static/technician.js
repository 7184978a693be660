"use strict";
// The technician page. Identity is the HttpOnly session cookie (never readable here); writes
// carry the session's CSRF token, kept in memory only (nothing goes to localStorage).
const REFRESH_MS = 10000;
const SEVERITY = { critical: 0, major: 1, minor: 2, warning: 3 };
const RANK = { viewer: 0, technician: 1, supervisor: 2, admin: 3 };
let tab = "active";
let me = null;  // GET /auth/session: username, role, districts, csrf_token
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return t("{s} s", { s: Math.floor(s) });
  const m = Math.floor(s / 60);
  return m < 60 ? t("{m} min", { m }) : t("{h} h {m} min", { h: Math.floor(m / 60), m: String(m % 60).padStart(2, "0") });
}
const clock = (iso) => new Date(iso).toLocaleString(LOCALE(), {
  day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", timeZone: TIME_ZONE, timeZoneName: "short",
});

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (method !== "GET" && me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) { location.replace("/login"); throw new Error("signed out"); }
  if (!response.ok) {
    let detail = `${response.status}`;
    try { const p = await response.json(); detail = p.detail || p.title || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return response.status === 204 ? null : response.json();
}

const canWrite = () => me && me.via !== "public" && RANK[me.role] >= RANK.technician;

function ackForm(p) {
  const comment = el("input", { class: "ack-comment", placeholder: t("comment, e.g. on my way") });
  const send = el("button", { type: "button", class: "ack-send" }, t("Acknowledge as {who}", { who: me.username }));
  send.addEventListener("click", async () => {
    try {
      await api("POST", `/api/problems/${p.id}/ack`, { comment: comment.value.trim() || null });
      $("error").textContent = "";
      await load();
    } catch (e) { $("error").textContent = t("Acknowledge failed: {error}", { error: e.message }); }
  });
  return el("div", { class: "form" }, el("label", {}, t("Comment"), comment), send);
}

function maintenanceForm(p) {
  const scope = el("select", { class: "maint-scope" });
  if (p.camera) scope.append(el("option", { value: "camera" }, t("camera {camera} only", { camera: p.camera })));
  scope.append(el("option", { value: "site" }, t("whole site {site}", { site: p.site })));
  const hours = el("select", { class: "maint-hours" });
  for (const h of [1, 2, 4, 8, 24]) hours.append(el("option", { value: String(h) }, t("{h} h", { h })));
  const reason = el("input", { class: "maint-reason", placeholder: t("reason, e.g. replacing PSU") });
  const supervisor = RANK[me.role] >= RANK.supervisor;
  const send = el("button", { type: "button", class: "maint-send" },
                  supervisor ? t("Start maintenance") : t("Request maintenance"));
  send.addEventListener("click", async () => {
    const start = new Date();
    const end = new Date(start.getTime() + Number(hours.value) * 3600 * 1000);
    const body = { site: p.site, start: start.toISOString(), end: end.toISOString(),
                   reason: reason.value.trim() || t("maintenance") };
    if (scope.value === "camera") body.camera = p.camera;
    try {
      const window = await api("POST", "/api/maintenance", body);
      // A technician's window waits for a supervisor: say so, it does not count yet.
      $("error").textContent = window.counts ? "" : t("Requested: it counts once a supervisor approves it.");
      await load();
    } catch (e) { $("error").textContent = t("Maintenance failed: {error}", { error: e.message }); }
  });
  return el("div", { class: "form" }, el("label", {}, t("Scope"), scope), el("label", {}, t("Duration"), hours),
            el("label", {}, t("Reason"), reason), send);
}

function card(p) {
  const node = el("article", { class: `card ${p.severity} ${p.state}`, "data-problem-id": String(p.id), "data-state": p.state });
  node.append(
    el("div", { class: "title" }, el("span", { class: "sev" }, t(p.severity)), t(p.title)),
    el("div", { class: "meta" }, t("{subject} · district {district}", { subject: p.subject, district: p.district || "-" })),
    el("div", { class: "meta since" }, p.state === "resolved" && p.resolved_at
      ? `${clock(p.since)} – ${clock(p.resolved_at)}`
      : t("since {when} ({ago})", { when: clock(p.since), ago: ago(p.since) })),
    el("div", { class: "cause" }, p.cause),
  );
  if (p.cameras.length) {
    node.append(el("div", { class: "cams" }, t("cameras out of sight ({count}): {names}", {
      count: p.cameras.length, names: p.cameras.map((c) => c.camera).join(", ") })));
  }
  const badges = el("div", {});
  if (p.acknowledged_by) {
    badges.append(el("span", { class: "badge acked" }, t("acknowledged by {who}", { who: p.acknowledged_by }) +
      (p.ack_comment ? ` — ${p.ack_comment}` : "")));
  }
  if (p.in_maintenance) badges.append(el("span", { class: "badge maint" }, t("in maintenance")));
  if (p.reopen_count) badges.append(el("span", { class: "badge" }, t("returned {count}x", { count: p.reopen_count })));
  node.append(badges);
  const history = el("div", { class: "history-box" });
  const note = el("div", { class: "note", role: "status" });
  if (p.camera) watchHistory(p, history);  // power-cycles and reboots, with their outcome
  if (p.state !== "resolved" && canWrite()) {
    const slot = el("div", {});
    const actions = el("div", { class: "actions" });
    if (p.state === "open") {
      const ack = el("button", { type: "button", class: "ack" }, t("Acknowledge"));
      ack.addEventListener("click", () => slot.replaceChildren(ackForm(p)));
      actions.append(ack);
    }
    if (p.site) {
      const maint = el("button", { type: "button", class: "maint-btn" }, t("Maintenance…"));
      maint.addEventListener("click", () => slot.replaceChildren(maintenanceForm(p)));
      actions.append(maint);
    }
    if (p.camera) cameraActions(p, actions, slot, history, note);
    node.append(actions, slot);
  }
  node.append(note, history);
  return node;
}

async function load() {
  if (tab === "maintenance") return loadApprovals();
  let problems;
  try {
    problems = await api("GET", `/api/problems?state=${tab === "active" ? "unresolved" : "resolved"}&limit=200`);
  } catch (e) {
    $("error").textContent = t("Cannot load problems: {error}", { error: e.message });
    return;
  }
  problems.sort((a, b) => (SEVERITY[a.severity] - SEVERITY[b.severity]) || (Date.parse(a.since) - Date.parse(b.since)));
  const list = $("list");
  list.replaceChildren(...problems.map(card));
  if (!problems.length) list.append(el("div", { class: "empty" }, tab === "active" ? t("No active problems") : t("Nothing resolved yet")));
  const open = problems.filter((p) => p.state === "open").length;
  const now = new Date().toLocaleTimeString(LOCALE(), { timeZone: TIME_ZONE });
  $("summary").textContent = tab === "active"
    ? t("{open} open · {acked} acknowledged · {time}", { open, acked: problems.length - open, time: now })
    : t("{count} resolved", { count: problems.length });
  document.body.dataset.loaded = String(Date.now());
}

function select(which) {
  tab = which;
  $("tab-active").classList.toggle("on", which === "active");
  $("tab-resolved").classList.toggle("on", which === "resolved");
  $("tab-maintenance").classList.toggle("on", which === "maintenance");
  load();
}

async function start() {
  try {
    me = await api("GET", "/auth/session");
  } catch (e) {
    await loadTexts();
    $("error").textContent = t("Cannot reach pantau: {error}", { error: e.message });
    return;
  }
  await loadTexts(me.lang);
  const scope = me.districts ? t("districts {names}", { names: me.districts.join(", ") }) : t("every district");
  $("who").textContent = me.via === "public" ? t("public view (read only)") : `${me.username} · ${t(me.role)} · ${scope}`;
  $("signout").hidden = me.via === "public";
  $("tab-maintenance").hidden = me.via === "public" || RANK[me.role] < RANK.supervisor;
  $("signin").hidden = me.via !== "public";
  await load();
}

$("tab-active").addEventListener("click", () => select("active"));
$("tab-resolved").addEventListener("click", () => select("resolved"));
$("tab-maintenance").addEventListener("click", () => select("maintenance"));
$("refresh").addEventListener("click", load);
$("signout").addEventListener("click", async () => {
  await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
  location.replace("/login");
});
// Auto-refresh, but never under a technician's fingers: skip while a form is open.
setInterval(() => { if (me && !document.querySelector(".form")) load(); }, REFRESH_MS);
start();
