"""Fixtures of the API tests: a started server, its app served on an ephemeral port, an httpx
client, a OneNET product and a provisioned device."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from server.api.app import create_app
from server.api.serve import HttpHandle, serve_http
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Product
from server.services.push import PushService
from server.settings import ListenerSettings
from tests.conftest import ServerFactory

ADMIN_KEY = "admin-key-for-tests"
IMEI = "869975030000461"
IMSI = "460041234567890"
ENDPOINT = f"{IMEI};{IMSI}"


@dataclass
class Api:
    server: Lwm2mServer
    http: HttpHandle
    client: httpx.AsyncClient
    product: Product
    push: PushService

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"api-key": key or self.product.master_key}


@asynccontextmanager
async def serve_api(server_factory: ServerFactory, **overrides: Any) -> AsyncIterator[Api]:
    """A started server (settings `overrides`), its app served, a client and a OneNET product."""
    server: Lwm2mServer = await server_factory(
        api_key=ADMIN_KEY, request_timeout=3.0, max_payload=4096, **overrides
    )
    app = create_app(server)
    app.state.push.backoff = 0.05
    handle = await serve_http(app, "127.0.0.1", 0)
    product = await server.provisioning.create_product("OneNET test", "onenet")
    async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
        yield Api(server, handle, client, product, app.state.push)
    await handle.stop()


@pytest.fixture
async def api(server_factory: ServerFactory) -> AsyncIterator[Api]:
    async with serve_api(server_factory) as value:
        yield value


def onenet_listener() -> ListenerSettings:
    """A OneNET access listener named "default": OneNET devices register through their carrier's
    listener (the open listener refuses their names)."""
    return ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None, carrier="onenet")


async def create_onenet_device(api: Api, imei: str = IMEI, imsi: str = IMSI, **extra: object) -> str:
    body = {"title": "meter", "protocol": "LWM2M", "auth_info": {imei: imsi}, **extra}
    response = await api.client.post("/devices", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    assert response.json()["errno"] == 0
    device_id: str = response.json()["data"]["device_id"]
    return device_id
