"""The kinds of server events (`server.events.Event.kind`), one `StrEnum` for every publisher and
subscriber. The string values are the wire names: the API's event log, the SSE and WebSocket
streams, the OneNET push bodies, the cluster relay and the console read them, so they never change.

Kinds group into families by the part before the first dot (`registration.`, `request.`, ...);
stream filters (`kinds=registration,notification`) are prefixes of these names.

The console reads the list from a generated module, `web/static/js/event_kinds.js`
(`console_module()`; regenerate with `python -m server.event_kinds`); a test checks that it
matches this enum.
"""

from __future__ import annotations

import sys
from enum import StrEnum, unique
from pathlib import Path


@unique
class EventKind(StrEnum):
    # Application data a carrier profile turned into values (server.carriers.policy).
    APPDATA_UPLINK = "appdata.uplink"
    # Bootstrap (server.services.bootstrap).
    BOOTSTRAP_FAILED = "bootstrap.failed"
    BOOTSTRAP_FINISHED = "bootstrap.finished"
    BOOTSTRAP_REFUSED = "bootstrap.refused"
    # Firmware update campaigns (server.services.fota).
    FOTA_DEVICE = "fota.device"
    FOTA_TASK = "fota.task"
    # Information reporting (server.services.reporting).
    NOTIFICATION = "notification"
    NOTIFICATION_REJECTED = "notification.rejected"
    OBSERVATION_CANCELLED = "observation.cancelled"
    OBSERVATION_ENDED = "observation.ended"
    OBSERVATION_STARTED = "observation.started"
    SEND = "send"
    SEND_REFUSED = "send.refused"
    # Offline commands (server.services.offline_commands).
    OFFLINE_COMMAND_CREATED = "offline_command.created"
    OFFLINE_COMMAND_RESULT = "offline_command.result"
    # A downlink operation the API could not carry out (server.api.v1.failures).
    OPERATION_FAILED = "operation.failed"
    # Registrations (server.services.registration, server.cluster).
    REGISTRATION_DEREGISTERED = "registration.deregistered"
    REGISTRATION_EXPIRED = "registration.expired"
    REGISTRATION_REFUSED = "registration.refused"
    REGISTRATION_REGISTERED = "registration.registered"
    REGISTRATION_REPLACED = "registration.replaced"
    REGISTRATION_UPDATED = "registration.updated"
    # Downlink operations (server.services.device_management, server.services.queue_mode).
    REQUEST_CREATE = "request.create"
    REQUEST_DELETE = "request.delete"
    REQUEST_DELIVERED = "request.delivered"
    REQUEST_DISCOVER = "request.discover"
    REQUEST_EXECUTE = "request.execute"
    REQUEST_FAILED = "request.failed"
    REQUEST_QUEUED = "request.queued"
    REQUEST_READ = "request.read"
    REQUEST_READ_COMPOSITE = "request.read_composite"
    REQUEST_WRITE = "request.write"
    REQUEST_WRITE_ATTRIBUTES = "request.write_attributes"
    REQUEST_WRITE_COMPOSITE = "request.write_composite"


CONSOLE_MODULE = Path(__file__).resolve().parent.parent / "web" / "static" / "js" / "event_kinds.js"


def console_module() -> str:
    """The console's copy of `EventKind`, as an ES module."""
    lines = [
        "// Generated from server/event_kinds.py by `python -m server.event_kinds`: do not edit.",
        "// The kinds of server events (the `kind` of every SSE / WebSocket message).",
        "",
        "export const EventKind = Object.freeze({",
        *(f'  {kind.name}: "{kind.value}",' for kind in EventKind),
        "});",
        "",
        "export const EVENT_KINDS = Object.freeze(Object.values(EventKind));",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    CONSOLE_MODULE.write_text(console_module(), encoding="utf-8")
    print(f"wrote {CONSOLE_MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
