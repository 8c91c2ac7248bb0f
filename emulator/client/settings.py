"""Configuration of the emulated LwM2M client (OMA TS LwM2M Core 1.1.1 §6.2.1 Register parameters,
Transport 1.1.1 §6.4 queue mode) and the object list it registers with.

Design: a frozen dataclass with LwM2M defaults; the AT module fills it from `AT+MIPLCONFIG` /
`AT+MIPLOPEN`. Registration's object links come from a callable so that the list is read at each
Register / Update with objects, never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from lwm2m.numbers import ContentFormat
from lwm2m.path import Path


@dataclass(frozen=True, slots=True)
class ObjectLinks:
    """What a Register payload lists: existing instances, and every object with its version
    (None = the object's default version, not sent as `ver=`)."""

    instances: Sequence[Path] = ()
    objects: Mapping[int, str | None] = field(default_factory=dict)

    @property
    def objects_without_instances(self) -> list[int]:
        with_instances = {p.object_id for p in self.instances}
        return sorted(o for o in self.objects if o not in with_instances)

    @property
    def versions(self) -> dict[int, str]:
        return {o: v for o, v in self.objects.items() if v is not None}


def _no_objects() -> ObjectLinks:
    return ObjectLinks()


@dataclass(frozen=True, slots=True)
class ClientSettings:
    endpoint: str
    server_host: str = "127.0.0.1"
    server_port: int = 5683
    lifetime: int = 86400
    binding: str = "U"
    lwm2m_version: str = "1.0"
    queue_mode: bool = False
    # Where the UDP socket listens (and sends from): LwM2M requires one address for both.
    local_host: str = "127.0.0.1"
    local_port: int = 0
    object_links: Callable[[], ObjectLinks] = _no_objects
    # Read format for instances / objects when the server sends no Accept; None = TLV for 1.0,
    # SenML CBOR for 1.1, LwM2M CBOR for 1.2.
    preferred_content_format: int | None = None
    # Extra options on Register / Update / Bootstrap-Request, e.g. OneNET's auth code in option 63.
    extra_options: Sequence[tuple[int, bytes]] = ()
    # Send to this (plaintext) address instead of server_host:server_port, e.g. a DTLS tunnel.
    remote_override: tuple[str, int] | None = None
    request_timeout: float = 10.0
    confirmable_notifications: bool = False
    auto_update: bool = False

    @property
    def is_1_1(self) -> bool:
        """LwM2M 1.1 or later (1.2 keeps the 1.1 registration forms: `Q`, `ct=`)."""
        return self.lwm2m_version != "1.0"

    @property
    def container_format(self) -> int:
        """The format of instance / object reads when the server does not say (Accept), and the
        one declared in the registration (`ct=`) by 1.1+ clients: TLV for 1.0, SenML CBOR for
        1.1, LwM2M CBOR (Core 1.2 §7.4.7) for 1.2."""
        if self.preferred_content_format is not None:
            return self.preferred_content_format
        if self.lwm2m_version == "1.0":
            return ContentFormat.TLV
        return ContentFormat.LWM2M_CBOR if self.lwm2m_version == "1.2" else ContentFormat.SENML_CBOR

    @property
    def remote(self) -> tuple[str, int]:
        return self.remote_override or (self.server_host, self.server_port)
