"""The emulated LwM2M client against a test-only server on loopback (real UDP, port 0).

The "server" is an aiocoap context with one catch-all resource that records what the client
sends (tests/integration/emulator_client_support.py). Registration, bootstrap and the server's
requests; observations are in test_emulator_client_observe.py.
"""

from __future__ import annotations

import asyncio

import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code

from emulator.client.client import ClientError
from emulator.client.events import ClientEvent
from lwm2m import codec
from lwm2m.codec.link_format import parse_links
from lwm2m.node import ObjectInstance, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path
from tests.integration.emulator_client_support import MODEL, running

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
