"""The native API of the web console, `/api/v1` (contract shared with web/): overview, products,
devices (provisioning, observations, data points, events, the AT commands that connect a module);
the LwM2M operations (`device_operations`), device administration (`device_admin`) and HTTP push
receivers (`push_targets`) are routers of their own, included here in that order of the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from server.api.deps import AdminKey, CurrentKey, Principal, ServerDep, visible_device
from server.api.errors import invalid, not_found
from server.api.events import event_visible
from server.api.modules import ModuleHostDep
from server.api.onenet.common import OfflineDep
from server.api.v1 import device_operations, push_targets
from server.api.v1.connect import connect_commands
from server.api.v1.device_admin import remove_device
from server.api.v1.device_admin import router as device_admin_router
from server.api.v1.failures import record_failed_operations
from server.api.v1.schemas import DeviceCreate, DeviceId, Instant, ProductCreate, PskBody
from server.api.v1.views import device_view, event_view, objects_view, product_view
from server.lwm2m_server import Lwm2mServer
from server.services.errors import BadArgument
from server.services.provisioning import CARRIERS, Device

router = APIRouter(dependencies=[Depends(record_failed_operations)])
router.include_router(device_admin_router)


def _device(server: Lwm2mServer, principal: Principal, device_id: str) -> Device:
    return visible_device(server, principal, device_id)


# --- overview and products -------------------------------------------------------------------------


@router.get("/overview")
async def overview(server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    carriers = {c: {"devices": 0, "online": 0} for c in CARRIERS}
    for device in server.provisioning.devices():
        if not principal.can_see(device):
            continue
        endpoint = server.endpoint_of(device)
        carriers[device.carrier]["devices"] += 1
        if endpoint and server.registration(endpoint) is not None:
            carriers[device.carrier]["online"] += 1
    if principal.is_admin:
        registrations = len(server.registered())
    else:
        registrations = sum(carriers[c]["online"] for c in carriers)
    rows = await server.store.events(limit=200 if not principal.is_admin else 50)
    recent = [event_view(r) for r in rows if event_visible(server, principal, r["endpoint"])][:50]
    return {"carriers": carriers, "registrations": registrations, "recent_events": recent}


@router.get("/products")
async def list_products(server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    return {
        "items": [product_view(p) for p in server.provisioning.products() if principal.can_see_product(p)]
    }


@router.post("/products")
async def create_product(body: ProductCreate, server: ServerDep, _admin: AdminKey) -> dict[str, Any]:
    return product_view(await server.provisioning.create_product(body.name, body.carrier))


# --- devices ---------------------------------------------------------------------------------------


@router.get("/devices")
async def list_devices(
    server: ServerDep,
    principal: CurrentKey,
    host: ModuleHostDep,
    q: Annotated[str | None, Query(max_length=255)] = None,
    carrier: Annotated[str | None, Query(max_length=32)] = None,
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    # (device or None, endpoint, carrier) rows, filtered on what they hold; the JSON views are
    # drawn for the requested page only, so a page of a large fleet costs a page of views.
    rows: list[tuple[Device | None, str | None, str]] = [
        (d, server.endpoint_of(d), d.carrier) for d in server.provisioning.devices() if principal.can_see(d)
    ]
    if principal.is_admin:
        known = {endpoint for _d, endpoint, _c in rows}
        rows.extend(
            (None, reg.endpoint, "custom") for reg in server.registered() if reg.endpoint not in known
        )
    needle = (q or "").lower()

    def matches(row: tuple[Device | None, str | None, str]) -> bool:
        device, endpoint, row_carrier = row
        if carrier and row_carrier != carrier:
            return False
        if (
            online is not None
            and (endpoint is not None and server.registration(endpoint) is not None) != online
        ):
            return False
        if needle:
            fields = (endpoint, device.imei, device.title) if device is not None else (endpoint,)
            return any(needle in f.lower() for f in fields if f)
        return True

    # Pages in a stable order: provisioned devices by id, then anonymous registrations by name
    # (the store's own order moves a row that a registration updates).
    selected = sorted(
        (row for row in rows if matches(row)),
        key=lambda row: (row[0] is None, row[0].id if row[0] is not None else 0, row[1] or ""),
    )
    page = selected[offset : offset + limit]
    return {"items": [device_view(server, d, host, e) for d, e, _c in page], "total": len(selected)}


@router.post("/devices")
async def create_device(
    body: DeviceCreate, server: ServerDep, principal: CurrentKey, host: ModuleHostDep
) -> dict[str, Any]:
    product = server.provisioning.product(body.product_id)
    if product is None or not principal.can_see_product(product):
        raise not_found("product")
    device = await server.directory.create_device(
        product_id=product.id,
        imei=body.imei,
        imsi=body.imsi,
        title=body.title,
        auth_code=body.auth_code,
        obsv=body.obsv,
        psk=body.psk,
        psk_encoding=body.psk_encoding if body.psk else None,
    )
    return device_view(server, device, host)


@router.get("/devices/{device_id}")
async def get_device(
    device_id: DeviceId, server: ServerDep, principal: CurrentKey, host: ModuleHostDep
) -> dict[str, Any]:
    device = _device(server, principal, device_id)
    view = device_view(server, device, host)
    view["objects"] = await objects_view(server, view["endpoint"])
    return view


@router.delete("/devices/{device_id}")
async def delete_device(
    device_id: DeviceId, server: ServerDep, principal: CurrentKey, offline: OfflineDep
) -> dict[str, Any]:
    await remove_device(server, offline, _device(server, principal, device_id))
    return {"ok": True}


@router.put("/devices/{device_id}/psk")
async def set_device_psk(
    device_id: DeviceId, body: PskBody, server: ServerDep, principal: CurrentKey, host: ModuleHostDep
) -> dict[str, Any]:
    """Change the DTLS PSK of a device as its carrier's platform does: the key its carrier's
    access listener checks (OneNET: the access PSK, as POST /nbiot/device/accpsk sets it, a text
    key; the others: the device PSK of its creation, text or hexadecimal). Any device has one,
    also an endpoint that registered at the open listener without an IMEI."""
    device = _device(server, principal, device_id)
    try:
        updated = await server.directory.set_key(device, body.psk, body.psk_encoding)
    except BadArgument as exc:
        raise invalid(str(exc)) from None
    return device_view(server, updated, host)


# The LwM2M operations (read, write, ..., observe), in their own module.
router.include_router(device_operations.router)


@router.get("/devices/{device_id}/observations")
async def observations(device_id: DeviceId, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    endpoint = server.endpoint_of(_device(server, principal, device_id))
    records = await server.store.observations(endpoint) if endpoint else []
    return {
        "items": [
            {"id": r.id, "paths": r.paths, "composite": r.composite, "attributes": r.attributes}
            for r in records
        ]
    }


@router.get("/devices/{device_id}/datapoints")
async def datapoints(
    device_id: DeviceId,
    server: ServerDep,
    principal: CurrentKey,
    path: Annotated[str | None, Query(max_length=64, pattern=r"^/?\d{1,5}(/\d{1,5}){0,3}$")] = None,
    start: Instant = None,
    end: Instant = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    endpoint = server.endpoint_of(_device(server, principal, device_id))
    if endpoint is None:
        return {"items": []}
    points = await server.datapoints(endpoint, path, start=start, end=end, limit=limit, newest_first=True)
    points.reverse()
    return {
        "items": [
            {
                "path": p.path,
                "type": p.type,
                "value": p.value,
                "at": p.measured_at if p.measured_at is not None else p.received_at,
                "source": p.source,
            }
            for p in points
        ]
    }


@router.get("/devices/{device_id}/events")
async def device_events(
    device_id: DeviceId,
    server: ServerDep,
    principal: CurrentKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    endpoint = server.endpoint_of(_device(server, principal, device_id))
    rows = await server.store.events(endpoint, limit) if endpoint else []
    return {"items": [event_view(r) for r in rows]}


@router.get("/devices/{device_id}/connect-commands")
async def get_connect_commands(
    device_id: DeviceId, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    return {"commands": connect_commands(server, _device(server, principal, device_id))}


# --- HTTP push receivers ---------------------------------------------------------------------------

router.include_router(push_targets.router)
