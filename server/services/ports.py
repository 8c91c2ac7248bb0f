"""What the services need from the layers around them, declared here as Protocols so that no
service imports the CoAP edge (`server.coap`) or the server facade (`server.lwm2m_server`):

* `Transport` — the CoAP edge as device management and reporting use it (a `CoapListener`):
  send one request, start an observation (`ObservationHandle`).
* `ServerApi` — the Python API of `Lwm2mServer` as the services built on it use it (FOTA, offline
  commands, push): reads, writes, events, registrations.

`Observation`, what `Lwm2mServer.observe` returns, is declared here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lwm2m.node import Node
from lwm2m.path import Path
from server.domain import Device, Registration
from server.events import EventBus, Subscription
from server.services.provisioning import Provisioning
from server.services.queue_mode import QueueMode
from server.services.registration import RegistrationService
from server.services.requests import Downlink, DownlinkResponse
from server.settings import Settings
from server.store.repository import Store

# What a notification handler returns: a future that completes once the values are committed
# (the ACK is sent then; an exception withholds it), or None when there is nothing to wait for.
NotificationHandler = Callable[[DownlinkResponse], "asyncio.Future[Any] | None"]


class ObservationHandle(Protocol):
    """A running observation on a client (the CoAP edge's handle)."""

    token: bytes

    def cancel(self) -> None:
        """Forget the observation locally; the next notification is answered with a Reset."""


class Transport(Protocol):
    """What device management and reporting need from the CoAP edge (a `CoapListener`)."""

    async def send(
        self, address: tuple[str, int], downlink: Downlink, timeout: float, *, token: bytes | None = None
    ) -> DownlinkResponse: ...

    async def observe(
        self,
        address: tuple[str, int],
        downlink: Downlink,
        timeout: float,
        on_notification: NotificationHandler,
        on_end: Callable[[Exception | None], None],
    ) -> tuple[DownlinkResponse, ObservationHandle | None]: ...


class Endpoint(Protocol):
    """Where a listener listens (its plain CoAP address)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class SecureEndpoint(Protocol):
    """Where a DTLS terminator listens."""

    @property
    def address(self) -> tuple[str, int]: ...


@dataclass(frozen=True, slots=True)
class Observation:
    """What `observe` returns: the observation id and the first value."""

    id: int
    endpoint: str
    paths: tuple[Path, ...]
    node: Node | None
    values: list[dict[str, Any]]
    observed: bool


class ServerApi(Protocol):
    """The part of `Lwm2mServer` the services built on its Python API use."""

    @property
    def settings(self) -> Settings: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def dtls(self) -> Mapping[str, SecureEndpoint]: ...

    # Set by `start`: services reach them only once it ran.
    registrations: RegistrationService
    queue: QueueMode
    provisioning: Provisioning

    @property
    def store(self) -> Store: ...

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    def listener_for(self, reg: Registration) -> Endpoint: ...

    def registration(self, endpoint: str) -> Registration | None: ...

    def device_of(self, endpoint: str) -> Device | None: ...

    def endpoint_of(self, device: Device) -> str | None: ...

    def subscribe(
        self, *, endpoint: str | None = None, kinds: Iterable[str] | None = None, maxsize: int = 10_000
    ) -> Subscription: ...

    async def read(
        self,
        endpoint: str,
        path: Path | str,
        *,
        content_format: int | None = None,
        timeout: float | None = None,
        queue: bool = False,
    ) -> Node: ...

    async def write(
        self,
        endpoint: str,
        path: Path | str,
        value: Any,
        *,
        replace: bool = True,
        content_format: int | None = None,
        timeout: float | None = None,
        queue: bool = False,
    ) -> None: ...

    async def execute(
        self,
        endpoint: str,
        path: Path | str,
        arguments: str = "",
        *,
        timeout: float | None = None,
        queue: bool = False,
    ) -> None: ...

    async def observe(
        self,
        endpoint: str,
        path: Path | str | Sequence[Path | str],
        *,
        content_format: int | None = None,
        attributes: Mapping[str, float | int | None] | None = None,
        timeout: float | None = None,
    ) -> Observation: ...
