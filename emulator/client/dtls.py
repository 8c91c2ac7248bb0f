"""DTLS 1.2 PSK client tunnel for the emulated module's LwM2M client.

Specifications: RFC 6347 (DTLS 1.2), RFC 4279 (PSK), RFC 7925 (IoT profile: AES-128-CCM-8),
OMA LwM2M 1.1 Transport 5.2.8 (PSK mode); OneMO AT manual ``AT+MIPLDTLSNAT`` (automatic DTLS
re-negotiation against NAT / IP aging: default 120 s, 0 disables it, minimum 60 s; the range is
checked by the AT layer, this module accepts any positive number so tests can use small values).

Design choices:

* **A tunnel, not a transport.** The aiocoap client stays plain UDP: it sends to
  :attr:`DtlsClientTunnel.plain_address` (a loopback socket); every datagram is encrypted and sent
  to the server from the DTLS socket; decrypted answers go back to the last address the
  application sent from. One DTLS record per datagram in both directions.
* python-mbedtls ``ClientContext.wrap_buffers()`` (memory BIO), driven by asyncio datagram
  endpoints; mbedtls's own retransmission timers act when the handshake is stepped, so the
  handshake is stepped on every datagram and on a short periodic tick.
* **Failure reasons** of :class:`DtlsHandshakeError`: ``timeout``, ``unknown_identity`` (alert
  unknown_psk_identity), ``bad_psk`` (alerts bad_record_mac / decrypt_error, or the server's
  Finished failing to verify), ``handshake_failure``, ``alert:<n>`` (other alerts), ``protocol``.
  The server's alerts before the first ChangeCipherSpec are plaintext, so their description is read
  directly from the record before mbedtls consumes it.
* **Auto re-negotiation rule** (``renegotiate_after``, the module's AT+MIPLDTLSNAT timer): the
  clock starts when a handshake completes and restarts on every datagram *received* from the
  server that decrypts to application data. When the application sends a datagram and the clock
  shows at least ``renegotiate_after`` seconds, a complete new handshake (fresh ClientHello, same
  local port) runs first and the datagram is sent inside the new session. Datagrams the
  application sends while a handshake runs are queued (at most 32) and sent once it completes;
  if it fails they are dropped and the next datagram tries again.

python-mbedtls quirks: the PSK identity must be given as ``str`` (it is UTF-8 encoded), so
identities that are not valid UTF-8 are refused with ``ValueError``; ``read()`` concatenates
records, so records are read one by one with ``readinto()``; a cipher suite name the mbedtls build
does not know is silently left out of the ClientHello, so the tunnel refuses such names
(``ValueError``) and offers exactly the suites it is given (a module model's row, manual §4.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from mbedtls import tls
from mbedtls.exceptions import TLSError

from transport.dtls import (
    AVAILABLE_CIPHERS,
    DEFAULT_CIPHERS,
    ERR_INVALID_MAC,
    ERR_TIMEOUT,
    ERR_UNKNOWN_IDENTITY,
    Address,
    DatagramEndpoint,
    configuration,
    drain,
    plaintext_alert,
    read_records,
    step_handshake,
)

__all__ = ["DEFAULT_CIPHERS", "DtlsClientTunnel", "DtlsHandshakeError"]

log = logging.getLogger(__name__)

_ALERT_REASONS = {
    20: "bad_psk",  # bad_record_mac
    51: "bad_psk",  # decrypt_error
    115: "unknown_identity",  # unknown_psk_identity
    40: "handshake_failure",
}
_TICK = 0.1
_QUEUE_LIMIT = 32


class DtlsHandshakeError(Exception):
    """The DTLS handshake failed; ``reason`` is a short machine-readable word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DtlsClientTunnel:
    """A plaintext loopback socket whose datagrams travel to ``server`` inside DTLS-PSK."""

    def __init__(
        self,
        server: Address,
        identity: bytes,
        key: bytes,
        *,
        ciphers: Sequence[str] = DEFAULT_CIPHERS,
        handshake_timeout: float = 30.0,
        renegotiate_after: float | None = None,
        local_bind: Address = ("127.0.0.1", 0),
    ) -> None:
        self._server = server
        unknown = [name for name in ciphers if name not in AVAILABLE_CIPHERS]
        if unknown or not ciphers:
            raise ValueError(f"cipher suites this mbedtls build cannot offer: {unknown or 'none given'}")
        try:
            identity_text = identity.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("python-mbedtls only supports UTF-8 PSK identities") from exc
        self._config = configuration(ciphers, handshake_timeout, pre_shared_key=(identity_text, bytes(key)))
        self._context = tls.ClientContext(self._config)
        self._handshake_timeout = handshake_timeout
        self._renegotiate_after = renegotiate_after or None
        self._local_bind = local_bind
        self._buffer: tls.TLSWrappedBuffer | None = None
        self._established = False
        self._handshake_complete = False
        self._wire: asyncio.DatagramTransport | None = None
        self._plain: asyncio.DatagramTransport | None = None
        self._app_address: Address | None = None
        self._last_received = 0.0
        self._handshake_task: asyncio.Task[None] | None = None
        self._handshake_event = asyncio.Event()
        self._handshake_failure: str | None = None
        self._queue: list[bytes] = []
        self.handshakes = 0
        self.cipher: str | None = None

    # -- public API --------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        plain, _ = await loop.create_datagram_endpoint(
            lambda: DatagramEndpoint(self._from_application, "DTLS tunnel plain socket"),
            local_addr=("127.0.0.1", 0),
        )
        self._plain = plain
        await self._open_wire(self._local_bind)
        await self._run_handshake()

    @property
    def plain_address(self) -> Address:
        if self._plain is None:
            raise RuntimeError("DtlsClientTunnel is not started")
        name = self._plain.get_extra_info("sockname")
        return (name[0], name[1])

    @property
    def local_address(self) -> Address:
        """The address the DTLS datagrams leave from (what the server sees as the peer)."""
        if self._wire is None:
            raise RuntimeError("DtlsClientTunnel is not started")
        name = self._wire.get_extra_info("sockname")
        return (name[0], name[1])

    @property
    def established(self) -> bool:
        """True while a session is up (false after the server closed it or before a handshake)."""
        return self._established

    async def rehandshake(self, new_local_port: bool = False) -> None:
        if new_local_port:
            host = self._local_bind[0]
            if self._wire is not None:
                self._wire.close()
            await self._open_wire((host, 0))
        await self._run_handshake()

    async def close(self) -> None:
        if self._handshake_task is not None and not self._handshake_task.done():
            self._handshake_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, DtlsHandshakeError):
                await self._handshake_task
        if self._buffer is not None and self._established and self._wire is not None:
            with contextlib.suppress(TLSError):
                self._buffer.shutdown()
                self._send_wire(drain(self._buffer))
        self._established = False
        for transport in (self._wire, self._plain):
            if transport is not None:
                transport.close()
        self._wire = None
        self._plain = None

    # -- handshake ---------------------------------------------------------------------------

    async def _open_wire(self, bind: Address) -> None:
        loop = asyncio.get_running_loop()
        wire, _ = await loop.create_datagram_endpoint(
            lambda: DatagramEndpoint(self._from_server, "DTLS tunnel socket"),
            local_addr=bind,
            remote_addr=self._server,
        )
        self._wire = wire

    async def _run_handshake(self) -> None:
        if self._handshake_task is None or self._handshake_task.done():
            self._handshake_task = asyncio.create_task(self._handshake())
        await asyncio.shield(self._handshake_task)

    async def _handshake(self) -> None:
        self._established = False
        self._handshake_complete = False
        self._buffer = self._context.wrap_buffers(None)
        self._handshake_failure = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._handshake_timeout
        try:
            self._step()
            while not self._handshake_complete:
                if self._handshake_failure is not None:
                    raise DtlsHandshakeError(self._handshake_failure)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise DtlsHandshakeError("timeout")
                self._handshake_event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._handshake_event.wait(), min(_TICK, remaining))
                if not self._handshake_complete and self._handshake_failure is None:
                    self._step()  # lets mbedtls retransmit when its timer expired
        except DtlsHandshakeError:
            self._queue.clear()
            raise
        self.handshakes += 1
        self._last_received = loop.time()
        cipher = self._buffer.cipher()
        self.cipher = cipher.decode() if isinstance(cipher, bytes) else cipher
        queued, self._queue = self._queue, []
        for datagram in queued:
            self._encrypt_and_send(datagram)

    def _step(self) -> None:
        buffer = self._buffer
        if buffer is None:
            return
        try:
            if step_handshake(buffer, self._send_wire):
                self._established = True
                self._handshake_complete = True
        except TLSError as exc:
            if self._handshake_failure is None:
                self._handshake_failure = self._reason(getattr(exc, "err", None))
        finally:
            self._send_wire(drain(buffer))
        self._handshake_event.set()

    @staticmethod
    def _reason(err: int | None) -> str:
        if err == ERR_INVALID_MAC:
            return "bad_psk"
        if err == ERR_TIMEOUT:
            return "timeout"
        if err == ERR_UNKNOWN_IDENTITY:
            return "unknown_identity"
        return "protocol"

    # -- data path ---------------------------------------------------------------------------

    def _from_server(self, data: bytes, addr: Address) -> None:
        buffer = self._buffer
        if buffer is None:
            return
        if not self._established:
            if self._handshake_complete or self._handshake_task is None or self._handshake_task.done():
                return  # no session and no handshake running: nothing can use this datagram
            alert = plaintext_alert(data)
            if alert is not None and self._handshake_failure is None:
                self._handshake_failure = _ALERT_REASONS.get(alert, f"alert:{alert}")
            buffer.receive_from_network(data)
            self._step()
            return
        buffer.receive_from_network(data)
        try:
            for record in read_records(buffer):
                self._last_received = asyncio.get_running_loop().time()
                if self._app_address is not None and self._plain is not None:
                    self._plain.sendto(record, self._app_address)
        except (tls.RaggedEOF, TLSError) as exc:
            log.info("DTLS session to %s ended: %s", self._server, exc)
            self._established = False
        self._send_wire(drain(buffer))

    def _from_application(self, data: bytes, addr: Address) -> None:
        self._app_address = addr
        handshaking = self._handshake_task is not None and not self._handshake_task.done()
        if handshaking or not self._established or self._renegotiation_due():
            if len(self._queue) < _QUEUE_LIMIT:
                self._queue.append(data)
            if not handshaking:
                self._handshake_task = asyncio.get_running_loop().create_task(self._background_handshake())
            return
        self._encrypt_and_send(data)

    async def _background_handshake(self) -> None:
        try:
            await self._handshake()
        except DtlsHandshakeError as exc:
            log.warning("DTLS re-handshake with %s failed: %s", self._server, exc.reason)

    def _renegotiation_due(self) -> bool:
        if self._renegotiate_after is None:
            return False
        return asyncio.get_running_loop().time() - self._last_received >= self._renegotiate_after

    def _encrypt_and_send(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer is None or not self._established:
            return
        try:
            buffer.write(data)
        except TLSError as exc:
            log.info("cannot encrypt toward %s: %s", self._server, exc)
            self._established = False
            return
        self._send_wire(drain(buffer))

    def _send_wire(self, data: bytes) -> None:
        if data and self._wire is not None and not self._wire.is_closing():
            self._wire.sendto(data)
