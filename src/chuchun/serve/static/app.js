// The chuchun page: plain JavaScript over the service's /v1 API (no external assets).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, card: null, history: [] };

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    throw new Error(`${response.status} ${body ? body.error : ""}: ${text}`);
  }
  return body;
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(4));
const nameOf = (x) => x.label || String(x.item);

function itemLine(x, withReasons) {
  const li = el("li", { "data-item": String(x.item) },
    el("span", { class: "item-title", title: "show similar items", onclick: () => similar(x.item) },
      nameOf(x)),
    el("span", { class: "score" }, fmt(x.score)),
    el("button", { class: "small add", title: "add to the new user's history",
                   onclick: () => addToHistory(x.item, nameOf(x)) }, "+ history"));
  if (withReasons && x.explanation) {
    const ul = el("ul", { class: "reasons" });
    for (const r of x.explanation.reasons) {
      const cls = r.contribution >= 0 ? "pos" : "neg";
      const details = Object.entries(r.detail || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
      ul.append(el("li", { class: "reason" }, `${r.kind}: ${r.label || r.id} `,
        el("span", { class: cls }, `(${r.contribution >= 0 ? "+" : ""}${fmt(r.contribution)})`),
        details ? el("span", { class: "muted" }, ` ${details}`) : ""));
    }
    if (x.explanation.method) ul.append(el("li", { class: "muted" }, x.explanation.method));
    li.append(ul);
  }
  return li;
}

function renderList(target, items, withReasons) {
  target.replaceChildren(...items.map((x) => itemLine(x, withReasons)));
  if (!items.length) target.append(el("li", { class: "muted" }, "nothing to show"));
}

function renderCard(card) {
  const rows = Object.entries(card.params).map(([k, p]) =>
    el("tr", {}, el("td", {}, k), el("td", {}, JSON.stringify(p.value)), el("td", { class: "muted" }, p.doc)));
  const facts = [
    ["class", card.class], ["version", card.version], ["users", card.n_users],
    ["items", card.n_items], ["trained", card.trained_at || "–"], ["index", card.index],
    ["fold-in", card.supports_fold_in ? "yes" : "no"],
    ["explanations", card.explain_method || "–"], ["data fingerprint", card.data_fingerprint || "–"],
  ];
  const nodes = [el("p", {}, card.summary || ""),
    el("table", {}, ...facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, String(v)))))];
  if (card.evaluation) {
    nodes.push(el("h3", {}, "Evaluation"), el("table", {}, ...Object.entries(card.evaluation).map(
      ([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, typeof v === "number" ? fmt(v) : String(v))))));
  }
  nodes.push(el("h3", {}, "Parameters"), el("table", { id: "params" }, ...rows));
  $("card").replaceChildren(...nodes);
  $("example-users").replaceChildren(...card.example_users.map((u) => el("option", { value: String(u) })));
  $("go-history").disabled = !card.supports_fold_in || !state.history.length;
}

async function selectModel(name) {
  state.model = name;
  state.card = await api(`/v1/models/${encodeURIComponent(name)}`);
  renderCard(state.card);
  if (!$("user").value && state.card.example_users.length) $("user").value = state.card.example_users[0];
}

const k = () => Math.max(1, Math.min(100, parseInt($("k").value, 10) || 10));

async function recommendUser() {
  const user = $("user").value.trim();
  if (!user) return;
  const q = new URLSearchParams({ user, k: k(), explain: "true", n_reasons: "3" });
  let body;
  try {
    body = await api(`/v1/models/${encodeURIComponent(state.model)}/recommend?${q}`);
  } catch (err) {
    if (!String(err.message).includes("cannot explain")) throw err;
    q.set("explain", "false");
    body = await api(`/v1/models/${encodeURIComponent(state.model)}/recommend?${q}`);
  }
  const result = body.results[0];
  $("results-title").textContent = `Recommendations for user ${result.user}` + (result.known ? "" : " (unknown: fallback)");
  renderList($("recs"), result.items, true);
}

async function recommendHistory() {
  const body = await api(`/v1/models/${encodeURIComponent(state.model)}/recommend-for-history`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ items: state.history.map((h) => h.item), k: k(),
                           ratings: state.card.predicts_ratings ? state.history.map(() => 5) : null }),
  });
  $("results-title").textContent = `Recommendations for the new user (${state.history.length} items)`;
  renderList($("recs"), body.results[0].items, false);
}

async function similar(item) {
  const q = new URLSearchParams({ item: String(item), k: k() });
  const body = await api(`/v1/models/${encodeURIComponent(state.model)}/similar-items?${q}`);
  $("similar-title").textContent = `Similar to ${body.label || body.item}`;
  renderList($("similar"), body.items, false);
}

function addToHistory(item, label) {
  if (!state.history.some((h) => String(h.item) === String(item))) state.history.push({ item, label });
  renderHistory();
}

function renderHistory() {
  $("history").replaceChildren(...state.history.map((h, j) => el("li", {}, h.label,
    el("button", { class: "small", title: "remove",
                   onclick: () => { state.history.splice(j, 1); renderHistory(); } }, "×"))));
  $("go-history").disabled = !(state.card && state.card.supports_fold_in) || !state.history.length;
}

let searchTimer = null;
function searchTitles() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => run(async () => {
    const text = $("search").value.trim();
    if (!text) { $("hits").replaceChildren(); return; }
    const q = new URLSearchParams({ q: text, limit: "8" });
    const body = await api(`/v1/models/${encodeURIComponent(state.model)}/items?${q}`);
    $("hits").replaceChildren(...body.items.map((x) => el("li", {},
      el("button", { class: "small add-hit", onclick: () => addToHistory(x.item, x.label || String(x.item)) }, "+"),
      " ", x.label || String(x.item))));
  }), 200);
}

async function run(fn) {
  try { showError(null); await fn(); } catch (err) { showError(err); }
}

window.addEventListener("DOMContentLoaded", () => run(async () => {
  const body = await api("/v1/models");
  $("model").replaceChildren(...body.models.map((m) => el("option", { value: m.name }, `${m.name} (${m.class})`)));
  $("model").addEventListener("change", () => run(() => selectModel($("model").value)));
  $("go-user").addEventListener("click", () => run(recommendUser));
  $("user").addEventListener("keydown", (e) => { if (e.key === "Enter") run(recommendUser); });
  $("go-history").addEventListener("click", () => run(recommendHistory));
  $("search").addEventListener("input", searchTitles);
  if (body.models.length) await selectModel(body.models[0].name);
}));
