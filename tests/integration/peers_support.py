"""Independent LwM2M clients (npm packages under tests/peers/) as test peers: installed from the
checked-in lockfile on first use (`npm ci`), started as Node processes against a server on
loopback, driven by JSON lines on stdin and heard through JSON lines on stdout (the drivers in
tests/peers/ document their commands). Without Node.js or npm, or when the install fails, the
tests skip with the reason; under CI=true they fail."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import shutil
import subprocess
from pathlib import Path as FsPath
from typing import Any

from tests.support import missing

PEERS = FsPath(__file__).resolve().parents[1] / "peers"
INSTALLED_MARK = PEERS / "node_modules" / ".package-lock.json"


def ensure_installed() -> str:
    """The `node` executable, with the peers installed (once, under a file lock)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing("Node.js and npm are needed for the independent LwM2M clients (Debian packages nodejs, npm)")
        raise AssertionError("unreachable")
    with open(PEERS / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _up_to_date():
            result = subprocess.run(
                [npm, "ci", "--prefix", str(PEERS), "--ignore-scripts", "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0 or not _up_to_date():
                tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                missing(f"npm ci --prefix tests/peers failed: {' / '.join(tail)}")
    return node


def _up_to_date() -> bool:
    lockfile = PEERS / "package-lock.json"
    return INSTALLED_MARK.exists() and INSTALLED_MARK.stat().st_mtime >= lockfile.stat().st_mtime


class PeerClient:
    """One Node driver process: `command()` sends a command and returns its reply; events (lines
    with "event") are kept in `events`; anything else the process prints is ignored."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._event_arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, driver: str, host: str, port: int, endpoint: str) -> PeerClient:
        node = ensure_installed()
        process = await asyncio.create_subprocess_exec(
            node,
            str(PEERS / driver),
            host,
            str(port),
            endpoint,
            cwd=str(PEERS),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = cls(process)
        await client.wait_for_event("ready", timeout=15)
        return client

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if "reply" in message:
                await self._replies.put(message)
            elif "event" in message:
                self.events.append(message)
                self._event_arrived.set()

    async def command(self, cmd: str, timeout: float = 10, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.process.stdin.drain()
        async with asyncio.timeout(timeout):
            reply = await self._replies.get()
        assert reply["reply"] == cmd, reply
        return reply

    async def wait_for_event(self, name: str, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = [e for e in self.events if e["event"] == name]
                if found:
                    self.events.remove(found[0])
                    return found[0]
                self._event_arrived.clear()
                if self.process.returncode is not None:
                    raise AssertionError(f"the peer exited with {self.process.returncode}")
                await self._event_arrived.wait()

    async def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
