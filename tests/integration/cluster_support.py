"""Cluster test kit: server nodes as subprocesses (`testbed server --node-id ... --cluster ...`) on
a fresh PostgreSQL database and a NATS server, and a private nats-server for tests that stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

import httpx

from emulator.client.client import Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from emulator.fleet import build_device_tree
from lwm2m.model.builtin import builtin_registry
from tests.support import NATS_HOST, NATS_PORT, missing, nats_available

ADMIN_KEY = "cluster-admin-key-for-tests"
ROOT = FsPath(__file__).resolve().parents[2]


def shared_nats_url() -> str:
    if not nats_available():
        missing(f"NATS is not reachable at {NATS_HOST}:{NATS_PORT} (Debian package nats-server)")
    return f"nats://{NATS_HOST}:{NATS_PORT}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateNats:
    """A nats-server of the test's own on an ephemeral port: it may be killed and restarted
    (the machine's shared one never is)."""

    def __init__(self, workdir: FsPath) -> None:
        binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
        if binary is None:
            missing("nats-server is not installed (Debian package nats-server)")
        self.binary = str(binary)
        self.port = free_port()
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-l",
            str(self.workdir / "nats.log"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(100):
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("private nats-server did not start")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


@dataclass
class Node:
    node_id: str
    process: asyncio.subprocess.Process
    http_url: str
    coap: tuple[str, int]
    lines: list[str] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http_url, headers={"api-key": ADMIN_KEY}, timeout=30)

    def kill(self) -> None:
        """SIGKILL: the node dies without any goodbye."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
        await self.process.wait()


async def start_node(
    node_id: str, database_url: str, nats_url: str, workdir: FsPath, cluster_name: str
) -> Node:
    env = {**os.environ, "TESTBED_API_KEY": ADMIN_KEY, "TESTBED_REQUEST_TIMEOUT": "5"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testbed.cli",
        "server",
        "--node-id",
        node_id,
        "--cluster",
        nats_url,
        "--db",
        database_url,
        "--port",
        "0",
        "--http-port",
        "0",
        "--quiet",
        "--cluster-name",
        cluster_name,
        cwd=str(workdir),
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while True:
            raw = await asyncio.wait_for(process.stdout.readline(), 60)
            if not raw:
                raise RuntimeError(f"node {node_id} exited: {''.join(lines)}")
            line = raw.decode(errors="replace")
            lines.append(line)
            if line.startswith(f"node {node_id} ready "):
                break
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    words = line.split()
    http_url, coap = words[3], words[4]
    host, port = coap.removeprefix("coap://").rsplit(":", 1)
    node = Node(node_id, process, http_url, (host, int(port)), lines)
    asyncio.get_running_loop().create_task(_drain(process, lines))
    return node


async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    while raw := await process.stdout.readline():
        lines.append(raw.decode(errors="replace"))


@contextlib.asynccontextmanager
async def nodes(
    ids: list[str], database_url: str, nats_url: str, workdir: FsPath
) -> AsyncIterator[dict[str, Node]]:
    """Start the nodes one after the other (the first one migrates the database), as a cluster
    of a name of their own (tests may share the NATS server)."""
    started: dict[str, Node] = {}
    name = f"test-{uuid.uuid4().hex[:10]}"
    try:
        for node_id in ids:
            started[node_id] = await start_node(node_id, database_url, nats_url, workdir, name)
        yield started
    finally:
        for node in started.values():
            await node.stop()


# --- devices --------------------------------------------------------------------------------------


@dataclass
class Device:
    endpoint: str
    client: Lwm2mClient
    tree: ObjectTreeHandler

    def point_at(self, node: Node) -> None:
        """The load balancer now sends this device's datagrams to `node`."""
        self.client.settings = replace(
            self.client.settings, server_host=node.coap[0], server_port=node.coap[1]
        )


async def start_device(endpoint: str, node: Node, **settings: Any) -> Device:
    model = builtin_registry()
    tree = build_device_tree(model, endpoint)
    client = Lwm2mClient(
        ClientSettings(
            endpoint=endpoint,
            server_host=node.coap[0],
            server_port=node.coap[1],
            lifetime=300,
            object_links=tree.object_links,
            **settings,
        ),
        tree,
        model,
    )
    await client.start()
    await client.register()
    return Device(endpoint, client, tree)


async def device_id(api: httpx.AsyncClient, endpoint: str, attempts: int = 100) -> int:
    """The device id of `endpoint` as the node behind `api` knows it (once it learned it)."""
    for _ in range(attempts):
        response = await api.get("/api/v1/devices")
        assert response.status_code == 200, response.text
        body = response.json()
        items = body["items"] if isinstance(body, dict) else body
        for item in items:
            if item.get("endpoint") == endpoint:
                return int(item["id"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{endpoint} never appeared on {api.base_url}")
