"""The cluster's rows in the shared database: endpoint owners and node heartbeats."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.engine import Connection

from server.domain import Registration
from server.store import tables as t
from server.store.database import GroupCommitter
from server.store.repository import ObservationRecord, Store


@dataclass(frozen=True, slots=True)
class NodeRow:
    node_id: str
    http_url: str | None
    coap: list[str]
    started_at: float
    heartbeat_at: float


# One statement per batch of claims, the same text whatever the batch's size (prepared once): the
# previous owners (locked), then the upsert of the new ones.
_CLAIM = text(
    """
    WITH previous AS (
        SELECT endpoint, node_id FROM registration_owners
        WHERE endpoint = ANY(CAST(:endpoints AS varchar[])) FOR UPDATE
    ), claimed AS (
        INSERT INTO registration_owners (endpoint, node_id, registration_id, claimed_at)
        SELECT * FROM unnest(
            CAST(:endpoints AS varchar[]), CAST(:nodes AS varchar[]),
            CAST(:registrations AS varchar[]), CAST(:times AS double precision[])
        )
        ON CONFLICT (endpoint) DO UPDATE SET node_id = excluded.node_id,
            registration_id = excluded.registration_id, claimed_at = excluded.claimed_at
        RETURNING endpoint
    )
    SELECT previous.endpoint, previous.node_id FROM previous JOIN claimed USING (endpoint)
    """
)


def _write_claims(conn: Connection, rows: list[dict[str, Any]]) -> list[str | None]:
    """Bulk writer of `ClusterRepository.claim`: one result (the previous owner) per row. Of
    several claims of one endpoint in the batch, each follows the one before it."""
    latest = {row["endpoint"]: row for row in rows}
    now = time.time()
    found = conn.execute(
        _CLAIM,
        {
            "endpoints": list(latest),
            "nodes": [row["node_id"] for row in latest.values()],
            "registrations": [row["registration_id"] for row in latest.values()],
            "times": [now] * len(latest),
        },
    )
    previous: dict[str, str | None] = {endpoint: node for endpoint, node in found}
    results = []
    for row in rows:
        results.append(previous.get(row["endpoint"]))
        previous[row["endpoint"]] = row["node_id"]
    return results


_SET_TOKEN = (
    update(t.observations).where(t.observations.c.id == bindparam("oid")).values(token=bindparam("token"))
)


def _write_tokens(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Bulk writer of `ClusterRepository.remember_token`."""
    conn.execute(_SET_TOKEN, rows)


class ClusterRepository:
    """Owners and heartbeats. Their writes commit on the repository's own `GroupCommitter`, beside
    the store's: a registration's acknowledgement waits for the registration's commit only, never
    behind the cluster's bookkeeping (ownership is claimed after the registration committed)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Ownership is soft state (the next uplink through any node claims it again): its commits
        # need not wait for the WAL flush.
        self.writer = GroupCommitter(store.engine, durable=False)

    def start(self) -> None:
        self.writer.start()

    async def close(self) -> None:
        await self.writer.close()

    async def claim(self, endpoint: str, node_id: str, registration_id: str) -> str | None:
        """Record `node_id` as the owner of `endpoint`; returns the previous owner, if any. The
        claims of one transaction are written together, in one statement."""
        row = {"endpoint": endpoint, "node_id": node_id, "registration_id": registration_id}
        result: str | None = await self.writer.run_bulk(_write_claims, row, deferrable=True)
        return result

    async def release(self, endpoint: str, node_id: str) -> None:
        """Forget the owner of an endpoint whose registration ended on `node_id`."""
        owners = t.registration_owners

        def op(conn: Connection) -> None:
            conn.execute(delete(owners).where(owners.c.endpoint == endpoint, owners.c.node_id == node_id))

        await self.writer.run(op)

    async def owner_of(self, endpoint: str) -> str | None:
        owners = t.registration_owners
        async with self.store.engine.connect() as conn:
            found = await conn.execute(select(owners.c.node_id).where(owners.c.endpoint == endpoint))
            return found.scalar()

    async def owners(self) -> dict[str, str]:
        """Every recorded owner: endpoint -> node (one query, read when a node joins)."""
        owners = t.registration_owners
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(owners.c.endpoint, owners.c.node_id))
            return {endpoint: node for endpoint, node in rows}

    async def registration(self, registration_id: str) -> Registration | None:
        regs = t.registrations
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(regs).where(regs.c.registration_id == registration_id))
            row = rows.first()
        return Registration.from_row(row._mapping) if row is not None else None

    async def registration_of(self, endpoint: str) -> Registration | None:
        regs = t.registrations
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(regs).where(regs.c.endpoint == endpoint))
            row = rows.first()
        return Registration.from_row(row._mapping) if row is not None else None

    async def device_rows(self, endpoints: list[str]) -> list[dict[str, Any]]:
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(t.devices).where(t.devices.c.endpoint.in_(endpoints)))
            return [dict(row._mapping) for row in rows]

    # --- observation tokens ------------------------------------------------------------------------

    async def remember_token(self, observation_id: int, token: bytes) -> None:
        """Keep the token of a live observation beside its row, for nodes that start later (the
        tokens of one transaction in one executemany)."""
        await self.writer.run_bulk(
            _write_tokens, {"oid": observation_id, "token": token.hex()}, deferrable=True
        )

    async def observation_tokens(self) -> list[ObservationRecord]:
        """The active observations whose token is known."""
        observations = t.observations
        query = select(observations).where(observations.c.active.is_(True), observations.c.token.is_not(None))
        async with self.store.engine.connect() as conn:
            return [ObservationRecord(**row._mapping) for row in await conn.execute(query)]

    # --- nodes -----------------------------------------------------------------------------------

    async def heartbeat(self, node_id: str, http_url: str | None, coap: list[str], started_at: float) -> None:
        nodes = t.cluster_nodes
        now = time.time()

        def op(conn: Connection) -> None:
            done = conn.execute(
                update(nodes)
                .where(nodes.c.node_id == node_id)
                .values(http_url=http_url, coap=coap, started_at=started_at, heartbeat_at=now)
            )
            if done.rowcount == 0:
                conn.execute(
                    nodes.insert().values(
                        node_id=node_id, http_url=http_url, coap=coap, started_at=started_at, heartbeat_at=now
                    )
                )

        await self.writer.run(op)

    async def nodes(self) -> list[NodeRow]:
        nodes = t.cluster_nodes
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(nodes).order_by(nodes.c.node_id))
            return [NodeRow(**row._mapping) for row in rows]

    async def owned_counts(self) -> dict[str, int]:
        owners = t.registration_owners
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(owners.c.node_id, func.count()).group_by(owners.c.node_id))
            return {row[0]: int(row[1]) for row in rows}
