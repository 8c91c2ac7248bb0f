// Modules: the emulated OneMO modules hosted by this server process; start one for a provisioned
// device (its IMEI and IMSI, a model from the emulator's model table) and stop it.

import { del, get, post, query } from "../api.js";
import { h } from "../dom.js";

export const name = "modules";

// A <select> of the models a module can be started as (GET /modules/models).
export async function modelSelect(attrs = {}) {
  const select = h("select", attrs);
  const data = await get("/modules/models");
  select.replaceChildren(...data.items.map((model) => h("option", { value: model }, model)));
  return select;
}

// Start a module for `deviceId`; returns the module as the API lists it.
export async function startModule(deviceId, model) {
  return post("/modules", { device_id: Number(deviceId), model });
}

export function render(view, _params, { notify }) {
  const body = h("tbody", { id: "module-rows" });
  const device = h("select", { id: "module-device", "data-testid": "module-device" });
  const modelSlot = h("span", {});
  const start = h("button", { class: "primary", type: "submit", "data-testid": "module-start" }, "Start module");
  const form = h("form", { class: "row panel", id: "module-start-form", "data-testid": "module-start-form" },
    "Device", device, "Model", modelSlot, start);
  view.append(
    h("h1", {}, "Emulated modules"),
    h("p", { class: "muted" }, "Open a module to type AT commands and watch the cloud's view of the same device."),
    h("div", { class: "table-wrap" }, h("table", { id: "module-table", "data-testid": "module-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "module"), h("th", {}, "model"), h("th", {}, "carrier"),
        h("th", { class: "hide-narrow" }, "IMEI"), h("th", { class: "hide-narrow" }, "endpoint"), h("th", {}, ""))),
      body)),
    h("h2", {}, "Start a module for a provisioned device"),
    form,
  );
  let model = null;

  async function stop(module) {
    try {
      await del(`/modules/${encodeURIComponent(module.id)}`);
      notify(`Module ${module.id} stopped.`, "info");
    } catch (err) {
      notify(`Stop: ${err.message}`);
    }
    await load();
  }

  async function load() {
    try {
      const [modules, devices] = await Promise.all([get("/modules"), get(`/devices${query({ limit: 1000 })}`)]);
      body.replaceChildren(...modules.items.map((m) => h("tr", {
        class: "clickable", "data-testid": "module-row", dataset: { id: m.id },
        onclick: () => { location.hash = `#/modules/${encodeURIComponent(m.id)}`; },
      },
      h("td", {}, h("a", { href: `#/modules/${encodeURIComponent(m.id)}` }, m.id)),
      h("td", {}, m.model), h("td", {}, h("span", { class: "badge" }, m.carrier || "—")),
      h("td", { class: "hide-narrow mono" }, m.imei), h("td", { class: "hide-narrow mono" }, m.endpoint || "—"),
      h("td", {}, h("button", { type: "button", class: "danger", "data-testid": "module-stop",
        onclick: (event) => { event.stopPropagation(); stop(m); } }, "stop")))));
      if (!modules.items.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "This server hosts no emulated modules.")));
      const running = new Set(modules.items.map((m) => m.imei));
      const candidates = devices.items.filter((d) => d.id !== null && d.id !== undefined && !running.has(d.imei));
      device.replaceChildren(...candidates.map((d) => h("option", { value: d.id, dataset: { imei: d.imei } },
        `${d.title || d.imei} (${d.carrier}, IMEI ${d.imei})`)));
      start.disabled = !candidates.length;
    } catch (err) {
      notify(`Modules: ${err.message}`);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!device.value || !model) return;
    start.disabled = true;
    try {
      const module = await startModule(device.value, model.value);
      location.hash = `#/modules/${encodeURIComponent(module.id)}`;
    } catch (err) {
      notify(`Start: ${err.message}`);
      start.disabled = false;
    }
  });

  (async () => {
    try {
      model = await modelSelect({ id: "module-model", "data-testid": "module-model" });
      modelSlot.replaceChildren(model);
    } catch (err) {
      notify(`Models: ${err.message}`);
    }
    await load();
  })();
}
