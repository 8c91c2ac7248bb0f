"""Live events: Server-Sent Events (`GET /api/v1/events`) and a WebSocket (`/api/v1/events/ws`).

Each SSE message is `event: <kind>` + `data: <Event JSON>`; the WebSocket sends the same JSON as
text frames. Filters: `device=<endpoint>`, `kinds=registration,notification` (kind prefixes).
A key sees only the events of devices it may see (the admin also sees events without a device).
SSE sends a comment line every `keepalive` seconds so that proxies keep the stream open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from server.api.deps import CurrentKey, Principal, ServerDep, resolve_key
from server.events import Event, Subscription
from server.lwm2m_server import Lwm2mServer

KEEPALIVE = 15.0

router = APIRouter()


def event_visible(server: Lwm2mServer, principal: Principal, endpoint: str | None) -> bool:
    if principal.is_admin:
        return True
    if endpoint is None:
        return False
    device = server.device_of(endpoint)
    return device is not None and principal.can_see(device)


def _subscribe(server: Lwm2mServer, device: str | None, kinds: str | None) -> Subscription:
    prefixes = [k.strip() for k in (kinds or "").split(",") if k.strip()]
    return server.subscribe(endpoint=device or None, kinds=prefixes or None, maxsize=1000)


def sse_message(event: Event) -> str:
    return f"event: {event.kind}\nid: {event.seq}\ndata: {json.dumps(event.as_dict(), default=str)}\n\n"


@router.get("/events", response_class=StreamingResponse)
async def stream_events(
    server: ServerDep,
    principal: CurrentKey,
    device: str | None = Query(default=None, max_length=255),
    kinds: str | None = Query(default=None, max_length=1000),
) -> StreamingResponse:
    subscription = _subscribe(server, device, kinds)

    async def body() -> AsyncIterator[str]:
        try:
            yield ": connected\n\n"
            while True:
                try:
                    event = await subscription.get(timeout=KEEPALIVE)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event_visible(server, principal, event.endpoint):
                    yield sse_message(event)
        finally:
            subscription.close()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/events/ws")
async def events_ws(
    websocket: WebSocket,
    api_key: str | None = Query(default=None),
    device: str | None = Query(default=None),
    kinds: str | None = Query(default=None),
) -> None:
    server: Lwm2mServer = websocket.app.state.server
    principal = resolve_key(server, api_key or websocket.headers.get("api-key"))
    if principal is None:
        await websocket.close(code=4401)
        return
    await websocket.accept()
    subscription = _subscribe(server, device, kinds)

    async def watch_close() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    closer = asyncio.create_task(watch_close())
    try:
        while not closer.done():
            getter = asyncio.ensure_future(subscription.get())
            done, _ = await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event: Any = getter.result()
            if event_visible(server, principal, event.endpoint):
                await websocket.send_text(json.dumps(event.as_dict(), default=str))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        subscription.close()
        closer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await closer
