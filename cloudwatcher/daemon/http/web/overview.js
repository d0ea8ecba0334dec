// Overview (targets, throughput, instances) and Devices.

import { ago, duration, fill, h, routeWithQuery, section, stamp, table, when } from "./core.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  for (const child of children) {
    if (typeof child === "string") element.appendChild(document.createTextNode(child));
    else element.appendChild(child);
  }
  return element;
}

// One bar per minute of the last hour, the current minute on the right.
function throughputChart(series, minutes) {
  const width = 300;
  const height = 60;
  const counts = series ? series.counts : [];
  const max = Math.max(1, ...counts);
  const slot = width / Math.max(1, counts.length);
  const total = series ? series.total : 0;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height + 14}`,
    class: "chart",
    role: "img",
    "aria-label": `${total} uploads in the last hour`,
  });
  chart.appendChild(svg("line", { x1: 0, y1: height + 0.5, x2: width, y2: height + 0.5, class: "axis" }));
  counts.forEach((count, i) => {
    if (!count) return;
    const barHeight = Math.max(1.5, (count / max) * (height - 4));
    const bar = svg("rect", {
      x: (i * slot + 0.5).toFixed(2),
      y: (height - barHeight).toFixed(2),
      width: Math.max(1, slot - 1).toFixed(2),
      height: barHeight.toFixed(2),
      class: "bar",
    });
    bar.appendChild(svg("title", {}, `${stamp(minutes[i])}: ${count}`));
    chart.appendChild(bar);
  });
  chart.appendChild(svg("text", { x: 0, y: height + 12, class: "tick" }, "-60 min"));
  chart.appendChild(svg("text", { x: width, y: height + 12, class: "tick end" }, "now"));
  chart.appendChild(svg("text", { x: 0, y: 8, class: "tick" }, `peak ${Math.max(0, ...counts)}/min`));
  return chart;
}

function lightLabel(light) {
  return { green: "Green", amber: "Amber", red: "Red" }[light] || light;
}

function targetCard(target, series, minutes, now) {
  const number = (label, value, extra) =>
    h("div", { class: "number " + (extra || "") }, h("span", { class: "value" }, value), h("span", { class: "label" }, label));
  return h(
    "article",
    { class: "target light-" + target.light, "data-target": target.name },
    h(
      "header",
      {},
      h("h3", {}, target.name),
      h("span", { class: "provider" }, target.provider || ""),
      h("span", { class: "light", title: target.light_reason }, h("span", { class: "dot" }), lightLabel(target.light)),
    ),
    h("p", { class: "reason" }, target.light_reason + (target.state_reason ? " — " + target.state_reason : "")),
    h(
      "div",
      { class: "numbers" },
      number("synced", target.synced),
      number("pending", target.pending),
      number("uploading", target.uploading),
      number("failed", target.failed, target.failed ? "bad" : ""),
      number("gave up", target.gave_up, target.gave_up ? "bad" : ""),
      number("oldest pending", duration(target.oldest_pending_age_seconds)),
    ),
    h("p", { class: "muted" }, "Last synced ", when(target.last_synced_at, now)),
    h("div", { class: "throughput" }, h("span", { class: "muted" }, `${series ? series.total : 0} uploads in the last hour`)),
    throughputChart(series, minutes),
  );
}

export const overviewPage = {
  title: "Overview",
  urls: () => ["/api/dashboard/overview", "/api/dashboard/throughput"],
  render(body, [data, rate]) {
    const byName = Object.fromEntries(rate.targets.map((series) => [series.name, series]));
    const requests = data.requests;
    const instanceRows = data.instances.map((instance) => {
      const state = instance.stopped_at ? "stopped" : instance.stale ? "stale" : "running";
      return h(
        "tr",
        { class: "instance-" + state },
        h("td", {}, instance.host),
        h("td", {}, instance.pid),
        h("td", {}, instance.version),
        h("td", {}, instance.stopped_at ? "stopped " + ago(instance.stopped_at, data.now) : duration(instance.uptime_seconds)),
        h("td", {}, when(instance.last_heartbeat, data.now)),
        h("td", {}, h("span", { class: "badge instance-" + state }, state)),
        h("td", { class: "path" }, instance.watch_root),
      );
    });
    fill(body,
      h(
        "section",
        { class: "targets" },
        data.targets.map((target) => targetCard(target, byName[target.name], rate.minutes, data.now)),
      ),
      section(
        "Requests",
        h(
          "p",
          { class: "request-counts" },
          ["pending", "processing", "completed", "failed"].map((status) =>
            h("a", { class: "count status-" + status, href: routeWithQuery("requests", { status }) }, `${requests[status] ?? 0} ${status}`),
          ),
        ),
      ),
      section(
        "Instances",
        table(["Host", "PID", "Version", "Uptime", "Last heartbeat", "State", "Watch root"], instanceRows, {
          empty: "No daemon has registered.",
        }),
      ),
    );
  },
};

export const devicesPage = {
  title: "Devices",
  urls: () => ["/api/dashboard/devices"],
  render(body, [data]) {
    const rows = data.devices.map((device) =>
      h(
        "tr",
        { "data-device": device.device_id },
        h("td", {}, h("a", { href: routeWithQuery("files", { device: device.device_id }) }, device.device_id)),
        h("td", {}, h("span", { class: "badge " + (device.online ? "online" : "offline") }, device.online ? "online" : "offline")),
        h("td", {}, when(device.last_seen_at, data.now)),
        h("td", { class: "num" }, device.files_today),
        h("td", { class: "num" }, device.requests_today),
        h("td", { class: "num", title: "files left in the device's folder that were skipped (see the daemon's warnings)" }, device.skipped ?? 0),
        h("td", {}, device.online ? duration(device.open_session_seconds) : "—"),
        h("td", {}, h("a", { href: routeWithQuery("requests", { device: device.device_id }) }, "requests")),
      ),
    );
    fill(body,
      table(["Device", "State", "Last seen", "Files today", "Requests today", "Skipped", "Open session", ""], rows, {
        empty: "No device has dropped a file yet.",
      }),
    );
  },
};
