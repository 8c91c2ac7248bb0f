// Device page: the object tree with names and live values, operations per object, instance and
// resource, the event timeline and charts of numeric datapoints.

import { get, post, query } from "../api.js";
import { eventItem, formatTime, formatValue, h } from "../dom.js";
import { lineChart } from "../chart.js";
import { subscribe } from "../live.js";
import { explainError } from "../reasons.js";
import { EventKind } from "../event_kinds.js";

export const name = "device";
const NUMERIC = new Set(["Float", "Integer", "Unsigned Integer"]);
// The AT command with which an emulated module's MCU answers each operation (manual §3.10-§3.16).
const MCU_ANSWERS = {
  read: "AT+MIPLREADRSP",
  write: "AT+MIPLWRITERSP",
  execute: "AT+MIPLEXECUTERSP",
  observe: "AT+MIPLOBSERVERSP",
  discover: "AT+MIPLDISCOVERRSP",
  "write-attributes": "AT+MIPLPARAMETERRSP",
};
const UPLINK_KINDS = new Set([
  EventKind.REGISTRATION_REGISTERED, EventKind.REGISTRATION_UPDATED, EventKind.NOTIFICATION, EventKind.SEND,
]);

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
  const opSend = h("button", { class: "primary", type: "submit", "data-testid": "op-send" }, "Send");
  const opForm = h("form", { class: "row", id: "op-form", "data-testid": "op-form" }, opKind, opPath, opArg, opSend);
  const timeline = h("ul", { class: "feed", id: "device-timeline", "data-testid": "device-timeline" });
  const chartPath = h("select", { id: "chart-path", "data-testid": "chart-path" });
  const chartBox = h("div", { id: "chart-box", "data-testid": "chart-box" });
  const declared = h("div", { class: "declared muted", id: "declared", "data-testid": "declared" });
  const modelToggle = h("input", { type: "checkbox", id: "model-toggle", "data-testid": "model-toggle" });
  modelToggle.addEventListener("change", () => tree.classList.toggle("whole-model", modelToggle.checked));
  view.append(
    header,
    h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "Objects"),
        h("div", { class: "panel request" }, opForm, result),
        h("div", { class: "panel" }, declared,
          h("label", { class: "row muted toggle" }, modelToggle, "show the whole object model"), tree)),
      h("section", {},
        h("h2", {}, "Datapoints"), h("div", { class: "panel" }, chartPath, chartBox),
        h("h2", {}, "Timeline"), h("div", { class: "panel" }, timeline))),
  );

  let device = null;
  const resourceTypes = new Map(); // path -> type
  const valueCells = new Map(); // path -> element
  const resourceInfo = new Map(); // path -> resource view (name, units, declared, updated_at)
  const observeButtons = new Map(); // path -> button
  const observations = new Map(); // path -> observation id
  let chartPoints = [];

  function showResult(title, payload, isError = false) {
    result.replaceChildren();
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
      const info = resourceInfo.get(v.path);
      if (info && typeof v.value === "number") info.updated_at = at ?? Date.now() / 1000;
      // The chart shows a path without data: it moves to the first path that gets some.
      if (v.path !== chartPath.value && typeof v.value === "number" && !chartPoints.length
        && [...chartPath.options].some((o) => o.value === v.path)) {
        chartPath.value = v.path;
        chartPoints = [];
      }
      if (v.path === chartPath.value && typeof v.value === "number") {
        chartPoints.push({ at: at ?? Date.now() / 1000, value: v.value });
        drawChart();
      }
    }
  }

  let pending = null; // {kind, path, started, timer, button}

  function showPending() {
    const seconds = ((performance.now() - pending.started) / 1000).toFixed(1);
    const waiting = device && device.emulated_module && MCU_ANSWERS[pending.kind]
      ? h("div", { class: "waiting", "data-testid": "op-waiting" },
        `module ${device.emulated_module}: waiting for the MCU's ${MCU_ANSWERS[pending.kind]}`)
      : null;
    result.className = "result pending";
    result.dataset.state = "pending";
    result.replaceChildren(h("span", { class: "spinner", "data-testid": "op-spinner", "aria-hidden": "true" }),
      `${pending.kind} ${pending.path}: pending `, h("span", { "data-testid": "op-elapsed" }, `${seconds} s`), waiting);
  }

  function setBusy(busy, button) {
    opSend.disabled = busy;
    if (button) button.disabled = busy;
    for (const el of tree.querySelectorAll("button[data-op]")) if (el !== button) el.disabled = busy;
  }

  async function run(kind, path, arg = "", button = null) {
    if (pending) return;
    const type = resourceTypes.get(path);
    pending = { kind, path, started: performance.now() };
    setBusy(true, button);
    showPending();
    pending.timer = setInterval(showPending, 100);
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
        markDeclared(response.links.map((link) => link.target));
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
      stopPending(button);
      showResult(`${kind} ${path}: ok`, response ?? {});
    } catch (err) {
      stopPending(button);
      const reason = explainError(err);
      showResult(`${kind} ${path}: failed`, reason, true); // the timeline gets the server's operation.failed
    }
  }

  function markDeclared(paths) {
    // The answer lists the resources of the discovered instance(s): hide the others there.
    for (const target of paths) {
      const instancePath = target.split("/").slice(0, 3).join("/");
      if (target.split("/").length !== 4) continue;
      for (const row of tree.querySelectorAll(`.resource[data-path^="${CSS.escape(instancePath)}/"]`)) {
        if (!paths.includes(row.dataset.path) && !resourceInfo.get(row.dataset.path)?.updated_at) row.classList.add("undeclared");
      }
    }
    for (const path of paths) {
      const row = tree.querySelector(`.resource[data-path="${CSS.escape(path)}"]`);
      if (!row) continue;
      row.classList.remove("undeclared");
      row.dataset.declared = "true";
      const info = resourceInfo.get(path);
      if (info) info.declared = true;
    }
  }

  function stopPending(button) {
    clearInterval(pending.timer);
    pending = null;
    setBusy(false, button);
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
      type: "button", "data-testid": `${op}-${path}`, dataset: { op, path }, onclick: (event) => action(event.currentTarget) }, label);
    if (level !== "resource" || ops.includes("R")) buttons.push(button("read", (el) => run("read", path, "", el), "read"));
    if (level === "resource" && ops.includes("W")) buttons.push(button("write", () => prepare("write", path), "write"));
    if (level === "resource" && ops.includes("E")) buttons.push(button("execute", () => prepare("execute", path), "execute"));
    if (level !== "resource" || ops.includes("R")) {
      const observe = button("observe", (el) => run("observe", path, "", el), "observe");
      observeButtons.set(path, observe);
      buttons.push(observe);
    }
    buttons.push(button("attributes", () => prepare("write-attributes", path), "attributes"));
    buttons.push(button("discover", (el) => run("discover", path, "", el), "discover"));
    if (multiple && level === "object") buttons.push(button("create", () => prepare("create", `${path}/`), "create"));
    if (multiple && level === "instance") buttons.push(button("delete", (el) => run("delete", path, "", el), "delete"));
    return h("div", { class: "ops" }, buttons);
  }

  function renderDeclared(objects) {
    const reg = device.registration;
    const links = reg ? Object.keys(reg.objects || {}).map((id) => `/${id}`) : [];
    const instances = reg ? reg.instances || [] : [];
    const discovered = [];
    for (const object of objects) {
      for (const instance of object.instances) {
        const paths = instance.resources.filter((r) => r.declared).map((r) => r.id);
        if (instance.discovered || paths.length) discovered.push(`/${object.id}/${instance.id}: ${paths.join(", ") || "—"}`);
      }
    }
    declared.replaceChildren(
      h("div", { "data-testid": "declared-registration" }, "Registered: ",
        h("span", { class: "mono" }, reg ? (instances.length ? instances : links).join(" ") : "not registered")),
      h("div", { "data-testid": "declared-resources" }, "Declared resources (discover answers and reported values): ",
        h("span", { class: "mono" }, discovered.join(" · ") || "none yet: press discover")),
    );
  }

  function renderTree(objects) {
    tree.replaceChildren();
    renderDeclared(objects);
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
          resourceInfo.set(path, resource);
          // A discovered instance shows what the device declared; before a Discover answer the
          // object model's resources stand in (the toggle shows the rest of the model).
          const hidden = instance.discovered && !resource.declared;
          return h("div", { class: `resource${hidden ? " undeclared" : ""}`, "data-testid": "resource", dataset: { path, declared: String(!!resource.declared) } },
            h("div", {}, h("strong", {}, resource.name || `Resource ${resource.id}`),
              h("div", { class: "muted mono" }, `${path} · ${resource.type || "?"}${resource.units ? ` (${resource.units})` : ""} · ${resource.operations || ""}${resource.multiple ? " · multiple" : ""}`)),
            cell,
            opsFor(path, resource.operations, "resource"));
        });
        return h("details", { open: true, "data-testid": "instance", dataset: { path: instancePath } },
          h("summary", {}, h("span", { class: "mono" }, instancePath), " ",
            instance.discovered ? null : h("span", { class: "badge", title: "press discover to see what the device declares" }, "not discovered"), " ",
            opsFor(instancePath, "", "instance", object.multiple)),
          h("div", { class: "resources" }, resources));
      });
      tree.append(h("details", { open: object.id >= 3200 || object.id === 3, "data-testid": "object", dataset: { path: objectPath } },
        h("summary", {}, h("strong", {}, `${object.id} ${object.name || ""}`), " ", opsFor(objectPath, "", "object", object.multiple)),
        instances));
    }
    // Numeric resources with a value first (the newest value first), then the rest.
    const numeric = [...resourceTypes].filter(([, type]) => NUMERIC.has(type)).map(([path]) => path);
    const updated = (p) => (resourceInfo.get(p)?.updated_at ?? -1);
    numeric.sort((a, b) => (updated(b) - updated(a)) || (b.endsWith("/5700") - a.endsWith("/5700")) || a.localeCompare(b));
    chartPath.replaceChildren(...numeric.map((p) => {
      const info = resourceInfo.get(p);
      const units = unitsOf(p);
      const label = `${p} ${info?.name || ""}${units ? ` (${units})` : ""}${updated(p) < 0 ? " · no data" : ""}`;
      return h("option", { value: p, dataset: { hasData: String(updated(p) >= 0) } }, label);
    }));
    if (numeric.length) loadChart();
    else chartBox.replaceChildren(h("p", { class: "muted" }, "No numeric resources."));
  }

  // The object model's units of a resource, else (IPSO) the instance's Sensor Units value.
  function unitsOf(path) {
    const info = resourceInfo.get(path);
    if (info?.units) return info.units;
    const sensorUnits = path.endsWith("/5700") ? valueCells.get(path.replace(/5700$/, "5701")) : null;
    const text = sensorUnits ? sensorUnits.textContent.trim() : "";
    return text && text !== "—" ? text : "";
  }

  function drawChart() {
    const info = resourceInfo.get(chartPath.value);
    chartBox.replaceChildren(lineChart(chartPoints, { label: `${chartPath.value} ${info?.name || ""}`, units: unitsOf(chartPath.value) }));
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
        h("span", { "data-testid": "device-last-seen", dataset: { lastSeen: device.last_seen ?? "" } }, `last seen ${formatTime(device.last_seen)}`),
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
    if (event.kind === EventKind.NOTIFICATION || event.kind === EventKind.SEND) applyValues(event.data.values, event.time);
    if (UPLINK_KINDS.has(event.kind)) {
      device.last_seen = Math.max(device.last_seen || 0, event.time);
      if (event.kind.startsWith("registration")) device.online = true;
      renderHeader();
    } else if (event.kind === EventKind.REGISTRATION_DEREGISTERED || event.kind === EventKind.REGISTRATION_EXPIRED) {
      device.online = false;
      renderHeader();
    } else if (event.kind === EventKind.OBSERVATION_CANCELLED || event.kind === EventKind.OBSERVATION_ENDED) {
      for (const [path, id] of observations) if (id === event.data.id) observations.delete(path);
      refreshObserveButtons();
    }
  });
  load();
  return unsubscribe;
}
