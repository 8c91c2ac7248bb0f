// The console's shell: key handling, hash routes, the shared live stream.

import { getKey, setKey, takeKeyFromHash } from "./api.js";
import { clear } from "./dom.js";
import { connect } from "./live.js";
import * as devicePage from "./pages/device.js";
import * as devicesPage from "./pages/devices.js";
import * as firmwarePage from "./pages/firmware.js";
import * as modulePage from "./pages/module.js";
import * as modulesPage from "./pages/modules.js";
import * as overviewPage from "./pages/overview.js";
import * as provisionPage from "./pages/provision.js";

const ROUTES = [
  [/^\/?$/, overviewPage, "overview"],
  [/^\/overview$/, overviewPage, "overview"],
  [/^\/devices$/, devicesPage, "devices"],
  [/^\/devices\/([^/]+)$/, devicePage, "devices"],
  [/^\/modules$/, modulesPage, "modules"],
  [/^\/modules\/([^/]+)$/, modulePage, "modules"],
  [/^\/provision$/, provisionPage, "provision"],
  [/^\/firmware$/, firmwarePage, "firmware"],
  [/^\/firmware\/tasks\/([^/]+)$/, firmwarePage, "firmware"],
];

let cleanup = null;

export function notify(message, kind = "error") {
  const el = document.getElementById("notice");
  if (!message) {
    el.hidden = true;
    return;
  }
  el.textContent = message;
  el.className = `notice ${kind}`;
  el.hidden = false;
}

function showKeyForm(show) {
  const form = document.getElementById("key-form");
  form.hidden = !show;
  if (show) document.getElementById("key-input").focus();
}

function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
  const raw = location.hash.replace(/^#/, "").split("?")[0];
  const view = clear(document.getElementById("view"));
  notify(null);
  for (const [pattern, page, section] of ROUTES) {
    const match = pattern.exec(raw);
    if (!match) continue;
    for (const link of document.querySelectorAll(".nav a")) {
      link.classList.toggle("active", link.dataset.route === section);
    }
    view.dataset.page = page.name;
    const params = match.slice(1).map(decodeURIComponent);
    cleanup = page.render(view, params, { notify }) || null;
    return;
  }
  view.textContent = "Page not found.";
}

function start() {
  takeKeyFromHash();
  const form = document.getElementById("key-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey(document.getElementById("key-input").value.trim());
    document.getElementById("key-input").value = "";
    showKeyForm(false);
  });
  document.getElementById("key-button").addEventListener("click", () => showKeyForm(form.hidden));
  window.addEventListener("testbed:key", () => {
    connect();
    route();
  });
  window.addEventListener("hashchange", () => {
    if (takeKeyFromHash()) return; // setKey re-routes
    route();
  });
  if (!getKey()) showKeyForm(true);
  connect();
  route();
}

start();
