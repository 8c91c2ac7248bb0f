"""Result shapes and the closed-loop load driver shared by every benchmark.

Design: a benchmark is a set of *workers* (one per simulated client) pulling request numbers from a
shared counter until ``total`` requests are done (closed loop: each worker has at most one request
in flight, so concurrency equals the number of workers). A failed request is counted, not raised,
so that a slow server shows up as errors in the report instead of a traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Operation = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Outcome of one closed-loop run."""

    completed: int
    errors: int
    elapsed: float
    latencies: tuple[float, ...]
    first_error: str | None = None

    @property
    def rate(self) -> float:
        """Successful operations per second."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 4),
            "rate_per_s": round(self.rate, 2),
            "p50_ms": _round(self.percentile_ms(50)),
            "p99_ms": _round(self.percentile_ms(99)),
            "mean_ms": _round(statistics.fmean(self.latencies) * 1000 if self.latencies else None),
            "first_error": self.first_error,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def run_closed_loop(workers: Sequence[Operation], total: int) -> LoadResult:
    """Run ``total`` operations over ``workers`` (worker k performs op(n) for the n it draws)."""
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None

    async def worker(op: Operation) -> None:
        nonlocal errors, first_error
        while (n := next(counter)) < total:
            started = time.perf_counter()
            try:
                await op(n)
            except Exception as exc:
                errors += 1
                first_error = first_error or repr(exc)[:200]
            else:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(op) for op in workers))
    elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, tuple(latencies), first_error)


@dataclass(slots=True)
class Figure:
    """One printed row: a measured value beside its ceiling, their ratio and the issue's target."""

    benchmark: str
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    target: str | None = None
    target_met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or self.ceiling <= 0:
            return None
        return self.value / self.ceiling

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return data


def ratio_target(figure: Figure, minimum: float) -> Figure:
    """Mark ``figure`` with the target "ratio ≥ minimum" and whether it is met."""
    figure.target = f"ratio ≥ {minimum:g}"
    figure.target_met = figure.ratio is not None and figure.ratio >= minimum
    return figure


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status (VmRSS), else psutil."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    return int(psutil.Process().memory_info().rss)


REPO_ROOT = Path(__file__).resolve().parent.parent


async def spawn_bench_module(module: str, *args: str, **pipes: Any) -> asyncio.subprocess.Process:
    """`python -m <module> <args>` from the checkout (on PYTHONPATH), with the given pipes."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=REPO_ROOT, env=env, **pipes
    )


def raise_open_files() -> int:
    """Raise the soft limit on open files to the hard one (a device holds a socket); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft
