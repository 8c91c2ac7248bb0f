// Firmware: upload packages, start update tasks, and follow a task live (a progress bar per
// device and overall, failed devices with their reason). Routes: #/firmware, #/firmware/tasks/<id>.

import { api, ApiError, get, getKey, post } from "../api.js";
import { formatTime, h } from "../dom.js";
import { subscribe } from "../live.js";
import { EventKind } from "../event_kinds.js";

export const name = "firmware";

async function upload(form) {
  const headers = {};
  const key = getKey();
  if (key) headers["api-key"] = key;
  const response = await fetch("/api/v1/firmware", { method: "POST", headers, body: new FormData(form) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.errno, data.error || response.statusText);
  return data;
}

function bar(percent, testid) {
  const shown = Math.max(0, Math.min(100, Number(percent) || 0));
  return h("div", { class: "progress", "data-testid": testid, role: "progressbar", "aria-valuenow": shown },
    h("div", { class: "progress-fill", style: `width: ${shown}%` }), h("span", {}, `${shown}%`));
}

function renderList(view, notify) {
  const packages = h("tbody", { "data-testid": "firmware-rows" });
  const tasks = h("tbody", { "data-testid": "task-rows" });
  const firmwareSelect = h("select", { name: "firmware_id", "data-testid": "task-firmware" });
  const form = h("form", { class: "inline-form", "data-testid": "firmware-upload" },
    h("input", { type: "file", name: "file", required: true, "data-testid": "firmware-file" }),
    h("input", { name: "version", placeholder: "version, e.g. 1.2.0", required: true, "data-testid": "firmware-version" }),
    h("input", { name: "models", placeholder: "models (optional)", "data-testid": "firmware-models" }),
    h("button", { type: "submit", "data-testid": "firmware-submit" }, "Upload"));
  const taskForm = h("form", { class: "inline-form", "data-testid": "task-form" },
    firmwareSelect,
    h("input", { name: "endpoints", placeholder: "endpoints, comma-separated", required: true, "data-testid": "task-endpoints" }),
    h("select", { name: "method", "data-testid": "task-method" },
      ...["pull-coap", "pull-http", "push"].map((m) => h("option", { value: m }, m))),
    h("button", { type: "submit", "data-testid": "task-submit" }, "Start update"));
  const faultForm = h("form", { class: "inline-form", "data-testid": "fault-form" },
    h("input", { name: "module", placeholder: "hosted module id", required: true, "data-testid": "fault-module" }),
    h("input", { name: "faults", placeholder: "cut=50,corrupt,rate=2048,...", "data-testid": "fault-text" }),
    h("button", { type: "submit", "data-testid": "fault-submit" }, "Set FOTA faults"));

  view.append(
    h("h1", {}, "Firmware"),
    h("p", { class: "muted" }, "Packages are served to devices over CoAP (Block2) and HTTP (Range) at /fw/<id>."),
    form,
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "firmware-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "id"), h("th", {}, "version"), h("th", {}, "models"),
        h("th", {}, "size"), h("th", { class: "hide-narrow" }, "sha256"), h("th", {}, "uploaded"))), packages)),
    h("h2", {}, "Update tasks"),
    taskForm,
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "task-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "firmware"), h("th", {}, "method"),
        h("th", {}, "status"), h("th", {}, "progress"))), tasks)),
    h("h2", {}, "Faults of an emulated module"),
    faultForm,
  );

  async function load() {
    try {
      const [fw, ts] = await Promise.all([get("/firmware"), get("/fota/tasks")]);
      packages.replaceChildren(...fw.items.map((p) => h("tr", { "data-testid": "firmware-row", dataset: { id: p.id } },
        h("td", {}, p.id), h("td", {}, p.version), h("td", {}, (p.models || []).join(", ") || "—"),
        h("td", {}, p.size), h("td", { class: "hide-narrow mono" }, p.sha256.slice(0, 16)), h("td", {}, formatTime(p.created_at)))));
      if (!fw.items.length) packages.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No firmware uploaded yet.")));
      firmwareSelect.replaceChildren(...fw.items.map((p) => h("option", { value: p.id }, `${p.id}: ${p.version}`)));
      tasks.replaceChildren(...ts.items.slice().reverse().map((t) => h("tr", {
        class: "clickable", "data-testid": "task-row", dataset: { id: t.id },
        onclick: () => { location.hash = `#/firmware/tasks/${t.id}`; },
      }, h("td", {}, h("a", { href: `#/firmware/tasks/${t.id}` }, t.id)), h("td", {}, t.firmware_id), h("td", {}, t.method),
      h("td", {}, h("span", { class: "badge" }, t.status)), h("td", {}, bar(t.totals.percent, "task-progress")))));
    } catch (err) {
      notify(`Firmware: ${err.message}`);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const stored = await upload(form);
      notify(`Stored firmware ${stored.id} (${stored.size} bytes, sha256 ${stored.sha256.slice(0, 12)}…)`, "info");
      form.reset();
      load();
    } catch (err) {
      notify(`Upload: ${err.message}`);
    }
  });
  taskForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(taskForm);
    const endpoints = String(data.get("endpoints")).split(",").map((e) => e.trim()).filter(Boolean);
    try {
      const task = await post("/fota/tasks", { firmware_id: Number(data.get("firmware_id")), endpoints, method: data.get("method") });
      location.hash = `#/firmware/tasks/${task.id}`;
    } catch (err) {
      notify(`Update task: ${err.message}`);
    }
  });
  faultForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(faultForm);
    try {
      const answer = await api("PUT", `/modules/${encodeURIComponent(data.get("module"))}/fota-faults`, { faults: data.get("faults") || "" });
      notify(`Module ${answer.id}: FOTA faults ${answer.faults || "none"}`, "info");
    } catch (err) {
      notify(`FOTA faults: ${err.message}`);
    }
  });
  load();
  return subscribe((event) => { if (event.kind === EventKind.FOTA_TASK) load(); });
}

