// Devices: a searchable, filterable list, paged by the server, with live online state and
// "last seen"; devices are deleted one by one or, per product, every offline one.

import { del, get, query } from "../api.js";
import { formatTime, h } from "../dom.js";
import { subscribe } from "../live.js";
import { EventKind } from "../event_kinds.js";

export const name = "devices";
const ONLINE_KINDS = new Set([EventKind.REGISTRATION_REGISTERED, EventKind.REGISTRATION_UPDATED]);
const OFFLINE_KINDS = new Set([EventKind.REGISTRATION_DEREGISTERED, EventKind.REGISTRATION_EXPIRED]);
export const PAGE_SIZE = 25;

// A button that asks once more before it acts: the first click arms it, a second within 4 s acts.
function confirmButton(label, armedLabel, action, attrs = {}) {
  let timer = null;
  const button = h("button", { type: "button", class: "danger", ...attrs }, label);
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = armedLabel;
      timer = setTimeout(() => { button.classList.remove("armed"); button.textContent = label; }, 4000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      button.classList.remove("armed");
      button.textContent = label;
    }
  });
  return button;
}

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
  const prev = h("button", { type: "button", "data-testid": "page-prev" }, "← previous");
  const next = h("button", { type: "button", "data-testid": "page-next" }, "next →");
  const pageInfo = h("span", { class: "muted", "data-testid": "page-info" });
  const bulkProduct = h("select", { "data-testid": "bulk-product" });
  const bulkDelete = confirmButton("Delete offline devices", "Confirm: delete every offline device of this product", deleteOffline,
    { "data-testid": "bulk-delete" });
  view.append(
    h("h1", {}, "Devices"),
    h("div", { class: "row" }, search, carrier, online, h("span", { class: "spacer" }), count),
    h("div", { class: "table-wrap", style: "margin-top:.6rem" },
      h("table", { id: "device-table", "data-testid": "device-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "state"), h("th", {}, "device"), h("th", {}, "carrier"),
          h("th", { class: "hide-narrow" }, "model"), h("th", {}, "last seen"), h("th", {}, ""))),
        body)),
    h("div", { class: "pager" }, prev, pageInfo, next),
    h("h2", {}, "Clean up"),
    h("div", { class: "row" }, "Product", bulkProduct, bulkDelete),
  );
  let offset = 0;

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
    h("td", { class: "last-seen", "data-testid": "last-seen", dataset: { lastSeen: device.last_seen ?? "" } }, formatTime(device.last_seen)),
    h("td", {}, device.id === null || device.id === undefined ? null
      : confirmButton("delete", "confirm delete", () => deleteDevice(device), { "data-testid": "device-delete" })));
    if (device.endpoint) rows.set(device.endpoint, tr);
    return tr;
  }

  async function deleteDevice(device) {
    try {
      await del(`/devices/${encodeURIComponent(device.id)}`);
      notify(`Deleted ${device.title || device.endpoint || `#${device.id}`}.`, "info");
    } catch (err) {
      notify(`Delete: ${err.message}`);
    }
    await load();
  }

  async function deleteOffline() {
    if (!bulkProduct.value) return;
    try {
      const done = await del(`/products/${encodeURIComponent(bulkProduct.value)}/offline-devices`);
      notify(`Deleted ${done.deleted} offline device${done.deleted === 1 ? "" : "s"}.`, "info");
    } catch (err) {
      notify(`Delete: ${err.message}`);
    }
    offset = 0;
    await load();
  }

  let timer = null;
  let serial = 0;
  async function load() {
    const mine = ++serial;
    const params = { q: search.value.trim(), carrier: carrier.value, online: online.value, limit: PAGE_SIZE, offset };
    try {
      const data = await get(`/devices${query(params)}`);
      if (mine !== serial) return;
      if (!data.items.length && offset > 0 && data.total > 0) {
        offset = Math.max(0, Math.floor((data.total - 1) / PAGE_SIZE) * PAGE_SIZE);
        load();
        return;
      }
      rows.clear();
      body.replaceChildren(...data.items.map(row));
      if (!data.items.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No devices match.")));
      count.textContent = `${data.total} device${data.total === 1 ? "" : "s"}`;
      const first = data.items.length ? offset + 1 : 0;
      pageInfo.textContent = `${first}–${offset + data.items.length} of ${data.total}`;
      pageInfo.dataset.offset = String(offset);
      pageInfo.dataset.total = String(data.total);
      prev.disabled = offset === 0;
      next.disabled = offset + data.items.length >= data.total;
    } catch (err) {
      notify(`Devices: ${err.message}`);
    }
  }
  const reload = () => { clearTimeout(timer); timer = setTimeout(load, 250); };
  const fromStart = () => { offset = 0; reload(); };
  search.addEventListener("input", fromStart);
  carrier.addEventListener("change", () => { offset = 0; load(); });
  online.addEventListener("change", () => { offset = 0; load(); });
  prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); load(); });
  next.addEventListener("click", () => { offset += PAGE_SIZE; load(); });

  const unsubscribe = subscribe((event) => {
    if (!String(event.kind).startsWith("registration") && event.kind !== EventKind.NOTIFICATION && event.kind !== EventKind.SEND) return;
    const tr = event.endpoint ? rows.get(event.endpoint) : null;
    if (!tr) {
      if (ONLINE_KINDS.has(event.kind)) reload();
      return;
    }
    let isOnline = tr.dataset.online === "true";
    if (ONLINE_KINDS.has(event.kind)) isOnline = true;
    if (OFFLINE_KINDS.has(event.kind) || event.kind === EventKind.REGISTRATION_DEREGISTERED) isOnline = false;
    if (online.value && String(isOnline) !== online.value) {
      reload();
      return;
    }
    tr.dataset.online = String(isOnline);
    tr.querySelector(".state").replaceWith(stateCell(isOnline));
    if (event.kind === EventKind.REGISTRATION_EXPIRED) return; // not uplinks
    const seen = tr.querySelector(".last-seen");
    seen.textContent = formatTime(event.time);
    seen.dataset.lastSeen = String(event.time);
  });

  (async () => {
    try {
      const [products, modules] = await Promise.allSettled([get("/products"), get("/modules")]);
      if (modules.status === "fulfilled") models = Object.fromEntries(modules.value.items.map((m) => [m.id, m.model]));
      const productItems = products.status === "fulfilled" ? products.value.items : [];
      bulkProduct.replaceChildren(...productItems.map((p) => h("option", { value: p.id }, `${p.name} (${p.carrier})`)));
      const carriers = new Set(productItems.map((p) => p.carrier));
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
