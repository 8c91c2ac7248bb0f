"""Emulated modules hosted by this process, and the WebSocket bridge to their AT interface.

The server package must not import the emulator: the CLI passes an object satisfying
`ModuleHost`. Over `WS /api/v1/modules/{id}/at` the browser sends one AT line per text frame (no
CR needed) and receives every output line of the module (responses and URCs) as a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from server.api.deps import CurrentKey, Principal, ServerDep, resolve_key, visible_device
from server.api.errors import INVALID_PARAMETER, NOT_FOUND, ApiError, invalid, not_found
from server.lwm2m_server import Lwm2mServer


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    id: str
    model: str
    imei: str
    imsi: str
    endpoint: str | None
    carrier: str | None
    quick_lines: tuple[str, ...] = ()  # the console's quick AT lines the model answers

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModuleEntry(Protocol):
    """What the API reads of one hosted module (`ModuleInfo`, or the host's own record)."""

    @property
    def id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def imei(self) -> str: ...
    @property
    def imsi(self) -> str: ...
    @property
    def endpoint(self) -> str | None: ...
    @property
    def carrier(self) -> str | None: ...
    @property
    def quick_lines(self) -> tuple[str, ...]: ...

    def as_dict(self) -> dict[str, Any]: ...


class ModuleHost(Protocol):
    def list(self) -> Sequence[ModuleEntry]: ...

    async def send(self, module_id: str, line: str) -> None: ...

    def subscribe(self, module_id: str, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(line)` for each output line; returns the unsubscribe function."""
        ...

    def models(self) -> Sequence[str]: ...

    async def start_module(self, model: str, *, imei: str, imsi: str) -> str: ...

    async def remove(self, module_id: str) -> None: ...


def may_use(server: Lwm2mServer, principal: Principal, module: ModuleEntry) -> bool:
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


def find_module(host: ModuleHost | None, module_id: str) -> ModuleEntry | None:
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
# The IMSI of a module for a device provisioned without one (the emulator's default).
DEFAULT_IMSI = "460041234567890"


async def get_module_host(request: Request) -> ModuleHost | None:
    host: ModuleHost | None = request.app.state.module_host
    return host


ModuleHostDep = Annotated[ModuleHost | None, Depends(get_module_host)]


@router.get("/modules")
async def list_modules(server: ServerDep, principal: CurrentKey, host: ModuleHostDep) -> dict[str, Any]:
    items = [m.as_dict() for m in (host.list() if host else []) if may_use(server, principal, m)]
    return {"items": items}


class ModuleStart(BaseModel):
    device_id: int = Field(ge=0, le=2**31)
    model: str = Field(min_length=1, max_length=16)


def _host(host: ModuleHost | None) -> ModuleHost:
    if host is None:
        raise ApiError(NOT_FOUND, "this server hosts no emulated modules", 404)
    return host


@router.get("/modules/models")
async def module_models(_principal: CurrentKey, host: ModuleHostDep) -> dict[str, Any]:
    """The models an emulated module can be started as (the emulator's model table)."""
    return {"items": host.models() if host is not None else []}


@router.post("/modules")
async def start_module(
    body: ModuleStart, server: ServerDep, principal: CurrentKey, host: ModuleHostDep
) -> dict[str, Any]:
    """Power on an emulated module for a provisioned device (its IMEI and IMSI); the module
    waits for AT commands (GET /devices/{id}/connect-commands lists them)."""
    hosting = _host(host)
    device = visible_device(server, principal, body.device_id)
    if body.model not in hosting.models():
        raise invalid(f"model: one of {', '.join(hosting.models())}")
    if device.imei is None:
        raise invalid("device_id: the device has no IMEI, a module needs one")
    if module_for_device(hosting, device.imei, None) is not None:
        raise ApiError(INVALID_PARAMETER, "an emulated module with this IMEI runs already", 409)
    module_id = await hosting.start_module(body.model, imei=device.imei, imsi=device.imsi or DEFAULT_IMSI)
    module = find_module(hosting, module_id)
    assert module is not None
    return module.as_dict()


@router.delete("/modules/{module_id}")
async def stop_module(
    module_id: str, server: ServerDep, principal: CurrentKey, host: ModuleHostDep
) -> dict[str, Any]:
    """Power the module off (its registration stays until it expires) and stop hosting it."""
    hosting = _host(host)
    module = find_module(hosting, module_id)
    if module is None or not may_use(server, principal, module):
        raise not_found("module")
    await hosting.remove(module_id)
    return {"ok": True}


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
