"""Every route of the API, taken from the app's own OpenAPI document so that a new route cannot be
forgotten: without a key it answers 401 with the OneNET body `{"errno": 1, ...}`; with the master
key of another product it never reaches a device of the first product (403/404 where the route
names the device, never a 2xx carrying it, never a 5xx). The WebSocket routes refuse a missing
key with close code 4401. Failed key attempts are limited per client address (429, errno 1)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.api.app import create_app
from server.api.deps import KeyAttemptLimiter
from server.api.serve import serve_http
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, IMEI, Api, create_onenet_device

api = api_support.api

FUTURE = "2099-01-01T00:00:00"
PAST = "2000-01-01T00:00:00"

# Minimal valid bodies by route (method, path template); routes without a body are absent.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/devices"): {"title": "spy", "auth_info": {"869975039999999": "460049999999999"}},
    ("PUT", "/devices/{device_id}"): {"title": "renamed"},
    ("POST", "/devices/{device_id}/datapoints"): {"datastreams": [{"id": "t", "datapoints": [{"value": 1}]}]},
    ("POST", "/devices/{device_id}/datastreams"): {"id": "spy"},
    ("PUT", "/register_attr"): {"allow_dup": True},
    ("POST", "/nbiot/offline"): {"data": [{"res_id": 5850, "val": True}]},
    ("POST", "/nbiot/execute/offline"): {"args": ""},
    ("POST", "/nbiot"): {"data": [{"res_id": 5850, "val": True}]},
    ("POST", "/nbiot/execute"): {"args": ""},
    ("PUT", "/nbiot/device/psk"): {"key": "abcdefgh12"},
    ("PUT", "/nbiot/device/accpsk"): {"key": "abcdefgh12"},
    ("POST", "/nbiot/device/accpsk"): {"key": "abcdefgh12"},
    ("POST", "/api/v1/products"): {"name": "spy", "carrier": "onenet"},
    ("POST", "/api/v1/devices"): {"product_id": "{product_id}", "imei": "869975039999998"},
    ("PUT", "/api/v1/devices/{device_id}/psk"): {"psk": "abcdefgh12"},
    ("POST", "/api/v1/devices/{device_id}/read"): {"path": "/3/0/0"},
    ("POST", "/api/v1/devices/{device_id}/write"): {"path": "/3311/0/5850", "value": True},
    ("POST", "/api/v1/devices/{device_id}/execute"): {"path": "/3/0/4"},
    ("POST", "/api/v1/devices/{device_id}/discover"): {"path": "/3"},
    ("POST", "/api/v1/devices/{device_id}/write-attributes"): {"path": "/3/0/9", "attributes": {"pmin": 1}},
    ("POST", "/api/v1/devices/{device_id}/observe"): {"path": "/3/0/9"},
    ("POST", "/api/v1/devices/{device_id}/cancel-observation"): {"observation_id": 1},
    ("POST", "/api/v1/devices/{device_id}/create"): {"path": "/3303", "instance": 1, "value": {"5700": 1}},
    ("POST", "/api/v1/devices/{device_id}/delete"): {"path": "/3303/1"},
    ("POST", "/api/v1/devices/{device_id}/read-composite"): {"paths": ["/3/0/0"]},
    ("POST", "/api/v1/devices/{device_id}/write-composite"): {"values": {"/1/0/1": 60}},
    ("POST", "/api/v1/push-targets"): {"url": "http://127.0.0.1:9/push", "token": "t", "verify": False},
    ("POST", "/api/v1/modules"): {"device_id": "{device_id}", "model": "ML307R"},
}

# Query values by parameter name (the first product's device where a device is named).
QUERY: dict[str, str] = {
    "imei": IMEI,
    "devIds": "{device_id}",
    "obj_id": "3311",
    "obj_inst_id": "0",
    "res_id": "5850",
    "mode": "2",
    "expired_time": FUTURE,
    "start": PAST,
    "cancel": "false",
}
DEVICE_PARAMETERS = {"device_id", "uuid", "imei", "devIds"}
STREAMING = {("GET", "/api/v1/events")}


def routes(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def parameter_names(operation: dict[str, Any], where: str, *, required_only: bool = False) -> list[str]:
    return [
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == where and (p.get("required", False) or not required_only)
    ]


class Victim:
    """The first product's device, an offline command and a push receiver of it, and a second
    product whose master key is the intruder's."""

    def __init__(self, device_id: str, uuid: str, target_id: int, product_id: str, intruder: str) -> None:
        self.values = {
            "device_id": device_id,
            "uuid": uuid,
            "target_id": str(target_id),
            "product_id": product_id,
            "stream": "3311_0_5850",
            "module_id": "any",
        }
        self.intruder = intruder

    def fill(self, text: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.values[m.group(1)], text)

    def request(self, method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
        params = {
            name: self.fill(QUERY[name]) for name in parameter_names(operation, "query", required_only=True)
        }
        body = BODIES.get((method, path))
        if isinstance(body, dict):
            body = {k: self.fill(v) if isinstance(v, str) else v for k, v in body.items()}
        return {"method": method, "url": self.fill(path), "params": params, "json": body}


@pytest.fixture
async def victim(api: Api) -> Victim:
    device_id = await create_onenet_device(api)
    command = await api.client.post(
        "/nbiot/offline",
        params={"imei": IMEI, "obj_id": 3311, "obj_inst_id": 0, "mode": 2, "expired_time": FUTURE},
        json={"data": [{"res_id": 5850, "val": True}]},
        headers=api.headers(),
    )
    assert command.status_code == 200, command.text
    target = await api.client.post(
        "/api/v1/push-targets",
        json={"url": "http://127.0.0.1:9/push", "token": "t", "verify": False},
        headers=api.headers(),
    )
    assert target.status_code == 200, target.text
    other = await api.server.provisioning.create_product("intruder", "onenet")
    return Victim(
        device_id, command.json()["data"]["uuid"], target.json()["id"], api.product.id, other.master_key
    )


def touches_the_device(path: str, operation: dict[str, Any]) -> bool:
    names = set(parameter_names(operation, "path")) | set(
        parameter_names(operation, "query", required_only=True)
    )
    return bool(names & DEVICE_PARAMETERS) or "{target_id}" in path


async def test_every_route_without_a_key_answers_errno_1_with_the_onenet_body(
    api: Api, victim: Victim
) -> None:
    listed = routes(api.http.server.config.app.openapi())
    assert len(listed) > 40
    for method, path, operation in listed:
        response = await api.client.request(**victim.request(method, path, operation))
        # OneNET answers API errors with HTTP 200 and the errno; /api/v1 with 401.
        expected = 401 if path.startswith("/api/") else 200
        assert response.status_code == expected, (method, path, response.text)
        assert response.json()["errno"] == 1, (method, path)


async def test_another_products_key_never_reaches_the_device(api: Api, victim: Victim) -> None:
    headers = {"api-key": victim.intruder}
    touching = 0
    for method, path, operation in routes(api.http.server.config.app.openapi()):
        if (method, path) in STREAMING:
            continue
        response = await api.client.request(**victim.request(method, path, operation), headers=headers)
        assert response.status_code < 500, (method, path, response.text)
        if not touches_the_device(path, operation):
            continue
        touching += 1
        if (method, path) in (("GET", "/devices/status"), ("GET", "/devices/datapoints")):
            # A batch status query answers for the devices the key may see: none here.
            assert response.status_code == 200 and response.json()["data"]["devices"] == [], response.text
            continue
        expected = (403, 404) if path.startswith("/api/") else (200,)  # OneNET: HTTP 200, errno
        assert response.status_code in expected, (method, path, response.status_code, response.text)
        assert response.json()["errno"] != 0
    assert touching >= 30
    # The device is untouched and still the first product's (also after PUT/DELETE attempts).
    still = await api.client.get(f"/devices/{victim.values['device_id']}", headers=api.headers())
    assert still.status_code == 200 and still.json()["data"]["title"] == "meter"
    lists = await api.client.get("/api/v1/devices", headers=headers)
    assert lists.status_code == 200 and IMEI not in lists.text


async def test_the_event_stream_without_a_key_answers_401(api: Api) -> None:
    response = await api.client.get("/api/v1/events")
    assert response.status_code == 401 and response.json()["errno"] == 1


@pytest.mark.parametrize("path", ["/api/v1/events/ws", "/api/v1/modules/any/at"])
async def test_websocket_routes_without_a_key_close_with_4401(api: Api, path: str) -> None:
    async with asyncio.timeout(5), connect(api.http.url.replace("http://", "ws://") + path) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


# --- failed key attempts ------------------------------------------------------------------------

LIMIT = 5
WINDOW = 0.6


@pytest.fixture
async def limited(server_factory: ServerFactory) -> AsyncIterator[tuple[Lwm2mServer, str]]:
    server: Lwm2mServer = await server_factory(
        api_key=ADMIN_KEY, auth_failure_limit=LIMIT, auth_failure_window=WINDOW
    )
    handle = await serve_http(create_app(server), "127.0.0.1", 0)
    try:
        yield server, handle.url
    finally:
        await handle.stop()


async def test_too_many_wrong_keys_are_answered_429_until_the_window_passes(
    limited: tuple[Lwm2mServer, str],
) -> None:
    _server, url = limited
    async with httpx.AsyncClient(base_url=url) as client:
        for n in range(LIMIT - 1):
            wrong = await client.get("/api/v1/products", headers={"api-key": f"guess-{n}"})
            assert wrong.status_code == 401
        # A WebSocket refused for its key is a failed attempt too: the last one allowed.
        async with connect(url.replace("http://", "ws://") + "/api/v1/events/ws?api_key=guess") as socket:
            with pytest.raises(ConnectionClosed):
                await socket.recv()
        blocked = await client.get("/api/v1/products", headers={"api-key": "guess-again"})
        assert blocked.status_code == 429
        assert blocked.json() == {"errno": 1, "error": "auth failed: too many failed key attempts"}
        assert blocked.headers["retry-after"] == "1"  # whole seconds, rounded up
        # Even the right key waits (no oracle), by header or query; the WebSocket is closed 4429.
        assert (await client.get("/api/v1/products", headers={"api-key": ADMIN_KEY})).status_code == 429
        assert (await client.get("/api/v1/products", params={"api_key": ADMIN_KEY})).status_code == 429
        ws = url.replace("http://", "ws://") + f"/api/v1/events/ws?api_key={ADMIN_KEY}"
        async with connect(ws) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        await asyncio.sleep(WINDOW + 0.05)
        assert (await client.get("/api/v1/products", headers={"api-key": ADMIN_KEY})).status_code == 200


async def test_requests_without_a_key_and_right_keys_are_not_counted(
    limited: tuple[Lwm2mServer, str],
) -> None:
    server, url = limited
    product = await server.provisioning.create_product("p", "onenet")
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(LIMIT * 3):
            assert (await client.get("/api/v1/products")).status_code == 401
            assert (await client.get("/api/v1/products", headers={"api-key": ADMIN_KEY})).status_code == 200
            # A right key without the admin's rights: 403, no failed key attempt either.
            refused = await client.post(
                "/api/v1/products",
                json={"name": "x", "carrier": "onenet"},
                headers={"api-key": product.master_key},
            )
            assert refused.status_code == 403
        for n in range(LIMIT - 1):
            assert (
                await client.get("/api/v1/products", headers={"api-key": f"guess-{n}"})
            ).status_code == 401
        assert (await client.get("/api/v1/products", headers={"api-key": ADMIN_KEY})).status_code == 200


def test_limiter_forgets_failures_outside_the_window_and_bounds_its_memory() -> None:
    now = [0.0]
    limiter = KeyAttemptLimiter(3, 10.0, clock=lambda: now[0], max_addresses=2)
    for moment in (0.0, 5.0, 10.5):  # the first is out of the window when the third comes
        now[0] = moment
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is None
    now[0] = 11.0
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(10.0)
    assert limiter.retry_after("10.0.0.2") is None
    now[0] = 21.1
    assert limiter.retry_after("10.0.0.1") is None
    for address in ("a", "b", "c"):  # bounded memory: the oldest address is forgotten
        limiter.failed(address)
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") is None


@pytest.fixture
async def limited_globally(server_factory: ServerFactory) -> AsyncIterator[tuple[Lwm2mServer, str]]:
    server: Lwm2mServer = await server_factory(
        api_key=ADMIN_KEY,
        auth_failure_limit=LIMIT,
        auth_failure_window=30.0,
        auth_failure_global_limit=2 * LIMIT,
    )
    handle = await serve_http(create_app(server), "127.0.0.1", 0)
    try:
        yield server, handle.url
    finally:
        await handle.stop()


async def from_address(url: str, address: str, key: str) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport) as client:
        return await client.get("/api/v1/products", headers={"api-key": key})


