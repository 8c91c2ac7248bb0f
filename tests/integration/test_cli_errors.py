"""What a user sees when a command cannot start, run as a user runs it (a real process): a busy
port, a database URL that is none, a PostgreSQL that does not answer, a missing models folder and
bad identities end in one or two lines naming the problem and the fix, never a traceback; the
emulator reads AT lines from a redirected file or /dev/null; help texts reflow and name types."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

TESTBED = [sys.executable, "-m", "testbed.cli"]
ENV = {**os.environ, "COLUMNS": "400", "TESTBED_API_KEY": "errors-test-key"}


def run(*args: str, cwd: Path | None = None, stdin: object = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TESTBED, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=ENV,
        stdin=stdin,  # type: ignore[arg-type]
    )


def assert_explained(result: subprocess.CompletedProcess[str], *words: str) -> list[str]:
    """Exit 2, nothing but one or two lines on stderr (the problem; the fix and `testbed
    doctor`), containing `words`."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "testbed doctor" in lines[-1], result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return lines


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_busy_coap_port_names_port_address_holder_and_fix(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run("server", "--port", str(port), cwd=tmp_path)
    assert_explained(
        result, f"UDP port {port} on 127.0.0.1", "already in use by", f"(pid {os.getpid()})", "--port"
    )


def test_busy_http_port_of_up_names_the_port_and_the_option(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            "up", "--port", "0", "--dtls-port", "0", "--http-port", str(port), "--no-carriers",
            "--fleet", "0", cwd=tmp_path,
        )  # fmt: skip
    assert_explained(result, f"TCP port {port} on 127.0.0.1 (HTTP API and console)", "--http-port")


def test_busy_dtls_port_names_the_dtls_option(tmp_path: Path) -> None:
    coap = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        dtls = taken.getsockname()[1]
        result = run(
            "up", "--port", str(coap), "--dtls-port", str(dtls), "--http-port", "0", "--no-carriers",
            "--fleet", "0", cwd=tmp_path,
        )  # fmt: skip
    assert_explained(result, f"UDP port {dtls} on 127.0.0.1 (DTLS", "--dtls-port")


def test_busy_at_port_of_the_emulator_names_its_holder() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("emulator", "--tcp", f"127.0.0.1:{port}")
    assert_explained(result, f"TCP port {port} on 127.0.0.1", f"(pid {os.getpid()})", "--tcp")


def test_an_address_not_on_this_machine_is_explained(tmp_path: Path) -> None:
    result = run("server", "--host", "192.0.2.1", "--port", str(free_udp_port()), cwd=tmp_path)
    assert_explained(result, "the address 192.0.2.1 is not on this machine")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not-a-url", ["is not a database URL", "sqlite+aiosqlite:///"]),
        ("mysql://user@127.0.0.1/db", ["not mysql", "postgresql+asyncpg://"]),
        ("postgresql+asyncpg://postgres@127.0.0.1:1/testbed", ["PostgreSQL at 127.0.0.1:1 does not answer"]),
    ],
    ids=["not-a-url", "other-database", "postgresql-unreachable"],
)
def test_bad_database_url_is_explained(tmp_path: Path, url: str, words: list[str]) -> None:
    result = run("server", "--port", "0", "--db", url, cwd=tmp_path)
    assert_explained(result, *words)


def test_unreachable_postgresql_is_explained_by_db_upgrade_too(tmp_path: Path) -> None:
    result = run("db", "upgrade", "--db", "postgresql+asyncpg://postgres@127.0.0.1:1/testbed", cwd=tmp_path)
    assert_explained(result, "PostgreSQL at 127.0.0.1:1 does not answer", "Start PostgreSQL")


def test_missing_models_folder_is_explained(tmp_path: Path) -> None:
    result = run("server", "--port", "0", "--models", str(tmp_path / "absent"), cwd=tmp_path)
    assert_explained(result, f"--models {tmp_path / 'absent'} does not exist", "OMA DDF XML")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--imei", "86997503000046"), ("--imei", "8699750300004612"), ("--imei", "86997503000046x"),
     ("--imsi", "4600412345678901"), ("--imsi", "46004abc")],
)  # fmt: skip
def test_bad_identities_are_refused_at_the_command_line(option: str, value: str) -> None:
    result = run("emulator", "--stdio", option, value, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert f"Invalid value for '{option}'" in result.stderr and value in result.stderr
    assert "AT interface" not in result.stderr + result.stdout


def test_identities_of_the_right_length_are_accepted() -> None:
    result = run("emulator", "--stdio", "--imei", "869975030000461", "--imsi", "1064826326459",
                 stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_emulator_reads_at_lines_from_a_redirected_file(tmp_path: Path) -> None:
    lines = tmp_path / "lines.at"
    lines.write_bytes(b"ATE0\r\nAT+CGSN=1\r\nAT+CIMI\r\n")
    with lines.open("rb") as stdin:
        result = run("emulator", "--stdio", "--model", "MN316", "--imsi", "460041234567890", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert '+CGSN: "869975030000461"' in result.stdout and "460041234567890" in result.stdout
    assert "Traceback" not in result.stderr


def test_emulator_with_empty_input_ends_cleanly() -> None:
    with open(os.devnull, "rb") as stdin:
        result = run("emulator", "--stdio", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "AT interface: stdio" in result.stderr and "Traceback" not in result.stderr


def _commands() -> list[list[str]]:
    import typer

    from testbed.cli import app

    root = typer.main.get_command(app)
    found: list[list[str]] = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found += [[name, sub] for sub in subcommands]
        else:
            found.append([name])
    return found


def test_help_texts_reflow_and_every_option_shows_its_type() -> None:
    """On a wide terminal each paragraph of a command's description is one line (no hard line
    break mid-sentence), and every option of the options panel names its type."""
    import typer

    from testbed.cli import app

    root = typer.main.get_command(app)
    commands = _commands()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda words: run(*words, "--help"), commands))
    for words, result in zip(commands, results, strict=True):
        assert result.returncode == 0, words
        command = root
        for word in words:
            command = command.commands[word]  # type: ignore[attr-defined]
        text = result.stdout
        for paragraph in (command.help or "").split("\n\n"):
            flat = " ".join(paragraph.replace("`", "").split())
            assert any(flat in " ".join(line.split()) for line in text.splitlines()), (words, flat, text)
        options = [line for line in text.splitlines() if re.match(r"^│ +--[a-z]", line)]
        assert options, (words, text)
        for line in options:
            assert re.search(r"<[a-z][a-z ]*(\[[a-z]+\])?>", line), (words, line)
