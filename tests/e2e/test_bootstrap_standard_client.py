"""A standards LwM2M client at OneNET's bootstrap server (OMA LwM2M Core 1.1.1 §6.1: client-
initiated bootstrap, Bootstrap-Delete / -Write / -Discover / -Finish; manual §5.1, §5.2;
platforms.md "Bootstrap"): `emulator.client.Lwm2mClient` over an object tree with objects 0 and
1 bootstraps at 127.0.1.1, then registers at the access server with the URI (and, over DTLS,
the identity and newly issued PSK) it was written. OneNET's own client, which answers the
Delete with 5.01, gets only `PUT /0/<inst>` and still finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from emulator.client.client import Lwm2mClient
from emulator.client.dtls import DtlsClientTunnel
from emulator.client.handler import DiscoverResult
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import Node
from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from server.carriers.base import ATTR_ACCESS_PSK, ATTR_PSK, AUTH_CODE_OPTION
from server.events import Event
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.e2e.carrier_support import IMEI, IMSI, eventually, host_map, provision, start_carrier_server

MODEL = builtin_registry()
ENDPOINT = f"{IMEI};{IMSI}"
AUTH = b"cmiot"


class RecordingTree(ObjectTreeHandler):
    """An object tree that records the bootstrap server's requests in order."""

    def __init__(self) -> None:
        super().__init__(MODEL)
        self.requests: list[str] = []

    async def delete(self, path: Path) -> CoapCode:
        self.requests.append(f"DELETE {path}")
        return await super().delete(path)

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        self.requests.append(f"PUT {path}")
        return await super().write(path, node, replace)

    async def discover(self, path: Path) -> DiscoverResult:
        self.requests.append(f"DISCOVER {path}")
        return await super().discover(path)


class OneNetStyleTree(RecordingTree):
    """OneNET's client: Bootstrap-Delete 5.01, writes outside the Security object 4.04."""

    async def delete(self, path: Path) -> CoapCode:
        self.requests.append(f"DELETE {path}")
        return CoapCode.NOT_IMPLEMENTED

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        if path.object_id != 0:
            self.requests.append(f"PUT {path}")
            return CoapCode.NOT_FOUND
        return await super().write(path, node, replace)


def factory_tree(tree: RecordingTree | None = None) -> RecordingTree:
    """A device whose factory configuration points at the bootstrap server (/0/0) and knows no
    LwM2M server yet."""
    tree = tree if tree is not None else RecordingTree()
    tree.add_instance(0, 0, {0: "coap://nbiotbt.heclouds.com:5683", 1: True, 2: 3, 10: 0})
    tree.add_instance(1, 5, {0: 99, 1: 60, 7: "U"})  # a stale server account
    tree.add_instance(3, 0, {0: "testbed", 1: "standard"})
    return tree


def client_for(tree: ObjectTreeHandler, remote: tuple[str, int]) -> Lwm2mClient:
    settings = ClientSettings(
        endpoint=ENDPOINT,
        server_host=remote[0],
        server_port=remote[1],
        lifetime=300,
        object_links=tree.object_links,
        extra_options=((AUTH_CODE_OPTION, AUTH),),
        request_timeout=3.0,
    )
    return Lwm2mClient(settings, tree, MODEL)


@asynccontextmanager
async def tunnel(address: tuple[str, int], identity: bytes, key: bytes) -> AsyncIterator[DtlsClientTunnel]:
    opened = DtlsClientTunnel(address, identity, key, handshake_timeout=5.0)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


def recorded(server: Lwm2mServer, kind: str) -> list[Event]:
    events: list[Event] = []
    server.bus.add_listener(lambda e: events.append(e) if e.kind == kind else None)
    return events


async def bootstrap(client: Lwm2mClient) -> None:
    finished = await client.bootstrap_request()
    await asyncio.wait_for(finished, 5.0)


