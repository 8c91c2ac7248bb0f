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
from dataclasses import dataclass, field, replace
from typing import Protocol

from lwm2m.errors import CodecError
from lwm2m.numbers import CoapCode
from server.domain import Registration, parse_links_cached
from server.event_kinds import EventKind
from server.events import EventBus
from server.services.requests import (
    DeregisterRequest,
    RegisterRequest,
    UpdateRequest,
    UplinkResult,
)
from server.settings import Settings
from server.store.repository import Store

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
MAX_LIFETIME = 0x0FFFFFFF
# Binding modes: LwM2M 1.0's (Core 1.0.2 §5.3.1.1) and 1.1's letters (Core 1.1.1 §6.2.1.1: UDP,
# MQTT, HTTP, TCP, SMS, Non-IP; Q for queue mode as 1.0 wrote it), each letter at most once.
BINDINGS_1_0 = frozenset({"U", "UQ", "S", "SQ", "US", "UQS"})
BINDING_LETTERS_1_1 = frozenset("UMHTSNQ")


@dataclass(frozen=True, slots=True)
class RegistrationLimits:
    """What a Register / Update may claim (settings `registration_*`); beyond: 4.00 with the reason."""

    max_endpoint_length: int = 128
    max_link_payload: int = 64 * 1024
    max_object_links: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> RegistrationLimits:
        return cls(
            settings.registration_max_endpoint_length,
            settings.registration_max_link_payload,
            settings.registration_max_object_links,
        )

    def check_endpoint(self, endpoint: str) -> str | None:
        if len(endpoint) > self.max_endpoint_length:
            return f"endpoint name longer than {self.max_endpoint_length} characters"
        if not endpoint.isprintable():
            return "endpoint name has a control character"
        return None

    def check_binding(self, binding: str) -> str | None:
        if binding in BINDINGS_1_0:
            return None
        if binding and len(set(binding)) == len(binding) and set(binding) <= BINDING_LETTERS_1_1:
            return None
        return f"binding {binding[:16]!r} is none of U, UQ, S, SQ, US, UQS or the 1.1 letters UMHTSNQ"

    def check_links(self, object_links: str) -> str | None:
        if len(object_links) > self.max_link_payload or len(object_links.encode()) > self.max_link_payload:
            return f"object links longer than {self.max_link_payload} bytes"
        if len(parse_links_cached(object_links).links) > self.max_object_links:
            return f"more than {self.max_object_links} objects and object instances"
        return None


