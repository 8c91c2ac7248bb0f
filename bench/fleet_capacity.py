"""Benchmark: emulated LwM2M devices per emulator process, each sending a confirmable
notification every 10 s (Core 1.1.1 §6.4, RFC 7641), and the emulator's memory per device.

The server runs in its own process (SQLite in a throw-away directory) so that the emulator's
RSS is the emulator's alone, and it observes /3303/0/5700 of every device that registers. This
process brings up N `Lwm2mClient` devices (each its own UDP socket and object tree, as
`emulator.fleet` builds them); every device then notifies once per interval at its own phase
(spread evenly over the interval), confirmable, for `rounds` intervals. "Sustained with nothing
lost" means every notification of the last interval was acknowledged — and the server
acknowledges only after the commit, so it is also stored.

Figures: devices sustained (target 10,000, issue 8), and memory per device = (RSS after the
fleet is up - RSS before) / devices. The soft limit on open files is raised to the hard limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass

from bench.measure import Figure, raise_open_files, rss_bytes
from bench.server_process import ServerProcess
from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.fleet import build_device_tree
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from testbed.gc_tuning import freeze_long_lived_objects

TARGET_DEVICES = 10_000
TEMPERATURE = Path.parse("/3303/0/5700")
REGISTER_CONCURRENCY = 200


@dataclass(slots=True)
class Round:
    sent: int = 0
    acked: int = 0
    failed: int = 0


async def _start_devices(port: int, count: int) -> list[Lwm2mClient]:
    model = builtin_registry()
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)
    devices: list[Lwm2mClient] = []

    async def one(index: int) -> None:
        endpoint = f"fleet-{index:06d}"
        tree = build_device_tree(model, endpoint)
        client = Lwm2mClient(
            ClientSettings(
                endpoint=endpoint,
                server_port=port,
                lifetime=3600,
                object_links=tree.object_links,
                confirmable_notifications=True,
                request_timeout=30.0,
            ),
            tree,
            model,
        )
        async with gate:
            await client.start()
            devices.append(client)
            with contextlib.suppress(ClientError):
                await client.register()

    await asyncio.gather(*(one(i) for i in range(count)))
    return devices


async def _wait_observed(devices: list[Lwm2mClient], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        observed = sum(1 for d in devices if d.observations)
        if observed == len(devices):
            return observed
        await asyncio.sleep(0.2)
    return sum(1 for d in devices if d.observations)


async def _notify_rounds(devices: list[Lwm2mClient], interval: float, rounds: int) -> list[Round]:
    results = [Round() for _ in range(rounds)]
    start = time.monotonic() + 0.5

    async def device_loop(index: int, device: Lwm2mClient) -> None:
        phase = interval * index / max(1, len(devices))
        for number in range(rounds):
            await asyncio.sleep(max(0.0, start + number * interval + phase - time.monotonic()))
            tally = results[number]
            tally.sent += 1
            node = SingleResource(5700, 20.0 + (index + number) % 100 / 10, ResourceType.FLOAT)
            futures = await device.notify(TEMPERATURE, node, confirmable=True)
            ok = bool(futures) and all(await asyncio.gather(*futures))
            if ok:
                tally.acked += 1
            else:
                tally.failed += 1

    await asyncio.gather(*(device_loop(i, d) for i, d in enumerate(devices)))
    return results


async def bench_fleet_capacity(count: int, interval: float = 10.0, rounds: int = 2) -> list[Figure]:
    raise_open_files()
    async with ServerProcess.start() as server:
        await server.call("observe_on_register", path=str(TEMPERATURE))
        devices: list[Lwm2mClient] = []
        try:
            gc.collect()
            before = rss_bytes()
            started = time.perf_counter()
            devices = await _start_devices(server.address[1], count)
            registered = sum(1 for d in devices if d.registered)
            observed = await _wait_observed(devices, timeout=max(30.0, count / 50))
            setup_s = time.perf_counter() - started
            freeze_long_lived_objects()
            gc.collect()
            after = rss_bytes()
            tallies = await _notify_rounds(devices, interval, rounds)
        finally:
            await asyncio.gather(*(d.stop() for d in devices), return_exceptions=True)
    last = tallies[-1]
    sustained = last.acked if last.failed == 0 else 0
    per_device = (after - before) / max(1, len(devices))
    details = {
        "devices": count,
        "registered": registered,
        "observed": observed,
        "interval_s": interval,
        "rounds": [{"sent": t.sent, "acked": t.acked, "failed": t.failed} for t in tallies],
        "setup_s": round(setup_s, 2),
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "server": "separate process (bench.server_process, SQLite)",
    }
    devices_figure = Figure(
        benchmark="fleet",
        name=f"Devices notifying (CON) every {interval:g} s, nothing lost ({count} started)",
        value=float(sustained),
        unit="devices",
        target=f"≥ {TARGET_DEVICES:,}",
        target_met=sustained >= TARGET_DEVICES,
        details=details,
    )
    memory_figure = Figure(
        benchmark="fleet",
        name="Emulator memory per device",
        value=per_device / 1024,
        unit="KiB",
        details={"devices": len(devices)},
    )
    return [devices_figure, memory_figure]
