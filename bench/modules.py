"""Benchmark 5: AT modules per emulator process (issue 4: "how many modules one emulator process
keeps registered and notifying every 10 s (target: 10,000) and its memory per module").

`emulator.module_fleet.ModuleFleet` brings up N full AT modules (each its own LwM2M client and UDP
socket) against the real server on loopback; the server observes /3303/0 of every endpoint; then
every module's MCU sends a confirmable AT+MIPLNOTIFY per interval; after `WARM_UP_INTERVALS`
intervals (steady state) one more interval is measured. A module counts as "notifying" when it
sent a notify in that interval and every notify it had sent up to the interval's end was
acknowledged (`+MIPLEVENT: 0,26,<ackid>`, matched by ackid) within `ACK_GRACE_S` (at most one
interval) after it: the
fleet keeps up, with no backlog growing, whatever the jitter of single acknowledgements. A CoAP
client retransmits an unacknowledged CON after 2-3 s, so 5 s is a short bound.

The server runs in a process of its own (`bench.server_process`, SQLite), so this process is the
emulator alone, as `testbed fleet --at` runs it: memory per module = (RSS after the fleet is up -
RSS before) / registered modules. The soft limit on open files is raised to the hard limit (each
module holds one socket).
"""

from __future__ import annotations

import asyncio
import gc
import time

from bench.measure import Figure, raise_open_files, rss_bytes
from bench.server_process import ServerProcess
from emulator.module_fleet import ModuleFleet, ModuleFleetSettings
from testbed.gc_tuning import freeze_long_lived_objects

TARGET_MODULES = 10_000
NOTIFY_INTERVAL = 10.0
ACK_GRACE_S = 5.0
WARM_UP_INTERVALS = 2


async def bench_modules(count: int, interval: float = NOTIFY_INTERVAL) -> list[Figure]:
    files = raise_open_files()
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
            loop = asyncio.get_running_loop()
            sent_before = [mcu.sent for mcu in fleet.mcus]
            acked_before = fleet.stats.notifies_acked
            await asyncio.sleep(interval)
            window_end = loop.time()
            sent_in_window = [mcu.sent - b for mcu, b in zip(fleet.mcus, sent_before, strict=True)]
            grace = min(ACK_GRACE_S, interval)
            await asyncio.sleep(grace)
            notifying = sum(
                1
                for mcu, sent in zip(fleet.mcus, sent_in_window, strict=True)
                if sent > 0 and not any(at <= window_end for at in mcu.unacked.values())
            )
            late = [window_end + grace - min(m.unacked.values()) for m in fleet.mcus if m.unacked]
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
        "notifies_sent_in_interval": sum(sent_in_window),
        "acks_in_interval_and_grace": acks,
        "oldest_unacked_s": round(max(late), 3) if late else 0.0,
        "ack_grace_s": grace,
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
