"""The bodies OneNET pushes to an application's receiver (`server.services.push`): the compact
JSON `msg`, its signature (`signature = Base64(MD5(token + nonce + msg))`), the `enc_msg` of a
receiver with an AES key (AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 padding over
16 random bytes + u32 BE length + msg), and the value forms OneNET uses (datastream ids, bytes as
arrays of byte values)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
from typing import Any, cast

from mbedtls import cipher
from mbedtls.cipher._cipher import Cipher

from server.services.errors import BadArgument

_NONCE_ALPHABET = string.ascii_letters + string.digits


def compact_json(value: Any) -> str:
    """JSON without spaces, slashes not escaped, non-ASCII kept (what receivers re-create)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sign(token: str, nonce: str, msg: str) -> str:
    """Base64(MD5(token + nonce + msg))."""
    digest = hashlib.md5((token + nonce + msg).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(8))


def signed_body(token: str, msg: Any, nonce: str | None = None) -> str:
    """The POST body of one delivery, as text."""
    nonce = nonce or new_nonce()
    text = compact_json(msg)
    return f'{{"msg":{text},"msg_signature":"{sign(token, nonce, text)}","nonce":"{nonce}"}}'


AES_BLOCK = 16


def aes_key_bytes(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of an EncodingAESKey (43 Base64 characters); BadArgument otherwise."""
    if len(encoding_aes_key) != 43:
        raise BadArgument("EncodingAESKey must be 43 Base64 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except ValueError:
        raise BadArgument("EncodingAESKey must be 43 Base64 characters") from None
    return key


def encrypt_msg(encoding_aes_key: str, msg: str, random_prefix: bytes | None = None) -> str:
    """OneNET `enc_msg`: Base64 of AES-256-CBC over 16 random bytes + u32 BE length + msg."""
    key = aes_key_bytes(encoding_aes_key)
    data = msg.encode("utf-8")
    prefix = random_prefix if random_prefix is not None else secrets.token_bytes(16)
    plain = prefix + len(data).to_bytes(4, "big") + data
    pad = AES_BLOCK - len(plain) % AES_BLOCK
    encrypted = _aes_cbc(key).encrypt(plain + bytes([pad]) * pad)
    return base64.b64encode(encrypted).decode("ascii")


def _aes_cbc(key: bytes) -> Cipher:
    """AES-256-CBC with the key's first 16 bytes as the IV (OneNET's scheme)."""
    return cast("Cipher", cipher.AES.new(key, cipher.MODE_CBC, key[:16]))


def decrypt_msg(encoding_aes_key: str, enc_msg: str) -> str:
    """The msg of an `enc_msg` (what a receiver does); BadArgument when it does not decrypt."""
    key = aes_key_bytes(encoding_aes_key)
    try:
        encrypted = base64.b64decode(enc_msg, validate=True)
        if not encrypted or len(encrypted) % AES_BLOCK:
            raise ValueError("not whole AES blocks")
        plain = _aes_cbc(key).decrypt(encrypted)
    except ValueError as exc:
        raise BadArgument(f"enc_msg does not decrypt: {exc}") from None
    pad = plain[-1]
    if not 1 <= pad <= AES_BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise BadArgument("enc_msg has bad padding")
    body = plain[:-pad]
    length = int.from_bytes(body[16:20], "big")
    if len(body) != 20 + length:
        raise BadArgument("enc_msg length does not match")
    return body[20:].decode("utf-8")


def encrypted_body(token: str, encoding_aes_key: str, msg: Any, nonce: str | None = None) -> str:
    """The POST body of one encrypted delivery, as text (the signature covers `enc_msg`)."""
    nonce = nonce or new_nonce()
    enc = encrypt_msg(encoding_aes_key, compact_json(msg))
    return f'{{"enc_msg":"{enc}","msg_signature":"{sign(token, nonce, enc)}","nonce":"{nonce}"}}'


def stream_id(path: str) -> str | None:
    """`/3200/0/5501` -> `3200_0_5501`; None for paths above resource level."""
    parts = [p for p in path.split("/") if p]
    return "_".join(parts[:3]) if len(parts) >= 3 else None


def push_value(value: Any) -> Any:
    """A stored (JSON-safe) value as OneNET pushes it: bytes as arrays of byte values."""
    if isinstance(value, dict):
        if "hex" in value:
            return list(bytes.fromhex(value["hex"]))
        if "time" in value:
            return int(value["time"])
        if "objlnk" in value:
            return value["objlnk"]
    return value
