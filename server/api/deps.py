"""Dependencies of the routes: the server, the caller's key (`Principal`) and device lookup.

Keys (header `api-key`, or `?api_key=` where browsers cannot set headers):
- the admin key (`Settings.api_key`) sees everything; without one configured there is no admin;
- a product's master key sees that product's devices;
- a device's api_key sees only that device.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, WebSocket

from server.api.errors import ApiError, auth_failed, not_found
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device, Product


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin, a product (master key) or one device (device key)."""

    kind: str  # "admin" | "product" | "device"
    product: Product | None = None
    device: Device | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def can_see(self, device: Device) -> bool:
        if self.kind == "admin":
            return True
        if self.kind == "product":
            return self.product is not None and device.product_id == self.product.id
        return self.device is not None and device.id == self.device.id

    def can_see_product(self, product: Product) -> bool:
        return self.kind == "admin" or (self.product is not None and self.product.id == product.id)


def resolve_key(server: Lwm2mServer, key: str | None) -> Principal | None:
    """The principal of `key`, or None when it is no key of ours."""
    if not key:
        return None
    admin = server.settings.api_key
    if admin and hmac.compare_digest(admin.encode(), key.encode()):
        return Principal("admin")
    product = server.provisioning.product_by_key(key)
    if product is not None:
        return Principal("product", product=product)
    device = server.provisioning.device_by_key(key)
    if device is not None:
        return Principal("device", device=device)
    return None


def get_server(request: Request) -> Lwm2mServer:
    server: Lwm2mServer = request.app.state.server
    return server


def get_ws_server(websocket: WebSocket) -> Lwm2mServer:
    server: Lwm2mServer = websocket.app.state.server
    return server


ServerDep = Annotated[Lwm2mServer, Depends(get_server)]


def current_principal(
    server: ServerDep,
    api_key_header: Annotated[str | None, Header(alias="api-key")] = None,
    api_key_query: Annotated[str | None, Query(alias="api_key")] = None,
) -> Principal:
    key = api_key_header or api_key_query
    if not key:
        raise auth_failed("auth failed: api-key required")
    principal = resolve_key(server, key)
    if principal is None:
        raise auth_failed()
    return principal


CurrentKey = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: CurrentKey) -> Principal:
    if not principal.is_admin:
        raise auth_failed("auth failed: admin key required", 403)
    return principal


AdminKey = Annotated[Principal, Depends(require_admin)]


def visible_device(server: Lwm2mServer, principal: Principal, device_id: Any) -> Device:
    """The provisioned device `device_id` if the caller may see it (404 otherwise, so that keys
    cannot probe for devices of other products)."""
    try:
        number = int(str(device_id))
    except ValueError:
        raise not_found("device") from None
    device = server.provisioning.device(number)
    if device is None or not principal.can_see(device):
        raise not_found("device")
    return device


def device_by_imei(server: Lwm2mServer, principal: Principal, imei: str) -> Device:
    """The device with this IMEI that the caller may see (OneNET devices first)."""
    candidates = [d for d in server.provisioning.devices_by_imei(imei) if principal.can_see(d)]
    if not candidates:
        raise not_found("device")
    candidates.sort(key=lambda d: (d.carrier != "onenet", d.id))
    return candidates[0]


def expected_endpoint(device: Device) -> str | None:
    """The endpoint name of `device` (bound, or the carrier's pattern)."""
    return Lwm2mServer.endpoint_of(device)


def online_endpoint(server: Lwm2mServer, device: Device) -> str:
    """The endpoint of a registered device, else errno 2001."""
    endpoint = expected_endpoint(device)
    if endpoint is None or server.registration(endpoint) is None:
        raise ApiError(2001, "device not online", 409)
    return endpoint
