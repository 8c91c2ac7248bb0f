"""Benchmark: a firmware update campaign (issue 23) — N emulated AT modules (the fleet's ML307R,
`emulator.module_fleet`) pull one package over CoAP Block2 (1 KiB blocks) in an update task with
`max_concurrent` devices at once, through the real API, and reboot into the new version.

Figures:
- completion time of the task (every device `succeeded`);
- blocks/s the server delivered, beside the ceiling of a bare aiocoap Block2 transfer of the same
  package in the same run (an aiocoap server in a process of its own, `bench.fota --bare`; the
  same number of downloaders at once, each asking block after block as the module does): target
  ratio ≥ 0.7;
- the server's memory growth over the task (RSS after the task minus before, both after a full
  garbage collection): target < 50 MiB (the package is held once, never copied per download).

The server runs in a process of its own (`bench.server_process`); the modules and the bare
downloaders run in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from typing import Any

import aiocoap
import aiocoap.resource as coap_resource
import httpx
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption

from bench.coap import bound_port, client_contexts, shutdown
from bench.measure import Figure, raise_open_files, ratio_target, spawn_bench_module
from bench.server_process import ServerProcess
from emulator.module_fleet import ModuleFleet, ModuleFleetSettings
from lwm2m.firmware_package import pack

ADMIN_KEY = "bench-fota-admin"
BLOCK = 1024
SZX = 6
RATIO_TARGET = 0.7
MEMORY_TARGET_MIB = 50.0
TARGET_VERSION = "9.9.9"


def package_of(kib: int) -> bytes:
    payload = bytes(i % 251 for i in range(kib * 1024 - 64))
    return pack("ML307R", TARGET_VERSION, payload)


async def bench_fota(devices: int, kib: int, concurrency: int) -> list[Figure]:
    raise_open_files()
    package = package_of(kib)
    blocks_per_download = math.ceil(len(package) / BLOCK)
    async with ServerProcess.start(http=True, api_key=ADMIN_KEY) as server:
        assert server.http_url is not None
        host, port = server.address
        fleet = ModuleFleet(
            ModuleFleetSettings(
                count=devices, server=f"{host}:{port}", notify_interval=86400, request_timeout=30
            )
        )
        try:
            stats = await fleet.start()
            if stats.registered != devices:
                raise RuntimeError(f"only {stats.registered} of {devices} modules registered")
            before = await server.call("status")
            async with httpx.AsyncClient(
                base_url=server.http_url, headers={"api-key": ADMIN_KEY}, timeout=60
            ) as http:
                stored = (
                    await http.post(
                        "/api/v1/firmware",
                        files={"file": ("fw.bin", package)},
                        data={"version": TARGET_VERSION},
                    )
                ).json()
                started = time.perf_counter()
                task = (
                    await http.post(
                        "/api/v1/fota/tasks",
                        json={
                            "firmware_id": stored["id"],
                            "endpoints": [fleet.endpoint(i) for i in range(devices)],
                            "method": "pull-coap",
                            "max_concurrent": concurrency,
                            "timeouts": {"download": 1800, "update": 300, "version_check": 120, "poll": 5},
                        },
                    )
                ).json()
                while True:
                    state = (await http.get(f"/api/v1/fota/tasks/{task['id']}")).json()
                    if state["status"] != "running":
                        break
                    await asyncio.sleep(0.5)
                elapsed = time.perf_counter() - started
            after = await server.call("status")
        finally:
            await fleet.stop()
    totals = state["totals"]
    blocks = totals["succeeded"] * blocks_per_download
    bare = await bare_block2(package, min(devices, 2 * concurrency), concurrency)
    growth_mib = (int(after["rss"]) - int(before["rss"])) / 2**20
    return [
        Figure(
            benchmark="fota",
            name=f"Update task completion ({devices} modules, {kib} KiB over CoAP, max_concurrent {concurrency})",
            value=elapsed,
            unit="s",
            target=f"{devices} succeeded",
            target_met=totals["succeeded"] == devices,
            details={
                "totals": totals,
                "package_bytes": len(package),
                "failed": [(d["endpoint"], d["reason"]) for d in state["devices"] if d["status"] == "failed"][
                    :10
                ],
            },
        ),
        ratio_target(
            Figure(
                benchmark="fota",
                name=f"Firmware blocks/s ({BLOCK}-byte Block2; ceiling: bare aiocoap, {concurrency} at once)",
                value=blocks / elapsed if elapsed > 0 else 0.0,
                unit="blocks/s",
                ceiling=bare["blocks_per_s"],
                details={"blocks": blocks, "bare": bare},
            ),
            RATIO_TARGET,
        ),
        Figure(
            benchmark="fota",
            name=f"Server memory growth during the task ({devices} downloads of {kib} KiB)",
            value=growth_mib,
            unit="MiB",
            target=f"< {MEMORY_TARGET_MIB:g} MiB",
            target_met=growth_mib < MEMORY_TARGET_MIB,
            details={"rss_before": before["rss"], "rss_after": after["rss"]},
        ),
    ]


async def bare_block2(package: bytes, downloads: int, concurrency: int) -> dict[str, Any]:
    """Blocks/s of `downloads` Block2 downloads of `package` from a bare aiocoap server (own
    process), `concurrency` at once, block after block."""
    process = await spawn_bench_module(
        "bench.fota",
        "--bare",
        str(len(package)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        hello = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        target = f"coap://127.0.0.1:{hello['port']}"
        contexts = await client_contexts(concurrency)
        remaining = list(range(downloads))
        blocks = 0

        async def worker(context: aiocoap.Context) -> None:
            nonlocal blocks
            while remaining:
                remaining.pop()
                number = 0
                while True:
                    request = aiocoap.Message(code=Code.GET, uri=f"{target}/fw")
                    request.opt.block2 = BlockOption.BlockwiseTuple(number, False, SZX)
                    answer = await context.request(request, handle_blockwise=False).response
                    blocks += 1
                    if answer.opt.block2 is None or not answer.opt.block2.more:
                        break
                    number += 1

        started = time.perf_counter()
        try:
            await asyncio.gather(*(worker(c) for c in contexts))
        finally:
            elapsed = time.perf_counter() - started
            await shutdown(contexts)
        return {
            "downloads": downloads,
            "blocks": blocks,
            "elapsed_s": round(elapsed, 3),
            "blocks_per_s": blocks / elapsed,
        }
    finally:
        if process.stdin is not None:
            process.stdin.close()
        await process.wait()


class _Package(coap_resource.Resource):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=Code.CONTENT, payload=self.data)


async def _serve_bare(size: int) -> None:
    site = coap_resource.Site()
    site.add_resource(["fw"], _Package(bytes(i % 251 for i in range(size))))
    context = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
    print(json.dumps({"port": bound_port(context)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await context.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fota")
    parser.add_argument("--bare", type=int, required=True, help="serve a package of this many bytes")
    asyncio.run(_serve_bare(parser.parse_args().bare))
