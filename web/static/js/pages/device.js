// Device page: the object tree with names and live values, operations per object, instance and
// resource, the event timeline and charts of numeric datapoints.

import { get, post, query } from "../api.js";
import { eventItem, formatTime, formatValue, h } from "../dom.js";
import { lineChart } from "../chart.js";
import { subscribe } from "../live.js";

export const name = "device";
const NUMERIC = new Set(["Float", "Integer", "Unsigned Integer"]);

function parseValue(text, type) {
  const trimmed = text.trim();
  if (type === "Integer" || type === "Unsigned Integer" || type === "Time") {
    const n = Number(trimmed);
    return type === "Time" ? { time: n } : n;
  }
  if (type === "Float") return Number(trimmed);
  if (type === "Boolean") return ["1", "true", "on", "yes"].includes(trimmed.toLowerCase());
  if (type === "Opaque") return { hex: trimmed.replace(/^0x/i, "").replace(/\s+/g, "") };
  if (type === "Objlnk") return { objlnk: trimmed };
  if (!type) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return trimmed;
    }
  }
  return text;
}

function parseAttributes(text) {
  const attributes = {};
  for (const part of text.split(/[&,;\s]+/).filter(Boolean)) {
    const [key, value] = part.split("=");
    attributes[key] = value === undefined ? null : Number.isNaN(Number(value)) ? value : Number(value);
  }
  return attributes;
}

