"""OneNET device routes: create, read, update, delete, status, by IMEI, and data points.

Device id = the provisioning `Device.id` as text; `auth_info` is `{IMEI: IMSI}`; `psk` (8-16 letters
and digits) becomes the device's DTLS PSK (identity = IMEI). The admin key creates devices in the
product it names (`product_id`) or in the first OneNET product; a device key creates nothing.
Data streams are named `<obj>_<inst>_<res>` from the stored values.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from server.api.deps import CurrentKey, ServerDep, expected_endpoint, visible_device
from server.api.errors import auth_failed, invalid, not_found
from server.api.onenet.common import OfflineDep, format_time, ok, onenet_value, parse_time
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device, Product
from server.services.push import stream_id

router = APIRouter()

ALNUM = r"^[A-Za-z0-9]+$"
EXTRA_FIELDS = ("desc", "tags", "location", "private", "other", "chip")


class OneNetDeviceCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=64)
    protocol: str = Field(default="LWM2M", pattern=r"^(?i:lwm2m)$")
    auth_info: dict[
        Annotated[str, Field(pattern=r"^\d{1,32}$")], Annotated[str, Field(pattern=r"^\d{1,32}$")]
    ]
    desc: str | None = Field(default=None, max_length=512)
    tags: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100)
    location: dict[str, float] | None = None
    private: bool | None = None
    auth: str | None = Field(default=None, min_length=1, max_length=16, pattern=ALNUM)
    obsv: bool = True
    other: dict[str, Any] | None = None
    chip: int | None = None
    psk: str | None = Field(default=None, min_length=8, max_length=16, pattern=ALNUM)
    product_id: str | None = Field(default=None, max_length=32)


class OneNetDeviceUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = Field(default=None, min_length=1, max_length=64)
    desc: str | None = Field(default=None, max_length=512)
    tags: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100)
    location: dict[str, float] | None = None
    private: bool | None = None
    auth: str | None = Field(default=None, min_length=1, max_length=16, pattern=ALNUM)
    obsv: bool | None = None
    other: dict[str, Any] | None = None


def product_for_create(server: Lwm2mServer, principal: Any, product_id: str | None) -> Product:
    if principal.kind == "product":
        product: Product = principal.product
        return product
    if principal.kind != "admin":
        raise auth_failed("auth failed: a device key cannot create devices", 403)
    if product_id is not None:
        found = server.provisioning.product(product_id)
        if found is None:
            raise not_found("product")
        return found
    onenet = server.provisioning.products("onenet")
    if not onenet:
        raise invalid("product_id required: no OneNET product exists")
    return onenet[0]


async def device_data(server: Lwm2mServer, device: Device) -> dict[str, Any]:
    endpoint = expected_endpoint(server, device)
    reg = server.registration(endpoint) if endpoint else None
    latest = await server.latest_values(endpoint) if endpoint else {}
    attrs = device.attributes
    return {
        "id": str(device.id),
        "online": reg is not None,
        "protocol": "LWM2M",
        "title": device.title,
        "desc": attrs.get("desc"),
        "create_time": format_time(device.created_at),
        "obsv": device.obsv,
        "private": attrs.get("private", True),
        "tags": attrs.get("tags") or [],
        "location": attrs.get("location") or {},
        "auth_info": {device.imei: device.imsi} if device.imei else {},
        "rg_id": endpoint,
        "imsi": device.imsi,
        "act_time": format_time(reg.registered_at) if reg else attrs.get("act_time"),
        "last_ct": format_time(reg.updated_at) if reg else None,
        "datastreams": [
            {"id": ds, "value": onenet_value(v["value"]), "update_at": format_time(v["updated_at"])}
            for path, v in sorted(latest.items())
            if (ds := stream_id(path)) is not None
        ],
    }


@router.post("/devices")
async def create_device(body: OneNetDeviceCreate, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    if len(body.auth_info) != 1:
        raise invalid("auth_info must be one {IMEI: IMSI} pair")
    product = product_for_create(server, principal, body.product_id)
    ((imei, imsi),) = body.auth_info.items()
    attributes = {name: getattr(body, name) for name in EXTRA_FIELDS if getattr(body, name) is not None}
    device = await server.directory.create_device(
        product_id=product.id,
        imei=imei,
        imsi=imsi,
        title=body.title,
        auth_code=body.auth,
        obsv=body.obsv,
        attributes=attributes,
        psk=body.psk,
        psk_encoding="string" if body.psk else None,
    )
    data: dict[str, Any] = {"device_id": str(device.id)}
    if body.psk:
        data["psk"] = body.psk
    return ok(data)


@router.get("/devices/status")
async def devices_status(
    server: ServerDep, principal: CurrentKey, devIds: Annotated[str, Query(min_length=1, max_length=12000)]
) -> dict[str, Any]:
    ids = [part.strip() for part in devIds.split(",") if part.strip()]
    if len(ids) > 1000:
        raise invalid("at most 1000 devIds")
    items = []
    for raw in ids:
        device = server.provisioning.device(int(raw)) if raw.isdigit() else None
        if device is None or not principal.can_see(device):
            continue
        endpoint = expected_endpoint(server, device)
        online = endpoint is not None and server.registration(endpoint) is not None
        items.append({"id": str(device.id), "title": device.title, "online": online})
    return ok({"total_count": len(items), "devices": items})


@router.get("/devices/getbyimei")
async def device_by_imei_route(
    server: ServerDep, principal: CurrentKey, imei: Annotated[str, Query(pattern=r"^\d{1,32}$")]
) -> dict[str, Any]:
    from server.api.deps import device_by_imei

    device = device_by_imei(server, principal, imei)
    data = await device_data(server, device)
    data["device_id"] = data["id"]
    return ok(data)


@router.get("/devices/{device_id}")
async def get_device(device_id: str, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    device = visible_device(server, principal, device_id)
    return ok(await device_data(server, device))


@router.put("/devices/{device_id}")
async def update_device(
    device_id: str, body: OneNetDeviceUpdate, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    device = visible_device(server, principal, device_id)
    changes: dict[str, Any] = {}
    attributes = dict(device.attributes)
    for name in ("desc", "tags", "location", "private", "other"):
        value = getattr(body, name)
        if value is not None:
            attributes[name] = value
    if attributes != device.attributes:
        changes["attributes"] = attributes
    if body.title is not None:
        changes["title"] = body.title
    if body.auth is not None:
        changes["auth_code"] = body.auth
    if body.obsv is not None:
        changes["obsv"] = body.obsv
    if changes:
        await server.provisioning.update_device(device.id, **changes)
    return ok()


@router.delete("/devices/{device_id}")
async def delete_device(
    device_id: str, server: ServerDep, principal: CurrentKey, offline: OfflineDep
) -> dict[str, Any]:
    device = visible_device(server, principal, device_id)
    await server.directory.delete_device(device)
    await offline.forget_device(device.id)
    return ok()


@router.get("/devices/{device_id}/datapoints")
async def datapoints(
    device_id: str,
    server: ServerDep,
    principal: CurrentKey,
    datastream_id: Annotated[str | None, Query(max_length=1000)] = None,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int | None, Query(ge=1, le=6000)] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^\d+$")] = None,
) -> dict[str, Any]:
    device = visible_device(server, principal, device_id)
    endpoint = expected_endpoint(server, device)
    wanted = [s.strip() for s in datastream_id.split(",")] if datastream_id else None
    paths: list[str] | None = None
    if wanted is not None:
        paths = []
        for ds in wanted:
            parts = ds.split("_")
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise invalid(f"datastream_id {ds!r} is not <obj>_<inst>_<res>")
            paths.append("/" + "/".join(str(int(p)) for p in parts))
    streams: dict[str, list[dict[str, Any]]] = {}
    next_cursor: str | None = None
    count = 0
    if endpoint is not None and (start or end or cursor or limit):
        start_at = parse_time(start, "start") if start else None
        end_at = parse_time(end, "end") if end else None
        size = limit or 100
        points = []
        for path in paths or [None]:  # type: ignore[list-item]
            points.extend(
                await server.datapoints(
                    endpoint,
                    path,
                    start=start_at,
                    end=end_at,
                    after_id=int(cursor) if cursor else None,
                    limit=size + 1,
                )
            )
        points.sort(key=lambda p: p.id)
        if len(points) > size:
            points = points[:size]
            next_cursor = str(points[-1].id)
        for point in points:
            ds = stream_id(point.path)
            if ds is None:
                continue
            streams.setdefault(ds, []).append(
                {"at": format_time(point.received_at, millis=True), "value": onenet_value(point.value)}
            )
            count += 1
    elif endpoint is not None:
        for path, value in sorted((await server.latest_values(endpoint)).items()):
            ds = stream_id(path)
            if ds is None or (paths is not None and path not in paths):
                continue
            streams[ds] = [
                {"at": format_time(value["updated_at"], millis=True), "value": onenet_value(value["value"])}
            ]
            count += 1
    data: dict[str, Any] = {
        "count": count,
        "datastreams": [{"id": ds, "datapoints": points} for ds, points in streams.items()],
    }
    if next_cursor is not None:
        data["cursor"] = next_cursor
    return ok(data)
