"""Benchmark: REST read round trips (issue 8) — `POST /api/v1/devices/{id}/read` of /3/0/0
(OMA LwM2M Core 1.1.1 §6.3.1 Read) through the real FastAPI app on uvicorn to N registered
emulated clients that answer at once (`ObjectTreeHandler`, see bench.reads), with p50/p99.

Figures:
- REST requests/s in a closed loop (N workers, one request in flight each), beside the ceiling of
  the same reads through the server's Python API (`Lwm2mServer.read`) in the same run: the ratio
  is what the HTTP layer (uvicorn, FastAPI, key check, JSON) costs.
- p99 latency of REST reads sent open loop at a fixed 100 requests/s (a request every 10 ms,
  whether or not the previous one answered), target p99 < 50 ms (issue 8).
  Meanwhile the devices send `BACKGROUND_NOTIFIES` confirmable notifications per second in all,
  which the server stores (acknowledge after commit): the background load.

The server and its API run in a process of their own (`bench.server_process`); the emulated
devices and the HTTP clients run in this one, on the other core, as they would in a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from bench.measure import Figure, LoadResult, Operation, run_closed_loop
from bench.reads import emulated_clients
from bench.server_process import ServerProcess
from emulator.client.client import Lwm2mClient
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path

ADMIN_KEY = "bench-admin-key"
PACED_RATE = 100.0
BACKGROUND_NOTIFIES = 100.0
TEMPERATURE = Path.parse("/3303/0/5700")
P99_TARGET_MS = 50.0


def rest_workers(clients: list[httpx.AsyncClient], device_ids: list[int]) -> list[Operation]:
    """One worker per device, each with its own keep-alive connection (`clients[k]`)."""

    def make(client: httpx.AsyncClient, device_id: int) -> Operation:
        async def op(_n: int) -> None:
            response = await client.post(f"/api/v1/devices/{device_id}/read", json={"path": "/3/0/0"})
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:100]}")

        return op

    return [make(clients[k % len(clients)], d) for k, d in enumerate(device_ids)]


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
    async with ServerProcess.start(http=True, api_key=ADMIN_KEY) as server:
        assert server.http_url is not None
        # Provisioned before they register, as a console user would (bench.reads names them).
        endpoints = [f"rest-{k:05d}" for k in range(clients)]
        device_ids = (await server.call("provision", endpoints=endpoints))["device_ids"]
        async with emulated_clients(server.address, clients, "rest") as devices:
            assert [d.settings.endpoint for d in devices] == endpoints
            observed = (await server.call("observe", endpoints=endpoints, path=str(TEMPERATURE)))["observed"]
            if observed != clients:
                raise RuntimeError(f"only {observed} of {clients} devices observed")
            return await _measure(server, server.http_url, devices, device_ids, total, paced)


async def _measure(
    server: ServerProcess, url: str, devices: list[Lwm2mClient], device_ids: list[int], total: int, paced: int
) -> list[Figure]:
    clients = len(devices)
    endpoints = [d.settings.endpoint for d in devices]
    # A client (connection pool) per worker: httpx's pool scans every connection for every
    # request, so one shared pool of N connections costs the load generator O(N) per request.
    async with contextlib.AsyncExitStack() as stack:
        http = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers={"api-key": ADMIN_KEY}, timeout=30)
            )
            for _ in range(clients)
        ]
        rest = rest_workers(http, device_ids)
        await run_closed_loop(rest, min(total, clients * 2))  # warm-up: connections, caches
        python_api = await server.reads(endpoints, total)
        measured = await run_closed_loop(rest, total)
        background = _Background(devices, BACKGROUND_NOTIFIES)
        async with background.running():
            at_rate = await run_paced(rest, paced, PACED_RATE)
    return [_throughput(measured, python_api, clients, total), _paced(at_rate, paced, background)]


class _Background:
    """The background load of the paced run: the devices send confirmable notifications of
    /3303/0/5700 (observed by the server, which stores each) at `rate` per second in all."""

    def __init__(self, devices: list[Lwm2mClient], rate: float) -> None:
        self.devices = devices
        self.rate = rate
        self.sent = 0
        self.acknowledged = 0
        self.elapsed = 0.0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._run())
        started = time.perf_counter()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.elapsed = time.perf_counter() - started

    async def _run(self) -> None:
        started = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        while True:
            delay = started + self.sent / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            device = self.devices[self.sent % len(self.devices)]
            self.sent += 1
            task = asyncio.create_task(self._notify(device, self.sent))
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _notify(self, device: Lwm2mClient, n: int) -> None:
        node = SingleResource(5700, 20.0 + n % 100 / 10, ResourceType.FLOAT)
        for delivered in await device.notify(TEMPERATURE, node, confirmable=True):
            if await delivered:
                self.acknowledged += 1

    def summary(self) -> dict[str, Any]:
        return {
            "notifies_per_s": self.rate,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "elapsed_s": round(self.elapsed, 3),
        }


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


def _paced(result: LoadResult, total: int, background: _Background) -> Figure:
    p99 = result.percentile_ms(99)
    return Figure(
        benchmark="rest",
        name=(
            f"REST read p99 latency at {PACED_RATE:g} requests/s ({total} requests; "
            f"{background.rate:g} CON notifies/s stored in the background)"
        ),
        value=p99 if p99 is not None else float("nan"),
        unit="ms",
        target=f"p99 < {P99_TARGET_MS:g} ms",
        target_met=p99 is not None and result.errors == 0 and p99 < P99_TARGET_MS,
        details={
            "rate_per_s": PACED_RATE,
            "paced": result.summary(),
            "latency": _latency(result),
            "background": background.summary(),
        },
    )
