"""The store: every read and write of the server's persistent state goes through `Store`.

Writes go through the `GroupCommitter` (each awaited write returns after its commit); reads use
their own short connections. Upserts use `INSERT ... ON CONFLICT`, which SQLite and PostgreSQL
both speak.

Reported values are the hot path: `record_values` queues its rows as a bulk item, so all the
values that arrive while a transaction commits go into the next one with one executemany for the
time series and one for the latest values. The latest value of a path only moves forward in time:
its `updated_at` is the value's measured time when the device gave one, else its received time,
and the upsert leaves a stored row alone when that row is newer (a late or replayed value still
enters the time series).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from server.domain import Registration
from server.store import tables as t
from server.store.database import Database, GroupCommitter, inserted_id

# Statements on hot paths are built once: executing them with parameters lets SQLAlchemy reuse the
# compiled form instead of generating a cache key for a new statement object every time.
_DELETE_REGISTRATION = delete(t.registrations).where(t.registrations.c.endpoint == bindparam("ep"))
_INSERT_REGISTRATION = t.registrations.insert()
_INSERT_EVENT = t.events.insert()
_INSERT_DEVICES_RETURNING_IDS = t.devices.insert().returning(t.devices.c.id, sort_by_parameter_order=True)
_INSERT_DATAPOINT = t.datapoints.insert()
# Values a device sent on its own (it waits for the ACK that follows the commit): their writes may
# wait for the group committer's gather window. Reads' values have an API caller waiting.
DEFERRABLE_SOURCES = frozenset({"notify", "send"})


def _latest_upsert(insert: Any) -> Any:
    """`INSERT ... ON CONFLICT (endpoint, path) DO UPDATE ... WHERE new time >= stored time`."""
    ins = insert(t.latest_values)
    return ins.on_conflict_do_update(
        index_elements=["endpoint", "path"],
        set_={"type": ins.excluded.type, "value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
        where=ins.excluded.updated_at >= t.latest_values.c.updated_at,
    )


_UPSERT_LATEST = {"sqlite": _latest_upsert(sqlite.insert), "postgresql": _latest_upsert(postgresql.insert)}


def _write_registrations(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Replace the registrations of the rows' endpoints (bulk writer of `Store.save_registration`).
    Of several rows for one endpoint in the same transaction the last one wins, as if each had
    been written alone in order."""
    latest = {row["endpoint"]: row for row in rows}
    conn.execute(_DELETE_REGISTRATION, [{"ep": endpoint} for endpoint in latest])
    conn.execute(_INSERT_REGISTRATION, list(latest.values()))


