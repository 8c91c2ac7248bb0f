"""The FastAPI application: OneNET-compatible routes at the root (as on api.heclouds.com), the
native API and live events under /api/v1.

    app = create_app(server, module_host=host)          # server already started
    handle = await serve_http(app, "127.0.0.1", 8080)

The app starts the HTTP push and cached-command services in its lifespan (and stops them); the
LwM2M server itself is started and stopped by its owner. Request bodies larger than
`Settings.max_payload` are refused with 413 before they are read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api import errors
from server.api.errors import ApiError
from server.api.modules import ModuleHost
from server.lwm2m_server import Lwm2mServer
from server.services.offline_commands import OfflineCommands
from server.services.push import PushService


class BodyLimit:
    """Refuse request bodies above `limit` bytes (Content-Length or counted while streaming)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(errors.INVALID_PARAMETER, "request body too large", 413)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        body = b'{"errno":5108,"error":"request body too large"}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(
    server: Lwm2mServer,
    *,
    module_host: ModuleHost | None = None,
    push: PushService | None = None,
    offline: OfflineCommands | None = None,
) -> FastAPI:
    """The API of `server`. `push` and `offline` default to fresh services."""
    from server.api.events import router as events_router
    from server.api.modules import router as modules_router
    from server.api.onenet import router as onenet_router
    from server.api.v1 import router as v1_router

    push_service = push if push is not None else PushService(server)
    offline_service = offline if offline is not None else OfflineCommands(server, push_service)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await push_service.start()
        await offline_service.start()
        try:
            yield
        finally:
            await offline_service.stop()
            await push_service.stop()

    app = FastAPI(
        title="lwm2m-testbed API",
        version="1.0",
        description="OneNET-compatible northbound API and the native /api/v1 of the testbed.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.module_host = module_host
    app.state.push = push_service
    app.state.offline = offline_service
    errors.install(app)
    app.include_router(onenet_router.router, tags=["onenet"])
    app.include_router(v1_router.router, prefix="/api/v1", tags=["v1"])
    app.include_router(events_router, prefix="/api/v1", tags=["events"])
    app.include_router(modules_router, prefix="/api/v1", tags=["modules"])
    app.add_middleware(BodyLimit, limit=server.settings.max_payload)  # type: ignore[arg-type]
    return app


def services(app: Any) -> tuple[PushService, OfflineCommands]:
    return app.state.push, app.state.offline
