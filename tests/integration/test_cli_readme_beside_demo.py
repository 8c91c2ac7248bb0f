"""The README's commands, run in order beside a running `testbed up` (what `make run` runs, in a
fresh folder), leave the demo intact: its small fleet keeps its registrations and keeps reporting,
its modules keep their AT ports and identities, and the manual's chapter-5 example (IMEI
869975030000461, the manual's API key) provisions a device instead of colliding with a demo one.
A fleet started by the README gets endpoint names of its own and the cloud observes them."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTBED = [sys.executable, "-m", "testbed.cli"]
CHECKOUT = Path(__file__).resolve().parents[2]
MANUAL_API_KEY = "deR2fiWkIRtIWaEaK0vto7ctQUg="  # manual §5.2
MANUAL_IMEI, MANUAL_IMSI = "869975030000461", "1064826326459"
ENV = {**os.environ, "COLUMNS": "200", "TESTBED_API_KEY": MANUAL_API_KEY}


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_pair() -> int:
    """A port p with p and p + 1 free for TCP (the demo modules' AT ports)."""
    for _ in range(50):
        base = free_port(socket.SOCK_STREAM)
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", base + 1))
        except OSError:
            continue
        return base
    raise AssertionError("no two consecutive free TCP ports")


def readme_commands_beside_make_run() -> list[list[str]]:
    text = (CHECKOUT / "README.md").read_text()
    section = text.split("Beside a running `make run`", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == ".venv/bin/testbed", line
            commands.append(words[1:])
    return commands


class Output:
    """Every line a process prints, collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            with stream:  # closed at the end of the output, not left to the garbage collector
                self.lines.extend(iter(stream.readline, ""))

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    def wait_for(self, found: Callable[[str], bool], timeout: float = 45) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found(line):
                    return line
            time.sleep(0.05)
        raise AssertionError("not seen in:\n" + "".join(self.lines[-60:]))

    @property
    def text(self) -> str:
        return "".join(self.lines)


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TESTBED, *args], cwd=cwd, env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def at_command(port: int, line: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(line.encode() + b"\r\n")
        received = b""
        deadline = time.monotonic() + 10
        while not received.rstrip().endswith((b"OK", b"ERROR")):
            assert time.monotonic() < deadline, received
            received += conn.recv(1024)
    return received


def notified(endpoint_pattern: str) -> Callable[[str], bool]:
    return lambda line: re.match(rf"notification\s+{endpoint_pattern}\s", line) is not None


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Output, dict[str, int], Path]]:
    ports = {
        "coap": free_port(),
        "http": free_port(socket.SOCK_STREAM),
        "modules": free_tcp_pair(),
    }
    process = start(
        [
            "up", "--port", str(ports["coap"]), "--dtls-port", "0", "--http-port", str(ports["http"]),
            "--no-carriers", "--fleet", "2", "--interval", "0.3",
            "--module-port-base", str(ports["modules"]),
        ],
        tmp_path,
    )  # fmt: skip
    output = Output(process)
    try:
        output.wait_for(lambda line: line.startswith("Press Ctrl-C"))
        yield output, ports, tmp_path
    finally:
        stop(process)
    assert process.returncode == 0, output.text[-3000:]


def test_readme_commands_in_order_leave_the_demo_intact(demo: tuple[Output, dict[str, int], Path]) -> None:
    import httpx

    output, ports, folder = demo
    base = f"http://127.0.0.1:{ports['http']}"
    headers = {"api-key": MANUAL_API_KEY}
    shown = output.text
    assert f"AT on tcp://127.0.0.1:{ports['modules']}" in shown, shown
    assert f"AT on tcp://127.0.0.1:{ports['modules'] + 1}" in shown, shown
    demo_fleet = sorted(set(re.findall(r"\b8699750398\d{5}\b", shown)))
    assert len(demo_fleet) == 2, shown
    output.wait_for(notified(demo_fleet[0]))

    substitutions = {"5683": str(ports["coap"]), "7001": str(free_port(socket.SOCK_STREAM)),
                     "5783": str(free_port())}  # fmt: skip
    fleet_endpoints: tuple[str, str] | None = None
    for command in readme_commands_beside_make_run():
        args = [re.sub(r"\b(5683|7001|5783)\b", lambda m: substitutions[m.group(1)], w) for w in command]
        if args[0] == "fleet":
            args += ["--interval", "0.3"]  # the README's pace is 10 s
            # The README's sizes are for a machine of one's own: the same command, a few devices.
            if "--count" in args:
                at = args.index("--count") + 1
                args[at] = str(min(int(args[at]), 20))
        process = start(args, folder)
        own = Output(process)
        if args[0] in ("db",) or args == ["--help"]:
            assert process.wait(timeout=60) == 0, own.text
            continue
        try:
            own.wait_for(lambda line: "Ctrl-C" in line or "AT interface" in line)
            if args[0] == "fleet":
                first, last = re.findall(r"endpoints (\d{15}) … (\d{15})", own.text)[0]
                assert not first.startswith(("8699750398", "8699750399")) and first != MANUAL_IMEI
                if "--at" in args:
                    # AT modules: that they log in beside the demo is what this command shows
                    # (the data check is the plain fleet's).
                    output.wait_for(
                        lambda line, first=first: "registration.registered" in line and first in line
                    )
                else:
                    fleet_endpoints = (first, last)
                    output.wait_for(notified(first))  # observed by the cloud: its page shows data
                    output.wait_for(notified(last))
        finally:
            stop(process)
        assert process.returncode == 0, (args, own.text)
    assert fleet_endpoints is not None, "the README starts no fleet"

    # The fleet's devices have pages with data (their device record and its datapoints).
    for endpoint in fleet_endpoints:
        listed = httpx.get(
            base + "/api/v1/devices", headers=headers, params={"q": endpoint}, timeout=10
        ).json()
        (device,) = [d for d in listed["items"] if d["endpoint"] == endpoint]
        assert device["id"] is not None, device
        points = httpx.get(f"{base}/api/v1/devices/{device['id']}/datapoints", headers=headers, timeout=10)
        assert {p["path"] for p in points.json()["items"]} >= {"/3303/0/5700"}, points.text

    # The demo fleet kept its registrations and keeps reporting.
    reported = len(output.lines)
    devices = httpx.get(base + "/api/v1/devices", headers=headers, params={"limit": 1000}, timeout=10).json()
    online = {d["endpoint"]: d["online"] for d in devices["items"]}
    assert all(online.get(endpoint) for endpoint in demo_fleet), online
    deadline = time.monotonic() + 20
    while not any(notified(demo_fleet[1])(line) for line in output.lines[reported:]):
        assert time.monotonic() < deadline, output.text[-2000:]
        time.sleep(0.1)
    assert "registration.deregistered  8699750398" not in output.text

    # The demo modules answer on their documented ports with their own identities.
    assert b"869975039900001" in at_command(ports["modules"], "AT+CGSN=1")
    assert b"869975039900002" in at_command(ports["modules"] + 1, "AT+CGSN=1")

    # The manual's chapter-5 request works verbatim: no demo device holds its IMEI.
    created = httpx.post(
        base + "/devices",
        headers=headers,
        json={
            "title": "test000",
            "desc": "some description",
            "tags": ["china", "mobile"],
            "protocol": "LWM2M",
            "auth_info": {MANUAL_IMEI: MANUAL_IMSI},
            "obsv": True,
            "psk": "1234abcd",
        },
        timeout=10,
    ).json()
    assert created["errno"] == 0, created


@pytest.mark.parametrize(
    ("prefix", "count"), [("8699750398", 3), ("86997503990", 3), ("869975039", 1_000_000)]
)
def test_fleet_refuses_a_prefix_of_the_demo_devices(prefix: str, count: int) -> None:
    result = subprocess.run(
        [*TESTBED, "fleet", "--count", str(count), "--prefix", prefix, "--server-port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=ENV,
    )  # fmt: skip
    assert result.returncode == 2
    assert "include the demo devices'" in result.stderr and "Traceback" not in result.stderr


def test_a_short_prefix_whose_names_miss_the_demo_range_is_accepted() -> None:
    process = start(
        ["fleet", "--count", "3", "--prefix", "8699", "--server-port", str(free_port())], CHECKOUT
    )
    output = Output(process)
    try:
        output.wait_for(lambda line: "Ctrl-C" in line)
    finally:
        stop(process)
    assert "endpoints 869900000000000 … 869900000000002" in output.text


def test_two_fleet_runs_get_different_endpoint_names() -> None:
    from emulator.fleet import run_prefix

    assert run_prefix(100, 417) != run_prefix(100, 418)
    assert len(run_prefix(100, 417)) + len("99") == 15
    assert not run_prefix(100).startswith(("8699750398", "8699750399", "86997503"))
