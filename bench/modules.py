"""Benchmark 5: AT modules per emulator process (issue 4: "how many modules one emulator process
keeps registered and notifying every 10 s (target: 10,000) and its memory per module").

`emulator.module_fleet.ModuleFleet` brings up N full AT modules (each its own LwM2M client and UDP
socket) against the real server on loopback; the server observes /3303/0 of every endpoint; then
every module's MCU sends a confirmable AT+MIPLNOTIFY per interval; after `WARM_UP_INTERVALS`
intervals (steady state) one more interval is measured. A
module counts as "notifying" when at least one of its notifies was acknowledged
(`+MIPLEVENT: 0,26`) in the last interval, counted over the interval plus a grace of
`ACK_GRACE` of it (a module ticks exactly once per interval, `emulator.module_fleet`; the grace
covers the acknowledgement latency of a tick at the end of the window).

The server runs in a process of its own (`bench.server_process`, SQLite), so this process is the
emulator alone, as `testbed fleet --at` runs it: memory per module = (RSS after the fleet is up -
RSS before) / registered modules. The soft limit on open files is raised to the hard limit (each
module holds one socket).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import time

from bench.measure import Figure, freeze_long_lived_objects, rss_bytes
from bench.server_process import ServerProcess
from emulator.module_fleet import ModuleFleet, ModuleFleetSettings

TARGET_MODULES = 10_000
NOTIFY_INTERVAL = 10.0
ACK_GRACE = 0.1
WARM_UP_INTERVALS = 2


def _raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


async def bench_modules(count: int, interval: float = NOTIFY_INTERVAL) -> list[Figure]:
    files = _raise_open_files()
    async with ServerProcess.start() as server:
        host, port = server.address
        gc.collect()
        before = rss_bytes()
        fleet = ModuleFleet(
            ModuleFleetSettings(count=count, server=f"{host}:{port}", notify_interval=interval, lifetime=3600)
        )
        started = time.perf_counter()
        try:
            await fleet.start()
            up_seconds = time.perf_counter() - started
            freeze_long_lived_objects()
            registered = [fleet.endpoint(i) for i, mcu in enumerate(fleet.mcus) if mcu.registered.is_set()]
            observed = (await server.call("observe", endpoints=registered, path="/3303/0"))["observed"]
            # Steady state first: the observations' first notifies and the log-in backlog settle.
            await asyncio.sleep(WARM_UP_INTERVALS * interval)
            baseline = [mcu.acked for mcu in fleet.mcus]
            acked_before = fleet.stats.notifies_acked
            await asyncio.sleep(interval * (1 + ACK_GRACE))
            notifying = sum(1 for mcu, b in zip(fleet.mcus, baseline, strict=True) if mcu.acked > b)
            acks = fleet.stats.notifies_acked - acked_before
            gc.collect()
            after = rss_bytes()
            stats = fleet.stats
            server_status = await server.call("status")
        finally:
            await fleet.stop()
    per_module = (after - before) / max(1, stats.registered)
    details = {
        "modules": count,
        "registered": stats.registered,
        "failed_logins": stats.failed,
        "failed_logins_by_event": {str(k): v for k, v in sorted(stats.failed_by_event.items())},
        "observed": observed,
        "notifying_last_interval": notifying,
        "acks_last_interval": acks,
        "notifies_failed": stats.notifies_failed,
        "notifies_refused": stats.notifies_refused,
        "bring_up_s": round(up_seconds, 2),
        "interval_s": interval,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "open_files_limit": files,
        "server": "separate process (SQLite)",
        "server_datapoints": server_status["datapoints"],
    }
    kept = Figure(
        benchmark="modules",
        name=f"AT modules registered and notifying every {interval:g} s ({count} started)",
        value=notifying,
        unit="modules",
        target=f"≥ {min(count, TARGET_MODULES)}",
        target_met=notifying >= min(count, TARGET_MODULES),
        details=details,
    )
    memory = Figure(
        benchmark="modules",
        name="Memory per AT module",
        value=per_module / 1024,
        unit="KiB",
        details={"registered": stats.registered, "rss_delta_bytes": after - before},
    )
    return [kept, memory]
