"""Benchmark: the cluster (server.cluster, issue 19), nodes as subprocesses on the local
PostgreSQL (a fresh database) and NATS.

Figures:
- Cluster overhead: registrations/s of one node of a 2-node cluster, beside the ceiling of a
  single node without `--cluster` on the same PostgreSQL in the same run; target ratio >= 0.8.
- Cross-node REST read: `POST /api/v1/devices/{id}/read` of /3/0/0 through a node that does not
  own the devices (forwarded over NATS) beside the same reads through the owning node; p50/p99 of
  both; target p99 (non-owner) <= 1.5 x p99 (owner).
- Fleet scaling: notifications/s stored from a fleet spread over P processes (`testbed fleet
  --processes P`) beside one process, all devices observed, with the machine's core count (on two
  cores the server and the fleet share them: the figure says what this machine gives).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path as FsPath

import httpx

from bench import coap
from bench.measure import Figure, LoadResult, Operation, ratio_target, run_closed_loop
from bench.reads import emulated_clients
from bench.registrations import _workers as registration_workers

ADMIN_KEY = "bench-cluster-key"
PG = os.environ.get("TESTBED_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
NATS = os.environ.get("TESTBED_BENCH_NATS", "nats://127.0.0.1:4222")
ROOT = FsPath(__file__).resolve().parents[1]
OVERHEAD_TARGET = 0.8
P99_FACTOR = 1.5


@dataclass
class _Node:
    process: asyncio.subprocess.Process
    coap: tuple[str, int]
    http_url: str | None


async def _spawn(args: list[str], ready: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "TESTBED_API_KEY": ADMIN_KEY, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testbed.cli",
        *args,
        cwd=str(ROOT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen = ""
    while ready not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"{args[0]} exited:\n{seen}")
        seen += line.decode(errors="replace")
    asyncio.get_running_loop().create_task(_drain(process))
    return process, seen


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


def _coap_of(text: str) -> tuple[str, int]:
    found = re.search(r"coap://([\d.]+):(\d+)", text)
    assert found is not None, text
    return found.group(1), int(found.group(2))


@contextlib.asynccontextmanager
async def _node(database: str, node_id: str | None, cluster: str | None = None) -> AsyncIterator[_Node]:
    args = ["server", "--db", database, "--port", "0", "--quiet"]
    if node_id is None:
        process, seen = await _spawn(args, "Ctrl-C")
        node = _Node(process, _coap_of(seen), None)
    else:
        assert cluster is not None
        args += ["--node-id", node_id, "--cluster", NATS, "--cluster-name", cluster, "--http-port", "0"]
        process, seen = await _spawn(args, f"node {node_id} ready ")
        line = next(x for x in seen.splitlines() if x.startswith(f"node {node_id} ready "))
        node = _Node(process, _coap_of(line), line.split()[3])
    try:
        yield node
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    import asyncpg

    name = f"bench_cluster_{uuid.uuid4().hex[:10]}"
    admin_url = PG.replace("postgresql+asyncpg", "postgresql") + "/postgres"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{PG}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _stored_notifications(database: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM datapoints WHERE source = 'notify'"))
    finally:
        await conn.close()


async def bench_cluster(
    clients: int, registrations: int, reads: int, fleet: int, window: float
) -> list[Figure]:
    cluster = f"bench-{uuid.uuid4().hex[:8]}"
    async with _database() as database:
        contexts = await coap.client_contexts(clients)
        try:
            async with _node(database, None) as solo:
                await run_closed_loop(registration_workers(contexts, solo.coap, "warm-solo"), clients * 2)
                single = await run_closed_loop(
                    registration_workers(contexts, solo.coap, "solo"), registrations
                )
            async with _node(database, "A", cluster) as a, _node(database, "B", cluster) as b:
                await run_closed_loop(registration_workers(contexts, a.coap, "warm-a"), clients * 2)
                clustered = await run_closed_loop(
                    registration_workers(contexts, a.coap, "node-a"), registrations
                )
                figures = [_overhead(clustered, single, clients, registrations)]
                figures += await _cross_node_reads(a, b, clients, reads)
                figures.append(await _fleet_scaling(database, a, fleet, window))
        finally:
            await coap.shutdown(contexts)
    return figures


def _overhead(clustered: LoadResult, single: LoadResult, clients: int, total: int) -> Figure:
    figure = Figure(
        benchmark="cluster",
        name=f"Registrations/s, one node of 2 vs a single node ({clients} clients, {total})",
        value=clustered.rate,
        unit="reg/s",
        ceiling=single.rate,
        details={
            "cluster_node": clustered.summary(),
            "single_node": single.summary(),
            "latency": f"{_p(clustered)} (single node {_p(single)})",
        },
    )
    return ratio_target(figure, OVERHEAD_TARGET)


def _p(load: LoadResult) -> str:
    p50, p99 = load.percentile_ms(50), load.percentile_ms(99)
    if p50 is None or p99 is None:
        return "no answers"
    return f"p50 {p50:.1f} / p99 {p99:.1f} ms" + (f", {load.errors} errors" if load.errors else "")


async def _device_ids(api: httpx.AsyncClient, endpoints: list[str], prefix: str) -> list[int]:
    wanted = set(endpoints)
    for _ in range(200):
        items = (await api.get("/api/v1/devices", params={"limit": 1000, "q": prefix})).json()["items"]
        found = {i["endpoint"]: i["id"] for i in items if i["endpoint"] in wanted and i.get("id")}
        if len(found) == len(wanted):
            return [int(found[e]) for e in endpoints]
        await asyncio.sleep(0.1)
    raise RuntimeError("devices never appeared on the node")


def _read_workers(http: list[httpx.AsyncClient], ids: list[int]) -> list[Operation]:
    def make(client: httpx.AsyncClient, device_id: int) -> Operation:
        async def op(_n: int) -> None:
            response = await client.post(f"/api/v1/devices/{device_id}/read", json={"path": "/3/0/0"})
            if response.status_code != 200:
                raise RuntimeError(f"read answered {response.status_code}: {response.text[:100]}")

        return op

    return [make(c, d) for c, d in zip(http, ids, strict=True)]


async def _cross_node_reads(a: _Node, b: _Node, clients: int, total: int) -> list[Figure]:
    assert a.http_url is not None and b.http_url is not None
    async with emulated_clients(a.coap, clients, "xread") as devices, contextlib.AsyncExitStack() as stack:
        endpoints = [d.settings.endpoint for d in devices]
        results: dict[str, LoadResult] = {}
        for name, url in (("owner", a.http_url), ("other", b.http_url)):
            http = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=url, headers={"api-key": ADMIN_KEY}, timeout=30)
                )
                for _ in range(clients)
            ]
            ids = await _device_ids(http[0], endpoints, "xread")
            workers = _read_workers(http, ids)
            await run_closed_loop(workers, clients * 2)
            results[name] = await run_closed_loop(workers, total)
    owner, other = results["owner"], results["other"]
    p99_owner, p99_other = owner.percentile_ms(99), other.percentile_ms(99)
    figure = Figure(
        benchmark="cluster",
        name=f"REST reads/s through a non-owning node vs the owner ({clients} clients, {total})",
        value=other.rate,
        unit="reads/s",
        ceiling=owner.rate,
        target=f"p99 ≤ {P99_FACTOR:g}× owner",
        target_met=p99_owner is not None and p99_other is not None and p99_other <= P99_FACTOR * p99_owner,
        details={
            "non_owner": other.summary(),
            "owner": owner.summary(),
            "p50_ms": {"non_owner": other.percentile_ms(50), "owner": owner.percentile_ms(50)},
            "p99_ms": {"non_owner": p99_other, "owner": p99_owner},
            "latency": f"non-owner {_p(other)}; owner {_p(owner)}",
        },
    )
    return [figure]


async def _fleet_rate(
    database: str, node: _Node, fleet: int, processes: int, window: float
) -> tuple[float, int]:
    """Notifications/s stored while a fleet of `processes` processes notifies (every device
    observed, values changing every 50 ms)."""
    assert node.http_url is not None
    prefix = f"8699751{processes}"
    process, _seen = await _spawn(
        [
            "fleet",
            "--count",
            str(fleet),
            "--processes",
            str(processes),
            "--server-port",
            str(node.coap[1]),
            "--interval",
            "0.05",
            "--prefix",
            prefix,
        ],
        "Ctrl-C stops",
    )
    try:
        async with httpx.AsyncClient(
            base_url=node.http_url, headers={"api-key": ADMIN_KEY}, timeout=60
        ) as api:
            endpoints = [f"{prefix}{k:0{15 - len(prefix)}d}" for k in range(fleet)]
            ids = await _device_ids(api, endpoints, prefix)
            semaphore = asyncio.Semaphore(20)

            async def observe(device_id: int) -> None:
                async with semaphore:
                    await api.post(f"/api/v1/devices/{device_id}/observe", json={"path": "/3303/0/5700"})

            await asyncio.gather(*(observe(d) for d in ids))
        await asyncio.sleep(1.0)
        before, started = await _stored_notifications(database), time.perf_counter()
        await asyncio.sleep(window)
        after, elapsed = await _stored_notifications(database), time.perf_counter() - started
        return (after - before) / elapsed, after - before
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _fleet_scaling(database: str, node: _Node, fleet: int, window: float) -> Figure:
    processes = 2
    one, one_count = await _fleet_rate(database, node, fleet, 1, window)
    many, many_count = await _fleet_rate(database, node, fleet, processes, window)
    return Figure(
        benchmark="cluster",
        name=f"Fleet notifications/s stored, {processes} processes vs 1 ({fleet} devices)",
        value=many,
        unit="notifies/s",
        ceiling=one,
        details={
            "cores": os.cpu_count(),
            "processes": processes,
            "stored": {"one": one_count, "many": many_count},
            "window_s": window,
            "latency": f"{os.cpu_count()} cores; {one_count} vs {many_count} stored in {window:g} s",
        },
    )
