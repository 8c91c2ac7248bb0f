"""Bootstrap as OneNET's client does it (manual §5.1, §5.2; platforms.md "Bootstrap"): the
`RequestHandler` of a bootstrapping client accepts Bootstrap-Write of Security instances only, and
the LwM2M server is read from the first Security instance that is not a bootstrap server.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from emulator.client.handler import DiscoverResult, ReadResult
from lwm2m.node import Node, ObjectInstance, SingleResource
from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from transport.address_plan import DTLS_PORT

_SERVER_URI = re.compile(r"^(coaps?)://(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class BootstrappedServer:
    """The LwM2M server a bootstrap wrote into the Security object."""

    host: str
    port: int
    secure: bool
    identity: bytes | None
    psk: bytes | None


def parse_server_uri(uri: str) -> tuple[str, int, bool] | None:
    """(host, port, secure) of exactly `coap://a.b.c.d:5683` or `coaps://a.b.c.d:5684` (the form
    OneNET's client parses, platforms.md), else None."""
    match = _SERVER_URI.match(uri)
    if match is None:
        return None
    scheme, host, port_text = match.groups()
    port = int(port_text)
    if (scheme, port) not in (("coap", 5683), ("coaps", DTLS_PORT)):
        return None
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return None
    return host, port, scheme == "coaps"


def _value(instance: ObjectInstance, resource_id: int) -> object:
    node = instance.resources.get(resource_id)
    return node.value if isinstance(node, SingleResource) else None


def server_from_security(instances: Mapping[int, ObjectInstance]) -> BootstrappedServer | None:
    """The first Security instance that is not a bootstrap server (resource 1 false)."""
    for instance_id in sorted(instances):
        instance = instances[instance_id]
        if _value(instance, 1) is True:
            continue
        uri = _value(instance, 0)
        parsed = parse_server_uri(uri) if isinstance(uri, str) else None
        if parsed is None:
            return None
        host, port, secure = parsed
        identity, secret = _value(instance, 3), _value(instance, 5)
        return BootstrappedServer(
            host,
            port,
            secure,
            bytes(identity) if isinstance(identity, bytes | bytearray) and identity else None,
            bytes(secret) if isinstance(secret, bytes | bytearray) and secret else None,
        )
    return None


class BootstrapTarget:
    """The `RequestHandler` of a bootstrapping OneNET client: accepts Bootstrap-Write of Security
    instances only (other objects 4.04, Delete 5.01, everything else 4.05)."""

    def __init__(self) -> None:
        self.security: dict[int, ObjectInstance] = {}

    async def read(self, path: Path) -> ReadResult:
        return ReadResult(CoapCode.NOT_FOUND)

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        if path.object_id == 0 and path.is_instance and isinstance(node, ObjectInstance):
            assert path.instance_id is not None
            self.security[path.instance_id] = node
            return CoapCode.CHANGED
        return CoapCode.NOT_FOUND

    async def execute(self, path: Path, arguments: str) -> CoapCode:
        return CoapCode.METHOD_NOT_ALLOWED

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode:
        return CoapCode.METHOD_NOT_ALLOWED

    async def discover(self, path: Path) -> DiscoverResult:
        return DiscoverResult(CoapCode.NOT_FOUND)

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        if path.object_id == 0 and isinstance(node, ObjectInstance):
            self.security[node.id] = node
            return CoapCode.CREATED, node.id
        return CoapCode.NOT_FOUND, None

    async def delete(self, path: Path) -> CoapCode:
        return CoapCode.NOT_IMPLEMENTED

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        return ReadResult(CoapCode.NOT_FOUND)

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode:
        return CoapCode.NOT_FOUND
