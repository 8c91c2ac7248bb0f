"""Fixtures with real parts: a real server on loopback UDP, real SQLite files, a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FsPath
from typing import Any

import pytest

from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings, Settings
from tests.support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, missing, postgres_available


@pytest.fixture
def sqlite_url(tmp_path: FsPath) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/testbed.db"


@asynccontextmanager
async def _postgres_database() -> AsyncIterator[str]:
    import asyncpg

    if not postgres_available():
        missing(f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}")
    name = f"testbed_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(
            host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database="postgres"
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with _postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: FsPath) -> AsyncIterator[str]:
    """Each storage test runs on SQLite and on the local PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/testbed.db"
        return
    async with _postgres_database() as url:
        yield url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "listeners": [ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None)],
        "request_timeout": 5.0,
        "expiry_sweep_interval": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


ServerFactory = Callable[..., Any]


@pytest.fixture
async def server_factory(sqlite_url: str) -> AsyncIterator[ServerFactory]:
    """Start servers on ephemeral ports; all are stopped at the end of the test."""
    started: list[Lwm2mServer] = []

    async def start(database_url: str | None = None, **overrides: Any) -> Lwm2mServer:
        server = Lwm2mServer(make_settings(database_url or sqlite_url, **overrides))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.started:
            await server.stop()


@pytest.fixture
async def server(server_factory: ServerFactory) -> Lwm2mServer:
    result: Lwm2mServer = await server_factory()
    return result
