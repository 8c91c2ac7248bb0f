"""The LwM2M operations of the native API, `/api/v1/devices/{id}/...`: Read, Write, Execute,
Discover, Write-Attributes, Create, Delete, Read-/Write-Composite, Observe and its cancellation
(Core 1.1.1 §5.4, §6.3 - §6.4), each sent to the device through `Lwm2mServer`. A failure comes back
as a `ServerError` (server/api/errors.py draws the HTTP answer; server/api/v1/failures.py records it
as an event)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter

from lwm2m.path import Path
from lwm2m.values import value_from_jsonable
from server.api.deps import CurrentKey, ServerDep, visible_device
from server.api.errors import invalid
from server.api.v1.schemas import (
    AttributeName,
    AttributesBody,
    CancelBody,
    CompositeReadBody,
    CompositeWriteBody,
    CreateBody,
    DeviceId,
    ExecuteBody,
    ObserveBody,
    PathBody,
    ReadBody,
    WriteBody,
)
from server.lwm2m_server import Lwm2mServer
from server.services.device_management import values_to_json
from server.services.operations import ReadComposite
from server.services.provisioning import Device

router = APIRouter()


def _attrs(values: Mapping[AttributeName, float | None] | None) -> dict[str, float | int | None]:
    return {k: (int(v) if v is not None and float(v).is_integer() else v) for k, v in (values or {}).items()}


def _endpoint(server: Lwm2mServer, device: Device) -> str:
    endpoint = server.endpoint_of(device)
    if endpoint is None:
        raise invalid("the device has no endpoint name yet")
    return endpoint


@router.post("/devices/{device_id}/read")
async def read(
    device_id: DeviceId, body: ReadBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
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
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
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
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    await server.execute(endpoint, body.path, body.arguments, timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/discover")
async def discover(
    device_id: DeviceId, body: PathBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    links = await server.discover(endpoint, body.path, timeout=body.timeout)
    return {"links": [{"target": link.target, "params": dict(link.params)} for link in links]}


@router.post("/devices/{device_id}/write-attributes")
async def write_attributes(
    device_id: DeviceId, body: AttributesBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    await server.write_attributes(endpoint, body.path, _attrs(body.attributes), timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/create")
async def create(
    device_id: DeviceId, body: CreateBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Create an object instance: `{"path": "/3303", "instance": 1, "value": {"5700": 21.5}}`."""
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
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
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    if Path.parse(body.path).depth != 2:
        raise invalid("delete takes an object instance path such as /3303/1")
    await server.delete(endpoint, body.path, timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/read-composite")
async def read_composite(
    device_id: DeviceId, body: CompositeReadBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Read-Composite (LwM2M 1.1): `{"paths": ["/3/0/0", "/3303/0"], "content_format": 112}`."""
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    op = ReadComposite(tuple(Path.parse(p) for p in body.paths), body.content_format)
    result = await server.perform(endpoint, op, timeout=body.timeout)
    return {"values": result["node"]}


@router.post("/devices/{device_id}/write-composite")
async def write_composite(
    device_id: DeviceId, body: CompositeWriteBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Write-Composite (LwM2M 1.1): `{"values": {"/1/0/1": 60, "/3303/0/5701": "Cel"}}`."""
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    values: dict[Path | str, Any] = {p: _plain(v) for p, v in body.values.items()}
    await server.write_composite(endpoint, values, content_format=body.content_format, timeout=body.timeout)
    return {"ok": True}


@router.post("/devices/{device_id}/observe")
async def observe(
    device_id: DeviceId, body: ObserveBody, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
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
    endpoint = _endpoint(server, visible_device(server, principal, device_id))
    await server.cancel_observation(endpoint, body.observation_id, active=body.active)
    return {"ok": True}
