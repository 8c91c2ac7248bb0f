"""Removing devices from the console: one device, or every offline device of a product
(`DELETE /api/v1/products/{product_id}/offline-devices`). A removed device loses its
provisioning, its cached commands and its PSK; its stored data points stay in the store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.api.deps import CurrentKey, ServerDep
from server.api.errors import not_found
from server.api.onenet.common import OfflineDep
from server.lwm2m_server import Lwm2mServer
from server.services.offline_commands import OfflineCommands
from server.services.provisioning import Device

router = APIRouter()


async def remove_device(server: Lwm2mServer, offline: OfflineCommands, device: Device) -> None:
    """Delete the device row with its own keys (the directory touches no other row) and its
    cached commands."""
    await server.directory.delete_device(device)
    await offline.forget_device(device.id)


@router.delete("/products/{product_id}/offline-devices")
async def delete_offline_devices(
    product_id: str, server: ServerDep, principal: CurrentKey, offline: OfflineDep
) -> dict[str, Any]:
    """Delete every device of the product that is not registered now; answers how many."""
    product = server.provisioning.product(product_id)
    if product is None or not principal.can_see_product(product):
        raise not_found("product")
    deleted = []
    for device in list(server.provisioning.devices()):
        if device.product_id != product.id or not principal.can_see(device):
            continue
        endpoint = server.endpoint_of(device)
        if endpoint is not None and server.registration(endpoint) is not None:
            continue
        await remove_device(server, offline, device)
        deleted.append(device.id)
    return {"deleted": len(deleted), "ids": deleted}
