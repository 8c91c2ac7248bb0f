"""Firmware over the air in the native API: the firmware store (`/api/v1/firmware`), update tasks
(`/api/v1/fota/tasks`) and the packages' HTTP side (`GET /fw/{id}` with `Range`, no key: the
device fetches it with the URI the task wrote into its object 5).

Keys: the admin sees and does everything; a product's key uploads packages for its product, sees
only its product's packages and runs tasks on its own devices; a device key may do none of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from server.api.deps import AdminKey, CurrentKey, Principal, ServerDep, expected_endpoint, visible_device
from server.api.errors import ApiError, auth_failed, invalid, not_found
from server.api.modules import ModuleHostDep
from server.lwm2m_server import Lwm2mServer
from server.services.firmware_store import FirmwarePackage
from server.services.fota import DEFAULT_TIMEOUTS, FotaTask

router = APIRouter()
public_router = APIRouter()

CHUNK = 64 * 1024


def _not_device(principal: Principal) -> None:
    if principal.kind == "device":
        raise auth_failed("auth failed: a product or admin key is required", 403)


def _product_of(principal: Principal) -> str | None:
    return principal.product.id if principal.product is not None else None


def _visible_package(server: Lwm2mServer, principal: Principal, firmware_id: int) -> FirmwarePackage:
    package = server.firmware.find(firmware_id)
    if package is None or not (principal.is_admin or package.product_id == _product_of(principal)):
        raise not_found("firmware")
    return package


def package_view(server: Lwm2mServer, package: FirmwarePackage) -> dict[str, Any]:
    coap = server.listeners.get("default") or next(iter(server.listeners.values()), None)
    coap_uri = f"coap://{coap.host}:{coap.port}/fw/{package.id}" if coap is not None else None
    return {
        **package.as_dict(),
        "coap_uri": coap_uri,
        "http_uri": f"{server.fota.http_base}/fw/{package.id}",
    }


@router.post("/firmware")
async def upload_firmware(
    server: ServerDep,
    principal: CurrentKey,
    file: Annotated[UploadFile, File()],
    version: Annotated[str, Form(min_length=1, max_length=64)],
    models: Annotated[str, Form(max_length=255)] = "",
    product_id: Annotated[str | None, Form(max_length=32)] = None,
) -> dict[str, Any]:
    """Store a package once (multipart `file`, `version`, optional `models` comma-separated)."""
    _not_device(principal)
    if not principal.is_admin:
        product_id = _product_of(principal)
    elif product_id is not None and server.provisioning.product(product_id) is None:
        raise not_found("product")
    data = await file.read(server.settings.firmware_max_size + 1)
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    package = await server.firmware.add(
        data, version=version, models=names, product_id=product_id, filename=file.filename or "firmware.bin"
    )
    return package_view(server, package)


@router.get("/firmware")
async def list_firmware(server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """List the firmware packages the key sees (all for the admin, its product's for a product
    key), each with its CoAP and HTTP download URIs."""
    _not_device(principal)
    items = server.firmware.list(_product_of(principal), admin=principal.is_admin)
    return {"items": [package_view(server, p) for p in items], "total": len(items)}


@router.delete("/firmware/{firmware_id}")
async def delete_firmware(firmware_id: int, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """Delete a firmware package (its row and file); refused with 409 while a task that has not
    finished uses it."""
    _not_device(principal)
    _visible_package(server, principal, firmware_id)
    await server.firmware.delete(firmware_id)
    return {"ok": True}


class TaskCreate(BaseModel):
    firmware_id: int
    device_ids: list[int] | None = Field(default=None, max_length=100_000)
    endpoints: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        default=None, max_length=100_000
    )
    product_id: str | None = Field(default=None, max_length=32)
    method: Literal["pull-coap", "pull-http", "push"] = "pull-coap"
    max_concurrent: int = Field(default=50, ge=1, le=10_000)
    timeouts: dict[str, Annotated[float, Field(gt=0, le=7 * 86400)]] = Field(default_factory=dict)
    retries: int = Field(default=2, ge=0, le=100)


def _task_endpoints(server: Lwm2mServer, principal: Principal, body: TaskCreate) -> list[str]:
    endpoints: list[str] = []
    for device_id in body.device_ids or []:
        endpoint = expected_endpoint(server, visible_device(server, principal, device_id))
        if endpoint is None:
            raise invalid(f"device {device_id} has no endpoint name yet (no IMEI)")
        endpoints.append(endpoint)
    if body.endpoints:
        if not principal.is_admin:
            raise auth_failed("auth failed: endpoints are for the admin key; use device_ids", 403)
        endpoints.extend(body.endpoints)
    if body.product_id is not None:
        product = server.provisioning.product(body.product_id)
        if product is None or not principal.can_see_product(product):
            raise not_found("product")
        for device in server.provisioning.devices():
            if device.product_id == product.id:
                endpoint = expected_endpoint(server, device)
                if endpoint is not None:
                    endpoints.append(endpoint)
    if not endpoints:
        raise invalid("name the devices: device_ids, product_id (or endpoints with the admin key)")
    return endpoints


def _visible_task(server: Lwm2mServer, principal: Principal, task_id: int) -> FotaTask:
    task = server.fota.tasks.get(task_id)
    if task is None or not (principal.is_admin or task.product_id == _product_of(principal)):
        raise not_found("task")
    return task


@router.post("/fota/tasks")
async def create_task(body: TaskCreate, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """Start an update task: `firmware_id`, the devices, `method`, `max_concurrent`, per-phase
    `timeouts` (seconds: online, version_check, download, update, poll) and `retries`."""
    _not_device(principal)
    _visible_package(server, principal, body.firmware_id)
    unknown = set(body.timeouts) - set(DEFAULT_TIMEOUTS)
    if unknown:
        raise invalid(f"unknown timeouts {sorted(unknown)}; known: {sorted(DEFAULT_TIMEOUTS)}")
    endpoints = _task_endpoints(server, principal, body)
    task = await server.fota.create(
        body.firmware_id,
        endpoints,
        method=body.method,
        max_concurrent=body.max_concurrent,
        timeouts=body.timeouts,
        retries=body.retries,
        product_id=_product_of(principal) or body.product_id,
    )
    return task.as_dict()


@router.get("/fota/tasks")
async def list_tasks(server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """List the update tasks the key sees, with their totals per status and overall percent."""
    _not_device(principal)
    tasks = [t for t in server.fota.list() if principal.is_admin or t.product_id == _product_of(principal)]
    return {"items": [t.as_dict(with_devices=False) for t in tasks], "total": len(tasks)}


@router.get("/fota/tasks/{task_id}")
async def get_task(task_id: int, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """One update task with every device's status, bytes, percent, attempts and, for a failed
    device, the Update Result and its meaning."""
    _not_device(principal)
    return _visible_task(server, principal, task_id).as_dict()


@router.post("/fota/tasks/{task_id}/cancel")
async def cancel_task(task_id: int, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """Cancel a running update task: its unfinished devices become `cancelled` and a device that
    was downloading has its object 5 reset (an empty Package URI)."""
    _not_device(principal)
    _visible_task(server, principal, task_id)
    return (await server.fota.cancel(task_id)).as_dict()


class FaultsBody(BaseModel):
    faults: str = Field(default="", max_length=200)


@router.put("/modules/{module_id}/fota-faults")
async def set_module_faults(
    module_id: str, body: FaultsBody, host: ModuleHostDep, _admin: AdminKey
) -> dict[str, Any]:
    """Faults of a hosted module's next firmware updates (the console's control): `cut=N`,
    `corrupt`, `no-storage`, `out-of-memory`, `update-fails`, `rate=N`, `no-return`."""
    setter = getattr(host, "set_fota_faults", None)
    if setter is None:
        raise not_found("module")
    try:
        faults = setter(module_id, body.faults)
    except KeyError:
        raise not_found("module") from None
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return {"id": module_id, "faults": faults}


# --- the packages' HTTP side ---------------------------------------------------------------------


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single `bytes=` range; None when it cannot be served."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            length = int(last)
            return (max(0, size - length), size) if length > 0 else None
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return None
    return start, min(end, size)


# Not part of the API (no key: a device fetches it with the URI its task wrote into object 5).
@public_router.get("/fw/{firmware_id}", include_in_schema=False)
async def download_firmware(
    firmware_id: int,
    request: Request,
    range_header: Annotated[str | None, Header(alias="range")] = None,
    ep: str | None = None,
) -> Response:
    """A package over HTTP; `Range: bytes=N-` resumes (206 with Content-Range)."""
    server: Lwm2mServer = request.app.state.server
    package = server.firmware.find(firmware_id)
    if package is None:
        raise ApiError(3, "firmware not found", 404)
    data = memoryview(server.firmware.content(firmware_id))
    etag = f'"{package.etag.hex()}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    start, end, status = 0, len(data), 200
    if range_header:
        parsed = _parse_range(range_header, len(data))
        if parsed is None:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
    headers["Content-Length"] = str(end - start)
    fota = server.fota

    async def chunks() -> AsyncIterator[bytes]:
        position = start
        while position < end:
            stop = min(position + CHUNK, end)
            yield bytes(data[position:stop])
            position = stop
            fota.on_served(firmware_id, ep, None, position)

    return StreamingResponse(chunks(), status_code=status, headers=headers)
