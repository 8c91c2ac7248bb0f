"""A cluster of server nodes on PostgreSQL (state) and NATS (routing and events).

    testbed server --node-id A --cluster nats://127.0.0.1:4222 \\
        --db postgresql+asyncpg://postgres@127.0.0.1:5432/testbed --port 5683 --http-port 8080

Without `--cluster` nothing here runs: `Lwm2mServer.cluster` is a `LocalNode`, whose hooks are
only reached on the paths where a single process would raise `UnknownEndpoint` anyway (so the hot
paths — registration, notify, REST read of a local device — do exactly what they did before).

Node identity
    Each node has an id (`--node-id`, letters, digits, `-` and `_`), its own CoAP/DTLS listeners
    (in production behind a UDP load balancer with source affinity) and its own HTTP API. All
    nodes share one PostgreSQL database (one Alembic history) and one NATS server.

Ownership (table `registration_owners`, migration 0008)
    The node that accepted a Register owns the device's transport: its address, DTLS session and
    CoAP exchanges. The owner is written beside the registration (endpoint, node, registration
    id) by the register hook, and announced at once by the `registration.registered` event on
    NATS, so that every node keeps an in-memory map endpoint -> owner (the table is the fallback
    for a node that started later). When a node sees another node take an endpoint it holds, it
    releases its copy without touching the database. A Register through a new node publishes
    `registration.replaced` with `from_node`; an Update (or its registration id) arriving at a
    node that does not hold the registration adopts it from the database (the address change
    re-establishes the stored observations from there).
    What a Register costs beyond a single process: the claim is one statement per batch of
    claims, on the cluster's own writer (it never holds a registration's commit back), committed
    without waiting for the WAL flush (ownership is soft state: the next uplink claims again); a
    first-seen endpoint's device row is inserted or, when another node stored it, found in the
    same statement (`ON CONFLICT DO NOTHING`), so no lookup precedes it.

Request forwarding (`forwarding.py`; subject `testbed.node.<id>.request`, NATS request/reply)
    An operation on a device owned elsewhere (read, write, execute, observe, discover, create,
    delete, composite, write-attributes, queued requests) travels as one JSON request to the
    owner, which runs it as a local request and answers with the JSON result or the error drawn
    by `server.services.errors` (`wire.py` encodes both ways), so a caller sees the same errors
    as locally: UnknownEndpoint / DeviceSleeping ("offline"), DeviceTimeout, RequestFailed
    (device error with its CoAP code), BadArgument. One timeout budget end to end: the owner
    spends the caller's timeout on the device, the caller waits that budget plus a fixed transit
    allowance (`FORWARD_GRACE`) and then raises DeviceTimeout. No owner answering (the node is
    gone, or NATS is down) is DeviceUnreachable naming the node: a clear error, never a hang.

Events (subject `testbed.events.<node id>`)
    Every event a node's services publish goes to its local bus (event log, HTTP push, cached
    commands, carrier rules: the node that produced the event acts on it, so each event is
    pushed to HTTP receivers once cluster-wide) and to NATS. Events from other nodes are relayed
    to the local subscriptions only (`EventBus.relay`): the SSE and WebSocket streams of every
    node see every event their key may see, and nothing is logged or pushed twice.

Observation state and queued requests (PostgreSQL)
    Observations (paths, attributes, content format) and queued requests are already stored;
    the new owner of an endpoint re-reads them: queued requests are delivered by the node the
    device registers or updates through, and stored observations are re-established after an
    adoption. Notifications are acknowledged after their commit as in one process.
    The owner's `observation.started` event carries the observation's token to the other nodes
    (kept in memory by each), and the owner writes the token beside the observation's row
    (`observations.token`, migration 0009), from which a node that starts later learns it: a
    notification on such a token arriving at another node's listener (after a load-balancer
    change) is accepted there (`CoapListener.stray_notification`), the node takes the
    registration over at the notification's address, stores the values once and acknowledges
    after the commit; later notifications on the token keep arriving there.

Liveness (table `cluster_nodes`, subject `testbed.cluster.heartbeat`)
    Every node writes a heartbeat every `HEARTBEAT_INTERVAL` seconds; a node whose last heartbeat
    is older than `DEAD_AFTER` is shown as down. `GET /api/v1/cluster` lists the nodes (id,
    HTTP URL, CoAP addresses, last heartbeat, alive, devices owned). A dead node's devices move on
    their next uplink through another node; until then requests for them answer "offline".

Failure of NATS: nats-py reconnects on its own; requests in flight during the outage fail with
DeviceUnreachable ("cluster link down"), later requests succeed once the link is back.

OneNET cached commands are stored in PostgreSQL; their `offline_command.created` event tells the
device's owner (whichever node it is) that the device has one waiting, so the owner delivers it on
the next trigger.
"""

from server.cluster.hooks import ClusterHooks, LocalNode

__all__ = ["ClusterHooks", "LocalNode"]
