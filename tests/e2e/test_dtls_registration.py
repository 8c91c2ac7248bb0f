"""LwM2M over DTLS-PSK end to end (Transport 1.1.1 §5.2.8, RFC 6347, RFC 4279): the server's DTLS
port in front of its CoAP listener, PSKs provisioned through the Python API and kept in the
database, identity-to-endpoint binding (4.03 on a mismatch), NB-IoT IP aging (a new source port
and a fresh handshake keep the registration), libcoap's OpenSSL client as an independent peer, and
garbage at the DTLS port. Real UDP on loopback, ephemeral ports."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.dtls import DtlsClientTunnel, DtlsHandshakeError
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import SingleResource
from lwm2m.numbers import CoapCode
from server.lwm2m_server import Lwm2mServer
from server.services.errors import BadArgument, DeviceSleeping
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.support import require_tool

MODEL = builtin_registry()
STRING_KEY = "onemo-psk-0001"
HEX_KEY = "000102030405060708090a0b0c0d0e0f"


def dtls_listeners(port: int = 0) -> list[ListenerSettings]:
    return [ListenerSettings(name="default", host="127.0.0.1", port=port, dtls_port=0)]


async def start_dtls_server(server_factory: ServerFactory, database_url: str | None = None) -> Lwm2mServer:
    server: Lwm2mServer = await server_factory(database_url, listeners=dtls_listeners())
    return server


def dtls_address(server: Lwm2mServer) -> tuple[str, int]:
    return server.dtls["default"].address


def make_tree() -> ObjectTreeHandler:
    tree = ObjectTreeHandler(MODEL)
    tree.add_instance(1, 0, {0: 101, 1: 86400, 2: 1, 3: 60, 6: False, 7: "U"})
    tree.add_instance(3, 0, {0: "China Mobile", 1: "ML307R", 2: "869975030000461"})
    return tree


@dataclass
class SecureDevice:
    client: Lwm2mClient
    tunnel: DtlsClientTunnel
    tree: ObjectTreeHandler


@asynccontextmanager
async def secure_device(
    server: Lwm2mServer,
    endpoint: str,
    identity: str,
    key: bytes,
    *,
    binding: str = "U",
    register: bool = True,
) -> AsyncIterator[SecureDevice]:
    """An emulated client whose CoAP goes through a DTLS tunnel to the server's DTLS port."""
    tree = make_tree()
    tunnel = DtlsClientTunnel(dtls_address(server), identity.encode(), key, handshake_timeout=5)
    client: Lwm2mClient | None = None
    try:
        await tunnel.start()
        client = Lwm2mClient(
            ClientSettings(
                endpoint=endpoint,
                remote_override=tunnel.plain_address,
                lifetime=300,
                binding=binding,
                lwm2m_version="1.1",
                object_links=tree.object_links,
                request_timeout=5.0,
            ),
            tree,
            MODEL,
        )
        await client.start()
        if register:
            await client.register()
        yield SecureDevice(client, tunnel, tree)
    finally:
        if client is not None:
            await client.stop()
        await tunnel.close()


async def assert_nothing_registered(server: Lwm2mServer) -> None:
    assert server.registered() == []
    assert await server.store.load_registrations() == []


async def read_manufacturer(server: Lwm2mServer, endpoint: str, **kwargs: object) -> object:
    node = await server.read(endpoint, "/3/0/0", **kwargs)  # type: ignore[arg-type]
    assert isinstance(node, SingleResource)
    return node.value


@pytest.mark.parametrize(
    ("key", "encoding", "key_bytes"),
    [(STRING_KEY, "string", STRING_KEY.encode()), (HEX_KEY, "hex", bytes.fromhex(HEX_KEY))],
    ids=["string-psk", "hex-psk"],
)
async def test_device_registers_over_dtls_and_is_readable(
    server_factory: ServerFactory, key: str, encoding: str, key_bytes: bytes
) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("869975030000461", "869975030000461", key, encoding)  # type: ignore[arg-type]
    async with secure_device(server, "869975030000461", "869975030000461", key_bytes):
        reg = server.registration("869975030000461")
        assert reg is not None and reg.secure_identity == "869975030000461"
        session = server.dtls["default"].session_by_identity(b"869975030000461")
        assert session is not None and (reg.host, reg.port) == session.inner
        (stored,) = await server.store.load_registrations()
        assert stored.secure_identity == "869975030000461"
        assert await read_manufacturer(server, "869975030000461") == "China Mobile"


