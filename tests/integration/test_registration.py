"""Registration interface over real UDP: Register, Update, De-register, replacement, expiry,
bad input, and registrations surviving a server restart (Core 1.1.1 §6.2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiocoap.numbers.codes import Code

from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.integration.coap_peer import RawPeer

LINKS = b'</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</3303/0>,</3303/1>'


@pytest.fixture
async def peer(server: Lwm2mServer) -> AsyncIterator[RawPeer]:
    p = await RawPeer.create(server.listeners["default"].address)
    yield p
    await p.close()


async def register(
    peer: RawPeer, ep: str = "dev-1", *query: str, payload: bytes = LINKS
) -> tuple[Code, tuple[str, ...]]:
    response = await peer.request(Code.POST, "/rd", (f"ep={ep}", *query), payload, content_format=40)
    return response.code, tuple(response.opt.location_path)


async def test_register_returns_created_with_location_and_stores_the_registration(
    server: Lwm2mServer, peer: RawPeer
) -> None:
    code, location = await register(peer, "dev-1", "lt=300", "lwm2m=1.1", "b=U")
    assert code == Code.CREATED
    assert location[0] == "rd" and len(location) == 2
    reg = server.registration("dev-1")
    assert reg is not None
    assert reg.lifetime == 300 and reg.lwm2m_version == "1.1" and reg.binding == "U"
    assert reg.registration_id == location[1]
    assert reg.objects.content_formats == (11543,)
    assert sorted(str(p) for p in reg.objects.instances) == ["/1/0", "/3/0", "/3303/0", "/3303/1"]
    stored = await server.store.load_registrations()
    assert [r.endpoint for r in stored] == ["dev-1"]


async def test_register_defaults_lifetime_version_and_binding(server: Lwm2mServer, peer: RawPeer) -> None:
    code, _ = await register(peer, "dev-defaults")
    assert code == Code.CREATED
    reg = server.registration("dev-defaults")
    assert reg is not None
    assert (reg.lifetime, reg.lwm2m_version, reg.binding, reg.queue_mode) == (86400, "1.0", "U", False)


async def test_queue_mode_is_recognised_from_binding_and_from_q_flag(
    server: Lwm2mServer, peer: RawPeer
) -> None:
    await register(peer, "dev-uq", "b=UQ")
    await register(peer, "dev-q", "lwm2m=1.1", "Q")
    reg_uq, reg_q = server.registration("dev-uq"), server.registration("dev-q")
    assert reg_uq is not None and reg_uq.queue_mode
    assert reg_q is not None and reg_q.queue_mode


async def test_update_refreshes_lifetime_and_object_list(server: Lwm2mServer, peer: RawPeer) -> None:
    _, location = await register(peer, "dev-up", "lt=100")
    before = server.registration("dev-up")
    assert before is not None
    await asyncio.sleep(0.01)
    response = await peer.request(Code.POST, "/" + "/".join(location), ("lt=200",), b"</3/0>,</5/0>", 40)
    assert response.code == Code.CHANGED
    after = server.registration("dev-up")
    assert after is not None
    assert after.lifetime == 200 and after.updated_at > before.updated_at
    assert [str(p) for p in after.objects.instances] == ["/3/0", "/5/0"]


async def test_update_from_new_address_moves_the_registration(server: Lwm2mServer, peer: RawPeer) -> None:
    _, location = await register(peer, "dev-move")
    other = await RawPeer.create(server.listeners["default"].address)
    try:
        with server.subscribe(endpoint="dev-move", kinds=("registration.updated",)) as events:
            response = await other.request(Code.POST, "/" + "/".join(location))
            assert response.code == Code.CHANGED
            event = await events.get(timeout=5)
        reg = server.registration("dev-move")
        assert reg is not None and event.data["address_changed"] is True
        assert reg.port == event.data["port"]
    finally:
        await other.close()


async def test_update_of_unknown_registration_is_not_found(peer: RawPeer) -> None:
    response = await peer.request(Code.POST, "/rd/doesnotexist")
    assert response.code == Code.NOT_FOUND


async def test_deregister_deletes_the_registration(server: Lwm2mServer, peer: RawPeer) -> None:
    _, location = await register(peer, "dev-del")
    response = await peer.request(Code.DELETE, "/" + "/".join(location))
    assert response.code == Code.DELETED
    assert server.registration("dev-del") is None
    assert await server.store.load_registrations() == []
    again = await peer.request(Code.DELETE, "/" + "/".join(location))
    assert again.code == Code.NOT_FOUND


async def test_reregistration_of_the_same_endpoint_replaces_the_old_one(
    server: Lwm2mServer, peer: RawPeer
) -> None:
    _, first = await register(peer, "dev-re")
    with server.subscribe(endpoint="dev-re") as events:
        _, second = await register(peer, "dev-re")
        kinds = {(await events.get(timeout=5)).kind for _ in range(2)}
    assert first != second
    assert kinds == {"registration.replaced", "registration.registered"}
    old_update = await peer.request(Code.POST, "/" + "/".join(first))
    assert old_update.code == Code.NOT_FOUND
    assert len(await server.store.load_registrations()) == 1


async def test_registration_expires_after_lifetime_plus_grace(server_factory: ServerFactory) -> None:
    server = await server_factory(lifetime_grace=0.2, expiry_sweep_interval=0.1)
    peer = await RawPeer.create(server.listeners["default"].address)
    try:
        with server.subscribe(endpoint="dev-exp", kinds=("registration.expired",)) as events:
            await register(peer, "dev-exp", "lt=1")
            event = await events.get(timeout=10)
        assert event.kind == "registration.expired"
        assert server.registration("dev-exp") is None
    finally:
        await peer.close()


@pytest.mark.parametrize(
    ("query", "payload", "content_format"),
    [
        ((), LINKS, 40),  # no ep
        (("ep=x", "lt=abc"), LINKS, 40),
        (("ep=x", "lt=0"), LINKS, 40),
        (("ep=x",), b"</3/0", 40),  # unterminated link
        (("ep=x",), b"\xff\xfe", 40),  # not UTF-8
        (("ep=x",), LINKS, 50),  # JSON is not a link format
    ],
)
async def test_bad_registrations_are_answered_bad_request_and_counted(
    server: Lwm2mServer, peer: RawPeer, query: tuple[str, ...], payload: bytes, content_format: int
) -> None:
    before = server.listeners["default"].counters.bad_requests
    response = await peer.request(Code.POST, "/rd", query, payload, content_format)
    assert response.code == Code.BAD_REQUEST
    assert server.listeners["default"].counters.bad_requests == before + 1
    assert server.registered() == []


async def test_unknown_lwm2m_version_is_refused(server: Lwm2mServer, peer: RawPeer) -> None:
    code, _ = await register(peer, "dev-v9", "lwm2m=9.0")
    assert code == Code.PRECONDITION_FAILED
    assert server.registration("dev-v9") is None


async def test_registrations_survive_a_server_restart(server_factory: ServerFactory, sqlite_url: str) -> None:
    first = await server_factory(sqlite_url)
    peer = await RawPeer.create(first.listeners["default"].address)
    try:
        _, location = await register(peer, "dev-persist", "lt=600")
        await first.stop()
        second = await server_factory(sqlite_url)
        reg = second.registration("dev-persist")
        assert reg is not None and reg.registration_id == location[1] and reg.lifetime == 600
    finally:
        await peer.close()


async def test_every_registration_change_is_an_event_in_the_log(server: Lwm2mServer, peer: RawPeer) -> None:
    _, location = await register(peer, "dev-log")
    await peer.request(Code.POST, "/" + "/".join(location))
    await peer.request(Code.DELETE, "/" + "/".join(location))
    await server.store.writer.flush()
    kinds = [e["kind"] for e in reversed(await server.store.events("dev-log"))]
    assert kinds == ["registration.registered", "registration.updated", "registration.deregistered"]


async def test_a_registration_over_one_kib_arrives_block_wise(server: Lwm2mServer, peer: RawPeer) -> None:
    links = ",".join(f"</3303/{i}>" for i in range(200)).encode()
    assert len(links) > 2048
    code, _ = await register(peer, "dev-big", payload=links)
    assert code == Code.CREATED
    reg = server.registration("dev-big")
    assert reg is not None and len(reg.objects.instances) == 200
