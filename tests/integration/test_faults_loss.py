"""Confirmable notifications through a lossy, duplicating, reordering link (RFC 7252 §4.2, §4.5;
RFC 7641 §4.5): 100 emulated devices behind the impairment proxy, every acknowledged notify
stored exactly once (acknowledge after commit), and the proxy's own behaviour.

CoAP's retransmission timer is shortened for these tests (ACK_TIMEOUT 0.1 s instead of 2 s, 8
retransmissions instead of 4) so that recovering from 20% loss takes seconds, not minutes; the
protocol is otherwise unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Iterator

import pytest
from aiocoap.numbers.constants import TransportTuning

from emulator.client.client import Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from emulator.impairment import Impairment, ImpairmentProxy, parse_address, run_proxy
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory

MODEL = builtin_registry()
DEVICES = 100
NOTIFIES = 5
TEMPERATURE = Path.parse("/3303/0/5700")


@pytest.fixture
def fast_retransmissions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(TransportTuning, "ACK_TIMEOUT", 0.1)
    monkeypatch.setattr(TransportTuning, "MAX_RETRANSMIT", 8)
    yield


def make_tree() -> ObjectTreeHandler:
    tree = ObjectTreeHandler(MODEL)
    tree.add_instance(1, 0, {0: 101, 1: 86400, 2: 1, 3: 60, 6: False, 7: "U"})
    tree.add_instance(3, 0, {0: "China Mobile", 1: "ML307R", 2: "869975030000461"})
    tree.add_instance(3303, 0, {5700: 20.0, 5701: "Cel"})
    return tree


def make_client(endpoint: str, remote: tuple[str, int]) -> Lwm2mClient:
    tree = make_tree()
    return Lwm2mClient(
        ClientSettings(
            endpoint=endpoint,
            server_host=remote[0],
            server_port=remote[1],
            lifetime=600,
            lwm2m_version="1.1",
            object_links=tree.object_links,
            request_timeout=20.0,
            confirmable_notifications=True,
        ),
        tree,
        MODEL,
    )


def reading(device: int, sequence: int) -> float:
    """A value no other notification carries: device 17, notify 3 -> 17003.25."""
    return device * 1000 + sequence + 0.25


async def test_every_acknowledged_notify_is_stored_exactly_once_through_loss_duplication_and_reordering(
    server_factory: ServerFactory, fast_retransmissions: None
) -> None:
    server: Lwm2mServer = await server_factory(request_timeout=30.0)
    listener = server.listeners["default"]
    impairment = Impairment(loss=0.2, duplicate=0.05, reorder=0.1, reorder_delay=0.03, jitter=0.005)
    async with ImpairmentProxy(listener.address, impairment=impairment, seed=8) as proxy:
        clients = [make_client(f"lossy-{i:03d}", proxy.address) for i in range(DEVICES)]
        try:
            for client in clients:
                await client.start()
            await asyncio.gather(*(client.register() for client in clients))
            await asyncio.gather(*(server.observe(c.settings.endpoint, TEMPERATURE) for c in clients))

            async def notify_all(index: int, client: Lwm2mClient) -> list[tuple[float, bool]]:
                outcomes: list[tuple[float, bool]] = []
                for sequence in range(NOTIFIES):
                    value = reading(index, sequence)
                    node = SingleResource(5700, value, ResourceType.FLOAT)
                    (delivered,) = await client.notify(TEMPERATURE, node, confirmable=True)
                    outcomes.append((value, await delivered))
                return outcomes

            results = await asyncio.wait_for(
                asyncio.gather(*(notify_all(i, c) for i, c in enumerate(clients))), timeout=40
            )
            await server.reporting.drain()
            acked_total = 0
            for index, client in enumerate(clients):
                points = await server.datapoints(client.settings.endpoint, TEMPERATURE, limit=1000)
                stored = Counter(p.value for p in points if p.source == "notify")
                assert all(count == 1 for count in stored.values()), f"stored twice: {stored}"
                for value, acked in results[index]:
                    if acked:
                        acked_total += 1
                        assert stored[value] == 1, f"device {index}: acknowledged {value} not stored"
                sent = {value for value, _ in results[index]}
                assert set(stored) <= sent
        finally:
            for client in clients:
                await client.stop()
    # The link really was bad, and the server really had to hold ACKs back and drop duplicates.
    assert proxy.counters.dropped > 100 and proxy.counters.duplicated > 10 and proxy.counters.reordered > 10
    assert listener.counters.duplicate_notifications > 0
    assert acked_total >= DEVICES * NOTIFIES * 0.99


async def test_proxy_with_a_fixed_seed_drops_the_same_datagrams() -> None:
    async def run() -> list[int]:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.5)
        received: list[int] = []
        async with ImpairmentProxy(sink.getsockname(), impairment=Impairment(loss=0.5), seed=3) as proxy:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for n in range(60):
                sender.sendto(bytes([n]), proxy.address)
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.05)
            sink.setblocking(False)
            while True:
                try:
                    received.append(sink.recv(10)[0])
                except BlockingIOError:
                    break
            sender.close()
        sink.close()
        return received

    first, second = await run(), await run()
    assert first == second
    assert 15 < len(first) < 45


async def test_rebinding_changes_the_source_port_the_server_sees() -> None:
    server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server_sock.bind(("127.0.0.1", 0))
    server_sock.setblocking(False)
    loop = asyncio.get_running_loop()
    async with ImpairmentProxy(server_sock.getsockname()) as proxy:
        module = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        module.bind(("127.0.0.1", 0))
        module.setblocking(False)
        module.sendto(b"hello", proxy.address)
        data, before = await loop.sock_recvfrom(server_sock, 100)
        assert data == b"hello"
        proxy.rebind()
        module.sendto(b"again", proxy.address)
        data, after = await loop.sock_recvfrom(server_sock, 100)
        assert data == b"again" and after[1] != before[1]
        assert proxy.flows() == {module.getsockname(): after[1]}
        # Replies to the new port reach the module; the old mapping is gone.
        server_sock.sendto(b"reply", after)
        assert await asyncio.wait_for(loop.sock_recv(module, 100), 1) == b"reply"
        module.close()
    server_sock.close()


def test_impairment_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError):
        Impairment(loss=1.5)
    with pytest.raises(ValueError):
        Impairment(delay=-1)
    assert parse_address("[::1]:5683") == ("::1", 5683)
    assert parse_address("127.0.0.1:15683") == ("127.0.0.1", 15683)


async def _echo_through(proxy_address: tuple[str, int], sender: socket.socket, count: int) -> int:
    """Send `count` datagrams from `sender` through the proxy; how many came back from the echo."""
    loop = asyncio.get_running_loop()
    for n in range(count):
        sender.sendto(bytes([n]), proxy_address)
    received = 0
    try:
        while True:
            await asyncio.wait_for(loop.sock_recv(sender, 10), 0.2)
            received += 1
    except TimeoutError:
        return received


async def _udp_echo() -> tuple[asyncio.DatagramTransport, tuple[str, int]]:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
            self.transport.sendto(data, addr)  # type: ignore[attr-defined]

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Echo, local_addr=("127.0.0.1", 0)
    )
    return transport, transport.get_extra_info("sockname")[:2]


def _module_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def test_a_flow_setting_impairs_only_that_module() -> None:
    echo, address = await _udp_echo()
    cut, clean = _module_socket(), _module_socket()
    try:
        async with ImpairmentProxy(address) as proxy:
            proxy.set_flow(cut.getsockname(), Impairment(loss=1.0))
            assert await _echo_through(proxy.address, cut, 10) == 0
            assert await _echo_through(proxy.address, clean, 10) == 10
            proxy.set_flow(cut.getsockname(), None)
            assert await _echo_through(proxy.address, cut, 10) == 10
    finally:
        cut.close()
        clean.close()
        echo.close()


async def test_run_proxy_applies_fleet_and_per_module_settings_until_cancelled() -> None:
    echo, address = await _udp_echo()
    cut, delayed = _module_socket(), _module_socket()
    listen_port = _module_socket()
    proxy_address = listen_port.getsockname()
    listen_port.close()
    host, port = cut.getsockname()
    task = asyncio.create_task(
        run_proxy(proxy_address, address, delay=0.05, flows={f"{host}:{port}": {"loss": 1.0}})
    )
    try:
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await _echo_through(proxy_address, delayed, 3) == 3
        assert loop.time() - started >= 0.1  # 50 ms each way
        assert await _echo_through(proxy_address, cut, 3) == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        cut.close()
        delayed.close()
        echo.close()
