"""Rows of firmware over the air (migration 0007): packages, update tasks and their devices.
Writes run on the store's group committer; reads use short connections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from server.store import tables as t
from server.store.database import inserted_id
from server.store.repository import Store


class FotaRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _rows(self, statement: Any) -> list[dict[str, Any]]:
        async with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(statement)]

    # --- firmware packages ---------------------------------------------------------------------

    async def insert_firmware(self, row: dict[str, Any]) -> int:
        def op(conn: Connection) -> int:
            return inserted_id(conn.execute(t.firmware.insert(), row))

        firmware_id: int = await self.store.writer.run(op)
        return firmware_id

    async def firmware(self) -> list[dict[str, Any]]:
        return await self._rows(select(t.firmware).order_by(t.firmware.c.id))

    async def delete_firmware(self, firmware_id: int) -> None:
        def op(conn: Connection) -> None:
            conn.execute(delete(t.firmware).where(t.firmware.c.id == firmware_id))

        await self.store.writer.run(op)

    # --- tasks ---------------------------------------------------------------------------------

    async def insert_task(self, row: dict[str, Any], devices: list[dict[str, Any]]) -> int:
        def op(conn: Connection) -> int:
            task_id = inserted_id(conn.execute(t.fota_tasks.insert(), row))
            if devices:
                conn.execute(t.fota_devices.insert(), [{**d, "task_id": task_id} for d in devices])
            return task_id

        task_id: int = await self.store.writer.run(op)
        return task_id

    async def update_task(self, task_id: int, values: dict[str, Any]) -> None:
        def op(conn: Connection) -> None:
            conn.execute(update(t.fota_tasks).where(t.fota_tasks.c.id == task_id).values(**values))

        await self.store.writer.run(op)

    async def update_device(self, task_id: int, endpoint: str, values: dict[str, Any]) -> None:
        c = t.fota_devices.c

        def op(conn: Connection) -> None:
            conn.execute(
                update(t.fota_devices).where(c.task_id == task_id, c.endpoint == endpoint).values(**values)
            )

        await self.store.writer.run(op)

    async def tasks(self) -> list[dict[str, Any]]:
        return await self._rows(select(t.fota_tasks).order_by(t.fota_tasks.c.id))

    async def devices(self) -> list[dict[str, Any]]:
        return await self._rows(
            select(t.fota_devices).order_by(t.fota_devices.c.task_id, t.fota_devices.c.endpoint)
        )
