"""Smoke test of `make bench`: every benchmark runs with tiny sizes and returns well-formed figures
(speed is measured by the benchmark, never asserted here)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from bench.__main__ import main
from bench.measure import Figure, run_closed_loop
from bench.run import BENCHMARKS, Sizes, run_benchmarks

TINY = Sizes(
    clients=20,
    registrations=50,
    reads=50,
    endpoints=(30, 60),
    sockets=10,
    handshakes=20,
    modules=10,
    module_interval=1.0,
    notifies=50,
    notify_clients=10,
    fleet=10,
    fleet_interval=1.0,
    rest_requests=50,
    rest_paced=20,
    cloud_startups=1,
    fota_devices=4,
    fota_kib=4,
    fota_concurrency=2,
    cluster_registrations=30,
    cluster_reads=30,
    cluster_fleet=6,
    cluster_window=1.0,
)
# The cluster benchmark needs PostgreSQL and NATS: its own smoke test below.
LOCAL = tuple(name for name in BENCHMARKS if name != "cluster")


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


async def test_every_benchmark_returns_positive_figures_and_ratios() -> None:
    figures = await run_benchmarks(TINY, LOCAL)
    by_benchmark = {f.benchmark for f in figures}
    assert by_benchmark == set(LOCAL)
    for figure in figures:
        assert isinstance(figure, Figure)
        if figure.unit.endswith("/s"):
            assert _positive(figure.value), figure
        else:  # sizes (memory per module at tiny counts can round to nothing)
            assert figure.value is not None and math.isfinite(figure.value) and figure.value >= 0, figure
        if figure.ceiling is not None:
            assert _positive(figure.ratio), figure
        json.dumps(figure.as_json())
    ratios = {f.benchmark for f in figures if f.ratio is not None}
    assert {"registrations", "reads", "dtls"} <= ratios
    registrations = next(f for f in figures if f.benchmark == "registrations")
    assert registrations.details["server"]["completed"] == 50
    assert registrations.target_met is not None
    memory = [f for f in figures if f.name.startswith("Server RSS with")]
    assert [f.details["registered"] for f in memory] == [30, 60]
    assert all(f.details["rss_after_bytes"] >= f.details["rss_before_bytes"] > 0 for f in memory)
    assert all(f.target == "< 200 MB" for f in memory)


async def test_closed_loop_counts_failures_instead_of_raising() -> None:
    async def op(n: int) -> None:
        if n % 2:
            raise RuntimeError("odd")

    result = await run_closed_loop([op, op, op], 10)
    assert (result.completed, result.errors) == (5, 5)
    assert result.first_error is not None and "odd" in result.first_error
    assert result.percentile_ms(50) is not None


def test_command_line_rejects_unknown_benchmark_names() -> None:
    assert main(["--only", "registrations,bogus"]) == 2


def test_results_are_written_as_latest_and_timestamped_json(tmp_path: Path) -> None:
    from bench.report import document, write

    figure = Figure(benchmark="reads", name="x", value=2.0, unit="reads/s", ceiling=4.0)
    paths = write(document([figure], {"quick": True}, 1.0), "smoke", tmp_path)
    assert paths[0].name == "smoke.json" and len(paths) == 2
    saved = json.loads(paths[1].read_text())
    assert saved["figures"][0]["ratio"] == 0.5


async def test_the_fota_benchmark_reports_completion_blocks_against_bare_aiocoap_and_memory() -> None:
    from bench.fota import bench_fota

    completion, blocks, memory = await bench_fota(devices=3, kib=4, concurrency=2)
    assert completion.target_met, completion.details
    assert completion.details["totals"]["succeeded"] == 3
    assert blocks.unit == "blocks/s" and _positive(blocks.value) and _positive(blocks.ratio)
    assert blocks.details["blocks"] == 3 * 4 and blocks.target == "ratio ≥ 0.7"
    assert memory.unit == "MiB" and memory.target == "< 50 MiB" and memory.target_met is not None


async def test_cluster_benchmark_returns_its_three_figures() -> None:
    from tests.support import missing, nats_available, postgres_available

    if not postgres_available() or not nats_available():
        missing("the cluster benchmark needs PostgreSQL at 127.0.0.1:5432 and NATS at 127.0.0.1:4222")
    small = dataclasses.replace(TINY, clients=3)
    figures = await run_benchmarks(small, ("cluster",))
    assert [f.benchmark for f in figures] == ["cluster"] * 3
    overhead, reads, fleet = figures
    assert overhead.unit == "reg/s" and _positive(overhead.ratio) and overhead.target == "ratio ≥ 0.8"
    assert reads.unit == "reads/s" and reads.target_met is not None
    assert reads.details["p99_ms"]["owner"] > 0 and reads.details["p99_ms"]["non_owner"] > 0
    assert fleet.unit == "notifies/s" and fleet.details["cores"] >= 1
    assert fleet.details["stored"]["one"] > 0 and fleet.details["stored"]["many"] > 0
    for figure in figures:
        json.dumps(figure.as_json())
