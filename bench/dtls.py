"""Benchmark 4: DTLS 1.2 PSK (RFC 6347, RFC 4279; LwM2M Transport 1.1.1 §5.2.8) cost.

* Handshakes per second: N `DtlsClientTunnel`s handshaking concurrently with a `DtlsServer` that
  terminates DTLS in front of a bare aiocoap resource (no ceiling: nothing cheaper does DTLS).
* Secure read round trips per second: GET /3/0/0 through the established tunnels, beside the
  same plain GETs from the same aiocoap contexts straight to the resource; ratio secure/plain.
"""

from __future__ import annotations

import asyncio

from bench import coap
from bench.measure import Figure, LoadResult, Operation, run_closed_loop
from emulator.client.dtls import DtlsClientTunnel
from server.coap.dtls import DtlsServer

PSK = b"bench-psk-0123456789"


def _identity(n: int) -> bytes:
    return f"bench-{n:05d}".encode()


def _lookup(identity: bytes) -> bytes | None:
    return PSK if identity.startswith(b"bench-") else None


def _getters(contexts: list[coap.aiocoap.Context], targets: list[coap.Address]) -> list[Operation]:
    def make(context: coap.aiocoap.Context, target: coap.Address) -> Operation:
        async def op(_n: int) -> None:
            await coap.get(context, target, "/3/0/0")

        return op

    return [make(c, t) for c, t in zip(contexts, targets, strict=True)]


async def bench_dtls(clients: int, handshakes: int, reads: int) -> list[Figure]:
    backend_context, backend = await coap.bare_server()
    terminator = DtlsServer(("127.0.0.1", 0), backend, _lookup, handshake_timeout=20.0)
    await terminator.start()
    tunnels: list[DtlsClientTunnel] = []
    contexts: list[coap.aiocoap.Context] = []
    try:
        address = terminator.address

        async def handshake(n: int) -> None:
            tunnel = DtlsClientTunnel(address, _identity(n), PSK, handshake_timeout=20.0)
            tunnels.append(tunnel)
            await tunnel.start()

        handshake_load = await run_closed_loop([handshake] * clients, handshakes)
        established = [t for t in tunnels if t.established][:clients]
        contexts = await coap.client_contexts(len(established))
        secure_workers = _getters(contexts, [t.plain_address for t in established])
        plain_workers = _getters(contexts, [backend] * len(contexts))
        await run_closed_loop(plain_workers, min(reads, clients * 2))
        plain = await run_closed_loop(plain_workers, reads)
        await run_closed_loop(secure_workers, min(reads, clients * 2))
        secure = await run_closed_loop(secure_workers, reads)
    finally:
        await coap.shutdown(contexts)
        await asyncio.gather(*(t.close() for t in tunnels), return_exceptions=True)
        await terminator.stop()
        await coap.shutdown([backend_context])
    return _figures(handshake_load, secure, plain, clients, handshakes, reads)


def _figures(
    handshake: LoadResult, secure: LoadResult, plain: LoadResult, clients: int, handshakes: int, reads: int
) -> list[Figure]:
    return [
        Figure(
            benchmark="dtls",
            name=f"DTLS handshakes/s ({clients} concurrent, {handshakes} total)",
            value=handshake.rate,
            unit="hs/s",
            details={"clients": clients, "handshakes": handshake.summary()},
        ),
        Figure(
            benchmark="dtls",
            name=f"Secure reads/s vs plain ({clients} tunnels, {reads} total)",
            value=secure.rate,
            unit="reads/s",
            ceiling=plain.rate,
            details={"clients": clients, "secure": secure.summary(), "plain": plain.summary()},
        ),
    ]
