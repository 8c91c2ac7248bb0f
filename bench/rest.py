"""Benchmark: REST read round trips (issue 8) — `POST /api/v1/devices/{id}/read` of /3/0/0
(OMA LwM2M Core 1.1.1 §6.3.1 Read) through the real FastAPI app on uvicorn to N registered
emulated clients that answer at once (`ObjectTreeHandler`, see bench.reads), with p50/p99.

Figures:
- REST requests/s in a closed loop (N workers, one request in flight each), beside the ceiling of
  the same reads through the server's Python API (`Lwm2mServer.read`) in the same run: the ratio
  is what the HTTP layer (uvicorn, FastAPI, key check, JSON) costs.
- p99 latency of REST reads sent open loop at a fixed 100 requests/s (a request every 10 ms,
  whether or not the previous one answered), target p99 < 50 ms (issue 8).
No background notification load is applied (the notifies benchmark measures that path).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bench.measure import Figure, LoadResult, Operation, run_closed_loop
from bench.reads import emulated_devices
from bench.testbed import bench_settings
from server.api.app import create_app
from server.api.serve import serve_http
from server.lwm2m_server import Lwm2mServer

ADMIN_KEY = "bench-admin-key"
PACED_RATE = 100.0
P99_TARGET_MS = 50.0


@asynccontextmanager
async def api_server() -> AsyncIterator[tuple[Lwm2mServer, str]]:
    """A started server with an admin key and its API on an ephemeral port; yields (server, url)."""
    logging.getLogger("server").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="lwm2m-bench-rest-") as directory:
        settings = bench_settings(Path(directory)).model_copy(update={"api_key": ADMIN_KEY})
        server = Lwm2mServer(settings)
        await server.start()
        try:
            handle = await serve_http(create_app(server), "127.0.0.1", 0)
            try:
                yield server, handle.url
            finally:
                await handle.stop()
        finally:
            await server.stop()


async def provision(server: Lwm2mServer, endpoints: list[str]) -> list[int]:
    """Device ids bound to `endpoints` (a custom product)."""
    product = await server.provisioning.create_product("bench", "custom")
    ids = []
    for k, endpoint in enumerate(endpoints):
        device = await server.provisioning.create_device(
            product_id=product.id, imei=f"86997503{k:07d}", endpoint=endpoint, title=endpoint
        )
        ids.append(device.id)
    return ids


def rest_workers(client: httpx.AsyncClient, device_ids: list[int]) -> list[Operation]:
    def make(device_id: int) -> Operation:
        async def op(_n: int) -> None:
            response = await client.post(f"/api/v1/devices/{device_id}/read", json={"path": "/3/0/0"})
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:100]}")

        return op

    return [make(d) for d in device_ids]


def python_workers(server: Lwm2mServer, endpoints: list[str]) -> list[Operation]:
    def make(endpoint: str) -> Operation:
        async def op(_n: int) -> None:
            await server.read(endpoint, "/3/0/0")

        return op

    return [make(e) for e in endpoints]


async def run_paced(operations: list[Operation], total: int, rate: float) -> LoadResult:
    """Open loop: start request n at n / rate seconds (round-robin over `operations`)."""
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None

    async def one(n: int) -> None:
        nonlocal errors, first_error
        began = time.perf_counter()
        try:
            await operations[n % len(operations)](n)
        except Exception as exc:
            errors += 1
            first_error = first_error or repr(exc)[:200]
        else:
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    tasks = []
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return LoadResult(len(latencies), errors, time.perf_counter() - started, tuple(latencies), first_error)


async def bench_rest(clients: int, total: int, paced: int) -> list[Figure]:
    async with api_server() as (server, url):
        # Provisioned before they register, as a console user would (bench.reads names them).
        device_ids = await provision(server, [f"rest-{k:05d}" for k in range(clients)])
        async with emulated_devices(server.listeners["default"].address, clients, "rest") as endpoints:
            return await _measure(server, url, endpoints, device_ids, total, paced)


async def _measure(
    server: Lwm2mServer, url: str, endpoints: list[str], device_ids: list[int], total: int, paced: int
) -> list[Figure]:
    clients = len(endpoints)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"api-key": ADMIN_KEY}, limits=limits, timeout=30
    ) as client:
        raw = python_workers(server, endpoints)
        rest = rest_workers(client, device_ids)
        await run_closed_loop(rest, min(total, clients * 2))  # warm-up: connections, caches
        python_api = await run_closed_loop(raw, total)
        measured = await run_closed_loop(rest, total)
        at_rate = await run_paced(rest, paced, PACED_RATE)
    return [_throughput(measured, python_api, clients, total), _paced(at_rate, paced)]


def _latency(result: LoadResult) -> str:
    return f"p50 {result.percentile_ms(50) or 0:.1f} ms / p99 {result.percentile_ms(99) or 0:.1f} ms"


def _throughput(measured: LoadResult, python_api: LoadResult, clients: int, total: int) -> Figure:
    return Figure(
        benchmark="rest",
        name=f"REST read /3/0/0 requests/s ({clients} clients, {total} total; ceiling: Python API)",
        value=measured.rate,
        unit="requests/s",
        ceiling=python_api.rate,
        details={
            "clients": clients,
            "total": total,
            "rest": measured.summary(),
            "python_api": python_api.summary(),
            "latency": f"{_latency(measured)} (Python API {_latency(python_api)})",
        },
    )


def _paced(result: LoadResult, total: int) -> Figure:
    p99 = result.percentile_ms(99)
    return Figure(
        benchmark="rest",
        name=f"REST read p99 latency at {PACED_RATE:g} requests/s ({total} requests)",
        value=p99 if p99 is not None else float("nan"),
        unit="ms",
        target=f"p99 < {P99_TARGET_MS:g} ms",
        target_met=p99 is not None and result.errors == 0 and p99 < P99_TARGET_MS,
        details={"rate_per_s": PACED_RATE, "paced": result.summary(), "latency": _latency(result)},
    )
