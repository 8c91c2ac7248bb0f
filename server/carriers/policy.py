"""Applying carrier profiles: which profile a listener speaks for, the `RegistrationPolicy` that
admits or refuses Register / Update by that profile, the per-listener DTLS key lookup, and what
the carrier does once a device registered (auto-subscriptions, object 19 application data).

Design choices:

* `CarrierPolicy.check_register` stays synchronous (the `RegistrationPolicy` protocol): it admits
  against the in-memory provisioning index and remembers the admitted device, which `bind` then
  records as the device's endpoint once the registration is stored.
* Listeners of the custom profile (not strict) keep the plain LwM2M server's rules: the
  fallback policy (identity == endpoint, or the SecurityService identity map) decides.
* A bootstrap listener accepts no Register (4.03): a device registers at the access server.
* Uplink application data: a stored notification of /19/0/0 at an object-19 carrier is
  republished as an `appdata.uplink` event (hex payload); `send_appdata` writes /19/1/0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from lwm2m.numbers import CoapCode, ContentFormat
from lwm2m.path import Path
from server.carriers import default_profiles
from server.carriers.base import (
    APPDATA_DOWNLINK,
    APPDATA_UPLINK,
    AutoObserve,
    CarrierCloud,
    CarrierProfile,
    Refusal,
)
from server.carriers.custom import CustomProfile
from server.domain import Registration
from server.events import Event, EventBus
from server.services.provisioning import Device, Provisioning
from server.services.registration import RegistrationPolicy
from server.services.requests import RegisterRequest, UpdateRequest

log = logging.getLogger(__name__)

ROLE_ACCESS = "access"
ROLE_BOOTSTRAP = "bootstrap"


class CarrierPolicy:
    """`RegistrationPolicy` dispatching by listener to its carrier profile."""

    def __init__(
        self,
        provisioning: Provisioning,
        fallback: RegistrationPolicy,
        profiles: dict[str, CarrierProfile] | None = None,
    ) -> None:
        self.provisioning = provisioning
        self.fallback = fallback
        self.profiles = profiles if profiles is not None else default_profiles()
        self._listeners: dict[str, tuple[CarrierProfile, str]] = {}
        self._admitted: dict[tuple[str, str], Device] = {}
        # The last refusal per endpoint (for logs, tests and the console).
        self.refusals: dict[str, Refusal] = {}
        # What the carrier last learned on its own per endpoint, set once it tried ({}: nothing).
        self.learned: dict[str, dict[str, Any]] = {}

    # --- listeners -------------------------------------------------------------------------------

    def attach_listener(self, name: str, carrier: str, role: str = ROLE_ACCESS) -> CarrierProfile:
        profile = self.profiles.get(carrier)
        if profile is None:
            raise ValueError(
                f"listener {name}: unknown carrier {carrier!r}; one of {', '.join(self.profiles)}"
            )
        self._listeners[name] = (profile, role)
        return profile

    def profile_for(self, listener: str) -> CarrierProfile | None:
        entry = self._listeners.get(listener)
        return entry[0] if entry is not None else None

    def role_of(self, listener: str) -> str:
        entry = self._listeners.get(listener)
        return entry[1] if entry is not None else ROLE_ACCESS

    def listeners_of(self, carrier: str, role: str) -> list[str]:
        return [n for n, (p, r) in self._listeners.items() if p.name == carrier and r == role]

    def _applies(self, listener: str) -> CarrierProfile | None:
        """The profile whose rules apply at `listener`; None = the plain server's rules."""
        profile = self.profile_for(listener)
        if profile is None or (isinstance(profile, CustomProfile) and not profile.strict):
            return None
        return profile

    def psk_lookup(self, listener: str) -> Callable[[bytes], bytes | None] | None:
        """The DTLS key lookup of a carrier listener; None = use the SecurityService."""
        profile = self._applies(listener)
        if profile is None:
            return None
        role = self.role_of(listener)

        def lookup(identity: bytes) -> bytes | None:
            return profile.psk_for(self.provisioning, identity, role)

        return lookup

    # --- RegistrationPolicy ----------------------------------------------------------------------

    def _refuse(self, endpoint: str, refusal: Refusal) -> CoapCode:
        log.info("refused %s: %s", endpoint, refusal.reason)
        self.refusals[endpoint] = refusal
        return refusal.code

    def check_register(self, request: RegisterRequest) -> CoapCode | None:
        listener = request.origin.listener
        profile = self._applies(listener)
        if profile is None:
            return self.fallback.check_register(request)
        if self.role_of(listener) == ROLE_BOOTSTRAP:
            return self._refuse(request.endpoint, Refusal(CoapCode.FORBIDDEN, "this is a bootstrap server"))
        bad = profile.check_registration_values(request.lifetime, request.binding)
        if bad is not None:
            return self._refuse(request.endpoint, bad)
        admitted = profile.admit(
            self.provisioning, request.endpoint, request.options, request.origin.secure_identity
        )
        if isinstance(admitted, Refusal):
            return self._refuse(request.endpoint, admitted)
        if admitted is not None:
            self._admitted[(listener, request.endpoint)] = admitted
        return None

    def check_update(self, request: UpdateRequest, registration: Registration) -> CoapCode | None:
        listener = request.origin.listener
        profile = self._applies(listener)
        if profile is None:
            return self.fallback.check_update(request, registration)
        bad = profile.check_registration_values(request.lifetime, request.binding)
        if bad is not None:
            return self._refuse(registration.endpoint, bad)
        admitted = profile.admit(
            self.provisioning,
            registration.endpoint,
            request.options,
            request.origin.secure_identity or registration.secure_identity,
        )
        if isinstance(admitted, Refusal):
            return self._refuse(registration.endpoint, admitted)
        return None

    # --- after the registration is stored ----------------------------------------------------------

    async def bind(self, request: RegisterRequest) -> Device | None:
        """Record the endpoint name of the admitted device (after a successful Register)."""
        device = self._admitted.pop((request.origin.listener, request.endpoint), None)
        if device is None:
            return None
        current = self.provisioning.device(device.id) or device
        return await self.provisioning.bind_endpoint(current, request.endpoint)

    async def after_register(self, cloud: CarrierCloud, reg: Registration) -> list[Path]:
        """The carrier's own requests after a Register (chapter 5 flows)."""
        profile = self.profile_for(reg.listener)
        if profile is None or self.role_of(reg.listener) != ROLE_ACCESS:
            return []
        device = self.provisioning.device_by_endpoint(reg.endpoint)
        if device is None:  # the endpoint may not be bound yet (bind runs concurrently)
            found = profile.find_device(self.provisioning, reg.endpoint)
            device = found if isinstance(found, Device) else None
        links = reg.objects.instances
        objects = reg.objects.objects
        paths: Iterable[Path] = [
            *links,
            *(Path(o) for o in objects if not any(p.object_id == o for p in links)),
        ]
        try:
            observed = await profile.after_register(cloud, reg.endpoint, paths, device)
        except Exception as exc:
            log.info("%s: auto-subscription of %s failed: %s", profile.name, reg.endpoint, exc)
            observed = []
        if device is not None:
            await self._learn(cloud, profile, reg.endpoint, device)
        return observed

    async def _learn(
        self, cloud: CarrierCloud, profile: CarrierProfile, endpoint: str, device: Device
    ) -> None:
        """Store what the carrier reads from the device on its own (OneNET: cell information)."""
        try:
            facts = await profile.device_facts(cloud, endpoint, device)
        except Exception as exc:
            log.info("%s: reading device facts of %s failed: %s", profile.name, endpoint, exc)
            facts = {}
        current = self.provisioning.device(device.id)
        if facts and current is not None:
            await self.provisioning.update_device(device.id, attributes={**current.attributes, **facts})
        self.learned[endpoint] = facts


