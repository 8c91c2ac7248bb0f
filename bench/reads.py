"""Benchmark 2: Read round trips per second (OMA LwM2M Core 1.1.1 §6.3.1 Read) of /3/0/0 through
the server's Python API `Lwm2mServer.read()` against N registered emulated clients (the
emulator's `Lwm2mClient` over an `ObjectTreeHandler`), concurrency N, with p50/p99 latency.

Ceiling: one bare aiocoap client context (the server side owns one socket too) sending GET /3/0/0
to N bare aiocoap resources, same count and concurrency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from bench import coap
from bench.measure import Figure, LoadResult, Operation, run_closed_loop
from bench.testbed import running_server
from emulator.client.client import Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model import ModelRegistry
from lwm2m.model.builtin import builtin_registry
from server.lwm2m_server import Lwm2mServer


def device_tree(model: ModelRegistry) -> ObjectTreeHandler:
    tree = ObjectTreeHandler(model)
    tree.add_instance(1, 0, {0: 101, 1: 86400, 2: 1, 3: 60, 6: False, 7: "U"})
    tree.add_instance(3, 0, {0: "China Mobile", 1: "ML307R", 2: "869975030000461", 9: 80})
    tree.add_instance(3303, 0, {5700: 21.5, 5701: "Cel"})
    tree.add_instance(3311, 0, {5850: False, 5851: 10})
    return tree


@asynccontextmanager
async def emulated_clients(server: coap.Address, count: int, prefix: str) -> AsyncIterator[list[Lwm2mClient]]:
    """``count`` emulated LwM2M clients (endpoints ``<prefix>-00000`` ...) registered with ``server``."""
    model = builtin_registry()
    async with AsyncExitStack() as stack:
        clients: list[Lwm2mClient] = []
        for k in range(count):
            tree = device_tree(model)
            client = Lwm2mClient(
                ClientSettings(
                    endpoint=f"{prefix}-{k:05d}",
                    server_host=server[0],
                    server_port=server[1],
                    lifetime=3600,
                    lwm2m_version="1.1",
                    object_links=tree.object_links,
                ),
                tree,
                model,
            )
            await client.start()
            stack.push_async_callback(client.stop)
            await client.register()
            clients.append(client)
        yield clients


@asynccontextmanager
async def emulated_devices(server: coap.Address, count: int, prefix: str) -> AsyncIterator[list[str]]:
    """``count`` emulated LwM2M clients registered with ``server``; yields their endpoint names."""
    async with emulated_clients(server, count, prefix) as clients:
        yield [client.settings.endpoint for client in clients]


def _server_workers(server: Lwm2mServer, endpoints: list[str]) -> list[Operation]:
    def make(endpoint: str) -> Operation:
        async def op(_n: int) -> None:
            await server.read(endpoint, "/3/0/0")

        return op

    return [make(e) for e in endpoints]


def _bare_workers(context: coap.aiocoap.Context, targets: list[coap.Address]) -> list[Operation]:
    def make(target: coap.Address) -> Operation:
        async def op(_n: int) -> None:
            await coap.get(context, target, "/3/0/0")

        return op

    return [make(t) for t in targets]


async def bench_reads(clients: int, total: int) -> list[Figure]:
    async with coap.bare_servers(clients) as targets:
        context = await coap.client_context()
        try:
            workers = _bare_workers(context, targets)
            await run_closed_loop(workers, min(total, clients * 2))
            ceiling = await run_closed_loop(workers, total)
        finally:
            await coap.shutdown([context])
    async with (
        running_server() as (server, address),
        emulated_devices(address, clients, "reader") as endpoints,
    ):
        workers = _server_workers(server, endpoints)
        await run_closed_loop(workers, min(total, clients * 2))
        measured = await run_closed_loop(workers, total)
    return [_figure(measured, ceiling, clients, total)]


def _figure(measured: LoadResult, ceiling: LoadResult, clients: int, total: int) -> Figure:
    p50, p99 = measured.percentile_ms(50), measured.percentile_ms(99)
    return Figure(
        benchmark="reads",
        name=f"Read /3/0/0 round trips/s ({clients} clients, {total} total)",
        value=measured.rate,
        unit="reads/s",
        ceiling=ceiling.rate,
        details={
            "clients": clients,
            "total": total,
            "server": measured.summary(),
            "ceiling": ceiling.summary(),
            "latency": f"p50 {p50 or 0:.1f} ms / p99 {p99 or 0:.1f} ms "
            f"(ceiling p50 {ceiling.percentile_ms(50) or 0:.1f} / p99 {ceiling.percentile_ms(99) or 0:.1f})",
        },
    )
