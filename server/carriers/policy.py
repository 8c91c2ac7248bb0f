"""Applying carrier profiles: which profile a listener speaks for, and what the carrier does
once a device registered (auto-subscriptions, object 19 application data). Who may register and
under which name is the device directory's business (`server.services.directory`), which asks
the profiles this class holds.

Design choices:

* Listeners of the custom profile (not strict) are the open listener of a plain LwM2M server.
* A bootstrap listener accepts no Register (4.03): a device registers at the access server.
* Uplink application data: a stored notification of /19/0/0 at an object-19 carrier is
  republished as an `appdata.uplink` event (hex payload); `send_appdata` writes /19/1/0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from lwm2m.numbers import ContentFormat
from lwm2m.path import Path
from server.carriers import default_profiles
from server.carriers.base import (
    APPDATA_DOWNLINK,
    APPDATA_UPLINK,
    AutoObserve,
    CarrierCloud,
    CarrierProfile,
    DeviceRegistry,
    Refusal,
)
from server.carriers.custom import CustomProfile
from server.domain import Device, Registration
from server.event_kinds import EventKind
from server.events import Event, EventBus

log = logging.getLogger(__name__)

ROLE_ACCESS = "access"
ROLE_BOOTSTRAP = "bootstrap"


class CarrierPolicy:
    """The carrier profile of each listener, and the carrier's own work after a registration."""

    def __init__(
        self, provisioning: DeviceRegistry, profiles: dict[str, CarrierProfile] | None = None
    ) -> None:
        self.provisioning = provisioning
        self.profiles = profiles if profiles is not None else default_profiles()
        self._listeners: dict[str, tuple[CarrierProfile, str]] = {}
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

    def strict_profile(self, listener: str) -> CarrierProfile | None:
        """The profile whose rules apply at `listener`; None = an open listener (a plain LwM2M
        server's: any endpoint may register)."""
        profile = self.profile_for(listener)
        if profile is None or (isinstance(profile, CustomProfile) and not profile.strict):
            return None
        return profile

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
        if event.kind != EventKind.NOTIFICATION or event.endpoint is None:
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
            lambda: self.bus.publish(EventKind.APPDATA_UPLINK, endpoint, carrier=profile.name, values=values)
        )


class AppDataWriter(Protocol):
    """Where an application-data downlink goes (the server's Python API)."""

    async def write(
        self,
        endpoint: str,
        path: Path | str,
        value: Any,
        *,
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> None: ...


async def send_appdata(
    server: AppDataWriter, endpoint: str, payload: bytes, *, timeout: float | None = None
) -> None:
    """A downlink command: write `payload` to /19/1/0 (the module acknowledges it itself)."""
    await server.write(
        endpoint, APPDATA_DOWNLINK, payload, content_format=ContentFormat.OPAQUE, timeout=timeout
    )
