"""The `testbed` command line as a user runs it: a real process, real sockets, a real database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TESTBED = [sys.executable, "-m", "testbed.cli"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_lists_the_commands() -> None:
    result = subprocess.run([*TESTBED, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("up", "server", "fleet", "db"):
        assert command in result.stdout


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    result = subprocess.run(
        [*TESTBED, "db", "upgrade", "--db", url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    current = subprocess.run(
        [*TESTBED, "db", "current", "--db", url], capture_output=True, text=True, timeout=60
    )
    assert current.stdout.strip() and current.stdout.strip() != "empty"


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _register_raw(port: int, endpoint: str) -> None:
    import asyncio

    from aiocoap.numbers.codes import Code

    from tests.integration.coap_peer import RawPeer

    async def main() -> None:
        peer = await RawPeer.create(("127.0.0.1", port))
        try:
            response = await peer.request(Code.POST, "/rd", (f"ep={endpoint}", "lt=300"), b"</3/0>", 40)
            assert response.code == Code.CREATED
        finally:
            await peer.close()

    asyncio.run(main())


def test_up_brings_up_console_api_fleet_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """What `make run` does, on a clean folder: console and API answer, the fleet reports, a
    module registers and is listed, Ctrl-C stops everything."""
    import httpx

    port = free_udp_port()
    http_port = free_tcp_port()
    env = {**os.environ, "COLUMNS": "200", "TESTBED_API_KEY": "cli-test-key"}
    process = subprocess.Popen(
        [
            *TESTBED,
            "up",
            "--port",
            str(port),
            "--dtls-port",
            "0",
            "--http-port",
            str(http_port),
            "--no-carriers",
            "--fleet",
            "2",
            "--interval",
            "0.3",
            "--module-port-base",
            "0",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if sum("notification" in seen for seen in lines) >= 4:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{http_port}/#key=cli-test-key" in output, output
        base = f"http://127.0.0.1:{http_port}"
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        _register_raw(port, "cli-registered-module")
        devices = httpx.get(base + "/api/v1/devices", headers={"api-key": "cli-test-key"}, timeout=10).json()
        online = {d["endpoint"]: d["online"] for d in devices["items"]}
        assert online.get("cli-registered-module") is True
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        lines.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines)
    assert f"coap://127.0.0.1:{port}" in output
    assert output.count("notification") >= 4, output
    assert "stopped" in output and "Traceback" not in output
    assert process.returncode == 0
    assert (tmp_path / "data" / "testbed.db").exists()


def test_emulator_serves_at_commands_on_a_tcp_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            *TESTBED,
            "emulator",
            "--model",
            "ML307R",
            "--imei",
            "869975030000461",
            "--imsi",
            "1064826326459",
            "--tcp",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"tcp://127.0.0.1:{port}" in line, line
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"ATE0\r\nAT+CGSN=1\r\n")
            received = b""
            deadline = time.monotonic() + 10
            while b"869975030000461" not in received or not received.rstrip().endswith(b"OK"):
                assert time.monotonic() < deadline, received
                received += conn.recv(1024)
        assert b"+CGSN: 869975030000461" in received or b"869975030000461" in received
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_emulator_talks_at_over_stdin_and_stdout_until_end_of_input() -> None:
    result = subprocess.run(
        [*TESTBED, "emulator", "--model", "MN316", "--imei", "869975030000461", "--stdio"],
        input=b"ATE0\r\nAT+CGSN=1\r\nAT+MIPLBOGUS\r\n",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert '+CGSN: "869975030000461"' in out
    assert out.count("OK") >= 2 and "ERROR" in out
    assert b"AT interface: stdio" in result.stderr
