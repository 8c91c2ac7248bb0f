// Module console: an AT terminal on an emulated module (WebSocket /api/v1/modules/{id}/at) beside
// the cloud's view of the same device (the live events of its endpoint).

import { get, query, websocketUrl } from "../api.js";
import { eventItem, h } from "../dom.js";
import { subscribe } from "../live.js";
import { explainAtLine } from "../reasons.js";
import { EventKind } from "../event_kinds.js";

export const name = "module";

export function render(view, [moduleId], { notify }) {
  const terminal = h("div", { class: "terminal", id: "at-terminal", "data-testid": "at-terminal", "aria-live": "polite" });
  const input = h("input", { id: "at-input", "data-testid": "at-input", autocomplete: "off", spellcheck: "false", placeholder: "AT command, Enter sends" });
  const state = h("span", { class: "badge", id: "at-state", "data-testid": "at-state", dataset: { state: "connecting" } }, "connecting");
  const form = h("form", { class: "at-form", id: "at-form", "data-testid": "at-form" }, input,
    h("button", { class: "primary", type: "submit", "data-testid": "at-send" }, "Send"));
  // The quick lines come with the module: only commands its model answers (GET /modules).
  const quick = h("div", { class: "ops", style: "margin-top:.4rem", "data-testid": "at-quick" });
  const info = h("div", { class: "row muted", id: "module-info", "data-testid": "module-info" });
  const cloud = h("ul", { class: "feed", id: "cloud-events", "data-testid": "cloud-events" });
  const deviceLink = h("span", { id: "module-device" });
  view.append(
    h("h1", {}, "Module ", h("span", { class: "mono" }, moduleId), " ", state),
    info,
    h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "AT terminal"), terminal, form, quick),
      h("section", {}, h("h2", {}, "Cloud view ", deviceLink), h("div", { class: "panel" }, cloud))),
  );

  const history = [];
  let historyIndex = 0;
  let module = null;
  let socket = null;
  let closed = false;
  let pendingEcho = null; // the module echoes what it receives (ATE1): shown once, as typed

  function line(text, kind) {
    const atBottom = terminal.scrollTop + terminal.clientHeight >= terminal.scrollHeight - 4;
    terminal.append(h("div", { class: kind, "data-testid": "at-line", dataset: { kind } }, text));
    while (terminal.children.length > 2000) terminal.firstChild.remove();
    if (atBottom) terminal.scrollTop = terminal.scrollHeight;
  }

  function classify(text) {
    if (/ERROR/.test(text)) return "err";
    if (/^\+[A-Z]/.test(text)) return "urc";
    return "out";
  }

  function send(text) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      line("not connected", "sys");
      return;
    }
    socket.send(text);
    pendingEcho = text;
    line(`> ${text}`, "sent");
    history.push(text);
    historyIndex = history.length;
  }

  function connect() {
    socket = new WebSocket(websocketUrl(`/modules/${encodeURIComponent(moduleId)}/at`));
    socket.addEventListener("open", () => {
      state.textContent = "connected";
      state.dataset.state = "open";
      line(`connected to ${moduleId}`, "sys");
    });
    socket.addEventListener("message", (event) => {
      for (const text of String(event.data).split(/\r\n|\r|\n/)) {
        if (text === "") continue;
        if (text === pendingEcho) {
          pendingEcho = null;
          continue;
        }
        line(text, classify(text));
        const explained = explainAtLine(text);
        if (explained) line(explained, "explain");
      }
    });
    socket.addEventListener("close", (event) => {
      state.textContent = "disconnected";
      state.dataset.state = "closed";
      line(`connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`, "sys");
      if (!closed) setTimeout(() => { if (!closed) connect(); }, 2000);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    send(text);
    input.value = "";
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp" && historyIndex > 0) input.value = history[--historyIndex];
    else if (event.key === "ArrowDown" && historyIndex < history.length) input.value = history[++historyIndex] ?? "";
    else return;
    event.preventDefault();
  });

  function ours(event) {
    if (!module || !event.endpoint) return false;
    if (module.endpoint) return event.endpoint === module.endpoint;
    return Boolean(module.imei) && event.endpoint.includes(module.imei);
  }

  async function findDevice() {
    if (!module) return;
    try {
      const data = await get(`/devices${query({ q: module.endpoint || module.imei, limit: 5 })}`);
      const device = data.items.find((d) => d.emulated_module === moduleId) || data.items[0];
      if (device) {
        if (!module.endpoint && device.endpoint) module.endpoint = device.endpoint;
        const label = device.title || device.endpoint || `#${device.id}`;
        const hasPage = device.id !== null && device.id !== undefined;
        deviceLink.replaceChildren(hasPage
          ? h("a", { href: `#/devices/${device.id}`, "data-testid": "module-device-link" }, label)
          : h("span", { class: "muted" }, label));
        if (device.id !== null && device.id !== undefined) {
          const events = await get(`/devices/${device.id}/events${query({ limit: 50 })}`);
          const known = new Set([...cloud.children].map((li) => li.dataset.seq));
          const items = events.items.filter((e) => !known.has(String(e.seq))).sort((a, b) => b.seq - a.seq);
          cloud.append(...items.map(eventItem));
        }
      }
    } catch (err) {
      console.warn("device lookup failed", err);
    }
  }

  const unsubscribe = subscribe((event) => {
    if (!ours(event)) {
      if (module && !module.endpoint && event.kind === EventKind.REGISTRATION_REGISTERED && event.endpoint.includes(module.imei)) {
        module.endpoint = event.endpoint;
      } else return;
    }
    if (cloud.querySelector(`[data-seq="${event.seq}"]`)) return;
    cloud.prepend(eventItem(event));
    while (cloud.children.length > 200) cloud.lastChild.remove();
    if (event.kind === EventKind.REGISTRATION_REGISTERED) findDevice();
  });

  (async () => {
    try {
      const data = await get("/modules");
      module = data.items.find((m) => m.id === moduleId) || null;
      if (!module) {
        notify(`Module ${moduleId} is not hosted by this server.`);
        return;
      }
      quick.replaceChildren(...(module.quick_lines || []).map((text) =>
        h("button", { type: "button", "data-testid": "at-quick-line", dataset: { line: text }, onclick: () => send(text) }, text)));
      info.replaceChildren(h("span", {}, module.model), h("span", { class: "badge" }, module.carrier || "no platform yet"),
        h("span", { class: "mono" }, `IMEI ${module.imei}`), h("span", { class: "mono" }, `IMSI ${module.imsi}`));
      if (module.endpoint) info.append(h("span", { class: "mono" }, module.endpoint));
      findDevice();
    } catch (err) {
      notify(`Module: ${err.message}`);
    }
  })();
  connect();
  input.focus();
  return () => {
    closed = true;
    unsubscribe();
    if (socket) socket.close();
  };
}
