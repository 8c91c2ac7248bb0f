"""Benchmark 3: memory of the server with 10,000 registered endpoints (issue 2: < 200 MB) and,
in the same run, with 100,000 (issue 8: < 1 GB; production LwM2M servers carry about 100,000).

The server runs alone in a child process (`bench.server_process`) so that its resident set holds
nothing but the server; the devices are aiocoap sockets in this one. Endpoints are registered up to
each checkpoint in turn, and the child's RSS (after a full garbage collection) is read at each.
"""

from __future__ import annotations

from typing import Any

from bench import coap
from bench.measure import Figure, LoadResult, run_closed_loop
from bench.server_process import ServerProcess

MIB = 1024 * 1024
# Endpoint count -> RSS target: the first target whose count is at least the checkpoint applies.
TARGETS: tuple[tuple[int, int, str], ...] = (
    (10_000, 200 * 1000 * 1000, "< 200 MB"),
    (100_000, 1000 * 1000 * 1000, "< 1 GB"),
)


def target_for(endpoints: int) -> tuple[int, str] | None:
    for count, limit, text in TARGETS:
        if endpoints <= count:
            return limit, text
    return None


async def bench_memory(checkpoints: tuple[int, ...], sockets: int, in_flight: int = 50) -> list[Figure]:
    """Register endpoints from ``sockets`` device sockets, at most ``in_flight`` at a time (more
    only queues at the server and triggers CoAP retransmissions), up to each of ``checkpoints``
    in turn, and measure the server's RSS at each."""
    measured: list[tuple[int, LoadResult, dict[str, Any]]] = []
    async with ServerProcess.start() as server:
        before = (await server.call("status"))["rss"]
        contexts = await coap.client_contexts(sockets)
        try:
            done = 0
            for checkpoint in sorted(checkpoints):

                async def op(n: int, offset: int = done) -> None:
                    await coap.register(contexts[n % sockets], server.address, f"mem-{offset + n:06d}")

                load = await run_closed_loop([op] * min(in_flight, sockets), checkpoint - done)
                done = checkpoint
                measured.append((checkpoint, load, await server.call("status")))
        finally:
            await coap.shutdown(contexts)
    figures = [Figure(benchmark="memory", name="Server RSS at start", value=before / MIB, unit="MiB")]
    for checkpoint, load, status in measured:
        figures += _checkpoint_figures(checkpoint, load, before, status, sockets, min(in_flight, sockets))
    return figures


def _checkpoint_figures(
    endpoints: int, load: LoadResult, before: int, finished: dict[str, Any], sockets: int, in_flight: int
) -> list[Figure]:
    after = int(finished["rss"])
    registered = int(finished["registered"])
    details = {
        "endpoints_requested": endpoints,
        "registered": registered,
        "sockets": sockets,
        "in_flight": in_flight,
        "register_load": load.summary(),
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "per_endpoint_bytes": round((after - before) / registered, 1) if registered else None,
    }
    total = Figure(
        benchmark="memory",
        name=f"Server RSS with {registered} endpoints",
        value=after / MIB,
        unit="MiB",
        details=details,
    )
    target = target_for(endpoints)
    if target is not None:
        total.target = target[1]
        total.target_met = after < target[0] and registered == endpoints
    per_endpoint = Figure(
        benchmark="memory",
        name=f"RSS growth per endpoint ({registered} endpoints)",
        value=(after - before) / registered / 1024 if registered else 0.0,
        unit="KiB",
    )
    return [total, per_endpoint]
