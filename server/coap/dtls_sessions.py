"""The records of the DTLS terminator (`server.coap.dtls`): what the CoAP layer may know of a
session (`DtlsSessionInfo`), the counters, a half-open handshake, an established session with its
inner socket, and the PSK store mbedtls consults during a handshake.

python-mbedtls 2.10.1 consults ``pre_shared_key_store`` as ``store[identity.decode("utf8")]`` from
inside ``do_handshake()``; any exception means "unknown identity". `PskStore` calls the lookup with
the identity bytes and records which handshake asked (the callback has no per-connection
argument, so the terminator sets `current` around each step).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from mbedtls import tls

from transport.dtls import Address

log = logging.getLogger(__name__)


@dataclass
class DtlsSessionInfo:
    """What the CoAP layer may know about one established DTLS session."""

    peer: Address
    identity: bytes
    inner: Address
    cipher: str
    established_at: float
    last_activity: float


@dataclass
class DtlsCounters:
    """Running totals and current gauges of one :class:`DtlsServer`."""

    handshakes_ok: int = 0
    handshakes_failed: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    half_open: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    datagrams_dropped: int = 0
    rehandshakes_moved: int = 0
    sessions_idle_evicted: int = 0


OnSession = Callable[[DtlsSessionInfo, Address | None], None]


def peer_transport_id(peer: Address) -> bytes:
    return f"{peer[0]}|{peer[1]}".encode()


class Handshake:
    """A half-open handshake: the cookie was verified, the session is not established yet."""

    __slots__ = ("buffer", "deadline", "identity", "peer", "unknown_identity")

    def __init__(self, peer: Address, buffer: tls.TLSWrappedBuffer, deadline: float) -> None:
        self.peer = peer
        self.buffer = buffer
        self.deadline = deadline
        self.identity: bytes | None = None
        self.unknown_identity = False


class Session:
    """An established session and its inner socket toward the CoAP listener."""

    __slots__ = ("buffer", "idle_since", "info", "inner_pending", "inner_sock", "inner_transport")

    def __init__(self, info: DtlsSessionInfo, buffer: tls.TLSWrappedBuffer, now: float) -> None:
        self.info = info
        self.buffer = buffer
        self.idle_since = now
        self.inner_sock: socket.socket | None = None
        self.inner_transport: asyncio.DatagramTransport | None = None
        self.inner_pending: list[bytes] = []


class PskStore(Mapping[str, bytes]):
    """The ``pre_shared_key_store`` handed to mbedtls: every lookup goes to ``psk_lookup``."""

    def __init__(self, lookup: Callable[[bytes], bytes | None]) -> None:
        self._lookup = lookup
        self.current: Handshake | None = None

    def __getitem__(self, identity: str) -> bytes:
        raw = identity.encode()
        handshake = self.current
        if handshake is not None:
            handshake.identity = raw
        try:
            key = self._lookup(raw)
        except Exception:
            log.exception("psk_lookup failed for identity %r", raw)
            key = None
        if not key:
            if handshake is not None:
                handshake.unknown_identity = True
            raise KeyError(identity)
        return bytes(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
