"""Registration interface, server side (Core 1.1.1 §6.2; Transport §6.4.1).

Register creates (or replaces) the endpoint's registration, Update refreshes its lifetime and may
change its address, binding and object list, De-register removes it, and the expiry sweep removes
registrations whose lifetime plus a grace period has passed. Every change is persisted before the
client gets its answer, and published as an event.

Extension points for carrier rules (a later layer): `RegistrationPolicy.check_register` and
`check_update` may refuse with a CoAP code; `after_register` hooks run once the client has its
answer (auto-observe, queued-request delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from lwm2m.errors import CodecError
from lwm2m.numbers import CoapCode
from server.domain import Registration, parse_links_cached
from server.events import EventBus
from server.services.requests import (
    DeregisterRequest,
    Origin,
    RegisterRequest,
    UpdateRequest,
    UplinkResult,
)
from server.store.repository import Store

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
MAX_LIFETIME = 0x0FFFFFFF

Hook = Callable[[Registration, str], Awaitable[None]]


class RegistrationPolicy(Protocol):
    """Carrier rules applied to registrations; None means 'allowed'."""

    def check_register(self, request: RegisterRequest) -> CoapCode | None: ...

    def check_update(self, request: UpdateRequest, registration: Registration) -> CoapCode | None: ...


class OpenPolicy:
    """A plain LwM2M server: any endpoint may register. DTLS peers must register as the endpoint
    their identity names (identity == endpoint name) unless an identity map says otherwise."""

    def __init__(self, identity_endpoints: Callable[[str], set[str] | None] | None = None) -> None:
        self._identity_endpoints = identity_endpoints

    def _identity_allows(self, origin: Origin, endpoint: str) -> bool:
        if origin.secure_identity is None:
            return True
        if self._identity_endpoints is not None:
            allowed = self._identity_endpoints(origin.secure_identity)
            if allowed is not None:
                return endpoint in allowed
        return origin.secure_identity == endpoint

    def check_register(self, request: RegisterRequest) -> CoapCode | None:
        if not self._identity_allows(request.origin, request.endpoint):
            log.warning(
                "identity %r may not register as %r", request.origin.secure_identity, request.endpoint
            )
            return CoapCode.FORBIDDEN
        return None

    def check_update(self, request: UpdateRequest, registration: Registration) -> CoapCode | None:
        if not self._identity_allows(request.origin, registration.endpoint):
            log.warning(
                "identity %r may not update %r", request.origin.secure_identity, registration.endpoint
            )
            return CoapCode.FORBIDDEN
        return None


class RegistrationService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        policy: RegistrationPolicy | None = None,
        lifetime_grace: float = 15.0,
        sweep_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.policy: RegistrationPolicy = policy or OpenPolicy()
        self.lifetime_grace = lifetime_grace
        self.sweep_interval = sweep_interval
        self._by_endpoint: dict[str, Registration] = {}
        self._by_id: dict[str, Registration] = {}
        self._after_register: list[Hook] = []
        self._after_update: list[Hook] = []
        self._after_removal: list[Hook] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Endpoints currently being (re)registered: serialises racing registrations of one endpoint.
        self._locks: dict[str, asyncio.Lock] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        now = time.time()
        for reg in await self.store.load_registrations():
            if reg.expires_at + self.lifetime_grace < now:
                await self.store.delete_registration(reg.endpoint, reg.registration_id)
                self.bus.publish("registration.expired", reg.endpoint, registration_id=reg.registration_id)
                continue
            self._index(reg)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="registration-expiry")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def on_register(self, hook: Hook) -> None:
        """Run `hook(registration, reason)` after each Register (reason "register")."""
        self._after_register.append(hook)

    def on_update(self, hook: Hook) -> None:
        """Run `hook(registration, reason)` after each Update (reason "update" or "address")."""
        self._after_update.append(hook)

    def on_removal(self, hook: Hook) -> None:
        """Run `hook(registration, reason)` after De-register / expiry / replacement."""
        self._after_removal.append(hook)

    # --- queries ---------------------------------------------------------------------------------

    def get(self, endpoint: str) -> Registration | None:
        return self._by_endpoint.get(endpoint)

    def by_id(self, registration_id: str) -> Registration | None:
        return self._by_id.get(registration_id)

    def by_address(self, listener: str, host: str, port: int) -> Registration | None:
        for reg in self._by_endpoint.values():
            if reg.listener == listener and reg.host == host and reg.port == port:
                return reg
        return None

    def all(self) -> list[Registration]:
        return list(self._by_endpoint.values())

    def __len__(self) -> int:
        return len(self._by_endpoint)

    def release(self, endpoint: str) -> Registration | None:
        """Forget this process's copy of a registration another cluster node took over (the
        stored row is the other node's now); returns the copy."""
        reg = self._by_endpoint.get(endpoint)
        if reg is not None:
            self._unindex(reg)
        return reg

    def adopt(self, reg: Registration) -> None:
        """Hold a registration another cluster node accepted (read back from the store)."""
        self._index(reg)

    # --- interface -------------------------------------------------------------------------------

    def _index(self, reg: Registration) -> None:
        old = self._by_endpoint.get(reg.endpoint)
        if old is not None:
            self._by_id.pop(old.registration_id, None)
        self._by_endpoint[reg.endpoint] = reg
        self._by_id[reg.registration_id] = reg

    def _unindex(self, reg: Registration) -> None:
        if self._by_endpoint.get(reg.endpoint) is reg:
            del self._by_endpoint[reg.endpoint]
        if self._by_id.get(reg.registration_id) is reg:
            del self._by_id[reg.registration_id]

    def _run_hooks(self, hooks: list[Hook], reg: Registration, reason: str) -> None:
        for hook in hooks:
            task = asyncio.create_task(self._guarded(hook, reg, reason))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _guarded(self, hook: Hook, reg: Registration, reason: str) -> None:
        try:
            await hook(reg, reason)
        except Exception:
            log.exception("registration hook failed for %s", reg.endpoint)

    async def register(self, request: RegisterRequest) -> UplinkResult:
        if request.lwm2m_version not in SUPPORTED_VERSIONS:
            return UplinkResult(CoapCode.PRECONDITION_FAILED, diagnostic="unsupported LwM2M version")
        if not 0 < request.lifetime <= MAX_LIFETIME:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic="lifetime out of range")
        try:
            parse_links_cached(request.object_links)
        except CodecError as exc:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=f"bad object links: {exc}"[:100])
        refused = self.policy.check_register(request)
        if refused is not None:
            self.bus.publish(
                "registration.refused", request.endpoint, code=refused.dotted, host=request.origin.host
            )
            return UplinkResult(refused)
        lock = self._locks.setdefault(request.endpoint, asyncio.Lock())
        async with lock:
            now = time.time()
            reg = Registration(
                endpoint=request.endpoint,
                registration_id=secrets.token_hex(6),
                listener=request.origin.listener,
                host=request.origin.host,
                port=request.origin.port,
                lifetime=request.lifetime,
                binding=request.binding,
                lwm2m_version=request.lwm2m_version,
                queue_mode=request.queue_mode,
                root_path=parse_links_cached(request.object_links).root,
                object_links=request.object_links,
                sms=request.sms,
                secure_identity=request.origin.secure_identity,
                registered_at=now,
                updated_at=now,
            )
            old = self._by_endpoint.get(request.endpoint)
            await self.store.save_registration(reg)
            self._index(reg)
        if not self._locks.get(request.endpoint, lock).locked():
            self._locks.pop(request.endpoint, None)
        if old is not None:
            self.bus.publish("registration.replaced", reg.endpoint, old_registration_id=old.registration_id)
            self._run_hooks(self._after_removal, old, "replaced")
        # A summary: the event log keeps every event, and the object list is in the registration.
        self.bus.publish(
            "registration.registered",
            reg.endpoint,
            registration_id=reg.registration_id,
            listener=reg.listener,
            host=reg.host,
            port=reg.port,
            lifetime=reg.lifetime,
            binding=reg.binding,
            lwm2m_version=reg.lwm2m_version,
            queue_mode=reg.queue_mode,
        )
        self._run_hooks(self._after_register, reg, "register")
        return UplinkResult(CoapCode.CREATED, location=("rd", reg.registration_id))

    async def update(self, request: UpdateRequest) -> UplinkResult:
        reg = self._by_id.get(request.registration_id)
        if reg is None:
            return UplinkResult(CoapCode.NOT_FOUND)
        refused = self.policy.check_update(request, reg)
        if refused is not None:
            self.bus.publish(
                "registration.refused", reg.endpoint, code=refused.dotted, host=request.origin.host
            )
            return UplinkResult(refused)
        if request.object_links is not None:
            try:
                parse_links_cached(request.object_links)
            except CodecError as exc:
                return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=f"bad object links: {exc}"[:100])
        if request.lifetime is not None and not 0 < request.lifetime <= MAX_LIFETIME:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic="lifetime out of range")
        moved = (reg.host, reg.port, reg.listener) != (
            request.origin.host,
            request.origin.port,
            request.origin.listener,
        )
        updated = replace(
            reg,
            lifetime=request.lifetime if request.lifetime is not None else reg.lifetime,
            binding=request.binding if request.binding is not None else reg.binding,
            sms=request.sms if request.sms is not None else reg.sms,
            object_links=request.object_links if request.object_links is not None else reg.object_links,
            root_path=(
                parse_links_cached(request.object_links).root
                if request.object_links is not None
                else reg.root_path
            ),
            queue_mode=reg.queue_mode or ("Q" in (request.binding or "")),
            host=request.origin.host,
            port=request.origin.port,
            listener=request.origin.listener,
            secure_identity=request.origin.secure_identity or reg.secure_identity,
            updated_at=time.time(),
        )
        await self.store.save_registration(updated)
        if self._by_id.get(reg.registration_id) is not reg:
            # De-registered or replaced while we were writing: the newer state wins.
            return UplinkResult(CoapCode.NOT_FOUND)
        self._index(updated)
        self.bus.publish(
            "registration.updated",
            updated.endpoint,
            registration_id=updated.registration_id,
            lifetime=updated.lifetime,
            address_changed=moved,
            host=updated.host,
            port=updated.port,
            objects_changed=request.object_links is not None,
        )
        self._run_hooks(self._after_update, updated, "address" if moved else "update")
        return UplinkResult(CoapCode.CHANGED)

    async def deregister(self, request: DeregisterRequest) -> UplinkResult:
        reg = self._by_id.get(request.registration_id)
        if reg is None:
            return UplinkResult(CoapCode.NOT_FOUND)
        if request.origin.secure_identity is not None and reg.secure_identity not in (
            None,
            request.origin.secure_identity,
        ):
            return UplinkResult(CoapCode.FORBIDDEN)
        await self.remove(reg, "deregistered")
        return UplinkResult(CoapCode.DELETED)

    async def remove(self, reg: Registration, reason: str) -> None:
        """Remove a registration (de-register, expiry, or an operator's action)."""
        self._unindex(reg)
        await self.store.delete_registration(reg.endpoint, reg.registration_id)
        self.bus.publish(f"registration.{reason}", reg.endpoint, registration_id=reg.registration_id)
        self._run_hooks(self._after_removal, reg, reason)

    async def sweep(self, now: float | None = None) -> int:
        """Remove every registration past its lifetime plus the grace period; returns how many."""
        now = time.time() if now is None else now
        expired = [r for r in self._by_endpoint.values() if r.expires_at + self.lifetime_grace < now]
        for reg in expired:
            await self.remove(reg, "expired")
        return len(expired)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("expiry sweep failed")
