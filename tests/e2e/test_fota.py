"""Firmware over the air end to end: the firmware store and its CoAP / HTTP sides, update tasks
run through the API, and emulated modules that download over real UDP (and DTLS), check the
package, reboot on the new version and log in again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path as FsPath

import pytest

from lwm2m.node import SingleResource
from server.events import Event
from server.lwm2m_server import Lwm2mServer
from server.services.requests import Origin
from tests.conftest import ServerFactory
from tests.e2e.fota_support import (
    ADMIN_KEY,
    PAYLOAD,
    TARGET,
    Cloud,
    at,
    endpoint_of,
    logged_in_module,
    package_for,
    running_cloud,
)


@pytest.fixture
async def server(server_factory: ServerFactory, tmp_path: FsPath) -> Lwm2mServer:
    result: Lwm2mServer = await server_factory(
        firmware_dir=str(tmp_path / "firmware"), api_key=ADMIN_KEY, request_timeout=3.0
    )
    return result


@pytest.fixture
async def cloud(server: Lwm2mServer) -> AsyncIterator[Cloud]:
    async with running_cloud(server) as running:
        yield running


@pytest.mark.parametrize("method", ["pull-coap", "pull-http", "push"])
async def test_an_update_task_brings_the_module_to_the_new_version_which_it_boots_into(
    cloud: Cloud, method: str
) -> None:
    async with logged_in_module(cloud.server) as module:
        endpoint = endpoint_of(module)
        assert (await cloud.server.read(endpoint, "/5/0/3")).value == 0
        assert "ML307R_V1.1.0" in await at(module, "AT+CGMR")
        firmware = await cloud.upload(package_for())
        seen: list[str] = []
        cloud.server.bus.add_listener(
            lambda e: seen.append(e.data["status"]) if e.kind == "fota.device" else None
        )
        task = await cloud.start_task(firmware["id"], [endpoint], method=method)
        done = await cloud.wait_task(task["id"])
        (device,) = done["devices"]
        assert device["status"] == "succeeded", str(device)
        assert device["update_result"] == 1
        assert device["from_version"] == "ML307R_V1.1.0"
        assert done["totals"]["succeeded"] == 1 and done["totals"]["percent"] == 100.0
        assert [s for s in dict.fromkeys(seen)] == [
            "pending" if seen[0] == "pending" else "version-check",
            *(["version-check"] if seen[0] == "pending" else []),
            "downloading",
            "downloaded",
            "updating",
            "succeeded",
        ]
        # As after a power cycle: the power-on line, the MCU's login again, the new version.
        await module.expect(r"\+MATREADY")
        await module.expect(r"\+MIPLEVENT: 0,6")
        assert TARGET in await at(module, "AT+CGMR")
        version = await cloud.server.read(endpoint, "/3/0/3")
        assert isinstance(version, SingleResource) and version.value == TARGET
        assert (await cloud.server.read(endpoint, "/5/0/5")).value == 1  # kept across the reboot


async def test_a_module_already_on_the_target_version_is_left_alone(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server) as module:
        firmware = await cloud.upload(package_for(version="ML307R_V1.1.0"), version="ML307R_V1.1.0")
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)])
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert device["status"] == "succeeded"
        assert device["reason"] == "already on the target version"
        assert device["attempts"] == 0


@pytest.mark.parametrize(
    ("faults", "package", "result"),
    [
        ("corrupt", None, 5),
        ("no-storage", None, 2),
        ("out-of-memory", None, 3),
        ("update-fails", None, 8),
        ("", "MN316", 6),
    ],
)
async def test_each_fault_ends_the_device_in_the_update_result_the_object_defines(
    cloud: Cloud, faults: str, package: str | None, result: int
) -> None:
    async with logged_in_module(cloud.server, faults=faults) as module:
        firmware = await cloud.upload(package_for(model=package or "ML307R"))
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)], retries=2)
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert device["status"] == "failed", device
        assert device["update_result"] == result
        assert device["update_result_meaning"]
        assert device["reason"] == device["update_result_meaning"]
        assert "ML307R_V1.1.0" in await at(module, "AT+CGMR")


async def test_a_download_cut_halfway_is_retried_and_resumes_where_it_stopped(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server, faults="cut=50") as module:
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)], retries=1)
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert device["status"] == "succeeded", str(device)
        assert device["attempts"] == 2
    blocks = -(-firmware["size"] // 1024)
    # The second attempt asked only for the blocks the first did not get.
    assert cloud.server.firmware_server.blocks_served < 2 * blocks - 1


async def test_a_download_cut_without_retries_left_fails_with_connection_lost(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server, faults="cut=50") as module:
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)], retries=0)
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert (device["status"], device["update_result"]) == ("failed", 4)


async def test_a_reboot_that_never_comes_back_fails_the_device_after_the_update_timeout(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server, faults="no-return") as module:
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(
            firmware["id"], [endpoint_of(module)], timeouts={"update": 2.0, "poll": 0.3, "version_check": 3.0}
        )
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert device["status"] == "failed"
        assert device["reason"] == "the device did not come back after the update"
        assert module.module is not None and module.module.halted


async def test_a_slow_link_shows_the_download_progressing(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server, faults="rate=8192") as module:
        firmware = await cloud.upload(package_for())
        percents: list[float] = []

        def progress(event: Event) -> None:
            if event.kind == "fota.device" and event.data["status"] == "downloading":
                percents.append(event.data["percent"])

        cloud.server.bus.add_listener(progress)
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)])
        done = await cloud.wait_task(task["id"])
        assert done["devices"][0]["status"] == "succeeded"
        assert any(0 < p < 100 for p in percents), percents
        assert percents == sorted(percents)


async def test_cancel_stops_the_task_and_resets_the_module_object(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server, faults="rate=1024") as module:
        endpoint = endpoint_of(module)
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint])
        await cloud.wait_device(task["id"], "downloading")
        answer = await cloud.client.post(f"/api/v1/fota/tasks/{task['id']}/cancel")
        assert answer.status_code == 200
        cancelled = answer.json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["devices"][0]["status"] == "cancelled"
        assert cancelled["totals"]["cancelled"] == 1
        for _ in range(50):
            if (await cloud.server.read(endpoint, "/5/0/3")).value == 0:
                break
            await asyncio.sleep(0.1)
        assert (await cloud.server.read(endpoint, "/5/0/3")).value == 0
        # The package is free again once no unfinished task uses it.
        assert (await cloud.client.delete(f"/api/v1/firmware/{firmware['id']}")).status_code == 200


async def test_a_package_in_use_cannot_be_deleted(cloud: Cloud) -> None:
    async with logged_in_module(cloud.server, faults="rate=1024") as module:
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)])
        answer = await cloud.client.delete(f"/api/v1/firmware/{firmware['id']}")
        assert answer.status_code == 409
        assert answer.json()["errno"] == 5006
        await cloud.client.post(f"/api/v1/fota/tasks/{task['id']}/cancel")


async def test_a_dtls_module_pulls_over_coaps_with_its_own_identity(
    server_factory: ServerFactory, tmp_path: FsPath
) -> None:
    from server.settings import ListenerSettings

    server = await server_factory(
        firmware_dir=str(tmp_path / "firmware"),
        api_key=ADMIN_KEY,
        request_timeout=3.0,
        listeners=[ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0)],
    )
    async with running_cloud(server) as cloud, logged_in_module(server, dtls=True) as module:
        endpoint = endpoint_of(module)
        assert cloud.server.registration(endpoint).secure_identity == module.imei  # type: ignore[union-attr]
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint], method="pull-coap")
        assert cloud.server.fota.uri_for(cloud.server.fota.get(task["id"]), endpoint).startswith("coaps://")
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert device["status"] == "succeeded", str(device)
        reg = cloud.server.registration(endpoint)
        assert reg is not None
        own = Origin(reg.listener, reg.host, reg.port, secure_identity=module.imei)
        assert cloud.server.fota.may_fetch(firmware["id"], own) is False  # the task has ended
        assert not cloud.server.fota.may_fetch(firmware["id"], replace(own, secure_identity="someone-else"))


async def test_a_queue_mode_module_is_served_when_it_wakes(cloud: Cloud) -> None:
    cloud.server.queue.awake_window = 2.0
    async with logged_in_module(cloud.server, queue_mode=True) as module:
        endpoint = endpoint_of(module)
        assert cloud.server.registration(endpoint).queue_mode  # type: ignore[union-attr]
        await asyncio.sleep(2.2)  # the device is asleep now
        firmware = await cloud.upload(package_for())
        with cloud.server.subscribe(endpoint=endpoint, kinds=("request.queued",)) as queued:
            task = await cloud.start_task(firmware["id"], [endpoint])
            await queued.get(timeout=5)  # the version read waits for the device
        assert (await cloud.task(task["id"]))["devices"][0]["status"] == "version-check"
        await at(module, "AT+MIPLUPDATE=0,3600,0")
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert device["status"] == "succeeded", str(device)


async def test_a_task_survives_a_server_restart_and_the_download_resumes(
    server_factory: ServerFactory, tmp_path: FsPath, sqlite_url: str
) -> None:
    from server.settings import ListenerSettings

    first = await server_factory(
        firmware_dir=str(tmp_path / "firmware"), api_key=ADMIN_KEY, request_timeout=3.0
    )
    port = first.listeners["default"].port
    async with running_cloud(first) as cloud, logged_in_module(first, faults="rate=2048") as module:
        endpoint = endpoint_of(module)
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint])
        await cloud.wait_device(task["id"], "downloading")
        await cloud.http.stop()
        await first.stop()
        second = await server_factory(
            firmware_dir=str(tmp_path / "firmware"),
            api_key=ADMIN_KEY,
            request_timeout=3.0,
            listeners=[ListenerSettings(name="default", host="127.0.0.1", port=port, dtls_port=None)],
        )
        async with running_cloud(second) as again:
            (device,) = (await again.wait_task(task["id"]))["devices"]
            assert device["status"] == "succeeded", str(device)
            # The module either lost the connection (Update Result 4: the URI is written again and
            # the download resumes) or its retransmissions outlived the restart.
            assert device["attempts"] in (1, 2)
        await module.expect(r"\+MIPLEVENT: 0,6")
        assert TARGET in await at(module, "AT+CGMR")
    assert PAYLOAD  # the package the module booted is the one uploaded


@pytest.mark.parametrize(("faults", "result"), [("no-storage", 2), ("corrupt", 5)])
async def test_a_pushed_package_the_module_refuses_ends_in_its_update_result(
    cloud: Cloud, faults: str, result: int
) -> None:
    """Push: the module answers the last Block1 4.13 when the package does not fit (Update Result
    2), 2.04 and Update Result 5 when its SHA-256 is wrong; the task reads the result either way."""
    async with logged_in_module(cloud.server, faults=faults) as module:
        firmware = await cloud.upload(package_for())
        task = await cloud.start_task(firmware["id"], [endpoint_of(module)], method="push", retries=0)
        (device,) = (await cloud.wait_task(task["id"]))["devices"]
        assert (device["status"], device["update_result"]) == ("failed", result), device
