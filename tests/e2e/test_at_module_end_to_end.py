"""The emulated module end to end: AT bytes over the TCP and PTY front-ends, the real LwM2M client
over UDP on loopback, a real `Lwm2mServer` with SQLite. Flows from the manual: §4.6
AT+MIPLCREATEEX, §3.3 AT+MIPLADDOBJ, §3.6 AT+MIPLOPEN (+MIPLEVENT: 0,6), §3.10 / §3.11
+MIPLREAD / AT+MIPLREADRSP, §3.8 AT+MIPLCLOSE (+MIPLEVENT: 0,15)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
import serial

from emulator.frontends.pty import open_pty
from emulator.frontends.tcp import serve_tcp
from emulator.runner import EmulatedModule
from lwm2m.node import SingleResource
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory

IMEI = "869975030000461"


@pytest.fixture
async def emulated() -> AsyncIterator[EmulatedModule]:
    module = EmulatedModule("ML307R", imei=IMEI, request_timeout=3.0)
    await module.start()
    yield module
    await module.stop()


class AtLink:
    """The MCU's side of the TCP front-end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""

    async def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r")
        await self.writer.drain()

    async def expect(self, text: str, timeout: float = 5.0) -> str:
        """Read until `text` appears; returns everything up to and including it."""
        async with asyncio.timeout(timeout):
            while text.encode() not in self.received:
                chunk = await self.reader.read(4096)
                assert chunk, "connection closed"
                self.received += chunk
        head, _, tail = self.received.partition(text.encode())
        self.received = tail
        return (head + text.encode()).decode()

    async def command(self, line: str, final: str = "OK") -> str:
        await self.send(line)
        return await self.expect(f"\r\n{final}\r\n")


async def connect(module: EmulatedModule) -> AtLink:
    server = await serve_tcp(module, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    reader, writer = await asyncio.open_connection(host, port)
    return AtLink(reader, writer)


async def open_login(link: AtLink, server: Lwm2mServer) -> str:
    _host, port = server.listeners["default"].address
    created = await link.command(f'AT+MIPLCREATEEX="127.0.0.1:{port}",2')
    assert "+MIPLCREATEEX: 0" in created
    await link.command('AT+MIPLADDOBJ=0,3303,1,"1",1,0')
    await link.command("AT+MIPLOPEN=0,3600")
    await link.expect("+MIPLEVENT: 0,6\r\n")
    (registration,) = server.registered()
    assert IMEI in registration.endpoint
    return registration.endpoint


async def test_open_over_tcp_registers_the_module_with_the_server(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    link = await connect(emulated)
    endpoint = await open_login(link, server)
    registration = server.registration(endpoint)
    assert registration is not None
    assert registration.lifetime == 3600
    assert "</3303/0>" in registration.object_links
    link.writer.close()


async def test_server_read_is_answered_by_the_mcu_over_tcp(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    link = await connect(emulated)
    endpoint = await open_login(link, server)
    read = asyncio.create_task(server.read(endpoint, "/3303/0/5700"))
    urc = await link.expect(",3303,0,5700\r\n")
    match = re.search(r"\+MIPLREAD: 0,(\d+),3303,0,5700\r\n$", urc)
    assert match is not None
    mid = int(match.group(1))
    await link.command(f'AT+MIPLREADRSP=0,{mid},1,3303,0,5700,4,4,"21.5",0,0')
    node = await asyncio.wait_for(read, 5.0)
    assert isinstance(node, SingleResource) and node.value == 21.5
    link.writer.close()


async def test_close_over_tcp_deregisters(emulated: EmulatedModule, server_factory: ServerFactory) -> None:
    server: Lwm2mServer = await server_factory()
    link = await connect(emulated)
    endpoint = await open_login(link, server)
    await link.command("AT+MIPLCLOSE=0")
    await link.expect("+MIPLEVENT: 0,15\r\n")
    assert server.registration(endpoint) is None
    link.writer.close()


async def test_open_reports_failure_when_no_server_answers(emulated: EmulatedModule) -> None:
    link = await connect(emulated)
    await link.command('AT+MIPLCREATEEX="127.0.0.1:9",2')
    await link.command('AT+MIPLADDOBJ=0,3303,1,"1",1,0')
    await link.command("AT+MIPLOPEN=0,3600,5")
    # No server: the Register gets an ICMP error (or no answer); the ML307R shows both as 7.
    events = await link.expect("+MIPLEVENT: 0,7\r\n", timeout=6.0)
    assert "+MIPLEVENT: 0,6" not in events
    link.writer.close()


async def test_module_expect_reads_output_in_order(emulated: EmulatedModule) -> None:
    emulated.feed(b"AT\rAT+CGSN=1\r")
    assert (await emulated.expect(r"\r\nOK\r\n")).group(0) == "\r\nOK\r\n"
    assert (await emulated.expect(r"\+CGSN: \"(\d+)\"")).group(1) == IMEI
    with pytest.raises(TimeoutError):
        await emulated.expect(r"\+CGSN", timeout=0.1)


async def test_pty_opens_with_pyserial_and_answers_at(emulated: EmulatedModule) -> None:
    path = open_pty(emulated)
    assert path.startswith("/dev/")
    port = serial.Serial(path, timeout=0)
    try:
        port.write(b"AT\r")
        received = b""
        async with asyncio.timeout(3.0):
            while b"OK\r\n" not in received:
                await asyncio.sleep(0.02)
                received += port.read(256)
        assert received.endswith(b"\r\nOK\r\n")
    finally:
        port.close()
