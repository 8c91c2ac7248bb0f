"""OneNET's bootstrap server (manual §5.1, §5.2; platforms.md "Bootstrap"; OMA LwM2M Core 1.1.1
§6.1 client-initiated bootstrap, §6.1.7 Bootstrap-Delete / -Write / -Discover / -Finish).

Flow: `POST /bs?ep=` (with OneNET's auth code in option 63) is admitted by the device directory
like a Register (unknown device, wrong IMSI, wrong auth code, a device with a PSK in plaintext:
4.03) and answered
2.04; then, from the same listener:

1. Bootstrap-Delete `/`. A standards client answers 2.02 and gets the full sequence; OneNET's
   client answers 5.01 (it accepts only `PUT /0/<inst>`), so it gets only the Security write.
2. Bootstrap-Write `PUT /0/1`: Security object of the access server: URI exactly
   `coap://a.b.c.d:5683` (NoSec) or, when the bootstrap itself ran over DTLS,
   `coaps://a.b.c.d:5684` (PSK mode, identity = the device's PSK identity, secret = a **new**
   LwM2M-server PSK of 16 letters and digits, written through the device directory, whose index
   the access listener's DTLS reads: it accepts only the newest); bootstrap flag false, short server id 1,
   hold-off 0.
3. Standards clients also get `PUT /1/0` (Server object: short id 1, lifetime, binding U) and a
   Bootstrap-Discover `GET /` (link format) whose answer is logged.
4. Bootstrap-Finish `POST /bs`.

Each step's outcome is published as a `bootstrap.*` event; a failure ends the sequence (the
client's own timer then reports it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any, Protocol

from lwm2m import codec
from lwm2m.model import ModelRegistry
from lwm2m.node import ObjectInstance, SingleResource
from lwm2m.numbers import CoapCode, ContentFormat, ResourceType
from lwm2m.path import Path
from server.carriers.base import CarrierProfile, Refusal, psk_identity_of
from server.carriers.policy import ROLE_ACCESS, ROLE_BOOTSTRAP, CarrierPolicy
from server.event_kinds import EventKind
from server.events import EventBus
from server.services.directory import DeviceDirectory
from server.services.provisioning import Device
from server.services.requests import BootstrapRequest, Downlink, DownlinkResponse, UplinkResult

log = logging.getLogger(__name__)

SECURITY_MODE_PSK = 0
SECURITY_MODE_NOSEC = 3
ACCESS_SHORT_SERVER_ID = 1
ACCESS_SECURITY_INSTANCE = 1
PSK_ALPHABET = string.ascii_letters + string.digits
PSK_LENGTH = 16


class DownlinkTransport(Protocol):
    async def send(
        self, address: tuple[str, int], downlink: Downlink, timeout: float, *, token: bytes | None = None
    ) -> DownlinkResponse: ...


@dataclass(frozen=True, slots=True)
class AccessServer:
    """Where a bootstrapped device goes: an IPv4 address (OneNET's client parses only
    `coap://a.b.c.d:5683` / `coaps://a.b.c.d:5684`)."""

    host: str
    port: int = 5683
    dtls_port: int = 5684

    def uri(self, secure: bool) -> str:
        return f"coaps://{self.host}:{self.dtls_port}" if secure else f"coap://{self.host}:{self.port}"


def new_access_psk() -> str:
    """A fresh LwM2M-server PSK: 16 letters and digits (like OneNET's `cPYxj0cTs9qMVL72`)."""
    return "".join(secrets.choice(PSK_ALPHABET) for _ in range(PSK_LENGTH))


def security_instance(
    instance_id: int, uri: str, mode: int, identity: bytes = b"", secret: bytes = b""
) -> ObjectInstance:
    """Security object (0) instance of an LwM2M server (Core 1.1.1 Appendix E.1)."""
    values: list[tuple[int, Any, ResourceType]] = [
        (0, uri, ResourceType.STRING),
        (1, False, ResourceType.BOOLEAN),
        (2, mode, ResourceType.INTEGER),
        (3, identity, ResourceType.OPAQUE),
        (4, b"", ResourceType.OPAQUE),
        (5, secret, ResourceType.OPAQUE),
        (10, ACCESS_SHORT_SERVER_ID, ResourceType.INTEGER),
        (11, 0, ResourceType.INTEGER),
    ]
    return ObjectInstance(instance_id, {rid: SingleResource(rid, v, t) for rid, v, t in values})


def server_instance(lifetime: int = 86400, binding: str = "U") -> ObjectInstance:
    """Server object (1) instance 0 (Core 1.1.1 Appendix E.2)."""
    values: list[tuple[int, Any, ResourceType]] = [
        (0, ACCESS_SHORT_SERVER_ID, ResourceType.INTEGER),
        (1, lifetime, ResourceType.INTEGER),
        (6, False, ResourceType.BOOLEAN),
        (7, binding, ResourceType.STRING),
    ]
    return ObjectInstance(0, {rid: SingleResource(rid, v, t) for rid, v, t in values})


class BootstrapServer:
    """`Lwm2mServer.bootstrap_handler`: serves `/bs` on the carrier's bootstrap listeners."""

    def __init__(
        self,
        directory: DeviceDirectory,
        policy: CarrierPolicy,
        model: ModelRegistry,
        bus: EventBus,
        transports: dict[str, Any],
        access_servers: dict[str, AccessServer],
        *,
        timeout: float = 10.0,
    ) -> None:
        self.directory = directory
        self.policy = policy
        self.model = model
        self.bus = bus
        self.transports = transports
        # carrier name -> the access server its bootstrap server hands out
        self.access_servers = access_servers
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    async def bootstrap(self, request: BootstrapRequest) -> UplinkResult:
        listener = request.origin.listener
        profile = self.policy.profile_for(listener)
        if profile is None or self.policy.role_of(listener) != ROLE_BOOTSTRAP:
            return UplinkResult(CoapCode.NOT_FOUND, diagnostic="no bootstrap server here")
        admitted = self.directory.admit_bootstrap(request)
        if isinstance(admitted, Refusal):
            log.info("bootstrap of %s refused: %s", request.endpoint, admitted.reason)
            self.bus.publish(EventKind.BOOTSTRAP_REFUSED, request.endpoint, reason=admitted.reason)
            return UplinkResult(admitted.code)
        access = self.access_servers.get(profile.name)
        if access is None:
            return UplinkResult(CoapCode.SERVICE_UNAVAILABLE, diagnostic="no access server configured")
        task = asyncio.create_task(self._run(request, profile, admitted, access))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return UplinkResult(CoapCode.CHANGED)

    async def _run(
        self, request: BootstrapRequest, profile: CarrierProfile, device: Device, access: AccessServer
    ) -> None:
        transport = self.transports.get(request.origin.listener)
        if transport is None:
            return
        address = (request.origin.host, request.origin.port)
        endpoint = request.endpoint
        secure = request.origin.secure_identity is not None
        try:
            deleted = await self._send(transport, address, Downlink("DELETE", ()))
            standards = deleted.code == CoapCode.DELETED
            if secure:
                key = new_access_psk()
                identity = psk_identity_of(device) or endpoint
                security = security_instance(
                    ACCESS_SECURITY_INSTANCE,
                    access.uri(True),
                    SECURITY_MODE_PSK,
                    identity.encode(),
                    key.encode(),
                )
            else:
                key = None
                security = security_instance(ACCESS_SECURITY_INSTANCE, access.uri(False), SECURITY_MODE_NOSEC)
            path = Path(0, ACCESS_SECURITY_INSTANCE)
            written = await self._write(transport, address, path, security)
            if not written.success:
                raise _Failed(f"Security write answered {written.code}")
            if key is not None:
                await self._store_key(device, key)
            if standards:
                server = await self._write(transport, address, Path(1, 0), server_instance())
                if not server.success:
                    raise _Failed(f"Server write answered {server.code}")
                found = await self._send(transport, address, Downlink("GET", (), accept=ContentFormat.LINK))
                log.debug("bootstrap discover of %s: %s %r", endpoint, found.code, found.payload[:200])
            finished = await self._send(transport, address, Downlink("POST", ("bs",)))
            if not finished.success:
                raise _Failed(f"Bootstrap-Finish answered {finished.code}")
        except Exception as exc:
            log.info("bootstrap of %s failed: %s", endpoint, exc)
            self.bus.publish(EventKind.BOOTSTRAP_FAILED, endpoint, reason=str(exc))
            return
        self.bus.publish(
            EventKind.BOOTSTRAP_FINISHED,
            endpoint,
            server_uri=access.uri(secure),
            standards_client=standards,
            new_psk=secure,
        )

    async def _store_key(self, device: Device, key: str) -> None:
        await self.directory.issue_access_key(device, key, time.time())

    async def _write(
        self, transport: DownlinkTransport, address: tuple[str, int], path: Path, instance: ObjectInstance
    ) -> DownlinkResponse:
        payload = codec.encode(instance, path, ContentFormat.TLV, self.model)
        segments = tuple(str(i) for i in path.ids)
        return await self._send(
            transport, address, Downlink("PUT", segments, payload=payload, content_format=ContentFormat.TLV)
        )

    async def _send(
        self, transport: DownlinkTransport, address: tuple[str, int], downlink: Downlink
    ) -> DownlinkResponse:
        return await transport.send(address, downlink, self.timeout)

    async def drain(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _Failed(Exception):
    pass


def access_servers_from(listeners: list[Any], policy: CarrierPolicy) -> dict[str, AccessServer]:
    """The first access listener of each carrier that has a bootstrap listener, as the address
    written into the Security object (its `public_host`, else its `host`)."""
    result: dict[str, AccessServer] = {}
    carriers = {spec.carrier for spec in listeners if getattr(spec, "role", ROLE_ACCESS) == ROLE_BOOTSTRAP}
    for spec in listeners:
        if (
            spec.carrier in carriers
            and getattr(spec, "role", ROLE_ACCESS) == ROLE_ACCESS
            and spec.carrier not in result
        ):
            result[spec.carrier] = AccessServer(getattr(spec, "public_host", None) or spec.host)
    return result
