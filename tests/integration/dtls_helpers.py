"""Shared fixtures-as-functions for the DTLS tests: a plain aiocoap server, a CoAP GET, a recording
UDP relay, raw DTLS 1.2 ClientHello records (RFC 6347 4.2.1 / 4.3.2) and ``require_tool``."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource as coap_resource

from server.coap.dtls import DtlsServer
from tests import support

Address = tuple[str, int]


def require_tool(name: str) -> str:
    """The path of executable ``name``; skip the test without it, except under CI=true: fail."""
    return support.require_tool(name, "libcoap3-bin, which provides coap-client-openssl")


class RecordingResource(coap_resource.Resource):
    """GET /test answers 2.05 "hello" and remembers the sender address of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.remotes: list[Address] = []

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        sockaddr = request.remote.sockaddr  # type: ignore[attr-defined]
        host = sockaddr[0].removeprefix("::ffff:")
        self.remotes.append((host, sockaddr[1]))
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"hello")


@dataclass
class CoapServer:
    context: aiocoap.Context
    resource: RecordingResource
    address: Address


async def start_coap_server() -> CoapServer:
    resource = RecordingResource()
    site = coap_resource.Site()
    site.add_resource(["test"], resource)
    context = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
    port = _bound_port(context)
    return CoapServer(context=context, resource=resource, address=("127.0.0.1", port))


def _bound_port(context: aiocoap.Context) -> int:
    for interface in context.request_interfaces:
        message_interface = interface.token_interface.message_interface  # type: ignore[attr-defined]
        sock = message_interface.transport.get_extra_info("socket")
        return int(sock.getsockname()[1])
    raise RuntimeError("aiocoap server context has no interface")


async def coap_get(client: aiocoap.Context, address: Address, within: float = 5.0) -> aiocoap.Message:
    request = aiocoap.Message(code=aiocoap.GET, uri=f"coap://{address[0]}:{address[1]}/test")
    return await asyncio.wait_for(client.request(request).response, within)


async def new_coap_client() -> aiocoap.Context:
    return await aiocoap.Context.create_client_context(transports=["udp6"])


class _RelayEndpoint(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, side: str) -> None:
        self._relay = relay
        self._side = side

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self._relay._received(self._side, data, (addr[0], addr[1]))


@dataclass
class UdpRelay:
    """client ⇄ relay ⇄ server, keeping a copy of every datagram; the server sees one fixed peer."""

    target: Address
    to_server: list[bytes] = field(default_factory=list)
    to_client: list[bytes] = field(default_factory=list)
    _front: asyncio.DatagramTransport | None = None
    _back: asyncio.DatagramTransport | None = None
    _client: Address | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: _RelayEndpoint(self, "front"), local_addr=("127.0.0.1", 0)
        )
        self._back, _ = await loop.create_datagram_endpoint(
            lambda: _RelayEndpoint(self, "back"), local_addr=("127.0.0.1", 0), remote_addr=self.target
        )

    @property
    def address(self) -> Address:
        assert self._front is not None
        name = self._front.get_extra_info("sockname")
        return (name[0], name[1])

    def inject(self, data: bytes) -> None:
        """Send ``data`` to the server from the relay's own (the established peer's) address."""
        assert self._back is not None
        self._back.sendto(data)

    def _received(self, side: str, data: bytes, addr: Address) -> None:
        if side == "front":
            self._client = addr
            self.to_server.append(data)
            self.inject(data)
        elif self._client is not None and self._front is not None:
            self.to_client.append(data)
            self._front.sendto(data, self._client)

    def close(self) -> None:
        for transport in (self._front, self._back):
            if transport is not None:
                transport.close()


# -- raw DTLS 1.2 ClientHello (RFC 6347 4.2.1, 4.3.2; RFC 5246 7.4.1.2) -----------------------------

TLS_PSK_WITH_AES_128_CCM_8 = 0xC0A8


def client_hello(cookie: bytes = b"", *, message_seq: int = 0, record_seq: int = 0) -> bytes:
    """One DTLS record holding a complete ClientHello offering only TLS_PSK_WITH_AES_128_CCM_8."""
    body = (
        b"\xfe\xfd"  # client_version DTLS 1.2
        + os.urandom(32)  # random
        + b"\x00"  # session_id: empty
        + bytes([len(cookie)])
        + cookie
        + struct.pack("!HH", 2, TLS_PSK_WITH_AES_128_CCM_8)
        + b"\x01\x00"  # compression_methods: null
    )
    length = len(body).to_bytes(3, "big")
    handshake = b"\x01" + length + struct.pack("!H", message_seq) + b"\x00\x00\x00" + length + body
    return (
        b"\x16\xfe\xfd"
        + b"\x00\x00"  # epoch 0
        + record_seq.to_bytes(6, "big")
        + struct.pack("!H", len(handshake))
        + handshake
    )


def cookie_from_hello_verify_request(record: bytes) -> bytes | None:
    """The cookie of a HelloVerifyRequest record (handshake type 3), else None."""
    if len(record) < 13 + 12 + 3 or record[0] != 0x16 or record[13] != 3:
        return None
    body = record[25:]
    cookie_length = body[2]
    return bytes(body[3 : 3 + cookie_length])


@asynccontextmanager
async def dtls_stack(
    keys: dict[bytes, bytes], **server_options: Any
) -> AsyncIterator[tuple[CoapServer, DtlsServer]]:
    """A plain aiocoap server with /test behind a DtlsServer on an ephemeral loopback port."""
    coap = await start_coap_server()
    server = DtlsServer(("127.0.0.1", 0), coap.address, keys.get, **server_options)
    await server.start()
    try:
        yield coap, server
    finally:
        await server.stop()
        await coap.context.shutdown()


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll ``condition`` every 20 ms until it holds or ``within`` seconds pass; returns its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() >= deadline:
            return condition()
        await asyncio.sleep(0.02)
    return True
