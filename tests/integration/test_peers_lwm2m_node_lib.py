"""npm `lwm2m-node-lib` (the client side of an LwM2M 1.0 library that nobody here wrote; it speaks
text values only) against the server, every operation it has through the REST API: register,
update, de-register; read a resource; write; execute; discover; write-attributes; observe with the
notifications arriving as events and data points; cancel. Where lwm2m-node-lib has a bug or a gap
of its own, the test works around it and says so."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lwm2m.numbers import ContentFormat
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, Api
from tests.integration.peers_support import PeerClient
from tests.integration.test_peers_coap_node import call, device_id_of

api = api_support.api
ADMIN = {"api-key": ADMIN_KEY}
ENDPOINT = "lwm2m-node-lib-peer"
TEXT = ContentFormat.TEXT


@pytest.fixture
async def peer(api: Api) -> AsyncIterator[PeerClient]:
    host, port = api.server.listeners["default"].address
    client = await PeerClient.start("lwm2m_node_lib_client.js", host, port, ENDPOINT)
    yield client
    await client.stop()


async def test_lwm2m_node_lib_registers_updates_and_deregisters(api: Api, peer: PeerClient) -> None:
    server = api.server
    with server.subscribe(
        endpoint=ENDPOINT, kinds=("registration.updated", "registration.deregistered")
    ) as events:
        assert (await peer.command("register"))["error"] is None
        registration = server.registration(ENDPOINT)
        assert registration is not None and registration.lwm2m_version == "1.0"
        assert {str(p) for p in registration.objects.instances} == {"/3303/0", "/3311/0"}
        first_address = registration.address
        assert (await peer.command("update"))["error"] is None
        updated = await events.get(timeout=5)
        assert updated.kind == "registration.updated"
        # lwm2m-node-lib sends each Update from a new socket: the registration follows it.
        assert server.registration(ENDPOINT).address != first_address  # type: ignore[union-attr]
        assert (await server.read(ENDPOINT, "/3303/0/5700")).value == 21.5  # type: ignore[union-attr]
        assert (await peer.command("deregister"))["error"] is None
        assert (await events.get(timeout=5)).kind == "registration.deregistered"
    assert server.registration(ENDPOINT) is None


async def test_every_operation_on_lwm2m_node_lib_through_the_rest_api(api: Api, peer: PeerClient) -> None:
    assert (await peer.command("register"))["error"] is None
    device_id = await device_id_of(api.server, ENDPOINT)

    # Resources only, in text (its one format) and without a format (a 1.0 client's default).
    # No instance reads: lwm2m-node-lib has no container format, and it leaves a read that asks
    # for one (Accept TLV) unanswered.
    for fmt in (None, TEXT):
        values = (await call(api, device_id, "read", {"path": "/3303/0/5700", "content_format": fmt}))[
            "values"
        ]
        assert values == [{"path": "/3303/0/5700", "type": "Float", "value": 21.5}], fmt
    values = (await call(api, device_id, "read", {"path": "/3303/0/5701", "content_format": TEXT}))["values"]
    assert values == [{"path": "/3303/0/5701", "type": "String", "value": "Cel"}]

    # Write (replace) in text; lwm2m-node-lib stores what it gets as text. No partial update:
    # text cannot carry the object instance a partial update is sent to, and lwm2m-node-lib
    # routes no POST on an instance.
    await call(api, device_id, "write", {"path": "/3311/0/5851", "value": 42, "content_format": TEXT})
    assert (await peer.command("get", uri="/3311/0", rid=5851))["value"] == "42"

    await call(api, device_id, "execute", {"path": "/3311/0/5523", "arguments": "5"})
    executed = await peer.wait_for_event("executed")
    assert (executed["uri"], executed["rid"], executed["args"]) == ("/3311/0", "5523", "5")

    links = (await call(api, device_id, "discover", {"path": "/3303/0"}))["links"]
    assert {link["target"] for link in links} >= {"/3303/0", "/3303/0/5700", "/3303/0/5701"}
    # Attributes on a resource that is not observed: lwm2m-node-lib takes pmin and pmax for
    # milliseconds when it schedules the notifications of an observed resource.
    await call(api, device_id, "write-attributes", {"path": "/3311/0/5851", "attributes": {"pmin": 1}})

    with api.server.subscribe(endpoint=ENDPOINT, kinds=("notification", "observation.cancelled")) as events:
        observation = await call(api, device_id, "observe", {"path": "/3303/0/5700", "content_format": TEXT})
        assert observation["values"] == [{"path": "/3303/0/5700", "type": "Float", "value": 21.5}]
        await peer.command("set", uri="/3303/0", rid=5700, value="30.5")
        notification = await events.get(timeout=10)
        assert notification.kind == "notification"
        assert notification.data["values"] == [{"path": "/3303/0/5700", "type": "Float", "value": 30.5}]
        points = await api.client.get(
            f"/api/v1/devices/{device_id}/datapoints", params={"path": "/3303/0/5700"}, headers=ADMIN
        )
        assert [p["value"] for p in points.json()["items"] if p["source"] == "notify"][:1] == [30.5]
        # Cancelled passively (the next notification is answered with a Reset, RFC 7641 §3.6):
        # lwm2m-node-lib leaves a GET with Observe 1 unanswered.
        await call(
            api,
            device_id,
            "cancel-observation",
            {"observation_id": observation["observation_id"], "active": False},
        )
        while (await events.get(timeout=10)).kind != "observation.cancelled":
            pass
    listed = await api.client.get(f"/api/v1/devices/{device_id}/observations", headers=ADMIN)
    assert listed.json()["items"] == []
