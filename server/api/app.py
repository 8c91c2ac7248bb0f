"""The FastAPI application: OneNET-compatible routes at the root (as on api.heclouds.com), the
native API and live events under /api/v1.

    app = create_app(server, module_host=host)          # server already started
    handle = await serve_http(app, "127.0.0.1", 8080)

The app starts the HTTP push and cached-command services in its lifespan (and stops them); the
LwM2M server itself is started and stopped by its owner. Request bodies larger than
`Settings.max_payload` are refused with 413 before they are read.

Failed key attempts are limited per client address, per key prefix and in all (`KeyAttemptLimit`,
counts kept by `server.api.deps.KeyAttemptLimiter`): a request that carries a key (header `api-key` or query
`api_key`) and is answered 401, or a WebSocket closed with 4401, counts as one failure; after
`Settings.auth_failure_limit` failures within `Settings.auth_failure_window` seconds of one address
(or with keys of one prefix) every request of that address (or with a key of that prefix) that
carries a key is answered 429 `{"errno": 1, "error": "auth failed: too many failed key attempts"}`
with `Retry-After` (WebSockets: closed with 4429) until the window passes; after
`Settings.auth_failure_global_limit` failures of all addresses together, every request that
carries a key is (rotating source addresses do not escape). Requests without a key are not
counted (they name no key to guess). The errno stays 1 (auth failed) so that OneNET clients treat it as a key problem.
The address is the TCP peer: behind a reverse proxy all callers share the proxy's address.

A WebSocket route that closes before accepting would make the server refuse the handshake with
a bare HTTP 403; `KeyAttemptLimit` accepts first, so the client sees the route's close code
(4401 unknown key, 4404 unknown module, 4429 blocked).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api import errors
from server.api.deps import KeyAttemptLimiter
from server.api.docs import install_docs
from server.api.errors import ApiError
from server.api.modules import ModuleHost
from server.api.onenet.requests import OneNetRequests
from server.lwm2m_server import Lwm2mServer
from server.services.offline_commands import OfflineCommands
from server.services.push import PushService


class BodyLimit:
    """Refuse request bodies above `limit` bytes (Content-Length or counted while streaming)."""

    def __init__(self, app: ASGIApp, limit: int, paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        # Paths with a limit of their own (firmware uploads: `Settings.firmware_max_size`).
        self.paths = paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
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


CLOSE_UNKNOWN_KEY = 4401
CLOSE_BLOCKED = 4429
_BLOCKED_BODY = b'{"errno":1,"error":"auth failed: too many failed key attempts"}'


def key_of(scope: Scope) -> str | None:
    """The key the request names (header `api-key`, else query `api_key`), None without one. An
    `authorization` token counts as `<product id>:token` (from its `res=products/{pid}`), so its
    failures fall in that product's bucket, not in one bucket shared by every token."""
    for name, value in scope.get("headers", []):
        if name == b"api-key" and value:
            return bytes(value).decode("latin-1")
        if name == b"authorization" and value:
            fields = parse_qs(bytes(value).decode("latin-1"))
            return fields.get("res", [""])[0].rpartition("/")[2] + ":token"
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return next((k for k in query.get("api_key", []) if k), None)


class KeyAttemptLimit:
    """Count failed key attempts per client address and answer 429 (HTTP) or close 4429
    (WebSocket) while an address is blocked; see the module docstring."""

    def __init__(self, app: ASGIApp, limiter: KeyAttemptLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        key = key_of(scope)
        keyed = key is not None
        retry_after = self.limiter.retry_after(address, key) if keyed else None
        if scope["type"] == "http":
            if retry_after is not None:
                await self._refuse_http(send, retry_after)
                return
            await self.app(scope, receive, self._watch_http(scope, send, address, key))
            return
        if retry_after is not None:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send(
                {"type": "websocket.close", "code": CLOSE_BLOCKED, "reason": "too many failed key attempts"}
            )
            return
        await self.app(scope, receive, self._watch_websocket(send, address, key))

    def _watch_http(self, scope: Scope, send: Send, address: str, key: str | None) -> Send:
        async def watched(message: Message) -> None:
            # OneNET routes answer a refused key with HTTP 200 and errno 1 (server.api.errors):
            # the error handler marks the request instead.
            refused = message.get("status") == 401 or scope.get("state", {}).get("auth_failed")
            if key is not None and message["type"] == "http.response.start" and refused:
                self.limiter.failed(address, key)
            await send(message)

        return watched

    def _watch_websocket(self, send: Send, address: str, key: str | None) -> Send:
        accepted = False

        async def watched(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
            elif message["type"] == "websocket.close":
                if key is not None and message.get("code") == CLOSE_UNKNOWN_KEY:
                    self.limiter.failed(address, key)
                if not accepted:
                    accepted = True
                    await send({"type": "websocket.accept"})
            await send(message)

        return watched

    async def _refuse_http(self, send: Send, retry_after: float) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BLOCKED_BODY)).encode()),
                    (b"retry-after", str(max(1, math.ceil(retry_after))).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BLOCKED_BODY})


def create_app(
    server: Lwm2mServer,
    *,
    module_host: ModuleHost | None = None,
    push: PushService | None = None,
    offline: OfflineCommands | None = None,
) -> FastAPI:
    """The API of `server`. `push` and `offline` default to fresh services."""
    from server.api.cluster import router as cluster_router
    from server.api.events import router as events_router
    from server.api.modules import router as modules_router
    from server.api.onenet import router as onenet_router
    from server.api.v1 import firmware as firmware_routes
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
        docs_url=None,  # served offline by server.api.docs
        redoc_url=None,
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
    app.include_router(firmware_routes.router, prefix="/api/v1", tags=["firmware"])
    app.include_router(firmware_routes.public_router)
    app.include_router(cluster_router, prefix="/api/v1", tags=["cluster"])
    install_docs(app)
    # A multipart upload carries its form fields too: a little more than the package itself.
    upload_limit = server.settings.firmware_max_size + 64 * 1024
    app.add_middleware(
        BodyLimit,
        limit=server.settings.max_payload,
        paths={"/api/v1/firmware": upload_limit},
    )
    limiter = KeyAttemptLimiter(
        server.settings.auth_failure_limit,
        server.settings.auth_failure_window,
        global_limit=server.settings.auth_failure_global_limit,
    )
    app.state.key_attempts = limiter
    app.add_middleware(KeyAttemptLimit, limiter=limiter)
    app.add_middleware(OneNetRequests)
    return app


def services(app: Any) -> tuple[PushService, OfflineCommands]:
    return app.state.push, app.state.offline
