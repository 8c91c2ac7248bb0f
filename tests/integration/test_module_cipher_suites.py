"""Manual §4.6 note, lines 1253-1256, on the wire: the DTLS cipher suites each model's ClientHello
offers are exactly its row of the model table (emulator/module/models.py).

    MN316/MN316-S/MN316A/MN318/MN326的DTLS支持加密套件 TLS_PSK_WITH_AES_128_CBC_SHA256；
    MN319的DTLS支持加密套件 TLS_PSK_WITH_AES_128_CBC_SHA256、TLS_PSK_WITH_AES_128_CCM_8。

The module is driven by AT lines as an MCU drives it; its first datagram toward the carrier
address is read off a raw UDP socket on loopback and parsed as a DTLS 1.2 ClientHello (RFC 6347
4.2.1, RFC 5246 7.4.1.2). Then a DTLS server that accepts only TLS_PSK_WITH_AES_128_CCM_8, in
front of a real LwM2M server, gets a handshake (and a registration) from a model that offers it
and none from the others."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from emulator.client.dtls import DtlsClientTunnel
from emulator.module.basic import DEFAULT_IMEI, DEFAULT_IMSI
from emulator.module.models import CBC_SHA256, CCM_8, MODELS
from emulator.module.network import HostMap
from emulator.runner import EmulatedModule
from server.coap.dtls import DtlsServer
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory

IMEI = DEFAULT_IMEI
PSK = b"abcdefge"
# IANA TLS Cipher Suites registry: RFC 5487 (PSK CBC SHA256), RFC 6655 (CCM_8).
SUITE_CODES = {CBC_SHA256: 0x00AE, CCM_8: 0xC0A8}
# RFC 5746 §3.3: a signalling value in the cipher suite list, not a cipher suite.
RENEGOTIATION_INFO_SCSV = 0x00FF
# The manual names these models in the §4.6 note; the others' rows are the table's inference.
NAMED_IN_THE_MANUAL = {"MN316": (CBC_SHA256,), "MN316-S": (CBC_SHA256,), "MN316A": (CBC_SHA256,)}
NAMED_IN_THE_MANUAL |= {"MN318": (CBC_SHA256,), "MN326": (CBC_SHA256,), "MN319": (CBC_SHA256, CCM_8)}


def offered_suites(datagram: bytes) -> list[int]:
    """The cipher_suites of the ClientHello in the first record of `datagram`."""
    assert datagram[0] == 22 and datagram[1:3] == b"\xfe\xfd", "a DTLS 1.2 handshake record"
    handshake = datagram[13:]
    assert handshake[0] == 1, "a ClientHello"
    body = handshake[12:]
    offset = 2 + 32  # client_version, random
    offset += 1 + body[offset]  # session_id
    offset += 1 + body[offset]  # cookie
    (length,) = struct.unpack_from("!H", body, offset)
    return [struct.unpack_from("!H", body, offset + 2 + i)[0] for i in range(0, length, 2)]


@asynccontextmanager
async def module_at(model: str, hosts: HostMap) -> AsyncIterator[EmulatedModule]:
    module = EmulatedModule(model, imei=IMEI, request_timeout=3.0)
    module.hosts = hosts
    await module.start()
    try:
        yield module
    finally:
        await module.stop()


async def send(module: EmulatedModule, line: str) -> None:
    module.feed(line.encode() + b"\r")
    await module.expect(r"\r\nOK\r\n")


def test_the_model_table_keeps_the_suites_the_manual_names() -> None:
    for model, suites in NAMED_IN_THE_MANUAL.items():
        assert MODELS[model].cipher_suites == suites


def test_the_dtls_client_refuses_a_suite_it_could_not_offer_instead_of_leaving_it_out() -> None:
    """python-mbedtls drops unknown names from the ClientHello without a word; a misspelt suite in
    a model row would shrink the offer silently."""
    with pytest.raises(ValueError, match="TLS-PSK-WITH-AES-128-CCM8"):
        DtlsClientTunnel(
            ("127.0.0.1", 5684),
            b"id",
            PSK,
            ciphers=("TLS-PSK-WITH-AES-128-CBC-SHA256", "TLS-PSK-WITH-AES-128-CCM8"),
        )
    with pytest.raises(ValueError):
        DtlsClientTunnel(("127.0.0.1", 5684), b"id", PSK, ciphers=())


@pytest.mark.parametrize("model", sorted(MODELS))
async def test_client_hello_offers_exactly_the_suites_of_the_model_row(model: str) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wire:
        wire.bind(("127.0.0.1", 0))
        wire.setblocking(False)
        hosts = HostMap({"183.230.40.40:5684": wire.getsockname()})
        async with module_at(model, hosts) as module:
            await send(module, 'AT+MIPLCREATEEX="183.230.40.40:5684",0,,"abcdefge"')
            await send(module, "AT+MIPLOPEN=0,3000,30")
            datagram = await asyncio.wait_for(loop.sock_recv(wire, 4096), 5)
    offered = [code for code in offered_suites(datagram) if code != RENEGOTIATION_INFO_SCSV]
    assert offered == [SUITE_CODES[name] for name in MODELS[model].cipher_suites]


@pytest.fixture
async def ccm8_only(server_factory: ServerFactory) -> AsyncIterator[tuple[Lwm2mServer, DtlsServer]]:
    """A DTLS server accepting only TLS_PSK_WITH_AES_128_CCM_8 (PSK identity = the IMEI), in front
    of a real LwM2M server's plain listener."""
    server: Lwm2mServer = await server_factory()
    dtls = DtlsServer(
        ("127.0.0.1", 0),
        server.listeners["default"].address,
        {IMEI.encode(): PSK}.get,
        ciphers=("TLS-PSK-WITH-AES-128-CCM-8",),
        handshake_timeout=3.0,
    )
    await dtls.start()
    try:
        yield server, dtls
    finally:
        await dtls.stop()


async def test_a_ccm_8_only_server_gets_a_handshake_only_from_the_models_that_offer_ccm_8(
    ccm8_only: tuple[Lwm2mServer, DtlsServer],
) -> None:
    server, dtls = ccm8_only
    hosts = HostMap({"183.230.40.40:5684": dtls.address})
    for model in sorted(MODELS):
        async with module_at(model, hosts) as module:
            await send(module, 'AT+MIPLCREATEEX="183.230.40.40:5684",0,,"abcdefge"')
            await send(module, "AT+MIPLOPEN=0,3000,30")
            event = await module.expect(r"\+MIPLEVENT: 0,(6|7)\r\n", timeout=10)
            registered = server.registration(f"{IMEI};{DEFAULT_IMSI}") is not None
            if CCM_8 in MODELS[model].cipher_suites:
                assert event.group(1) == "6" and registered, model
                await send(module, "AT+MIPLCLOSE=0")
                await module.expect(r"\+MIPLEVENT: 0,15\r\n")
            else:
                assert event.group(1) == "7" and not registered, model
