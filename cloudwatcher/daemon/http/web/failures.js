// Failures: failed uploads grouped by target and error, with a Retry button per row and per group.

import { fill, h, notice, retry, route, statusBadge, table, when } from "./core.js";

function retryButton(label, refIds, context, attrs) {
  const button = h("button", { type: "button", class: "retry", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const requeued = await retry(refIds);
      notice(`Re-queued ${requeued} upload${requeued === 1 ? "" : "s"}.`, "ok");
      context.refresh();
    } catch (error) {
      notice(error.message || String(error), "bad");
      button.disabled = false;
    }
  });
  return button;
}

export const failuresPage = {
  title: "Failures",
  urls: () => ["/api/dashboard/failures"],
  render(body, [data], context) {
    if (!data.groups.length) {
      fill(body, h("p", { class: "empty no-failures" }, "No failed uploads."));
      return;
    }
    const groups = data.groups.map((group) => {
      const rows = group.rows.map((row) =>
        h(
          "tr",
          { "data-ref-id": row.ref_id },
          h("td", { class: "path" }, h("a", { href: route("file", row.ref_id) }, row.local_path)),
          h("td", { class: "nowrap" }, row.device_id),
          h("td", { class: "num" }, row.attempts),
          h("td", {}, statusBadge("failed", row.gave_up), row.gave_up ? null : h("div", { class: "muted" }, "next ", when(row.next_attempt_at, data.now))),
          h("td", { class: "error-text" }, row.last_error || ""),
          h("td", {}, retryButton("Retry", [row.ref_id], context, { "data-ref-id": row.ref_id })),
        ),
      );
      const hidden = group.failed - group.rows.length;
      return h(
        "section",
        { class: "card failure-group", "data-target": group.target },
        h(
          "header",
          {},
          h("h2", {}, group.target, h("span", { class: "muted" }, " · " + group.failed + " failed" + (group.gave_up ? `, ${group.gave_up} gave up` : ""))),
          retryButton(`Retry all ${group.ref_ids.length}`, group.ref_ids, context, { class: "retry retry-group" }),
        ),
        h("p", { class: "error-kind error-text" }, group.error_kind),
        table(["File", "Device", "Attempts", "State", "Last error", ""], rows),
        hidden > 0 ? h("p", { class: "muted" }, `and ${hidden} more (the group's Retry covers them)`) : null,
      );
    });
    fill(body, h("p", { class: "muted" }, `${data.total} failed upload${data.total === 1 ? "" : "s"} in ${data.groups.length} group${data.groups.length === 1 ? "" : "s"}`), groups);
  },
};
