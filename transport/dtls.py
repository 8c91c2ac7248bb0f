"""DTLS 1.2 PSK plumbing shared by the server's terminator (`server.coap.dtls`) and the emulated
module's client tunnel (`emulator.client.dtls`): the cipher suites, the record-layer constants,
the mbedtls error codes both map to failure reasons, the configuration both build, and the
python-mbedtls memory-BIO helpers both drive (RFC 6347, RFC 4279, RFC 7925).

python-mbedtls quirks handled here: the memory BIOs are byte streams, not datagram queues, so the
output is drained after every operation (`drain`); `read()` concatenates records, so records are
read one by one with `readinto()` (`read_records`); mbedtls acts on its RFC 6347 §4.2.4
retransmission timers only when the handshake is stepped (`step_handshake`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

from mbedtls import tls

log = logging.getLogger(__name__)

Address = tuple[str, int]

DEFAULT_CIPHERS: tuple[str, ...] = (
    "TLS-PSK-WITH-AES-128-CCM-8",
    "TLS-PSK-WITH-AES-128-CBC-SHA256",
    "TLS-PSK-WITH-AES-128-GCM-SHA256",
)
# The cipher suites this mbedtls build can offer (a name it does not know is silently left out).
AVAILABLE_CIPHERS = frozenset(tls.ciphers_available())

# DTLS record layer (RFC 6347 §4.1): type(1) version(2) epoch(2) sequence(6) length(2).
RECORD_HEADER_LEN = 13
# Handshake header (RFC 6347 §4.2.2): type(1) length(3) message_seq(2) offset(3) fragment_length(3).
HANDSHAKE_HEADER_LEN = 12
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1

# mbedtls error codes (positive, as python-mbedtls reports them in ``TLSError.err``).
ERR_INVALID_MAC = 0x7180
ERR_FATAL_ALERT = 0x7780
ERR_PEER_CLOSE_NOTIFY = 0x7880
ERR_UNKNOWN_IDENTITY = 0x6C80
ERR_NO_CIPHER_CHOSEN = 0x7380
ERR_TIMEOUT = 0x6800

MAX_STEPS = 64  # handshake steps per driving call; a full server handshake takes about 15
MAX_RECORDS_PER_DATAGRAM = 16
READ_CHUNK = 16_384 + 2048
RETRANSMIT_MIN = 1.0  # RFC 6347 §4.2.4.1 initial timer


def configuration(
    ciphers: Sequence[str],
    handshake_timeout: float,
    *,
    pre_shared_key: tuple[str, bytes] | None = None,
    pre_shared_key_store: Mapping[str, bytes] | None = None,
) -> tls.DTLSConfiguration:
    """DTLS 1.2 only, PSK, no certificates; retransmission from 1 s up to the handshake timeout
    (at most 60 s). A client gives its `pre_shared_key`, a server its `pre_shared_key_store`."""
    low = min(RETRANSMIT_MIN, handshake_timeout)
    config = tls.DTLSConfiguration(
        ciphers=tuple(ciphers),
        validate_certificates=False,
        lowest_supported_version=tls.DTLSVersion.DTLSv1_2,
        highest_supported_version=tls.DTLSVersion.DTLSv1_2,
        handshake_timeout_min=low,
        handshake_timeout_max=max(min(60.0, handshake_timeout), low),
    )
    if pre_shared_key is not None:
        config = config.update(pre_shared_key=pre_shared_key)
    if pre_shared_key_store is not None:
        config = config.update(pre_shared_key_store=pre_shared_key_store)
    return config


def looks_like_client_hello(data: bytes) -> bool:
    """True when ``data`` starts with an epoch-0 handshake record holding a ClientHello."""
    return (
        len(data) >= RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN
        and data[0] == CONTENT_HANDSHAKE
        and data[3:5] == b"\x00\x00"
        and data[RECORD_HEADER_LEN] == HANDSHAKE_CLIENT_HELLO
    )


def plaintext_alert(data: bytes) -> int | None:
    """The description of an epoch-0 (unencrypted) alert record, else None."""
    epoch_zero = data[3:5] == b"\x00\x00"
    if len(data) >= 15 and data[0] == CONTENT_ALERT and epoch_zero and data[11:13] == b"\x00\x02":
        return data[14]
    return None


def drain(buffer: tls.TLSWrappedBuffer) -> bytes:
    """Everything mbedtls wrote to the outgoing memory BIO (b"" when nothing)."""
    pending = len(buffer._output_buffer)
    if not pending:
        return b""
    data = buffer.peek_outgoing(pending)
    buffer.consume_outgoing(len(data))
    return bytes(data)


def step_handshake(buffer: tls.TLSWrappedBuffer, send: Callable[[bytes], None]) -> bool:
    """Step the handshake until mbedtls wants input (False) or it is over (True), sending each
    flight mbedtls wants written. mbedtls's errors (`TLSError`, `HelloVerifyRequest`) propagate;
    the caller drains the output afterwards."""
    for _ in range(MAX_STEPS):
        if buffer._handshake_state is tls.HandshakeStep.HANDSHAKE_OVER:
            return True
        try:
            buffer.do_handshake()
        except tls.WantReadError:
            return False
        except tls.WantWriteError:
            send(drain(buffer))
    return False


def read_records(buffer: tls.TLSWrappedBuffer) -> Iterator[bytes]:
    """The application-data records of the datagram just fed to `buffer`, one by one. A closed or
    broken session raises `RaggedEOF` / `TLSError` from the iteration."""
    chunk = bytearray(READ_CHUNK)
    for _ in range(MAX_RECORDS_PER_DATAGRAM):
        try:
            size = buffer.readinto(chunk, len(chunk))  # type: ignore[arg-type]  # needs a writable buffer
        except tls.WantReadError:
            return
        yield bytes(chunk[:size])


class DatagramEndpoint(asyncio.DatagramProtocol):
    """An asyncio datagram endpoint handing each datagram to `on_datagram`, which must not raise
    (an exception is logged and the datagram dropped)."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None], name: str = "DTLS socket") -> None:
        self._on_datagram = on_datagram
        self._name = name

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._on_datagram(data, (addr[0], addr[1]))
        except Exception:
            log.exception("dropping datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s error: %s", self._name, exc)