def access_address(server: Lwm2mServer, uri: str) -> tuple[str, int]:
    """Where the written `coap://a.b.c.d:5683` / `coaps://a.b.c.d:5684` really listens."""
    parts = urlsplit(uri)
    assert parts.hostname is not None and parts.port is not None
    return host_map(server).route(parts.hostname, parts.port)


async def test_standard_client_gets_delete_write_0_and_1_discover_finish_then_registers_plain(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "onenet", auth_code=AUTH.decode(), obsv=False)
    finished = recorded(server, "bootstrap.finished")
    tree = factory_tree()
    bootstrap_address = server.listeners["onenet-bootstrap"].address
    async with client_for(tree, bootstrap_address) as client:
        await bootstrap(client)
    # Bootstrap-Delete / removed the stale server account, kept the bootstrap account (§6.1.7.6).
    assert 5 not in tree.objects[1].instances
    assert tree.get_value("/0/0/0") == "coap://nbiotbt.heclouds.com:5683"
    assert tree.get_value("/0/1/0") == "coap://127.0.1.2:5683"
    assert tree.get_value("/0/1/1") is False
    assert tree.get_value("/0/1/2") == 3  # NoSec
    assert tree.get_value("/0/1/10") == 1
    assert tree.get_value("/1/0/0") == 1
    assert tree.get_value("/1/0/7") == "U"
    await eventually(lambda: len(finished) == 1)
    assert finished[0].data["standards_client"] is True
    assert finished[0].data["server_uri"] == "coap://127.0.1.2:5683"
    assert tree.requests == ["DELETE /", "PUT /0/1", "PUT /1/0", "DISCOVER /"]

    uri = tree.get_value("/0/1/0")
    assert isinstance(uri, str)
    async with client_for(tree, access_address(server, uri)) as client:
        await client.register()
        registration = server.registration(ENDPOINT)
        assert registration is not None and registration.listener == "onenet"
        assert "</1/0>" in registration.object_links
    assert server.provisioning.device(device.id).endpoint == ENDPOINT  # type: ignore[union-attr]


async def test_standard_client_bootstraps_over_dtls_and_registers_with_the_issued_psk(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(
        server, "onenet", auth_code=AUTH.decode(), obsv=False, attributes={ATTR_PSK: "bspsk123"}
    )
    tree = factory_tree()
    async with tunnel(server.dtls["onenet-bootstrap"].address, IMEI.encode(), b"bspsk123") as bs:
        async with client_for(tree, bs.plain_address) as client:
            await bootstrap(client)
    uri, identity, key = tree.get_value("/0/1/0"), tree.get_value("/0/1/3"), tree.get_value("/0/1/5")
    assert uri == "coaps://127.0.1.2:5684"
    assert tree.get_value("/0/1/2") == 0  # PSK mode
    assert identity == IMEI.encode()
    assert isinstance(key, bytes) and len(key) == 16 and key.isalnum()
    stored = server.provisioning.device(device.id)
    assert stored is not None and stored.attributes[ATTR_ACCESS_PSK] == key.decode()

    assert isinstance(uri, str) and isinstance(identity, bytes)
    async with tunnel(access_address(server, uri), identity, key) as access:
        async with client_for(tree, access.plain_address) as client:
            await client.register()
    registration = server.registration(ENDPOINT)
    assert registration is not None and registration.secure_identity == IMEI


async def test_onenet_style_client_refusing_delete_gets_only_the_security_write(
    server_factory: ServerFactory,
) -> None:
    """OneNET's client answers Bootstrap-Delete 5.01 and writes to other objects 4.04."""
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code=AUTH.decode())
    finished = recorded(server, "bootstrap.finished")
    tree = factory_tree(OneNetStyleTree())
    async with client_for(tree, server.listeners["onenet-bootstrap"].address) as client:
        await bootstrap(client)
    assert tree.get_value("/0/1/0") == "coap://127.0.1.2:5683"
    assert 0 not in tree.objects[1].instances
    await eventually(lambda: len(finished) == 1)
    assert finished[0].data["standards_client"] is False
    assert tree.requests == ["DELETE /", "PUT /0/1"]
