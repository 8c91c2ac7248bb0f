"""Acknowledge after commit (RFC 7252 §4.2, RFC 7641 §4.5): the server's empty ACK to a confirmable
notification leaves only once the notification's values are committed; a retransmission that
arrives meanwhile waits for the same commit and is not stored again; a failed write is not
acknowledged, and the device's retransmission stores it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiocoap.numbers.constants import TransportTuning

from emulator.client.client import Lwm2mClient
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from server.lwm2m_server import Lwm2mServer
from tests.integration.test_faults_loss import TEMPERATURE, make_client


@pytest.fixture
def fast_retransmissions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(TransportTuning, "ACK_TIMEOUT", 0.1)
    yield


async def observed_device(server: Lwm2mServer, endpoint: str) -> Lwm2mClient:
    client = make_client(endpoint, server.listeners["default"].address)
    await client.start()
    await client.register()
    await server.observe(endpoint, TEMPERATURE)
    return client


def temperature(value: float) -> SingleResource:
    return SingleResource(5700, value, ResourceType.FLOAT)


async def notify_values(server: Lwm2mServer, endpoint: str) -> list[Any]:
    points = await server.datapoints(endpoint, TEMPERATURE, limit=100)
    return [p.value for p in points if p.source == "notify"]


async def test_ack_waits_for_the_commit_and_retransmissions_are_not_stored_again(
    server: Lwm2mServer, monkeypatch: pytest.MonkeyPatch, fast_retransmissions: None
) -> None:
    client = await observed_device(server, "slow-commit")
    try:
        gate = asyncio.Event()
        entered = asyncio.Event()
        record_values = server.store.record_values

        async def held_back(endpoint: str, values: Any, source: str, *args: Any) -> None:
            if source == "notify":
                entered.set()
                await gate.wait()
            await record_values(endpoint, values, source, *args)

        monkeypatch.setattr(server.store, "record_values", held_back)
        (delivered,) = await client.notify(TEMPERATURE, temperature(30.5), confirmable=True)
        await asyncio.wait_for(entered.wait(), 2)
        # The write is held: 0.1 s ACK timeout, so the device retransmits several times; no ACK.
        await asyncio.sleep(0.8)
        assert not delivered.done()
        listener = server.listeners["default"]
        assert listener.counters.duplicate_notifications >= 2
        assert listener.counters.acks_deferred >= 3
        gate.set()
        assert await asyncio.wait_for(delivered, 5) is True
        await server.reporting.drain()
        assert await notify_values(server, "slow-commit") == [30.5]
    finally:
        await client.stop()


async def test_a_failed_write_is_not_acknowledged_and_the_retransmission_is_stored(
    server: Lwm2mServer, monkeypatch: pytest.MonkeyPatch, fast_retransmissions: None
) -> None:
    client = await observed_device(server, "failing-commit")
    try:
        record_values = server.store.record_values
        failures = []

        async def fails_once(endpoint: str, values: Any, source: str, *args: Any) -> None:
            if source == "notify" and not failures:
                failures.append(endpoint)
                raise OSError("database connection lost")
            await record_values(endpoint, values, source, *args)

        monkeypatch.setattr(server.store, "record_values", fails_once)
        (delivered,) = await client.notify(TEMPERATURE, temperature(31.5), confirmable=True)
        assert await asyncio.wait_for(delivered, 10) is True
        await server.reporting.drain()
        assert failures == ["failing-commit"]
        assert server.listeners["default"].counters.acks_withheld >= 1
        assert await notify_values(server, "failing-commit") == [31.5]
    finally:
        await client.stop()
