"""Bare aiocoap pieces for the ceilings and the load clients: loopback client sockets, a resource
that answers at once, and the Register request of OMA LwM2M Core 1.1.1 §5.3.1 (POST /rd?ep=...).

Design: every simulated device owns one aiocoap context bound to its own loopback UDP socket, as
a real device has its own address; the ceilings reuse the very same contexts and requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiocoap
import aiocoap.resource as coap_resource
from aiocoap.numbers.codes import Code

Address = tuple[str, int]

OBJECT_LINKS = b"</1/0>,</3/0>,</3303/0>,</3311/0>"
LINK_FORMAT = 40


async def client_context() -> aiocoap.Context:
    """One device socket: an aiocoap context bound to an ephemeral loopback port."""
    return await aiocoap.Context.create_server_context(None, bind=("127.0.0.1", 0), transports=["udp6"])


async def client_contexts(count: int) -> list[aiocoap.Context]:
    return list(await asyncio.gather(*(client_context() for _ in range(count))))


async def shutdown(contexts: Sequence[aiocoap.Context]) -> None:
    await asyncio.gather(*(c.shutdown() for c in contexts), return_exceptions=True)


def register_message(server: Address, endpoint: str, lifetime: int = 86400) -> aiocoap.Message:
    msg = aiocoap.Message(code=Code.POST, uri=f"coap://{server[0]}:{server[1]}", payload=OBJECT_LINKS)
    msg.opt.uri_host = None
    msg.opt.uri_path = ("rd",)
    msg.opt.uri_query = (f"ep={endpoint}", f"lt={lifetime}", "lwm2m=1.1", "b=U")
    msg.opt.content_format = LINK_FORMAT
    return msg


async def register(context: aiocoap.Context, server: Address, endpoint: str) -> None:
    """Send one Register; raise unless the answer is 2.01 Created."""
    response = await context.request(register_message(server, endpoint)).response
    if response.code != Code.CREATED:
        raise RuntimeError(f"register {endpoint}: {response.code}")


async def get(context: aiocoap.Context, server: Address, path: str) -> bytes:
    request = aiocoap.Message(code=Code.GET, uri=f"coap://{server[0]}:{server[1]}{path}")
    response = await context.request(request).response
    if not response.code.is_successful():
        raise RuntimeError(f"GET {path}: {response.code}")
    return bytes(response.payload)


class _Registrar(coap_resource.Resource):
    """POST /rd → 2.01 Created with a Location-Path, nothing else (the registration ceiling)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.count += 1
        return aiocoap.Message(code=Code.CREATED, location_path=("rd", str(self.count)))


class _Manufacturer(coap_resource.Resource):
    """GET → 2.05 with the text of /3/0/0 (the read ceiling)."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=Code.CONTENT, payload=b"China Mobile", content_format=0)


async def bare_server() -> tuple[aiocoap.Context, Address]:
    """A bare aiocoap server on loopback with POST /rd and GET /3/0/0."""
    site = coap_resource.Site()
    site.add_resource(["rd"], _Registrar())
    site.add_resource(["3", "0", "0"], _Manufacturer())
    context = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
    return context, ("127.0.0.1", bound_port(context))


@asynccontextmanager
async def bare_servers(count: int) -> AsyncIterator[list[Address]]:
    started = [await bare_server() for _ in range(count)]
    try:
        yield [address for _, address in started]
    finally:
        await shutdown([context for context, _ in started])


def bound_port(context: aiocoap.Context) -> int:
    for interface in context.request_interfaces:
        message_interface = interface.token_interface.message_interface
        sock = message_interface.transport.get_extra_info("socket")
        return int(sock.getsockname()[1])
    raise RuntimeError("aiocoap context has no interface")
