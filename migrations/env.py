"""Alembic environment. Runs on a connection handed in by the application (the usual case:
`server.store.database.Database.migrate`) or on the URL from the settings (`alembic upgrade head`)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from server.store.tables import metadata

config = context.config


def run_on_connection(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_on_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(run_on_connection)
        await conn.commit()
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_on_connection(connection)
else:
    from server.settings import Settings

    asyncio.run(run_on_url(config.get_main_option("sqlalchemy.url") or Settings().database_url))
