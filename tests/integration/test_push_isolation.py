"""HTTP push isolation and policy (issue 13, finding 6): a receiver that never answers delays only
its own messages, queued messages are bounded, and a product key may not point pushes at the
cloud itself, at link-local (metadata) addresses, or at loopback / private addresses unless the
admin allows them. Real HTTP on loopback; a hanging receiver is a TCP server that never answers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from server.api.serve import HttpHandle, serve_http
from server.lwm2m_server import Lwm2mServer
from server.services.push import PushService
from tests.conftest import ServerFactory
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, Api

TOKEN = "pushtoken1"
ENDPOINT = "thermo-1"


class Healthy:
    """A receiver that answers every POST at once and notes when each message arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.app = FastAPI()

        @self.app.get("/push")
        async def check(msg: str) -> Response:
            return Response(msg)

        @self.app.post("/push")
        async def deliver(request: Request) -> Response:
            body = json.loads(await request.body())
            self.arrived[int(body["msg"]["value"])] = time.monotonic()
            return Response("ok")


@pytest.fixture
async def hanging() -> AsyncIterator[str]:
    """The URL of a receiver that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/push"
    finally:
        for writer in held:
            writer.close()
        server.close()


@pytest.fixture
async def healthy() -> AsyncIterator[tuple[Healthy, HttpHandle]]:
    receiver = Healthy()
    handle = await serve_http(receiver.app, "127.0.0.1", 0)
    try:
        yield receiver, handle
    finally:
        await handle.stop()


async def started_push(server: Lwm2mServer, **options: Any) -> PushService:
    await server.provisioning.ensure_endpoint(ENDPOINT)
    push = PushService(server, attempts=1, backoff=0.05, **options)
    await push.start()
    return push


def notify(server: Lwm2mServer, n: int) -> None:
    server.bus.publish("notification", ENDPOINT, values=[{"path": "/3303/0/5700", "value": n}])


async def test_a_hanging_receiver_delays_only_its_own_messages(
    server_factory: ServerFactory, hanging: str, healthy: tuple[Healthy, HttpHandle]
) -> None:
    server: Lwm2mServer = await server_factory()
    receiver, handle = healthy
    push = await started_push(server, timeout=3.0)
    try:
        bad = await push.add_target(hanging, TOKEN, verify=False)
        good = await push.add_target(f"{handle.url}/push", TOKEN)
        notified: dict[int, float] = {}
        for n in range(150):  # more than a shared pool of 100 connections could keep waiting
            notified[n] = time.monotonic()
            notify(server, n)
        async with asyncio.timeout(10):
            while len(receiver.arrived) < 150:
                await asyncio.sleep(0.02)
        late = {
            n: receiver.arrived[n] - notified[n] for n in notified if receiver.arrived[n] - notified[n] >= 2.0
        }
        assert late == {}, "the healthy receiver got every message within 2 s of its notification"
        async with asyncio.timeout(10):
            while not (failed := await push.deliveries(bad.id, 5)):
                await asyncio.sleep(0.05)
        assert failed[0]["status"] == "failed" and failed[0]["error"] == "timeout"
        delivered = await push.deliveries(good.id, 200)
        assert {row["status"] for row in delivered} == {"delivered"}
    finally:
        await push.stop()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_queued_messages_are_bounded_under_a_flood(server_factory: ServerFactory, hanging: str) -> None:
    server: Lwm2mServer = await server_factory()
    push = await started_push(server, timeout=30.0, queue_size=100, connections=2)
    try:
        await push.add_target(hanging, TOKEN, verify=False)
        await asyncio.sleep(0)
        before = rss_bytes()
        for n in range(10_000):
            notify(server, n)
        await asyncio.sleep(0.2)
        assert push.queued() <= 100
        assert push.dropped >= 10_000 - 100 - 2
        # The bound: 100 queued messages of a few hundred bytes; 16 MiB leaves room for the
        # allocator and the event log, far below what 10,000 pending requests take.
        assert rss_bytes() - before < 16 * 2**20
        async with asyncio.timeout(5):
            while not (rows := await push.deliveries(None, 5)):
                await asyncio.sleep(0.05)
        assert rows[0]["status"] == "dropped" and rows[0]["error"].startswith("queue full: ")
    finally:
        await push.stop()


# --- the policy of product keys -----------------------------------------------------------------


@pytest.fixture
async def strict_api(server_factory: ServerFactory) -> AsyncIterator[Api]:
    async with api_support.serve_api(server_factory, push_allow_private=False) as value:
        yield value


@pytest.fixture
async def api(server_factory: ServerFactory) -> AsyncIterator[Api]:
    async with api_support.serve_api(server_factory) as value:
        yield value


async def add(api: Api, url: str, key: str | None = None) -> httpx.Response:
    return await api.client.post(
        "/api/v1/push-targets", json={"url": url, "token": TOKEN}, headers=api.headers(key)
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # a cloud metadata service
        "http://[fe80::1]/push",
        "http://0.0.0.0:9000/push",
        "http://224.0.0.1/push",
    ],
)
async def test_a_product_key_may_not_push_to_link_local_or_reserved_addresses(api: Api, url: str) -> None:
    response = await add(api, url)
    assert response.status_code == 400 and response.json()["errno"] == 5108, response.text
    assert "refused" in response.json()["error"]
    assert (await api.client.get("/api/v1/push-targets", headers=api.headers())).json()["items"] == []


async def test_a_product_key_may_not_push_to_the_clouds_own_ports(api: Api) -> None:
    coap_port = api.server.listeners["default"].port
    for url in (
        f"http://127.0.0.1:{api.server.settings.http_port}/api/v1/products",
        f"http://127.0.0.1:{coap_port}/push",
        "http://127.0.0.1:5432/",
    ):
        if url.endswith(":5432/") and not api.server.settings.database_url.startswith("postgresql"):
            continue
        response = await add(api, url)
        assert response.status_code == 400 and "own ports" in response.json()["error"], response.text


async def test_private_receivers_need_the_admins_setting(
    strict_api: Api, healthy: tuple[Healthy, HttpHandle]
) -> None:
    _receiver, handle = healthy
    refused = await add(strict_api, f"{handle.url}/push")
    assert refused.status_code == 400 and "TESTBED_PUSH_ALLOW_PRIVATE" in refused.json()["error"], (
        refused.text
    )
    # The admin is not restricted (the receiver is the admin's own business).
    allowed = await add(strict_api, f"{handle.url}/push", ADMIN_KEY)
    assert allowed.status_code == 200, allowed.text


async def test_a_local_receiver_is_allowed_by_default_and_failures_carry_a_short_reason(
    api: Api, healthy: tuple[Healthy, HttpHandle]
) -> None:
    _receiver, handle = healthy
    added = await add(api, f"{handle.url}/push")
    assert added.status_code == 200, added.text
    push: PushService = api.push
    unreachable = await push.add_target(
        "http://127.0.0.1:9/push", TOKEN, product_id=api.product.id, verify=False
    )
    await api.server.provisioning.ensure_endpoint(ENDPOINT)
    device = api.server.device_of(ENDPOINT)
    assert device is not None
    await api.server.provisioning.update_device(device.id, product_id=api.product.id)
    notify(api.server, 1)
    async with asyncio.timeout(10):
        while (
            len(
                rows := (await api.client.get("/api/v1/push-deliveries", headers=api.headers())).json()[
                    "items"
                ]
            )
            < 2
        ):
            await asyncio.sleep(0.05)
    by_target = {row["target_id"]: row for row in rows}
    assert by_target[unreachable.id]["status"] == "failed"
    assert by_target[unreachable.id]["error"] == "connection failed"
    assert by_target[added.json()["id"]]["status"] == "delivered"
