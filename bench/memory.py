"""Benchmark 3: memory of the server with 10,000 registered endpoints.

The server runs alone in a child process (``python -m bench.memory``) so that its resident set
holds nothing but the server; the devices are aiocoap sockets in the parent. Protocol on the
child's stdio, one JSON object per line:

    child → {"port": p, "rss_before": bytes}      after `Lwm2mServer.start()`
    parent → any line                             once every Register has its 2.01
    child → {"rss_after": bytes, "registered": n} after a full garbage collection

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
from bench.measure import Figure, run_closed_loop

TARGET_BYTES = 200 * 1024 * 1024
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
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        gc.collect()
        _emit({"rss_after": rss_bytes(), "registered": len(server.registered())})


async def _read_json(stream: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), 60)
    if not line:
        raise RuntimeError("memory child exited early")
    data: dict[str, Any] = json.loads(line)
    return data


async def bench_memory(endpoints: int, sockets: int, in_flight: int = 50) -> list[Figure]:
    """Register ``endpoints`` from ``sockets`` device sockets, at most ``in_flight`` at a time (more
    only queues at the server and triggers CoAP retransmissions), then measure the child's RSS."""
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
    try:
        started = await _read_json(child.stdout)
        server = ("127.0.0.1", int(started["port"]))
        contexts = await coap.client_contexts(sockets)
        try:

            async def op(n: int) -> None:
                await coap.register(contexts[n % sockets], server, f"mem-{n:06d}")

            load = await run_closed_loop([op] * min(in_flight, sockets), endpoints)
        finally:
            await coap.shutdown(contexts)
        child.stdin.write(b"measure\n")
        await child.stdin.drain()
        finished = await _read_json(child.stdout)
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    before, after = int(started["rss_before"]), int(finished["rss_after"])
    registered = int(finished["registered"])
    mib = 1024 * 1024
    details = {
        "endpoints_requested": endpoints,
        "registered": registered,
        "sockets": sockets,
        "in_flight": min(in_flight, sockets),
        "register_load": load.summary(),
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "per_endpoint_bytes": round((after - before) / registered, 1) if registered else None,
    }
    total = Figure(
        benchmark="memory",
        name=f"Server RSS with {registered} endpoints",
        value=after / mib,
        unit="MiB",
        target="< 200 MB",
        target_met=after < TARGET_BYTES and registered == endpoints,
        details=details,
    )
    baseline = Figure(benchmark="memory", name="Server RSS at start", value=before / mib, unit="MiB")
    per_endpoint = Figure(
        benchmark="memory",
        name="RSS growth per endpoint",
        value=(after - before) / registered / 1024 if registered else 0.0,
        unit="KiB",
    )
    return [baseline, total, per_endpoint]


if __name__ == "__main__":
    asyncio.run(_child())
