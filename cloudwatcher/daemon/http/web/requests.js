// Requests (recent, by type and outcome) and one request's page (envelope, response, audit, orders).

import { fields, fill, h, pretty, route, routeWithQuery, section, stamp, statusBadge, table, when } from "./core.js";
import { ledgerTable, responseBlock } from "./files.js";

const STATUSES = ["pending", "processing", "completed", "failed"];

export const requestsPage = {
  title: "Requests",
  urls: (params) => {
    const query = new URLSearchParams();
    for (const name of ["type", "status", "device"]) if (params.query.get(name)) query.set(name, params.query.get(name));
    return ["/api/dashboard/requests?" + query.toString()];
  },
  render(body, [data]) {
    const filters = data.filters;
    const summaryRows = data.summary.map((entry) =>
      h(
        "tr",
        { "data-type": entry.request_type },
        h("th", { scope: "row" }, h("a", { href: routeWithQuery("requests", { type: entry.request_type }) }, entry.request_type)),
        STATUSES.map((status) =>
          h(
            "td",
            { class: "num" },
            entry.counts[status]
              ? h("a", { href: routeWithQuery("requests", { type: entry.request_type, status }) }, entry.counts[status])
              : "0",
          ),
        ),
      ),
    );
    const rows = data.requests.map((request) =>
      h(
        "tr",
        { "data-request-id": request.request_id },
        h("td", {}, h("a", { href: route("request", request.request_id) }, when(request.created_at, data.now))),
        h("td", { class: "nowrap" }, request.device_id),
        h("td", {}, request.request_type),
        h("td", {}, statusBadge(request.status)),
        h("td", {}, request.error_code || ""),
        h("td", {}, request.user_email || "—"),
        h("td", {}, request.response_status ? statusBadge(request.response_status) : "—"),
        h("td", { class: "path" }, request.local_path || ""),
      ),
    );
    const active = Object.entries(filters).filter(([, value]) => value);
    fill(body,
      section(
        "Last 24 hours by type and outcome",
        table(["Type", ...STATUSES], summaryRows, { class: "summary", empty: "No requests in the last 24 hours." }),
      ),
      section(
        "Recent requests",
        active.length
          ? h(
              "p",
              { class: "filters" },
              "Showing ",
              active.map(([key, value]) => h("span", { class: "badge" }, `${key}: ${value}`)),
              " · ",
              h("a", { href: "#/requests" }, "show all"),
            )
          : null,
        table(["Received", "Device", "Type", "Status", "Error", "User", "Response", "File"], rows, { empty: "No requests." }),
      ),
    );
  },
};

function envelopeBlock(envelope) {
  if (envelope.error) return h("p", { class: "empty" }, envelope.error + (envelope.source ? ` (${envelope.source})` : ""));
  return [
    h("p", { class: "muted path" }, envelope.source),
    envelope.truncated ? h("p", { class: "muted" }, `The file is ${envelope.size} bytes; its beginning is shown.`) : null,
    h("pre", { class: "json envelope-json" }, envelope.json !== null ? pretty(envelope.json) : envelope.text),
  ];
}

function changes(entry) {
  const shown = entry.operation === "DELETE" ? entry.old_values : entry.new_values;
  if (entry.operation === "UPDATE" && entry.old_values && entry.new_values) {
    const changed = Object.keys(entry.new_values).filter(
      (key) => key !== "updated_at" && JSON.stringify(entry.new_values[key]) !== JSON.stringify(entry.old_values[key]),
    );
    return h(
      "ul",
      { class: "changes" },
      changed.map((key) => h("li", {}, `${key}: ${JSON.stringify(entry.old_values[key])} → ${JSON.stringify(entry.new_values[key])}`)),
    );
  }
  return h("details", {}, h("summary", {}, "values"), h("pre", { class: "json" }, pretty(shown)));
}

export const requestPage = {
  title: "Request",
  nav: "requests",
  urls: (params) => ["/api/dashboard/requests/" + encodeURIComponent(params.parts[0] || "")],
  render(body, [data]) {
    const request = data.request;
    const metadata = Object.entries(data.metadata);
    fill(body,
      fields([
        ["Request", request.request_id],
        ["Type", request.request_type],
        ["Status", statusBadge(request.status)],
        ["Error code", request.error_code || "—"],
        ["Device", h("a", { href: routeWithQuery("files", { device: request.device_id }) }, request.device_id)],
        ["User", request.user_email || "—"],
        ["File", request.local_path || "—"],
        ["Received", stamp(request.created_at)],
        ["Processed", stamp(request.processed_at) + (request.processed_by_host ? ` by ${request.processed_by_host}` : "")],
        ["Payload sha256", request.payload_hash || "—"],
      ]),
      section("Envelope", envelopeBlock(data.envelope)),
      metadata.length ? section("Metadata", fields(metadata)) : null,
      section("Response", responseBlock(data.response)),
      section("Files", ledgerTable(data.files, data.now)),
      section(
        "Orders",
        table(
          ["Order", "Type", "Status", "Total", "Location", "Created by", "Created"],
          data.orders.map((order) =>
            h(
              "tr",
              {},
              h("td", { class: "hash" }, order.order_id),
              h("td", {}, order.order_type),
              h("td", {}, statusBadge(order.status)),
              h("td", { class: "num" }, order.total),
              h("td", {}, order.location || "—"),
              h("td", {}, order.created_by || "—"),
              h("td", {}, stamp(order.created_at)),
            ),
          ),
          { empty: "This request touched no order." },
        ),
      ),
      section(
        "Order history",
        table(
          ["When", "Order", "Event", "Description", "User"],
          data.order_history.map((event) =>
            h(
              "tr",
              {},
              h("td", {}, stamp(event.created_at)),
              h("td", { class: "hash" }, event.order_id.slice(0, 8) + "…"),
              h("td", {}, event.event_type),
              h("td", {}, event.event_description || ""),
              h("td", {}, event.user_email || "—"),
            ),
          ),
          { empty: "No order history." },
        ),
      ),
      section(
        "Audit rows",
        table(
          ["When", "Table", "Operation", "Record", "User", "Changes"],
          data.audit.map((entry) =>
            h(
              "tr",
              { class: "audit-row" },
              h("td", {}, stamp(entry.created_at)),
              h("td", {}, entry.table_name),
              h("td", {}, entry.operation),
              h("td", { class: "hash" }, entry.record_id || "—"),
              h("td", {}, entry.user_email || "—"),
              h("td", {}, changes(entry)),
            ),
          ),
          { empty: "No audit rows." },
        ),
      ),
    );
  },
};
