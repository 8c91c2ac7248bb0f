"""What the LwM2M client asks of whoever owns the data: the AT module, or an in-memory object tree.

The client (`emulator.client.client.Lwm2mClient`) turns every server request into one call on a
`RequestHandler`, awaits it, and turns the result into the CoAP response. The AT module implements
this protocol by printing a URC (`+MIPLREAD: ...`) and waiting for the MCU's `AT+MIPL...RSP`;
`emulator.client.tree.ObjectTreeHandler` implements it over plain Python values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lwm2m.node import Node
from lwm2m.numbers import CoapCode
from lwm2m.path import Path


@dataclass(slots=True)
class ReadResult:
    """A Read / Observe answer. `node` is set when `code` is 2.05."""

    code: CoapCode
    node: Node | None = None
    # When set, the client encodes in this format if the server did not ask (Accept) for one.
    content_format: int | None = None


@dataclass(slots=True)
class DiscoverResult:
    code: CoapCode
    # Link-format entries: (path, attributes such as {"pmin": "10", "dim": "2"}).
    links: list[tuple[Path, dict[str, str]]] = field(default_factory=list)


class RequestHandler(Protocol):
    """Device-side answers to the server's Device Management and Information Reporting requests."""

    async def read(self, path: Path) -> ReadResult: ...

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode: ...

    async def execute(self, path: Path, arguments: str) -> CoapCode: ...

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode: ...

    async def discover(self, path: Path) -> DiscoverResult: ...

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        """Create an instance under object `path`; returns (code, new instance id)."""
        ...

    async def delete(self, path: Path) -> CoapCode: ...

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        """Start observing `path`; the answer is the first notification's content."""
        ...

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode: ...
