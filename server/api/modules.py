"""Emulated modules hosted by this process, and the WebSocket bridge to their AT interface.

The server package must not import the emulator: the CLI passes an object satisfying
`ModuleHost`. Over `WS /api/v1/modules/{id}/at` the browser sends one AT line per text frame (no
CR needed) and receives every output line of the module (responses and URCs) as a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect

from server.api.deps import CurrentKey, Principal, ServerDep, resolve_key
from server.lwm2m_server import Lwm2mServer


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    id: str
    model: str
    imei: str
    imsi: str
    endpoint: str | None
    carrier: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModuleHost(Protocol):
    def list(self) -> list[ModuleInfo]: ...

    async def send(self, module_id: str, line: str) -> None: ...

    def subscribe(self, module_id: str, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(line)` for each output line; returns the unsubscribe function."""
        ...


def may_use(server: Lwm2mServer, principal: Principal, module: ModuleInfo) -> bool:
    """The admin uses every module; other keys the module whose device is theirs: the device row
    its registration is kept under, else the device of its IMEI at the module's own carrier (a
    device of another carrier with the same IMEI gives no access)."""
    if principal.is_admin:
        return True
    if module.endpoint and module.carrier:
        for name in (module.endpoint, f"{module.endpoint}@{module.carrier}"):
            device = server.device_of(name)
            if device is not None and device.carrier == module.carrier:
                return principal.can_see(device)
    return any(
        principal.can_see(d)
        for d in server.provisioning.devices_by_imei(module.imei)
        if module.carrier is not None and d.carrier == module.carrier
    )


def find_module(host: ModuleHost | None, module_id: str) -> ModuleInfo | None:
    if host is None:
        return None
    return next((m for m in host.list() if m.id == module_id), None)


def module_for_device(
    host: ModuleHost | None, imei: str | None, endpoint: str | None, carrier: str | None = None
) -> str | None:
    """The hosted module of a device: the one registering as its endpoint, else the one with its
    IMEI at its carrier (a module of another carrier with the same IMEI is not its)."""
    if host is None:
        return None
    for module in host.list():
        if (
            endpoint
            and module.endpoint == endpoint
            and (carrier is None or module.carrier in (None, carrier))
        ):
            return module.id
        if imei and module.imei == imei and (carrier is None or module.carrier in (None, carrier)):
            return module.id
    return None


router = APIRouter()


async def get_module_host(request: Request) -> ModuleHost | None:
    host: ModuleHost | None = request.app.state.module_host
    return host


ModuleHostDep = Annotated[ModuleHost | None, Depends(get_module_host)]


@router.get("/modules")
async def list_modules(server: ServerDep, principal: CurrentKey, host: ModuleHostDep) -> dict[str, Any]:
    items = [m.as_dict() for m in (host.list() if host else []) if may_use(server, principal, m)]
    return {"items": items}


@router.websocket("/modules/{module_id}/at")
async def at_bridge(websocket: WebSocket, module_id: str, api_key: str | None = Query(default=None)) -> None:
    server: Lwm2mServer = websocket.app.state.server
    host: ModuleHost | None = websocket.app.state.module_host
    principal = resolve_key(server, api_key or websocket.headers.get("api-key"))
    module = find_module(host, module_id)
    if principal is None:
        await websocket.close(code=4401)
        return
    if module is None or host is None or not may_use(server, principal, module):
        await websocket.close(code=4404)
        return
    await websocket.accept()
    lines: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def on_line(line: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            lines.put_nowait(line)

    unsubscribe = host.subscribe(module_id, on_line)

    async def forward() -> None:
        while True:
            await websocket.send_text(await lines.get())

    sender = asyncio.create_task(forward())
    try:
        while True:
            text = await websocket.receive_text()
            for line in text.replace("\r", "\n").split("\n"):
                if line.strip():
                    await host.send(module_id, line.strip())
    except WebSocketDisconnect:
        pass
    finally:
        unsubscribe()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
