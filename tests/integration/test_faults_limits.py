"""Bounded request bodies on the CoAP side (RFC 7252 §5.9.2.9 4.13 Request Entity Too Large;
RFC 7959 §2.9.3 for block-wise bodies): `Settings.max_payload` caps what the listener accepts,
whether the body arrives in one datagram or assembled from Block1 transfers."""

from __future__ import annotations

from aiocoap.numbers.codes import Code

from lwm2m.numbers import ContentFormat
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.integration.coap_peer import RawPeer

LIMIT = 600


def object_links(size: int) -> bytes:
    links = b""
    instance = 0
    while len(links) < size:
        links += f"</3303/{instance}>,".encode()
        instance += 1
    return links.rstrip(b",")


async def start(server_factory: ServerFactory) -> Lwm2mServer:
    server: Lwm2mServer = await server_factory(max_payload=LIMIT)
    return server


async def test_registration_body_over_max_payload_is_refused_with_4_13(server_factory: ServerFactory) -> None:
    server = await start(server_factory)
    peer = await RawPeer.create(server.listeners["default"].address)
    try:
        small = await peer.request(Code.POST, "/rd", ("ep=small",), object_links(300), ContentFormat.LINK)
        assert small.code == Code.CREATED
        # Over the limit in one datagram (under the 1024-byte block size) ...
        big = await peer.request(Code.POST, "/rd", ("ep=big",), object_links(900), ContentFormat.LINK)
        assert big.code == Code.REQUEST_ENTITY_TOO_LARGE
        # ... and assembled from Block1 transfers.
        huge = await peer.request(Code.POST, "/rd", ("ep=huge",), object_links(5000), ContentFormat.LINK)
        assert huge.code == Code.REQUEST_ENTITY_TOO_LARGE
    finally:
        await peer.close()
    assert server.registration("small") is not None
    assert server.registration("big") is None and server.registration("huge") is None


async def test_send_body_over_max_payload_is_refused_with_4_13(server_factory: ServerFactory) -> None:
    server = await start(server_factory)
    peer = await RawPeer.create(server.listeners["default"].address)
    try:
        registered = await peer.request(Code.POST, "/rd", ("ep=sender", "lwm2m=1.1"), b"</3303/0>", 40)
        assert registered.code == Code.CREATED
        response = await peer.request(Code.POST, "/dp", (), b"\x00" * (LIMIT + 1), ContentFormat.SENML_CBOR)
        assert response.code == Code.REQUEST_ENTITY_TOO_LARGE
    finally:
        await peer.close()
    assert await server.store.count_datapoints("sender") == 0
