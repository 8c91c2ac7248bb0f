"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs on these
machines): the compose tool validates and normalises the file (`docker compose config`, or the
standalone `docker-compose config`), and the parsed file must hold what a team's private cloud
needs: PostgreSQL with a health check, the server waiting for it and migrating before it starts,
an emulator fleet, the carrier host names as network aliases, the CoAP/DTLS/HTTP ports."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import missing

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CARRIER_HOSTS = {
    "nbiotbt.heclouds.com",
    "nbiotacc.heclouds.com",
    "api.heclouds.com",
    "lwm2m.ctwing.cn",
    "dmp-coap.cuiot.cn",
    "iot-coaps.cn-north-4.myhuaweicloud.com",
}


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        missing("PyYAML is not installed (Python package pyyaml)")
        raise
    return yaml


def compose_command() -> list[str]:
    """`docker compose` when the plugin exists, else `docker-compose`; skip (fail under CI) if neither."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is not None:
        return [standalone]
    missing(
        "neither the docker compose plugin nor docker-compose is installed (Debian package docker-compose)"
    )
    raise AssertionError("unreachable")


def run_config(compose_file: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTBED_", "COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [*compose_command(), "-f", str(compose_file), "-p", "lwm2m-testbed", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=compose_file.parent,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = _yaml().safe_load(COMPOSE_FILE.read_text())
    return loaded


def published_ports(service: dict[str, Any]) -> set[str]:
    """Ports as "published:target/protocol", from the short or the long syntax."""
    result = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            protocol = port.get("protocol", "tcp")
            result.add(f"{port['published']}:{port['target']}/{protocol}")
        else:
            text = str(port)
            result.add(text if "/" in text else f"{text}/tcp")
    return result


def test_compose_tool_validates_and_normalises_the_file() -> None:
    result = run_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    normalised = _yaml().safe_load(result.stdout)
    services = normalised["services"]
    # The `cluster` profile's services are checked by tests/integration/test_compose_cluster.py.
    assert {name for name, spec in services.items() if spec.get("profiles") != ["cluster"]} == {
        "postgres",
        "server",
        "fleet",
        "module",
    }
    server = normalised["services"]["server"]
    assert published_ports(server) >= {"5683:5683/udp", "5684:5684/udp", "8080:8080/tcp"}
    assert normalised["services"]["module"]["profiles"] == ["modules"]  # not started by default


def test_compose_tool_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = COMPOSE_FILE.read_text().replace(
        "condition: service_healthy", "condition: when_it_feels_like_it", 1
    )
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = run_config(tmp_path / "docker-compose.yml")
    assert result.returncode != 0


def test_postgres_has_a_health_check_and_the_server_waits_for_it(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    server = compose["services"]["server"]
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert server["environment"]["TESTBED_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in server["environment"]["TESTBED_DATABASE_URL"]
    assert server["environment"]["TESTBED_PUSH_ALLOW_PRIVATE"] == "false"  # issue 13: push policy


def test_server_migrates_the_database_before_it_starts(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["server"]["command"])
    assert "testbed db upgrade" in command and "testbed up" in command
    assert command.index("testbed db upgrade") < command.index("testbed up")
    assert "&&" in command.split("testbed db upgrade", 1)[1].split("testbed up", 1)[0]
    assert "--host 0.0.0.0" in command


def test_server_publishes_coap_dtls_and_http_and_is_health_checked(compose: dict[str, Any]) -> None:
    server = compose["services"]["server"]
    assert published_ports(server) == {
        "5683:5683/udp",
        "5684:5684/udp",
        "5685-5694:5685-5694/udp",  # the carriers' CoAP/DTLS pairs (server.settings.CARRIER_PORTS)
        "8080:8080/tcp",
    }
    assert "8080" in " ".join(server["healthcheck"]["test"])
    assert server["build"] == "."


def test_server_answers_to_every_carrier_host_name(compose: dict[str, Any]) -> None:
    networks = compose["services"]["server"]["networks"]
    aliases = {alias for network in networks.values() for alias in (network or {}).get("aliases", [])}
    assert aliases == CARRIER_HOSTS
    for name in ("postgres", "fleet", "module"):
        assert set(compose["services"][name]["networks"]) <= set(networks)


def test_fleet_registers_through_a_carrier_host_name_once_the_server_is_healthy(
    compose: dict[str, Any],
) -> None:
    fleet = compose["services"]["fleet"]
    command = fleet["command"]
    assert command[:2] == ["testbed", "fleet"]
    assert command[command.index("--server-host") + 1] in CARRIER_HOSTS
    assert fleet["depends_on"]["server"]["condition"] == "service_healthy"
    assert fleet["image"] == compose["services"]["server"]["image"]


def test_dockerfile_builds_the_package_from_the_tree_it_copies() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert lines[[line.startswith("FROM") for line in lines].index(True)] == "FROM python:3.11-slim"
    assert "EXPOSE 5683/udp 5684/udp 5685-5694/udp 8080" in lines
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    text = "\n".join(lines)
    assert "pip install -e ." in text  # migrations/ and web/ are found next to the packages
    assert "testbed up --host 0.0.0.0" in text and "$TESTBED_DATABASE_URL" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "data"} <= set(ignored)
