"""JSON views of the native API (see /tmp contract `DeviceView`): devices with their
registration, objects with names and types from the model and values from the store."""

from __future__ import annotations

from typing import Any

from lwm2m.path import Path
from server.api.modules import ModuleHost, module_for_device
from server.domain import Registration
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device, Product


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
        "last_seen": reg.updated_at if reg else None,
        "registration": registration_view(reg),
        "emulated_module": module_for_device(host, device.imei if device else None, endpoint),
    }


async def objects_view(server: Lwm2mServer, endpoint: str | None) -> list[dict[str, Any]]:
    reg = server.registration(endpoint) if endpoint else None
    latest = await server.latest_values(endpoint) if endpoint else {}
    instances: dict[int, set[int]] = {}
    if reg is not None:
        for oid in reg.objects.objects:
            instances.setdefault(oid, set())
        for inst in reg.objects.instances:
            if inst.object_id is not None and inst.instance_id is not None:
                instances.setdefault(inst.object_id, set()).add(inst.instance_id)
    for raw in latest:
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
            for rid in sorted(ids):
                rdef = definition.resources.get(rid) if definition else None
                stored = latest.get(f"{prefix}{rid}")
                resources.append(
                    {
                        "id": rid,
                        "name": rdef.name if rdef else None,
                        "type": rdef.type.value if rdef else (stored["type"] if stored else None),
                        "operations": str(rdef.operations.value) if rdef else None,
                        "multiple": rdef.multiple if rdef else False,
                        "value": stored["value"] if stored else None,
                        "updated_at": stored["updated_at"] if stored else None,
                    }
                )
            inst_views.append({"id": iid, "resources": resources})
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