export function render(view, [ref], { notify }) {
  const base = `/devices/${encodeURIComponent(ref)}`;
  const header = h("div", { id: "device-header", "data-testid": "device-header" }, "Loading…");
  const tree = h("div", { class: "tree", id: "object-tree", "data-testid": "object-tree" });
  const result = h("div", { class: "result", id: "op-result", "data-testid": "op-result" }, "Results of operations appear here.");
  const opPath = h("input", { id: "op-path", "data-testid": "op-path", placeholder: "/3303/0/5700", class: "mono" });
  const opKind = h("select", { id: "op-kind", "data-testid": "op-kind" },
    ...["read", "write", "execute", "observe", "discover", "write-attributes", "create", "delete"].map((k) => h("option", { value: k }, k)));
  const opArg = h("input", { id: "op-arg", "data-testid": "op-arg", placeholder: "value / arguments / pmin=10&pmax=60" });
  const opForm = h("form", { class: "row", id: "op-form", "data-testid": "op-form" }, opKind, opPath, opArg,
    h("button", { class: "primary", type: "submit", "data-testid": "op-send" }, "Send"));
  const timeline = h("ul", { class: "feed", id: "device-timeline", "data-testid": "device-timeline" });
  const chartPath = h("select", { id: "chart-path", "data-testid": "chart-path" });
  const chartBox = h("div", { id: "chart-box", "data-testid": "chart-box" });
  view.append(
    header,
    h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "Objects"),
        h("div", { class: "panel request" }, opForm, result),
        h("div", { class: "panel" }, tree)),
      h("section", {},
        h("h2", {}, "Datapoints"), h("div", { class: "panel" }, chartPath, chartBox),
        h("h2", {}, "Timeline"), h("div", { class: "panel" }, timeline))),
  );

  let device = null;
  const resourceTypes = new Map(); // path -> type
  const valueCells = new Map(); // path -> element
  const observeButtons = new Map(); // path -> button
  const observations = new Map(); // path -> observation id
  let chartPoints = [];

  function showResult(title, payload, isError = false) {
    result.className = `result${isError ? " error" : ""}`;
    result.dataset.state = isError ? "error" : "ok";
    result.textContent = `${title}\n${typeof payload === "string" ? payload : JSON.stringify(payload, null, 2)}`;
  }

  function setValue(path, value) {
    const cell = valueCells.get(path);
    if (!cell) return;
    cell.textContent = formatValue(value);
    cell.classList.add("flash");
    setTimeout(() => cell.classList.remove("flash"), 800);
  }

  function applyValues(values, at) {
    for (const v of values || []) {
      setValue(v.path, v.value);
      if (v.path === chartPath.value && typeof v.value === "number") {
        chartPoints.push({ at: at ?? Date.now() / 1000, value: v.value });
        drawChart();
      }
    }
  }

  async function run(kind, path, arg = "") {
    const type = resourceTypes.get(path);
    try {
      let response;
      if (kind === "read") {
        response = await post(`${base}/read`, { path });
        applyValues(response.values);
      } else if (kind === "write") {
        response = await post(`${base}/write`, { path, value: parseValue(arg, type) });
      } else if (kind === "execute") {
        response = await post(`${base}/execute`, { path, arguments: arg });
      } else if (kind === "discover") {
        response = await post(`${base}/discover`, { path });
      } else if (kind === "create") {
        // "/3303/7" creates instance 7, "/3303" lets the client choose; the argument is {"5700": 21.5, ...}
        const [object, instance] = path.split("/").filter(Boolean);
        response = await post(`${base}/create`, { path: `/${object}`, instance: instance === undefined ? null : Number(instance), value: parseValue(arg || "{}") });
      } else if (kind === "delete") {
        response = await post(`${base}/delete`, { path });
      } else if (kind === "write-attributes") {
        response = await post(`${base}/write-attributes`, { path, attributes: parseAttributes(arg) });
      } else if (kind === "observe") {
        if (observations.has(path)) {
          response = await post(`${base}/cancel-observation`, { observation_id: observations.get(path) });
          observations.delete(path);
        } else {
          response = await post(`${base}/observe`, { path });
          observations.set(path, response.observation_id);
          applyValues(response.values);
        }
        refreshObserveButtons();
      }
      showResult(`${kind} ${path}: ok`, response ?? {});
    } catch (err) {
      showResult(`${kind} ${path}: failed (${err.status || "network"})`, err.message, true);
    }
  }

  function prepare(kind, path) {
    opKind.value = kind;
    opPath.value = path;
    opArg.value = "";
    opArg.focus();
  }

  function refreshObserveButtons() {
    for (const [path, button] of observeButtons) {
      const on = observations.has(path);
      button.textContent = on ? "cancel" : "observe";
      button.dataset.observed = String(on);
    }
  }

  function opsFor(path, operations, level, multiple = false) {
    const ops = operations || "";
    const buttons = [];
    const button = (label, action, op) => h("button", {
      type: "button", "data-testid": `${op}-${path}`, dataset: { op, path }, onclick: action }, label);
    if (level !== "resource" || ops.includes("R")) buttons.push(button("read", () => run("read", path), "read"));
    if (level === "resource" && ops.includes("W")) buttons.push(button("write", () => prepare("write", path), "write"));
    if (level === "resource" && ops.includes("E")) buttons.push(button("execute", () => prepare("execute", path), "execute"));
    if (level !== "resource" || ops.includes("R")) {
      const observe = button("observe", () => run("observe", path), "observe");
      observeButtons.set(path, observe);
      buttons.push(observe);
    }
    buttons.push(button("attributes", () => prepare("write-attributes", path), "attributes"));
    buttons.push(button("discover", () => run("discover", path), "discover"));
    if (multiple && level === "object") buttons.push(button("create", () => prepare("create", `${path}/`), "create"));
    if (multiple && level === "instance") buttons.push(button("delete", () => run("delete", path), "delete"));
    return h("div", { class: "ops" }, buttons);
  }

  function renderTree(objects) {
    tree.replaceChildren();
    if (!objects.length) tree.append(h("p", { class: "muted" }, "No objects: the device has not registered yet."));
    for (const object of objects) {
      const objectPath = `/${object.id}`;
      const instances = object.instances.map((instance) => {
        const instancePath = `${objectPath}/${instance.id}`;
        const resources = instance.resources.map((resource) => {
          const path = `${instancePath}/${resource.id}`;
          resourceTypes.set(path, resource.type);
          const cell = h("span", { class: "value", "data-testid": `value-${path}`, dataset: { path } }, formatValue(resource.value));
          valueCells.set(path, cell);
          return h("div", { class: "resource", "data-testid": "resource", dataset: { path } },
            h("div", {}, h("strong", {}, resource.name || `Resource ${resource.id}`),
              h("div", { class: "muted mono" }, `${path} · ${resource.type || "?"} · ${resource.operations || ""}${resource.multiple ? " · multiple" : ""}`)),
            cell,
            opsFor(path, resource.operations, "resource"));
        });
        return h("details", { open: true, "data-testid": "instance", dataset: { path: instancePath } },
          h("summary", {}, h("span", { class: "mono" }, instancePath), " ", opsFor(instancePath, "", "instance", object.multiple)),
          h("div", { class: "resources" }, resources));
      });
      tree.append(h("details", { open: object.id >= 3200 || object.id === 3, "data-testid": "object", dataset: { path: objectPath } },
        h("summary", {}, h("strong", {}, `${object.id} ${object.name || ""}`), " ", opsFor(objectPath, "", "object", object.multiple)),
        instances));
    }
    const numeric = [...resourceTypes].filter(([, type]) => NUMERIC.has(type)).map(([path]) => path);
    numeric.sort((a, b) => (b.endsWith("/5700") - a.endsWith("/5700")) || a.localeCompare(b));
    chartPath.replaceChildren(...numeric.map((p) => h("option", { value: p }, p)));
    if (numeric.length) loadChart();
    else chartBox.replaceChildren(h("p", { class: "muted" }, "No numeric resources."));
  }

  function drawChart() {
    chartBox.replaceChildren(lineChart(chartPoints, { label: chartPath.value }));
  }

  async function loadChart() {
    const path = chartPath.value;
    try {
      const data = await get(`${base}/datapoints${query({ path, limit: 500 })}`);
      if (path !== chartPath.value) return;
      chartPoints = data.items.filter((p) => typeof p.value === "number").map((p) => ({ at: p.at, value: p.value }));
      chartPoints.sort((a, b) => a.at - b.at);
      drawChart();
    } catch (err) {
      chartBox.replaceChildren(h("p", { class: "muted" }, `datapoints: ${err.message}`));
    }
  }
  chartPath.addEventListener("change", loadChart);

  opForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const path = opPath.value.trim();
    if (path) run(opKind.value, path, opArg.value);
  });

  function renderHeader() {
    const reg = device.registration;
    header.replaceChildren(
      h("h1", {}, h("span", { class: `dot ${device.online ? "online" : ""}`, "data-testid": "device-online", dataset: { online: String(!!device.online) } }),
        device.title || device.endpoint || `device ${device.id}`),
      h("div", { class: "row muted" },
        h("span", { class: "badge" }, device.carrier || "—"),
        device.endpoint ? h("span", { class: "mono", "data-testid": "device-endpoint" }, device.endpoint) : null,
        device.imei ? h("span", {}, `IMEI ${device.imei}`) : null,
        device.imsi ? h("span", {}, `IMSI ${device.imsi}`) : null,
        h("span", {}, `last seen ${formatTime(device.last_seen)}`),
        reg ? h("span", {}, `LwM2M ${reg.lwm2m_version} · ${reg.binding} · lifetime ${reg.lifetime}s${reg.queue_mode ? " · queue mode" : ""}`) : null,
        device.emulated_module ? h("a", { href: `#/modules/${encodeURIComponent(device.emulated_module)}`, "data-testid": "module-link" }, "module console") : null,
        device.id !== null && device.id !== undefined ? h("a", { href: `#/devices/${device.id}`, class: "hide-narrow" }, `#${device.id}`) : null),
    );
  }

  async function load() {
    try {
      device = await get(base);
    } catch (err) {
      header.replaceChildren(h("h1", {}, "Device"), h("p", { class: "muted" }, err.message));
      notify(`Device: ${err.message}`);
      return;
    }
    renderHeader();
    renderTree(device.objects || []);
    const [events, observed] = await Promise.allSettled([get(`${base}/events${query({ limit: 100 })}`), get(`${base}/observations`)]);
    if (events.status === "fulfilled") {
      const items = [...events.value.items].sort((a, b) => b.seq - a.seq);
      timeline.replaceChildren(...items.map(eventItem));
    }
    if (observed.status === "fulfilled") {
      for (const item of observed.value.items) {
        if (!item.composite && item.paths.length === 1) observations.set(item.paths[0], item.id);
      }
      refreshObserveButtons();
    }
  }

  const unsubscribe = subscribe((event) => {
    if (!device || !event.endpoint || event.endpoint !== device.endpoint) return;
    if (timeline.querySelector(`[data-seq="${event.seq}"]`)) return;
    timeline.prepend(eventItem(event));
    while (timeline.children.length > 200) timeline.lastChild.remove();
    if (event.kind === "notification" || event.kind === "send") applyValues(event.data.values, event.time);
    if (event.kind === "registration.registered" || event.kind === "registration.updated") {
      device.online = true;
      device.last_seen = event.time;
      renderHeader();
    } else if (event.kind === "registration.deregistered" || event.kind === "registration.expired") {
      device.online = false;
      renderHeader();
    } else if (event.kind === "observation.cancelled" || event.kind === "observation.ended") {
      for (const [path, id] of observations) if (id === event.data.id) observations.delete(path);
      refreshObserveButtons();
    }
  });
  load();
  return unsubscribe;
}
