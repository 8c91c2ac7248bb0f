"""Domain records shared by the services, the carrier rules and the store (no I/O here): a
registration, a provisioned device, the bounds of a stored-value query."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from lwm2m.codec.link_format import RegisteredObjects, parse_object_links
from server.errors import BadArgument

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


@dataclass(slots=True)
class Registration:
    """One endpoint's current registration (Core 1.1.1 §6.2.1)."""

    endpoint: str
    registration_id: str
    listener: str
    host: str
    port: int
    lifetime: int
    binding: str
    lwm2m_version: str
    queue_mode: bool
    root_path: str
    object_links: str
    sms: str | None = None
    secure_identity: str | None = None
    registered_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def expires_at(self) -> float:
        return self.updated_at + self.lifetime

    @property
    def location(self) -> str:
        return f"/rd/{self.registration_id}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ROW_FIELDS}

    @classmethod
    def from_row(cls, row: Any) -> Registration:
        return cls(**{name: row[name] for name in _ROW_FIELDS})

    def as_dict(self) -> dict[str, Any]:
        data = self.as_row()
        data["expires_at"] = self.expires_at
        data["objects"] = {str(k): v for k, v in self.objects.objects.items()}
        data["instances"] = [str(p) for p in self.objects.instances]
        return data

    @property
    def objects(self) -> RegisteredObjects:
        return parse_links_cached(self.object_links)


_ROW_FIELDS = (
    "endpoint",
    "registration_id",
    "listener",
    "host",
    "port",
    "lifetime",
    "binding",
    "lwm2m_version",
    "queue_mode",
    "root_path",
    "object_links",
    "sms",
    "secure_identity",
    "registered_at",
    "updated_at",
)


class _LinkCache:
    """Registrations of a fleet repeat the same object lists: parse each distinct list once."""

    def __init__(self, size: int = 4096) -> None:
        self._cache: dict[str, RegisteredObjects] = {}
        self._size = size

    def get(self, text: str) -> RegisteredObjects:
        found = self._cache.get(text)
        if found is None:
            found = parse_object_links(text)
            if len(self._cache) >= self._size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = found
        return found


_link_cache = _LinkCache()


def parse_links_cached(text: str) -> RegisteredObjects:
    return _link_cache.get(text)


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    carrier: str
    product_id: str | None = None
    endpoint: str | None = None
    title: str | None = None
    imei: str | None = None
    imsi: str | None = None
    auth_code: str | None = None
    obsv: bool = True
    api_key: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Device:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def check_datapoint_window(start: float | None, end: float | None, after_id: int | None) -> None:
    """A stored-value query's bounds as the store can take them: times between 1970 and 9999 (no
    NaN), a cursor below 2**63; BadArgument otherwise."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not 0 <= value <= MAX_TIMESTAMP:  # also refuses NaN
            raise BadArgument(f"{name} is not a time between 1970 and 9999")
    if after_id is not None and not 0 <= after_id < 2**63:
        raise BadArgument("cursor out of range")
