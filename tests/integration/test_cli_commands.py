"""The `testbed` commands beyond up/server: scenario, emulator --transcript, fleet --at, impair,
bench and doctor, run as a user runs them (real processes, sockets and files); input errors are
checked in-process with typer's CliRunner."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testbed.cli import app

TESTBED = [sys.executable, "-m", "testbed.cli"]
CHECKOUT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "200"}


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TESTBED, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=ENV
    )


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TESTBED, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=ENV
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        line = process.stdout.readline()
        assert line, f"process ended before {marker!r}:\n{seen}"
        seen += line
    return seen


def interrupt(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, then the rest of the output; the process must exit 0."""
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    return rest


@dataclass(frozen=True)
class Cloud:
    coap_port: int
    api: str
    api_key: str


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """`testbed up` (no carrier listeners, no fleet) in a fresh folder."""
    folder = tmp_path_factory.mktemp("cloud")
    coap, http = free_port(), free_port(socket.SOCK_STREAM)
    process = start(
        "up",
        "--port",
        str(coap),
        "--http-port",
        str(http),
        "--dtls-port",
        "0",
        "--fleet",
        "0",
        "--no-carriers",
        "--module-port-base",
        "0",
        "--quiet",
        cwd=folder,
    )
    try:
        output = read_until(process, "Press Ctrl-C", timeout=40)
        (key_line,) = [line for line in output.splitlines() if line.startswith("API key")]
        yield Cloud(coap, f"http://127.0.0.1:{http}", key_line.split()[2])
        interrupt(process)
    finally:
        if process.poll() is None:
            process.kill()


def test_help_lists_every_command_and_each_command_has_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    commands = ("up", "server", "emulator", "fleet", "scenario", "impair", "bench", "doctor", "db")
    for command in commands:
        assert f" {command} " in result.stdout, command
    runner = CliRunner()
    for command in commands:
        shown = runner.invoke(app, [command, "--help"])
        assert shown.exit_code == 0, command
        assert "Usage" in shown.output


