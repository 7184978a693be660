"use strict";
// Camera actions on the technician page: power-cycle a camera, accept its changed view, and a
// problem's history of actions with their outcome (polled until the agent has answered).
const ACTION_POLL_MS = 2000;
const ACTION_POLL_ROUNDS = 90;  // three minutes: an agent answers after the camera came back or not
const VIEW_CHANGED = "camera view changed";

function actionLine(a) {
  const who = a.trigger === "policy" ? t("automatic policy") : a.trigger.replace(/^user:/, "");
  let outcome;
  if (a.result === null) outcome = t("waiting for the agent…");
  else if (a.result === "done" && a.up_after) outcome = t("done, camera back after {s} s", { s: Math.round(a.recovery_s || 0) });
  else if (a.result === "done") outcome = t("done, camera not back");
  else outcome = `${t(a.result)}${a.detail ? `: ${a.detail}` : ""}`;
  return el("li", { class: "action", "data-action-id": String(a.id), "data-result": a.result || "pending" },
            `${clock(a.issued_at)} · ${t(a.action)} · ${who} · ${outcome}`);
}

// Shows the problem's actions in ``box``; true while one still waits for its answer.
async function showHistory(p, box) {
  let actions;
  try { actions = await api("GET", `/api/problems/${p.id}/actions`); } catch (e) { return false; }
  if (!actions.length) { box.replaceChildren(); return false; }
  box.replaceChildren(el("div", { class: "meta" }, t("Actions")), el("ul", { class: "history" }, ...actions.map(actionLine)));
  return actions.some((a) => a.result === null);
}

function watchHistory(p, box) {
  let rounds = 0;
  const tick = async () => {
    const waiting = await showHistory(p, box);
    if (waiting && box.isConnected && ++rounds < ACTION_POLL_ROUNDS) setTimeout(tick, ACTION_POLL_MS);
  };
  tick();
}

function powerCycleForm(p, box, note) {
  const send = el("button", { type: "button", class: "power-cycle-send" }, t("Power-cycle {camera} now", { camera: p.camera }));
  send.addEventListener("click", async () => {
    send.disabled = true;
    try {
      await api("POST", `/api/cameras/${p.site}/${p.camera}/power-cycle`);
      note.textContent = t("Power-cycle sent: the outcome shows below when the agent answers.");
      send.closest(".form").remove();
      watchHistory(p, box);
    } catch (e) {
      send.disabled = false;
      note.textContent = t("Power-cycle failed: {error}", { error: e.message });
    }
  });
  return el("div", { class: "form" }, el("div", { class: "meta" }, t("The camera's PoE port is switched off and on again.")), send);
}

function acceptViewForm(p, note) {
  const comment = el("input", { class: "view-comment", placeholder: t("why, e.g. re-aimed at the junction") });
  const send = el("button", { type: "button", class: "view-accept-send" }, t("Accept the new view"));
  send.addEventListener("click", async () => {
    send.disabled = true;
    try {
      const out = await api("POST", `/api/cameras/${p.site}/${p.camera}/view/accept`, { comment: comment.value.trim() });
      note.textContent = out.delivered
        ? t("New view accepted: the camera is checked against it now.")
        : t("New view recorded; the agent learns it by itself once it stays.");
      send.closest(".form").remove();
    } catch (e) {
      send.disabled = false;
      note.textContent = t("Accepting the view failed: {error}", { error: e.message });
    }
  });
  return el("div", { class: "form" }, el("label", {}, t("Comment"), comment), send);
}

// Buttons of a camera problem (technician or above): power-cycle, and accept a changed view.
function cameraActions(p, actions, slot, box, note) {
  const cycle = el("button", { type: "button", class: "power-cycle" }, t("Power-cycle"));
  cycle.addEventListener("click", () => slot.replaceChildren(powerCycleForm(p, box, note)));
  actions.append(cycle);
  if (p.title === VIEW_CHANGED) {
    const accept = el("button", { type: "button", class: "view-accept" }, t("Accept new view"));
    accept.addEventListener("click", () => slot.replaceChildren(acceptViewForm(p, note)));
    actions.append(accept);
  }
}
