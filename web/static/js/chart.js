// A line chart of numeric datapoints drawn as SVG by hand (no chart library, no network).

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceNumber(value) {
  const abs = Math.abs(value);
  if (abs >= 1000 || (abs > 0 && abs < 0.01)) return value.toExponential(1);
  return String(Math.round(value * 100) / 100);
}

const TIME_TICKS = 5;

// Tick label for time `t` on an axis spanning `span` seconds: the clock, with the date when the
// axis covers days.
function timeLabel(t, span) {
  const date = new Date(t * 1000);
  const clock = date.toLocaleTimeString([], { hour12: false });
  return span > 86400 ? `${date.toLocaleDateString([], { month: "2-digit", day: "2-digit" })} ${clock.slice(0, 5)}` : clock;
}

// points: [{at: epoch seconds, value: number}], oldest first; `units` labels the value axis.
export function lineChart(points, { width = 600, height = 180, label = "", units = "" } = {}) {
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img" });
  root.dataset.testid = "chart";
  root.dataset.points = String(points.length);
  root.dataset.units = units;
  if (label) root.append(svg("title", {}, units ? `${label} (${units})` : label));
  const left = 64;
  const right = 8;
  const top = 10;
  const bottom = 22;
  root.append(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }));
  root.append(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
  if (points.length === 0) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no datapoints yet"));
    return root;
  }
  const times = points.map((p) => p.at);
  const values = points.map((p) => p.value);
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  let v0 = Math.min(...values);
  let v1 = Math.max(...values);
  if (t1 === t0) { t0 -= 1; t1 += 1; }
  if (v1 === v0) { v0 -= 1; v1 += 1; }
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => height - bottom - ((v - v0) / (v1 - v0)) * (height - top - bottom);
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  root.append(svg("path", { class: "line", d }));
  for (const p of points.length <= 60 ? points : []) {
    root.append(svg("circle", { cx: x(p.at).toFixed(1), cy: y(p.value).toFixed(1), r: 2.5, fill: "currentColor", class: "point" }));
  }
  const suffix = units ? ` ${units}` : "";
  root.append(svg("text", { x: left - 4, y: top + 8, "text-anchor": "end", class: "value-label" }, `${niceNumber(v1)}${suffix}`));
  root.append(svg("text", { x: left - 4, y: height - bottom, "text-anchor": "end", class: "value-label" }, `${niceNumber(v0)}${suffix}`));
  // The time axis: evenly spaced ticks, each labelled with its clock time.
  for (let i = 0; i < TIME_TICKS; i += 1) {
    const t = t0 + ((t1 - t0) * i) / (TIME_TICKS - 1);
    const tx = x(t);
    const anchor = i === 0 ? "start" : i === TIME_TICKS - 1 ? "end" : "middle";
    root.append(svg("line", { class: "axis tick", x1: tx, y1: height - bottom, x2: tx, y2: height - bottom + 4 }));
    const text = svg("text", { x: tx, y: height - 6, "text-anchor": anchor, class: "time-tick" }, timeLabel(t, t1 - t0));
    text.dataset.at = String(t);
    root.append(text);
  }
  return root;
}