function renderTask(view, taskId, notify) {
  const title = h("h1", {}, `Update task ${taskId}`);
  const summary = h("p", { class: "muted", "data-testid": "task-summary" });
  const overall = h("div", { "data-testid": "task-overall" });
  const rows = h("tbody", { "data-testid": "task-devices" });
  const cancel = h("button", { type: "button", "data-testid": "task-cancel" }, "Cancel task");
  view.append(title, summary, overall, cancel,
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "device"), h("th", {}, "status"), h("th", {}, "progress"), h("th", {}, "reason"))), rows)));

  async function load() {
    try {
      const task = await get(`/fota/tasks/${encodeURIComponent(taskId)}`);
      const t = task.totals;
      summary.textContent = `firmware ${task.firmware_id} · ${task.method} · ${task.status} · ${t.succeeded} succeeded, ${t.failed} failed, ${t.cancelled} cancelled of ${t.total}`;
      summary.dataset.status = task.status;
      overall.replaceChildren(bar(t.percent, "task-overall-bar"));
      cancel.hidden = task.status !== "running";
      rows.replaceChildren(...task.devices.map((d) => h("tr", { "data-testid": "task-device", dataset: { endpoint: d.endpoint, status: d.status } },
        h("td", { class: "mono" }, d.endpoint), h("td", {}, h("span", { class: `badge ${d.status}` }, d.status)),
        h("td", {}, bar(d.percent, "device-progress")),
        h("td", { "data-testid": "device-reason" }, d.status === "failed"
          ? `${d.reason || "failed"}${d.update_result !== null && d.update_result !== undefined ? ` (Update Result ${d.update_result})` : ""}`
          : d.reason || ""))));
    } catch (err) {
      notify(`Update task: ${err.message}`);
    }
  }
  cancel.addEventListener("click", async () => {
    try {
      await post(`/fota/tasks/${encodeURIComponent(taskId)}/cancel`);
      load();
    } catch (err) {
      notify(`Cancel: ${err.message}`);
    }
  });
  load();
  return subscribe((event) => {
    if ((event.kind === EventKind.FOTA_DEVICE && String(event.data && event.data.task_id) === String(taskId)) ||
        (event.kind === EventKind.FOTA_TASK && String(event.data && event.data.id) === String(taskId))) load();
  });
}

export function render(view, params, { notify }) {
  if (params.length >= 1 && params[0]) return renderTask(view, params[0], notify);
  return renderList(view, notify);
}