Hook = Callable[[Registration, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy's answer: admitted (`code` None), under `endpoint` when it names the registration
    otherwise than the client did, or refused with a CoAP code and the reason."""

    code: CoapCode | None = None
    reason: str = ""
    endpoint: str | None = None


class RegistrationPolicy(Protocol):
    """Who may register, update as whom, and under which name (`server.services.directory`)."""

    def check_register(self, request: RegisterRequest) -> Verdict: ...

    def check_update(self, request: UpdateRequest, registration: Registration) -> Verdict: ...

    async def bind(self, request: RegisterRequest, endpoint: str) -> object:
        """Record what the registration belongs to, with the registration's own write."""
        ...


class OpenPolicy:
    """A plain LwM2M server: any endpoint may register; a DTLS peer registers as its identity."""

    def check_register(self, request: RegisterRequest) -> Verdict:
        identity = request.origin.secure_identity
        if identity is not None and identity != request.endpoint:
            return Verdict(
                CoapCode.FORBIDDEN, f"identity {identity!r} may not register as {request.endpoint!r}"
            )
        return Verdict()

    def check_update(self, request: UpdateRequest, registration: Registration) -> Verdict:
        if (
            registration.secure_identity is not None
            and request.origin.secure_identity != registration.secure_identity
        ):
            return Verdict(CoapCode.FORBIDDEN, "a DTLS registration is updated over its own DTLS session")
        return Verdict()

    async def bind(self, request: RegisterRequest, endpoint: str) -> None:
        return None


@dataclass(slots=True)
class _EndpointLock:
    """The lock of one endpoint and how many registrations hold or wait for it (forgotten at 0)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class RegistrationService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        policy: RegistrationPolicy | None = None,
        limits: RegistrationLimits | None = None,
        lifetime_grace: float = 15.0,
        sweep_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.policy: RegistrationPolicy = policy or OpenPolicy()
        self.limits = limits or RegistrationLimits()
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
        self._locks: dict[str, _EndpointLock] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        now = time.time()
        for reg in await self.store.load_registrations():
            if reg.expires_at + self.lifetime_grace < now:
                await self.store.delete_registration(reg.endpoint, reg.registration_id)
                self.bus.publish(
                    EventKind.REGISTRATION_EXPIRED, reg.endpoint, registration_id=reg.registration_id
                )
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

    def _bad(self, endpoint: str, host: str, reason: str) -> UplinkResult:
        """4.00 for a registration beyond the limits; the event carries the reason (and at most
        the first 128 characters of the name)."""
        self.bus.publish(
            EventKind.REGISTRATION_REFUSED,
            endpoint[:128],
            code=CoapCode.BAD_REQUEST.dotted,
            host=host,
            reason=reason,
        )
        return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=reason[:100])

    async def register(self, request: RegisterRequest) -> UplinkResult:
        if request.lwm2m_version not in SUPPORTED_VERSIONS:
            return UplinkResult(CoapCode.PRECONDITION_FAILED, diagnostic="unsupported LwM2M version")
        if not 0 < request.lifetime <= MAX_LIFETIME:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic="lifetime out of range")
        try:
            parse_links_cached(request.object_links)
        except CodecError as exc:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=f"bad object links: {exc}"[:100])
        limits = self.limits
        beyond = (
            limits.check_endpoint(request.endpoint)
            or limits.check_binding(request.binding)
            or limits.check_links(request.object_links)
        )
        if beyond is not None:
            return self._bad(request.endpoint, request.origin.host, beyond)
        verdict = self.policy.check_register(request)
        if verdict.code is not None:
            self.bus.publish(
                EventKind.REGISTRATION_REFUSED,
                request.endpoint,
                code=verdict.code.dotted,
                host=request.origin.host,
                reason=verdict.reason,
            )
            return UplinkResult(verdict.code, diagnostic=verdict.reason[:100])
        if verdict.endpoint is not None and verdict.endpoint != request.endpoint:
            request = replace(request, endpoint=verdict.endpoint)
        waiting = self._locks.get(request.endpoint)
        if waiting is None:
            waiting = self._locks[request.endpoint] = _EndpointLock()
        waiting.users += 1
        try:
            await waiting.lock.acquire()
        except BaseException:
            waiting.users -= 1
            raise
        try:
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
            await asyncio.gather(self.store.save_registration(reg), self.policy.bind(request, reg.endpoint))
            self._index(reg)
        finally:
            waiting.lock.release()
            waiting.users -= 1
            if waiting.users == 0 and self._locks.get(request.endpoint) is waiting:
                del self._locks[request.endpoint]
        if old is not None:
            self.bus.publish(
                EventKind.REGISTRATION_REPLACED, reg.endpoint, old_registration_id=old.registration_id
            )
            self._run_hooks(self._after_removal, old, "replaced")
        # A summary: the event log keeps every event, and the object list is in the registration.
        self.bus.publish(
            EventKind.REGISTRATION_REGISTERED,
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
        verdict = self.policy.check_update(request, reg)
        if verdict.code is not None:
            self.bus.publish(
                EventKind.REGISTRATION_REFUSED,
                reg.endpoint,
                code=verdict.code.dotted,
                host=request.origin.host,
                reason=verdict.reason,
            )
            return UplinkResult(verdict.code, diagnostic=verdict.reason[:100])
        if request.object_links is not None:
            try:
                parse_links_cached(request.object_links)
            except CodecError as exc:
                return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=f"bad object links: {exc}"[:100])
            beyond = self.limits.check_links(request.object_links)
            if beyond is not None:
                return self._bad(reg.endpoint, request.origin.host, beyond)
        if request.binding is not None and (beyond := self.limits.check_binding(request.binding)) is not None:
            return self._bad(reg.endpoint, request.origin.host, beyond)
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
            EventKind.REGISTRATION_UPDATED,
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
        if reg.secure_identity is not None and request.origin.secure_identity != reg.secure_identity:
            return UplinkResult(CoapCode.FORBIDDEN, diagnostic="not the registration's DTLS session")
        await self.remove(reg, "deregistered")
        return UplinkResult(CoapCode.DELETED)

    async def remove(self, reg: Registration, reason: str) -> None:
        """Remove a registration (de-register, expiry, or an operator's action)."""
        self._unindex(reg)
        await self.store.delete_registration(reg.endpoint, reg.registration_id)
        self.bus.publish(
            EventKind(f"registration.{reason}"), reg.endpoint, registration_id=reg.registration_id
        )
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
