// Small DOM helpers: build elements without innerHTML, so device data is never parsed as markup.

import { explainFailure } from "./reasons.js";
import { EventKind } from "./event_kinds.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function formatTime(epoch) {
  if (epoch === null || epoch === undefined) return "never";
  const date = new Date(epoch * 1000);
  const now = Date.now();
  const age = (now - date.getTime()) / 1000;
  const clock = date.toLocaleTimeString([], { hour12: false });
  if (age < 86400 && age > -60) return clock;
  return `${date.toLocaleDateString()} ${clock}`;
}

// An LwM2M value as JSON (lwm2m/values.py value_to_jsonable) shown as text.
export function formatValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") {
    if ("hex" in value) return `0x${value.hex}`;
    if ("time" in value) return new Date(value.time * 1000).toISOString();
    if ("objlnk" in value) return `objlnk ${value.objlnk}`;
    return JSON.stringify(value);
  }
  return String(value);
}

export function describeEvent(event) {
  const data = event.data || {};
  if (event.kind === EventKind.OPERATION_FAILED) return `${data.operation} ${[data.path].flat().join(" ")}: ${explainFailure(data)}`;
  if (Array.isArray(data.values) && data.values.length) {
    return data.values.slice(0, 4).map((v) => `${v.path}=${formatValue(v.value)}`).join(" ");
  }
  if (data.path) return data.path;
  if (data.paths) return data.paths.join(" ");
  if (data.registration_id) return `registration ${data.registration_id}`;
  if (data.error) return data.error;
  return "";
}

export function eventItem(event) {
  const family = String(event.kind).split(".")[0];
  return h(
    "li",
    { dataset: { kind: event.kind, seq: event.seq }, "data-testid": "event" },
    h("span", { class: "muted" }, formatTime(event.time), " "),
    h("span", { class: `kind kind-${family}` }, event.kind),
    event.endpoint ? h("span", {}, event.endpoint, " ") : null,
    h("span", { class: "muted" }, describeEvent(event)),
  );
}
