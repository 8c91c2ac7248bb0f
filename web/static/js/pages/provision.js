// Provisioning: create a device of a product (carrier), then show the AT commands that connect a
// module to it (GET /api/v1/devices/{id}/connect-commands).

import { get, post } from "../api.js";
import { h } from "../dom.js";
import { modelSelect, startModule } from "./modules.js";

export const name = "provision";

export function render(view, _params, { notify }) {
  const field = (label, input) => h("label", {}, label, input);
  const product = h("select", { id: "prov-product", name: "product_id", "data-testid": "prov-product", required: true });
  const imei = h("input", { id: "prov-imei", name: "imei", "data-testid": "prov-imei", inputmode: "numeric", pattern: "[0-9]{15}", required: true, placeholder: "15 digits" });
  const imsi = h("input", { id: "prov-imsi", name: "imsi", "data-testid": "prov-imsi", inputmode: "numeric", pattern: "[0-9]{6,15}", placeholder: "460041234567890" });
  const title = h("input", { id: "prov-title", name: "title", "data-testid": "prov-title", placeholder: "optional" });
  const authCode = h("input", { id: "prov-auth-code", name: "auth_code", "data-testid": "prov-auth-code", placeholder: "optional" });
  const psk = h("input", { id: "prov-psk", name: "psk", "data-testid": "prov-psk", placeholder: "optional: DTLS pre-shared key" });
  const pskEncoding = h("select", { id: "prov-psk-encoding", name: "psk_encoding", "data-testid": "prov-psk-encoding" },
    h("option", { value: "string" }, "string"), h("option", { value: "hex" }, "hex"));
  const obsv = h("input", { id: "prov-obsv", name: "obsv", type: "checkbox", checked: true, "data-testid": "prov-obsv" });
  const submit = h("button", { class: "primary", type: "submit", "data-testid": "prov-submit" }, "Create device");
  const form = h("form", { class: "stacked panel", id: "provision-form", "data-testid": "provision-form" },
    field("Product (carrier)", product), field("IMEI", imei), field("IMSI", imsi), field("Title", title),
    field("Auth code", authCode), field("PSK", psk), field("PSK encoding", pskEncoding),
    h("label", { class: "row" }, obsv, "auto-observe (obsv)"), h("div", {}, submit));
  const output = h("div", { id: "provision-result", "data-testid": "provision-result" });
  view.append(h("h1", {}, "Provision a device"), h("div", { class: "grid" }, form, output));

  (async () => {
    try {
      const data = await get("/products");
      product.replaceChildren(...data.items.map((p) => h("option", { value: p.id, dataset: { carrier: p.carrier } }, `${p.name} (${p.carrier})`)));
      if (!data.items.length) product.append(h("option", { value: "" }, "no products: create one with the API"));
    } catch (err) {
      notify(`Products: ${err.message}`);
    }
  })();

  // No module at hand: start an emulated one for the new device and type the lines there.
  async function emulateForm(device) {
    const models = await modelSelect({ "data-testid": "prov-module-model" });
    const button = h("button", { type: "button", "data-testid": "prov-module-start" }, "Start an emulated module");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const module = await startModule(device.id, models.value);
        location.hash = `#/modules/${encodeURIComponent(module.id)}`;
      } catch (err) {
        notify(`Module: ${err.message}`);
        button.disabled = false;
      }
    });
    return h("div", { class: "row", style: "margin-top:.6rem" }, "No module? ", models, button);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const body = { product_id: product.value, imei: imei.value.trim(), obsv: obsv.checked };
    for (const [key, input] of [["imsi", imsi], ["title", title], ["auth_code", authCode], ["psk", psk]]) {
      if (input.value.trim()) body[key] = input.value.trim();
    }
    if (body.psk) body.psk_encoding = pskEncoding.value;
    try {
      const device = await post("/devices", body);
      const commands = await get(`/devices/${device.id}/connect-commands`);
      output.replaceChildren(
        h("div", { class: "panel", "data-testid": "provision-done", dataset: { id: device.id } },
          h("h2", {}, "Device created: ", h("a", { href: `#/devices/${device.id}`, "data-testid": "provision-device-link" }, device.title || device.imei || `#${device.id}`)),
          h("p", { class: "muted" }, `${device.carrier} · IMEI ${device.imei}${device.imsi ? ` · IMSI ${device.imsi}` : ""}`),
          h("h2", {}, "AT commands for the module"),
          h("ol", { class: "commands", id: "connect-commands", "data-testid": "connect-commands" },
            ...commands.commands.map((c) => h("li", { "data-testid": "connect-command" }, c))),
          await emulateForm(device)),
      );
      notify(null);
    } catch (err) {
      output.replaceChildren(h("div", { class: "result error", "data-testid": "provision-error" }, `Could not create the device: ${err.message}`));
    } finally {
      submit.disabled = false;
    }
  });
}
