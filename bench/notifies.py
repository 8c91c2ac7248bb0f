"""Benchmark: notifies persisted per second (Core 1.1.1 §6.4 Information Reporting, RFC 7641),
on SQLite and on PostgreSQL, beside the database's ceiling: a bare `INSERT` loop.

Load: N emulated LwM2M clients on loopback (`emulator.client`), each observed on /3303/0/5700
by the real server, each sending confirmable notifications in a closed loop (the next one after
the ACK of the previous). The server acknowledges a notification only after its values are
committed (acknowledge after commit), so acknowledged notifies per second *are* persisted
notifies per second; the run checks the datapoints table holds exactly that many.

The server runs in a process of its own (`bench.server_process`), the clients in this one: each
side has a core, as in a deployment.

Ceiling: the same datapoint rows written by a bare SQLAlchemy Core loop on the same database: one
`INSERT` per row, a commit after every N rows (N = the number of clients, the most a group
commit can gather from N closed-loop clients). No CoAP, no decoding, no events. The server writes
a transaction's rows with one executemany per statement, so it can pass that ceiling (ratio > 1).

PostgreSQL: `TESTBED_BENCH_PG` (default `postgresql+asyncpg://postgres@127.0.0.1:5432`); a
throw-away database is created and dropped. When it is unreachable the figure is left out and
said so in the details of the SQLite figure.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from sqlalchemy import func, select

from bench.measure import Figure, LoadResult, Operation, run_closed_loop
from bench.server_process import ServerProcess
from emulator.client.client import Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from server.store import tables
from server.store.database import Database

TARGET_PG = 2000.0
TEMPERATURE = Path.parse("/3303/0/5700")
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@asynccontextmanager
async def _sqlite_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="lwm2m-bench-") as directory:
        yield f"sqlite+aiosqlite:///{directory}/notifies.db"


@asynccontextmanager
async def _postgres_url() -> AsyncIterator[str | None]:
    """A fresh PostgreSQL database, or None when no server answers."""
    import asyncpg

    base = os.environ.get("TESTBED_BENCH_PG", DEFAULT_PG)
    parts = urlsplit(base.replace("postgresql+asyncpg", "postgresql"))
    name = f"bench_{uuid.uuid4().hex[:12]}"

    async def admin() -> asyncpg.Connection:
        return await asyncpg.connect(
            host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password
        )

    try:
        connection = await asyncio.wait_for(admin(), 3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        yield None
        return
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield f"{base.rstrip('/')}/{name}"
    finally:
        connection = await admin()
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


def _tree() -> ObjectTreeHandler:
    tree = ObjectTreeHandler(builtin_registry())
    tree.add_instance(3, 0, {0: "China Mobile", 1: "ML307R"})
    tree.add_instance(3303, 0, {5700: 20.0, 5701: "Cel"})
    return tree


async def _devices(server: ServerProcess, count: int) -> list[Lwm2mClient]:
    host, port = server.address
    clients: list[Lwm2mClient] = []
    for i in range(count):
        tree = _tree()
        client = Lwm2mClient(
            ClientSettings(
                endpoint=f"bench-notify-{i:05d}",
                server_host=host,
                server_port=port,
                lwm2m_version="1.1",
                object_links=tree.object_links,
                confirmable_notifications=True,
            ),
            tree,
            builtin_registry(),
        )
        await client.start()
        clients.append(client)
    await asyncio.gather(*(c.register() for c in clients))
    endpoints = [c.settings.endpoint for c in clients]
    observed = (await server.call("observe", endpoints=endpoints, path=str(TEMPERATURE)))["observed"]
    if observed != count:
        raise RuntimeError(f"only {observed} of {count} devices observed")
    return clients


def _workers(clients: list[Lwm2mClient]) -> list[Operation]:
    def make(client: Lwm2mClient) -> Operation:
        async def op(n: int) -> None:
            node = SingleResource(5700, 20.0 + n % 1000 / 100, ResourceType.FLOAT)
            (delivered,) = await client.notify(TEMPERATURE, node, confirmable=True)
            if not await delivered:
                raise RuntimeError("notification not acknowledged")

        return op

    return [make(c) for c in clients]


async def _server_run(url: str, clients: int, total: int) -> tuple[LoadResult, int, float]:
    async with ServerProcess.start(database_url=url) as server:
        devices: list[Lwm2mClient] = []
        try:
            devices = await _devices(server, clients)
            await run_closed_loop(_workers(devices), min(total, clients * 2))
            before = await server.call("status")
            result = await run_closed_loop(_workers(devices), total)
            after = await server.call("status")
            persisted = after["datapoints"] - before["datapoints"]
            cpu_per_notify = (after["cpu_s"] - before["cpu_s"]) / max(1, persisted)
        finally:
            for device in devices:
                await device.stop()
    return result, persisted, cpu_per_notify


async def _insert_ceiling(url: str, rows: int, batch: int) -> float:
    """Rows per second of a bare INSERT loop (a commit every `batch` rows) on a migrated copy."""
    database = Database.connect(url)
    try:
        await database.migrate()
        statement = tables.datapoints.insert()
        started = time.perf_counter()
        written = 0
        while written < rows:
            async with database.engine.begin() as conn:
                for _ in range(min(batch, rows - written)):
                    await conn.execute(
                        statement,
                        {
                            "endpoint": f"bare-{written % batch:05d}",
                            "path": "/3303/0/5700",
                            "type": "Float",
                            "value": 20.0,
                            "measured_at": None,
                            "received_at": time.time(),
                            "source": "notify",
                        },
                    )
                    written += 1
        elapsed = time.perf_counter() - started
        async with database.engine.connect() as conn:
            counted = (await conn.execute(select(func.count()).select_from(tables.datapoints))).scalar_one()
        assert counted >= rows
        return rows / elapsed
    finally:
        await database.dispose()


def _figure(
    dialect: str, measured: LoadResult, persisted: int, ceiling: float, clients: int, cpu_per_notify: float
) -> Figure:
    figure = Figure(
        benchmark="notifies",
        name=f"Notifies persisted/s, {dialect} ({clients} clients, CON, ack after commit)",
        value=measured.rate,
        unit="notify/s",
        ceiling=ceiling,
        details={
            "database": dialect,
            "clients": clients,
            "server": measured.summary(),
            "persisted": persisted,
            "acknowledged": measured.completed,
            "server_cpu_per_notify_ms": round(cpu_per_notify * 1000, 3),
            "ceiling": "bare INSERT loop, one commit per batch of `clients` rows",
        },
    )
    if dialect == "postgresql":
        figure.target = f"≥ {TARGET_PG:,.0f}/s"
        figure.target_met = measured.rate >= TARGET_PG
    return figure


async def bench_notifies(clients: int, total: int) -> list[Figure]:
    figures: list[Figure] = []
    async with _sqlite_url() as url:
        measured, persisted, cpu = await _server_run(url, clients, total)
    async with _sqlite_url() as url:
        ceiling = await _insert_ceiling(url, total, clients)
    figures.append(_figure("sqlite", measured, persisted, ceiling, clients, cpu))
    async with _postgres_url() as pg:
        if pg is None:
            figures[0].details["postgresql"] = "not reachable: figure left out"
            return figures
        measured, persisted, cpu = await _server_run(pg, clients, total)
    async with _postgres_url() as pg:
        assert pg is not None
        ceiling = await _insert_ceiling(pg, total, clients)
    figures.append(_figure("postgresql", measured, persisted, ceiling, clients, cpu))
    return figures
