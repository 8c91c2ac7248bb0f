"""Cluster nodes in one process (two `Lwm2mServer`s with their `ClusterNode`s on the same
PostgreSQL database and NATS server): queued requests follow the device to its new owner, and a
single process stays what it was."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import aiocoap
import pytest
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import ACK, CON

from emulator.client.client import Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.fleet import build_device_tree
from lwm2m.model.builtin import builtin_registry
from lwm2m.path import Path
from server.cluster import LocalNode
from server.cluster.node import ClusterNode
from server.lwm2m_server import Lwm2mServer
from server.services.device_management import values_to_json
from server.services.errors import UnknownEndpoint
from server.services.operations import Read, Write
from tests.conftest import make_settings
from tests.integration.cluster_support import shared_nats_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pair(postgres_url: str) -> AsyncIterator[dict[str, Lwm2mServer]]:
    nats_url = shared_nats_url()
    name = f"test-{uuid.uuid4().hex[:10]}"
    servers: dict[str, Lwm2mServer] = {}
    try:
        for node_id in ("A", "B"):
            server = Lwm2mServer(make_settings(postgres_url))
            server.cluster = ClusterNode(server, node_id, nats_url, cluster=name)
            await server.start()
            servers[node_id] = server
        yield servers
    finally:
        for server in servers.values():
            if server.started:
                await server.stop()


async def _registered_client(
    endpoint: str, server: Lwm2mServer, *, queue_mode: bool = False
) -> tuple[Lwm2mClient, object]:
    """A device registered at `server` (in queue mode: lifetime 300 s, binding UQ)."""
    model = builtin_registry()
    tree = build_device_tree(model, endpoint)
    host, port = server.listeners["default"].address
    settings = ClientSettings(
        endpoint=endpoint, server_host=host, server_port=port, object_links=tree.object_links
    )
    if queue_mode:
        settings = replace(settings, lifetime=300, binding="UQ", queue_mode=True)
    client = Lwm2mClient(settings, tree, model)
    await client.start()
    await client.register()
    return client, tree


async def test_requests_queued_through_b_are_delivered_by_the_devices_new_owner(
    pair: dict[str, Lwm2mServer],
) -> None:
    a, b = pair["A"], pair["B"]
    endpoint = "869975030019101"
    client, tree = await _registered_client(endpoint, a, queue_mode=True)
    try:
        for _ in range(50):
            if b.cluster.node_id and await b.cluster.owner_of(endpoint) == "A":  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        target = Path.parse("/1/0/1")
        write = Write(target, tuple(values_to_json(b.dm.node_for_write(target, 777), target)))
        request_id = await b.enqueue(endpoint, write)
        assert request_id > 0
        assert [r.id for r in await a.store.pending_requests(endpoint)] == [request_id]
        await a.stop()  # the owner goes away with the request still queued

        with b.subscribe(endpoint=endpoint, kinds=("request.delivered", "registration.replaced")) as events:
            host, port = b.listeners["default"].address
            client.settings = replace(client.settings, server_host=host, server_port=port)
            await client.register()
            seen = {}
            while len(seen) < 2:
                event = await events.get(timeout=10)
                seen[event.kind] = event
        assert seen["registration.replaced"].data["from_node"] == "A"
        assert seen["request.delivered"].data["id"] == request_id
        assert tree.get_value("/1/0/1") == 777  # type: ignore[attr-defined]
        assert await b.store.pending_requests(endpoint) == []
    finally:
        await client.stop()


async def test_an_endpoint_nobody_holds_is_unknown_on_every_node(pair: dict[str, Lwm2mServer]) -> None:
    with pytest.raises(UnknownEndpoint):
        await pair["B"].read("869975030019199", "/3/0/0")


async def test_a_single_process_keeps_the_local_answers(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = await server_factory()
    assert isinstance(server.cluster, LocalNode)
    assert (await server.cluster.status())["clustered"] is False
    with pytest.raises(UnknownEndpoint):
        await server.read("nobody", "/3/0/0")
    with pytest.raises(UnknownEndpoint):
        await server.enqueue("nobody", Read(Path.parse("/3/0/0")))


async def _notify_through(
    server: Lwm2mServer, token: bytes, mid: int
) -> tuple[aiocoap.Message, tuple[str, int]]:
    """Send a notification (CON, /3303/0/5700 = 42.5) on `token` to the server's listener from a
    fresh socket; returns the answer and the socket's address."""
    notification = aiocoap.Message(code=Code.CONTENT, payload=b"42.5")
    notification.mtype, notification.mid, notification.token = CON, mid, token
    notification.opt.observe = 9
    notification.opt.content_format = 0
    host, port = server.listeners["default"].address
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        await loop.sock_sendto(sock, notification.encode(), (host, port))
        answer = aiocoap.Message.decode(await asyncio.wait_for(loop.sock_recv(sock, 1500), 10))
        return answer, sock.getsockname()


