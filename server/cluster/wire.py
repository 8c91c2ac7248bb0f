"""What travels between nodes, as JSON (pure: no I/O).

A forwarded request: {"kind": "perform"|"observe"|"enqueue", "endpoint", "op" | "observe",
"timeout", "queue"}. Its reply: {"ok": result} or {"error": name, "message", ...}, where the
error names are those of `server.services.errors`, drawn back into the same exception on the
caller's side. An event: the fields of `server.events.Event` without its per-node `seq`.
"""

from __future__ import annotations

import json
from typing import Any

from server.events import Event
from server.services.errors import (
    BadArgument,
    DeviceSleeping,
    DeviceTimeout,
    DeviceUnreachable,
    RequestFailed,
    ServerError,
    UnknownEndpoint,
)


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """The reply for an error raised on the owner."""
    if isinstance(exc, UnknownEndpoint | DeviceSleeping):
        return {"error": type(exc).__name__, "endpoint": exc.endpoint, "message": str(exc)}
    if isinstance(exc, RequestFailed):
        return {"error": "RequestFailed", "code": exc.code, "message": str(exc)}
    for known in (DeviceTimeout, DeviceUnreachable, BadArgument):
        if isinstance(exc, known):
            return {"error": known.__name__, "message": str(exc)}
    return {"error": "DeviceUnreachable", "message": f"the owner node failed: {exc}"}


def error_from_wire(reply: dict[str, Any]) -> ServerError:
    """The exception a local request would have raised."""
    name, message = reply.get("error"), str(reply.get("message", ""))
    if name == "UnknownEndpoint":
        return UnknownEndpoint(str(reply.get("endpoint")))
    if name == "DeviceSleeping":
        return DeviceSleeping(str(reply.get("endpoint")))
    if name == "RequestFailed":
        detail = message.partition(": ")[2] if ": " in message else ""
        return RequestFailed(int(reply.get("code", 160)), detail)
    if name == "DeviceTimeout":
        return DeviceTimeout(message)
    if name == "BadArgument":
        return BadArgument(message)
    return DeviceUnreachable(message)


def event_to_wire(event: Event) -> bytes:
    return dumps({"kind": event.kind, "endpoint": event.endpoint, "data": event.data, "time": event.time})


def event_from_wire(raw: bytes, node_id: str) -> Event:
    data = loads(raw)
    payload = dict(data.get("data") or {})
    payload.setdefault("node", node_id)
    return Event(kind=data["kind"], endpoint=data.get("endpoint"), data=payload, time=float(data["time"]))
