"""A cluster of server nodes (server.cluster) as subprocesses on a real PostgreSQL database, a
real NATS server and real UDP: any node's API reaches any device, events reach every node, a
node's death moves its devices, a NATS restart is survived."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path as FsPath
from typing import Any

import httpx
import pytest

from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from tests.integration.cluster_support import (
    Node,
    PrivateNats,
    device_id,
    nodes,
    shared_nats_url,
    start_device,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


async def _read(api: httpx.AsyncClient, dev: int, path: str, **extra: Any) -> httpx.Response:
    return await api.post(f"/api/v1/devices/{dev}/read", json={"path": path, **extra})


async def _values(api: httpx.AsyncClient, dev: int, path: str) -> list[dict[str, Any]]:
    response = await _read(api, dev, path)
    assert response.status_code == 200, response.text
    values: list[dict[str, Any]] = response.json()["values"]
    return values


async def _datapoints(api: httpx.AsyncClient, dev: int, path: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/v1/devices/{dev}/datapoints", params={"path": path, "limit": 10000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _until(check: Any, attempts: int = 100, pause: float = 0.1) -> Any:
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(pause)
    raise AssertionError("condition never met")


async def _collect_events(node: Node, kinds: str, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    """Read the node's SSE stream (GET /api/v1/events) into `into`."""
    async with node.client() as api, api.stream("GET", "/api/v1/events", params={"kinds": kinds}) as stream:
        ready.set()
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                into.append(json.loads(line[5:]))


async def test_a_device_registered_on_a_is_read_written_and_observed_through_b_and_c(
    postgres_url: str, tmp_path: FsPath
) -> None:
    async with nodes(["A", "B", "C"], postgres_url, shared_nats_url(), tmp_path) as cluster:
        device = await start_device("869975030019001", cluster["A"])
        seen_on_c: list[dict[str, Any]] = []
        ready = asyncio.Event()
        watcher = asyncio.create_task(_collect_events(cluster["C"], "notification", seen_on_c, ready))
        try:
            async with cluster["B"].client() as b, cluster["C"].client() as c, cluster["A"].client() as a:
                dev_b = await device_id(b, device.endpoint)
                dev_c = await device_id(c, device.endpoint)
                # Read through B and C: the owner's answer.
                assert (await _values(b, dev_b, "/3/0/2"))[0]["value"] == device.endpoint
                assert (await _values(c, dev_c, "/3/0/0"))[0]["value"] == "lwm2m-testbed"
                # Write through C reaches the device.
                response = await c.post(
                    f"/api/v1/devices/{dev_c}/write", json={"path": "/1/0/1", "value": 600}
                )
                assert response.status_code == 200, response.text
                assert (await _values(a, await device_id(a, device.endpoint), "/1/0/1"))[0]["value"] == 600
                # A device error through B is the same error as through the owner.
                via_b = await _read(b, dev_b, "/3/0/99")
                via_a = await _read(a, await device_id(a, device.endpoint), "/3/0/99")
                assert (via_b.status_code, via_b.json()) == (via_a.status_code, via_a.json())
                # Observe through B: the notification is stored, and C's event stream shows it.
                response = await b.post(f"/api/v1/devices/{dev_b}/observe", json={"path": "/3303/0/5700"})
                assert response.status_code == 200, response.text
                await asyncio.wait_for(ready.wait(), 10)
                await asyncio.sleep(0.3)
                node = SingleResource(5700, 30.5, ResourceType.FLOAT)
                acked = await asyncio.gather(*await device.client.notify(Path.parse("/3303/0/5700"), node))
                assert acked == [True]
                await _until(lambda: asyncio.sleep(0, seen_on_c))
                assert seen_on_c[0]["endpoint"] == device.endpoint
                assert seen_on_c[0]["data"]["values"][0]["value"] == 30.5
                notified = [p for p in await _datapoints(c, dev_c, "/3303/0/5700") if p["source"] == "notify"]
                assert [p["value"] for p in notified] == [30.5]
        finally:
            watcher.cancel()
            await device.client.stop()


async def _notify(device: Any, value: float, observation: int | None = None) -> int:
    """One confirmable notification (on one observation of the device, or on all of /3303/0/5700);
    1 when the node acknowledged it (after its commit)."""
    node = SingleResource(5700, value, ResourceType.FLOAT)
    target: Path | int = Path.parse("/3303/0/5700") if observation is None else observation
    results = await asyncio.gather(*await device.client.notify(target, node))
    return sum(1 for ok in results if ok)


