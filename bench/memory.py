"""Benchmark 3: memory of the server with 10,000 registered endpoints (issue 2: < 200 MB) and,
in the same run, with 100,000 (issue 8: < 1 GB; production LwM2M servers carry about 100,000).

The server runs alone in a child process (``python -m bench.memory``) so that its resident set
holds nothing but the server; the devices are aiocoap sockets in the parent. The parent registers
endpoints up to each checkpoint in turn and asks the child to measure at each. Protocol on the
child's stdio, one JSON object per line:

    child → {"port": p, "rss_before": bytes}      after `Lwm2mServer.start()`
    parent → "measure"                            once every Register so far has its 2.01
    child → {"rss_after": bytes, "registered": n} after a full garbage collection
    (repeated per checkpoint; the child exits when stdin closes)

RSS is read from /proc/self/status (VmRSS) with psutil as the fallback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench import coap
from bench.measure import Figure, LoadResult, run_closed_loop

MIB = 1024 * 1024
# Endpoint count -> RSS target: the first target whose count is at least the checkpoint applies.
TARGETS: tuple[tuple[int, int, str], ...] = (
    (10_000, 200 * 1000 * 1000, "< 200 MB"),
    (100_000, 1000 * 1000 * 1000, "< 1 GB"),
)
_REPO_ROOT = Path(__file__).resolve().parent.parent


def rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    return int(psutil.Process().memory_info().rss)


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def _child() -> None:
    from bench.testbed import running_server

    async with running_server() as (server, address):
        gc.collect()
        _emit({"port": address[1], "rss_before": rss_bytes()})
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "measure":
            gc.collect()
            _emit({"rss_after": rss_bytes(), "registered": len(server.registered())})


async def _read_json(stream: asyncio.StreamReader, timeout: float = 60) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), timeout)
    if not line:
        raise RuntimeError("memory child exited early")
    data: dict[str, Any] = json.loads(line)
    return data


def target_for(endpoints: int) -> tuple[int, str] | None:
    for count, limit, text in TARGETS:
        if endpoints <= count:
            return limit, text
    return None


async def bench_memory(checkpoints: tuple[int, ...], sockets: int, in_flight: int = 50) -> list[Figure]:
    """Register endpoints from ``sockets`` device sockets, at most ``in_flight`` at a time (more
    only queues at the server and triggers CoAP retransmissions), up to each of ``checkpoints``
    in turn, and measure the child's RSS at each."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.memory",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=_REPO_ROOT,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    measured: list[tuple[int, LoadResult, dict[str, Any]]] = []
    try:
        started = await _read_json(child.stdout)
        server = ("127.0.0.1", int(started["port"]))
        contexts = await coap.client_contexts(sockets)
        try:
            done = 0
            for checkpoint in sorted(checkpoints):

                async def op(n: int, offset: int = done) -> None:
                    await coap.register(contexts[n % sockets], server, f"mem-{offset + n:06d}")

                load = await run_closed_loop([op] * min(in_flight, sockets), checkpoint - done)
                done = checkpoint
                child.stdin.write(b"measure\n")
                await child.stdin.drain()
                measured.append((checkpoint, load, await _read_json(child.stdout, timeout=120)))
        finally:
            await coap.shutdown(contexts)
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    before = int(started["rss_before"])
    figures = [Figure(benchmark="memory", name="Server RSS at start", value=before / MIB, unit="MiB")]
    for checkpoint, load, finished in measured:
        figures += _checkpoint_figures(checkpoint, load, before, finished, sockets, min(in_flight, sockets))
    return figures


def _checkpoint_figures(
    endpoints: int, load: LoadResult, before: int, finished: dict[str, Any], sockets: int, in_flight: int
) -> list[Figure]:
    after = int(finished["rss_after"])
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


if __name__ == "__main__":
    asyncio.run(_child())
