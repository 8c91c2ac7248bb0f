"""The server under test in a process of its own, so that a benchmark's load generators (device
sockets, emulated modules, HTTP clients) run on the other core instead of sharing the server's
event loop and GIL, as a deployment would see them.

`ServerProcess.start(...)` spawns ``python -m bench.server_process`` and waits for its ports. The
child runs the real `Lwm2mServer`, composed by `testbed.cloud.Cloud` (one plain UDP listener on an ephemeral loopback port; SQLite in a
throw-away directory unless a database URL is given; the HTTP API when asked) and answers commands,
one JSON object per line on stdin, with one JSON object per line on stdout:

    {"op": "observe", "endpoints": [...], "path": "/3303/0"}  → {"observed": n}
    {"op": "observe_on_register", "path": "/3303/0/5700"}     → {}   (every later registration)
    {"op": "provision", "endpoints": [...]}                    → {"device_ids": [...]}
    {"op": "reads", "endpoints": [...], "total": n}            → a closed-loop `LoadResult`
    {"op": "status"}  → {"registered": n, "observed": n, "datapoints": n, "rss": bytes, "cpu_s": s}
                        (after the pending notifications are stored and a full garbage collection)

The child stops the server and exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from bench.measure import (
    LoadResult,
    Operation,
    rss_bytes,
    run_closed_loop,
    spawn_bench_module,
)
from testbed.gc_tuning import freeze_long_lived_objects

if TYPE_CHECKING:
    from server.domain import Registration
    from server.lwm2m_server import Lwm2mServer

OBSERVE_CONCURRENCY = 100
START_TIMEOUT = 60.0


class ServerProcess:
    """Parent side: the child's addresses and a `call` per command."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self.process = process
        self.address: tuple[str, int] = ("127.0.0.1", int(hello["coap_port"]))
        self.http_url: str | None = hello.get("http_url")
        self.rss_at_start = int(hello["rss"])
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def start(
        cls, *, database_url: str | None = None, http: bool = False, api_key: str | None = None
    ) -> AsyncIterator[ServerProcess]:
        arguments = ["--http"] if http else []
        if database_url:
            arguments += ["--database", database_url]
        if api_key:
            arguments += ["--api-key", api_key]
        process = await spawn_bench_module(
            "bench.server_process",
            *arguments,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**24,  # a `reads` answer carries every latency
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
            if not line:
                raise RuntimeError("the server process exited during start-up")
            yield cls(process, json.loads(line))
        finally:
            if process.stdin is not None and not process.stdin.is_closing():
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def call(self, op: str, timeout: float = 600.0, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write(json.dumps({"op": op, **arguments}).encode() + b"\n")
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the server process exited during {op!r}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"server process: {op}: {answer['error']}")
        return answer

    async def reads(self, endpoints: list[str], total: int) -> LoadResult:
        """Closed-loop reads of /3/0/0 through the child's Python API (`Lwm2mServer.read`)."""
        answer = await self.call("reads", endpoints=endpoints, total=total)
        return LoadResult(
            answer["completed"],
            answer["errors"],
            answer["elapsed"],
            tuple(answer["latencies"]),
            answer["first_error"],
        )


# --- child side ----------------------------------------------------------------------------------


class _Child:
    def __init__(self, server: Lwm2mServer) -> None:
        self.server = server
        self.observed = 0
        self.gate = asyncio.Semaphore(OBSERVE_CONCURRENCY)

    async def _observe_one(self, endpoint: str, path: str) -> bool:
        async with self.gate:
            try:
                await self.server.observe(endpoint, path)
            except Exception:
                return False
        self.observed += 1
        return True

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "observe":
            results = await asyncio.gather(
                *(self._observe_one(e, command["path"]) for e in command["endpoints"])
            )
            return {"observed": sum(results)}
        if op == "observe_on_register":
            path = command["path"]

            async def on_register(registration: Registration, _reason: str) -> None:
                await self._observe_one(registration.endpoint, path)

            self.server.registrations.on_register(on_register)
            return {}
        if op == "provision":
            product = await self.server.provisioning.create_product("bench", "custom")
            ids = []
            for k, endpoint in enumerate(command["endpoints"]):
                device = await self.server.provisioning.create_device(
                    product_id=product.id, imei=f"86997503{k:07d}", endpoint=endpoint, title=endpoint
                )
                ids.append(device.id)
            return {"device_ids": ids}
        if op == "reads":
            return await self._reads(command["endpoints"], int(command["total"]))
        if op == "profile":  # {"op": "profile", "seconds": s, "to": file}: cProfile the loop a while
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            await asyncio.sleep(float(command["seconds"]))
            profiler.disable()
            profiler.dump_stats(command["to"])
            return {}
        if op == "status":
            await self.server.reporting.drain()
            gc.collect()
            return {
                "registered": len(self.server.registered()),
                "observed": self.observed,
                "datapoints": await self.server.store.count_datapoints(),
                "rss": rss_bytes(),
                "cpu_s": time.process_time(),
            }
        return {"error": f"unknown op {op!r}"}

    async def _reads(self, endpoints: list[str], total: int) -> dict[str, Any]:
        def make(endpoint: str) -> Operation:
            async def op(_n: int) -> None:
                await self.server.read(endpoint, "/3/0/0")

            return op

        result = await run_closed_loop([make(e) for e in endpoints], total)
        return {
            "completed": result.completed,
            "errors": result.errors,
            "elapsed": result.elapsed,
            "latencies": list(result.latencies),
            "first_error": result.first_error,
        }


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def _child(args: argparse.Namespace) -> None:
    from server.settings import ListenerSettings, Settings
    from testbed.cloud import Cloud

    # Per-request log lines would measure the logging system, not the server.
    logging.getLogger("server").setLevel(logging.WARNING)
    async with AsyncExitStack() as stack:
        url = args.database
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="lwm2m-bench-server-"))
        if url is None:
            url = f"sqlite+aiosqlite:///{directory}/bench.db"
        settings = Settings(
            database_url=url,
            listeners=[ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None)],
            http_host="127.0.0.1",
            request_timeout=30.0,
            api_key=args.api_key,
            firmware_dir=f"{directory}/firmware",
        )
        cloud = Cloud(settings, http_port=0, announce_firmware_url=True)
        server = await cloud.start_server()
        stack.push_async_callback(cloud.stop)
        hello: dict[str, Any] = {"coap_port": server.listeners["default"].address[1], "rss": rss_bytes()}
        if args.http:
            await cloud.start_http()
            hello["http_url"] = cloud.http_url
        freeze_long_lived_objects()
        _emit(hello)
        child = _Child(server)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            try:
                answer = await child.handle(json.loads(line))
            except Exception as exc:  # reported to the parent, which raises it there
                answer = {"error": repr(exc)[:500]}
            _emit(answer)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_process")
    parser.add_argument("--database", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--http", action="store_true", help="serve the HTTP API too")
    parser.add_argument("--api-key", help="the admin API key")
    args = parser.parse_args()
    profile_to = os.environ.get("TESTBED_BENCH_PROFILE")  # a file for the child's cProfile stats
    if not profile_to:
        asyncio.run(_child(args))
        return
    import cProfile

    profiler = cProfile.Profile()
    try:
        profiler.runcall(asyncio.run, _child(args))
    finally:
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    main()
