"""A test-only LwM2M server for the emulated client on loopback (real UDP, port 0): an aiocoap
context with one catch-all resource that records what the client sends (`running`), and a bare
UDP CoAP peer (`raw_peer`) for observations, so that tokens, ACKs and Resets are under the test's
control (aiocoap's own client always picks fresh tokens)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiocoap import Context, Message
from aiocoap import resource as coap_resource
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import CON

from emulator.client.client import Lwm2mClient
from emulator.client.events import ClientEvent
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry

MODEL = builtin_registry()


@dataclass
class Received:
    code: Code
    path: tuple[str, ...]
    query: tuple[str, ...]
    payload: bytes
    content_format: int | None
    source: tuple[str, int]
    option63: bytes | None


@dataclass
class RecordingServer(coap_resource.Resource):
    """Answers /rd, /rd/<id>, /bs and /dp like an LwM2M server and records every request."""

    received: list[Received] = field(default_factory=list)
    register_code: Code = Code.CREATED

    def __post_init__(self) -> None:
        super().__init__()

    async def render(self, request: Message) -> Message:
        option63 = request.opt.get_option(63)
        host, port = request.remote.sockaddr[:2]
        self.received.append(
            Received(
                request.code,
                tuple(request.opt.uri_path),
                tuple(request.opt.uri_query),
                request.payload,
                request.opt.content_format,
                (host.removeprefix("::ffff:"), port),
                option63[0].value if option63 else None,
            )
        )
        path = tuple(request.opt.uri_path)
        if path == ("rd",) and request.code == Code.POST:
            answer = Message(code=self.register_code)
            if self.register_code == Code.CREATED:
                answer.opt.location_path = ("rd", "abc")
            return answer
        if path == ("rd", "abc") and request.code == Code.POST:
            return Message(code=Code.CHANGED)
        if path == ("rd", "abc") and request.code == Code.DELETE:
            return Message(code=Code.DELETED)
        if path in (("bs",), ("dp",)) and request.code == Code.POST:
            return Message(code=Code.CHANGED)
        return Message(code=Code.NOT_FOUND)


@dataclass
class Setup:
    server: RecordingServer
    server_context: Context
    server_port: int
    client: Lwm2mClient
    tree: ObjectTreeHandler
    events: list[ClientEvent]

    def uri(self, path: str) -> str:
        host, port = self.client.local_address
        return f"coap://{host}:{port}{path}"

    async def ask(self, message: Message) -> Message:
        return await asyncio.wait_for(self.server_context.request(message).response, 5)


def make_tree() -> ObjectTreeHandler:
    tree = ObjectTreeHandler(MODEL)
    tree.add_instance(1, 0, {0: 101, 1: 86400, 7: "U"})
    tree.add_instance(3, 0, {0: "China Mobile", 1: "M5311", 9: 80, 14: "+08:00", 6: {0: 1, 1: 5}})
    tree.add_object(5)
    tree.add_instance(3303, 0, {5700: 21.5})
    return tree


async def _port_of(context: Context) -> int:
    for interface in context.request_interfaces:
        transport = interface.token_interface.message_interface.transport
        port: int = transport.get_extra_info("socket").getsockname()[1]
        return port
    raise AssertionError("no transport")


@contextlib.asynccontextmanager
async def running(version: str = "1.0", **overrides: object) -> AsyncIterator[Setup]:
    server = RecordingServer()
    server_context = await Context.create_server_context(server, bind=("127.0.0.1", 0), transports=["udp6"])
    server_port = await _port_of(server_context)
    tree = make_tree()
    events: list[ClientEvent] = []
    settings = ClientSettings(
        endpoint="imei861234567890123",
        server_port=server_port,
        lifetime=300,
        lwm2m_version=version,
        object_links=tree.object_links,
        request_timeout=3,
        **overrides,  # type: ignore[arg-type]
    )
    client = Lwm2mClient(settings, tree, MODEL, on_event=events.append)
    await client.start()
    try:
        yield Setup(server, server_context, server_port, client, tree, events)
    finally:
        await client.stop()
        await server_context.shutdown()


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll a condition on state the client changes from its own tasks."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


class RawPeer(asyncio.DatagramProtocol):
    """A bare UDP CoAP endpoint: sends the exact messages a test builds, queues what arrives.
    Message ids, types and tokens are set through aiocoap's underscore arguments, which exist for
    exactly this: code that manages them itself."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.mid = 100

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait(Message.decode(data))

    def send(self, message: Message, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(message.encode(), to)

    def request(self, to: tuple[str, int], token: bytes, path: str, **options: object) -> None:
        self.mid += 1
        message = Message(_mtype=CON, _mid=self.mid, _token=token, code=Code.GET, **options)  # type: ignore[arg-type]
        message.opt.uri_path = tuple(p for p in path.split("/") if p)
        self.send(message, to)

    async def next(self, timeout: float = 2.0) -> Message:
        return await asyncio.wait_for(self.inbox.get(), timeout)


@contextlib.asynccontextmanager
async def raw_peer() -> AsyncIterator[RawPeer]:
    transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        RawPeer, local_addr=("127.0.0.1", 0)
    )
    try:
        yield peer
    finally:
        transport.close()
