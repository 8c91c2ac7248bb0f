"""The OneNET-compatible API end to end: HTTP requests to the served app, an emulated LwM2M
device on loopback UDP registered as `IMEI;IMSI` at a OneNET listener (platforms.md "Northbound
HTTP API")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import ServerFactory
from tests.e2e.test_device_management import device
from tests.integration import api_support
from tests.integration.api_support import ENDPOINT, IMEI, Api, create_onenet_device


@pytest.fixture
async def api(server_factory: ServerFactory) -> AsyncIterator[Api]:
    async with api_support.serve_api(server_factory, listeners=[api_support.onenet_listener()]) as value:
        yield value


async def test_read_write_execute_discover_and_resources_through_nbiot(api: Api) -> None:
    await create_onenet_device(api)
    async with device(api.server, ENDPOINT) as dev:
        read = await api.client.get(
            "/nbiot",
            params={"imei": IMEI, "obj_id": 3303, "obj_inst_id": 0, "res_id": 5700},
            headers=api.headers(),
        )
        assert read.json() == {
            "errno": 0,
            "error": "succ",
            "data": [{"obj_inst_id": 0, "res": [{"res_id": 5700, "val": 21.5}]}],
        }
        write = await api.client.post(
            "/nbiot",
            params={"imei": IMEI, "obj_id": 1, "obj_inst_id": 0, "mode": 2},
            json={"data": [{"res_id": 1, "val": 3600}]},
            headers=api.headers(),
        )
        assert write.json()["errno"] == 0 and dev.tree.get_value("/1/0/1") == 3600
        seen: list[str] = []
        dev.tree.on_execute("/3/0/4", lambda args: seen.append(args) or None)
        execute = await api.client.post(
            "/nbiot/execute",
            params={"imei": IMEI, "obj_id": 3, "obj_inst_id": 0, "res_id": 4},
            json={"args": "5"},
            headers=api.headers(),
        )
        assert execute.json()["errno"] == 0 and seen == ["5"]
        discover = await api.client.get(
            "/nbiot/discover", params={"imei": IMEI, "obj_id": 3303}, headers=api.headers()
        )
        (instance,) = discover.json()["data"]
        assert instance["obj_inst_id"] == 0 and 5700 in instance["res_id"]
        resources = await api.client.get("/nbiot/resources", params={"imei": IMEI}, headers=api.headers())
        items = {item["obj_id"]: item for item in resources.json()["data"]["item"]}
        assert 5700 in items[3303]["instances"][0]["resources"]


async def test_observe_writes_attributes_first_and_datapoints_follow(api: Api) -> None:
    device_id = await create_onenet_device(api, obsv=False)  # no auto-observation at registration
    async with device(api.server, ENDPOINT) as dev:
        with api.server.subscribe(
            endpoint=ENDPOINT, kinds=("request.write_attributes", "observation.started")
        ) as ev:
            observe = await api.client.post(
                "/nbiot/observe",
                params={
                    "imei": IMEI,
                    "obj_id": 3303,
                    "obj_inst_id": 0,
                    "res_id": 5700,
                    "cancel": "false",
                    "pmin": 1,
                    "pmax": 30,
                },
                headers=api.headers(),
            )
            assert observe.json()["errno"] == 0, observe.text
            first, second = await ev.get(timeout=5), await ev.get(timeout=5)
        assert first.kind == "request.write_attributes" and first.data["attributes"] == {
            "pmin": 1,
            "pmax": 30,
        }
        assert second.kind == "observation.started"
        with api.server.subscribe(endpoint=ENDPOINT, kinds=("notification",)) as notes:
            dev.tree.set_value("/3303/0/5700", 25.0)
            await notes.get(timeout=5)
        await api.server.reporting.drain()
        points = await api.client.get(
            f"/devices/{device_id}/datapoints",
            params={"datastream_id": "3303_0_5700", "start": "2020-01-01T00:00:00"},
            headers=api.headers(),
        )
        (stream,) = points.json()["data"]["datastreams"]
        assert stream["id"] == "3303_0_5700" and [p["value"] for p in stream["datapoints"]] == [21.5, 25.0]
        detail = await api.client.get(f"/devices/{device_id}", headers=api.headers())
        data = detail.json()["data"]
        assert (
            data["online"] is True
            and data["rg_id"] == ENDPOINT
            and data["auth_info"] == {IMEI: "460041234567890"}
        )
        cancel = await api.client.post(
            "/nbiot/observe",
            params={"imei": IMEI, "obj_id": 3303, "obj_inst_id": 0, "res_id": 5700, "cancel": "true"},
            headers=api.headers(),
        )
        assert cancel.json()["errno"] == 0 and api.server.observations(ENDPOINT) == []


async def test_device_errors_map_to_errno_5106_with_the_reason(api: Api) -> None:
    await create_onenet_device(api)
    async with device(api.server, ENDPOINT):
        missing = await api.client.get(
            "/nbiot", params={"imei": IMEI, "obj_id": 3303, "obj_inst_id": 9}, headers=api.headers()
        )
        assert missing.status_code == 200  # OneNET answers API errors with HTTP 200
        assert missing.json()["errno"] == 5106 and missing.json()["reason"] == 3
        read_only = await api.client.post(
            "/nbiot",
            params={"imei": IMEI, "obj_id": 3, "obj_inst_id": 0, "mode": 2},
            json={"data": [{"res_id": 0, "val": "x"}]},
            headers=api.headers(),
        )
        assert read_only.json()["errno"] == 5106 and read_only.json()["reason"] == 1


async def test_cached_write_is_delivered_on_the_next_update_and_pushed_as_type_7(api: Api) -> None:
    await create_onenet_device(api)
    expires = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 8 * 3600 + 600))
    created = await api.client.post(
        "/nbiot/offline",
        params={
            "imei": IMEI,
            "obj_id": 1,
            "obj_inst_id": 0,
            "mode": 2,
            "expired_time": expires,
            "trigger_msg": 2,
        },
        json={"data": [{"res_id": 3, "val": 77}]},
        headers=api.headers(),
    )
    assert created.json()["errno"] == 0, created.text
    uuid = created.json()["data"]["uuid"]
    async with device(api.server, ENDPOINT) as dev:
        await asyncio.sleep(0.2)
        assert dev.tree.get_value("/1/0/3") != 77  # a Register does not trigger (mask 2 = Update)
        with api.server.subscribe(endpoint=ENDPOINT, kinds=("offline_command.result",)) as results:
            await dev.client.update()
            event = await results.get(timeout=5)
        assert event.data["uuid"] == uuid and event.data["send_status"] == 5
        assert dev.tree.get_value("/1/0/3") == 77
    item = await api.client.get(
        f"/nbiot/offline/history/{uuid}", params={"imei": IMEI}, headers=api.headers()
    )
    assert item.json()["data"]["send_status"] == 5 and item.json()["data"]["confirm_status"] == 204
