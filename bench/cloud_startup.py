"""Benchmark: time to a fresh private cloud with one registered module (issue 9), the way a test
using the pytest plugin gets one: `testbed.testkit.PrivateCloud` (server, carrier listeners,
HTTP API, SQLite in a new directory) started, one OneNET device provisioned and an emulated
ML307R module logged in over AT until `+MIPLEVENT: 0,6` (manual §3.6, registration succeeded).
Target < 2 s. Each run is cold for the cloud (new database, new sockets) but warm for Python
imports after the first run; the figure is the median of the runs, the first run is reported
separately in the details.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import Figure
from testbed.testkit.cloud import PrivateCloud
from testbed.testkit.module import ModuleFactory

TARGET_S = 2.0


def one_startup(directory: Path) -> dict[str, float]:
    """Start a cloud, log one module in; seconds to each step (the cloud is stopped after)."""
    began = time.perf_counter()
    cloud = PrivateCloud(f"sqlite+aiosqlite:///{directory}/cloud.db")
    cloud.start()
    started = time.perf_counter()
    factory = ModuleFactory(cloud)
    try:
        module = factory()
        module.login()
        module.expect(r"\+MIPLEVENT: 0,6", timeout=10.0)
        registered = time.perf_counter()
    finally:
        factory.close()
        cloud.stop()
    return {"cloud_s": started - began, "registered_s": registered - began}


async def bench_cloud_startup(runs: int) -> list[Figure]:
    logging.getLogger("server").setLevel(logging.WARNING)
    timings: list[dict[str, float]] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix=f"lwm2m-bench-cloud-{run}-") as directory:
            # PrivateCloud runs its own event loop thread and blocks its caller: keep ours free.
            timings.append(await asyncio.to_thread(one_startup, Path(directory)))
    registered = [t["registered_s"] for t in timings]
    median = statistics.median(registered)
    details: dict[str, Any] = {
        "runs": runs,
        "first_run_s": round(registered[0], 3),
        "median_cloud_started_s": round(statistics.median(t["cloud_s"] for t in timings), 3),
        "registered_s": [round(r, 3) for r in registered],
    }
    return [
        Figure(
            benchmark="cloud_startup",
            name=f"Fresh private cloud + one registered module (median of {runs})",
            value=median,
            unit="s",
            target=f"< {TARGET_S:g} s",
            target_met=median < TARGET_S,
            details=details,
        )
    ]
