"""A LwM2M 1.2 client (the emulated client registering with lwm2m=1.2 and declaring LwM2M CBOR,
content format 11544) end to end over real UDP: read in LwM2M CBOR, SenML CBOR, SenML JSON and TLV
with identical values, written and observed in LwM2M CBOR, and read through the REST API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lwm2m.node import LwM2MObject, MultipleResource, ObjectInstance
from lwm2m.numbers import ContentFormat
from server.api.app import create_app
from server.api.serve import serve_http
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.e2e.test_device_management import device

FORMATS = [ContentFormat.LWM2M_CBOR, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV]
PATHS = ["/3/0", "/3/0/6", "/3/0/6/1", "/3/0/0", "/3303", "/3303/0/5700", "/1/0"]


async def test_a_lwm2m_1_2_client_registers_and_declares_lwm2m_cbor(server: Lwm2mServer) -> None:
    async with device(server, "v12-reg", version="1.2"):
        registration = server.registration("v12-reg")
        assert registration is not None and registration.lwm2m_version == "1.2"
        assert registration.objects.content_formats == (ContentFormat.LWM2M_CBOR,)


@pytest.mark.parametrize("path", PATHS)
async def test_a_lwm2m_1_2_client_is_read_with_identical_values_in_every_format(
    server: Lwm2mServer, path: str
) -> None:
    async with device(server, "v12-read", version="1.2"):
        nodes = {fmt: await server.read("v12-read", path, content_format=fmt) for fmt in FORMATS}
        assert all(node == nodes[ContentFormat.LWM2M_CBOR] for node in nodes.values()), nodes
        # Without a format the server asks for the declared one and gets the same node.
        assert await server.read("v12-read", path) == nodes[ContentFormat.LWM2M_CBOR]
    if path == "/3/0":
        node = nodes[ContentFormat.LWM2M_CBOR]
        assert isinstance(node, ObjectInstance) and node.resources[6] == MultipleResource(
            6, {0: 1, 1: 5}, node.resources[6].type
        )
    if path == "/3303":
        assert isinstance(nodes[ContentFormat.TLV], LwM2MObject)


async def test_a_lwm2m_1_2_client_is_written_and_observed_in_lwm2m_cbor(server: Lwm2mServer) -> None:
    async with device(server, "v12-write", version="1.2") as dev:
        await server.write("v12-write", "/1/0/1", 3600)  # LwM2M CBOR: the only format it declares
        assert dev.tree.get_value("/1/0/1") == 3600
        await server.write("v12-write", "/1/0", {3: 30}, replace=False)
        assert dev.tree.get_value("/1/0/3") == 30
        with server.subscribe(endpoint="v12-write", kinds=("notification",)) as events:
            observation = await server.observe("v12-write", "/3303/0")
            assert observation.values[0] == {"path": "/3303/0/5700", "type": "Float", "value": 21.5}
            dev.tree.set_value("/3303/0/5700", 22.75)
            notification = await events.get(timeout=5)
        assert {v["path"]: v["value"] for v in notification.data["values"]}["/3303/0/5700"] == 22.75


async def test_a_lwm2m_1_2_client_is_read_in_every_format_through_the_rest_api(
    server_factory: ServerFactory,
) -> None:
    server: Lwm2mServer = await server_factory(api_key="v12-admin")
    handle = await serve_http(create_app(server), "127.0.0.1", 0)
    try:
        async with (
            device(server, "v12-rest", version="1.2"),
            httpx.AsyncClient(base_url=handle.url) as client,
        ):
            async with asyncio.timeout(5):
                while (found := server.provisioning.device_by_endpoint("v12-rest")) is None:
                    await asyncio.sleep(0.02)
            answers = []
            for fmt in [*FORMATS, None]:
                response = await client.post(
                    f"/api/v1/devices/{found.id}/read",
                    json={"path": "/3/0", "content_format": fmt},
                    headers={"api-key": "v12-admin"},
                )
                assert response.status_code == 200, response.text
                answers.append(response.json()["values"])
            assert all(a == answers[0] for a in answers)
            assert {"path": "/3/0/0", "type": "String", "value": "China Mobile"} in answers[0]
    finally:
        await handle.stop()
