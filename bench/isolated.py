"""Run one benchmark in a fresh Python process and return its figures.

The emulator-side benchmarks report memory per module or device as the growth of this process's
RSS. CPython keeps the heap that earlier benchmarks of the same run freed, so measured after them
the growth would be partly hidden (it once read 0.00 KiB per device). Each of those runs alone:
`python -m bench.isolated NAME ARGS_JSON` prints its figures as one JSON line, the last on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench.measure import Figure, spawn_bench_module


def _benchmarks() -> dict[str, Callable[..., Awaitable[list[Figure]]]]:
    from bench.fleet_capacity import bench_fleet_capacity
    from bench.modules import bench_modules

    return {"modules": bench_modules, "fleet": bench_fleet_capacity}


def figure_from_json(data: dict[str, Any]) -> Figure:
    return Figure(**{key: value for key, value in data.items() if key != "ratio"})


async def run_isolated(name: str, *args: Any) -> list[Figure]:
    process = await spawn_bench_module(
        "bench.isolated", name, json.dumps(args), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark {name!r} failed in its process (exit {process.returncode})")
    return [figure_from_json(item) for item in json.loads(lines[-1])]


def main() -> None:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    benchmark = _benchmarks()[name]

    async def run() -> list[Figure]:
        return await benchmark(*args)

    figures = asyncio.run(run())
    sys.stdout.write(json.dumps([figure.as_json() for figure in figures]) + "\n")


if __name__ == "__main__":
    main()
