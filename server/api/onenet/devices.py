"""OneNET device routes: create, read, update, delete, status, by IMEI, and data points.

Device id = the provisioning `Device.id` as text; `auth_info` is `{IMEI: IMSI}`; `psk` (8-16 letters
and digits) becomes the device's DTLS PSK (identity = IMEI). The admin key creates devices in the
product it names (`product_id`) or in the first OneNET product; a device key creates nothing.
Data streams: server/api/onenet/datastreams.py.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from server.api.deps import CurrentKey, ServerDep, expected_endpoint, visible_device
from server.api.errors import auth_failed, invalid, not_found
from server.api.onenet.common import OfflineDep, format_time, ok, parse_time
from server.api.onenet.datastreams import latest_streams
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device, Product

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
    """A device as OneNET's "query device details" shows it (NB-IoT suite): `protocol` `LwM2M`,
    times in Beijing time, `datastreams` as `[{id, create_time, unit, unit_symbol}]`."""
    endpoint = expected_endpoint(server, device)
    reg = server.registration(endpoint) if endpoint else None
    latest = await latest_streams(server, device)
    declared = device.attributes.get("datastreams") or {}
    attrs = device.attributes
    observing = bool(endpoint and server.observations(endpoint))
    return {
        "id": str(device.id),
        "online": reg is not None,
        "protocol": "LwM2M",
        "title": device.title,
        "desc": attrs.get("desc"),
        "create_time": format_time(device.created_at),
        "obsv": device.obsv,
        "obsv_st": observing,
        "private": attrs.get("private", True),
        "tags": attrs.get("tags") or [],
        "location": attrs.get("location") or {},
        "other": attrs.get("other") or {},
        "auth_info": {device.imei: device.imsi} if device.imei else {},
        "rg_id": endpoint,
        "imsi": device.imsi,
        "imsi_old": attrs.get("imsi_old") or [],
        "imsi_mt": attrs.get("imsi_mt") or format_time(device.created_at),
        "ack": attrs.get("ack", False),
        "act_time": format_time(reg.registered_at) if reg else attrs.get("act_time"),
        "last_ct": format_time(reg.updated_at) if reg else None,
        "datastreams": [
            {
                "id": ds,
                "create_time": (declared.get(ds) or {}).get("create_time")
                or format_time(latest[ds]["updated_at"]),
                "unit": (declared.get(ds) or {}).get("unit", ""),
                "unit_symbol": (declared.get(ds) or {}).get("unit_symbol", ""),
            }
            for ds in sorted(set(declared) | set(latest))
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


@router.get("/devices")
async def list_devices(
    server: ServerDep,
    principal: CurrentKey,
    key_words: Annotated[str | None, Query(max_length=64)] = None,
    auth_info: Annotated[str | None, Query(max_length=512)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    online: bool | None = None,
    private: bool | None = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 30,
    device_id: Annotated[str | None, Query(max_length=12000)] = None,
    begin: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """OneNET's device list (also its batch device-info query: `device_id=1,2,3`)."""
    begin_at = parse_time(begin, "begin") if begin else None
    end_at = parse_time(end, "end") if end else None
    ids = {part.strip() for part in device_id.split(",") if part.strip()} if device_id else None
    if ids is not None and len(ids) > 100:
        raise invalid("at most 100 device_id")
    imeis = set(parse_auth_info(auth_info)) if auth_info else None
    matched = []
    for device in sorted(server.provisioning.devices(), key=lambda d: d.id):
        attrs = device.attributes
        if not principal.can_see(device) or (ids is not None and str(device.id) not in ids):
            continue
        if key_words and key_words not in (device.title or ""):
            continue
        if imeis is not None and device.imei not in imeis:
            continue
        if tag and tag not in (attrs.get("tags") or []):
            continue
        if private is not None and attrs.get("private", True) != private:
            continue
        if (begin_at is not None and device.created_at < begin_at) or (
            end_at is not None and device.created_at > end_at
        ):
            continue
        if online is not None:
            endpoint = expected_endpoint(server, device)
            if (endpoint is not None and server.registration(endpoint) is not None) != online:
                continue
        matched.append(device)
    shown = matched[(page - 1) * per_page : page * per_page]
    devices = [await device_data(server, d) for d in shown]
    return ok({"total_count": len(matched), "page": page, "per_page": per_page, "devices": devices})


def parse_auth_info(text: str) -> list[str]:
    """The IMEIs of an `auth_info` filter: `{"IMEI": "IMSI"}` JSON or the IMEI itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(value, dict):
        return [str(k) for k in value]
    return [str(value)]


class RegisterAttr(BaseModel):
    model_config = ConfigDict(extra="ignore")

    allow_dup: bool | None = None
    product_id: str | None = Field(default=None, max_length=32)


@router.put("/register_attr")
async def register_attr(body: RegisterAttr, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """NB-IoT registration attributes of the product (`allow_dup`: whether an `auth_info` may be
    registered again). Stored on the product; one IMEI still names one device of a carrier here,
    as a module registers by IMEI and two devices of one IMEI could not be told apart."""
    if principal.kind == "device":
        raise auth_failed("auth failed: a device key cannot set registration attributes", 403)
    product = product_for_create(server, principal, body.product_id)
    attrs = dict(product.attributes.get("register_attr") or {})
    if body.allow_dup is not None:
        attrs["allow_dup"] = body.allow_dup
    await server.provisioning.update_product(
        product.id, attributes={**product.attributes, "register_attr": attrs}
    )
    return ok()
