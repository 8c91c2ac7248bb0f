"""Firmware updates through the user's test kit: a provisioned OneNET module (fixture `module`,
faults by the `lwm2m_module` marker) updated by a task its product's key starts, logging in again
by itself after the reboot; and the fleet's built-in MCU doing the same."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from emulator.module_fleet import ModuleFleet, ModuleFleetSettings
from lwm2m.firmware_package import pack
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory

PACKAGE = pack("ML307R", "1.2.0", b"\x00\x01" * 3000)
FAST = {"online": 20.0, "version_check": 5.0, "download": 20.0, "update": 15.0, "poll": 0.3}


def run_task(base_url: str, key: str, body: dict[str, object]) -> dict[str, object]:
    with httpx.Client(base_url=base_url, headers={"api-key": key}, timeout=10) as client:
        stored = client.post(
            "/api/v1/firmware", files={"file": ("f.bin", PACKAGE)}, data={"version": "1.2.0"}
        )
        assert stored.status_code == 200, stored.text
        task = client.post("/api/v1/fota/tasks", json={"firmware_id": stored.json()["id"], **body})
        assert task.status_code == 200, task.text
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            answer: dict[str, object] = client.get(f"/api/v1/fota/tasks/{task.json()['id']}").json()
            if answer["status"] != "running":
                return answer
            time.sleep(0.2)
    raise AssertionError("the task did not end")


@pytest.mark.lwm2m_module(fota_faults="cut=30")
def test_a_test_kit_module_updates_and_logs_in_again_by_itself(module, onenet_product) -> None:
    module.login()
    module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
    assert module.device is not None
    done = run_task(
        onenet_product.base_url,
        onenet_product.api_key,
        {"device_ids": [module.device.id], "timeouts": FAST, "retries": 1},
    )
    (device,) = done["devices"]  # type: ignore[misc]
    assert device["status"] == "succeeded" and device["attempts"] == 2, device
    module.expect(r"\+MATREADY")
    module.expect(r"\+MIPLEVENT: 0,6", timeout=10)
    assert "1.2.0" in "".join(module.command("AT+CGMR"))


async def test_the_fleets_mcu_logs_in_again_after_an_update(server_factory: ServerFactory, tmp_path) -> None:
    from server.api.app import create_app
    from server.api.serve import serve_http

    server: Lwm2mServer = await server_factory(firmware_dir=str(tmp_path / "fw"), api_key="fleet-admin")
    http = await serve_http(create_app(server), "127.0.0.1", 0)
    server.fota.http_base = http.url
    port = server.listeners["default"].port
    fleet = ModuleFleet(ModuleFleetSettings(count=2, server=f"127.0.0.1:{port}", notify_interval=60))
    try:
        stats = await fleet.start()
        assert stats.registered == 2
        endpoints = [fleet.endpoint(i) for i in range(2)]
        done = await asyncio.to_thread(
            run_task, http.url, "fleet-admin", {"endpoints": endpoints, "timeouts": FAST, "max_concurrent": 1}
        )
        assert [d["status"] for d in done["devices"]] == ["succeeded", "succeeded"]  # type: ignore[index]
        for _ in range(100):
            if fleet.stats.registered == 2 and all(server.registration(e) for e in endpoints):
                break
            await asyncio.sleep(0.05)
        assert fleet.stats.registered == 2
        assert all(mcu.module is not None and mcu.module.identity.revision == "1.2.0" for mcu in fleet.mcus)
    finally:
        await fleet.stop()
        await http.stop()
