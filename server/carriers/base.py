"""Carrier profiles: each carrier's rules as data plus a few hooks (manual §4.1 AT+MIPLCFG
`<platform>` / `<pattern>`, §4.6 AT+MIPLCREATEEX `<authcode>` / `<PSK>` / `<PSKID>` /
`<psk_encode>`, chapter 5 flows; facts the manual leaves out: shared/spec/platforms.md).

Design choices:

* **Selected by the listener.** A device picks its carrier by the address it contacts (each
  carrier host has its own listener), so a listener's `carrier` setting names its profile.
* **Admission is pure and synchronous.** `CarrierProfile.admit` reads the in-memory provisioning
  index only (it runs inside the registration hot path and inside the DTLS handshake) and
  returns the provisioned `Device` or a `Refusal` carrying the CoAP code (4.03 for an unknown
  device, a wrong IMSI, a wrong auth code or a DTLS identity of another device; 4.00 for a
  lifetime or binding the carrier does not accept).
* **Endpoint names** follow the manual's patterns: 1 `IMEI`, 2 `IMEI;IMSI`, 3 `urn:imei:IMEI`,
  4 `urn:imei-imsi:IMEI-IMSI`; a profile lists the ones its carrier accepts.
* **Per-device carrier data lives in `Device.attributes`** (no schema change), under the keys
  below; the device directory (`server.services.directory`) is their only writer of keys and the
  only DTLS key lookup.
* Hooks (`after_register`) receive a `CarrierCloud`: the few server operations a carrier
  performs on its own (observe, discover, read), typed as a protocol so that this package does
  not import the server composition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Protocol

from lwm2m.codec.link_format import Link
from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from server.domain import Device
from server.errors import RequestFailed

# Device.attributes keys used by the carrier layer.
ATTR_PSK: Final = "psk"  # OneNET: bootstrap-server PSK; CTWing / Huawei: the device PSK
ATTR_PSK_ENCODING: Final = "psk_encoding"  # "string" | "hex"; default: the profile's first
ATTR_PSK_IDENTITY: Final = "psk_identity"  # DTLS identity when not the IMEI (`<PSKID>`)
ATTR_ACCESS_PSK: Final = "access_psk"  # OneNET: LwM2M-server PSK (bootstrap-issued or accpsk)
ATTR_ACCESS_PSK_AT: Final = "access_psk_at"  # when it was issued (epoch seconds)
ATTR_CELL: Final = "cell"  # OneNET: cell information read from the monitor object 10290/0

# Option 63: OneNET's auth code on Register, Update and Bootstrap-Request (platforms.md).
AUTH_CODE_OPTION: Final = 63

# AT+MIPLCFG <pattern> numbers (manual §4.1).
PATTERN_IMEI, PATTERN_IMEI_IMSI, PATTERN_URN_IMEI, PATTERN_URN_IMEI_IMSI = 1, 2, 3, 4

# Objects the module answers by itself (security, server, device, firmware update, OneNET
# monitor): a carrier never auto-observes them (the manual's chapter-5 flows observe the MCU's).
MODULE_OBJECTS: Final = frozenset({0, 1, 3, 5, 10290})

APPDATA_UPLINK: Final = Path(19, 0, 0)
APPDATA_DOWNLINK: Final = Path(19, 1, 0)

# A module answers 5.03 while it has not yet taken in its own registration's 2.01: the
# platform's first requests are retried this often, this far apart.
BUSY_RETRIES: Final = 20
BUSY_DELAY: Final = 0.1


async def retry_busy(request: Callable[[], Awaitable[object]]) -> object:
    """Run `request`, retrying while the device answers 5.03 Service Unavailable."""
    for _ in range(BUSY_RETRIES):
        try:
            return await request()
        except RequestFailed as exc:
            if exc.code != CoapCode.SERVICE_UNAVAILABLE:
                raise
        await asyncio.sleep(BUSY_DELAY)
    return await request()


class AutoObserve(Enum):
    """What the platform subscribes to after a registration (chapter 5 flows)."""

    NONE = "none"
    INSTANCES = "instances"  # every registered object instance (OneNET §5.1, Yanfei §5.5)
    APPDATA = "appdata"  # /19/0/0 (CTWing §5.3, Huawei §5.6)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a device may not register or bootstrap here."""

    code: CoapCode
    reason: str