async def test_wrong_keys_from_rotating_source_addresses_are_answered_429(
    limited_globally: tuple[Lwm2mServer, str],
) -> None:
    _server, url = limited_globally
    statuses = [
        (await from_address(url, f"127.0.0.{10 + n}", secrets.token_urlsafe(12))).status_code
        for n in range(46)
    ]
    assert statuses[: 2 * LIMIT - 1] == [401] * (2 * LIMIT - 1)
    assert set(statuses[2 * LIMIT :]) == {429}, statuses
    blocked = await from_address(url, "127.0.0.99", "another-guess")
    assert blocked.json() == {"errno": 1, "error": "auth failed: too many failed key attempts"}
    # No oracle: the right key waits too, from a fresh address.
    assert (await from_address(url, "127.0.0.98", ADMIN_KEY)).status_code == 429


async def test_guesses_of_one_key_prefix_from_rotating_addresses_are_answered_429(
    limited_globally: tuple[Lwm2mServer, str],
) -> None:
    server, url = limited_globally
    product = await server.provisioning.create_product("p", "onenet")
    prefix = product.master_key[:6]
    statuses = [
        (await from_address(url, f"127.0.0.{10 + n}", f"{prefix}{secrets.token_urlsafe(8)}")).status_code
        for n in range(LIMIT + 2)
    ]
    assert statuses[: LIMIT - 1] == [401] * (LIMIT - 1) and set(statuses[LIMIT:]) == {429}, statuses
    # Another key's prefix is not blocked by it (and the global limit is not reached).
    assert (await from_address(url, "127.0.0.90", ADMIN_KEY)).status_code == 200
