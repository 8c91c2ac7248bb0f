"""DTLS pre-shared keys: which identity may connect with which key, and as which endpoint.

Specifications: OMA LwM2M 1.1.1 Transport §5.2.8 (PSK mode: the PSK identity and the key are
provisioned per client), RFC 4279 §5.1 (identity: UTF-8 text, up to 2^16-1 octets), RFC 7925 §4.2
(PSK identities for constrained devices). OneNET and the OneMO module give the key either as text
or as hexadecimal digits; both are accepted here (``encoding`` "string" or "hex").

What a key and an identity must be to be usable by the DTLS stack; where keys live and who may
use them is the device directory's business (`server.services.directory`).

* **Limits from the stack.** mbedtls refuses keys longer than 32 octets (``MBEDTLS_PSK_MAX_LEN``)
  and python-mbedtls only handles UTF-8 identities; identities are capped at 255 characters.
  Validation errors raise ``BadArgument``.
* Keys are stored as given (text), like the carrier portals show them: this is a test bed, not a
  key vault.
"""

from __future__ import annotations

from typing import Literal

from server.services.errors import BadArgument

__all__ = ["MAX_IDENTITY_LENGTH", "MAX_KEY_LENGTH", "PskEncoding", "check_identity", "decode_key"]

PskEncoding = Literal["string", "hex"]

MAX_KEY_LENGTH = 32  # octets: MBEDTLS_PSK_MAX_LEN
MAX_IDENTITY_LENGTH = 255  # characters


def decode_key(key: str, encoding: str) -> bytes:
    """The key octets of `key` given in `encoding`; raises BadArgument when it is not valid."""
    if encoding == "string":
        raw = key.encode("utf-8")
    elif encoding == "hex":
        try:
            raw = bytes.fromhex(key)
        except ValueError as exc:
            raise BadArgument(f"PSK is not hexadecimal: {exc}") from exc
    else:
        raise BadArgument(f"PSK encoding must be 'string' or 'hex', not {encoding!r}")
    if not raw:
        raise BadArgument("PSK is empty")
    if len(raw) > MAX_KEY_LENGTH:
        raise BadArgument(f"PSK is {len(raw)} octets, at most {MAX_KEY_LENGTH} are supported")
    return raw


def check_identity(identity: str) -> None:
    if not identity:
        raise BadArgument("PSK identity is empty")
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise BadArgument(f"PSK identity is longer than {MAX_IDENTITY_LENGTH} characters")
    try:
        identity.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadArgument("PSK identity is not valid UTF-8 text") from exc
