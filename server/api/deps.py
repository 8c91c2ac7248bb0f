"""Dependencies of the routes: the server, the caller's key (`Principal`) and device lookup.

Keys (header `api-key`, or `?api_key=` where browsers cannot set headers):
- the admin key (`Settings.api_key`) sees everything; without one configured there is no admin;
- a product's master key sees that product's devices;
- a device's api_key sees only that device.
Beside `api-key`, OneNET's `authorization` token (server/api/onenet/token.py: `res=products/{pid}`,
signed with that product's key, not expired) stands for the product's master key. A refused token
is errno 1 `auth failed` with the reason.

Failed key attempts (a key given that is none of ours) are counted per client address, per key
prefix and in all by `KeyAttemptLimiter`; the app's `KeyAttemptLimit` middleware
(server/api/app.py) answers 429 once one of them made too many.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, WebSocket

from server.api.errors import AUTH_FAILED, ApiError, auth_failed, not_found
from server.api.onenet.token import TokenError, check_token, parse_token
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


KEY_PREFIX_LENGTH = 6
GLOBAL_BUCKET = "*"


class KeyAttemptLimiter:
    """Failed key attempts, counted three ways so that rotating source addresses do not escape:
    per client address and per key prefix (its first `KEY_PREFIX_LENGTH` characters) up to
    `limit`, and all together up to `global_limit`, each within `window` seconds. A bucket at its
    limit is blocked for `window` seconds: every request with a key that falls in a blocked bucket
    is answered 429, even a right key, so that the block is no oracle for guessing (while the
    global bucket is blocked, that is every keyed request). Buckets beyond `max_addresses` push
    out the one seen longest ago, so memory stays bounded under a flood of sources and keys."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        global_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.limit = limit
        self.global_limit = global_limit if global_limit is not None else 2 * limit
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    @staticmethod
    def _buckets(address: str, key: str | None) -> list[str]:
        buckets = [f"a:{address}", GLOBAL_BUCKET]
        if key:
            buckets.append(f"k:{key[:KEY_PREFIX_LENGTH]}")
        return buckets

    def retry_after(self, address: str, key: str | None = None) -> float | None:
        """Seconds until a request of `address` with `key` may try again, or None when it is not
        blocked."""
        now = self.clock()
        longest: float | None = None
        for bucket in self._buckets(address, key):
            until = self._blocked_until.get(bucket)
            if until is None:
                continue
            left = until - now
            if left <= 0:
                del self._blocked_until[bucket]
                continue
            longest = left if longest is None else max(longest, left)
        return longest

    def failed(self, address: str, key: str | None = None) -> None:
        """Count one failed key attempt of `address` with `key` (blocking a bucket at its limit)."""
        now = self.clock()
        for bucket in self._buckets(address, key):
            failures = self._failures.pop(bucket, None) or deque()
            self._failures[bucket] = failures  # re-inserted: the dict's order is recency
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            failures.append(now)
            if len(failures) >= (self.global_limit if bucket == GLOBAL_BUCKET else self.limit):
                del self._failures[bucket]
                self._blocked_until[bucket] = now + self.window
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


def token_principal(server: Lwm2mServer, authorization: str) -> Principal:
    """The product an `authorization` token was signed for (errno 1 when it is refused)."""
    try:
        token = parse_token(authorization)
        product = server.provisioning.product(token.product_id)
        if product is None:
            raise TokenError("token res names no product")
        check_token(token, product.master_key, time.time())
    except TokenError as exc:
        raise auth_failed(f"auth failed: {exc}") from None
    return Principal("product", product=product)


async def current_principal(
    server: ServerDep,
    api_key_header: Annotated[str | None, Header(alias="api-key")] = None,
    api_key_query: Annotated[str | None, Query(alias="api_key")] = None,
    authorization: Annotated[str | None, Header(max_length=1024)] = None,
) -> Principal:
    key = api_key_header or api_key_query
    if not key and authorization:
        return token_principal(server, authorization)
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
    """The device with this IMEI that the caller may see (for the admin, who may see several:
    the one of the carrier with the lowest platform number, OneNET's first). None is errno 1
    `auth failed`, as in OneNET's NB-IoT error table ("check that the api-key matches the imei"),
    for an unknown IMEI as for another product's (so that keys cannot probe)."""
    candidates = [d for d in server.provisioning.devices_by_imei(imei) if principal.can_see(d)]
    if not candidates:
        raise ApiError(AUTH_FAILED, "auth failed: the api-key does not match the imei", 404)
    profiles = server.carriers.profiles
    candidates.sort(key=lambda d: (profiles[d.carrier].rules.platform if d.carrier in profiles else 99, d.id))
    return candidates[0]


def expected_endpoint(server: Lwm2mServer, device: Device) -> str | None:
    """The name the registrations of `device` are kept under (see `DeviceDirectory.endpoint_of`)."""
    return server.endpoint_of(device)


def online_endpoint(server: Lwm2mServer, device: Device) -> str:
    """The endpoint of a registered device, else errno 2001."""
    endpoint = expected_endpoint(server, device)
    if endpoint is None or server.registration(endpoint) is None:
        raise ApiError(2001, "device not online", 409)
    return endpoint
