"""Run an ASGI app with uvicorn inside the current event loop (beside the LwM2M server).

handle = await serve_http(create_app(server), "127.0.0.1", 0)
handle.port            # the actual port
await handle.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class HttpHandle:
    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 10)


async def serve_http(app: Any, host: str, port: int) -> HttpHandle:
    """Start serving `app` on host:port (0 picks a free port); returns once it listens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it Nagle's algorithm and delayed ACKs add ~40 ms
    # to every small response.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    actual = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http-{host}:{actual}")
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise RuntimeError("HTTP server stopped during start-up")
        await asyncio.sleep(0.01)
    return HttpHandle(server, task, host, actual)
