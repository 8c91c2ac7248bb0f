"""`testbed server`: the LwM2M server alone, or one node of a cluster (PostgreSQL and NATS) with
its HTTP API and console."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from server.settings import Settings

if TYPE_CHECKING:
    from testbed.cloud import ClusterConfig
from testbed.cli.options import DbOption, ModelsOption, fail, on_signal, run_explained, settings_for


def server(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="CoAP listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="CoAP port.")] = 5683,
    quiet: Annotated[bool, typer.Option(help="Do not log events.")] = False,
    models: ModelsOption = None,
    node_id: Annotated[str | None, typer.Option("--node-id", help="This node's id in a cluster.")] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="NATS URL of the cluster (nats://host:4222); needs --node-id."),
    ] = None,
    http_port: Annotated[int, typer.Option(help="HTTP port of a cluster node's API (0 picks one).")] = 8080,
    cluster_name: Annotated[
        str, typer.Option(help="Name of the cluster: its NATS subjects (clusters may share a NATS server).")
    ] = "testbed",
) -> None:
    """Run the LwM2M server only (no HTTP API, no emulated devices); with --cluster, one node of a
    cluster on PostgreSQL and NATS, with its HTTP API (see server/cluster)."""
    from testbed.cli.serving import run_server

    settings = settings_for(db, host, port, None, models)
    if cluster is None:
        if node_id is not None:
            raise typer.BadParameter("--node-id needs --cluster nats://host:port", param_hint="--node-id")
        run_explained(run_server(settings, 0, 0.0, quiet, http=False))
        return
    _run_cluster_node(settings, node_id, cluster, http_port, cluster_name)


def _run_cluster_node(
    settings: Settings, node_id: str | None, cluster: str, http_port: int, name: str
) -> None:
    from nats.errors import Error as NatsError

    from server.cluster.node import NODE_ID
    from testbed.cli.serving import api_key_for
    from testbed.cloud import ClusterConfig

    if node_id is None or not NODE_ID.match(node_id):
        raise typer.BadParameter("give --node-id: 1-64 letters, digits, '-' or '_'", param_hint="--node-id")
    if not NODE_ID.match(name):
        raise typer.BadParameter("1-64 letters, digits, '-' or '_'", param_hint="--cluster-name")
    if not cluster.startswith(("nats://", "tls://")):
        raise typer.BadParameter("a NATS URL such as nats://127.0.0.1:4222", param_hint="--cluster")
    if not settings.database_url.startswith("postgresql"):
        raise typer.BadParameter("cluster nodes share one PostgreSQL database: --db postgresql+asyncpg://...")
    settings = settings.model_copy(update={"api_key": api_key_for(settings)})

    async def main() -> None:
        stop = on_signal()
        try:
            await _serve_node(settings, ClusterConfig(node_id, cluster, name), http_port, stop)
        except (OSError, NatsError) as exc:
            fail(f"node {node_id} could not start: {exc or type(exc).__name__} (is NATS at {cluster}?)")

    run_explained(main())


async def _serve_node(settings: Settings, config: ClusterConfig, http_port: int, stop: asyncio.Event) -> None:
    """Start the node, say what it serves (one line: `node <id> ready ...`), serve until `stop`
    is set, then stop cleanly."""
    from testbed.cloud import Cloud

    async with Cloud(settings, http=True, http_port=http_port, console=True, cluster=config) as cloud:
        listeners = cloud.server.listeners.values()
        coap = " ".join(f"coap://{lsn.address[0]}:{lsn.address[1]}" for lsn in listeners)
        print(f"node {config.node_id} ready {cloud.http_url} {coap}", flush=True)
        await stop.wait()