async def _stored_once_and_moved(server: Lwm2mServer, endpoint: str, device_address: tuple[str, int]) -> None:
    """The notification's value is stored once at `server`, which now holds the registration at
    the address the notification came from."""
    stored = await server.store.datapoints(endpoint, "/3303/0/5700")
    assert [(p.value, p.source) for p in stored if p.source == "notify"] == [(42.5, "notify")]
    moved = server.registration(endpoint)
    assert moved is not None and (moved.host, moved.port) == device_address


async def test_a_notification_of_an_observation_made_by_a_arriving_at_b_is_stored_and_acknowledged(
    pair: dict[str, Lwm2mServer],
) -> None:
    a, b = pair["A"], pair["B"]
    endpoint = "869975030019102"
    client, _tree = await _registered_client(endpoint, a)
    try:
        for _ in range(50):
            if await b.cluster.owner_of(endpoint) == "A":  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        observation = await b.observe(endpoint, "/3303/0/5700")  # made by A, the owner
        (active,) = a.observations(endpoint)
        assert active.id == observation.id and active.handle is not None
        token = active.handle.token
        for _ in range(50):
            if token in b.cluster._tokens:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)

        # After a load-balancer change the device's next notification reaches B.
        answer, device_address = await _notify_through(b, token, 4711)
        assert (answer.mtype, answer.mid, answer.code) == (ACK, 4711, Code.EMPTY)  # after the commit
        await _stored_once_and_moved(b, endpoint, device_address)
    finally:
        await client.stop()


async def test_a_cached_command_stored_through_b_is_delivered_by_the_owner_a(
    pair: dict[str, Lwm2mServer],
) -> None:
    import time

    from server.services.offline_commands import SUCCESS, OfflineCommands

    a, b = pair["A"], pair["B"]
    commands = {}
    for name, server in pair.items():
        commands[name] = OfflineCommands(server)
        await commands[name].start()
        server.cluster.waiting_command = commands[name].note_waiting  # type: ignore[attr-defined]
    endpoint = "869975030019103"
    client, _tree = await _registered_client(endpoint, a)
    try:
        for _ in range(100):
            device = b.provisioning.device_by_endpoint(endpoint)
            if device is not None:
                break
            await asyncio.sleep(0.05)
        assert device is not None
        now = time.time()
        with a.subscribe(kinds=("offline_command.created",)) as relayed:
            command = await commands["B"].create(
                device, "read", {"path": "/3/0/0"}, valid_time=now - 1, expired_time=now + 60, trigger_msg=2
            )
            await relayed.get(timeout=10)  # A has heard of it
        await client.update()  # trigger 2: the next Update, through A
        for _ in range(100):
            stored = await commands["A"].get(device, command.uuid)
            if stored is not None and stored.send_status == SUCCESS:
                break
            await asyncio.sleep(0.05)
        assert stored is not None and stored.send_status == SUCCESS
        assert stored.confirm_body[0]["value"] == "lwm2m-testbed"
    finally:
        await client.stop()
        for service in commands.values():
            await service.stop()


async def test_a_node_started_after_an_observation_was_made_accepts_its_notifications(
    postgres_url: str,
) -> None:
    nats_url, name = shared_nats_url(), f"test-{uuid.uuid4().hex[:10]}"
    a = Lwm2mServer(make_settings(postgres_url))
    a.cluster = ClusterNode(a, "A", nats_url, cluster=name)
    await a.start()
    b: Lwm2mServer | None = None
    endpoint = "869975030019104"
    client, _tree = await _registered_client(endpoint, a)
    try:
        await a.observe(endpoint, "/3303/0/5700")
        (active,) = a.observations(endpoint)
        assert active.handle is not None
        token = active.handle.token
        for _ in range(100):  # the token reaches the shared table soon after the observation
            if any(record.token == token.hex() for record in await a.store.observations(endpoint)):
                break
            await asyncio.sleep(0.05)

        b = Lwm2mServer(make_settings(postgres_url))
        b.cluster = ClusterNode(b, "B", nats_url, cluster=name)
        await b.start()  # it never saw A's `observation.started` event
        answer, device_address = await _notify_through(b, token, 4712)
        assert (answer.mtype, answer.mid, answer.code) == (ACK, 4712, Code.EMPTY)
        await _stored_once_and_moved(b, endpoint, device_address)
    finally:
        await client.stop()
        for server in (b, a):
            if server is not None and server.started:
                await server.stop()
