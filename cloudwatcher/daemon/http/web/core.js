// Shared pieces of the dashboard: DOM building (text only, never markup), the token, JSON
// fetching with the bearer header, the retry action and value formatting.

const TOKEN_KEY = "cloudwatcher.token";

// h("td", {class: "x"}, "text", node, ...) builds an element. Strings become text nodes, so
// data from the ledger (file names chosen by devices) can never become markup.
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "href") element.setAttribute("href", safeHref(value));
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.appendChild(child);
    else element.appendChild(document.createTextNode(String(child)));
  }
}

// Links are always in-page routes built by this script.
function safeHref(value) {
  const text = String(value);
  return text.startsWith("#/") ? text : "#/overview";
}

export function route(page, ...parts) {
  return "#/" + [page, ...parts.map((part) => encodeURIComponent(String(part)))].join("/");
}

export function routeWithQuery(page, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, value);
  const text = params.toString();
  return "#/" + page + (text ? "?" + text : "");
}

// Replace an element's content with children (strings as text; arrays flattened; null skipped).
export function fill(element, ...children) {
  clear(element);
  append(element, children);
  return element;
}

export function clear(element) {
  while (element.firstChild) element.removeChild(element.firstChild);
  return element;
}

export function token() {
  return document.getElementById("token").value.trim();
}

export function setupTokenField(onChange) {
  const field = document.getElementById("token");
  try {
    field.value = sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (error) {
    field.value = "";
  }
  field.addEventListener("input", () => {
    try {
      if (field.value.trim()) sessionStorage.setItem(TOKEN_KEY, field.value.trim());
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (error) {
      // sessionStorage may be disabled: the field alone keeps the token for this page.
    }
    onChange();
  });
}

function authHeaders() {
  const value = token();
  return value ? { Authorization: "Bearer " + value } : {};
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function errorOf(response) {
  let message = response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
  } catch (error) {
    // not JSON: keep the status text
  }
  if (response.status === 401) message = "This needs the token: enter it in the Token field (" + message + ").";
  return new HttpError(response.status, message);
}

// GET a JSON endpoint; resolves to [text, parsed] so callers can skip unchanged data.
export async function getJson(url, signal) {
  const response = await fetch(url, { headers: authHeaders(), cache: "no-store", signal });
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return [text, JSON.parse(text)];
}

// POST /api/retry: JSON body and bearer header (no cookies), so no other site can trigger it.
export async function retry(refIds) {
  if (!token()) throw new HttpError(401, "Enter the token in the Token field to retry.");
  const response = await fetch("/api/retry", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify({ ref_ids: refIds }),
    credentials: "omit",
  });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()).requeued;
}

export function notice(message, kind) {
  const box = document.getElementById("notice");
  box.textContent = message || "";
  box.className = kind || "info";
  box.hidden = !message;
}

// ------------------------------------------------------------------ formatting

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  let s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const text = Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return days ? days + " d " + text : text;
}

export function ago(iso, nowIso) {
  if (!iso) return "—";
  const seconds = (Date.parse(nowIso || new Date().toISOString()) - Date.parse(iso)) / 1000;
  if (seconds < 0) return "in " + duration(-seconds);
  return duration(seconds) + " ago";
}

export function stamp(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function when(iso, nowIso) {
  return h("time", { datetime: iso || null, title: iso ? stamp(iso) : null }, ago(iso, nowIso));
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

export function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function statusBadge(status, gaveUp) {
  const label = gaveUp ? "gave up" : status;
  return h("span", { class: "badge status-" + (gaveUp ? "gave_up" : status) }, label);
}

export function table(headers, rows, options) {
  const opts = options || {};
  if (!rows.length) return h("p", { class: "empty" }, opts.empty || "Nothing to show.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: opts.class || null },
      h("thead", {}, h("tr", {}, headers.map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, rows),
    ),
  );
}

export function fields(pairs) {
  return h(
    "dl",
    { class: "fields" },
    pairs.filter(([, value]) => value !== undefined).map(([name, value]) => [h("dt", {}, name), h("dd", {}, value ?? "—")]),
  );
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}