def test_scenario_custom_flow_passes_against_a_running_cloud(cloud: Cloud, tmp_path: Path) -> None:
    transcript = tmp_path / "custom.log"
    result = run(
        "scenario",
        "custom",
        "--server",
        f"127.0.0.1:{cloud.coap_port}",
        "--api",
        cloud.api,
        "--api-key",
        cloud.api_key,
        "--transcript",
        str(transcript),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED custom.txt" in result.stdout
    assert "< +MIPLWRITE: 0," in result.stdout  # the write came from the cloud's API
    logged = transcript.read_text()
    assert "> AT+MIPLOBSERVERSP=0," in logged and "< +MIPLEVENT: 0,15" in logged


def test_scenario_without_platform_actions_fails_naming_file_line_step_and_reason(cloud: Cloud) -> None:
    result = run("scenario", "custom", "--server", f"127.0.0.1:{cloud.coap_port}", "--var", "ep=cli-no-api")
    assert result.returncode == 1
    assert "FAILED custom.txt:27: do observe /3303/0: no action 'observe' was given" in result.stdout
    assert "--api" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_scenario_drives_a_module_over_tcp_whose_emulator_keeps_a_transcript(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_STREAM)
    transcript = tmp_path / "module.log"
    emulator = start("emulator", "--tcp", f"127.0.0.1:{port}", "--transcript", str(transcript))
    try:
        read_until(emulator, "Transcript")
        script = tmp_path / "identity.txt"
        script.write_text(
            '@timeout 5\nsend ATE0\nexpect OK\nsend AT+CGSN=1\nexpect \\+CGSN: "<imei>"\nexpect OK\n'
        )
        result = run("scenario", str(script), "--connect", f"127.0.0.1:{port}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert '< +CGSN: "869975030000461"' in result.stdout
        bad = tmp_path / "wrong.txt"
        bad.write_text("@timeout 0.5\nsend AT+CIMI\nexpect 999\n")
        failed = run("scenario", str(bad), "--connect", f"127.0.0.1:{port}")
        assert failed.returncode == 1
        assert "wrong.txt:3: expect 999: no line matched /999/ within 0.5 s" in failed.stdout
        interrupt(emulator)
    finally:
        if emulator.poll() is None:
            emulator.kill()
    logged = transcript.read_text()
    assert "> AT+CGSN=1" in logged and '< +CGSN: "869975030000461"' in logged


def test_scenario_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        ["scenario", "no-such-flow"],
        ["scenario", "custom", "--var", "no-equals-sign"],
        ["scenario", "custom", "--server", "nohostport"],
        ["scenario", "custom", "--model", "XYZ123"],
        ["scenario", "custom", "--api", "http://127.0.0.1:1"],
    ]
    broken = tmp_path / "broken.txt"
    broken.write_text("send AT\nfrobnicate now\n")
    cases.append(["scenario", str(broken)])
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert "5.1-onenet" in runner.invoke(app, cases[0]).output  # lists the shipped flows


def test_fleet_of_at_modules_registers_with_the_cloud(cloud: Cloud) -> None:
    fleet = start("fleet", "--at", "--count", "3", "--server-port", str(cloud.coap_port), "--interval", "1")
    try:
        output = read_until(fleet, "registered", timeout=40)
        assert "3/3 ML307R modules registered" in output
        assert "notifies sent" in interrupt(fleet)
    finally:
        if fleet.poll() is None:
            fleet.kill()


def test_impair_forwards_datagrams_to_the_target_until_ctrl_c() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:
        target.bind(("127.0.0.1", 0))
        target.settimeout(10)

        def echo() -> None:
            data, peer = target.recvfrom(2048)
            target.sendto(b"echo:" + data, peer)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        listen = free_port()
        proxy = start(
            "impair",
            "--listen",
            f"127.0.0.1:{listen}",
            "--target",
            f"127.0.0.1:{target.getsockname()[1]}",
            "--delay",
            "0.01",
            "--seed",
            "7",
        )
        try:
            assert f"udp 127.0.0.1:{listen} -> 127.0.0.1:" in read_until(proxy, "Ctrl-C stops")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as module:
                module.settimeout(10)
                module.sendto(b"hello", ("127.0.0.1", listen))
                reply, _ = module.recvfrom(2048)
            assert reply == b"echo:hello"
            assert "stopped" in interrupt(proxy)
        finally:
            if proxy.poll() is None:
                proxy.kill()
        thread.join(timeout=5)


def test_impair_refuses_a_loss_that_is_no_probability() -> None:
    result = CliRunner().invoke(
        app, ["impair", "--listen", ":15683", "--target", "127.0.0.1:5683", "--loss", "2"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["impair", "--listen", "nowhere", "--target", "127.0.0.1:5683"])
    assert result.exit_code == 2 and "--listen" in result.output


def test_bench_outside_the_checkout_says_where_to_run_it(tmp_path: Path) -> None:
    result = run("bench", "--quick", cwd=tmp_path)
    assert result.returncode == 2
    assert "from the lwm2m-testbed checkout" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_in_the_checkout_runs_the_bench_with_its_arguments() -> None:
    result = run("bench", "--only", "nosuch", cwd=CHECKOUT)
    assert result.returncode == 2  # the bench's own exit code for an unknown benchmark
    assert "unknown benchmark(s): nosuch" in result.stderr


def test_doctor_passes_and_reports_the_database_revision_and_dtls_suites(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/doctor.db"
    assert CliRunner().invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0
    result = run("doctor", "--db", url, "--port", str(free_port()))
    assert result.returncode == 0, result.stdout
    for text in (
        "Python",
        "carrier addresses 127.0.1.1-5",
        "(head)",
        "TLS-PSK-WITH-AES-128-CCM-8",
        "TLS-PSK-WITH-AES-128-CBC-SHA256",
        "coap-client-openssl",
        "chromium",
        "all required checks passed",
    ):
        assert text in result.stdout, text


def test_doctor_fails_when_the_coap_port_is_taken_and_the_database_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run("doctor", "--db", "postgresql+asyncpg://u:p@127.0.0.1:1/x", "--port", str(port))
    assert result.returncode == 1
    assert "2 required check(s) failed: UDP 127.0.0.1:" in result.stdout
    assert f"UDP 127.0.0.1:{port} (CoAP)" in result.stdout and "unreachable" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
