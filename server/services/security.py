"""DTLS pre-shared keys: which identity may connect with which key, and as which endpoint.

Specifications: OMA LwM2M 1.1.1 Transport §5.2.8 (PSK mode: the PSK identity and the key are
provisioned per client), RFC 4279 §5.1 (identity: UTF-8 text, up to 2^16-1 octets), RFC 7925 §4.2
(PSK identities for constrained devices). OneNET and the OneMO module give the key either as text
or as hexadecimal digits; both are accepted here (``encoding`` "string" or "hex").

Design choices:

* **One PSK per endpoint, identities unique.** An identity names exactly one endpoint, so
  ``endpoints_for`` feeds ``OpenPolicy``'s identity map: a DTLS peer may only register or update
  as the endpoint its identity was provisioned for.
* **The index is memory, the truth is the database.** ``lookup`` runs synchronously inside the
  DTLS handshake (no I/O there), so it reads an in-memory index that ``load`` fills from the store
  and that ``set_psk`` / ``remove_psk`` change only after their write has committed.
* **Limits from the stack.** mbedtls refuses keys longer than 32 octets (``MBEDTLS_PSK_MAX_LEN``)
  and python-mbedtls only handles UTF-8 identities; identities are capped at the column width
  (255 characters). Validation errors raise ``BadArgument``.
* Keys are stored as given (text), like the carrier portals show them: this is a test bed, not a
  key vault.
* Removing a PSK does not close a DTLS session already established with it; new handshakes and
  new registrations with that identity are refused from then on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from server.services.errors import BadArgument
from server.store.repository import PskRecord, Store

__all__ = ["MAX_IDENTITY_LENGTH", "MAX_KEY_LENGTH", "PskEncoding", "SecurityService", "decode_key"]

PskEncoding = Literal["string", "hex"]

MAX_KEY_LENGTH = 32  # octets: MBEDTLS_PSK_MAX_LEN
MAX_IDENTITY_LENGTH = 255  # characters: the psk_credentials.identity column


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


def _check_identity(identity: str) -> None:
    if not identity:
        raise BadArgument("PSK identity is empty")
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise BadArgument(f"PSK identity is longer than {MAX_IDENTITY_LENGTH} characters")
    try:
        identity.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadArgument("PSK identity is not valid UTF-8 text") from exc


class SecurityService:
    """The PSK store: {identity: (key, endpoint)} in memory, in step with ``psk_credentials``."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self._by_identity: dict[bytes, tuple[bytes, str]] = {}
        self._by_endpoint: dict[str, PskRecord] = {}
        self._lock = asyncio.Lock()

    def _require_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("SecurityService has no store (is the server started?)")
        return self.store

    def _index(self, record: PskRecord) -> None:
        self._by_identity[record.identity.encode("utf-8")] = (
            decode_key(record.key, record.encoding),
            record.endpoint,
        )
        self._by_endpoint[record.endpoint] = record

    def _unindex(self, endpoint: str) -> None:
        old = self._by_endpoint.pop(endpoint, None)
        if old is not None:
            self._by_identity.pop(old.identity.encode("utf-8"), None)

    async def load(self) -> None:
        """Rebuild the index from the database."""
        records = await self._require_store().load_psks()
        self._by_identity.clear()
        self._by_endpoint.clear()
        for record in records:
            try:
                self._index(record)
            except BadArgument:
                continue  # a row written by hand that the stack cannot use: unusable, not fatal

    async def set_psk(self, endpoint: str, identity: str, key: str, encoding: PskEncoding = "string") -> None:
        """Provision (or replace) the PSK of `endpoint`. An identity already given to another
        endpoint is refused with BadArgument."""
        if not endpoint:
            raise BadArgument("endpoint is empty")
        _check_identity(identity)
        decode_key(key, encoding)
        store = self._require_store()
        async with self._lock:
            holder = self._by_identity.get(identity.encode("utf-8"))
            if holder is not None and holder[1] != endpoint:
                raise BadArgument(f"PSK identity {identity!r} already belongs to endpoint {holder[1]!r}")
            record = PskRecord(endpoint, identity, key, encoding, time.time())
            await store.save_psk(record)
            self._unindex(endpoint)
            self._index(record)

    async def remove_psk(self, endpoint: str) -> bool:
        """Forget the PSK of `endpoint`; False when it had none."""
        store = self._require_store()
        async with self._lock:
            if endpoint not in self._by_endpoint:
                return False
            await store.delete_psk(endpoint)
            self._unindex(endpoint)
            return True

    def lookup(self, identity: bytes) -> bytes | None:
        """The key of `identity` (called by the DTLS server during the handshake), else None."""
        entry = self._by_identity.get(identity)
        return entry[0] if entry is not None else None

    def endpoints_for(self, identity: str) -> set[str] | None:
        """The endpoints `identity` may register as; None when the identity is not provisioned."""
        entry = self._by_identity.get(identity.encode("utf-8"))
        return {entry[1]} if entry is not None else None

    def credential(self, endpoint: str) -> PskRecord | None:
        """The stored PSK of `endpoint`, as given."""
        return self._by_endpoint.get(endpoint)

    def credentials(self) -> list[PskRecord]:
        return list(self._by_endpoint.values())
