"""Run one cluster node: the LwM2M server with its listeners, the cluster hooks over NATS, the
HTTP API and console (`testbed server --node-id A --cluster nats://...`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from server.settings import Settings


async def run_node(
    settings: Settings,
    node_id: str,
    nats_url: str,
    http_port: int,
    stop: asyncio.Event,
    say: Callable[[str], None],
    cluster: str = "testbed",
) -> None:
    """Start the node, `say` what it serves (one line: `node <id> ready ...`), serve until
    `stop` is set, then stop cleanly."""
    from server.api.app import create_app
    from server.api.serve import serve_http
    from server.cluster.node import ClusterNode
    from server.console import mount_console
    from server.lwm2m_server import Lwm2mServer

    server = Lwm2mServer(settings)
    shown = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
    node = ClusterNode(server, node_id, nats_url, cluster=cluster)
    server.cluster = node
    await server.start()
    handle = None
    try:
        app = create_app(server)
        node.waiting_command = app.state.offline.note_waiting
        mount_console(app)
        handle = await serve_http(app, settings.http_host, http_port)
        node.http_url = f"http://{shown}:{handle.port}"
        coap = " ".join(f"coap://{lsn.address[0]}:{lsn.address[1]}" for lsn in server.listeners.values())
        say(f"node {node_id} ready {node.http_url} {coap}")
        await stop.wait()
    finally:
        if handle is not None:
            await handle.stop()
        await server.stop()
