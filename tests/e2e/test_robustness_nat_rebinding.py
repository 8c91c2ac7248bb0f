"""NAT rebinding mid-session (RFC 4787 §4.3; LwM2M Core 1.1.1 §6.2.2 Update; Transport 1.1.1
§5.2.8): the impairment proxy gives a registered device a new source port. Over plain CoAP the
server cannot reach the old port any more, the device's next Update moves the registration and
its observation, and reads and notifications work again. Over DTLS the moved peer handshakes
again and the server keeps the registration's inner address: reads work without an Update."""

from __future__ import annotations

import asyncio

import pytest

from emulator.client.client import Lwm2mClient
from emulator.client.dtls import DtlsClientTunnel
from emulator.client.settings import ClientSettings
from emulator.impairment import ImpairmentProxy
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from server.lwm2m_server import Lwm2mServer
from server.services.errors import DeviceTimeout
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.integration.test_faults_loss import MODEL, TEMPERATURE, make_client, make_tree

PSK = b"rebinding-psk-01"


async def read_manufacturer(server: Lwm2mServer, endpoint: str, timeout: float | None = None) -> object:
    node = await server.read(endpoint, "/3/0/0", timeout=timeout)
    assert isinstance(node, SingleResource)
    return node.value


async def wait_for_address(server: Lwm2mServer, endpoint: str, port: int) -> None:
    async with asyncio.timeout(5):
        while (reg := server.registration(endpoint)) is None or reg.port != port:
            await asyncio.sleep(0.02)


async def test_plain_device_is_reachable_again_after_its_update_from_the_new_port(
    server: Lwm2mServer,
) -> None:
    async with ImpairmentProxy(server.listeners["default"].address) as proxy:
        client = make_client("nat-plain", proxy.address)
        await client.start()
        try:
            await client.register()
            await server.observe("nat-plain", TEMPERATURE)
            assert await read_manufacturer(server, "nat-plain") == "China Mobile"
            old_port = proxy.upstream_port(client.local_address)

            proxy.rebind(client.local_address)
            new_port = proxy.upstream_port(client.local_address)
            assert new_port != old_port
            # The server still talks to the old mapping: nothing arrives.
            with pytest.raises(DeviceTimeout):
                await read_manufacturer(server, "nat-plain", timeout=0.5)

            await client.update()
            await wait_for_address(server, "nat-plain", new_port)
            assert await read_manufacturer(server, "nat-plain") == "China Mobile"
            # The observation moved with the registration: the server observes again after the
            # Update; the device's newest observation is the live one.
            async with asyncio.timeout(5):
                while not server.reporting.observations("nat-plain"):
                    await asyncio.sleep(0.02)
            with server.subscribe(endpoint="nat-plain", kinds=("notification",)) as events:
                (delivered,) = await client.notify(
                    max(client.observations), SingleResource(5700, 26.5, ResourceType.FLOAT), confirmable=True
                )
                assert await asyncio.wait_for(delivered, 5) is True
                event = await events.get(timeout=5)
                assert event.data["values"][0]["value"] == 26.5
        finally:
            await client.stop()


async def test_dtls_device_handshakes_again_after_rebinding_and_stays_readable(
    server_factory: ServerFactory,
) -> None:
    server: Lwm2mServer = await server_factory(
        listeners=[ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0)]
    )
    await server.set_psk("nat-dtls", "nat-dtls", PSK.decode())
    async with ImpairmentProxy(server.dtls["default"].address) as proxy:
        tunnel = DtlsClientTunnel(proxy.address, b"nat-dtls", PSK, handshake_timeout=5)
        tree = make_tree()
        client: Lwm2mClient | None = None
        try:
            await tunnel.start()
            client = Lwm2mClient(
                ClientSettings(
                    endpoint="nat-dtls",
                    remote_override=tunnel.plain_address,
                    lifetime=300,
                    lwm2m_version="1.1",
                    object_links=tree.object_links,
                    request_timeout=5.0,
                ),
                tree,
                MODEL,
            )
            await client.start()
            await client.register()
            assert await read_manufacturer(server, "nat-dtls") == "China Mobile"
            before = server.registration("nat-dtls")
            old_peer = server.dtls["default"].session_by_identity(b"nat-dtls")
            assert old_peer is not None

            proxy.rebind(tunnel.local_address)
            new_port = proxy.upstream_port(tunnel.local_address)
            await tunnel.rehandshake()
            session = server.dtls["default"].session_by_identity(b"nat-dtls")
            assert session is not None and session.peer == ("127.0.0.1", new_port)
            assert await read_manufacturer(server, "nat-dtls") == "China Mobile"
            after = server.registration("nat-dtls")
            assert before is not None and after is not None
            assert after.registration_id == before.registration_id
            assert server.dtls_counters()["default"]["rehandshakes_moved"] == 1
        finally:
            if client is not None:
                await client.stop()
            await tunnel.close()
