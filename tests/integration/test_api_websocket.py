"""The WebSocket routes on a real uvicorn with the `websockets` client: live events as JSON text
frames filtered by the key's visibility (`/api/v1/events/ws`), the AT bridge to a hosted module
(`/api/v1/modules/{id}/at`: responses and URCs as frames, manual §3.6 `+MIPLEVENT: 0,6`), and
refused keys closing the socket with an application close code (4401 unknown key, 4404 a module
the key may not use) after the handshake, so that browsers see the code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from emulator.hosting import ModuleHost
from server.api.app import create_app
from server.api.serve import HttpHandle, serve_http
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, ENDPOINT, IMEI, IMSI, Api, create_onenet_device

api = api_support.api


def ws_url(http_url: str, path: str, **params: str) -> str:
    query = urlencode(params)  # keys are Base64 (OneNET's format): `+`, `/`, `=` must be encoded
    return f"{http_url.replace('http://', 'ws://')}{path}" + (f"?{query}" if query else "")


async def close_code(url: str) -> int | None:
    """Connect and wait for the server to close; the code it closed with."""
    async with asyncio.timeout(5), connect(url) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def next_json(socket: ClientConnection) -> dict[str, object]:
    async with asyncio.timeout(5):
        frame = await socket.recv()
    assert isinstance(frame, str)
    data: dict[str, object] = json.loads(frame)
    return data


async def test_event_socket_sends_json_frames_of_the_devices_the_key_may_see(api: Api) -> None:
    await create_onenet_device(api)
    url = ws_url(api.http.url, "/api/v1/events/ws", api_key=api.product.master_key, kinds="notification")
    async with connect(url) as socket:
        # The subscription exists once the handshake is done; an event of another product's
        # device, one without a device, then ours.
        await asyncio.sleep(0.05)
        api.server.bus.publish("notification", "someone-else", values=[{"path": "/3/0/0", "value": "x"}])
        api.server.bus.publish("notification", None, values=[])
        api.server.bus.publish("registration.registered", ENDPOINT, lifetime=60)  # filtered by kind
        api.server.bus.publish("notification", ENDPOINT, values=[{"path": "/3303/0/5700", "value": 21.5}])
        event = await next_json(socket)
    assert event["kind"] == "notification" and event["endpoint"] == ENDPOINT
    assert event["data"] == {"values": [{"path": "/3303/0/5700", "value": 21.5}]}


async def test_event_socket_of_the_admin_sees_every_event(api: Api) -> None:
    async with connect(ws_url(api.http.url, "/api/v1/events/ws", api_key=ADMIN_KEY)) as socket:
        await asyncio.sleep(0.05)
        api.server.bus.publish("registration.registered", "someone-else", lifetime=5)
        event = await next_json(socket)
    assert (event["kind"], event["endpoint"]) == ("registration.registered", "someone-else")


async def test_event_socket_with_an_unknown_or_missing_key_is_closed_with_4401(api: Api) -> None:
    assert await close_code(ws_url(api.http.url, "/api/v1/events/ws", api_key="not-a-key")) == 4401
    assert await close_code(ws_url(api.http.url, "/api/v1/events/ws")) == 4401


@pytest.fixture
async def hosted(server_factory: ServerFactory) -> AsyncIterator[tuple[Lwm2mServer, HttpHandle, str]]:
    server: Lwm2mServer = await server_factory(api_key=ADMIN_KEY)
    host = ModuleHost()
    module_id = await host.start_module("ML307R", imei=IMEI, imsi=IMSI, request_timeout=3.0)
    handle = await serve_http(create_app(server, module_host=host), "127.0.0.1", 0)
    try:
        yield server, handle, module_id
    finally:
        await handle.stop()
        await host.close()


async def lines_until(socket: ClientConnection, wanted: str) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(5):
        while wanted not in lines:
            frame = await socket.recv()
            assert isinstance(frame, str)
            lines.append(frame)
    return lines


async def test_at_bridge_echoes_responses_and_delivers_the_registration_urc(
    hosted: tuple[Lwm2mServer, HttpHandle, str],
) -> None:
    server, handle, module_id = hosted
    _host, port = server.listeners["default"].address
    url = ws_url(handle.url, f"/api/v1/modules/{module_id}/at", api_key=ADMIN_KEY)
    async with connect(url) as socket:
        await socket.send("AT+CGSN=1")
        assert await lines_until(socket, "OK") == ["AT+CGSN=1", f'+CGSN: "{IMEI}"', "OK"]
        await socket.send(f'AT+MIPLCREATEEX="127.0.0.1:{port}",2')
        assert "+MIPLCREATEEX: 0" in await lines_until(socket, "OK")
        # Two lines in one frame are two commands.
        await socket.send('AT+MIPLADDOBJ=0,3303,1,"1",1,0\r\nAT+MIPLOPEN=0,3600')
        await lines_until(socket, "+MIPLEVENT: 0,6")


async def test_at_bridge_refuses_unknown_keys_with_4401_and_foreign_modules_with_4404(
    hosted: tuple[Lwm2mServer, HttpHandle, str],
) -> None:
    server, handle, module_id = hosted
    other = await server.provisioning.create_product("other", "onenet")
    path = f"/api/v1/modules/{module_id}/at"
    assert await close_code(ws_url(handle.url, path, api_key="not-a-key")) == 4401
    assert await close_code(ws_url(handle.url, path)) == 4401
    assert await close_code(ws_url(handle.url, path, api_key=other.master_key)) == 4404
    assert await close_code(ws_url(handle.url, "/api/v1/modules/none/at", api_key=ADMIN_KEY)) == 4404
