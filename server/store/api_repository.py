"""Rows of the northbound API (migration 0004): OneNET cached commands, HTTP push receivers and
the push delivery log. Writes are synchronous operations run by the store's group committer;
reads use short connections, as in `server.store.repository`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from server.store import tables as t
from server.store.database import inserted_id
from server.store.repository import Store


class ApiRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _rows(self, statement: Any) -> list[dict[str, Any]]:
        async with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(statement)]

    # --- offline commands ----------------------------------------------------------------------

    async def insert_command(self, row: dict[str, Any]) -> None:
        def op(conn: Connection) -> None:
            conn.execute(t.offline_commands.insert(), row)

        await self.store.writer.run(op)

    async def update_command(self, uuid: str, values: dict[str, Any]) -> None:
        def op(conn: Connection) -> None:
            conn.execute(update(t.offline_commands).where(t.offline_commands.c.uuid == uuid).values(**values))

        await self.store.writer.run(op)

    async def update_commands_of(self, device_id: int, status: int, values: dict[str, Any]) -> int:
        c = t.offline_commands.c

        def op(conn: Connection) -> int:
            result = conn.execute(
                update(t.offline_commands)
                .where(and_(c.device_id == device_id, c.send_status == status))
                .values(**values)
            )
            return int(result.rowcount or 0)

        count: int = await self.store.writer.run(op)
        return count

    async def command(self, uuid: str) -> dict[str, Any] | None:
        rows = await self._rows(select(t.offline_commands).where(t.offline_commands.c.uuid == uuid))
        return rows[0] if rows else None

    async def commands(
        self,
        *,
        device_id: int | None = None,
        status: int | None = None,
        start: float | None = None,
        end: float | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        c = t.offline_commands.c
        conds: list[Any] = []
        if device_id is not None:
            conds.append(c.device_id == device_id)
        if status is not None:
            conds.append(c.send_status == status)
        if start is not None:
            conds.append(c.created_at >= start)
        if end is not None:
            conds.append(c.created_at <= end)
        stmt = select(t.offline_commands).where(and_(*conds)) if conds else select(t.offline_commands)
        stmt = stmt.order_by(c.created_at.desc() if newest_first else c.created_at).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return await self._rows(stmt)

    async def delete_commands_of(self, device_id: int) -> None:
        def op(conn: Connection) -> None:
            conn.execute(delete(t.offline_commands).where(t.offline_commands.c.device_id == device_id))

        await self.store.writer.run(op)

    # --- push receivers ------------------------------------------------------------------------

    async def insert_target(self, row: dict[str, Any]) -> int:
        def op(conn: Connection) -> int:
            return inserted_id(conn.execute(t.push_targets.insert(), row))

        target_id: int = await self.store.writer.run(op)
        return target_id

    async def delete_target(self, target_id: int) -> None:
        def op(conn: Connection) -> None:
            conn.execute(delete(t.push_targets).where(t.push_targets.c.id == target_id))

        await self.store.writer.run(op)

    async def targets(self) -> list[dict[str, Any]]:
        return await self._rows(select(t.push_targets).order_by(t.push_targets.c.id))

    async def insert_delivery(self, row: dict[str, Any]) -> None:
        def op(conn: Connection) -> None:
            conn.execute(t.push_deliveries.insert(), row)

        await self.store.writer.run(op)

    def submit_delivery(self, row: dict[str, Any]) -> None:
        """Queue a delivery record without waiting for its commit (a push lane moves on)."""

        def op(conn: Connection) -> None:
            conn.execute(t.push_deliveries.insert(), row)

        self.store.writer.submit(op)

    async def deliveries(self, target_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(t.push_deliveries)
        if target_id is not None:
            stmt = stmt.where(t.push_deliveries.c.target_id == target_id)
        return await self._rows(stmt.order_by(t.push_deliveries.c.id.desc()).limit(limit))
