"""OneNET NB-IoT real-time commands (`/nbiot...`): read, write, execute, observe, discover, the
resource list, and the DTLS keys (`/nbiot/device/psk`, `/nbiot/device/accpsk`).

The device must be online (else errno 2001); `timeout` is 5-40 s (default 25). Observe
attributes follow OneNET's rules (pmax >= pmin > 0; lt < gt and lt + 2*st < gt; gt/lt/st need
res_id) and are written (Write-Attributes) before the Observe, as the platform does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from lwm2m.path import Path
from server.api.deps import CurrentKey, ServerDep, device_by_imei, online_endpoint
from server.api.errors import invalid
from server.api.onenet.common import Imei, ObjId, OptId, Timeout, ok, onenet_value, target_path
from server.carriers.base import ATTR_ACCESS_PSK
from server.lwm2m_server import Lwm2mServer
from server.services.device_management import values_to_json
from server.services.errors import RequestFailed
from server.services.provisioning import Device
from server.services.security import PskEncoding
from server.services.write_types import typed_value

router = APIRouter()


class WriteItem(BaseModel):
    """One resource of a write. `type` (OneNET): 1 = Opaque, `val` its bytes as hex text; 2 = Time,
    `val` Unix seconds; absent = a basic type (boolean, string, integer, float) taken as is."""

    model_config = ConfigDict(extra="ignore")

    res_id: int = Field(ge=0, le=65535)
    val: str | int | float | bool
    type: int | None = Field(default=None, ge=1, le=2)

    def value(self) -> Any:
        return typed_value(self.res_id, self.val, self.type)


class WriteBody(BaseModel):
    data: list[WriteItem] = Field(min_length=1, max_length=64)


class ExecuteBody(BaseModel):
    args: str = Field(default="", max_length=2048)


class KeyBody(BaseModel):
    key: str = Field(min_length=8, max_length=16, pattern=r"^[A-Za-z0-9]+$")


def by_instance(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read results as OneNET shows them: `[{"obj_inst_id", "res": [{"res_id", "val"}]}]`."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for entry in values:
        path = Path.parse(entry["path"])
        if path.instance_id is None or path.resource_id is None:
            continue
        grouped.setdefault(path.instance_id, []).append(
            {"res_id": path.resource_id, "val": onenet_value(entry["value"])}
        )
    return [{"obj_inst_id": inst, "res": res} for inst, res in sorted(grouped.items())]


@router.get("/nbiot")
async def read(
    server: ServerDep,
    principal: CurrentKey,
    imei: Imei,
    obj_id: ObjId,
    obj_inst_id: OptId = None,
    res_id: OptId = None,
    timeout: Timeout = 25,
) -> dict[str, Any]:
    endpoint = online_endpoint(server, device_by_imei(server, principal, imei))
    path = target_path(obj_id, obj_inst_id, res_id)
    node = await server.read(endpoint, path, timeout=timeout)
    return ok(by_instance(values_to_json(node, path)))


@router.post("/nbiot")
async def write(
    body: WriteBody,
    server: ServerDep,
    principal: CurrentKey,
    imei: Imei,
    obj_id: ObjId,
    obj_inst_id: Annotated[int, Query(ge=0, le=65535)],
    mode: Annotated[int, Query(ge=1, le=2)],
    timeout: Timeout = 25,
) -> dict[str, Any]:
    endpoint = online_endpoint(server, device_by_imei(server, principal, imei))
    values = {item.res_id: item.value() for item in body.data}
    await server.write(endpoint, Path(obj_id, obj_inst_id), values, replace=mode == 1, timeout=timeout)
    return ok()


@router.post("/nbiot/execute")
async def execute(
    server: ServerDep,
    principal: CurrentKey,
    imei: Imei,
    obj_id: ObjId,
    obj_inst_id: Annotated[int, Query(ge=0, le=65535)],
    res_id: Annotated[int, Query(ge=0, le=65535)],
    body: ExecuteBody | None = None,
    timeout: Timeout = 25,
) -> dict[str, Any]:
    endpoint = online_endpoint(server, device_by_imei(server, principal, imei))
    args = body.args if body is not None else ""
    await server.execute(endpoint, Path(obj_id, obj_inst_id, res_id), args, timeout=timeout)
    return ok()


def observe_attributes(
    res_id: int | None,
    pmin: int | None,
    pmax: int | None,
    gt: float | None,
    lt: float | None,
    st: float | None,
) -> dict[str, float | int]:
    """Check OneNET's attribute rules; returns the attributes to write. pmin defaults to 0
    (report at once); when pmin and pmax are both given, pmax >= pmin and both are > 0."""
    if pmin is not None and pmin < 0:
        raise invalid("pmin must be >= 0")
    if pmin is not None and pmax is not None and (pmin <= 0 or pmax < pmin):
        raise invalid("with pmax, pmin must be > 0 and pmax >= pmin")
    if pmax is not None and pmax <= 0:
        raise invalid("pmax must be > 0")
    if (gt is not None or lt is not None or st is not None) and res_id is None:
        raise invalid("gt, lt and st need res_id")
    if gt is not None and lt is not None:
        if not lt < gt:
            raise invalid("lt must be < gt")
        if st is not None and not lt + 2 * st < gt:
            raise invalid("lt + 2*st must be < gt")
    if st is not None and st <= 0:
        raise invalid("st must be > 0")
    attributes = {"pmin": pmin, "pmax": pmax, "gt": gt, "lt": lt, "st": st}
    return {name: value for name, value in attributes.items() if value is not None}


@router.post("/nbiot/observe")
async def observe(
    server: ServerDep,
    principal: CurrentKey,
    imei: Imei,
    obj_id: ObjId,
    cancel: Annotated[str, Query(max_length=16)],
    obj_inst_id: OptId = None,
    res_id: OptId = None,
    pmin: Annotated[int | None, Query(ge=-(2**31), le=2**31)] = None,
    pmax: Annotated[int | None, Query(ge=-(2**31), le=2**31)] = None,
    gt: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    lt: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    st: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    timeout: Timeout = 25,
) -> dict[str, Any]:
    endpoint = online_endpoint(server, device_by_imei(server, principal, imei))
    path = target_path(obj_id, obj_inst_id, res_id)
    if cancel.strip().lower() == "true":  # OneNET: anything but true/false counts as false
        for observation in server.observations(endpoint):
            if not observation.composite and observation.paths == [path]:
                await server.cancel_observation(endpoint, observation.id)
        return ok()
    attributes = observe_attributes(res_id, pmin, pmax, gt, lt, st)
    await server.observe(endpoint, path, attributes=attributes or None, timeout=timeout)
    return ok()


@router.get("/nbiot/discover")
async def discover(
    server: ServerDep,
    principal: CurrentKey,
    imei: Imei,
    obj_id: ObjId,
    obj_inst_id: OptId = None,
    timeout: Timeout = 25,
) -> dict[str, Any]:
    endpoint = online_endpoint(server, device_by_imei(server, principal, imei))
    links = await server.discover(endpoint, target_path(obj_id, obj_inst_id), timeout=timeout)
    grouped = discovered(links)
    return ok([{"obj_inst_id": inst, "res_id": res} for inst, res in sorted(grouped.items())])


def discovered(links: list[Any]) -> dict[int, list[int]]:
    """instance -> resource ids of a Discover answer (resource-instance links left out)."""
    grouped: dict[int, list[int]] = {}
    for link in links:
        try:
            path = Path.parse(link.target)
        except ValueError:
            continue
        if path.instance_id is None:
            continue
        resources = grouped.setdefault(path.instance_id, [])
        if path.resource_id is not None and path.resource_instance_id is None:
            resources.append(path.resource_id)
    return grouped


@router.get("/nbiot/resources")
async def resources(
    server: ServerDep,
    principal: CurrentKey,
    imei: Imei,
    obj_id: OptId = None,
    timeout: Timeout = 25,
) -> dict[str, Any]:
    """What the device declares: its Discover answer per registered object (the OneMO module's
    AT+MIPLDISCOVERRSP), not every resource of the object model."""
    device = device_by_imei(server, principal, imei)
    endpoint = online_endpoint(server, device)
    reg = server.registration(endpoint)
    assert reg is not None
    object_ids = sorted(
        {i.object_id for i in reg.objects.instances if i.object_id not in (None, 0)}
        | {o for o in reg.objects.objects if o != 0}
    )
    items = []
    for oid in object_ids:
        if obj_id is not None and oid != obj_id:
            continue
        try:
            grouped = discovered(await server.discover(endpoint, Path(oid), timeout=timeout))
        except RequestFailed:
            continue  # an object the device declares nothing of (e.g. its built-in ones)
        items.append(
            {
                "obj_id": oid,
                "instances": [
                    {"inst_id": iid, "resources": sorted(res)} for iid, res in sorted(grouped.items())
                ],
            }
        )
    return ok({"total_count": len(items), "item": items})


async def set_device_key(
    server: Lwm2mServer, device: Device, name: str, key: str, encoding: PskEncoding | None = None
) -> Device:
    """Give `device` the key of attribute `name` through the device directory (its only writer);
    returns the updated device. Also used by the native API (`PUT .../psk`)."""
    return await server.directory.set_key(device, key, encoding, attribute=name)


@router.get("/nbiot/device/psk")
async def get_psk(server: ServerDep, principal: CurrentKey, imei: Imei) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    return ok({"psk": device.attributes.get("psk")})


@router.put("/nbiot/device/psk")
async def put_psk(body: KeyBody, server: ServerDep, principal: CurrentKey, imei: Imei) -> dict[str, Any]:
    await set_device_key(server, device_by_imei(server, principal, imei), "psk", body.key)
    return ok()


@router.get("/nbiot/device/accpsk")
async def get_accpsk(server: ServerDep, principal: CurrentKey, imei: Imei) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    return ok({"key": device.attributes.get(ATTR_ACCESS_PSK)})


@router.post("/nbiot/device/accpsk")
@router.put("/nbiot/device/accpsk")
async def put_accpsk(body: KeyBody, server: ServerDep, principal: CurrentKey, imei: Imei) -> dict[str, Any]:
    # The attribute the OneNET access listener takes its DTLS key from (a bootstrap replaces it).
    await set_device_key(server, device_by_imei(server, principal, imei), ATTR_ACCESS_PSK, body.key)
    return ok()
