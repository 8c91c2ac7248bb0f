// An LwM2M 1.0 client of npm `lwm2m-node-lib` (text values only) for the test suite.
// Usage: node lwm2m_node_lib_client.js <server host> <server port> <endpoint>
// Commands arrive on stdin as JSON lines, answers and events leave on stdout as JSON lines:
//   {"cmd": "register"} {"cmd": "update"} {"cmd": "deregister"}
//   {"cmd": "set", "uri": "/3303/0", "rid": 5700, "value": "22.5"}
//   {"cmd": "get", "uri": "/3303/0", "rid": 5700}      -> {"reply": "get", "value": ...}
// Events: {"event": "ready"}, {"event": "executed", "uri": "/3311/0", "rid": "5523", "args": ...}
"use strict";

const readline = require("readline");
const client = require("lwm2m-node-lib").client;

const [host, port, endpoint] = process.argv.slice(2);
const emit = (message) => process.stdout.write(JSON.stringify(message) + "\n");

client.init({
  client: { lifetime: "300", version: "1.0", logLevel: "FATAL", observe: { period: 3000 }, ipProtocol: "udp4", serverProtocol: "udp4", port: 0 },
  logLevel: "FATAL",
});

let device = null;

function reply(name, err) {
  emit({ reply: name, error: err ? String(err) : null });
}

function setUp(callback) {
  client.registry.create("/3303/0", () =>
    client.registry.setResource("/3303/0", "5700", "21.5", () =>
      client.registry.setResource("/3303/0", "5701", "Cel", () =>
        client.registry.create("/3311/0", () =>
          client.registry.setResource("/3311/0", "5851", "10", () =>
            client.registry.setResource("/3311/0", "5523", "", callback))))));
}

const commands = {
  register: () =>
    client.register(host, Number(port), "", endpoint, (err, info) => {
      device = info;
      if (!err) {
        client.setHandler(device.serverInfo, "execute", (objectType, objectId, resourceId, args, callback) => {
          emit({ event: "executed", uri: `/${objectType}/${objectId}`, rid: resourceId, args: String(args || "") });
          callback();
        });
      }
      reply("register", err);
    }),
  update: () => client.update(device, (err, info) => { device = info || device; reply("update", err); }),
  deregister: () => client.unregister(device, (err) => reply("deregister", err)),
  set: (c) => client.registry.setResource(c.uri, String(c.rid), c.value, (err) => reply("set", err)),
  get: (c) => client.registry.get(c.uri, (err, object) => emit({ reply: "get", value: object ? object.attributes[String(c.rid)] : null })),
};

setUp(() => {
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const command = JSON.parse(line);
    commands[command.cmd](command);
  });
  emit({ event: "ready" });
});
process.stdin.on("end", () => process.exit(0));
