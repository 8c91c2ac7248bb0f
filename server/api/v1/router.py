"""The native API of the web console, `/api/v1` (contract shared with web/): overview, products,
devices (provisioning, the LwM2M operations, observations, data points, events, the AT commands
that connect a module) and HTTP push receivers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as FastApiPath
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lwm2m.path import Path
from lwm2m.values import value_from_jsonable
from server.api.deps import AdminKey, CurrentKey, Principal, ServerDep, visible_device
from server.api.errors import auth_failed, invalid, not_found
from server.api.events import event_visible
from server.api.modules import ModuleHostDep
from server.api.onenet.common import OfflineDep, PushDep
from server.api.v1.connect import connect_commands
from server.api.v1.device_admin import remove_device
from server.api.v1.device_admin import router as device_admin_router
from server.api.v1.failures import record_failed_operations
from server.api.v1.views import device_view, event_view, objects_view, product_view
from server.lwm2m_server import Lwm2mServer
from server.services.device_management import values_to_json
from server.services.errors import BadArgument
from server.services.operations import ReadComposite
from server.services.provisioning import CARRIERS, Device
from server.services.push import PushTarget

router = APIRouter(dependencies=[Depends(record_failed_operations)])
router.include_router(device_admin_router)


def _path_in_range(text: str) -> str:
    Path.parse(text)  # InvalidPath (a ValueError) for an id above 65535: a 400
    return text


PathText = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^/?\d{1,5}(/\d{1,5}){0,3}$"),
    AfterValidator(_path_in_range),
]
# Device ids are ASCII digits only (`visible_device`); anything else, "+1", " 1", "١٢", is no
# device (404), not a malformed request.
DeviceId = Annotated[str, FastApiPath(max_length=64)]
# Seconds since the epoch for the data point cursors: 0 up to the year 9999.
Instant = Annotated[float | None, Query(ge=0, le=253_402_300_799)]
Timeout = Annotated[float | None, Field(default=None, ge=1, le=120)]


class ProductCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    carrier: Literal["onenet", "ctwing", "yanfei", "huawei", "custom"]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product_id: str = Field(min_length=1, max_length=32)
    imei: str = Field(pattern=r"^\d{1,32}$")
    imsi: str | None = Field(default=None, pattern=r"^\d{1,32}$")
    title: str | None = Field(default=None, max_length=255)
    auth_code: str | None = Field(default=None, max_length=32)
    obsv: bool = True
    psk: str | None = Field(default=None, min_length=1, max_length=64)
    psk_encoding: Literal["string", "hex"] = "string"


class PskBody(BaseModel):
    psk: str = Field(min_length=1, max_length=64)
    psk_encoding: Literal["string", "hex"] = "string"


class ReadBody(BaseModel):
    path: PathText
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class WriteBody(BaseModel):
    path: PathText
    value: Any
    replace: bool = True
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class ExecuteBody(BaseModel):
    path: PathText
    arguments: str = Field(default="", max_length=2048)
    timeout: Timeout = None


class PathBody(BaseModel):
    path: PathText
    timeout: Timeout = None


class AttributesBody(BaseModel):
    path: PathText
    attributes: dict[Literal["pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"], float | None]
    timeout: Timeout = None


class ObserveBody(BaseModel):
    path: PathText | None = None
    paths: list[PathText] | None = Field(default=None, min_length=1, max_length=32)
    attributes: dict[Literal["pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"], float | None] | None = None
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class CancelBody(BaseModel):
    observation_id: int = Field(ge=0, le=2**31)
    active: bool = True


class CreateBody(BaseModel):
    path: PathText  # the object, /o
    instance: int | None = Field(default=None, ge=0, le=65534)  # None: the client chooses
    value: dict[Annotated[str, Field(pattern=r"^\d{1,5}$")], Any] = Field(max_length=256)
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class CompositeReadBody(BaseModel):
    paths: list[PathText] = Field(min_length=1, max_length=64)
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class CompositeWriteBody(BaseModel):
    values: dict[PathText, Any] = Field(min_length=1, max_length=256)
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class PushTargetCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    token: str = Field(min_length=1, max_length=64)
    product_id: str | None = Field(default=None, max_length=32)
    verify: bool = True
    # OneNET's EncodingAESKey (43 Base64 characters): deliveries are then `enc_msg`.
    aes_key: str | None = Field(default=None, min_length=43, max_length=43)


def _attrs(values: dict[str, float | None] | None) -> dict[str, float | int | None]:
    return {k: (int(v) if v is not None and float(v).is_integer() else v) for k, v in (values or {}).items()}


def _endpoint(server: Lwm2mServer, device: Device) -> str:
    endpoint = server.endpoint_of(device)
    if endpoint is None:
        raise invalid("the device has no endpoint name yet")
    return endpoint


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


@router.post("/devices/{device_id}/read")
async def read(
    device_id: DeviceId, body: ReadBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    path = Path.parse(body.path)
    node = await server.read(endpoint, path, content_format=body.content_format, timeout=body.timeout)
    return {"values": values_to_json(node, path)}


def _plain(value: Any) -> Any:
    """A value as the Python API takes it: {"hex"|"time"|"objlnk": ...} becomes bytes, a
    datetime or an object link; anything else is left as given (typed by the object model)."""
    if isinstance(value, dict) and set(value) <= {"hex", "time", "objlnk"} and len(value) == 1:
        try:
            return value_from_jsonable(value)
        except ValueError as exc:
            raise invalid(str(exc)) from exc
    return value


@router.post("/devices/{device_id}/write")
async def write(
    device_id: DeviceId, body: WriteBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    value = _plain(body.value)
    await server.write(
        endpoint,
        body.path,
        value,
        replace=body.replace,
        content_format=body.content_format,
        timeout=body.timeout,
    )
    return {"ok": True}


@router.post("/devices/{device_id}/execute")
async def execute(
    device_id: DeviceId, body: ExecuteBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    await server.execute(endpoint, body.path, body.arguments, timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/discover")
async def discover(
    device_id: DeviceId, body: PathBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    links = await server.discover(endpoint, body.path, timeout=body.timeout)
    return {"links": [{"target": link.target, "params": dict(link.params)} for link in links]}


@router.post("/devices/{device_id}/write-attributes")
async def write_attributes(
    device_id: DeviceId, body: AttributesBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    await server.write_attributes(endpoint, body.path, _attrs(body.attributes), timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/create")
async def create(
    device_id: DeviceId, body: CreateBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Create an object instance: `{"path": "/3303", "instance": 1, "value": {"5700": 21.5}}`."""
    endpoint = _endpoint(server, _device(server, principal, device_id))
    if Path.parse(body.path).depth != 1:
        raise invalid("create takes an object path such as /3303")
    values = {int(rid): _plain(value) for rid, value in body.value.items()}
    await server.create(
        endpoint,
        body.path,
        values,
        instance_id=body.instance,
        content_format=body.content_format,
        timeout=body.timeout,
    )
    return {"ok": True, "instance": body.instance}


