// The live event stream: one Server-Sent Events connection (GET /api/v1/events?api_key=) shared
// by every page. The stream is read with fetch() and parsed here rather than with EventSource,
// because each message carries a named `event: <kind>` and EventSource only hands named events to
// listeners registered for that exact name; kinds are open-ended ("registration.updated", ...).

import { withKey } from "./api.js";

const listeners = new Set();
let controller = null;
let generation = 0;
let retryDelay = 500;

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setState(on) {
  const el = document.getElementById("live-state");
  if (!el) return;
  el.textContent = on ? "live" : "offline";
  el.className = `live ${on ? "on" : "off"}`;
  el.dataset.state = on ? "on" : "off";
}

function dispatch(kind, dataText) {
  let event;
  try {
    event = JSON.parse(dataText);
  } catch {
    return;
  }
  if (kind && !event.kind) event.kind = kind;
  for (const listener of [...listeners]) {
    try {
      listener(event);
    } catch (err) {
      console.error("event listener failed", err);
    }
  }
}

// Parse SSE text (WHATWG HTML §9.2.6): fields per line, a blank line ends a message.
function makeParser() {
  let buffer = "";
  let kind = "";
  let data = [];
  return (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (data.length) dispatch(kind, data.join("\n"));
        kind = "";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") kind = value;
        else if (field === "data") data.push(value);
      }
    }
  };
}

async function run(myGeneration, signal) {
  while (myGeneration === generation) {
    try {
      const response = await fetch(withKey("/events"), { signal, headers: { accept: "text/event-stream" } });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setState(true);
      retryDelay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parse = makeParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parse(value);
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    setState(false);
    if (myGeneration !== generation) return;
    await new Promise((resolve) => setTimeout(resolve, retryDelay));
    retryDelay = Math.min(retryDelay * 2, 10000);
  }
}

// (Re)connect, e.g. after the key changed.
export function connect() {
  if (controller) controller.abort();
  generation += 1;
  controller = new AbortController();
  setState(false);
  run(generation, controller.signal);
}
