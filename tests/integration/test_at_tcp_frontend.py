"""The AT TCP front-end (emulator/frontends/tcp.py) as a serial line: a new connection takes over
from the current one (which is closed), and every connection starts on an empty line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from emulator.frontends.tcp import serve_tcp
from emulator.runner import EmulatedModule

IMEI = "869975030000461"


@pytest.fixture
async def address() -> AsyncIterator[tuple[str, int]]:
    module = EmulatedModule("ML307R", imei=IMEI)
    await module.start()
    server = await serve_tcp(module, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    yield host, port
    await module.stop()


async def read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    seen = b""
    async with asyncio.timeout(5):
        while marker not in seen:
            chunk = await reader.read(4096)
            assert chunk, f"closed before {marker!r}: {seen!r}"
            seen += chunk
    return seen


async def test_a_new_connection_takes_over_and_the_old_one_is_closed(address: tuple[str, int]) -> None:
    old_reader, old_writer = await asyncio.open_connection(*address)
    old_writer.write(b"ATE0\r\n")
    await read_until(old_reader, b"OK\r\n")
    new_reader, new_writer = await asyncio.open_connection(*address)
    async with asyncio.timeout(5):
        assert await old_reader.read() == b""  # closed by the module's side
    new_writer.write(b"AT+CGSN=1\r\n")
    answer = await read_until(new_reader, b"OK\r\n")
    assert IMEI.encode() in answer
    old_writer.close()
    new_writer.close()


async def test_probe_then_immediate_reconnect_is_served(address: tuple[str, int]) -> None:
    """A driver that opens the port to see that it is there and reconnects at once, while the
    probe's close is still in flight (here: not yet sent)."""
    _probe_reader, probe = await asyncio.open_connection(*address)
    reader, writer = await asyncio.open_connection(*address)
    probe.close()
    writer.write(b"AT\r\n")
    assert b"OK\r\n" in await read_until(reader, b"OK\r\n")
    writer.close()


async def test_every_connection_starts_with_an_empty_line(address: tuple[str, int]) -> None:
    first_reader, first = await asyncio.open_connection(*address)
    first.write(b"ATE0\r\n")
    await read_until(first_reader, b"OK\r\n")
    first.write(b"AT+CG")  # half a line, then the MCU goes away
    await first.drain()
    first.close()
    await first.wait_closed()
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"SN=1\r\n")  # would complete "AT+CGSN=1" if the half line survived
    answer = await read_until(reader, b"ERROR\r\n")
    assert IMEI.encode() not in answer
    writer.write(b"AT+CGSN=1\r\n")
    assert IMEI.encode() in await read_until(reader, b"OK\r\n")
    writer.close()
