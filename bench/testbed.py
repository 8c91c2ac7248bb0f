"""Start the real `Lwm2mServer` for a benchmark: SQLite in a throw-away directory, one plain UDP
listener on an ephemeral loopback port (the same way tests/conftest.py does)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings, Settings

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
        server = Lwm2mServer(bench_settings(Path(directory)))
        await server.start()
        try:
            host, port = server.listeners["default"].address
            yield server, (host, port)
        finally:
            await server.stop()