def _insert_devices(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert device rows and return their ids in the rows' order (bulk writer of
    `ProvisioningRepository.insert_device`); rows with other columns go in their own statement."""
    ids: list[int] = [0] * len(rows)
    shapes: dict[tuple[str, ...], list[int]] = {}
    for position, row in enumerate(rows):
        shapes.setdefault(tuple(row), []).append(position)
    for positions in shapes.values():
        result = conn.execute(_INSERT_DEVICES_RETURNING_IDS, [rows[p] for p in positions])
        for position, (device_id,) in zip(positions, result, strict=True):
            ids[position] = device_id
    return ids


def _insert_or_find_devices(conn: Connection, rows: list[dict[str, Any]]) -> list[int | dict[str, Any]]:
    """Bulk writer of `ProvisioningRepository.insert_or_find_device`: insert the rows whose endpoint
    has no device yet (`ON CONFLICT (endpoint) DO NOTHING`), in the same transaction find the rows
    of the endpoints that have one. Per row: the new id, or the existing row (as a dict)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    devices = t.devices
    first: dict[str, dict[str, Any]] = {}  # the first row of each endpoint is the one inserted
    for row in rows:
        first.setdefault(row["endpoint"], row)
    statement = (  # the rows have the same columns (`Provisioning._insert_or_find`)
        insert(devices)
        .values(list(first.values()))
        .on_conflict_do_nothing(index_elements=[devices.c.endpoint])
        .returning(devices.c.id, devices.c.endpoint)
    )
    new_ids: dict[str, int] = {endpoint: device_id for device_id, endpoint in conn.execute(statement)}
    found: dict[str, dict[str, Any]] = {}
    taken = [endpoint for endpoint in first if endpoint not in new_ids]
    if taken:
        for existing in conn.execute(select(devices).where(devices.c.endpoint.in_(taken))):
            found[existing.endpoint] = dict(existing._mapping)
    results: list[int | dict[str, Any]] = []
    for row in rows:
        endpoint = row["endpoint"]
        if endpoint not in new_ids:
            results.append(found[endpoint])
        elif row is first[endpoint]:
            results.append(new_ids[endpoint])
        else:  # a later row for the same endpoint in the batch finds the first one's device
            results.append({**first[endpoint], "id": new_ids[endpoint]})
    return results


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One reported value, ready to store: path text, resource type name, JSON-safe value."""

    path: str
    type: str
    value: Any
    measured_at: float | None = None


@dataclass(frozen=True, slots=True)
class Datapoint:
    id: int
    endpoint: str
    path: str
    type: str
    value: Any
    measured_at: float | None
    received_at: float
    source: str


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    id: int
    endpoint: str
    paths: list[str]
    composite: bool
    content_format: int | None
    attributes: dict[str, Any]
    active: bool
    created_at: float
    # The CoAP token of the live observation (hex), kept for a cluster's other nodes (server.cluster).
    token: str | None = None


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: int
    endpoint: str
    operation: str
    params: dict[str, Any]
    status: str
    result: Any
    created_at: float
    completed_at: float | None


class Store:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine
        self.writer = GroupCommitter(database.engine)
        self._event_rows: list[dict[str, Any]] = []
        self._upsert_latest = _UPSERT_LATEST["postgresql" if database.dialect == "postgresql" else "sqlite"]

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        database = Database.connect(url)
        if migrate:
            await database.migrate()
        store = cls(database)
        store.writer.start()
        return store

    async def close(self) -> None:
        await self.writer.close()
        await self.database.dispose()

    # --- registrations -------------------------------------------------------------------------

    async def save_registration(self, reg: Registration) -> None:
        """Insert or replace the registration of `reg.endpoint` (a re-registration replaces)."""
        await self.writer.run_bulk(_write_registrations, reg.as_row(), deferrable=True)

    async def delete_registration(self, endpoint: str, registration_id: str | None = None) -> None:
        cond = t.registrations.c.endpoint == endpoint
        if registration_id is not None:
            cond = and_(cond, t.registrations.c.registration_id == registration_id)

        def op(conn: Connection) -> None:
            conn.execute(delete(t.registrations).where(cond))

        await self.writer.run(op)

    async def load_registrations(self) -> list[Registration]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.registrations))
            return [Registration.from_row(r._mapping) for r in rows]

    # --- reported values -----------------------------------------------------------------------

    async def record_values(
        self, endpoint: str, values: Sequence[StoredValue], source: str, received_at: float | None = None
    ) -> None:
        """Append every value to the time series and update the latest value of each path (unless
        the stored one is newer); returns after the commit that holds them."""
        if not values:
            return
        now = received_at if received_at is not None else time.time()
        deferrable = source in DEFERRABLE_SOURCES
        await self.writer.run_bulk(self._write_values, (endpoint, values, source, now), deferrable=deferrable)

    def _write_values(
        self, conn: Connection, items: list[tuple[str, Sequence[StoredValue], str, float]]
    ) -> None:
        points: list[dict[str, Any]] = []
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for endpoint, values, source, received_at in items:
            for v in values:
                points.append(
                    {
                        "endpoint": endpoint,
                        "path": v.path,
                        "type": v.type,
                        "value": v.value,
                        "measured_at": v.measured_at,
                        "received_at": received_at,
                        "source": source,
                    }
                )
                at = v.measured_at if v.measured_at is not None else received_at
                key = (endpoint, v.path)
                known = latest.get(key)
                if known is None or at >= known["updated_at"]:
                    latest[key] = {
                        "endpoint": endpoint,
                        "path": v.path,
                        "type": v.type,
                        "value": v.value,
                        "updated_at": at,
                    }
        conn.execute(_INSERT_DATAPOINT, points)
        conn.execute(self._upsert_latest, list(latest.values()))

    async def latest_values(self, endpoint: str) -> dict[str, dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.latest_values).where(t.latest_values.c.endpoint == endpoint))
            return {r.path: {"type": r.type, "value": r.value, "updated_at": r.updated_at} for r in rows}

    async def datapoints(
        self,
        endpoint: str,
        path: str | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        after_id: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Datapoint]:
        c = t.datapoints.c
        conds = [c.endpoint == endpoint]
        if path is not None:
            conds.append(c.path == path)
        if start is not None:
            conds.append(c.received_at >= start)
        if end is not None:
            conds.append(c.received_at <= end)
        if after_id is not None:
            conds.append(c.id > after_id)
        order = c.id.desc() if newest_first else c.id
        stmt = select(t.datapoints).where(and_(*conds)).order_by(order).limit(limit)
        async with self.engine.connect() as conn:
            rows = await conn.execute(stmt)
            return [Datapoint(**r._mapping) for r in rows]

    async def count_datapoints(self, endpoint: str | None = None) -> int:
        stmt = select(func.count()).select_from(t.datapoints)
        if endpoint is not None:
            stmt = stmt.where(t.datapoints.c.endpoint == endpoint)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    # --- observations --------------------------------------------------------------------------

    async def add_observation(
        self,
        endpoint: str,
        paths: Iterable[str],
        *,
        composite: bool,
        content_format: int | None,
        attributes: dict[str, Any],
    ) -> int:
        values = {
            "endpoint": endpoint,
            "paths": list(paths),
            "composite": composite,
            "content_format": content_format,
            "attributes": attributes,
            "active": True,
            "created_at": time.time(),
        }

        def op(conn: Connection) -> int:
            return inserted_id(conn.execute(t.observations.insert().values(**values)))

        observation_id: int = await self.writer.run(op)
        return observation_id

    async def deactivate_observations(self, endpoint: str, observation_id: int | None = None) -> None:
        cond = t.observations.c.endpoint == endpoint
        if observation_id is not None:
            cond = and_(cond, t.observations.c.id == observation_id)

        def op(conn: Connection) -> None:
            conn.execute(update(t.observations).where(cond).values(active=False))

        await self.writer.run(op)

    async def observations(
        self, endpoint: str | None = None, *, active_only: bool = True
    ) -> list[ObservationRecord]:
        stmt = select(t.observations)
        if endpoint is not None:
            stmt = stmt.where(t.observations.c.endpoint == endpoint)
        if active_only:
            stmt = stmt.where(t.observations.c.active.is_(True))
        async with self.engine.connect() as conn:
            rows = await conn.execute(stmt.order_by(t.observations.c.id))
            return [ObservationRecord(**r._mapping) for r in rows]

    # --- queue mode: pending requests ----------------------------------------------------------

    async def enqueue_request(self, endpoint: str, operation: str, params: dict[str, Any]) -> int:
        values = {
            "endpoint": endpoint,
            "operation": operation,
            "params": params,
            "status": "queued",
            "created_at": time.time(),
        }

        def op(conn: Connection) -> int:
            return inserted_id(conn.execute(t.pending_requests.insert().values(**values)))

        request_id: int = await self.writer.run(op)
        return request_id

    async def pending_requests(
        self, endpoint: str | None = None, status: str | None = "queued"
    ) -> list[PendingRequest]:
        stmt = select(t.pending_requests)
        if endpoint is not None:
            stmt = stmt.where(t.pending_requests.c.endpoint == endpoint)
        if status is not None:
            stmt = stmt.where(t.pending_requests.c.status == status)
        async with self.engine.connect() as conn:
            rows = await conn.execute(stmt.order_by(t.pending_requests.c.id))
            return [PendingRequest(**r._mapping) for r in rows]

    async def complete_request(self, request_id: int, status: str, result: Any) -> None:
        def op(conn: Connection) -> None:
            conn.execute(
                update(t.pending_requests)
                .where(t.pending_requests.c.id == request_id)
                .values(status=status, result=result, completed_at=time.time())
            )

        await self.writer.run(op)

    # --- event log -----------------------------------------------------------------------------

    def log_event(self, kind: str, endpoint: str | None, data: dict[str, Any], at: float) -> None:
        """Append to the event log without waiting for the commit. Events that arrive while a
        transaction commits are written together, with one executemany, in the next one."""
        self._event_rows.append({"time": at, "endpoint": endpoint, "kind": kind, "data": data})
        if len(self._event_rows) == 1:
            self.writer.submit(self._write_events)

    def _write_events(self, conn: Connection) -> None:
        rows, self._event_rows = self._event_rows, []
        if rows:
            conn.execute(_INSERT_EVENT, rows)

    async def events(self, endpoint: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(t.events).order_by(t.events.c.id.desc()).limit(limit)
        if endpoint is not None:
            stmt = stmt.where(t.events.c.endpoint == endpoint)
        async with self.engine.connect() as conn:
            rows = await conn.execute(stmt)
            return [dict(r._mapping) for r in rows]


# --- products and provisioned devices (used by server.services.provisioning) ---------------------


class ProvisioningRepository:
    """Rows of `products` and `devices`, as dicts (the service keeps its own typed index)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _write(self, statement: Any) -> Any:
        def op(conn: Connection) -> Any:
            return conn.execute(statement)

        return await self.store.writer.run(op)

    async def _rows(self, statement: Any) -> list[dict[str, Any]]:
        async with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(statement)]

    async def insert_product(self, row: dict[str, Any]) -> None:
        await self._write(t.products.insert().values(**row))

    async def update_product(self, product_id: str, values: dict[str, Any]) -> None:
        await self._write(update(t.products).where(t.products.c.id == product_id).values(**values))

    async def delete_product(self, product_id: str) -> None:
        await self._write(delete(t.products).where(t.products.c.id == product_id))

    async def products(self) -> list[dict[str, Any]]:
        return await self._rows(select(t.products).order_by(t.products.c.created_at))

    async def insert_device(self, row: dict[str, Any]) -> int:
        """Insert a device row and return its id; devices first seen together (a burst of new
        endpoints) are inserted with one statement."""
        return int(await self.store.writer.run_bulk(_insert_devices, row))

    async def insert_or_find_device(self, row: dict[str, Any]) -> int | dict[str, Any]:
        """Insert a device row with an endpoint unless a device of that endpoint is stored (another
        cluster node stored it): the new id, or the stored row. One statement per burst."""
        result: int | dict[str, Any] = await self.store.writer.run_bulk(_insert_or_find_devices, row)
        return result

    async def update_device(self, device_id: int, values: dict[str, Any]) -> None:
        await self._write(update(t.devices).where(t.devices.c.id == device_id).values(**values))

    async def delete_device(self, device_id: int) -> None:
        await self._write(delete(t.devices).where(t.devices.c.id == device_id))

    async def devices(self) -> list[dict[str, Any]]:
        return await self._rows(select(t.devices).order_by(t.devices.c.id))
