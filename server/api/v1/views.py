"""JSON views of the native API (see /tmp contract `DeviceView`): devices with their
registration, objects with names and types from the model and values from the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from lwm2m.path import Path
from server.api.modules import ModuleHost, module_for_device
from server.domain import Registration
from server.event_kinds import EventKind
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device, Product
from server.store import tables as t


def product_view(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "carrier": product.carrier,
        "master_key": product.master_key,
        "created_at": product.created_at,
    }


def registration_view(reg: Registration | None) -> dict[str, Any] | None:
    if reg is None:
        return None
    full = reg.as_dict()
    keys = (
        "registration_id",
        "lwm2m_version",
        "binding",
        "lifetime",
        "host",
        "port",
        "listener",
        "queue_mode",
        "registered_at",
        "updated_at",
        "expires_at",
        "objects",
        "instances",
    )
    return {key: full[key] for key in keys}


def device_view(
    server: Lwm2mServer,
    device: Device | None,
    host: ModuleHost | None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """A provisioned device, or (device None) a registered endpoint without one."""
    if device is not None:
        endpoint = server.endpoint_of(device)
    reg = server.registration(endpoint) if endpoint else None
    return {
        "id": device.id if device else None,
        "endpoint": endpoint,
        "carrier": device.carrier if device else "custom",
        "product_id": device.product_id if device else None,
        "title": device.title if device else None,
        "imei": device.imei if device else None,
        "imsi": device.imsi if device else None,
        "online": reg is not None,
        "last_seen": last_seen(server, endpoint, reg),
        "registration": registration_view(reg),
        "emulated_module": module_for_device(
            host, device.imei if device else None, endpoint, device.carrier if device else None
        ),
    }


def last_seen(server: Lwm2mServer, endpoint: str | None, reg: Registration | None) -> float | None:
    """When the device last sent anything (register, update, notify, send): the queue-mode
    bookkeeping notes every uplink; before the first one since start, its registration's update."""
    heard = server.queue.last_seen.get(endpoint) if endpoint else None
    return heard if heard is not None else (reg.updated_at if reg else None)


async def discovered_paths(server: Lwm2mServer, endpoint: str, answers: int = 50) -> set[str]:
    """Every path the device listed in its recent Discover answers (the `request.discover`
    events of the event log), and the paths that were discovered."""
    events = t.events.c
    statement = (
        select(events.data)
        .where(events.endpoint == endpoint, events.kind == EventKind.REQUEST_DISCOVER)
        .order_by(events.id.desc())
        .limit(answers)
    )
    async with server.store.engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    paths: set[str] = set()
    for (data,) in rows:
        paths.add(str(data.get("path", "")))
        paths.update(str(link.get("target", "")) for link in data.get("links", []))
    return paths


async def objects_view(server: Lwm2mServer, endpoint: str | None) -> list[dict[str, Any]]:
    """The objects of the device, each resource marked `declared` when the device named it in a
    Discover answer or reported a value for it; the rest are the object model's."""
    reg = server.registration(endpoint) if endpoint else None
    latest = await server.latest_values(endpoint) if endpoint else {}
    discovered = await discovered_paths(server, endpoint) if endpoint else set()
    instances: dict[int, set[int]] = {}
    if reg is not None:
        for oid in reg.objects.objects:
            instances.setdefault(oid, set())
        for inst in reg.objects.instances:
            if inst.object_id is not None and inst.instance_id is not None:
                instances.setdefault(inst.object_id, set()).add(inst.instance_id)
    for raw in latest:
        if not raw.startswith("/"):
            continue  # a stream an application named (OneNET `POST /devices/{id}/datapoints`)
        path = Path.parse(raw)
        if path.object_id is not None and path.instance_id is not None:
            instances.setdefault(path.object_id, set()).add(path.instance_id)
    result = []
    for oid in sorted(instances):
        definition = server.model.get_object(oid)
        inst_views = []
        for iid in sorted(instances[oid]):
            prefix = f"/{oid}/{iid}/"
            ids = set(definition.resources) if definition else set()
            ids.update(Path.parse(p).resource_id or 0 for p in latest if p.startswith(prefix))
            resources = []
            ids.update(Path.parse(p).resource_id or 0 for p in discovered if p.startswith(prefix))
            for rid in sorted(ids):
                rdef = definition.resources.get(rid) if definition else None
                stored = latest.get(f"{prefix}{rid}")
                resources.append(
                    {
                        "id": rid,
                        "declared": stored is not None or f"{prefix}{rid}" in discovered,
                        "units": rdef.units if rdef else "",
                        "name": rdef.name if rdef else None,
                        "type": rdef.type.value if rdef else (stored["type"] if stored else None),
                        "operations": str(rdef.operations.value) if rdef else None,
                        "multiple": rdef.multiple if rdef else False,
                        "value": stored["value"] if stored else None,
                        "updated_at": stored["updated_at"] if stored else None,
                    }
                )
            inst_views.append(
                {
                    "id": iid,
                    "discovered": f"/{oid}/{iid}" in discovered or f"/{oid}" in discovered,
                    "resources": resources,
                }
            )
        result.append(
            {
                "id": oid,
                "name": definition.name if definition else None,
                "multiple": definition.multiple if definition else True,
                "instances": inst_views,
            }
        )
    return result


def event_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": row["id"],
        "kind": row["kind"],
        "endpoint": row["endpoint"],
        "time": row["time"],
        "data": row["data"],
    }
