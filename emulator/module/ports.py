"""The boundary between the AT module and its LwM2M client.

The module drives the client through `ClientPort` (commands going down: open, update, close,
abort, notify) and the client reports back through two protocols the module implements:

* `RequestHandler` (`emulator.client.handler`): the server's read / write / execute / ... requests,
  which the module turns into `+MIPLREAD` ... URCs and answers from the MCU's `AT+MIPL...RSP`;
* `ClientEvents` (below): connection events, which the module turns into `+MIPLEVENT` URCs
  (manual §3.20 and the extra numbers in platforms.md "module side").

A fresh client is built for every login (AT+MIPLOPEN) by a `ClientFactory`, which receives a
`ClientOwner` (both protocols at once). Calls from a client that the module has since dropped
(AT+MIPLDELETE, a login timeout) are ignored by the owner, so a late callback is harmless.

Every `ClientPort` method is synchronous and must not block: it starts the work and reports the
outcome later through `ClientEvents`. `ClientEvents` methods are synchronous too and may be called
from inside a `ClientPort` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from emulator.client.handler import RequestHandler
from lwm2m.node import Node
from lwm2m.path import Path


class Release(Enum):
    """Release Assistance Indication of AT+MIPLNOTIFY `<flag>` 0x200 / 0x400 (manual §3.9)."""

    NONE = "none"
    AFTER_SEND = "after_send"  # 0x200: go idle once the message is sent
    AFTER_ACK = "after_ack"  # 0x400: go idle once the answer arrived


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the client needs for one login (AT+MIPLCREATE[EX] + AT+MIPLCFG + AT+MIPLOPEN)."""

    endpoint: str
    server_host: str
    server_port: int
    lifetime: int
    # "U", "UQ", or None when AT+MIPLCFG="binding" is 0 (the client sends no binding, server default).
    binding: str | None = "U"
    # Instances to list in Register ("</3200/0>"), module built-ins (/3/0) included.
    object_links: tuple[Path, ...] = ()
    bootstrap: bool = False
    dtls: bool = False
    psk_identity: bytes | None = None
    psk: bytes | None = None
    # OneNET auth code, sent in CoAP option 63 on Bootstrap-Request, Register and Update.
    auth_code: str | None = None
    # AT+MIPLCFG "platform" number: 0 OneNET, 1 CTWing, 2 Yanfei, 3 Huawei, 10 other.
    platform: int = 0
    cipher_suites: tuple[str, ...] = ()
    # AT+MIPLDTLSNAT: DTLS re-handshake interval in seconds, 0 = never.
    dtls_nat_interval: int = 120
    # The login must succeed within this many seconds (AT+MIPLOPEN <timeout>); the module enforces it.
    timeout: int = 30
    # OneNET monitor function (AT+MIPLCREATEEX <flag> bit 1 clear): the module answers /10290/0.
    monitor: bool = False
    user_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """One AT+MIPLNOTIFY, assembled over its `<index>` / `<flag>` parts."""

    observation_id: int
    # The observed path the notification belongs to, and the content for that path.
    path: Path
    node: Node
    confirmable: bool = False
    ackid: int | None = None
    # `<contentType>` mapped to a CoAP content format, None = the client's default.
    content_format: int | None = None
    release: Release = Release.NONE


class ClientPort(Protocol):
    """What the module asks of its LwM2M client."""

    def open(self, config: ClientConfig) -> None:
        """Bootstrap (if `config.bootstrap`) then register; report through ClientEvents."""
        ...

    def update(self, lifetime: int | None, with_objects: bool, object_links: tuple[Path, ...]) -> None:
        """Registration update; `lifetime` None = unchanged (the auto update of AT+MIPLUPDATESET);
        `object_links` is sent when `with_objects`. Reports update_succeeded/failed/timeout."""
        ...

    def close(self) -> None:
        """De-register; reports deregistered() or deregister_failed()."""
        ...

    def abort(self) -> None:
        """Drop the socket at once, no message sent (AT+MIPLDELETE, a login that timed out)."""
        ...

    def notify(self, notification: Notification) -> bool:
        """Send a notification. False = not accepted (uplink busy: `+CIS ERROR: 652`).
        A confirmable one is later reported by notify_acked(ackid) or notify_failed(ackid)."""
        ...


class ClientEvents(Protocol):
    """What the client reports to the module. Each turns into a `+MIPLEVENT: 0,<n>` when the
    model reports that event number (see `emulator.module.events`)."""

    def bootstrap_started(self) -> None: ...

    def bootstrap_succeeded(self, server_host: str, server_port: int, psk: bytes | None) -> None:
        """The LwM2M server learned from the bootstrap server (AT+MIPLDEVINFO? shows it)."""
        ...

    def bootstrap_failed(self) -> None: ...

    def connect_succeeded(self) -> None:
        """The (D)TLS session or socket to the LwM2M server is up."""
        ...

    def connect_failed(self) -> None: ...

    def register_succeeded(self) -> None: ...

    def register_failed(self) -> None: ...

    def register_timeout(self) -> None: ...

    def update_succeeded(self) -> None: ...

    def update_failed(self) -> None: ...

    def update_timeout(self) -> None: ...

    def deregistered(self) -> None: ...

    def deregister_failed(self) -> None: ...

    def notify_acked(self, ackid: int | None) -> None: ...

    def notify_failed(self, ackid: int | None) -> None: ...

    def device_deleted(self) -> None:
        """The platform deleted the device (event 31); the login is over."""
        ...

    def lifetime_expired(self) -> None:
        """The registration is gone without a de-register (e.g. an Update answered 4.04); the
        module's own lifetime timer reports the same when the client says nothing."""
        ...

    def dtls_ip_aged(self) -> None:
        """The IP changed and DTLS must re-handshake (event 32)."""
        ...

    def oversized_packet_dropped(self) -> None:
        """A received packet over 1500 bytes was dropped (event 33)."""
        ...


class ClientOwner(ClientEvents, RequestHandler, Protocol):
    """The object a client is built with: the module's side of both protocols."""


ClientFactory = Callable[[ClientOwner], ClientPort]
