"""Benchmark 1: Registrations per second (OMA LwM2M Core 1.1.1 §6.2.1 Register) from N concurrent
loopback devices against the real server on SQLite, beside the ceiling: a bare aiocoap resource
answering 2.01 to the same requests from the same device sockets.

Every registration uses a fresh endpoint name, so the server stores ``total`` registrations.
"""

from __future__ import annotations

from bench import coap
from bench.measure import Figure, LoadResult, Operation, ratio_target, run_closed_loop
from bench.testbed import running_server

TARGET_RATIO = 0.5


def _workers(contexts: list[coap.aiocoap.Context], server: coap.Address, prefix: str) -> list[Operation]:
    def make(context: coap.aiocoap.Context) -> Operation:
        async def op(n: int) -> None:
            await coap.register(context, server, f"{prefix}-{n:06d}")

        return op

    return [make(c) for c in contexts]


async def bench_registrations(clients: int, total: int) -> list[Figure]:
    contexts = await coap.client_contexts(clients)
    try:
        async with coap.bare_servers(1) as (bare,):
            await run_closed_loop(_workers(contexts, bare, "warm"), min(total, clients * 2))
            ceiling = await run_closed_loop(_workers(contexts, bare, "bare"), total)
        async with running_server() as (server, address):
            await run_closed_loop(_workers(contexts, address, "warm"), min(total, clients * 2))
            measured = await run_closed_loop(_workers(contexts, address, "bench"), total)
            stored = len(server.registered())
    finally:
        await coap.shutdown(contexts)
    return [_figure(measured, ceiling, clients, total, stored)]


def _figure(measured: LoadResult, ceiling: LoadResult, clients: int, total: int, stored: int) -> Figure:
    figure = Figure(
        benchmark="registrations",
        name=f"Registrations/s ({clients} clients, {total} total)",
        value=measured.rate,
        unit="reg/s",
        ceiling=ceiling.rate,
        details={
            "clients": clients,
            "total": total,
            "server": measured.summary(),
            "ceiling": ceiling.summary(),
            "registrations_stored": stored,
        },
    )
    return ratio_target(figure, TARGET_RATIO)