@dataclass(frozen=True, slots=True)
class CarrierRules:
    """A carrier's rules as data."""

    name: str
    platform: int  # AT+MIPLCFG <platform>
    endpoint_patterns: tuple[int, ...]
    # A device must be provisioned (created through the API) before it may register.
    requires_provisioning: bool = True
    # Check OneNET's auth code (option 63) against Device.auth_code.
    checks_auth_code: bool = False
    psk_encodings: tuple[str, ...] = ("string",)
    # Devices of this carrier connect over DTLS only (plaintext Register / Bootstrap: 4.03).
    requires_security: bool = False
    lifetime_range: tuple[int, int] = (1, 0x0FFFFFFF)
    bindings: frozenset[str] = frozenset({"U", "UQ"})
    auto_observe: AutoObserve = AutoObserve.NONE
    # After auto-observing, discover each object and read /3/0 (OneNET, `obsv` devices).
    discover_and_read_device: bool = False
    # Accept of the /19/0/0 observation (Huawei asks for application/octet-stream).
    appdata_accept: int | None = None
    has_bootstrap: bool = False
    monitor_object: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class DeviceRegistry(Protocol):
    """The provisioned devices as the carrier rules read and annotate them (a `Provisioning`)."""

    def device(self, device_id: int) -> Device | None: ...

    def device_by_endpoint(self, endpoint: str) -> Device | None: ...

    def devices_by_imei(self, imei: str, carrier: str | None = None) -> list[Device]: ...

    async def update_device(self, device_id: int, **values: Any) -> Device: ...


class CarrierCloud(Protocol):
    """What a carrier's hooks may ask of the server (a subset of `Lwm2mServer`)."""

    async def observe(self, endpoint: str, path: Path | str, *, content_format: int | None = None) -> Any: ...

    async def discover(self, endpoint: str, path: Path | str) -> list[Link]: ...

    async def read(self, endpoint: str, path: Path | str) -> Any: ...


def endpoint_name(pattern: int, imei: str, imsi: str | None) -> str:
    """The endpoint name a module builds with `pattern` (manual §4.1)."""
    if pattern == PATTERN_IMEI:
        return imei
    if pattern == PATTERN_IMEI_IMSI:
        return f"{imei};{imsi or ''}"
    if pattern == PATTERN_URN_IMEI:
        return f"urn:imei:{imei}"
    if pattern == PATTERN_URN_IMEI_IMSI:
        return f"urn:imei-imsi:{imei}-{imsi or ''}"
    raise ValueError(f"unknown endpoint pattern {pattern}")


def parse_endpoint(name: str, patterns: Iterable[int]) -> tuple[str, str | None] | None:
    """(IMEI, IMSI or None) when `name` follows one of `patterns`, else None."""
    for pattern in patterns:
        imei, imsi = _split(name, pattern)
        if imei is not None and imei.isdigit() and (imsi is None or imsi.isdigit()):
            return imei, imsi
    return None


def _split(name: str, pattern: int) -> tuple[str | None, str | None]:
    if pattern == PATTERN_IMEI:
        return name, None
    if pattern == PATTERN_IMEI_IMSI:
        imei, sep, imsi = name.partition(";")
        return (imei, imsi) if sep else (None, None)
    if pattern == PATTERN_URN_IMEI and name.startswith("urn:imei:"):
        return name[len("urn:imei:") :], None
    if pattern == PATTERN_URN_IMEI_IMSI and name.startswith("urn:imei-imsi:"):
        imei, sep, imsi = name[len("urn:imei-imsi:") :].partition("-")
        return (imei, imsi) if sep else (None, None)
    return None, None


def psk_identity_of(device: Device) -> str | None:
    """The DTLS identity a device uses: `<PSKID>` when provisioned, else its IMEI."""
    identity = device.attributes.get(ATTR_PSK_IDENTITY)
    return str(identity) if identity else device.imei


