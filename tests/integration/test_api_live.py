"""Live events (SSE), HTTP push with OneNET signatures and retries, and the native /api/v1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

from fastapi import FastAPI, Request, Response

from server.api.demo import ensure_demo_products
from server.api.serve import serve_http
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, IMEI, IMSI, Api, create_onenet_device

api = api_support.api

TOKEN = "pushtoken1"


def md5_b64(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


async def test_sse_streams_events_of_the_visible_devices(api: Api) -> None:
    await create_onenet_device(api)
    async with api.client.stream(
        "GET", "/api/v1/events", params={"kinds": "registration", "api_key": api.product.master_key}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await anext(lines) == ": connected"
        api.server.bus.publish("registration.registered", "someone-else", lifetime=1)
        api.server.bus.publish("registration.registered", f"{IMEI};{IMSI}", lifetime=60)
        async with asyncio.timeout(5):
            while await anext(lines) != "event: registration.registered":
                pass
            await anext(lines)  # id
            data = json.loads((await anext(lines)).removeprefix("data: "))
    assert data["endpoint"] == f"{IMEI};{IMSI}" and data["data"]["lifetime"] == 60


async def test_push_verifies_the_url_signs_messages_and_retries_a_failed_delivery(api: Api) -> None:
    received: list[dict[str, Any]] = []
    posts = 0
    receiver = FastAPI()

    @receiver.get("/push")
    async def check(msg: str, nonce: str, signature: str) -> Response:
        assert signature.replace(" ", "+") == md5_b64(TOKEN + nonce + msg)
        return Response(msg)

    @receiver.post("/push")
    async def deliver(request: Request) -> Response:
        nonlocal posts
        posts += 1
        body = json.loads(await request.body())
        msg_text = json.dumps(body["msg"], separators=(",", ":"))
        assert body["msg_signature"] == md5_b64(TOKEN + body["nonce"] + msg_text) and len(body["nonce"]) == 8
        if posts == 1:
            return Response(status_code=503)
        received.append(body["msg"])
        return Response("ok")

    handle = await serve_http(receiver, "127.0.0.1", 0)
    try:
        device_id = int(await create_onenet_device(api))
        added = await api.client.post(
            "/api/v1/push-targets", json={"url": f"{handle.url}/push", "token": TOKEN}, headers=api.headers()
        )
        assert added.status_code == 200, added.text
        api.server.bus.publish(
            "notification",
            f"{IMEI};{IMSI}",
            values=[{"path": "/3200/0/5750", "type": "Opaque", "value": {"hex": "0a0b"}}],
        )
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.02)
        (msg,) = received
        assert (
            msg["type"] == 1
            and msg["dev_id"] == device_id
            and msg["ds_id"] == "3200_0_5750"
            and msg["value"] == [10, 11]
        )
        assert posts == 2
        async with asyncio.timeout(5):
            while not (
                log := (await api.client.get("/api/v1/push-deliveries", headers=api.headers())).json()[
                    "items"
                ]
            ):
                await asyncio.sleep(0.02)
        assert log[0]["status"] == "delivered" and log[0]["attempts"] == 2
    finally:
        await handle.stop()


async def test_push_target_that_fails_the_url_check_is_refused(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/push-targets", json={"url": "http://127.0.0.1:9/none", "token": TOKEN}, headers=api.headers()
    )
    assert response.status_code == 400 and response.json()["errno"] == 5108


async def test_native_api_lists_devices_products_and_connect_commands(api: Api) -> None:
    created = await api.client.post(
        "/api/v1/devices",
        json={"product_id": api.product.id, "imei": IMEI, "imsi": IMSI, "title": "meter"},
        headers=api.headers(),
    )
    view = created.json()
    assert created.status_code == 200 and view["endpoint"] == f"{IMEI};{IMSI}" and view["online"] is False
    listed = await api.client.get("/api/v1/devices", params={"q": "meter"}, headers=api.headers())
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["id"] == view["id"]
    products = await api.client.get("/api/v1/products", headers=api.headers())
    assert [p["id"] for p in products.json()["items"]] == [api.product.id]
    refused = await api.client.post(
        "/api/v1/products", json={"name": "x", "carrier": "onenet"}, headers=api.headers()
    )
    assert refused.status_code == 403
    commands = await api.client.get(f"/api/v1/devices/{view['id']}/connect-commands", headers=api.headers())
    assert any(c.startswith("AT+MIPLCREATEEX=") for c in commands.json()["commands"])
    offline = await api.client.post(
        f"/api/v1/devices/{view['id']}/read", json={"path": "/3/0"}, headers=api.headers()
    )
    assert offline.status_code == 409 and offline.json()["errno"] == 2001
    overview = await api.client.get("/api/v1/overview", headers={"api-key": ADMIN_KEY})
    assert overview.json()["carriers"]["onenet"]["devices"] == 1


async def test_demo_products_are_created_once_with_the_api_key_for_onenet(api: Api) -> None:
    first = await ensure_demo_products(api.server, "demo-key-123")
    second = await ensure_demo_products(api.server, "demo-key-123")
    assert set(first) == {"onenet", "ctwing", "yanfei", "huawei", "custom"}
    assert {c: p.id for c, p in first.items()} == {c: p.id for c, p in second.items()}
    assert first["onenet"].master_key == "demo-key-123"
    response = await api.client.get("/api/v1/products", headers={"api-key": "demo-key-123"})
    assert [p["id"] for p in response.json()["items"]] == [first["onenet"].id]
