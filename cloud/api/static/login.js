"use strict";
// Sign in with a form: the server answers with an HttpOnly session cookie; nothing is stored here.
const $ = (id) => document.getElementById(id);

async function offerSso() {
  try {
    const response = await fetch("/auth/session", { credentials: "same-origin" });
    if (response.ok) { location.replace("/"); return; }  // signed in already
  } catch (e) { /* offline: the form still works once back */ }
  const sso = await fetch("/auth/oidc/info", { credentials: "same-origin" }).catch(() => null);
  if (sso && sso.ok) {
    const info = await sso.json();
    $("sso").textContent = info.label;
    $("sso").hidden = false;
  }
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").textContent = "";
  $("submit").disabled = true;
  try {
    const response = await fetch("/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value }),
    });
    if (response.ok) { location.replace("/"); return; }
    let detail = `${response.status}`;
    try { const p = await response.json(); detail = p.detail || p.title || detail; } catch (e) { /* not JSON */ }
    $("error").textContent = t(detail);
  } finally {
    $("password").value = "";
    $("submit").disabled = false;
  }
});
loadTexts();  // the deployment's language (pantau api --lang) until someone signs in
offerSso();
