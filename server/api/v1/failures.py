"""Failed device operations of the native API become events: `operation.failed` with the
operation, the path, the CoAP code the device answered (if it answered one) and the error, so the
console's timeline and the event log keep them beside the requests that succeeded.

A dependency of the `/api/v1` router: the route's `ServerError` passes through it on its way to
the error handlers (server/api/errors.py), which still draw the HTTP answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from server.event_kinds import EventKind
from server.lwm2m_server import Lwm2mServer
from server.services.errors import DeviceTimeout, RequestFailed, ServerError

# The last path segment of the device routes that send a request to the device.
OPERATIONS = frozenset(
    {"read", "write", "execute", "discover", "write-attributes", "observe", "cancel-observation"}
)


async def record_failed_operations(request: Request) -> AsyncIterator[None]:
    try:
        yield
    except ServerError as exc:
        await _publish(request, exc)
        raise


async def _publish(request: Request, exc: ServerError) -> None:
    operation = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    device_id = request.path_params.get("device_id")
    if operation not in OPERATIONS or device_id is None:
        return
    server: Lwm2mServer = request.app.state.server
    with contextlib.suppress(ValueError, TypeError):
        device = server.provisioning.device(int(device_id))
        endpoint = server.endpoint_of(device) if device is not None else None
        if endpoint is None:
            return
        body: Any = {}
        with contextlib.suppress(ValueError):
            body = await request.json()
        path = body.get("path") or body.get("paths") if isinstance(body, dict) else None
        server.bus.publish(
            EventKind.OPERATION_FAILED,
            endpoint,
            operation=operation,
            path=path,
            code=exc.dotted if isinstance(exc, RequestFailed) else None,
            timeout=isinstance(exc, DeviceTimeout),
            error=str(exc) or type(exc).__name__,
        )