async def test_identity_may_differ_from_the_endpoint_it_is_bound_to(server_factory: ServerFactory) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("meter-7", "psk-id-7", STRING_KEY)
    async with secure_device(server, "meter-7", "psk-id-7", STRING_KEY.encode()):
        reg = server.registration("meter-7")
        assert reg is not None and reg.secure_identity == "psk-id-7"
        assert await read_manufacturer(server, "meter-7") == "China Mobile"


async def test_wrong_key_fails_the_handshake_and_stores_nothing(server_factory: ServerFactory) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("dev-a", "dev-a", STRING_KEY)
    with pytest.raises(DtlsHandshakeError) as failure:
        async with secure_device(server, "dev-a", "dev-a", b"not-the-key"):
            pass
    assert failure.value.reason == "bad_psk"
    await assert_nothing_registered(server)
    counters = server.counters()["dtls"]["default"]
    assert counters["handshakes_ok"] == 0
    assert counters["handshakes_failed"] == {"bad_psk": 1}


async def test_unknown_identity_fails_the_handshake_and_stores_nothing(server_factory: ServerFactory) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("dev-a", "dev-a", STRING_KEY)
    with pytest.raises(DtlsHandshakeError) as failure:
        async with secure_device(server, "stranger", "stranger", STRING_KEY.encode()):
            pass
    assert failure.value.reason == "unknown_identity"
    await assert_nothing_registered(server)
    assert server.dtls_counters()["default"]["handshakes_failed"] == {"unknown_identity": 1}


async def test_identity_registering_as_another_endpoint_gets_4_03_and_nothing_is_stored(
    server_factory: ServerFactory,
) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("dev-x", "dev-x", STRING_KEY)
    await server.set_psk("dev-y", "dev-y", "other-key")
    with server.subscribe(kinds=("registration.refused",)) as events:
        async with secure_device(server, "dev-y", "dev-x", STRING_KEY.encode(), register=False) as dev:
            with pytest.raises(ClientError) as failure:
                await dev.client.register()
        event = await events.get(timeout=5)
    assert failure.value.code == CoapCode.FORBIDDEN
    assert (event.endpoint, event.data["code"]) == ("dev-y", "4.03")
    await assert_nothing_registered(server)
    assert server.dtls_counters()["default"]["handshakes_ok"] == 1  # the handshake itself was fine


async def test_address_change_rehandshakes_and_the_device_stays_readable(
    server_factory: ServerFactory,
) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("aging-dev", "aging-dev", STRING_KEY)
    async with secure_device(server, "aging-dev", "aging-dev", STRING_KEY.encode()) as dev:
        before = server.registration("aging-dev")
        old_peer = dev.tunnel.local_address
        await dev.tunnel.rehandshake(new_local_port=True)
        assert dev.tunnel.local_address != old_peer
        assert await read_manufacturer(server, "aging-dev") == "China Mobile"
        session = server.dtls["default"].session_by_identity(b"aging-dev")
        assert session is not None and session.peer == dev.tunnel.local_address
        after = server.registration("aging-dev")
        assert before is not None and after is not None
        assert after.registration_id == before.registration_id
        assert (after.host, after.port) == (before.host, before.port)
        counters = server.dtls_counters()["default"]
        assert counters["handshakes_ok"] == 2 and counters["rehandshakes_moved"] == 1
        assert counters["sessions"] == 1


async def test_queued_request_reaches_the_device_after_an_address_change(
    server_factory: ServerFactory,
) -> None:
    server = await start_dtls_server(server_factory)
    server.queue.awake_window = 0.2
    await server.set_psk("sleepy-dev", "sleepy-dev", HEX_KEY, "hex")
    key = bytes.fromhex(HEX_KEY)
    async with secure_device(server, "sleepy-dev", "sleepy-dev", key, binding="UQ") as dev:
        await asyncio.sleep(0.3)
        with pytest.raises(DeviceSleeping):
            await server.read("sleepy-dev", "/3/0/0")
        queued = asyncio.create_task(read_manufacturer(server, "sleepy-dev", queue=True))
        await asyncio.sleep(0.1)
        assert not queued.done()
        await dev.tunnel.rehandshake(new_local_port=True)
        await dev.client.update()
        assert await asyncio.wait_for(queued, 5) == "China Mobile"
        reg = server.registration("sleepy-dev")
        assert reg is not None and reg.secure_identity == "sleepy-dev"
        assert await server.store.pending_requests("sleepy-dev") == []


