"""Durability under SIGKILL (acknowledge after commit, RFC 7252 §4.2): a server *process* on
PostgreSQL is killed mid-load and restarted on the same database and port, while emulated
devices keep sending confirmable notifications.

Afterwards every notification a device saw acknowledged is in the datapoints table exactly once,
registrations survived (the restarted server re-observes every device, which goes on being
acknowledged), and nothing is stored twice. The only datapoints without a device-side ACK are
those in flight at the moment of the kill (committed, the ACK not yet sent — the two generals'
problem: no protocol can tell the device), at most one per device, since a device has one
confirmable notification outstanding at a time (NSTART = 1, RFC 7252 §4.7)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import pytest
from aiocoap.numbers.constants import TransportTuning

from emulator.client.client import Lwm2mClient
from lwm2m.node import SingleResource
from lwm2m.numbers import ResourceType
from server.store.repository import Store
from tests.integration.test_faults_loss import TEMPERATURE, make_client

pytestmark = pytest.mark.postgres

ROOT = FsPath(__file__).resolve().parents[2]
DEVICES = 20
KILL_AFTER_ACKS = 200
ACKS_AFTER_RESTART = 200

# The server process: start on the given database and port, observe each device that registers,
# print READY, run until killed.
SERVER_SCRIPT = """
import asyncio, sys
from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings, Settings

async def main() -> None:
    settings = Settings(
        database_url=sys.argv[1],
        listeners=[ListenerSettings(name="default", host="127.0.0.1", port=int(sys.argv[2]), dtls_port=None)],
        request_timeout=5.0,
    )
    server = Lwm2mServer(settings)
    await server.start()

    async def observe(reg, _reason):
        await server.observe(reg.endpoint, "/3303/0/5700")

    server.registrations.on_register(observe)
    print("READY", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def fast_retransmissions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Device side only: a notification to a dead server fails in ~2 s instead of ~45 s.
    monkeypatch.setattr(TransportTuning, "ACK_TIMEOUT", 0.1)
    yield


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_server_process(database_url: str, port: int) -> asyncio.subprocess.Process:
    root = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVER_SCRIPT,
        database_url,
        str(port),
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line.strip() == b"READY", line
    return process


@dataclass
class Tally:
    acked: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)
    acked_after_restart: Counter[int] = field(default_factory=Counter)
    restarted: bool = False

    def total(self) -> int:
        return len(self.acked)


async def keep_notifying(index: int, client: Lwm2mClient, tally: Tally, stop: asyncio.Event) -> None:
    sequence = 0
    while not stop.is_set():
        if not client.observations:
            await asyncio.sleep(0.05)
            continue
        value = index * 100_000 + sequence + 0.5
        sequence += 1
        node = SingleResource(5700, value, ResourceType.FLOAT)
        futures = await client.notify(max(client.observations), node, confirmable=True)
        if not futures:
            continue
        if await futures[0]:
            tally.acked.append(value)
            if tally.restarted:
                tally.acked_after_restart[index] += 1
        else:
            tally.failed.append(value)
            await asyncio.sleep(0.05)


async def wait_until(predicate: object, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_sigkill_mid_load_loses_no_acknowledged_notify_and_stores_none_twice(
    postgres_url: str, fast_retransmissions: None
) -> None:
    port = free_udp_port()
    process = await start_server_process(postgres_url, port)
    clients = [make_client(f"kill-{i:02d}", ("127.0.0.1", port)) for i in range(DEVICES)]
    tally = Tally()
    stop = asyncio.Event()
    loops: list[asyncio.Task[None]] = []
    try:
        for client in clients:
            await client.start()
        await asyncio.gather(*(client.register() for client in clients))
        await wait_until(lambda: all(c.observations for c in clients), 10)
        loops = [asyncio.create_task(keep_notifying(i, c, tally, stop)) for i, c in enumerate(clients)]
        await wait_until(lambda: tally.total() >= KILL_AFTER_ACKS, 20)

        process.send_signal(signal.SIGKILL)
        await process.wait()
        killed_at = tally.total()
        await asyncio.sleep(0.5)
        tally.restarted = True
        process = await start_server_process(postgres_url, port)
        await wait_until(
            lambda: (
                tally.total() >= killed_at + ACKS_AFTER_RESTART and len(tally.acked_after_restart) == DEVICES
            ),
            30,
        )
        stop.set()
        await asyncio.wait_for(asyncio.gather(*loops), 10)
    finally:
        stop.set()
        for task in loops:
            task.cancel()
        for client in clients:
            await client.stop()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()

    store = await Store.open(postgres_url, migrate=False)
    try:
        stored: Counter[float] = Counter()
        for client in clients:
            points = await store.datapoints(client.settings.endpoint, str(TEMPERATURE), limit=100_000)
            stored.update(p.value for p in points if p.source == "notify")
        registrations = {reg.endpoint for reg in await store.load_registrations()}
    finally:
        await store.close()

    assert registrations == {c.settings.endpoint for c in clients}
    assert not [value for value, count in stored.items() if count > 1], "a notify was stored twice"
    acked = set(tally.acked)
    assert len(acked) == len(tally.acked)
    lost = acked - set(stored)
    assert not lost, f"{len(lost)} acknowledged notifies are missing from the database"
    unacknowledged = set(stored) - acked
    assert unacknowledged <= set(tally.failed)
    assert len(unacknowledged) <= DEVICES
    # The module-side count of acknowledged notifies is the database's, less what was in flight.
    assert len(stored) - len(unacknowledged) == len(tally.acked)
