"""A fleet spread over worker processes (`testbed fleet --count N --processes P`), so that a load
test is not capped by one core.

The parent splits the devices into P contiguous ranges (`shares`), starts one `testbed fleet`
worker per range with `--worker`, and reads the JSON lines each worker prints on stdout:

    {"progress": 120}                                   devices started so far
    {"started": {"registered": 500, "failed": 0}}       the worker's fleet is up
    {"summary": {"registered": 500, "notifies_sent": ...}}   after SIGINT, before it exits

It sums them into one progress bar and one summary. Workers that die are reported as such; the
others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkerShare:
    index: int
    first: int
    count: int


def shares(count: int, processes: int) -> list[WorkerShare]:
    """Split `count` devices into at most `processes` contiguous ranges, sizes differing by <= 1."""
    processes = max(1, min(processes, count))
    base, extra = divmod(count, processes)
    result, first = [], 0
    for index in range(processes):
        size = base + (1 if index < extra else 0)
        result.append(WorkerShare(index, first, size))
        first += size
    return result


def report(kind: str, data: Any) -> None:
    """A worker's line to its parent."""
    print(json.dumps({kind: data}), flush=True)


@dataclass
class FleetTotals:
    processes: int
    registered: int = 0
    failed: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    workers_lost: int = 0

    def add(self, part: Mapping[str, Any]) -> None:
        for name, value in part.items():
            if not isinstance(value, int) or isinstance(value, bool):
                continue
            if name == "registered":
                self.registered += value
            elif name == "failed":
                self.failed += value
            else:
                self.counters[name] = self.counters.get(name, 0) + value


@dataclass
class _Worker:
    share: WorkerShare
    process: asyncio.subprocess.Process
    progress: int = 0
    started: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


class ProcessFleet:
    def __init__(self, argv_for: Callable[[WorkerShare], list[str]], count: int, processes: int) -> None:
        self.argv_for = argv_for
        self.count = count
        self.shares = shares(count, processes)
        self._workers: list[_Worker] = []

    async def start(self, progress: Callable[[int], None] | None = None) -> FleetTotals:
        """Start every worker; returns once each has its fleet up (or has died)."""

        def changed() -> None:
            if progress is not None:
                progress(sum(w.progress for w in self._workers))

        for share in self.shares:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.argv_for(share),
                stdout=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
            worker = _Worker(share, process)
            worker.reader = asyncio.create_task(self._read(worker, changed))
            self._workers.append(worker)
        await asyncio.gather(*(w.up.wait() for w in self._workers))
        totals = FleetTotals(len(self._workers))
        for worker in self._workers:
            if worker.started is None:
                totals.workers_lost += 1
                totals.failed += worker.share.count
            else:
                totals.add(worker.started)
        return totals

    async def _read(self, worker: _Worker, changed: Callable[[], None]) -> None:
        assert worker.process.stdout is not None
        try:
            while raw := await worker.process.stdout.readline():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(line, dict):
                    continue
                if "progress" in line:
                    worker.progress = int(line["progress"])
                    changed()
                elif "started" in line:
                    worker.started = dict(line["started"])
                    worker.up.set()
                elif "summary" in line:
                    worker.summary = dict(line["summary"])
        finally:
            worker.up.set()

    async def stop(self, timeout: float = 60.0) -> FleetTotals:
        """Stop every worker (SIGINT: each stops its fleet and prints its summary)."""
        for worker in self._workers:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGINT)
        totals = FleetTotals(len(self._workers))
        for worker in self._workers:
            try:
                await asyncio.wait_for(worker.process.wait(), timeout)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader is not None:
                with contextlib.suppress(Exception):
                    await worker.reader
            if worker.summary is None:
                totals.workers_lost += 1
            else:
                totals.add(worker.summary)
        return totals