class AppData:
    """Object 19 application data at the carriers that use it (CTWing, Huawei; manual §5.3,
    §5.6): uplink notifications of /19/0/0 become `appdata.uplink` events."""

    def __init__(
        self, bus: EventBus, policy: CarrierPolicy, listener_of: Callable[[str], str | None]
    ) -> None:
        self.bus = bus
        self.policy = policy
        self.listener_of = listener_of
        bus.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.kind != "notification" or event.endpoint is None:
            return
        listener = self.listener_of(event.endpoint)
        profile = self.policy.profile_for(listener) if listener is not None else None
        if profile is None or profile.rules.auto_observe is not AutoObserve.APPDATA:
            return
        uplink = str(APPDATA_UPLINK)
        values = [v for v in event.data.get("values", []) if str(v.get("path", "")).startswith(uplink)]
        if not values:
            return
        endpoint = event.endpoint
        asyncio.get_running_loop().call_soon(
            lambda: self.bus.publish("appdata.uplink", endpoint, carrier=profile.name, values=values)
        )


async def send_appdata(server: Any, endpoint: str, payload: bytes, *, timeout: float | None = None) -> None:
    """A downlink command: write `payload` to /19/1/0 (the module acknowledges it itself)."""
    await server.write(
        endpoint, APPDATA_DOWNLINK, payload, content_format=ContentFormat.OPAQUE, timeout=timeout
    )
