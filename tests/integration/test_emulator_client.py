"""The emulated LwM2M client against a test-only server on loopback (real UDP, port 0).

The "server" is an aiocoap context with one catch-all resource that records what the client
sends; for observations the test speaks raw CoAP from a plain UDP socket so that tokens, ACKs
and Resets are under its control (aiocoap's own client always picks fresh tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiocoap import Context, Message
from aiocoap import resource as coap_resource
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import ACK, CON, NON, RST

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.events import ClientEvent
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m import codec
from lwm2m.codec.link_format import parse_links
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import ObjectInstance, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path

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


# -- registration (Core 1.1.1 §6.2) ---------------------------------------------------------------


async def test_register_sends_query_and_link_payload_from_the_listening_port() -> None:
    async with running("1.0", extra_options=((63, b"auth-code"),)) as s:
        location = await s.client.register()
        assert location == "/rd/abc"
        assert s.client.registered
        (reg,) = s.server.received
        assert reg.code == Code.POST and reg.path == ("rd",)
        assert reg.query == ("ep=imei861234567890123", "lt=300", "lwm2m=1.0", "b=U")
        assert reg.content_format == ContentFormat.LINK
        assert reg.payload == b"</1/0>,</3/0>,</5>,</3303/0>"
        assert reg.option63 == b"auth-code"
        # Transport §6: the server reaches the client at the Register's source address.
        assert reg.source == s.client.local_address
        assert ClientEvent.REGISTERED in s.events


async def test_register_1_1_queue_mode_sends_q_flag_and_root_content_format() -> None:
    async with running("1.1", queue_mode=True) as s:
        await s.client.register()
        (reg,) = s.server.received
        assert reg.query == ("ep=imei861234567890123", "lt=300", "lwm2m=1.1", "b=U", "Q")
        links = parse_links(reg.payload)
        assert links[0].target == "/" and links[0].param("ct") == str(int(ContentFormat.SENML_CBOR))


async def test_register_1_0_queue_mode_uses_uq_binding() -> None:
    async with running("1.0", queue_mode=True) as s:
        await s.client.register()
        assert "b=UQ" in s.server.received[0].query


async def test_update_and_deregister_use_the_location() -> None:
    async with running() as s:
        await s.client.register()
        await s.client.update()
        await s.client.update(lifetime=600, binding="UQ", with_objects=True)
        await s.client.deregister()
        plain, full, dereg = s.server.received[1:]
        assert (plain.code, plain.path, plain.query, plain.payload) == (Code.POST, ("rd", "abc"), (), b"")
        assert full.query == ("lt=600", "b=UQ") and full.payload.startswith(b"</1/0>")
        assert (dereg.code, dereg.path) == (Code.DELETE, ("rd", "abc"))
        assert all(r.source == s.client.local_address for r in s.server.received)
        assert not s.client.registered
        assert s.events == [
            ClientEvent.REGISTERED,
            ClientEvent.UPDATED,
            ClientEvent.UPDATED,
            ClientEvent.DEREGISTERED,
        ]


async def test_rejected_register_raises_client_error_with_code_and_event() -> None:
    async with running() as s:
        s.server.register_code = Code.FORBIDDEN
        with pytest.raises(ClientError) as caught:
            await s.client.register()
        assert caught.value.code == int(Code.FORBIDDEN)
        assert s.events == [ClientEvent.REGISTER_FAILED]


async def test_remote_override_sends_to_the_other_address() -> None:
    async with running() as real:
        async with running(remote_override=("127.0.0.1", real.server_port)) as s:
            await s.client.register()
            assert real.server.received[0].query[0] == "ep=imei861234567890123"
            assert s.server.received == []


# -- device management (Core §6.3) ---------------------------------------------------------------


async def test_server_reads_device_instance_in_tlv_and_senml_json() -> None:
    async with running() as s:
        answer = await s.ask(Message(code=Code.GET, uri=s.uri("/3/0"), accept=ContentFormat.TLV))
        assert answer.code == Code.CONTENT and answer.opt.content_format == ContentFormat.TLV
        node = codec.decode(answer.payload, Path(3, 0), ContentFormat.TLV, MODEL)
        assert isinstance(node, ObjectInstance)
        assert node.resources[1] == SingleResource(1, "M5311", ResourceType.STRING)
        answer = await s.ask(Message(code=Code.GET, uri=s.uri("/3/0"), accept=ContentFormat.SENML_JSON))
        assert answer.opt.content_format == ContentFormat.SENML_JSON
        node = codec.decode(answer.payload, Path(3, 0), ContentFormat.SENML_JSON, MODEL)
        assert isinstance(node, ObjectInstance) and node.resources[9].value == 80  # type: ignore[union-attr]


async def test_default_read_formats_text_for_resource_tlv_for_1_0_instance_senml_cbor_for_1_1() -> None:
    async with running("1.0") as s:
        single = await s.ask(Message(code=Code.GET, uri=s.uri("/3/0/0")))
        assert (single.opt.content_format, single.payload) == (ContentFormat.TEXT, b"China Mobile")
        instance = await s.ask(Message(code=Code.GET, uri=s.uri("/3/0")))
        assert instance.opt.content_format == ContentFormat.TLV
    async with running("1.1") as s:
        instance = await s.ask(Message(code=Code.GET, uri=s.uri("/3/0")))
        assert instance.opt.content_format == ContentFormat.SENML_CBOR


async def test_unknown_paths_unsupported_formats_and_malformed_payloads() -> None:
    async with running() as s:
        assert (await s.ask(Message(code=Code.GET, uri=s.uri("/3/7")))).code == Code.NOT_FOUND
        assert (await s.ask(Message(code=Code.GET, uri=s.uri("/x/y")))).code == Code.NOT_FOUND
        not_acceptable = Message(code=Code.GET, uri=s.uri("/3/0"), accept=ContentFormat.TEXT)
        assert (await s.ask(not_acceptable)).code == Code.NOT_ACCEPTABLE
        unknown_format = Message(code=Code.PUT, uri=s.uri("/3/0/14"), payload=b"x", content_format=9999)
        assert (await s.ask(unknown_format)).code == Code.UNSUPPORTED_CONTENT_FORMAT
        # A TLV header announcing 5 bytes of value with 1 present (§7.4.3).
        broken = Message(code=Code.PUT, uri=s.uri("/3/0"), payload=b"\xc5\x0e+", content_format=11542)
        assert (await s.ask(broken)).code == Code.BAD_REQUEST
        assert s.tree.get_value("/3/0/14") == "+08:00"


async def test_write_replace_partial_update_and_read_only_refusal() -> None:
    async with running() as s:
        put = Message(code=Code.PUT, uri=s.uri("/3/0/14"), payload=b"+09:00", content_format=0)
        assert (await s.ask(put)).code == Code.CHANGED
        assert s.tree.get_value("/3/0/14") == "+09:00"
        update = ObjectInstance(0, {1: SingleResource(1, 300, ResourceType.INTEGER)})
        post = Message(
            code=Code.POST,
            uri=s.uri("/1/0"),
            payload=codec.encode(update, Path(1, 0), ContentFormat.TLV, MODEL),
            content_format=ContentFormat.TLV,
        )
        assert (await s.ask(post)).code == Code.CHANGED
        assert s.tree.get_value("/1/0/1") == 300 and s.tree.get_value("/1/0/7") == "U"
        read_only = Message(code=Code.PUT, uri=s.uri("/3/0/0"), payload=b"x", content_format=0)
        assert (await s.ask(read_only)).code == Code.METHOD_NOT_ALLOWED


async def test_execute_runs_the_callback_with_arguments() -> None:
    async with running() as s:
        seen: list[str] = []
        s.tree.on_execute("/3/0/4", seen.append)
        answer = await s.ask(Message(code=Code.POST, uri=s.uri("/3/0/4"), payload=b"0='now'"))
        assert answer.code == Code.CHANGED and seen == ["0='now'"]
        assert (await s.ask(Message(code=Code.POST, uri=s.uri("/3/0/0")))).code == Code.METHOD_NOT_ALLOWED


async def test_create_and_delete_an_instance() -> None:
    async with running() as s:
        new = ObjectInstance(1, {5700: SingleResource(5700, 19.0, ResourceType.FLOAT)})
        create = Message(
            code=Code.POST,
            uri=s.uri("/3303"),
            payload=codec.encode(new, Path(3303), ContentFormat.TLV, MODEL),
            content_format=ContentFormat.TLV,
        )
        created = await s.ask(create)
        assert created.code == Code.CREATED and tuple(created.opt.location_path) == ("3303", "1")
        assert s.tree.get_value("/3303/1/5700") == 19.0
        assert (await s.ask(Message(code=Code.DELETE, uri=s.uri("/3303/1")))).code == Code.DELETED
        assert (await s.ask(Message(code=Code.DELETE, uri=s.uri("/3303/1")))).code == Code.NOT_FOUND


async def test_discover_and_write_attributes() -> None:
    async with running() as s:
        attrs = Message(code=Code.PUT, uri=s.uri("/3/0/9?pmin=10&pmax=60"))
        assert (await s.ask(attrs)).code == Code.CHANGED
        answer = await s.ask(Message(code=Code.GET, uri=s.uri("/3/0"), accept=ContentFormat.LINK))
        assert answer.opt.content_format == ContentFormat.LINK
        links = {link.target: link for link in parse_links(answer.payload)}
        assert links["/3/0/9"].param("pmin") == "10" and links["/3/0/9"].param("pmax") == "60"
        assert links["/3/0/6"].param("dim") == "2"
        bad = Message(code=Code.PUT, uri=s.uri("/3/0/9?pmin=soon"))
        assert (await s.ask(bad)).code == Code.BAD_REQUEST


async def test_read_composite_over_fetch() -> None:
    async with running("1.1") as s:
        body = codec.encode_paths([Path(3, 0, 0), Path(3303, 0, 5700)], ContentFormat.SENML_JSON)
        fetch = Message(
            code=Code.FETCH,
            uri=s.uri("/"),
            payload=body,
            content_format=ContentFormat.SENML_JSON,
            accept=ContentFormat.SENML_JSON,
        )
        answer = await s.ask(fetch)
        assert answer.code == Code.CONTENT
        nodes = codec.decode_composite(answer.payload, ContentFormat.SENML_JSON, MODEL)
        assert nodes[Path(3, 0, 0)].value == "China Mobile"  # type: ignore[union-attr]
        assert nodes[Path(3303, 0, 5700)].value == 21.5  # type: ignore[union-attr]
        malformed = Message(
            code=Code.FETCH, uri=s.uri("/"), payload=b"[{", content_format=ContentFormat.SENML_JSON
        )
        assert (await s.ask(malformed)).code == Code.BAD_REQUEST


async def test_send_posts_senml_cbor_to_dp() -> None:
    async with running("1.1") as s:
        code = await s.client.send({Path(3303, 0, 5700): SingleResource(5700, 22.0, ResourceType.FLOAT)})
        assert code.dotted == "2.04"
        (sent,) = s.server.received
        assert (sent.path, sent.content_format) == (("dp",), ContentFormat.SENML_CBOR)
        nodes = codec.decode_composite(sent.payload, ContentFormat.SENML_CBOR, MODEL)
        assert nodes[Path(3303, 0, 5700)].value == 22.0  # type: ignore[union-attr]


async def test_bootstrap_writes_create_instances_and_finish_resolves() -> None:
    async with running() as s:
        finished = await s.client.bootstrap_request()
        assert s.server.received[0].query == ("ep=imei861234567890123",)
        security = ObjectInstance(
            0,
            {
                0: SingleResource(0, "coap://127.0.0.1:5683", ResourceType.STRING),
                1: SingleResource(1, False, ResourceType.BOOLEAN),
            },
        )
        write = Message(
            code=Code.PUT,
            uri=s.uri("/0/0"),
            payload=codec.encode(security, Path(0, 0), ContentFormat.TLV, MODEL),
            content_format=ContentFormat.TLV,
        )
        assert (await s.ask(write)).code == Code.CHANGED
        assert s.tree.get_value("/0/0/0") == "coap://127.0.0.1:5683"
        assert not finished.done()
        assert (await s.ask(Message(code=Code.POST, uri=s.uri("/bs")))).code == Code.CHANGED
        await asyncio.wait_for(finished, 1)
        assert s.events == [ClientEvent.BOOTSTRAP_REQUESTED, ClientEvent.BOOTSTRAP_FINISHED]


# -- observations, from a raw CoAP peer (Core §6.4, RFC 7641) ---------------------------------------


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


async def test_observe_notifies_after_set_value_with_increasing_sequence_and_cancel_by_reset() -> None:
    async with running(confirmable_notifications=True) as s, raw_peer() as peer:
        to = s.client.local_address
        peer.request(to, b"\x01\x02", "/3/0/9", observe=0)
        first = await peer.next()
        assert (first.mtype, first.code, first.payload) == (ACK, Code.CONTENT, b"80")
        assert first.opt.observe is not None
        assert s.events == [ClientEvent.OBSERVED]

        s.tree.set_value("/3/0/9", 75)
        second = await peer.next()
        assert (second.mtype, second.token, second.payload) == (CON, b"\x01\x02", b"75")
        assert second.opt.observe > first.opt.observe
        peer.send(Message(_mtype=ACK, _mid=second.mid, code=Code.EMPTY), to)
        await until(lambda: ClientEvent.NOTIFY_ACKED in s.events)

        s.tree.set_value("/3/0/9", 70)
        third = await peer.next()
        assert third.payload == b"70" and third.opt.observe > second.opt.observe
        peer.send(Message(_mtype=RST, _mid=third.mid, code=Code.EMPTY), to)
        await until(lambda: ClientEvent.OBSERVE_CANCELLED in s.events)
        assert s.tree.observed_paths == {}
        assert s.client.observations == {}
        s.tree.set_value("/3/0/9", 65)
        with pytest.raises(TimeoutError):
            await peer.next(timeout=0.3)


async def test_get_with_observe_1_on_the_same_token_cancels_and_answers_a_read() -> None:
    async with running() as s, raw_peer() as peer:
        to = s.client.local_address
        peer.request(to, b"\x07", "/3303/0/5700", observe=0)
        await peer.next()
        assert list(s.tree.observed_paths.values()) == [(Path(3303, 0, 5700),)]
        peer.request(to, b"\x07", "/3303/0/5700", observe=1)
        answer = await peer.next()
        assert answer.code == Code.CONTENT and answer.opt.observe is None and answer.payload == b"21.5"
        await until(lambda: s.tree.observed_paths == {})
        assert ClientEvent.OBSERVE_CANCELLED in s.events


async def test_notify_sends_non_notifications_and_resolves_delivery() -> None:
    async with running() as s, raw_peer() as peer:
        to = s.client.local_address
        peer.request(to, b"\x09", "/3/0/0", observe=0)
        await peer.next()
        (delivered,) = await s.client.notify(Path(3, 0, 0), SingleResource(0, "CMCC", ResourceType.STRING))
        notification = await peer.next()
        assert (notification.mtype, notification.payload) == (NON, b"CMCC")
        assert await asyncio.wait_for(delivered, 1) is True
        assert await s.client.notify(Path(5, 0, 1)) == []


async def test_step_attribute_suppresses_small_changes() -> None:
    async with running() as s, raw_peer() as peer:
        to = s.client.local_address
        attrs = Message(code=Code.PUT, uri=s.uri("/3303/0/5700?st=2"))
        assert (await s.ask(attrs)).code == Code.CHANGED
        peer.request(to, b"\x0a", "/3303/0/5700", observe=0)
        await peer.next()
        s.tree.set_value("/3303/0/5700", 22.0)
        with pytest.raises(TimeoutError):
            await peer.next(timeout=0.3)
        s.tree.set_value("/3303/0/5700", 23.5)
        assert (await peer.next()).payload == b"23.5"


async def test_pmin_defers_and_pmax_repeats_notifications() -> None:
    async with running() as s, raw_peer() as peer:
        to = s.client.local_address
        await s.tree.write_attributes(Path(3, 0, 9), {"pmin": "0.3", "pmax": "0.6"})
        loop = asyncio.get_running_loop()
        peer.request(to, b"\x0b", "/3/0/9", observe=0)
        await peer.next()
        started = loop.time()
        s.tree.set_value("/3/0/9", 50)
        deferred = await peer.next()
        assert deferred.payload == b"50" and loop.time() - started >= 0.25
        repeated = await peer.next()
        assert repeated.payload == b"50" and loop.time() - started >= 0.8


async def test_observe_unknown_path_answers_not_found_without_observation() -> None:
    async with running() as s, raw_peer() as peer:
        peer.request(s.client.local_address, b"\x0c", "/3/0/99", observe=0)
        answer = await peer.next()
        assert answer.code == Code.NOT_FOUND and answer.opt.observe is None
        assert s.client.observations == {} and s.events == []


async def test_observe_composite_over_fetch_notifies_the_whole_set() -> None:
    async with running("1.1") as s, raw_peer() as peer:
        body = codec.encode_paths([Path(3, 0, 9), Path(3303, 0, 5700)], ContentFormat.SENML_JSON)
        peer.mid += 1
        fetch = Message(_mtype=CON, _mid=peer.mid, _token=b"\x0d", code=Code.FETCH, observe=0, payload=body)
        fetch.opt.content_format = ContentFormat.SENML_JSON
        peer.send(fetch, s.client.local_address)
        first = await peer.next()
        assert first.code == Code.CONTENT and first.opt.observe is not None
        assert set(codec.decode_composite(first.payload, ContentFormat.SENML_JSON, MODEL)) == {
            Path(3, 0, 9),
            Path(3303, 0, 5700),
        }
        assert list(s.tree.observed_paths.values()) == [(Path(3, 0, 9), Path(3303, 0, 5700))]
        for path, value in (("/3303/0/5700", 30.0), ("/3/0/9", 60)):
            s.tree.set_value(path, value)
            notification = await peer.next()
            nodes = codec.decode_composite(notification.payload, ContentFormat.SENML_JSON, MODEL)
            assert nodes[Path.parse(path)].value == value  # type: ignore[union-attr]
            assert len(nodes) == 2
