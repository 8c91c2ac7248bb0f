"""The native API against a LwM2M client made of one UDP socket: answers the server cannot use are
502 errno 5106 with the reason, inputs out of range are 400, and what is not a device id is 404
— never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from lwm2m import codec
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import LwM2MObject, ObjectInstance, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, Api
from tests.integration.raw_device import RawDevice, content

api = api_support.api
MODEL = builtin_registry()
ADMIN = {"api-key": ADMIN_KEY}
DEVICE_3_0 = ObjectInstance(0, {0: SingleResource(0, "Acme", ResourceType.STRING)})


def answer(request: aiocoap.Message) -> aiocoap.Message:
    target = "/" + "/".join(request.opt.uri_path)
    if target == "/3/0/0":  # an instance where a resource was asked for
        payload = codec.encode(LwM2MObject(3, {0: DEVICE_3_0}), Path(3), ContentFormat.TLV, MODEL)
        return content(payload, ContentFormat.TLV)
    if target == "/3/0/1":
        return content(b"\x01\x02", 11545)  # a content format the server cannot decode
    return aiocoap.Message(code=Code.CHANGED)


@pytest.fixture
async def device_id(api: Api) -> AsyncIterator[int]:
    device = await RawDevice.open(api.server.listeners["default"].address, answer)
    await device.register("raw-client", "</1/0>,</3/0>,</3303/0>", lwm2m="1.1")
    async with asyncio.timeout(5):
        while (found := api.server.provisioning.device_by_endpoint("raw-client")) is None:
            await asyncio.sleep(0.02)
    yield found.id
    device.close()


async def post(api: Api, device_id: int | str, operation: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await api.client.post(f"/api/v1/devices/{device_id}/{operation}", json=body, headers=ADMIN)
    return response.status_code, response.json()


async def test_an_answer_that_does_not_match_the_request_is_502_errno_5106_with_the_reason(
    api: Api, device_id: int
) -> None:
    status, body = await post(api, device_id, "read", {"path": "/3/0/0"})
    assert status == 502 and body["errno"] == 5106 and body["reason"] == 7
    assert "/3/0/0" in body["error"] and "does not decode" in body["error"]


async def test_an_answer_in_a_format_the_server_cannot_decode_is_502_saying_so(
    api: Api, device_id: int
) -> None:
    status, body = await post(api, device_id, "read", {"path": "/3/0/1"})
    assert status == 502 and body["errno"] == 5106
    assert "content format 11545, which the server cannot decode" in body["error"]


BAD_INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("read", {"path": "/99999"}),
    ("read", {"path": "/3/0/70000"}),
    ("write", {"path": "/3/0/14", "value": {"a": [1, {"b": None}]}}),
    ("write", {"path": "/3/0/14", "value": [1, {"b": None}]}),
    ("write", {"path": "/3/0/13", "value": {"time": 1e300}}),
    ("write", {"path": "/3/0/13", "value": 1e300}),
    ("write", {"path": "/3/0", "value": {"x": 1}}),
    ("write", {"path": "/3/0/6", "value": {"x": 1}}),
]


async def test_inputs_out_of_range_or_of_the_wrong_shape_are_400(api: Api, device_id: int) -> None:
    for operation, body in BAD_INPUTS:
        status, answer_body = await post(api, device_id, operation, body)
        assert status == 400 and answer_body["errno"] == 5108, (body, answer_body)
    for params in ({"start": 1e300}, {"end": -1e300}, {"start": "nan"}, {"end": "inf"}):
        response = await api.client.get(
            f"/api/v1/devices/{device_id}/datapoints", params=params, headers=ADMIN
        )
        assert response.status_code == 400 and response.json()["errno"] == 5108, (params, response.text)


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


async def test_what_is_not_a_device_id_is_404(api: Api, device_id: int) -> None:
    written = [
        str(device_id).translate(ARABIC_INDIC),
        f"+{device_id}",
        f" {device_id}",
        f"{device_id} ",
        "9" * 20,
    ]
    for text in written:
        for method, suffix in (("GET", ""), ("POST", "/read"), ("GET", "/datapoints")):
            response = await api.client.request(
                method,
                f"/api/v1/devices/{text}{suffix}",
                json={"path": "/3/0"} if method == "POST" else None,
                headers=ADMIN,
            )
            assert response.status_code == 404 and response.json()["errno"] == 3, (
                text,
                suffix,
                response.text,
            )
    assert (await api.client.get(f"/api/v1/devices/{device_id}", headers=ADMIN)).status_code == 200


async def test_an_out_of_range_cursor_on_the_onenet_datapoints_route_is_invalid_not_a_crash(
    api: Api, device_id: int
) -> None:
    for params in ({"cursor": "9" * 20}, {"cursor": str(2**63)}):
        response = await api.client.get(f"/devices/{device_id}/datapoints", params=params, headers=ADMIN)
        assert response.status_code in (200, 400) and response.json()["errno"] == 5108, (
            params,
            response.text,
        )
    response = await api.client.get(f"/devices/{device_id}/datapoints", params={"cursor": "0"}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["errno"] == 0, response.text