async def test_killing_the_owner_moves_its_device_to_b_and_loses_nothing_acknowledged(
    postgres_url: str, tmp_path: FsPath
) -> None:
    async with nodes(["A", "B"], postgres_url, shared_nats_url(), tmp_path) as cluster:
        node_a, node_b = cluster["A"], cluster["B"]
        device = await start_device("869975030019002", node_a, confirmable_notifications=True)
        seen_on_b: list[dict[str, Any]] = []
        ready = asyncio.Event()
        watcher = asyncio.create_task(_collect_events(node_b, "notification", seen_on_b, ready))
        try:
            async with node_b.client() as b:
                dev = await device_id(b, device.endpoint)
                await asyncio.wait_for(ready.wait(), 10)
                response = await b.post(f"/api/v1/devices/{dev}/observe", json={"path": "/3303/0/5700"})
                assert response.status_code == 200, response.text
                acked = 0
                for step in range(5):
                    acked += await _notify(device, 20.0 + step)
                assert acked == 5

                observed_by_a = set(device.client.observations)
                node_a.kill()
                await node_a.process.wait()
                # The owner is gone: a request through B says so at once (the device is offline
                # until it talks to a live node), it does not wait for a timeout.
                response = await _read(b, dev, "/3/0/0")
                assert response.status_code == 502, response.text
                assert "does not answer" in response.json()["error"]

                # The load balancer sends the device to B: its next Update moves it there, and
                # B re-establishes the observation A had made (stored in PostgreSQL).
                device.point_at(node_b)
                await device.client.update()

                async def observed_from_b() -> bool:
                    return bool(set(device.client.observations) - observed_by_a)

                await _until(observed_from_b)
                (from_b,) = set(device.client.observations) - observed_by_a
                for step in range(5):
                    acked += await _notify(device, 30.0 + step, from_b)
                assert acked == 10
                assert (await _values(b, dev, "/3/0/2"))[0]["value"] == device.endpoint

                stored = [p for p in await _datapoints(b, dev, "/3303/0/5700") if p["source"] == "notify"]
                assert len(stored) == acked
                assert [p["value"] for p in stored] == [
                    20.0,
                    21.0,
                    22.0,
                    23.0,
                    24.0,
                    30.0,
                    31.0,
                    32.0,
                    33.0,
                    34.0,
                ]

                # B's stream shows each notification at most once: B's own five, and those of A's
                # that A relayed before it died (live events are not acknowledged data).
                def streamed() -> list[float]:
                    return [event["data"]["values"][0]["value"] for event in seen_on_b]

                await _until(lambda: asyncio.sleep(0, {30.0, 31.0, 32.0, 33.0, 34.0} <= set(streamed())))
                assert len(streamed()) == len(set(streamed()))
                assert set(streamed()) <= {p["value"] for p in stored}

                events = (await b.get(f"/api/v1/devices/{dev}/events", params={"limit": 1000})).json()[
                    "items"
                ]
                # Logged (and pushed) once cluster-wide, by the node that stored the notification
                # (A's last log rows may die with it: the event log is not acknowledged data).
                logged = sorted(
                    e["data"]["values"][0]["value"] for e in events if e["kind"] == "notification"
                )
                assert len(logged) == len(set(logged))
                assert {30.0, 31.0, 32.0, 33.0, 34.0} <= set(logged) <= {p["value"] for p in stored}
                replaced = [e for e in events if e["kind"] == "registration.replaced"]
                assert [e["data"]["from_node"] for e in replaced] == ["A"]

                async def a_is_down() -> Any:
                    status = (await b.get("/api/v1/cluster")).json()
                    alive = {n["node_id"]: n["alive"] for n in status["nodes"]}
                    return alive == {"A": False, "B": True} and status

                status = await _until(a_is_down, attempts=150)
                assert status["node_id"] == "B"
                assert {n["node_id"]: n["devices"] for n in status["nodes"]}.get("B") == 1
        finally:
            watcher.cancel()
            await device.client.stop()


async def test_a_nats_restart_fails_requests_in_flight_clearly_and_later_ones_succeed(
    postgres_url: str, tmp_path: FsPath
) -> None:
    bus = PrivateNats(tmp_path)
    await bus.start()
    try:
        async with nodes(["A", "B"], postgres_url, bus.url, tmp_path) as cluster:
            device = await start_device("869975030019003", cluster["A"])
            async with cluster["B"].client() as b:
                dev = await device_id(b, device.endpoint)
                assert (await _values(b, dev, "/3/0/2"))[0]["value"] == device.endpoint
                # A request in flight: the device holds its answer to an Execute until NATS is
                # gone, so A is still waiting for it when the link breaks.
                release = asyncio.Event()
                started = asyncio.Event()

                async def hold(_arguments: str) -> None:
                    started.set()
                    await release.wait()

                device.tree.on_execute("/3/0/4", hold)
                in_flight = asyncio.create_task(
                    b.post(f"/api/v1/devices/{dev}/execute", json={"path": "/3/0/4", "timeout": 20})
                )
                await asyncio.wait_for(started.wait(), 10)
                await bus.kill()
                response = await in_flight
                release.set()
                assert response.status_code == 502, response.text
                assert "cluster link (NATS) was lost" in response.json()["error"]
                # While NATS is down, requests fail clearly too.
                response = await _read(b, dev, "/3/0/0")
                assert response.status_code == 502
                assert "cluster link (NATS) is down" in response.json()["error"]

                await bus.start()

                async def read_works() -> bool:
                    return (await _read(b, dev, "/3/0/2")).status_code == 200

                await _until(read_works, attempts=100, pause=0.2)
                status = (await b.get("/api/v1/cluster")).json()
                assert status["nats_connected"] is True
            await device.client.stop()
    finally:
        await bus.kill()
