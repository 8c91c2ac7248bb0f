// An LwM2M 1.0 client of npm `coap-node` (TLV and LwM2M JSON) for the test suite.
// Usage: node coap_node_client.js <server host> <server port> <endpoint>
// Commands arrive on stdin as JSON lines, answers and events leave on stdout as JSON lines:
//   {"cmd": "register"} {"cmd": "update", "lifetime": 600} {"cmd": "deregister"}
//   {"cmd": "set", "oid": 3303, "iid": 0, "rid": 5700, "value": 22.5}
//   {"cmd": "get", "oid": 3303, "iid": 0, "rid": 5700}      -> {"reply": "get", "value": ...}
//   {"cmd": "has", "oid": 3303, "iid": 1}                   -> {"reply": "has", "value": true|false}
// Events: {"event": "ready"}, {"event": "executed", "path": "/3311/0/5523", "args": [...]}
"use strict";

const readline = require("readline");
const SmartObject = require("smartobject");
const CoapNode = require("coap-node");

const [host, port, endpoint] = process.argv.slice(2);
const emit = (message) => process.stdout.write(JSON.stringify(message) + "\n");

const so = new SmartObject();
so.init(3303, 0, { 5700: 21.5, 5701: "Cel" });
so.init(3311, 0, {
  5850: false,
  5851: 10,
  // smartobject calls exec(...arguments, callback)
  5523: { exec: (...args) => { const done = args.pop(); emit({ event: "executed", path: "/3311/0/5523", args }); done(null); } },
});

// coap-node reports lwm2m=<its own version> ("1.0.0" by default), which is not an LwM2M version:
// the spec's value for this client is "1.0".
const node = new CoapNode(endpoint, so, { version: "1.0", lifetime: 300 });
// coap-node asks the `network` package (ifconfig/ip) for the active interface before registering;
// on loopback there is nothing to ask.
node._updateNetInfo = (callback) => {
  node.ip = "127.0.0.1";
  node.mac = "00:00:00:00:00:00";
  callback(null, { ip: node.ip, mac: node.mac, routeIp: "unknown" });
};

function reply(name, err, rsp) {
  emit({ reply: name, error: err ? String(err) : null, status: rsp && rsp.status });
}

const commands = {
  register: () => node.register(host, Number(port), (err, rsp) => reply("register", err, rsp)),
  update: (c) => node.update({ lifetime: c.lifetime }, (err, rsp) => reply("update", err, rsp)),
  deregister: () => node.deregister((err, rsp) => reply("deregister", err, rsp)),
  set: (c) => { so.write(c.oid, c.iid, c.rid, c.value, () => emit({ reply: "set" })); },
  get: (c) => so.read(c.oid, c.iid, c.rid, (err, value) => emit({ reply: "get", value })),
  has: (c) => emit({ reply: "has", value: so.has(c.oid, c.iid, c.rid) }),
};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  commands[command.cmd](command);
});
process.stdin.on("end", () => process.exit(0));
node.on("error", (err) => emit({ event: "error", error: String(err) }));
emit({ event: "ready" });