async def run_coap_client_openssl(*args: str) -> tuple[int, str]:
    tool = require_tool("coap-client-openssl", "libcoap3-bin")
    process = await asyncio.create_subprocess_exec(
        tool, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode or 0, output.decode("utf-8", "replace")


async def test_libcoap_openssl_client_registers_through_the_dtls_port(server_factory: ServerFactory) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("libcoap-dtls", "libcoap-dtls", "libcoap-secret")
    host, port = dtls_address(server)
    code, output = await run_coap_client_openssl(
        "-m", "post", "-B", "10", "-e", "</1/0>,</3/0>", "-u", "libcoap-dtls", "-k", "libcoap-secret",
        f"coaps://{host}:{port}/rd?ep=libcoap-dtls&lt=120&lwm2m=1.1",
    )  # fmt: skip
    assert code == 0, output
    reg = server.registration("libcoap-dtls")
    assert reg is not None and reg.secure_identity == "libcoap-dtls" and reg.lifetime == 120
    stored = {r.endpoint: r for r in await server.store.load_registrations()}
    assert stored["libcoap-dtls"].secure_identity == "libcoap-dtls"
    assert server.dtls_counters()["default"]["handshakes_ok"] == 1


async def test_libcoap_openssl_client_with_a_wrong_key_registers_nothing(
    server_factory: ServerFactory,
) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("libcoap-dtls", "libcoap-dtls", "libcoap-secret")
    host, port = dtls_address(server)
    await run_coap_client_openssl(
        "-m", "post", "-B", "3", "-e", "</3/0>", "-u", "libcoap-dtls", "-k", "wrong-secret",
        f"coaps://{host}:{port}/rd?ep=libcoap-dtls",
    )  # fmt: skip
    await assert_nothing_registered(server)
    assert server.dtls_counters()["default"]["handshakes_failed"]["bad_psk"] >= 1


async def test_garbage_at_the_dtls_port_does_not_stop_a_later_registration(
    server_factory: ServerFactory,
) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("after-garbage", "after-garbage", STRING_KEY)
    loop = asyncio.get_running_loop()
    sender, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=dtls_address(server)
    )
    garbage = [
        b"",
        b"\x16",
        os.urandom(12),
        os.urandom(200),
        b"\x17\xfe\xfd\x00\x01" + bytes(6) + b"\x00\x10" + os.urandom(16),  # epoch-1 app data, no session
        b"\x16\xfe\xfd\x00\x00" + bytes(6) + b"\x00\x0c" + b"\x01" + bytes(11),  # empty ClientHello
        b"\x16\xfe\xfd\x00\x00" + bytes(6) + b"\xff\xff" + b"\x01" + os.urandom(40),  # length lies
    ]
    try:
        for datagram in garbage:
            sender.sendto(datagram)
        await asyncio.sleep(0.2)
    finally:
        sender.close()
    async with secure_device(server, "after-garbage", "after-garbage", STRING_KEY.encode()):
        assert await read_manufacturer(server, "after-garbage") == "China Mobile"
    counters = server.counters()["dtls"]["default"]
    assert counters["datagrams_dropped"] + sum(counters["handshakes_failed"].values()) >= 4
    assert counters["handshakes_ok"] == 1


async def test_counters_show_handshakes_sessions_and_bytes(server_factory: ServerFactory) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("counted", "counted", STRING_KEY)
    with pytest.raises(DtlsHandshakeError):
        async with secure_device(server, "counted", "counted", b"bad"):
            pass
    async with secure_device(server, "counted", "counted", STRING_KEY.encode()):
        await read_manufacturer(server, "counted")
        counters = server.counters()["dtls"]["default"]
        assert counters["handshakes_ok"] == 1
        assert counters["handshakes_failed"] == {"bad_psk": 1}
        assert counters["sessions"] == 1 and counters["half_open"] == 0
        assert counters["bytes_in"] > 0 and counters["bytes_out"] > 0


