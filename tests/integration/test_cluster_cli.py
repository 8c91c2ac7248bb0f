"""`testbed server` cluster options: bad input is a one-line usage error, never a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from testbed.cli import app


def _server(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["server", *args])
    return result.exit_code, result.output


def test_a_node_id_without_a_cluster_says_what_is_missing() -> None:
    code, output = _server("--node-id", "A")
    assert code == 2 and "--cluster" in output and "Traceback" not in output


def test_a_cluster_node_needs_a_node_id_and_a_nats_url() -> None:
    code, output = _server("--cluster", "nats://127.0.0.1:4222")
    assert code == 2 and "--node-id" in output
    code, output = _server("--cluster", "http://127.0.0.1:4222", "--node-id", "A")
    assert code == 2 and "NATS URL" in output


def test_cluster_nodes_refuse_a_database_they_cannot_share() -> None:
    code, output = _server(
        "--cluster", "nats://127.0.0.1:4222", "--node-id", "A", "--db", "sqlite+aiosqlite:///./x.db"
    )
    assert code == 2 and "PostgreSQL" in output
