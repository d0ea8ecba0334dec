// Files (search the ledger) and one file's page (every ledger row across targets).

import { bytes, fields, fill, h, pretty, route, section, stamp, statusBadge, table, when } from "./core.js";

const STATUSES = ["pending", "uploading", "synced", "failed", "gave_up"];

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export const filesPage = {
  title: "Files",
  setup(root, params, context) {
    const query = params.query;
    const input = (name, label, type, extra) =>
      h(
        "div",
        { class: "field" },
        h("label", { for: "files-" + name }, label),
        h("input", { id: "files-" + name, name, type, value: query.get(name) || "", autocomplete: "off", ...extra }),
      );
    const statusSelect = h(
      "select",
      { id: "files-status", name: "status" },
      h("option", { value: "" }, "any"),
      STATUSES.map((status) => h("option", { value: status }, status.replace("_", " "))),
    );
    statusSelect.value = query.get("status") || "";
    this.targetSelect = h("select", { id: "files-target", name: "target" }, h("option", { value: "" }, "any"));
    this.wantedTarget = query.get("target") || "";
    const form = h(
      "form",
      { class: "search", role: "search", onsubmit: (event) => event.preventDefault() },
      input("path", "Path contains", "search", { placeholder: "part of a file path" }),
      input("device", "Device", "text", { placeholder: "device id" }),
      h("div", { class: "field" }, h("label", { for: "files-status" }, "Status"), statusSelect),
      h("div", { class: "field" }, h("label", { for: "files-target" }, "Target"), this.targetSelect),
    );
    const apply = () => {
      const next = new URLSearchParams();
      for (const element of form.elements) if (element.name && element.value.trim()) next.set(element.name, element.value.trim());
      this.wantedTarget = next.get("target") || "";
      context.setQuery(next);
    };
    form.addEventListener("input", debounce(apply, 250));
    form.addEventListener("change", apply);
    root.appendChild(form);
  },
  urls: (params) => {
    const query = new URLSearchParams();
    for (const name of ["path", "device", "status", "target"]) if (params.query.get(name)) query.set(name, params.query.get(name));
    return ["/api/dashboard/files?" + query.toString()];
  },
  render(body, [data]) {
    if (this.targetSelect && this.targetSelect.options.length !== data.targets.length + 1) {
      fill(this.targetSelect, h("option", { value: "" }, "any"), data.targets.map((name) => h("option", { value: name }, name)));
      this.targetSelect.value = this.wantedTarget;
    }
    const rows = data.files.map((file) =>
      h(
        "tr",
        { "data-ref-id": file.ref_id },
        h("td", { class: "path" }, h("a", { href: route("file", file.ref_id) }, file.local_path)),
        h("td", { class: "nowrap" }, file.device_id),
        h("td", {}, file.target),
        h("td", {}, file.file_type),
        h("td", {}, statusBadge(file.sync_status, file.gave_up)),
        h("td", { class: "num" }, file.attempts),
        h("td", { class: "num" }, bytes(file.file_size_bytes)),
        h("td", {}, when(file.created_at, data.now)),
        h("td", { class: "error-text" }, file.last_error || ""),
      ),
    );
    fill(body,
      h("p", { class: "muted result-count" }, `${data.files.length}${data.truncated ? "+" : ""} ledger rows, newest first`),
      table(["File", "Device", "Target", "Type", "Status", "Attempts", "Size", "Recorded", "Last error"], rows, {
        empty: "No ledger row matches.",
      }),
    );
  },
};

export function ledgerTable(rows, now) {
  return table(
    ["Target", "Status", "Cloud path", "Remote id", "Verification", "Attempts", "Last error", "Recorded", "Uploaded", "Updated", "SHA-256"],
    rows.map((row) =>
      h(
        "tr",
        { "data-ref-id": row.ref_id, "data-target": row.target },
        h("td", {}, row.target, h("div", { class: "muted" }, row.provider)),
        h("td", {}, statusBadge(row.sync_status, row.gave_up), row.next_attempt_at ? h("div", { class: "muted" }, "next ", when(row.next_attempt_at, now)) : null),
        h("td", { class: "path" }, row.cloud_path || "—"),
        h("td", { class: "path" }, row.remote_id || "—"),
        h("td", {}, row.verification || "—", row.remote_hash ? h("div", { class: "muted hash" }, row.remote_hash) : null),
        h("td", { class: "num" }, row.attempts),
        h("td", { class: "error-text" }, row.last_error || ""),
        h("td", { title: row.created_at }, stamp(row.created_at)),
        h("td", { title: row.uploaded_at }, stamp(row.uploaded_at)),
        h("td", { title: row.updated_at }, stamp(row.updated_at)),
        h("td", { class: "hash", title: row.content_sha256 }, row.content_sha256.slice(0, 12) + "…"),
      ),
    ),
    { class: "ledger" },
  );
}

export function requestSummary(request) {
  if (!request) return h("p", { class: "empty" }, "No request is linked to this file.");
  return fields([
    ["Request", h("a", { href: route("request", request.request_id) }, request.request_id)],
    ["Type", request.request_type],
    ["Status", statusBadge(request.status)],
    ["Error code", request.error_code || "—"],
    ["User", request.user_email || "—"],
    ["Received", stamp(request.created_at)],
    ["Processed", stamp(request.processed_at)],
  ]);
}

export function responseBlock(response) {
  if (!response) return h("p", { class: "empty" }, "No response (yet).");
  return [
    fields([
      ["Status", statusBadge(response.status)],
      ["File", response.local_path || "—"],
      ["Written", stamp(response.created_at)],
      ["Delivered", stamp(response.delivered_at)],
    ]),
    h("pre", { class: "json response-json" }, pretty(response.content)),
  ];
}

export const filePage = {
  title: "File",
  nav: "files",
  urls: (params) => ["/api/dashboard/files/" + encodeURIComponent(params.parts[0] || "")],
  render(body, [data]) {
    const file = data.file;
    fill(body,
      h("p", { class: "file-path path" }, file.local_path),
      fields([
        ["Device", file.device_id],
        ["Type", file.file_type],
      ]),
      section("Ledger rows across targets", ledgerTable(data.rows, data.now)),
      section("Request", requestSummary(data.request)),
      section("Response", responseBlock(data.response)),
    );
  },
};
