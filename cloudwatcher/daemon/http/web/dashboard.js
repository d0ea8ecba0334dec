// The dashboard's entry point: hash routes, and a poll of the current page's JSON endpoints
// every two seconds that re-renders only what changed (no page reloads). A hidden tab does not
// poll (Page Visibility API): a dashboard left open in the background costs the daemon nothing.

import { clear, getJson, h, notice, setupTokenField } from "./core.js";
import { devicesPage, overviewPage } from "./overview.js";
import { filePage, filesPage } from "./files.js";
import { failuresPage } from "./failures.js";
import { requestPage, requestsPage } from "./requests.js";

const POLL_MS = 2000;

const PAGES = {
  overview: overviewPage,
  devices: devicesPage,
  files: filesPage,
  file: filePage,
  failures: failuresPage,
  requests: requestsPage,
  request: requestPage,
};

let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, queryText] = raw.split("?", 2);
  const [name, ...parts] = path.split("/").filter(Boolean);
  return {
    name: PAGES[name] ? name : "overview",
    parts: parts.map((part) => {
      try {
        return decodeURIComponent(part);
      } catch (error) {
        return part;
      }
    }),
    query: new URLSearchParams(queryText || ""),
  };
}

// Without "now" (which changes on every answer) so that unchanged data is not re-drawn.
function keyOf(results) {
  return results
    .map(([, data]) => {
      if (data && typeof data === "object" && !Array.isArray(data)) {
        const { now, ...rest } = data;
        return JSON.stringify(rest);
      }
      return JSON.stringify(data);
    })
    .join("\n");
}

async function refresh(force) {
  const view = current;
  if (!view || (view.busy && !force)) return;
  view.busy = true;
  const seq = (view.seq = (view.seq || 0) + 1);
  try {
    const urls = view.page.urls(view.params);
    const results = await Promise.all(urls.map((url) => getJson(url)));
    if (view !== current || seq !== view.seq) return;
    const key = keyOf(results);
    if (force || key !== view.lastKey) {
      view.lastKey = key;
      clear(view.error);
      view.page.render(view.body, results.map(([, data]) => data), view.context);
      view.rendered = true;
    }
    document.getElementById("refreshed").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (error) {
    if (view === current && seq === view.seq) {
      clear(view.error).appendChild(h("p", { class: "error" }, error.message || String(error)));
      if (!view.rendered) clear(view.body); // drop "Loading…"; data already shown stays
      view.lastKey = null;
    }
  } finally {
    view.busy = false;
  }
}

function show() {
  const params = parseHash();
  const page = PAGES[params.name];
  const root = clear(document.getElementById("page"));
  notice("");
  for (const link of document.querySelectorAll("nav a")) {
    const active = link.dataset.page === (page.nav || params.name);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = page.title + " · CloudWatcher";
  const view = { page, params, busy: false, lastKey: null };
  view.context = {
    refresh: () => refresh(true),
    // Forms change the query without a reload or a new history entry; the poll follows.
    setQuery: (query) => {
      const text = query.toString();
      history.replaceState(null, "", "#/" + params.name + (text ? "?" + text : ""));
      view.params = { ...view.params, query };
      refresh(true);
    },
  };
  root.appendChild(h("h1", {}, page.title));
  if (page.setup) page.setup(root, params, view.context);
  view.error = root.appendChild(h("div", { class: "load-error", role: "alert" }));
  view.body = root.appendChild(h("div", { class: "page-body" }, h("p", { class: "empty" }, "Loading…")));
  current = view;
  refresh(true);
}

let pollTimer = null;

function startPolling() {
  if (pollTimer === null) pollTimer = setInterval(() => refresh(false), POLL_MS);
}

function stopPolling() {
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
}

// Shown again: fetch at once (the data may be minutes old), then poll as before.
function onVisibilityChange() {
  if (document.hidden) {
    stopPolling();
  } else {
    refresh(false);
    startPolling();
  }
}

setupTokenField(() => refresh(false));
window.addEventListener("hashchange", show);
document.addEventListener("visibilitychange", onVisibilityChange);
if (!document.hidden) startPolling();
show();
