"""Interoperability: libcoap's OpenSSL client (an independent DTLS 1.2 PSK stack) against DtlsServer."""

from __future__ import annotations

import asyncio

from tests.integration.dtls_helpers import dtls_stack, require_tool


async def _coap_client_openssl(tool: str, identity: str, key: str, port: int) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        tool,
        "-B",
        "5",
        "-u",
        identity,
        "-k",
        key,
        f"coaps://127.0.0.1:{port}/test",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 15)
    return process.returncode or 0, stdout


async def test_coap_client_openssl_completes_handshake_and_gets_content() -> None:
    tool = require_tool("coap-client-openssl")
    async with dtls_stack({b"interop-device": b"interop-secret"}) as (coap, server):
        returncode, stdout = await _coap_client_openssl(
            tool, "interop-device", "interop-secret", server.address[1]
        )
        assert returncode == 0
        assert stdout.strip() == b"hello"
        assert server.counters.handshakes_ok == 1
        assert len(coap.resource.remotes) == 1
        assert server.counters.handshakes_failed == {}


async def test_coap_client_openssl_with_wrong_key_gets_no_content() -> None:
    tool = require_tool("coap-client-openssl")
    async with dtls_stack({b"interop-device": b"interop-secret"}) as (coap, server):
        _, stdout = await _coap_client_openssl(tool, "interop-device", "wrong-secret", server.address[1])
        assert b"hello" not in stdout
        assert server.counters.handshakes_ok == 0
        assert server.counters.handshakes_failed["bad_psk"] >= 1
        assert coap.resource.remotes == []
