// Overview: device counts by carrier and state, the cluster's nodes (when clustered), and the
// live event feed.

import { get } from "../api.js";
import { eventItem, h } from "../dom.js";
import { subscribe } from "../live.js";

export const name = "overview";
const FEED_LIMIT = 200;

export function render(view, _params, { notify }) {
  const cards = h("div", { class: "cards", id: "carrier-cards", "data-testid": "carrier-cards" });
  const feed = h("ul", { class: "feed", id: "event-feed", "data-testid": "event-feed" });
  // Cluster nodes (GET /api/v1/cluster), shown only when this server is a node of a cluster.
  const nodes = h("div", { class: "cards", id: "cluster-nodes", "data-testid": "cluster-nodes" });
  view.append(
    h("h1", {}, "Overview"),
    cards,
    nodes,
    h("h2", {}, "Live events"),
    h("div", { class: "panel" }, feed),
  );

  function card(label, big, small, testid) {
    return h("div", { class: "card", "data-testid": testid }, h("div", { class: "name" }, label),
      h("div", { class: "big" }, big), h("div", { class: "muted" }, small));
  }

  let loading = false;
  async function load(withEvents) {
    if (loading) return;
    loading = true;
    try {
      const data = await get("/overview");
      const carriers = Object.entries(data.carriers || {});
      const total = carriers.reduce((n, [, c]) => n + c.devices, 0);
      const online = carriers.reduce((n, [, c]) => n + c.online, 0);
      cards.replaceChildren(
        card("all devices", total, `${online} online · ${total - online} offline`, "count-all"),
        card("registrations", data.registrations, "active now", "count-registrations"),
        ...carriers.map(([carrier, c]) =>
          card(carrier, c.devices, `${c.online} online · ${c.devices - c.online} offline`, `carrier-${carrier}`)),
      );
      const cluster = await get("/cluster");
      nodes.replaceChildren(...(cluster.clustered ? (cluster.nodes || []).map((n) =>
        card(`node ${n.node_id}${n.node_id === cluster.node_id ? " (this one)" : ""}`,
          n.alive ? "up" : "down", `${n.devices} devices`, `node-${n.node_id}`)) : []));
      if (withEvents) {
        const recent = [...(data.recent_events || [])].sort((a, b) => b.seq - a.seq);
        feed.replaceChildren(...recent.map(eventItem));
      }
    } catch (err) {
      notify(`Overview: ${err.message}`);
    } finally {
      loading = false;
    }
  }

  let refresh = null;
  const unsubscribe = subscribe((event) => {
    if (feed.querySelector(`[data-seq="${event.seq}"]`)) return;
    feed.prepend(eventItem(event));
    while (feed.children.length > FEED_LIMIT) feed.lastChild.remove();
    if (String(event.kind).startsWith("registration")) {
      clearTimeout(refresh);
      refresh = setTimeout(() => load(false), 300);
    }
  });
  load(true);
  return () => {
    unsubscribe();
    clearTimeout(refresh);
  };
}
