"""docker-compose.yml's `cluster` profile: NATS with JetStream and two server nodes on the same
PostgreSQL, validated by the compose tool (`--profile cluster config`) without a Docker engine."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.integration.test_compose_file import COMPOSE_FILE, _yaml, compose_command, published_ports


def _cluster_config() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTBED_", "COMPOSE_", "DOCKER_"))}
    result = subprocess.run(
        [
            *compose_command(),
            "-f",
            str(COMPOSE_FILE),
            "-p",
            "lwm2m-testbed",
            "--profile",
            "cluster",
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=COMPOSE_FILE.parent,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = _yaml().safe_load(result.stdout)
    return config


def test_the_cluster_profile_runs_nats_and_two_nodes_on_the_shared_database() -> None:
    services = _cluster_config()["services"]
    assert "-js" in services["nats"]["command"]
    commands = {name: " ".join(services[name]["command"]) for name in ("node-a", "node-b")}
    for name, command in commands.items():
        assert "--cluster nats://nats:4222" in command, name
        assert "postgresql+asyncpg://testbed:testbed@postgres:5432/testbed" in str(
            services[name]["environment"]
        )
        assert services[name]["profiles"] == ["cluster"]
    assert "--node-id a" in commands["node-a"] and "--node-id b" in commands["node-b"]
    # Only the first node migrates; the second waits until the first is healthy.
    assert "db upgrade" in commands["node-a"] and "db upgrade" not in commands["node-b"]
    assert services["node-b"]["depends_on"]["node-a"]["condition"] == "service_healthy"
    ports_a, ports_b = published_ports(services["node-a"]), published_ports(services["node-b"])
    assert ports_a.isdisjoint(ports_b)
    assert {p.split(":")[1] for p in ports_a} == {p.split(":")[1] for p in ports_b}
