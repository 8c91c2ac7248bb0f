"""Thousands of random and mutated datagrams at the CoAP listener: nothing crashes, garbage is
dropped and counted, bad requests are answered 4.00, and the listener keeps serving."""

from __future__ import annotations

import asyncio
import random
import socket

from aiocoap.numbers.codes import Code

from server.lwm2m_server import Lwm2mServer
from tests.integration.coap_peer import RawPeer

DATAGRAMS = 3000


def _valid_register(mid: int) -> bytes:
    # CON POST, token 0x42, Uri-Path "rd", Content-Format 40, Uri-Query "ep=fz", payload marker.
    header = bytes([0x41, 0x02, mid >> 8, mid & 0xFF, 0x42])
    options = bytes([0xB2]) + b"rd" + bytes([0x11, 40]) + bytes([0x35]) + b"ep=fz"
    return header + options + b"\xff" + b"</3/0>"


def _mutations(rng: random.Random, count: int) -> list[bytes]:
    seeds = [_valid_register(i) for i in range(16)]
    out: list[bytes] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            out.append(rng.randbytes(rng.randint(0, 64)))
        elif kind == 1:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            out.append(bytes(data))
        elif kind == 2:
            data = rng.choice(seeds)
            out.append(data[: rng.randrange(len(data))])
        else:
            out.append(
                bytes([0x40 | rng.randrange(16), rng.randrange(256)]) + rng.randbytes(rng.randint(2, 40))
            )
    return out


async def test_random_datagrams_never_stop_the_listener(server: Lwm2mServer) -> None:
    listener = server.listeners["default"]
    rng = random.Random(7)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        for i, datagram in enumerate(_mutations(rng, DATAGRAMS)):
            sock.sendto(datagram, listener.address)
            if i % 200 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
    finally:
        sock.close()
    assert listener.counters.malformed_datagrams > 100
    assert listener.counters.handler_errors == 0
    peer = await RawPeer.create(listener.address)
    try:
        response = await peer.request(Code.POST, "/rd", ("ep=after-fuzz",), b"</3/0>", 40)
        assert response.code == Code.CREATED
    finally:
        await peer.close()
    assert server.registration("after-fuzz") is not None
