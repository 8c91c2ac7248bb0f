"""The LwM2M operations of the Python API that the native REST API offers too: Create and Delete of
an object instance, Read-Composite and Write-Composite, end to end against the emulated LwM2M
client, with the API's error envelope, key checks and events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator.client.client import Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from lwm2m.numbers import ContentFormat
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, Api

api = api_support.api
MODEL = builtin_registry()
ADMIN = {"api-key": ADMIN_KEY}
ENDPOINT = "rest-ops"


@pytest.fixture
async def device_id(api: Api) -> AsyncIterator[int]:
    tree = ObjectTreeHandler(MODEL)
    tree.add_instance(1, 0, {0: 101, 1: 86400, 2: 1, 3: 60, 6: False, 7: "U"})
    tree.add_instance(3, 0, {0: "China Mobile", 1: "ML307R", 9: 80})
    tree.add_instance(3303, 0, {5700: 21.5, 5701: "Cel"})
    host, port = api.server.listeners["default"].address
    client = Lwm2mClient(
        ClientSettings(
            endpoint=ENDPOINT,
            server_host=host,
            server_port=port,
            lifetime=300,
            lwm2m_version="1.1",
            object_links=tree.object_links,
        ),
        tree,
        MODEL,
    )
    await client.start()
    await client.register()
    async with asyncio.timeout(5):
        while (found := api.server.provisioning.device_by_endpoint(ENDPOINT)) is None:
            await asyncio.sleep(0.02)
    yield found.id
    await client.stop()


async def post(api: Api, device_id: int, operation: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await api.client.post(f"/api/v1/devices/{device_id}/{operation}", json=body, headers=ADMIN)
    return response.status_code, response.json()


@pytest.mark.parametrize("fmt", [None, ContentFormat.TLV, ContentFormat.SENML_JSON])
async def test_create_and_delete_an_object_instance_through_the_api(
    api: Api, device_id: int, fmt: int | None
) -> None:
    with api.server.subscribe(endpoint=ENDPOINT, kinds=("request.create", "request.delete")) as events:
        status, body = await post(
            api,
            device_id,
            "create",
            {"path": "/3303", "instance": 7, "value": {"5700": 30.25, "5701": "Cel"}, "content_format": fmt},
        )
        assert status == 200 and body == {"ok": True, "instance": 7}
        assert (await events.get(timeout=5)).data == {"path": "/3303", "instance_id": 7}
        status, body = await post(api, device_id, "read", {"path": "/3303/7/5700"})
        assert status == 200 and body["values"] == [{"path": "/3303/7/5700", "type": "Float", "value": 30.25}]
        status, body = await post(api, device_id, "delete", {"path": "/3303/7"})
        assert status == 200 and body == {"ok": True}
        assert (await events.get(timeout=5)).kind == "request.delete"
    status, body = await post(api, device_id, "read", {"path": "/3303/7"})
    assert status == 502 and body["errno"] == 5106 and body["reason"] == 3  # 4.04 from the client


async def test_read_composite_and_write_composite_through_the_api(api: Api, device_id: int) -> None:
    with api.server.subscribe(endpoint=ENDPOINT, kinds=("request.write_composite",)) as events:
        status, body = await post(
            api, device_id, "write-composite", {"values": {"/1/0/1": 600, "/1/0/3": 30}}
        )
        assert status == 200 and body == {"ok": True}, body
        assert (await events.get(timeout=5)).kind == "request.write_composite"
    for fmt in (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON):
        status, body = await post(
            api,
            device_id,
            "read-composite",
            {"paths": ["/1/0/1", "/1/0/3", "/3303/0"], "content_format": fmt},
        )
        assert status == 200, body
        values = {v["path"]: v["value"] for v in body["values"]}
        assert values == {"/1/0/1": 600, "/1/0/3": 30, "/3303/0/5700": 21.5, "/3303/0/5701": "Cel"}


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("create", {"path": "/3303/0", "value": {}}),
        ("create", {"path": "/3303", "value": {"abc": 1}}),
        ("create", {"path": "/3303", "value": {"99999": 1}}),
        ("delete", {"path": "/3303"}),
        ("delete", {"path": "/3303/0/5700"}),
        ("read-composite", {"paths": []}),
        ("read-composite", {"paths": ["/99999"]}),
        ("write-composite", {"values": {}}),
        ("write-composite", {"values": {"/3303/0/5700": {"a": [1]}}}),
    ],
)
async def test_bad_operation_bodies_are_400(
    api: Api, device_id: int, operation: str, body: dict[str, Any]
) -> None:
    status, answer = await post(api, device_id, operation, body)
    assert status == 400 and answer["errno"] in (3, 5108), answer
