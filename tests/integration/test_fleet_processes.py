"""`testbed fleet --processes P`: the devices spread over P worker processes, one progress bar
and one summary; the plain LwM2M fleet and the AT-module fleet, against a real server."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from emulator.fleet_processes import FleetTotals, shares
from tests.conftest import ServerFactory
from tests.integration.cluster_support import ROOT


def test_shares_cover_every_device_once_in_nearly_equal_ranges() -> None:
    parts = shares(10, 3)
    assert [(p.first, p.count) for p in parts] == [(0, 4), (4, 3), (7, 3)]
    assert [(p.first, p.count) for p in shares(2, 8)] == [(0, 1), (1, 1)]  # never an empty worker


def test_totals_add_up_the_workers_counters() -> None:
    totals = FleetTotals(2)
    totals.add({"registered": 3, "failed": 1, "notifies_sent": 5, "note": "x"})
    totals.add({"registered": 2, "failed": 0, "notifies_sent": 4})
    assert (totals.registered, totals.failed, totals.counters) == (5, 1, {"notifies_sent": 9})


async def _fleet(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testbed.cli",
        "fleet",
        *args,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


async def _read_until(process: asyncio.subprocess.Process, marker: str, timeout: float = 60) -> str:
    assert process.stdout is not None
    seen = ""
    while marker not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        assert line, f"fleet ended before {marker!r}:\n{seen}"
        seen += line.decode(errors="replace")
    return seen


async def _interrupt(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    return out.decode(errors="replace")


@pytest.mark.timeout(120)
async def test_a_fleet_over_three_processes_registers_every_device_once(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory()
    port = server.listeners["default"].address[1]
    fleet = await _fleet(
        "--count",
        "7",
        "--processes",
        "3",
        "--server-port",
        str(port),
        "--interval",
        "60",
        "--prefix",
        "86997519",
    )
    try:
        output = await _read_until(fleet, "Ctrl-C stops")
        assert "7/7 devices registered with 127.0.0.1:" in output
        assert "by 3 processes" in output
        endpoints = sorted(reg.endpoint for reg in server.registered())
        assert endpoints == [f"86997519{i:07d}" for i in range(7)]
        assert "3 processes stopped" in await _interrupt(fleet)
    finally:
        if fleet.returncode is None:
            fleet.kill()
            await fleet.wait()


@pytest.mark.timeout(120)
async def test_an_at_module_fleet_over_two_processes_sums_its_notifies(server_factory: ServerFactory) -> None:
    server = await server_factory()
    port = server.listeners["default"].address[1]
    fleet = await _fleet(
        "--at",
        "--count",
        "4",
        "--processes",
        "2",
        "--server-port",
        str(port),
        "--interval",
        "0.5",
        "--prefix",
        "86997519",
    )
    try:
        output = await _read_until(fleet, "Ctrl-C stops")
        assert "4/4 devices registered" in output and "by 2 processes" in output
        imeis = sorted(reg.endpoint.split(";")[0] for reg in server.registered())
        assert imeis == [str(869975190000000 + i) for i in range(4)]
        summary = await _interrupt(fleet)
        assert "2 processes stopped; notifies sent" in summary
    finally:
        if fleet.returncode is None:
            fleet.kill()
            await fleet.wait()
