"""npm `coap-node` (an LwM2M 1.0 client with TLV and LwM2M JSON that nobody here wrote) against the
server, every operation through the REST API: register, update, de-register; read an instance and
a resource in each format it speaks; write; execute; discover; write-attributes; observe with the
notifications arriving as events and data points; cancel. Where coap-node has a bug of its own,
the test works around it and says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.numbers import ContentFormat
from server.lwm2m_server import Lwm2mServer
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, Api
from tests.integration.peers_support import PeerClient

api = api_support.api
ADMIN = {"api-key": ADMIN_KEY}
ENDPOINT = "coap-node-peer"


@pytest.fixture
async def peer(api: Api) -> AsyncIterator[PeerClient]:
    host, port = api.server.listeners["default"].address
    client = await PeerClient.start("coap_node_client.js", host, port, ENDPOINT)
    yield client
    await client.stop()


async def device_id_of(server: Lwm2mServer, endpoint: str) -> int:
    async with asyncio.timeout(5):
        while (device := server.provisioning.device_by_endpoint(endpoint)) is None:
            await asyncio.sleep(0.02)
    return device.id


async def call(api: Api, device_id: int, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(f"/api/v1/devices/{device_id}/{operation}", json=body, headers=ADMIN)
    assert response.status_code == 200, (operation, body, response.text)
    result: dict[str, Any] = response.json()
    return result


async def test_coap_node_registers_updates_and_deregisters(api: Api, peer: PeerClient) -> None:
    server = api.server
    with server.subscribe(
        endpoint=ENDPOINT, kinds=("registration.updated", "registration.deregistered")
    ) as events:
        assert (await peer.command("register"))["status"] == "2.01"
        registration = server.registration(ENDPOINT)
        assert registration is not None and registration.lwm2m_version == "1.0"
        assert {str(p) for p in registration.objects.instances} >= {"/3/0", "/3303/0", "/3311/0"}
        assert (await peer.command("update", lifetime=600))["status"] == "2.04"
        assert (await events.get(timeout=5)).kind == "registration.updated"
        assert server.registration(ENDPOINT).lifetime == 600  # type: ignore[union-attr]
        assert (await peer.command("deregister"))["status"] == "2.02"
        assert (await events.get(timeout=5)).kind == "registration.deregistered"
    assert server.registration(ENDPOINT) is None


async def test_every_operation_on_coap_node_through_the_rest_api(api: Api, peer: PeerClient) -> None:
    assert (await peer.command("register"))["status"] == "2.01"
    device_id = await device_id_of(api.server, ENDPOINT)

    # Read an instance and a resource in every format coap-node speaks, and without a format.
    temperature = {"/3303/0/5700": 21.5, "/3303/0/5701": "Cel"}
    for fmt in (None, ContentFormat.TLV):
        values = (await call(api, device_id, "read", {"path": "/3303/0", "content_format": fmt}))["values"]
        assert {v["path"]: v["value"] for v in values} == temperature, fmt
    # Not LwM2M JSON for an instance: coap-node's codec (lwm2m-codec 0.0.8) writes the base name
    # without its trailing slash ("bn":"/3303/0" with "n":"5700"), which names /3303/05700.
    for fmt in (None, ContentFormat.TLV, ContentFormat.LWM2M_JSON, ContentFormat.TEXT):
        values = (await call(api, device_id, "read", {"path": "/3303/0/5700", "content_format": fmt}))[
            "values"
        ]
        assert values == [{"path": "/3303/0/5700", "type": "Float", "value": 21.5}], fmt

    # Write (replace) a resource and an instance, in TLV (the default for 1.0) and LwM2M JSON.
    await call(api, device_id, "write", {"path": "/3311/0/5851", "value": 42})
    assert (await peer.command("get", oid=3311, iid=0, rid=5851))["value"] == 42
    await call(api, device_id, "write", {"path": "/3311/0", "value": {"5851": 44}})
    assert (await peer.command("get", oid=3311, iid=0, rid=5851))["value"] == 44
    await call(
        api,
        device_id,
        "write",
        {"path": "/3311/0/5851", "value": 46, "content_format": ContentFormat.LWM2M_JSON},
    )
    assert (await peer.command("get", oid=3311, iid=0, rid=5851))["value"] == 46
    # No partial update: coap-node takes every POST that carries a Content-Format for a Create
    # (serverReqParser in its reqHandler.js), and its Create crashes on an instance payload.

    # Execute without arguments: with arguments (a text payload) coap-node would take it for a
    # Create too.
    await call(api, device_id, "execute", {"path": "/3311/0/5523"})
    assert (await peer.wait_for_event("executed"))["path"] == "/3311/0/5523"

    links = (await call(api, device_id, "discover", {"path": "/3303/0"}))["links"]
    assert {link["target"] for link in links} >= {"/3303/0", "/3303/0/5700", "/3303/0/5701"}
    await call(
        api, device_id, "write-attributes", {"path": "/3303/0/5700", "attributes": {"pmin": 0, "pmax": 30}}
    )

    # Observe: the notification arrives as an event and as a data point; then cancel.
    with api.server.subscribe(endpoint=ENDPOINT, kinds=("notification", "observation.cancelled")) as events:
        observation = await call(api, device_id, "observe", {"path": "/3303/0/5700"})
        assert observation["values"] == [{"path": "/3303/0/5700", "type": "Float", "value": 21.5}]
        await peer.command("set", oid=3303, iid=0, rid=5700, value=30.5)
        notification = await events.get(timeout=10)
        assert notification.kind == "notification"
        assert notification.data["values"] == [{"path": "/3303/0/5700", "type": "Float", "value": 30.5}]
        points = await api.client.get(
            f"/api/v1/devices/{device_id}/datapoints", params={"path": "/3303/0/5700"}, headers=ADMIN
        )
        assert [p["value"] for p in points.json()["items"] if p["source"] == "notify"][:1] == [30.5]
        await call(api, device_id, "cancel-observation", {"observation_id": observation["observation_id"]})
        while (await events.get(timeout=10)).kind != "observation.cancelled":
            pass  # notifications sent before the cancel arrived
    listed = await api.client.get(f"/api/v1/devices/{device_id}/observations", headers=ADMIN)
    assert listed.json()["items"] == []
    timeline = await api.client.get(f"/api/v1/devices/{device_id}/events", headers=ADMIN)
    kinds = {e["kind"] for e in timeline.json()["items"]}
    assert {"notification", "request.write", "request.execute", "observation.cancelled"} <= kinds

    # Create: coap-node never answers it (its createInst ignores the request handler's callback),
    # so the server gives up after the timeout with a clean 504, as for any silent device. Last:
    # the unanswered exchange holds further requests to this client back (CoAP NSTART 1).
    response = await api.client.post(
        f"/api/v1/devices/{device_id}/create",
        json={"path": "/3303", "instance": 1, "value": {"5700": 1.5}, "timeout": 1},
        headers=ADMIN,
    )
    assert response.status_code == 504 and response.json()["errno"] == 5106 and response.json()["reason"] == 5