@router.post("/devices/{device_id}/delete")
async def delete_instance(
    device_id: DeviceId, body: PathBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Delete an object instance: `{"path": "/3303/1"}`."""
    endpoint = _endpoint(server, _device(server, principal, device_id))
    if Path.parse(body.path).depth != 2:
        raise invalid("delete takes an object instance path such as /3303/1")
    await server.delete(endpoint, body.path, timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/read-composite")
async def read_composite(
    device_id: DeviceId, body: CompositeReadBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Read-Composite (LwM2M 1.1): `{"paths": ["/3/0/0", "/3303/0"], "content_format": 112}`."""
    endpoint = _endpoint(server, _device(server, principal, device_id))
    op = ReadComposite(tuple(Path.parse(p) for p in body.paths), body.content_format)
    result = await server.perform(endpoint, op, timeout=body.timeout)
    return {"values": result["node"]}


@router.post("/devices/{device_id}/write-composite")
async def write_composite(
    device_id: DeviceId, body: CompositeWriteBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Write-Composite (LwM2M 1.1): `{"values": {"/1/0/1": 60, "/3303/0/5701": "Cel"}}`."""
    endpoint = _endpoint(server, _device(server, principal, device_id))
    values = {p: _plain(v) for p, v in body.values.items()}
    await server.write_composite(endpoint, values, content_format=body.content_format, timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/observe")
async def observe(
    device_id: DeviceId, body: ObserveBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    if (body.path is None) == (body.paths is None):
        raise invalid("give either path or paths")
    target: Any = body.path if body.path is not None else list(body.paths or [])
    observation = await server.observe(
        endpoint,
        target,
        content_format=body.content_format,
        attributes=_attrs(body.attributes) or None,
        timeout=body.timeout,
    )
    return {"observation_id": observation.id, "values": observation.values}


@router.post("/devices/{device_id}/cancel-observation")
async def cancel_observation(
    device_id: DeviceId, body: CancelBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, _device(server, principal, device_id))
    await server.cancel_observation(endpoint, body.observation_id, active=body.active)
    return {"ok": True}


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


def _push_visible(principal: Principal, target: PushTarget) -> bool:
    return principal.is_admin or (principal.product is not None and target.product_id == principal.product.id)


@router.get("/push-targets")
async def list_push_targets(principal: CurrentKey, push: PushDep) -> dict[str, Any]:
    return {"items": [t.as_dict() for t in push.targets() if _push_visible(principal, t)]}


@router.post("/push-targets")
async def add_push_target(body: PushTargetCreate, principal: CurrentKey, push: PushDep) -> dict[str, Any]:
    product_id = body.product_id
    if not principal.is_admin:
        if principal.product is None:
            raise auth_failed("auth failed: a device key cannot add push receivers", 403)
        product_id = principal.product.id
    target = await push.add_target(
        body.url, body.token, product_id=product_id, verify=body.verify, aes_key=body.aes_key
    )
    return target.as_dict()


@router.delete("/push-targets/{target_id}")
async def remove_push_target(target_id: int, principal: CurrentKey, push: PushDep) -> dict[str, Any]:
    target = next((t for t in push.targets() if t.id == target_id), None)
    if target is None or not _push_visible(principal, target):
        raise not_found("push target")
    await push.remove_target(target_id)
    return {"ok": True}


@router.get("/push-deliveries")
async def push_deliveries(
    principal: CurrentKey,
    push: PushDep,
    target_id: Annotated[int | None, Query(ge=0, le=2**31)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    visible = {t.id for t in push.targets() if _push_visible(principal, t)}
    rows = await push.deliveries(target_id, limit)
    return {"items": [r for r in rows if r["target_id"] in visible]}
