"""`PUT /api/v1/devices/{id}/psk` changes a device's DTLS PSK as its carrier's platform does
(the `do psk` step of `testbed scenario --api`): for OneNET the access PSK the access listener
checks (what POST /nbiot/device/accpsk sets, manual §5.2), for CTWing the device PSK, text or
hexadecimal (§5.4). The key is checked with the DTLS key lookup of the device directory, the one
every listener uses (the open listener does not take a carrier device's key). Bad input is a 400 with the OneNET error body; a device the key cannot
see is a 404, and is left untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from server.api.app import create_app
from server.api.serve import serve_http
from server.carriers.base import ATTR_ACCESS_PSK
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Product
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.integration.api_support import ADMIN_KEY

IMEI = "869975030000461"
IMSI = "460041234567890"


@dataclass
class Cloud:
    server: Lwm2mServer
    client: httpx.AsyncClient
    onenet: Product
    ctwing: Product

    def key_lookup(self, listener: str, imei: str = IMEI) -> bytes | None:
        """The key the DTLS server of carrier listener `listener` finds for identity `imei`."""
        return self.server.directory.psk_for(listener, imei.encode())

    async def create(self, product: Product, **extra: Any) -> int:
        body = {"product_id": product.id, "imei": IMEI, "imsi": IMSI, **extra}
        response = await self.client.post(
            "/api/v1/devices", json=body, headers={"api-key": product.master_key}
        )
        assert response.status_code == 200, response.text
        return int(response.json()["id"])

    async def set_psk(self, device_id: int, key: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(f"/api/v1/devices/{device_id}/psk", json=body, headers={"api-key": key})

    def attributes(self, device_id: int) -> dict[str, Any]:
        device = self.server.provisioning.device(device_id)
        assert device is not None
        return dict(device.attributes)


@pytest.fixture
async def cloud(server_factory: ServerFactory) -> AsyncIterator[Cloud]:
    listeners = [
        ListenerSettings(name=carrier, host="127.0.0.1", port=0, dtls_port=None, carrier=carrier)
        for carrier in ("onenet", "ctwing")
    ]
    server: Lwm2mServer = await server_factory(api_key=ADMIN_KEY, listeners=listeners)
    handle = await serve_http(create_app(server), "127.0.0.1", 0)
    onenet = await server.provisioning.create_product("OneNET", "onenet")
    ctwing = await server.provisioning.create_product("CTWing", "ctwing")
    try:
        async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
            yield Cloud(server, client, onenet, ctwing)
    finally:
        await handle.stop()


async def test_onenet_sets_the_access_psk_as_accpsk_does(cloud: Cloud) -> None:
    device_id = await cloud.create(cloud.onenet, psk="1234abcd")  # the bootstrap-server PSK
    assert cloud.key_lookup("onenet") is None, "no access PSK before a bootstrap or accpsk"

    response = await cloud.set_psk(device_id, cloud.onenet.master_key, {"psk": "abcdefge"})
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["id"], view["imei"], view["carrier"]) == (device_id, IMEI, "onenet")
    assert view["endpoint"] == f"{IMEI};{IMSI}"

    attributes = cloud.attributes(device_id)
    assert attributes[ATTR_ACCESS_PSK] == "abcdefge"
    assert attributes["psk"] == "1234abcd", "the bootstrap-server PSK is kept"
    assert cloud.key_lookup("onenet") == b"abcdefge"
    assert cloud.key_lookup("open") is None, "the open listener takes no carrier device's key"
    # The carrier's own API reads back the same key.
    accpsk = await cloud.client.get(
        "/nbiot/device/accpsk", params={"imei": IMEI}, headers={"api-key": cloud.onenet.master_key}
    )
    assert accpsk.json() == {"errno": 0, "error": "succ", "data": {"key": "abcdefge"}}


async def test_onenet_refuses_a_hex_access_psk(cloud: Cloud) -> None:
    device_id = await cloud.create(cloud.onenet)
    response = await cloud.set_psk(device_id, ADMIN_KEY, {"psk": "abcd1234", "psk_encoding": "hex"})
    assert response.status_code == 400, response.text
    assert response.json()["errno"] == 5108 and "string" in response.json()["error"]
    assert ATTR_ACCESS_PSK not in cloud.attributes(device_id)


async def test_ctwing_changes_the_device_psk_from_text_to_hex(cloud: Cloud) -> None:
    device_id = await cloud.create(cloud.ctwing, psk="abcdefgh")
    assert cloud.key_lookup("ctwing") == b"abcdefgh"

    body = {"psk": "abcd1234", "psk_encoding": "hex"}
    response = await cloud.set_psk(device_id, cloud.ctwing.master_key, body)
    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["endpoint"]) == (device_id, IMEI)

    attributes = cloud.attributes(device_id)
    assert (attributes["psk"], attributes["psk_encoding"]) == ("abcd1234", "hex")
    assert cloud.key_lookup("ctwing") == bytes.fromhex("abcd1234")
    assert cloud.key_lookup("open") is None, "the open listener takes no carrier device's key"

    # And back to a text key: the encoding follows.
    response = await cloud.set_psk(device_id, ADMIN_KEY, {"psk": "abcdefgh", "psk_encoding": "string"})
    assert response.status_code == 200, response.text
    assert cloud.key_lookup("ctwing") == b"abcdefgh"


@pytest.mark.parametrize(
    ("body", "errno"),
    [
        ({"psk": "abcd12zz", "psk_encoding": "hex"}, 5108),  # not hexadecimal
        ({"psk": "abc", "psk_encoding": "hex"}, 5108),  # odd number of digits
        ({"psk": "", "psk_encoding": "string"}, 5108),  # empty
        ({"psk": "a" * 65}, 5108),  # longer than 64
        ({"psk": "abcd", "psk_encoding": "base64"}, 5108),  # no such encoding
        ({"psk_encoding": "hex"}, 3),  # no key
    ],
)
async def test_bad_input_is_a_400_with_the_error_body_and_changes_nothing(
    cloud: Cloud, body: dict[str, Any], errno: int
) -> None:
    device_id = await cloud.create(cloud.ctwing, psk="abcdefgh")
    response = await cloud.set_psk(device_id, cloud.ctwing.master_key, body)
    assert response.status_code == 400, response.text
    assert response.json()["errno"] == errno and response.json()["error"], response.text
    attributes = cloud.attributes(device_id)
    assert (attributes["psk"], attributes["psk_encoding"]) == ("abcdefgh", "string")
    assert cloud.key_lookup("ctwing") == b"abcdefgh"


async def test_unknown_device_is_a_404(cloud: Cloud) -> None:
    response = await cloud.set_psk(987654, ADMIN_KEY, {"psk": "abcdefgh"})
    assert response.status_code == 404, response.text
    assert response.json()["errno"] == 3


async def test_another_products_key_gets_a_404_and_the_key_is_unchanged(cloud: Cloud) -> None:
    device_id = await cloud.create(cloud.ctwing, psk="abcdefgh")
    intruder = await cloud.server.provisioning.create_product("intruder", "ctwing")
    response = await cloud.set_psk(device_id, intruder.master_key, {"psk": "stolen12"})
    assert response.status_code == 404, response.text
    assert response.json()["errno"] == 3
    assert cloud.key_lookup("ctwing") == b"abcdefgh"
    assert cloud.attributes(device_id)["psk"] == "abcdefgh"


async def test_without_a_key_it_is_a_401(cloud: Cloud) -> None:
    device_id = await cloud.create(cloud.ctwing, psk="abcdefgh")
    response = await cloud.client.put(f"/api/v1/devices/{device_id}/psk", json={"psk": "abcdefgh"})
    assert response.status_code == 401 and response.json()["errno"] == 1
