"""What the server sends to LwM2M clients it did not write, seen byte for byte by a raw UDP client
on loopback: partial updates, the choice of content format when the caller gives none, answers
that do not match the request, and requests to clients that died."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from lwm2m import codec
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import LwM2MObject, MultipleResource, Node, ObjectInstance, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path
from server.lwm2m_server import Lwm2mServer
from server.services.errors import DeviceTimeout, UndecodableAnswer
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.integration.raw_device import RawDevice, content

MODEL = builtin_registry()


@pytest.fixture
async def raw(server: Lwm2mServer) -> AsyncIterator[RawDevice]:
    device = await RawDevice.open(server.listeners["default"].address)
    yield device
    device.close()


def uri(request: aiocoap.Message) -> str:
    return "/" + "/".join(request.opt.uri_path)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_partial_update_of_a_resource_is_a_post_on_its_instance_carrying_only_that_resource(
    server: Lwm2mServer, raw: RawDevice, version: str
) -> None:
    await raw.register("partial", "</1/0>,</3/0>", lwm2m=version)
    await server.write("partial", "/1/0/1", 45, replace=False)
    await server.write("partial", "/3/0/6/1", 5, replace=False)
    first, second = raw.requests
    assert first.code == Code.POST and uri(first) == "/1/0"
    fmt = int(first.opt.content_format)
    assert codec.decode(first.payload, Path(1, 0), fmt, MODEL) == ObjectInstance(
        0, {1: SingleResource(1, 45, ResourceType.INTEGER)}
    )
    assert second.code == Code.POST and uri(second) == "/3/0"
    assert codec.decode(second.payload, Path(3, 0), int(second.opt.content_format), MODEL) == ObjectInstance(
        0, {6: MultipleResource(6, {1: 5}, ResourceType.INTEGER)}
    )


async def test_replacing_a_resource_is_still_a_put_on_the_resource(
    server: Lwm2mServer, raw: RawDevice
) -> None:
    await raw.register("replace", "</1/0>", lwm2m="1.0")
    await server.write("replace", "/1/0/1", 45)
    (request,) = raw.requests
    assert request.code == Code.PUT and uri(request) == "/1/0/1"
    assert int(request.opt.content_format) == ContentFormat.TLV


async def test_after_register_requests_follow_the_registration_answer_on_the_onenet_access_listener(
    server_factory: ServerFactory,
) -> None:
    server: Lwm2mServer = await server_factory(
        listeners=[ListenerSettings(name="onenet", host="127.0.1.2", port=0, carrier="onenet", role="access")]
    )
    product = await server.provisioning.create_product("OneNET", "onenet")
    await server.provisioning.create_device(
        product_id=product.id, imei="869975030000461", imsi="460041064826326"
    )
    temperature = codec.encode(
        ObjectInstance(0, {5700: SingleResource(5700, 21.5, ResourceType.FLOAT)}),
        Path(3303, 0),
        ContentFormat.TLV,
        MODEL,
    )

    def answer(request: aiocoap.Message) -> aiocoap.Message:
        if uri(request) == "/3303/0":
            return content(temperature, ContentFormat.TLV)
        return aiocoap.Message(code=Code.NOT_FOUND)

    device = await RawDevice.open(server.listeners["onenet"].address, answer=answer)
    try:
        await device.register("869975030000461;460041064826326", "</3303/0>", lwm2m="1.0")
        await device.wait_for_requests(1)
        kinds = [m.code for m in device.received]
        # The 2.01 is the first datagram the client hears; the automatic Observe only after it.
        assert kinds[0] == Code.CREATED, device.received
        first_request = device.requests[0]
        assert first_request.code == Code.GET and first_request.opt.observe == 0
        assert device.received.index(first_request) > 0
    finally:
        device.close()


DEVICE_3_0 = ObjectInstance(0, {0: SingleResource(0, "Acme", ResourceType.STRING)})


def answers_only(fmt: ContentFormat) -> Callable[[aiocoap.Message], aiocoap.Message]:
    """A client that supports one format: 5.00 to a read that does not ask for it (what a 1.1
    client without TLV answers to a read without Accept)."""

    def answer(request: aiocoap.Message) -> aiocoap.Message:
        if request.opt.accept != fmt:
            return aiocoap.Message(code=Code.INTERNAL_SERVER_ERROR)
        response = content(codec.encode(DEVICE_3_0, Path(3, 0), fmt, MODEL), fmt)
        if request.opt.observe == 0:
            response.opt.observe = 2
        return response

    return answer


@pytest.mark.parametrize(
    ("version", "root", "expected"),
    [
        ("1.0", "", ContentFormat.TLV),
        ("1.1", '</>;rt="oma.lwm2m";ct=110,', ContentFormat.SENML_JSON),
        ("1.1", '</>;rt="oma.lwm2m";ct="60 110 112 11542",', ContentFormat.SENML_CBOR),
        ("1.1", "", ContentFormat.SENML_CBOR),
    ],
)
async def test_reads_and_observes_without_a_format_ask_for_the_one_the_client_declared(
    server: Lwm2mServer, raw: RawDevice, version: str, root: str, expected: ContentFormat
) -> None:
    raw.answer = answers_only(expected)
    await raw.register("declared", root + "</3/0>", lwm2m=version)
    assert await server.read("declared", "/3/0") == DEVICE_3_0
    observation = await server.observe("declared", "/3/0")
    assert observation.node == DEVICE_3_0
    assert [r.opt.accept for r in raw.requests] == [expected, expected]


async def test_a_lwm2m_1_0_client_answers_a_resource_in_its_default_format(
    server: Lwm2mServer, raw: RawDevice
) -> None:
    raw.answer = lambda _request: content(b"Acme", None)
    await raw.register("resource", "</3/0>", lwm2m="1.0")
    assert await server.read("resource", "/3/0/0") == SingleResource(0, "Acme", ResourceType.STRING)
    assert raw.requests[0].opt.accept is None


async def test_an_explicit_format_still_wins_over_the_declared_one(
    server: Lwm2mServer, raw: RawDevice
) -> None:
    raw.answer = answers_only(ContentFormat.TLV)
    await raw.register("explicit", '</>;rt="oma.lwm2m";ct=110,</3/0>', lwm2m="1.1")
    assert await server.read("explicit", "/3/0", content_format=ContentFormat.TLV) == DEVICE_3_0
    assert raw.requests[0].opt.accept == ContentFormat.TLV


def tlv_of(node: Node, path: Path) -> aiocoap.Message:
    return content(codec.encode(node, path, ContentFormat.TLV, MODEL), ContentFormat.TLV)


MISMATCHED_ANSWERS = {
    "a different resource": tlv_of(SingleResource(1, "Other", ResourceType.STRING), Path(3, 0, 1)),
    "an instance for a resource": tlv_of(LwM2MObject(3, {0: DEVICE_3_0}), Path(3)),
    "a multiple resource for a single one": tlv_of(
        MultipleResource(0, {0: 1}, ResourceType.INTEGER), Path(3, 0, 0)
    ),
    "garbage": content(b"\xff\x00\x01", ContentFormat.TLV),
    "a format the server cannot decode": content(b"\x01\x02", 11545),
}


@pytest.mark.parametrize("answer", list(MISMATCHED_ANSWERS), ids=list(MISMATCHED_ANSWERS))
async def test_an_answer_that_does_not_match_the_request_is_an_undecodable_answer_with_the_reason(
    server: Lwm2mServer, raw: RawDevice, answer: str
) -> None:
    raw.answer = lambda _request: MISMATCHED_ANSWERS[answer]
    await raw.register("mismatch", "</3/0>", lwm2m="1.1")
    with pytest.raises(UndecodableAnswer) as failure:
        await server.read("mismatch", "/3/0/0")
    assert "/3/0/0" in str(failure.value)


async def test_a_lwm2m_cbor_answer_is_decoded(server: Lwm2mServer, raw: RawDevice) -> None:
    raw.answer = lambda _request: content(
        codec.encode(DEVICE_3_0, Path(3, 0), ContentFormat.LWM2M_CBOR, MODEL), ContentFormat.LWM2M_CBOR
    )
    await raw.register("cbor12", '</>;rt="oma.lwm2m";ct=11544,</3/0>', lwm2m="1.2")
    assert await server.read("cbor12", "/3/0") == DEVICE_3_0
    assert raw.requests[0].opt.accept == ContentFormat.LWM2M_CBOR


async def test_a_lwm2m_1_2_client_that_declares_only_lwm2m_cbor_is_written_in_it(
    server: Lwm2mServer, raw: RawDevice
) -> None:
    await raw.register("cbor-writes", '</>;rt="oma.lwm2m";ct=11544,</1/0>', lwm2m="1.2")
    await server.write("cbor-writes", "/1/0/1", 60)
    (request,) = raw.requests
    assert request.opt.content_format == ContentFormat.LWM2M_CBOR
    assert codec.decode(request.payload, Path(1, 0, 1), ContentFormat.LWM2M_CBOR, MODEL) == SingleResource(
        1, 60, ResourceType.INTEGER
    )


async def test_requests_to_a_client_that_died_leave_no_unretrieved_future_exception(
    server_factory: ServerFactory,
) -> None:
    """Every downlink has an owner that awaits its outcome: a read that timed out, an observe that
    timed out and requests still retransmitting at shutdown leave nothing for the garbage
    collector to report."""
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        server: Lwm2mServer = await server_factory(request_timeout=0.3)
        device = await RawDevice.open(server.listeners["default"].address)
        await device.register("dead", "</3/0>,</3303/0>", lwm2m="1.0")
        device.silent = True  # the client died: requests arrive and are never answered
        with pytest.raises(DeviceTimeout):
            await server.read("dead", "/3/0", timeout=0.3)
        with pytest.raises(DeviceTimeout):
            await server.observe("dead", "/3303/0", timeout=0.3)
        pending = asyncio.ensure_future(server.read("dead", "/3/0/0", timeout=30))
        await asyncio.sleep(0.05)  # aiocoap queues it behind the unanswered exchanges (NSTART 1)
        await server.stop()  # with requests still retransmitting
        with contextlib.suppress(Exception):
            await pending
        device.close()
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    never_retrieved = [c for c in reports if "never retrieved" in str(c.get("message"))]
    assert never_retrieved == [], never_retrieved


async def test_plain_text_asked_for_by_the_caller_is_used_not_mistaken_for_no_format(
    server: Lwm2mServer, raw: RawDevice
) -> None:
    raw.answer = lambda request: (
        content(b"Acme", ContentFormat.TEXT)
        if request.code == Code.GET
        else aiocoap.Message(code=Code.CHANGED)
    )
    await raw.register("text", "</3/0>,</1/0>", lwm2m="1.1")
    assert await server.read("text", "/3/0/0", content_format=ContentFormat.TEXT) == SingleResource(
        0, "Acme", ResourceType.STRING
    )
    await server.write("text", "/1/0/1", 45, content_format=ContentFormat.TEXT)
    observation = await server.observe("text", "/3/0/0", content_format=ContentFormat.TEXT)
    assert observation.values[0]["value"] == "Acme"
    read, write, observe = raw.requests
    assert read.opt.accept == ContentFormat.TEXT and observe.opt.accept == ContentFormat.TEXT
    assert write.opt.content_format == ContentFormat.TEXT and write.payload == b"45"


async def test_an_observe_answered_without_a_value_stands_with_no_first_value(
    server: Lwm2mServer, raw: RawDevice
) -> None:
    """What OneMO modules answer when the MCU has no value yet: an empty 2.05 with Observe."""

    def empty(request: aiocoap.Message) -> aiocoap.Message:
        response = content(b"", None)
        response.opt.observe = 1
        return response

    raw.answer = empty
    await raw.register("empty", "</3/0>", lwm2m="1.0")
    for path in ("/3/0/0", "/3/0"):
        observation = await server.observe("empty", path)
        assert observation.observed and observation.node is None and observation.values == []
