"""A database of its own for each private cloud.

SQLite: the caller's file (a fresh temporary directory per cloud). PostgreSQL: given a URL of a
server the user may create databases on, each cloud creates `lwm2m_testbed_<random>` next to the
URL's database and drops it when it stops, so clouds of parallel workers and earlier runs never
see each other's devices.
"""

from __future__ import annotations

import secrets

from sqlalchemy.engine import make_url


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


async def _admin_execute(url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_postgres_database(url: str) -> str:
    """Create a fresh database on the server of `url`; returns its URL."""
    name = f"lwm2m_testbed_{secrets.token_hex(6)}"
    await _admin_execute(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    await _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
