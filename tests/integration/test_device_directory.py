"""One device identity, owned by one product, bound to its credentials (issue 13, findings 1–5):
the rules of `server.services.directory`, each through the door an attacker would use — the
REST API over real HTTP, plain CoAP and DTLS on loopback, the AT bridge's access check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiocoap
import httpx
import pytest
from aiocoap.numbers.codes import Code

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.dtls import DtlsClientTunnel, DtlsHandshakeError
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from server.api.app import create_app
from server.api.deps import Principal
from server.api.modules import ModuleInfo, may_use
from server.api.serve import serve_http
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Product
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.integration.api_support import ADMIN_KEY

MODEL = builtin_registry()
IMEI = "869975030000461"
KEY = "victim-key-0001"


def listeners() -> list[ListenerSettings]:
    return [
        ListenerSettings(name=carrier, host="127.0.0.1", port=0, dtls_port=0, carrier=carrier)
        for carrier in ("ctwing", "huawei")
    ] + [ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0)]


@dataclass
class Cloud:
    server: Lwm2mServer
    http: httpx.AsyncClient
    victim: Product
    attacker: Product

    async def create(self, product: Product, **body: Any) -> int:
        response = await self.http.post(
            "/api/v1/devices",
            json={"product_id": product.id, "imei": IMEI, **body},
            headers={"api-key": product.master_key},
        )
        assert response.status_code == 200, response.text
        return int(response.json()["id"])


@pytest.fixture
async def cloud(server_factory: ServerFactory) -> AsyncIterator[Cloud]:
    server: Lwm2mServer = await server_factory(api_key=ADMIN_KEY, listeners=listeners())
    handle = await serve_http(create_app(server), "127.0.0.1", 0)
    victim = await server.provisioning.create_product("victim", "ctwing")
    attacker = await server.provisioning.create_product("attacker", "huawei")
    try:
        async with httpx.AsyncClient(base_url=handle.url, timeout=10) as http:
            yield Cloud(server, http, victim, attacker)
    finally:
        await handle.stop()


def tree() -> ObjectTreeHandler:
    handler = ObjectTreeHandler(MODEL)
    handler.add_instance(1, 0, {0: 101, 1: 86400, 2: 1, 3: 60, 6: False, 7: "U"})
    handler.add_instance(3, 0, {0: "Victim Ltd", 1: "ML307R", 2: IMEI})
    return handler


@asynccontextmanager
async def device(
    server: Lwm2mServer, listener: str, endpoint: str, *, key: bytes | None = None, identity: str = IMEI
) -> AsyncIterator[Lwm2mClient]:
    """A registered client at `listener`: over DTLS with `key`, else in plaintext."""
    tunnel = None
    if key is not None:
        tunnel = DtlsClientTunnel(server.dtls[listener].address, identity.encode(), key, handshake_timeout=5)
        try:
            await tunnel.start()
        except BaseException:  # a refused handshake: its sockets are closed all the same
            await tunnel.close()
            raise
        remote = tunnel.plain_address
    else:
        remote = server.listeners[listener].address
    handler = tree()
    client = Lwm2mClient(
        ClientSettings(
            endpoint=endpoint,
            remote_override=remote,
            lifetime=300,
            lwm2m_version="1.1",
            object_links=handler.object_links,
            request_timeout=3.0,
        ),
        handler,
        MODEL,
    )
    try:
        await client.start()
        await client.register()
        yield client
    finally:
        await client.stop()
        if tunnel is not None:
            await tunnel.close()


async def plain_post(server: Lwm2mServer, listener: str, path: str, payload: bytes = b"") -> aiocoap.Message:
    """One plaintext CoAP POST to `listener` (a forger on the open UDP port)."""
    host, port = server.listeners[listener].address
    context = await aiocoap.Context.create_client_context()
    try:
        request = aiocoap.Message(code=Code.POST, uri=f"coap://{host}:{port}{path}", payload=payload)
        return await context.request(request).response
    finally:
        await context.shutdown()


# --- finding 1: cross-product takeover through a shared IMEI ---------------------------------------


async def test_a_product_cannot_read_a_device_of_another_product_with_the_same_imei(cloud: Cloud) -> None:
    server = cloud.server
    victim_id = await cloud.create(cloud.victim)
    async with device(server, "ctwing", IMEI):
        attacker_id = await cloud.create(cloud.attacker)  # an IMEI may be in two carriers' products
        headers = {"api-key": cloud.attacker.master_key}
        read = await cloud.http.post(
            f"/api/v1/devices/{attacker_id}/read", json={"path": "/3/0"}, headers=headers
        )
        assert read.status_code != 200 and "Victim" not in read.text, read.text
        nbiot = await cloud.http.get("/nbiot", params={"imei": IMEI, "obj_id": 3}, headers=headers)
        assert "Victim" not in nbiot.text and nbiot.json()["errno"] != 0, nbiot.text
        events = await cloud.http.get(f"/api/v1/devices/{attacker_id}/events", headers=headers)
        assert IMEI not in events.text or events.json().get("items") == [], events.text
        shown = await cloud.http.get(f"/api/v1/devices/{attacker_id}", headers=headers)
        assert shown.json()["online"] is False, shown.text
        # The owner still reads its device.
        own = await cloud.http.post(
            f"/api/v1/devices/{victim_id}/read",
            json={"path": "/3/0/0"},
            headers={"api-key": cloud.victim.master_key},
        )
        assert own.status_code == 200 and "Victim" in own.text, own.text


async def test_a_product_cannot_replace_or_delete_the_key_of_a_device_of_another_product_with_the_same_imei(
    cloud: Cloud,
) -> None:
    server = cloud.server
    await cloud.create(cloud.victim, psk=KEY)
    attacker_id = await cloud.create(cloud.attacker, psk="a1b2c3d4", psk_encoding="hex")
    headers = {"api-key": cloud.attacker.master_key}
    response = await cloud.http.put(
        f"/api/v1/devices/{attacker_id}/psk", json={"psk": "0badc0de", "psk_encoding": "hex"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert server.directory.psk_for("ctwing", IMEI.encode()) == KEY.encode()
    async with device(server, "ctwing", IMEI, key=KEY.encode()) as victim:
        assert server.registration(IMEI) is not None
        deleted = await cloud.http.delete(f"/api/v1/devices/{attacker_id}", headers=headers)
        assert deleted.status_code == 200, deleted.text
        assert server.directory.psk_for("ctwing", IMEI.encode()) == KEY.encode()
        await victim.update()
    with pytest.raises(DtlsHandshakeError):
        async with device(server, "ctwing", IMEI, key=b"0badc0de"):
            pass


async def test_a_device_of_another_carrier_with_the_same_imei_registers_under_its_own_name(
    cloud: Cloud,
) -> None:
    server = cloud.server
    victim_id = await cloud.create(cloud.victim)
    attacker_id = await cloud.create(cloud.attacker)
    async with device(server, "ctwing", IMEI), device(server, "huawei", IMEI):
        victim_reg = server.registration(IMEI)
        assert victim_reg is not None and victim_reg.listener == "ctwing", "not replaced"
        attacker_reg = server.registration(f"{IMEI}@huawei")
        assert attacker_reg is not None and attacker_reg.listener == "huawei"
        assert server.device_of(IMEI).id == victim_id  # type: ignore[union-attr]
        assert server.device_of(f"{IMEI}@huawei").id == attacker_id  # type: ignore[union-attr]


async def test_the_at_bridge_of_a_module_is_not_opened_by_a_product_with_the_same_imei(cloud: Cloud) -> None:
    await cloud.create(cloud.victim)
    await cloud.create(cloud.attacker)
    module = ModuleInfo("m1", "ML307R", IMEI, "460041234567890", IMEI, "ctwing")
    assert may_use(cloud.server, Principal("product", product=cloud.victim), module)
    assert not may_use(cloud.server, Principal("product", product=cloud.attacker), module)


async def test_the_same_imei_twice_at_one_carrier_is_refused(cloud: Cloud) -> None:
    await cloud.create(cloud.victim)
    other = await cloud.server.provisioning.create_product("other", "ctwing")
    response = await cloud.http.post(
        "/api/v1/devices", json={"product_id": other.id, "imei": IMEI}, headers={"api-key": other.master_key}
    )
    assert response.status_code == 400 and response.json()["errno"] == 5108, response.text


# --- finding 2: plaintext hijack on the open listener --------------------------------------------


async def test_a_plaintext_registration_cannot_take_over_an_endpoint_with_a_psk(cloud: Cloud) -> None:
    server = cloud.server
    await server.set_psk("meter-7", "meter-7", KEY)
    async with device(server, "default", "meter-7", key=KEY.encode(), identity="meter-7"):
        secure = server.registration("meter-7")
        assert secure is not None and secure.secure_identity == "meter-7"
        with server.subscribe(kinds=["registration.refused"]) as refused:
            answer = await plain_post(server, "default", "/rd?ep=meter-7&lt=300", b"</3/0>")
            assert answer.code == Code.FORBIDDEN
            event = await refused.get(timeout=5)
        assert "DTLS" in event.data["reason"]
        assert server.registration("meter-7") == secure, "the DTLS registration stays"
        # Nor may a plaintext Update (with a leaked registration id) move it.
        moved = await plain_post(server, "default", f"/rd/{secure.registration_id}")
        assert moved.code == Code.FORBIDDEN
        assert server.registration("meter-7") == secure
        forged = await plain_post(server, "default", "/dp", b'[{"n":"/3303/0/5700","v":99}]')
        assert forged.code == Code.FORBIDDEN
        assert await server.latest_values("meter-7") == {}


async def test_a_plaintext_registration_on_the_open_listener_cannot_take_a_carrier_devices_name(
    cloud: Cloud,
) -> None:
    server = cloud.server
    await cloud.create(cloud.victim)
    async with device(server, "ctwing", IMEI):
        live = server.registration(IMEI)
        answer = await plain_post(server, "default", f"/rd?ep={IMEI}&lt=300", b"</3/0>")
        assert answer.code == Code.FORBIDDEN
        assert "ctwing" in answer.payload.decode()
        assert server.registration(IMEI) == live


async def test_a_carrier_device_with_a_psk_may_not_register_in_plaintext(cloud: Cloud) -> None:
    server = cloud.server
    await cloud.create(cloud.victim, psk=KEY)
    with pytest.raises(ClientError):
        async with device(server, "ctwing", IMEI):
            pass
    assert server.registration(IMEI) is None
    async with device(server, "ctwing", IMEI, key=KEY.encode()):
        assert server.registration(IMEI) is not None


# --- finding 3: one store of keys ---------------------------------------------------------------


async def test_a_key_set_through_the_api_is_the_one_every_listener_of_its_carrier_reads(cloud: Cloud) -> None:
    server = cloud.server
    device_id = await cloud.create(cloud.victim, psk=KEY)
    assert server.directory.psk_for("ctwing", IMEI.encode()) == KEY.encode()
    assert server.directory.psk_for("default", IMEI.encode()) is None, "no second store"
    await cloud.http.put(
        f"/api/v1/devices/{device_id}/psk", json={"psk": "new-key-2"}, headers={"api-key": ADMIN_KEY}
    )
    assert server.directory.psk_for("ctwing", IMEI.encode()) == b"new-key-2"
    stored = server.provisioning.device(device_id)
    assert stored is not None and stored.attributes["psk"] == "new-key-2"


# --- finding 4: no duplicate rows ----------------------------------------------------------------


async def test_a_provisioned_custom_device_that_registers_has_one_row(cloud: Cloud) -> None:
    server = cloud.server
    product = await server.provisioning.create_product("custom", "custom")
    created = await cloud.http.post(
        "/api/v1/devices", json={"product_id": product.id, "imei": IMEI}, headers={"api-key": ADMIN_KEY}
    )
    device_id = created.json()["id"]
    async with device(server, "default", IMEI) as client:
        await client.update()  # a round trip later: anything the Register started has run
        assert [d.id for d in server.provisioning.devices()] == [device_id]
        listed = await cloud.http.get("/api/v1/devices", params={"q": IMEI}, headers={"api-key": ADMIN_KEY})
        items = listed.json()["items"]
        assert [(item["id"], item["online"]) for item in items] == [(device_id, True)]


async def test_creating_a_device_for_an_endpoint_that_registered_anonymously_adopts_its_row(
    cloud: Cloud,
) -> None:
    server = cloud.server
    product = await server.provisioning.create_product("custom", "custom")
    async with device(server, "default", IMEI):
        anonymous = server.device_of(IMEI)
        assert anonymous is not None and anonymous.product_id is None
        created = await cloud.http.post(
            "/api/v1/devices",
            json={"product_id": product.id, "imei": IMEI, "title": "meter"},
            headers={"api-key": product.master_key},
        )
        assert created.status_code == 200, created.text
        assert created.json()["id"] == anonymous.id
        rows = [d for d in server.provisioning.devices() if d.endpoint == IMEI or d.imei == IMEI]
        assert [(d.id, d.product_id, d.title) for d in rows] == [(anonymous.id, product.id, "meter")]
        read = await cloud.http.post(
            f"/api/v1/devices/{anonymous.id}/read",
            json={"path": "/3/0/0"},
            headers={"api-key": product.master_key},
        )
        assert read.status_code == 200, read.text


# --- finding 5: endpoints without an IMEI ---------------------------------------------------------


async def test_an_endpoint_without_an_imei_has_a_stable_id_and_can_be_given_a_psk(cloud: Cloud) -> None:
    server = cloud.server
    async with device(server, "default", "garden-sensor"):
        row = server.device_of("garden-sensor")
        assert row is not None, "the row exists once the registration is answered"
        listed = await cloud.http.get(
            "/api/v1/devices", params={"q": "garden"}, headers={"api-key": ADMIN_KEY}
        )
        assert [item["id"] for item in listed.json()["items"]] == [row.id]
        response = await cloud.http.put(
            f"/api/v1/devices/{row.id}/psk", json={"psk": KEY}, headers={"api-key": ADMIN_KEY}
        )
        assert response.status_code == 200, response.text
        assert server.directory.psk_for("default", b"garden-sensor") == KEY.encode()
    async with device(server, "default", "garden-sensor", key=KEY.encode(), identity="garden-sensor"):
        reg = server.registration("garden-sensor")
        assert reg is not None and reg.secure_identity == "garden-sensor"
        assert server.device_of("garden-sensor").id == row.id  # type: ignore[union-attr]


async def test_a_device_of_a_carrier_requiring_security_may_not_register_in_plaintext(cloud: Cloud) -> None:
    server = cloud.server
    profile = server.carriers.profiles["huawei"]
    profile.rules = replace(profile.rules, requires_security=True)  # a carrier that takes DTLS only
    await cloud.create(cloud.attacker)  # a Huawei device without a key
    with server.subscribe(kinds=["registration.refused"]) as refused:
        with pytest.raises(ClientError):
            async with device(server, "huawei", IMEI):
                pass
        event = await refused.get(timeout=5)
    assert "DTLS" in event.data["reason"]
    assert server.registration(IMEI) is None
