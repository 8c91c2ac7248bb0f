"""DtlsClientTunnel against the DtlsServer terminator: real handshakes and CoAP over loopback."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest

from emulator.client.dtls import DtlsClientTunnel, DtlsHandshakeError
from tests.integration.dtls_helpers import coap_get, dtls_stack, new_coap_client

STRING_PSK = b"onenet-psk-1234"
HEX_PSK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


@pytest.mark.parametrize("cipher", ["TLS-PSK-WITH-AES-128-CCM-8", "TLS-PSK-WITH-AES-128-CBC-SHA256"])
@pytest.mark.parametrize("key", [STRING_PSK, HEX_PSK], ids=["string-psk", "hex-psk"])
async def test_coap_get_through_tunnel_returns_content_with_forced_cipher(cipher: str, key: bytes) -> None:
    async with dtls_stack({b"imei-860000000000001": key}) as (coap, server):
        tunnel = DtlsClientTunnel(server.address, b"imei-860000000000001", key, ciphers=(cipher,))
        client = await new_coap_client()
        try:
            await tunnel.start()
            response = await coap_get(client, tunnel.plain_address)
            sessions = server.sessions()
        finally:
            await client.shutdown()
            await tunnel.close()
        assert response.code == aiocoap.CONTENT
        assert response.payload == b"hello"
        assert tunnel.cipher == cipher
        assert [(s.identity, s.cipher) for s in sessions] == [(b"imei-860000000000001", cipher)]
        assert coap.resource.remotes == [sessions[0].inner]


async def test_server_session_reports_negotiated_cipher_and_identity() -> None:
    async with dtls_stack({b"dev": STRING_PSK}) as (_, server):
        tunnel = DtlsClientTunnel(
            server.address, b"dev", STRING_PSK, ciphers=("TLS-PSK-WITH-AES-128-CBC-SHA256",)
        )
        await tunnel.start()
        try:
            (session,) = server.sessions()
            assert session.identity == b"dev"
            assert session.cipher == "TLS-PSK-WITH-AES-128-CBC-SHA256"
            assert session.peer == tunnel.local_address
        finally:
            await tunnel.close()


async def test_wrong_key_raises_handshake_error_bad_psk() -> None:
    async with dtls_stack({b"dev": STRING_PSK}) as (_, server):
        tunnel = DtlsClientTunnel(server.address, b"dev", b"not-the-key", handshake_timeout=5)
        with pytest.raises(DtlsHandshakeError) as failure:
            await tunnel.start()
        await tunnel.close()
        assert failure.value.reason == "bad_psk"


async def test_unknown_identity_raises_handshake_error_unknown_identity() -> None:
    async with dtls_stack({b"dev": STRING_PSK}) as (_, server):
        tunnel = DtlsClientTunnel(server.address, b"stranger", STRING_PSK, handshake_timeout=5)
        with pytest.raises(DtlsHandshakeError) as failure:
            await tunnel.start()
        await tunnel.close()
        assert failure.value.reason == "unknown_identity"


async def test_silent_server_raises_handshake_error_timeout() -> None:
    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    address = silent.get_extra_info("sockname")[:2]
    tunnel = DtlsClientTunnel(address, b"dev", STRING_PSK, handshake_timeout=0.5)
    try:
        with pytest.raises(DtlsHandshakeError) as failure:
            await tunnel.start()
        assert failure.value.reason == "timeout"
    finally:
        await tunnel.close()
        silent.close()


async def test_rehandshake_from_new_local_port_changes_peer_address() -> None:
    async with dtls_stack({b"dev": STRING_PSK}) as (_, server):
        tunnel = DtlsClientTunnel(server.address, b"dev", STRING_PSK)
        await tunnel.start()
        try:
            before = tunnel.local_address
            await tunnel.rehandshake(new_local_port=True)
            after = tunnel.local_address
            assert before != after
            assert tunnel.handshakes == 2
            info = server.session_by_identity(b"dev")
            assert info is not None and info.peer == after
        finally:
            await tunnel.close()


async def test_no_renegotiation_while_datagrams_keep_arriving() -> None:
    async with dtls_stack({b"dev": STRING_PSK}) as (_, server):
        tunnel = DtlsClientTunnel(server.address, b"dev", STRING_PSK, renegotiate_after=5.0)
        client = await new_coap_client()
        try:
            await tunnel.start()
            for _ in range(3):
                assert (await coap_get(client, tunnel.plain_address)).code == aiocoap.CONTENT
        finally:
            await client.shutdown()
            await tunnel.close()
        assert tunnel.handshakes == 1
        assert server.counters.handshakes_ok == 1


async def test_silence_longer_than_renegotiate_after_rehandshakes_before_next_send() -> None:
    async with dtls_stack({b"dev": STRING_PSK}) as (coap, server):
        tunnel = DtlsClientTunnel(server.address, b"dev", STRING_PSK, renegotiate_after=0.3)
        client = await new_coap_client()
        try:
            await tunnel.start()
            assert (await coap_get(client, tunnel.plain_address)).code == aiocoap.CONTENT
            await asyncio.sleep(0.4)
            response = await coap_get(client, tunnel.plain_address)
        finally:
            await client.shutdown()
            await tunnel.close()
        assert response.code == aiocoap.CONTENT
        assert tunnel.handshakes == 2
        assert server.counters.handshakes_ok == 2
        assert server.counters.rehandshakes_moved == 0
        assert coap.resource.remotes[0] == coap.resource.remotes[1]
