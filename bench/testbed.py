"""Start the real `Lwm2mServer` for a benchmark through `testbed.cloud.Cloud`: SQLite in a
throw-away directory, one plain UDP listener on an ephemeral loopback port (the same way
tests/conftest.py does)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings, Settings
from testbed.cloud import Cloud

Address = tuple[str, int]


def bench_settings(directory: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory}/bench.db",
        listeners=[ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None)],
        request_timeout=10.0,
    )


@asynccontextmanager
async def running_server() -> AsyncIterator[tuple[Lwm2mServer, Address]]:
    # Per-request log lines would measure the logging system, not the server.
    logging.getLogger("server").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="lwm2m-bench-") as directory:
        async with Cloud(bench_settings(Path(directory))) as cloud:
            host, port = cloud.server.listeners["default"].address
            yield cloud.server, (host, port)
