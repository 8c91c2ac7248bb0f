"""What a registration may claim (issue 13, finding 8): the endpoint name (at most 128 printable
characters), the link payload (at most 64 KiB and 1,000 objects and instances) and the binding
(LwM2M 1.0's U, UQ, S, SQ, US, UQS or 1.1's letters). Beyond: 4.00 with the reason, nothing
stored, a `registration.refused` event. The limits are settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiocoap.numbers.codes import Code

from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.integration.coap_peer import RawPeer

LINKS = b"</1/0>,</3/0>"


@pytest.fixture
async def peer(server: Lwm2mServer) -> AsyncIterator[RawPeer]:
    p = await RawPeer.create(server.listeners["default"].address)
    yield p
    await p.close()


async def register(peer: RawPeer, *query: str, payload: bytes = LINKS) -> tuple[Code, str]:
    response = await peer.request(Code.POST, "/rd", query, payload, content_format=40)
    return response.code, response.payload.decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("query", "payload", "reason"),
    [
        (("ep=" + "e" * 1000,), LINKS, "longer than 128"),
        (("ep=line\nbreak",), LINKS, "control character"),
        (("ep=nul\x00byte",), LINKS, "control character"),
        (("ep=dev-objects",), ",".join(f"</{o}>" for o in range(5000, 10000)).encode(), "more than 1000"),
        (("ep=dev-binding", "b=ZZZ"), LINKS, "binding 'ZZZ'"),
        (("ep=dev-binding", "b=UU"), LINKS, "binding 'UU'"),
    ],
    ids=["long-name", "newline", "nul", "5000-objects", "binding-ZZZ", "binding-UU"],
)
async def test_a_registration_beyond_the_limits_is_a_400_with_the_reason_and_stores_nothing(
    server: Lwm2mServer, peer: RawPeer, query: tuple[str, ...], payload: bytes, reason: str
) -> None:
    with server.subscribe(kinds=["registration.refused"]) as refused:
        code, diagnostic = await register(peer, *query, payload=payload)
        event = await refused.get(timeout=5)
    assert code == Code.BAD_REQUEST and reason in diagnostic, diagnostic
    assert reason in event.data["reason"]
    assert server.registered() == [] and await server.store.load_registrations() == []
    assert server.provisioning.devices() == []


@pytest.mark.parametrize("binding", ["U", "UQ", "S", "SQ", "US", "UQS", "T", "UN", "MHT"])
async def test_the_bindings_of_1_0_and_the_letters_of_1_1_are_accepted(
    server: Lwm2mServer, peer: RawPeer, binding: str
) -> None:
    code, diagnostic = await register(peer, f"ep=dev-{binding}", f"b={binding}", "lwm2m=1.1")
    assert code == Code.CREATED, diagnostic


async def test_an_update_beyond_the_limits_is_a_400_and_keeps_the_registration(
    server: Lwm2mServer, peer: RawPeer
) -> None:
    code, _ = await register(peer, "ep=dev-up")
    reg = server.registration("dev-up")
    assert code == Code.CREATED and reg is not None
    response = await peer.request(Code.POST, f"/rd/{reg.registration_id}", ("b=ZZZ",))
    assert response.code == Code.BAD_REQUEST
    assert server.registration("dev-up") == reg


async def test_the_limits_are_settings(server_factory: ServerFactory) -> None:
    server: Lwm2mServer = await server_factory(
        registration_max_endpoint_length=8, registration_max_object_links=2
    )
    peer = await RawPeer.create(server.listeners["default"].address)
    try:
        assert (await register(peer, "ep=12345678"))[0] == Code.CREATED
        assert (await register(peer, "ep=123456789"))[0] == Code.BAD_REQUEST
        assert (await register(peer, "ep=three", payload=b"</1/0>,</3/0>,</5/0>"))[0] == Code.BAD_REQUEST
    finally:
        await peer.close()
