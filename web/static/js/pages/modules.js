// Modules: the emulated OneMO modules hosted by this server process.

import { get } from "../api.js";
import { h } from "../dom.js";

export const name = "modules";

export function render(view, _params, { notify }) {
  const body = h("tbody", { id: "module-rows" });
  view.append(
    h("h1", {}, "Emulated modules"),
    h("p", { class: "muted" }, "Open a module to type AT commands and watch the cloud's view of the same device."),
    h("div", { class: "table-wrap" }, h("table", { id: "module-table", "data-testid": "module-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "module"), h("th", {}, "model"), h("th", {}, "carrier"),
        h("th", { class: "hide-narrow" }, "IMEI"), h("th", { class: "hide-narrow" }, "endpoint"))),
      body)),
  );
  (async () => {
    try {
      const data = await get("/modules");
      body.replaceChildren(...data.items.map((m) => h("tr", {
        class: "clickable", "data-testid": "module-row", dataset: { id: m.id },
        onclick: () => { location.hash = `#/modules/${encodeURIComponent(m.id)}`; },
      },
      h("td", {}, h("a", { href: `#/modules/${encodeURIComponent(m.id)}` }, m.id)),
      h("td", {}, m.model), h("td", {}, h("span", { class: "badge" }, m.carrier || "—")),
      h("td", { class: "hide-narrow mono" }, m.imei), h("td", { class: "hide-narrow mono" }, m.endpoint || "—"))));
      if (!data.items.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "This server hosts no emulated modules.")));
    } catch (err) {
      notify(`Modules: ${err.message}`);
    }
  })();
}