async def stored_psks(server: Lwm2mServer) -> list[tuple[str, str, str]]:
    """(endpoint, identity, key) of every device row holding a PSK, read back from the database."""
    assert server.provisioning.repository is not None
    rows = await server.provisioning.repository.devices()
    return [
        (row["endpoint"], row["attributes"].get("psk_identity"), row["attributes"]["psk"])
        for row in rows
        if row["attributes"].get("psk")
    ]


def identity_holder(server: Lwm2mServer, identity: str) -> str | None:
    """The endpoint whose device holds DTLS `identity` at the open listener."""
    device = server.directory.device_of_identity("default", identity)
    return device.endpoint if device is not None else None


async def test_psks_survive_a_restart_and_removal_refuses_the_identity(
    server_factory: ServerFactory, sqlite_url: str
) -> None:
    first = await start_dtls_server(server_factory, sqlite_url)
    await first.set_psk("kept-dev", "kept-id", HEX_KEY, "hex")
    await first.stop()
    second = await start_dtls_server(server_factory, sqlite_url)
    assert second.directory.psk_for("default", b"kept-id") == bytes.fromhex(HEX_KEY)
    assert identity_holder(second, "kept-id") == "kept-dev"
    async with secure_device(second, "kept-dev", "kept-id", bytes.fromhex(HEX_KEY)):
        assert await read_manufacturer(second, "kept-dev") == "China Mobile"
    assert await second.remove_psk("kept-dev") is True
    assert await second.remove_psk("kept-dev") is False
    assert await stored_psks(second) == []
    with pytest.raises(DtlsHandshakeError) as failure:
        async with secure_device(second, "kept-dev", "kept-id", bytes.fromhex(HEX_KEY)):
            pass
    assert failure.value.reason == "unknown_identity"


async def test_replacing_a_psk_changes_the_key_and_frees_the_old_identity(
    server_factory: ServerFactory,
) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("dev-r", "id-old", "first-key")
    await server.set_psk("dev-r", "id-new", "second-key")
    assert server.directory.psk_for("default", b"id-old") is None
    assert server.directory.psk_for("default", b"id-new") == b"second-key"
    assert await stored_psks(server) == [("dev-r", "id-new", "second-key")]
    await server.set_psk("dev-s", "id-old", "third-key")  # the old identity is free again
    assert identity_holder(server, "id-old") == "dev-s"


@pytest.mark.parametrize(
    ("endpoint", "identity", "key", "encoding"),
    [
        ("dev", "id", "0g", "hex"),
        ("dev", "id", "abc", "hex"),
        ("dev", "id", "", "string"),
        ("dev", "id", "x" * 33, "string"),
        ("dev", "id", "00" * 33, "hex"),
        ("dev", "id", "key", "base64"),
        ("dev", "", "key", "string"),
        ("dev", "i" * 256, "key", "string"),
        ("", "id", "key", "string"),
    ],
    ids=[
        "not-hex",
        "odd-hex",
        "empty-key",
        "string-key-too-long",
        "hex-key-too-long",
        "unknown-encoding",
        "empty-identity",
        "identity-too-long",
        "empty-endpoint",
    ],
)
async def test_invalid_psk_is_refused_with_bad_argument(
    server_factory: ServerFactory, endpoint: str, identity: str, key: str, encoding: str
) -> None:
    server = await start_dtls_server(server_factory)
    with pytest.raises(BadArgument):
        await server.set_psk(endpoint, identity, key, encoding)  # type: ignore[arg-type]
    assert await stored_psks(server) == []
    assert server.provisioning.devices() == [], "no row for an endpoint whose key was refused"


async def test_identity_already_bound_to_another_endpoint_is_refused(server_factory: ServerFactory) -> None:
    server = await start_dtls_server(server_factory)
    await server.set_psk("dev-1", "shared-id", "key-1")
    with pytest.raises(BadArgument):
        await server.set_psk("dev-2", "shared-id", "key-2")
    assert server.directory.psk_for("default", b"shared-id") == b"key-1"
    assert [endpoint for endpoint, _identity, _key in await stored_psks(server)] == ["dev-1"]
