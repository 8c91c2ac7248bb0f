"""Dependencies of the routes: the server, the caller's key (`Principal`) and device lookup.

Keys (header `api-key`, or `?api_key=` where browsers cannot set headers):
- the admin key (`Settings.api_key`) sees everything; without one configured there is no admin;
- a product's master key sees that product's devices;
- a device's api_key sees only that device.

Failed key attempts (a key given that is none of ours) are counted per client address by
`KeyAttemptLimiter`; the app's `KeyAttemptLimit` middleware (server/api/app.py) answers 429 once
an address made too many.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable
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


class KeyAttemptLimiter:
    """Failed key attempts per client address: after `limit` failures within `window` seconds the
    address is blocked for `window` seconds (every request with a key answered 429, even a right
    key, so that the block is no oracle for guessing). Addresses beyond `max_addresses` push out
    the one seen longest ago, so memory stays bounded under a flood of sources."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None when it is not blocked."""
        until = self._blocked_until.get(address)
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            del self._blocked_until[address]
            return None
        return left

    def failed(self, address: str) -> None:
        """Count one failed key attempt of `address` (blocking it at the limit)."""
        now = self.clock()
        failures = self._failures.pop(address, None) or deque()
        self._failures[address] = failures  # re-inserted: the dict's order is recency
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        failures.append(now)
        if len(failures) >= self.limit:
            del self._failures[address]
            self._blocked_until[address] = now + self.window
        while len(self._failures) > self.max_addresses:
            del self._failures[next(iter(self._failures))]
        if len(self._blocked_until) > self.max_addresses:
            self._blocked_until = {a: u for a, u in self._blocked_until.items() if u > now}


async def get_server(request: Request) -> Lwm2mServer:
    server: Lwm2mServer = request.app.state.server
    return server


def get_ws_server(websocket: WebSocket) -> Lwm2mServer:
    server: Lwm2mServer = websocket.app.state.server
    return server


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in its thread pool, and a
# thread hop per dependency per request waits for the GIL behind the busy event loop.
ServerDep = Annotated[Lwm2mServer, Depends(get_server)]


async def current_principal(
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


async def require_admin(principal: CurrentKey) -> Principal:
    if not principal.is_admin:
        raise auth_failed("auth failed: admin key required", 403)
    return principal


AdminKey = Annotated[Principal, Depends(require_admin)]


def visible_device(server: Lwm2mServer, principal: Principal, device_id: Any) -> Device:
    """The provisioned device `device_id` if the caller may see it (404 otherwise, so that keys
    cannot probe for devices of other products)."""
    text = str(device_id)
    if not (text.isascii() and text.isdigit() and len(text) <= 18):  # int() takes "+1", " 1", "١٢"
        raise not_found("device")
    device = server.provisioning.device(int(text))
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
