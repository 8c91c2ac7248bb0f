"""DtlsServer behaviour on real loopback sockets: failures, IP aging, hostile input, bounds, eviction."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest

from emulator.client.dtls import DtlsClientTunnel, DtlsHandshakeError
from server.coap.dtls import DtlsSessionInfo
from tests.integration.dtls_helpers import (
    UdpRelay,
    client_hello,
    coap_get,
    cookie_from_hello_verify_request,
    dtls_stack,
    new_coap_client,
    wait_until,
)

PSK = b"secret-psk"


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.received.append(data)


async def _raw_sockets(
    count: int, target: tuple[str, int]
) -> list[tuple[asyncio.DatagramTransport, _Collector]]:
    loop = asyncio.get_running_loop()
    sockets = []
    for _ in range(count):
        transport, collector = await loop.create_datagram_endpoint(
            _Collector, local_addr=("127.0.0.1", 0), remote_addr=target
        )
        sockets.append((transport, collector))
    return sockets


async def _served(server_address: tuple[str, int], identity: bytes = b"dev") -> bool:
    tunnel = DtlsClientTunnel(server_address, identity, PSK, handshake_timeout=5)
    client = await new_coap_client()
    try:
        await tunnel.start()
        response = await coap_get(client, tunnel.plain_address)
        return response.code == aiocoap.CONTENT and response.payload == b"hello"
    finally:
        await client.shutdown()
        await tunnel.close()


@pytest.mark.parametrize(
    ("identity", "key", "reason"),
    [(b"dev", b"wrong-key", "bad_psk"), (b"ghost", PSK, "unknown_identity")],
)
async def test_failed_handshake_is_counted_by_reason_and_keeps_no_session(
    identity: bytes, key: bytes, reason: str
) -> None:
    async with dtls_stack({b"dev": PSK}) as (_, server):
        tunnel = DtlsClientTunnel(server.address, identity, key, handshake_timeout=5)
        with pytest.raises(DtlsHandshakeError):
            await tunnel.start()
        await tunnel.close()
        assert server.counters.handshakes_failed == {reason: 1}
        assert server.counters.handshakes_ok == 0
        assert server.sessions() == []
        assert server.counters.sessions == 0
        assert server.counters.half_open == 0


async def test_psk_lookup_receives_identity_bytes() -> None:
    asked: list[bytes] = []

    def lookup(identity: bytes) -> bytes | None:
        asked.append(identity)
        return PSK if identity == b"urn:imei:861234567890123" else None

    async with dtls_stack({}) as (coap, _):
        from server.coap.dtls import DtlsServer

        server = DtlsServer(("127.0.0.1", 0), coap.address, lookup)
        await server.start()
        try:
            assert await _served(server.address, b"urn:imei:861234567890123")
        finally:
            await server.stop()
    assert asked == [b"urn:imei:861234567890123"]


async def test_rehandshake_from_new_port_keeps_inner_address_and_drops_old_session() -> None:
    moves: list[tuple[DtlsSessionInfo, tuple[str, int] | None]] = []
    async with dtls_stack({b"dev": PSK}, on_session=lambda info, old: moves.append((info, old))) as (
        coap,
        server,
    ):
        tunnel = DtlsClientTunnel(server.address, b"dev", PSK)
        client = await new_coap_client()
        try:
            await tunnel.start()
            first_peer = tunnel.local_address
            assert (await coap_get(client, tunnel.plain_address)).code == aiocoap.CONTENT
            await tunnel.rehandshake(new_local_port=True)
            second_peer = tunnel.local_address
            assert (await coap_get(client, tunnel.plain_address)).code == aiocoap.CONTENT
            sessions = server.sessions()
        finally:
            await client.shutdown()
            await tunnel.close()
        before, after = coap.resource.remotes
        assert before == after
        assert [s.peer for s in sessions] == [second_peer]
        assert second_peer != first_peer
        assert server.counters.rehandshakes_moved == 1
        assert [old for _, old in moves] == [None, first_peer]
        assert moves[1][0].inner == after
        assert sessions[0].inner == after


async def test_session_by_inner_maps_coap_sender_to_identity() -> None:
    async with dtls_stack({b"dev": PSK}) as (coap, server):
        tunnel = DtlsClientTunnel(server.address, b"dev", PSK)
        client = await new_coap_client()
        try:
            await tunnel.start()
            await coap_get(client, tunnel.plain_address)
            (remote,) = coap.resource.remotes
            info = server.session_by_inner(remote)
            assert info is not None and info.identity == b"dev"
            assert server.session_by_identity(b"dev") == info
            assert server.session_by_inner(("127.0.0.1", 1)) is None
        finally:
            await client.shutdown()
            await tunnel.close()


async def test_garbage_truncated_and_replayed_records_are_dropped_and_service_continues() -> None:
    async with dtls_stack({b"dev": PSK}) as (coap, server):
        relay = UdpRelay(server.address)
        await relay.start()
        tunnel = DtlsClientTunnel(relay.address, b"dev", PSK)
        client = await new_coap_client()
        try:
            await tunnel.start()
            assert (await coap_get(client, tunnel.plain_address)).code == aiocoap.CONTENT
            application_record = relay.to_server[-1]
            assert application_record[0] == 23  # the CoAP GET, as DTLS application data
            dropped_before = server.counters.datagrams_dropped
            hostile = [
                bytes(range(7, 207)),  # garbage from the established peer
                b"\x17\xfe\xfd",  # shorter than a record header
                application_record[: len(application_record) // 2],  # truncated record
                application_record,  # replay: anti-replay window rejects it
                application_record[:-1] + bytes([application_record[-1] ^ 0xFF]),  # bad MAC
                b"\x16\xfe\xfd\x00\x00" + bytes(6) + b"\x00\x30\x01" + bytes(47),  # malformed ClientHello
            ]
            for datagram in hostile:
                relay.inject(datagram)
            loop = asyncio.get_running_loop()
            stranger, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), remote_addr=server.address
            )
            stranger.sendto(bytes(range(100, 200)))
            stranger.sendto(application_record)
            stranger.close()
            assert await wait_until(
                lambda: server.counters.datagrams_dropped - dropped_before >= len(hostile) + 2
            )
            assert server.counters.datagrams_dropped - dropped_before == len(hostile) + 2
            assert len(coap.resource.remotes) == 1
            assert (await coap_get(client, tunnel.plain_address)).code == aiocoap.CONTENT
            assert len(coap.resource.remotes) == 2
            assert len(server.sessions()) == 1
        finally:
            await client.shutdown()
            await tunnel.close()
            relay.close()
        assert await _served(server.address)


async def test_client_hello_flood_without_cookies_keeps_no_state_and_no_amplification() -> None:
    async with dtls_stack({b"dev": PSK}, max_half_open=20) as (_, server):
        sockets = await _raw_sockets(300, server.address)
        try:
            sent = 0
            for round_number in range(10):
                for batch_start in range(0, len(sockets), 100):
                    for transport, _ in sockets[batch_start : batch_start + 100]:
                        transport.sendto(client_hello(record_seq=round_number))
                    sent += 100
                    # paced so that the kernel never drops a datagram: every hello must be answered
                    assert await wait_until(lambda n=sent: sum(len(c.received) for _, c in sockets) >= n)
            assert sent == 3000
            answers = [datagram for _, c in sockets for datagram in c.received]
            assert all(cookie_from_hello_verify_request(answer) for answer in answers)
            assert server.counters.bytes_out < server.counters.bytes_in
            assert server.counters.half_open == 0
            assert server.sessions() == []
        finally:
            for transport, _ in sockets:
                transport.close()
        assert await _served(server.address)


async def test_cookie_verified_flood_is_bounded_by_max_half_open() -> None:
    async with dtls_stack({b"dev": PSK}, max_half_open=20, max_sessions=5) as (_, server):
        sockets = await _raw_sockets(200, server.address)
        try:
            for transport, _ in sockets:
                transport.sendto(client_hello())
            assert await wait_until(lambda: all(c.received for _, c in sockets))
            for transport, collector in sockets:
                cookie = cookie_from_hello_verify_request(collector.received[0])
                assert cookie
                transport.sendto(client_hello(cookie, message_seq=1, record_seq=1))
            assert await wait_until(lambda: server.counters.handshakes_failed["evicted"] >= 180)
            assert server.counters.half_open == 20
            assert server.counters.handshakes_failed["evicted"] == 180
            assert server.sessions() == []
        finally:
            for transport, _ in sockets:
                transport.close()
        assert await _served(server.address)
        assert server.counters.half_open <= 20


async def test_half_open_handshake_expires_after_handshake_timeout() -> None:
    async with dtls_stack({b"dev": PSK}, handshake_timeout=0.4) as (_, server):
        (transport, collector), *_ = await _raw_sockets(1, server.address)
        try:
            transport.sendto(client_hello())
            assert await wait_until(lambda: bool(collector.received))
            cookie = cookie_from_hello_verify_request(collector.received[0])
            assert cookie
            transport.sendto(client_hello(cookie, message_seq=1, record_seq=1))
            assert await wait_until(lambda: server.counters.half_open == 1)
            assert await wait_until(lambda: server.counters.half_open == 0, within=3)
            assert server.counters.handshakes_failed["timeout"] == 1
        finally:
            transport.close()


async def test_session_table_full_refuses_new_identity_with_too_many() -> None:
    async with dtls_stack({b"dev": PSK, b"other": PSK}, max_sessions=1) as (_, server):
        first = DtlsClientTunnel(server.address, b"dev", PSK)
        second = DtlsClientTunnel(server.address, b"other", PSK)
        try:
            await first.start()
            await second.start()
            assert [s.identity for s in server.sessions()] == [b"dev"]
            assert server.counters.handshakes_failed["too_many"] == 1
            assert await wait_until(lambda: not second.established)  # refused with close_notify
            assert first.established
        finally:
            await first.close()
            await second.close()


async def test_idle_session_is_evicted_and_inner_socket_closed() -> None:
    async with dtls_stack({b"dev": PSK}, idle_timeout=0.3) as (coap, server):
        tunnel = DtlsClientTunnel(server.address, b"dev", PSK)
        client = await new_coap_client()
        try:
            await tunnel.start()
            await coap_get(client, tunnel.plain_address)
            (inner,) = coap.resource.remotes
            assert server.session_by_inner(inner) is not None
            assert await wait_until(lambda: server.sessions() == [], within=3)
            assert server.session_by_inner(inner) is None
            assert server.counters.sessions_idle_evicted == 1
            assert server.counters.sessions == 0
        finally:
            await client.shutdown()
            await tunnel.close()
