"""The listeners' uplink handler: what the server does when a client speaks first (Register,
Update, De-register, Send, Bootstrap; Core 1.1.1 §6.1, §6.2, §6.4.4), and what follows a
registration (queued requests flushed, observations re-established, the carrier's own requests).

Every `CoapListener` of a `Lwm2mServer` hands its uplinks to one `Uplink`; the Python API (the
facade in `server.lwm2m_server`) never goes through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lwm2m.numbers import CoapCode
from server.carriers.base import CarrierCloud
from server.carriers.policy import CarrierPolicy
from server.domain import Registration
from server.event_kinds import EventKind
from server.events import EventBus
from server.services.bootstrap import BootstrapServer
from server.services.directory import DeviceDirectory
from server.services.operations import Operation
from server.services.ports import Transport
from server.services.queue_mode import QueueMode
from server.services.registration import RegistrationService
from server.services.reporting import Reporting
from server.services.requests import (
    BootstrapRequest,
    DeregisterRequest,
    RegisterRequest,
    SendRequest,
    UpdateRequest,
    UplinkResult,
)


@dataclass(eq=False)
class Uplink:
    """The `UplinkHandler` of every listener of one server (see the module docstring)."""

    registrations: RegistrationService
    queue: QueueMode
    reporting: Reporting
    directory: DeviceDirectory
    carriers: CarrierPolicy
    bus: EventBus
    # The server's Python API, for the carriers' after-register requests (auto-observe).
    cloud: CarrierCloud
    listener_for: Callable[[Registration], Transport]
    # Run an operation on a registered, awake device now (queue mode's flush).
    perform_now: Callable[[Registration, Operation], Awaitable[Any]]
    # Take over a registration another cluster node holds (`ClusterHooks.adopt`).
    adopt: Callable[[str], Awaitable[bool]]
    request_timeout: float
    bootstrap_handler: BootstrapServer | None = None

    def attach(self) -> None:
        """Follow the registrations: flush, re-observe and forget as they come and go."""
        self.registrations.on_register(self._after_register)
        self.registrations.on_update(self._after_update)
        self.registrations.on_removal(self._after_removal)

    # --- UplinkHandler ---------------------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> UplinkResult:
        result = await self.registrations.register(request)
        if result.code == CoapCode.CREATED:
            reg = self.registrations.by_id(result.location[-1])
            if reg is not None:
                self.queue.heard_from(reg.endpoint)
        return result

    async def update(self, request: UpdateRequest) -> UplinkResult:
        result = await self.registrations.update(request)
        if result.code == CoapCode.NOT_FOUND and await self.adopt(request.registration_id):
            result = await self.registrations.update(request)
        if result.code == CoapCode.CHANGED:
            reg = self.registrations.by_id(request.registration_id)
            if reg is not None:
                self.queue.heard_from(reg.endpoint)
        return result

    async def deregister(self, request: DeregisterRequest) -> UplinkResult:
        return await self.registrations.deregister(request)

    async def send(self, request: SendRequest) -> UplinkResult:
        origin = request.origin
        reg = self.registrations.by_address(origin.listener, origin.host, origin.port)
        if reg is None and origin.secure_identity is not None:
            # Over DTLS the PSK identity names the client, whatever session (address) it sends on.
            reg = next(
                (
                    r
                    for r in self.registrations.all()
                    if r.listener == origin.listener and r.secure_identity == origin.secure_identity
                ),
                None,
            )
        if reg is None:
            return UplinkResult(CoapCode.FORBIDDEN, diagnostic="not registered")
        device = self.directory.device_of(reg.endpoint)
        if origin.secure_identity is None and (
            reg.secure_identity is not None
            or (device is not None and self.directory.requires_security(device, origin.listener))
        ):
            self.bus.publish(EventKind.SEND_REFUSED, reg.endpoint, reason="the endpoint must use DTLS")
            return UplinkResult(CoapCode.FORBIDDEN, diagnostic="the endpoint must use DTLS")
        self.queue.heard_from(reg.endpoint)
        return await self.reporting.send(reg, request)

    async def bootstrap(self, request: BootstrapRequest) -> UplinkResult:
        if self.bootstrap_handler is None:
            return UplinkResult(CoapCode.NOT_FOUND, diagnostic="no bootstrap server here")
        beyond = self.registrations.limits.check_endpoint(request.endpoint)
        if beyond is not None:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=beyond)
        return await self.bootstrap_handler.bootstrap(request)

    # --- what follows a registration -------------------------------------------------------------

    async def _after_register(self, reg: Registration, _reason: str) -> None:
        await self.reporting.forget_endpoint(reg.endpoint)
        await self.flush(reg)
        await self.carriers.after_register(self.cloud, reg)

    async def _after_update(self, reg: Registration, reason: str) -> None:
        if reason == "address":
            await self.reporting.reestablish(self.listener_for(reg), reg, self.request_timeout)
        await self.flush(reg)

    async def _after_removal(self, reg: Registration, reason: str) -> None:
        if self.registrations.get(reg.endpoint) is not None:
            # Replaced by a new Register (a reboot): the device is here, heard just now; forgetting
            # it would leave a queue-mode device asleep until its next Update.
            return
        self.queue.forget(reg.endpoint)
        await self.reporting.forget_endpoint(reg.endpoint)

    async def flush(self, reg: Registration) -> None:
        """Deliver the requests queued for `reg`'s endpoint (queue mode)."""
        await self.queue.flush(reg, self.perform_now)
