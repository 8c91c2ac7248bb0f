"""The fuzzers together against one running server (RFC 7252 §3 message format, RFC 6347 §4.1
record layer, manual §2.2 AT lines): random and mutated datagrams at the CoAP port and at the DTLS
port while devices are registered and an AT module drives the real client through random lines.
Afterwards nothing was logged at ERROR level (no unhandled exception anywhere), every registered
device still answers a read, and the module still answers `AT`."""

from __future__ import annotations

import asyncio
import logging
import random
import socket

import pytest

from emulator.client.client import Lwm2mClient
from emulator.client.dtls import DtlsClientTunnel
from emulator.client.settings import ClientSettings
from emulator.runner import EmulatedModule
from lwm2m.node import SingleResource
from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.integration.test_datagram_fuzz import _mutations
from tests.integration.test_faults_loss import MODEL, make_client, make_tree
from tests.unit.emulator.test_at_fuzz import SEEDS
from tests.unit.emulator.test_at_fuzz_100k import mutate

COAP_DATAGRAMS = 1500
DTLS_DATAGRAMS = 1500
AT_LINES = 400
PSK = b"fuzz-psk-0000001"


def dtls_datagrams(rng: random.Random, count: int) -> list[bytes]:
    """Random bytes, and records with a valid DTLS 1.2 header (handshake, alert, application
    data, change cipher spec) around random, truncated or oversized bodies."""
    out: list[bytes] = []
    for i in range(count):
        if i % 2 == 0:
            out.append(rng.randbytes(rng.randint(0, 120)))
            continue
        content_type = rng.choice([20, 21, 22, 23, 24])
        epoch = rng.choice([0, 0, 1])
        body = rng.randbytes(rng.randint(0, 90))
        length = len(body) if rng.random() < 0.7 else rng.randrange(65536)
        header = bytes([content_type, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + rng.randbytes(6)
        out.append(header + length.to_bytes(2, "big") + body)
    return out


async def spray(address: tuple[str, int], datagrams: list[bytes]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        for i, datagram in enumerate(datagrams):
            sock.sendto(datagram, address)
            if i % 100 == 0:
                await asyncio.sleep(0.005)
    finally:
        sock.close()


async def at_fuzz(module: EmulatedModule, rng: random.Random, server_port: int) -> None:
    seeds = [*SEEDS, f'AT+MIPLCREATEEX="127.0.0.1:{server_port}",2', "AT+MIPLOPEN=0,3600", "AT+MIPLCLOSE=0"]
    for _ in range(AT_LINES):
        line = mutate(rng, rng.choice(seeds)) if rng.random() < 0.8 else rng.choice(seeds)
        module.feed(line.encode("utf-8", "replace") + b"\r\n")
        await asyncio.sleep(0)


async def read_manufacturer(server: Lwm2mServer, endpoint: str) -> object:
    node = await server.read(endpoint, "/3/0/0")
    assert isinstance(node, SingleResource)
    return node.value


async def test_fuzzing_every_port_and_the_at_interface_leaves_no_error_and_every_device_readable(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server: Lwm2mServer = await server_factory(
        listeners=[ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0)]
    )
    coap = server.listeners["default"].address
    dtls = server.dtls["default"].address
    await server.set_psk("fuzz-dtls", "fuzz-dtls", PSK.decode())
    plain = [make_client(f"fuzz-plain-{i}", coap) for i in range(3)]
    tunnel = DtlsClientTunnel(dtls, b"fuzz-dtls", PSK, handshake_timeout=5)
    tree = make_tree()
    secure: Lwm2mClient | None = None
    module = EmulatedModule("ML307R", imei="869975030000999", request_timeout=3.0)
    try:
        for client in plain:
            await client.start()
            await client.register()
        await tunnel.start()
        secure = Lwm2mClient(
            ClientSettings(
                endpoint="fuzz-dtls",
                remote_override=tunnel.plain_address,
                lifetime=300,
                lwm2m_version="1.1",
                object_links=tree.object_links,
                request_timeout=5.0,
            ),
            tree,
            MODEL,
        )
        await secure.start()
        await secure.register()
        await module.start()

        rng = random.Random(20261128)
        await asyncio.gather(
            spray(coap, _mutations(rng, COAP_DATAGRAMS)),
            spray(dtls, dtls_datagrams(rng, DTLS_DATAGRAMS)),
            at_fuzz(module, random.Random(5), coap[1]),
        )
        await asyncio.sleep(0.5)

        endpoints = [c.settings.endpoint for c in plain] + ["fuzz-dtls"]
        for endpoint in endpoints:
            assert server.registration(endpoint) is not None
            assert await read_manufacturer(server, endpoint) == "China Mobile"
        module.feed(b"AT\r\n")
        await module.expect(r"\r\nOK\r\n", timeout=5)
        assert server.listeners["default"].counters.malformed_datagrams > 100
        assert server.listeners["default"].counters.handler_errors == 0
    finally:
        await module.stop()
        if secure is not None:
            await secure.stop()
        await tunnel.close()
        for client in plain:
            await client.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