class CarrierProfile:
    """The default behaviour of a carrier, driven by its `CarrierRules`; carriers override hooks."""

    def __init__(self, rules: CarrierRules) -> None:
        self.rules = rules

    @property
    def name(self) -> str:
        return self.rules.name

    # --- admission -------------------------------------------------------------------------------

    def find_device(self, provisioning: DeviceRegistry, endpoint: str) -> Device | Refusal:
        """The provisioned device registering as `endpoint`, or why it is refused."""
        parsed = parse_endpoint(endpoint, self.rules.endpoint_patterns)
        if parsed is None:
            return Refusal(CoapCode.FORBIDDEN, f"endpoint name {endpoint!r} has no {self.name} pattern")
        imei, imsi = parsed
        devices = provisioning.devices_by_imei(imei, self.name)
        if not devices:
            return Refusal(CoapCode.FORBIDDEN, f"no {self.name} device with IMEI {imei}")
        device = devices[0]
        if imsi is not None and device.imsi is not None and imsi != device.imsi:
            return Refusal(CoapCode.FORBIDDEN, f"IMSI {imsi} is not the IMSI of device {device.id}")
        return device

    def admit(
        self,
        provisioning: DeviceRegistry,
        endpoint: str,
        options: Mapping[int, bytes],
        secure_identity: str | None,
    ) -> Device | Refusal | None:
        """Device (admitted), Refusal, or None (admitted without a provisioned device)."""
        found = self.find_device(provisioning, endpoint)
        if isinstance(found, Refusal):
            return found if self.rules.requires_provisioning else None
        if self.rules.checks_auth_code and found.auth_code:
            given = options.get(AUTH_CODE_OPTION, b"").decode("utf-8", "replace")
            if given != found.auth_code:
                return Refusal(CoapCode.FORBIDDEN, "wrong auth code")
        if secure_identity is not None and secure_identity != psk_identity_of(found):
            return Refusal(CoapCode.FORBIDDEN, f"DTLS identity {secure_identity!r} is not this device's")
        return found

    def check_registration_values(self, lifetime: int | None, binding: str | None) -> Refusal | None:
        low, high = self.rules.lifetime_range
        if lifetime is not None and not low <= lifetime <= high:
            return Refusal(CoapCode.BAD_REQUEST, f"lifetime must be {low}..{high} s at {self.name}")
        if binding is not None and binding.upper() not in self.rules.bindings:
            return Refusal(CoapCode.BAD_REQUEST, f"binding {binding} not supported at {self.name}")
        return None

    # --- names and DTLS ------------------------------------------------------------------------

    def default_endpoint(self, imei: str, imsi: str | None) -> str:
        """The endpoint name a device of this carrier registers with, by the first pattern of
        the carrier that the known values fill (the IMEI alone otherwise)."""
        for pattern in self.rules.endpoint_patterns:
            if pattern in (PATTERN_IMEI_IMSI, PATTERN_URN_IMEI_IMSI) and not imsi:
                continue
            return endpoint_name(pattern, imei, imsi)
        return imei

    def psk_attribute(self, role: str) -> str:
        """Which Device.attributes key holds the key for a listener of `role`."""
        return ATTR_PSK

    # --- hooks -----------------------------------------------------------------------------------

    def auto_observe_paths(self, object_links: Iterable[Path]) -> list[Path]:
        """The paths the platform observes after a registration."""
        links = list(object_links)
        if self.rules.auto_observe is AutoObserve.INSTANCES:
            return [p for p in links if p.instance_id is not None and p.object_id not in MODULE_OBJECTS]
        if self.rules.auto_observe is AutoObserve.APPDATA:
            if any(p.object_id == 19 and p.instance_id in (None, 0) for p in links):
                return [APPDATA_UPLINK]
        return []

    def wants_auto_observe(self, device: Device | None) -> bool:
        return self.rules.auto_observe is not AutoObserve.NONE

    async def device_facts(self, cloud: CarrierCloud, endpoint: str, device: Device) -> dict[str, Any]:
        """What the platform learns about a registered, provisioned device on its own (stored in
        `Device.attributes`); none by default."""
        return {}

    async def after_register(
        self, cloud: CarrierCloud, endpoint: str, object_links: Iterable[Path], device: Device | None
    ) -> list[Path]:
        """Subscribe as the carrier does (chapter 5); returns the observed paths."""
        if not self.wants_auto_observe(device):
            return []
        observed: list[Path] = []
        accept = self.rules.appdata_accept
        for path in self.auto_observe_paths(object_links):
            fmt = accept if path == APPDATA_UPLINK else None
            await retry_busy(lambda p=path, f=fmt: cloud.observe(endpoint, p, content_format=f))  # type: ignore[misc]
            observed.append(path)
        if self.rules.discover_and_read_device:
            for object_id in sorted({p.object_id for p in observed if p.object_id is not None}):
                await retry_busy(lambda o=object_id: cloud.discover(endpoint, Path(o)))  # type: ignore[misc]
            await retry_busy(lambda: cloud.read(endpoint, Path(3, 0)))
        return observed
