"""The emulated LwM2M client's observations (Core 1.1.1 §6.4, RFC 7641), observed from a raw CoAP
peer on loopback so that tokens, ACKs and Resets are under the test's control
(tests/integration/emulator_client_support.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import ACK, CON, NON, RST

from emulator.client.events import ClientEvent
from lwm2m import codec
from lwm2m.node import SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path
from tests.integration.emulator_client_support import MODEL, raw_peer, running, until


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
