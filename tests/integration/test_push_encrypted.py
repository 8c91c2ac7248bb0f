"""Encrypted HTTP push, OneNET `enc_msg` (platforms.md "HTTP push"): AES-256-CBC with key =
Base64Decode(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7; plaintext = 16 random
bytes + 4-byte big-endian length + msg; the signature covers the `enc_msg` text. The fixed vector
was computed with `openssl enc -aes-256-cbc -K <key> -iv <key[:16]>` (an implementation
independent of ours)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from mbedtls import cipher

from server.api.serve import serve_http
from server.services.errors import BadArgument
from server.services.push import PushService
from server.services.push_messages import decrypt_msg, encrypt_msg
from tests.integration import api_support
from tests.integration.api_support import IMEI, IMSI, Api, create_onenet_device

api = api_support.api

ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "enctoken"
VECTOR_MSG = '{"type":2,"dev_id":7,"status":1,"login_type":10,"at":1700000000000}'
VECTOR_ENC = (
    "IG+0eOkLdhYW9kHtuT3HY/+nBc0dTlsH0S44G4MqXiIj59+1DarTX7gG6RPrrLtGb4o1/LuX140C8Q2yhdxMuWBWycQZEmZd"
    "0Z1S3ylE2R5atOWLO1YfNv/Gbdste7o4"
)


def receiver_decrypts(enc_msg: str) -> tuple[bytes, dict[str, Any]]:
    """What an application's receiver does, step by step from the description."""
    key = base64.b64decode(ENCODING_AES_KEY + "=")
    plain = cipher.AES.new(key, cipher.MODE_CBC, key[:16]).decrypt(base64.b64decode(enc_msg))
    plain = plain[: -plain[-1]]
    length = int.from_bytes(plain[16:20], "big")
    assert len(plain) == 20 + length
    return plain[:16], json.loads(plain[20:])


def test_encryption_matches_the_openssl_vector_for_a_fixed_random_prefix() -> None:
    assert encrypt_msg(ENCODING_AES_KEY, VECTOR_MSG, bytes(range(16))) == VECTOR_ENC
    assert decrypt_msg(ENCODING_AES_KEY, VECTOR_ENC) == VECTOR_MSG


def test_random_prefixes_differ_and_non_ascii_lengths_count_bytes() -> None:
    first, second = (encrypt_msg(ENCODING_AES_KEY, '{"v":"温度"}') for _ in range(2))
    assert first != second
    assert decrypt_msg(ENCODING_AES_KEY, first) == decrypt_msg(ENCODING_AES_KEY, second) == '{"v":"温度"}'


@pytest.mark.parametrize("bad", ["short", "!" * 43, ENCODING_AES_KEY + "A"])
def test_malformed_encoding_aes_keys_are_refused(bad: str) -> None:
    with pytest.raises(BadArgument):
        encrypt_msg(bad, "{}")


def test_tampered_enc_msg_is_refused_instead_of_returning_garbage() -> None:
    tampered = base64.b64encode(base64.b64decode(VECTOR_ENC)[:-16]).decode()
    with pytest.raises(BadArgument):
        decrypt_msg(ENCODING_AES_KEY, tampered)


async def test_encrypted_receiver_gets_enc_msg_it_can_verify_and_decrypt(api: Api) -> None:
    received: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.post("/push")
    async def deliver(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return Response("ok")

    handle = await serve_http(receiver, "127.0.0.1", 0)
    push: PushService = api.http.server.config.app.state.push
    try:
        device_id = int(await create_onenet_device(api))
        target = await push.add_target(
            f"{handle.url}/push", TOKEN, product_id=api.product.id, verify=False, aes_key=ENCODING_AES_KEY
        )
        assert target.as_dict()["encrypted"] is True and target.as_dict()["aes_key"] == "***"
        api.server.bus.publish("registration.registered", f"{IMEI};{IMSI}", lifetime=60)
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.02)
    finally:
        await handle.stop()
    (body,) = received
    assert set(body) == {"enc_msg", "msg_signature", "nonce"}
    signature = base64.b64encode(hashlib.md5((TOKEN + body["nonce"] + body["enc_msg"]).encode()).digest())
    assert body["msg_signature"] == signature.decode()
    prefix, msg = receiver_decrypts(body["enc_msg"])
    assert len(prefix) == 16
    assert msg["type"] == 2 and msg["dev_id"] == device_id and msg["status"] == 1 and msg["login_type"] == 10
