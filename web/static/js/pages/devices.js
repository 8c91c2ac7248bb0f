// Devices: a searchable, filterable list with live online state.

import { get, query } from "../api.js";
import { formatTime, h } from "../dom.js";
import { subscribe } from "../live.js";

export const name = "devices";
const ONLINE_KINDS = new Set(["registration.registered", "registration.updated"]);
const OFFLINE_KINDS = new Set(["registration.deregistered", "registration.expired", "registration.removed"]);

// Registered endpoints without a provisioned device have no id: they have no page of their own.
export function deviceHref(device) {
  return device.id === null || device.id === undefined ? null : `#/devices/${encodeURIComponent(device.id)}`;
}

export function render(view, _params, { notify }) {
  const search = h("input", { id: "device-search", "data-testid": "device-search", type: "search", placeholder: "endpoint, IMEI or title" });
  const carrier = h("select", { id: "device-carrier", "data-testid": "device-carrier" }, h("option", { value: "" }, "all carriers"));
  const online = h("select", { id: "device-online", "data-testid": "device-online" },
    h("option", { value: "" }, "online and offline"), h("option", { value: "true" }, "online"), h("option", { value: "false" }, "offline"));
  const count = h("span", { class: "muted", id: "device-count", "data-testid": "device-count" });
  const body = h("tbody", { id: "device-rows" });
  view.append(
    h("h1", {}, "Devices"),
    h("div", { class: "row" }, search, carrier, online, h("span", { class: "spacer" }), count),
    h("div", { class: "table-wrap", style: "margin-top:.6rem" },
      h("table", { id: "device-table", "data-testid": "device-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "state"), h("th", {}, "device"), h("th", {}, "carrier"),
          h("th", { class: "hide-narrow" }, "model"), h("th", {}, "last seen"))),
        body)),
  );

  let models = {};
  const rows = new Map(); // endpoint -> row

  function stateCell(isOnline) {
    return h("td", { class: "state", "data-testid": "device-state" },
      h("span", { class: `dot ${isOnline ? "online" : ""}` }), isOnline ? "online" : "offline");
  }

  function row(device) {
    const label = device.title || device.endpoint || device.imei || `#${device.id}`;
    const href = deviceHref(device);
    const tr = h("tr", {
      class: href ? "clickable" : "", "data-testid": "device-row",
      dataset: { id: device.id ?? "", endpoint: device.endpoint ?? "", online: String(!!device.online) },
      onclick: href ? () => { location.hash = href; } : null,
    },
    stateCell(device.online),
    h("td", {}, href ? h("a", { href }, label) : h("span", { title: "registered, not provisioned" }, label, " ", h("span", { class: "badge" }, "unprovisioned")),
      device.endpoint && device.endpoint !== label ? h("div", { class: "muted mono" }, device.endpoint) : null),
    h("td", {}, h("span", { class: "badge" }, device.carrier || "—")),
    h("td", { class: "hide-narrow" }, models[device.emulated_module] || (device.emulated_module ? "emulated" : "—")),
    h("td", { class: "last-seen" }, formatTime(device.last_seen)));
    if (device.endpoint) rows.set(device.endpoint, tr);
    return tr;
  }

  let timer = null;
  let serial = 0;
  async function load() {
    const mine = ++serial;
    const params = { q: search.value.trim(), carrier: carrier.value, online: online.value, limit: 500 };
    try {
      const data = await get(`/devices${query(params)}`);
      if (mine !== serial) return;
      rows.clear();
      body.replaceChildren(...data.items.map(row));
      if (!data.items.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No devices match.")));
      count.textContent = `${data.items.length} of ${data.total}`;
    } catch (err) {
      notify(`Devices: ${err.message}`);
    }
  }
  const reload = () => { clearTimeout(timer); timer = setTimeout(load, 250); };
  search.addEventListener("input", reload);
  carrier.addEventListener("change", load);
  online.addEventListener("change", load);

  const unsubscribe = subscribe((event) => {
    if (!String(event.kind).startsWith("registration") && event.kind !== "notification" && event.kind !== "send") return;
    const tr = event.endpoint ? rows.get(event.endpoint) : null;
    if (!tr) {
      if (ONLINE_KINDS.has(event.kind)) reload();
      return;
    }
    let isOnline = tr.dataset.online === "true";
    if (ONLINE_KINDS.has(event.kind)) isOnline = true;
    if (OFFLINE_KINDS.has(event.kind) || event.kind === "registration.deregistered") isOnline = false;
    if (online.value && String(isOnline) !== online.value) {
      reload();
      return;
    }
    tr.dataset.online = String(isOnline);
    tr.querySelector(".state").replaceWith(stateCell(isOnline));
    tr.querySelector(".last-seen").textContent = formatTime(event.time);
  });

  (async () => {
    try {
      const [products, modules] = await Promise.allSettled([get("/products"), get("/modules")]);
      if (modules.status === "fulfilled") models = Object.fromEntries(modules.value.items.map((m) => [m.id, m.model]));
      const carriers = new Set(products.status === "fulfilled" ? products.value.items.map((p) => p.carrier) : []);
      for (const c of ["onenet", "ctwing", "yanfei", "huawei", "custom"]) carriers.add(c);
      carrier.append(...[...carriers].sort().map((c) => h("option", { value: c }, c)));
    } finally {
      load();
    }
  })();
  return () => {
    unsubscribe();
    clearTimeout(timer);
  };
}
