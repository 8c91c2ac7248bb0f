"""Typed uplink requests (what a client asks of the server) and downlink messages (what the server
sends a client), independent of the CoAP library. The CoAP edge builds and reads these."""

from __future__ import annotations

from dataclasses import dataclass, field

from lwm2m.numbers import CoapCode


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an uplink came from: the listener that got it and the peer address."""

    listener: str
    host: str
    port: int
    # The DTLS identity of the peer when the datagram came through the DTLS terminator.
    secure_identity: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """`POST /rd?ep=&lt=&lwm2m=&b=&sms=&Q` (Core 1.1.1 §6.2.1, Transport §6.4.1)."""

    origin: Origin
    endpoint: str
    lifetime: int
    lwm2m_version: str
    binding: str
    queue_mode: bool
    sms: str | None
    object_links: str
    options: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """`POST /rd/<id>?lt=&b=&sms=` with an optional new object list (Core 1.1.1 §6.2.2)."""

    origin: Origin
    registration_id: str
    lifetime: int | None = None
    binding: str | None = None
    sms: str | None = None
    object_links: str | None = None
    options: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeregisterRequest:
    origin: Origin
    registration_id: str


@dataclass(frozen=True, slots=True)
class SendRequest:
    """LwM2M 1.1 Send: `POST /dp` with SenML (Core 1.1.1 §6.4.4)."""

    origin: Origin
    content_format: int | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class BootstrapRequest:
    """`POST /bs?ep=&pct=` (Core 1.1.1 §6.1.3)."""

    origin: Origin
    endpoint: str
    preferred_content_format: int | None = None
    options: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UplinkResult:
    """The answer to an uplink: a CoAP code, and for a registration its location."""

    code: CoapCode
    location: tuple[str, ...] = ()
    diagnostic: str = ""


@dataclass(frozen=True, slots=True)
class Downlink:
    """A request from the server to a client."""

    method: str  # GET, PUT, POST, DELETE, FETCH, IPATCH
    path: tuple[str, ...]
    payload: bytes = b""
    content_format: int | None = None
    accept: int | None = None
    query: tuple[str, ...] = ()
    observe: int | None = None
    confirmable: bool = True


@dataclass(frozen=True, slots=True)
class DownlinkResponse:
    code: int
    payload: bytes = b""
    content_format: int | None = None
    observe: int | None = None

    @property
    def success(self) -> bool:
        return 64 <= self.code < 96
