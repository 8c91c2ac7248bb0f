"""Shared parts of the firmware-update tests: a server with its HTTP API on ephemeral ports, an
emulated module logged in over real UDP (or DTLS), packages in the testbed's format, and a task
run through the API until it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from emulator.module.fota import FotaFaults
from emulator.module.network import HostMap
from emulator.runner import EmulatedModule
from lwm2m.firmware_package import pack
from server.api.app import create_app
from server.api.serve import HttpHandle, serve_http
from server.lwm2m_server import Lwm2mServer

ADMIN_KEY = "fota-admin-key"
PAYLOAD = bytes(range(256)) * 24  # 6 KiB: seven 1 KiB blocks with the header
TARGET = "1.2.0"
# Short phases: every test ends in seconds, whatever goes wrong.
FAST = {"online": 20.0, "version_check": 5.0, "download": 20.0, "update": 15.0, "poll": 0.3}
PSK = "fota-psk-0123"


@dataclass
class Cloud:
    server: Lwm2mServer
    http: HttpHandle
    client: httpx.AsyncClient

    @property
    def coap_port(self) -> int:
        return self.server.listeners["default"].port

    async def upload(self, package: bytes, version: str = TARGET, models: str = "ML307R") -> dict[str, Any]:
        answer = await self.client.post(
            "/api/v1/firmware",
            files={"file": ("fw.bin", package, "application/octet-stream")},
            data={"version": version, "models": models},
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def start_task(self, firmware_id: int, endpoints: list[str], **options: Any) -> dict[str, Any]:
        body = {"firmware_id": firmware_id, "endpoints": endpoints, "timeouts": FAST, "retries": 1, **options}
        answer = await self.client.post("/api/v1/fota/tasks", json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def task(self, task_id: int) -> dict[str, Any]:
        answer = await self.client.get(f"/api/v1/fota/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def wait_task(self, task_id: int, timeout: float = 40.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                task = await self.task(task_id)
                if task["status"] != "running":
                    return task
                await asyncio.sleep(0.2)

    async def wait_device(self, task_id: int, status: str, timeout: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                task = await self.task(task_id)
                device = task["devices"][0]
                if device["status"] == status:
                    return device
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_cloud(server: Lwm2mServer) -> AsyncIterator[Cloud]:
    http = await serve_http(create_app(server), "127.0.0.1", 0)
    server.fota.http_base = http.url
    async with httpx.AsyncClient(base_url=http.url, headers={"api-key": ADMIN_KEY}, timeout=10) as client:
        try:
            yield Cloud(server, http, client)
        finally:
            await http.stop()


def package_for(model: str = "ML307R", version: str = TARGET, payload: bytes = PAYLOAD) -> bytes:
    return pack(model, version, payload)


@contextlib.asynccontextmanager
async def logged_in_module(
    server: Lwm2mServer,
    *,
    imei: str = "869975030000461",
    model: str = "ML307R",
    faults: str = "",
    dtls: bool = False,
    queue_mode: bool = False,
) -> AsyncIterator[EmulatedModule]:
    """An emulated module that logged in (and logs in again after each update's reboot)."""
    module = EmulatedModule(model, imei=imei, request_timeout=3.0, fota_faults=FotaFaults.parse(faults))
    if dtls:
        dtls_port = server.dtls["default"].address[1]
        module.hosts = HostMap({"127.0.0.1:5684": ("127.0.0.1", dtls_port)})
        await server.set_psk(f"{imei};{module.imsi}", imei, PSK)
        lines = [f'AT+MIPLCREATEEX="127.0.0.1:5684",0,,"{PSK}"']
    else:
        lines = [f'AT+MIPLCREATEEX="127.0.0.1:{server.listeners["default"].port}",2']
    if queue_mode:
        lines.append('AT+MIPLCFG="binding",0,2')
    lines += ['AT+MIPLADDOBJ=0,3303,1,"1",1,0', "AT+MIPLOPEN=0,3600"]
    await module.start()
    try:
        module.remember_login(lines)
        for line in lines:
            module.feed(line.encode() + b"\r")
        await module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
        yield module
    finally:
        await module.stop()


def endpoint_of(module: EmulatedModule) -> str:
    return f"{module.imei};{module.imsi}"


async def at(module: EmulatedModule, line: str) -> str:
    module.feed(line.encode() + b"\r")
    match = await module.expect(r"(?s)(.*?)\r\n(OK|ERROR)\r\n")
    return match.group(1)
