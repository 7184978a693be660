"use strict";
// The page's texts in the reader's language. The catalog comes from /i18n/page.json (gettext
// .po files on the server, cloud/i18n); the English text in the code is the message id.
const I18N = { lang: "id", messages: {} };

function t(message, params) {
  let text = I18N.messages[message] || message;
  for (const [key, value] of Object.entries(params || {})) text = text.split(`{${key}}`).join(String(value));
  return text;
}

// Dates and times on the regency's clock (Asia/Jakarta), in the locale's words.
const LOCALE = () => (I18N.lang === "id" ? "id-ID" : "en-GB");
const TIME_ZONE = "Asia/Jakarta";

async function loadTexts(lang) {
  const query = lang ? `?lang=${encodeURIComponent(lang)}` : "";
  try {
    const response = await fetch(`/i18n/page.json${query}`, { credentials: "same-origin" });
    if (response.ok) Object.assign(I18N, await response.json());
  } catch (e) { /* offline: the English source text stays */ }
  document.documentElement.lang = I18N.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.firstChild.textContent = `${t(node.dataset.i18nLabel)} `;
  }
  document.title = t(document.title);
}
