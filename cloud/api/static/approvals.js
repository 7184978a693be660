"use strict";
// The supervisor's approval screen: maintenance windows requested by technicians, approved or
// refused here (a refusal cancels the request, with a reason; it stays in the record).

function windowScope(w) {
  if (w.camera) return t("camera {site}/{camera}", { site: w.site, camera: w.camera });
  if (w.site) return t("whole site {site}", { site: w.site });
  if (w.service) return t("service {name}", { name: w.service });
  return t("district {district}", { district: w.district || "-" });
}

function refuseForm(w) {
  const reason = el("input", { class: "refuse-reason", placeholder: t("reason, e.g. not planned with the vendor") });
  const send = el("button", { type: "button", class: "refuse-send" }, t("Refuse request"));
  send.addEventListener("click", async () => {
    try {
      await api("POST", `/api/maintenance/${w.id}/cancel`, { reason: reason.value.trim() || null });
      $("error").textContent = "";
      await loadApprovals();
    } catch (e) { $("error").textContent = t("Refusing failed: {error}", { error: e.message }); }
  });
  return el("div", { class: "form" }, el("label", {}, t("Reason"), reason), send);
}

function windowCard(w) {
  const node = el("article", { class: "card window", "data-window-id": String(w.id), "data-status": w.status });
  node.append(
    el("div", { class: "title" }, t("Maintenance request"), " · ", windowScope(w)),
    el("div", { class: "meta" }, `${clock(w.start)} – ${clock(w.end)}`),
    el("div", { class: "cause" }, w.reason),
    el("div", { class: "meta" }, t("requested by {who} on {when}", { who: w.created_by, when: clock(w.created_at) })),
  );
  if (w.retroactive) {
    node.append(el("span", { class: "badge retro" }, t("retroactive: {reason}", { reason: w.retro_reason || "-" })));
  }
  const slot = el("div", {});
  const approve = el("button", { type: "button", class: "approve" }, t("Approve"));
  approve.addEventListener("click", async () => {
    try {
      await api("POST", `/api/maintenance/${w.id}/approve`);
      $("error").textContent = "";
      await loadApprovals();
    } catch (e) { $("error").textContent = t("Approving failed: {error}", { error: e.message }); }
  });
  const refuse = el("button", { type: "button", class: "refuse" }, t("Refuse"));
  refuse.addEventListener("click", () => slot.replaceChildren(refuseForm(w)));
  node.append(el("div", { class: "actions" }, approve, refuse), slot);
  return node;
}

async function loadApprovals() {
  let windows;
  try {
    windows = await api("GET", "/api/maintenance");
  } catch (e) {
    $("error").textContent = t("Cannot load maintenance: {error}", { error: e.message });
    return;
  }
  const waiting = windows.filter((w) => w.status === "requested").sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const list = $("list");
  list.replaceChildren(...waiting.map(windowCard));
  if (!waiting.length) list.append(el("div", { class: "empty" }, t("No maintenance requests waiting")));
  $("summary").textContent = t("{count} waiting for approval", { count: waiting.length });
  document.body.dataset.loaded = String(Date.now());
}
