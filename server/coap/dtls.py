"""DTLS 1.2 PSK terminator in front of the plain CoAP listener.

Specifications: RFC 6347 (DTLS 1.2; 4.2.1 HelloVerifyRequest cookies, 4.1.2.6 anti-replay,
4.2.4 retransmission timers), RFC 4279 (PSK cipher suites), RFC 6655 / RFC 7925 (AES-128-CCM-8 for
constrained devices), OMA LwM2M 1.1 Transport 5.2.8 (PSK security mode), and the carrier behaviour
of NB-IoT "IP aging" (the device's address changes while its DTLS identity stays the same).

Design choices:

* **Terminator, not a transport.** The aiocoap server stays plain UDP. ``DtlsServer`` listens on
  the secure address, runs one DTLS session per peer address with python-mbedtls
  (``ServerContext`` + ``wrap_buffers()``: memory BIO, no sockets inside mbedtls) and gives every
  established session one *inner* UDP socket bound to loopback and connected to the CoAP listener.
  Decrypted datagrams go out of the inner socket; whatever the CoAP server sends back to that inner
  address is encrypted and sent to the peer. The CoAP layer maps an inner address back to the DTLS
  identity with :meth:`DtlsServer.session_by_inner`.
* **No state before the cookie round trip.** A ClientHello from an unknown peer is handled with a
  throw-away mbedtls context whose client transport id is the peer address: without a valid cookie
  mbedtls answers with a HelloVerifyRequest (smaller than the ClientHello, so no amplification) and
  the context is dropped. Only a ClientHello carrying a valid cookie creates a *half-open* entry.
  Datagrams from unknown peers that are not ClientHellos are dropped before touching mbedtls.
* **Bounded tables.** Half-open handshakes are capped by ``max_half_open`` (the oldest is evicted,
  reason ``"evicted"``); established sessions by ``max_sessions`` (a handshake completing while the
  table is full is refused, reason ``"too_many"``, unless it replaces a session of the same
  identity or peer). Half-open handshakes die after ``handshake_timeout``; sessions idle (no
  datagram either way) for ``idle_timeout`` are evicted and their inner socket closed.
* **Retransmission.** mbedtls keeps its own RFC 6347 4.2.4 timers (``mbedtls_timing`` callbacks set
  by python-mbedtls) but only acts on them when the handshake is stepped, so a sweeper task steps
  every half-open handshake periodically; mbedtls then resends its last flight when due.
* **IP aging.** A handshake completing for an identity that already has a session takes over the
  old session's inner socket (same inner address, so the registration and its queued requests
  follow), the old session is dropped, ``on_session`` receives the old peer address and
  ``rehandshakes_moved`` counts the move.
* **Failure reasons** (``DtlsCounters.handshakes_failed``): ``unknown_identity`` (lookup returned
  None), ``bad_psk`` (Finished could not be verified), ``timeout``, ``peer_alert``,
  ``no_shared_cipher``, ``evicted``, ``too_many``, ``protocol`` (anything else).
* **The datagram handler never raises.** Every datagram is processed inside a catch-all that
  counts it as dropped.

python-mbedtls 2.10.1 quirks handled here:

* ``pre_shared_key_store`` is consulted as ``store[identity.decode("utf8")]`` from inside
  ``do_handshake()``; any exception means "unknown identity". The Mapping passed here calls
  ``psk_lookup`` with the identity bytes and records which handshake asked (the callback has no
  per-connection argument, so the handshake being stepped is remembered around each step).
  Identities that are not valid UTF-8 can therefore never be accepted.
* After a HelloVerifyRequest the buffer is reset, which also forgets the client transport id.
* The memory BIOs are byte streams, not datagram queues: exactly one datagram is fed at a time
  and the output is flushed after every operation. ``read()`` concatenates records, so records
  are read one by one with ``readinto()``.
* Any error inside ``readinto()`` other than want-read resets the whole connection, so the
  session is closed on such an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from mbedtls import tls
from mbedtls.exceptions import TLSError

from server.coap.dtls_sessions import (
    DtlsCounters,
    DtlsSessionInfo,
    Handshake,
    OnSession,
    PskStore,
    Session,
    peer_transport_id,
)
from transport.dtls import (
    DEFAULT_CIPHERS,
    ERR_FATAL_ALERT,
    ERR_INVALID_MAC,
    ERR_NO_CIPHER_CHOSEN,
    ERR_TIMEOUT,
    ERR_UNKNOWN_IDENTITY,
    RECORD_HEADER_LEN,
    Address,
    DatagramEndpoint,
    configuration,
    drain,
    looks_like_client_hello,
    read_records,
    step_handshake,
)

__all__ = [
    "DEFAULT_CIPHERS",
    "DtlsCounters",
    "DtlsServer",
    "DtlsSessionInfo",
]

log = logging.getLogger(__name__)

_PENDING_INNER_LIMIT = 16


class DtlsServer:
    """Terminates DTLS-PSK on ``bind`` and relays plaintext CoAP to ``backend`` over inner sockets."""

    def __init__(
        self,
        bind: Address,
        backend: Address,
        psk_lookup: Callable[[bytes], bytes | None],
        *,
        ciphers: Sequence[str] = DEFAULT_CIPHERS,
        max_sessions: int = 100_000,
        max_half_open: int = 1000,
        handshake_timeout: float = 30.0,
        idle_timeout: float = 600.0,
        on_session: OnSession | None = None,
    ) -> None:
        self._bind = bind
        self._backend = backend
        self._max_sessions = max_sessions
        self._max_half_open = max_half_open
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._on_session = on_session
        self._psk_store = PskStore(psk_lookup)
        self._context = tls.ServerContext(
            configuration(ciphers, handshake_timeout, pre_shared_key_store=self._psk_store)
        )
        self.counters = DtlsCounters()
        self._handshakes: OrderedDict[Address, Handshake] = OrderedDict()
        self._sessions: dict[Address, Session] = {}
        self._by_inner: dict[Address, Session] = {}
        self._by_identity: dict[bytes, Session] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._address: Address | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: DatagramEndpoint(self._datagram_from_peer, "DTLS listener socket"), local_addr=self._bind
        )
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self._address = (sockname[0], sockname[1])
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="dtls-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for session in list(self._sessions.values()):
            self._close_session(session, close_inner=True)
        self._handshakes.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._sync_gauges()

    @property
    def address(self) -> Address:
        if self._address is None:
            raise RuntimeError("DtlsServer is not started")
        return self._address

    # -- queries -----------------------------------------------------------------------------

    def session_by_inner(self, inner: tuple[str, int]) -> DtlsSessionInfo | None:
        session = self._by_inner.get((inner[0], inner[1]))
        return session.info if session is not None else None

    def session_by_identity(self, identity: bytes) -> DtlsSessionInfo | None:
        session = self._by_identity.get(identity)
        return session.info if session is not None else None

    def sessions(self) -> list[DtlsSessionInfo]:
        return [session.info for session in self._sessions.values()]

    # -- datagrams from DTLS peers -----------------------------------------------------------

    def _datagram_from_peer(self, data: bytes, peer: Address) -> None:
        try:
            self._dispatch(data, peer)
        except Exception:
            log.exception("dropping datagram from %s", peer)
            self.counters.datagrams_dropped += 1
        self._sync_gauges()

    def _dispatch(self, data: bytes, peer: Address) -> None:
        self.counters.bytes_in += len(data)
        if len(data) < RECORD_HEADER_LEN:
            self.counters.datagrams_dropped += 1
            return
        handshake = self._handshakes.get(peer)
        if handshake is not None:
            self._drive_handshake(handshake, data)
            return
        client_hello = looks_like_client_hello(data)
        session = self._sessions.get(peer)
        if session is not None and not client_hello:
            self._session_receive(session, data)
            return
        if client_hello:
            self._new_client_hello(data, peer)
            return
        self.counters.datagrams_dropped += 1

    def _new_client_hello(self, data: bytes, peer: Address) -> None:
        buffer = self._context.wrap_buffers()
        buffer.setcookieparam(peer_transport_id(peer))
        loop_time = asyncio.get_running_loop().time()
        handshake = Handshake(peer, buffer, loop_time + self._handshake_timeout)
        buffer.receive_from_network(data)
        outcome = self._step(handshake)
        if outcome == "verify":
            return  # HelloVerifyRequest sent; nothing kept
        if outcome == "error" or buffer._handshake_state in (
            tls.HandshakeStep.HELLO_REQUEST,
            tls.HandshakeStep.CLIENT_HELLO,
        ):
            self.counters.datagrams_dropped += 1
            return
        while len(self._handshakes) >= self._max_half_open:
            _, oldest = self._handshakes.popitem(last=False)
            self.counters.handshakes_failed["evicted"] += 1
            log.debug("evicted half-open handshake from %s", oldest.peer)
        self._handshakes[peer] = handshake
        if outcome == "done":
            self._handshake_done(handshake)

    def _drive_handshake(self, handshake: Handshake, data: bytes | None) -> None:
        if data is not None:
            handshake.buffer.receive_from_network(data)
        outcome = self._step(handshake)
        if outcome == "done":
            self._handshake_done(handshake)
        elif outcome == "verify":
            # A cookie-less ClientHello restarted the handshake on this context: forget it.
            self._handshakes.pop(handshake.peer, None)

    def _step(self, handshake: Handshake) -> str:
        """Step mbedtls until it wants input. Returns "wait", "done", "verify" or "error"."""
        buffer = handshake.buffer
        self._psk_store.current = handshake
        try:
            done = step_handshake(buffer, lambda flight: self._send(handshake.peer, flight))
            return "done" if done else "wait"
        except tls.HelloVerifyRequest:
            return "verify"
        except TLSError as exc:
            self._handshake_failed(handshake, exc)
            return "error"
        finally:
            self._psk_store.current = None
            self._send(handshake.peer, drain(buffer))

    def _handshake_failed(self, handshake: Handshake, exc: TLSError) -> None:
        reason = self._failure_reason(handshake, getattr(exc, "err", None))
        if handshake.peer in self._handshakes or reason != "protocol":
            self.counters.handshakes_failed[reason] += 1
        self._handshakes.pop(handshake.peer, None)
        log.info("DTLS handshake from %s failed: %s (%s)", handshake.peer, reason, exc)

    @staticmethod
    def _failure_reason(handshake: Handshake, err: int | None) -> str:
        if handshake.unknown_identity or err == ERR_UNKNOWN_IDENTITY:
            return "unknown_identity"
        if err == ERR_INVALID_MAC and handshake.identity is not None:
            return "bad_psk"
        if err == ERR_TIMEOUT:
            return "timeout"
        if err == ERR_FATAL_ALERT:
            return "peer_alert"
        if err == ERR_NO_CIPHER_CHOSEN:
            return "no_shared_cipher"
        return "protocol"

    def _handshake_done(self, handshake: Handshake) -> None:
        self._handshakes.pop(handshake.peer, None)
        peer = handshake.peer
        identity = handshake.identity or b""
        previous = self._by_identity.get(identity)
        same_peer = self._sessions.get(peer)
        replacing = previous is not None or same_peer is not None
        if not replacing and len(self._sessions) >= self._max_sessions:
            self.counters.handshakes_failed["too_many"] += 1
            handshake.buffer.shutdown()
            self._send(peer, drain(handshake.buffer))
            return
        now_wall = time.time()
        cipher = handshake.buffer.cipher() or ""
        if isinstance(cipher, bytes):
            cipher = cipher.decode("ascii", "replace")
        if same_peer is not None and same_peer is not previous:
            self._close_session(same_peer, close_inner=True)
        info = DtlsSessionInfo(
            peer=peer,
            identity=identity,
            inner=("", 0),
            cipher=cipher,
            established_at=now_wall,
            last_activity=now_wall,
        )
        session = Session(info, handshake.buffer, asyncio.get_running_loop().time())
        moved_from: Address | None = None
        if previous is not None:
            if previous.info.peer != peer:
                moved_from = previous.info.peer
                self.counters.rehandshakes_moved += 1
            info.inner = previous.info.inner
            session.inner_sock = previous.inner_sock
            session.inner_transport = previous.inner_transport
            session.inner_pending = previous.inner_pending
            self._close_session(previous, close_inner=False)
        else:
            self._open_inner(session)
        self._sessions[peer] = session
        self._by_inner[session.info.inner] = session
        self._by_identity[identity] = session
        self.counters.handshakes_ok += 1
        log.info("DTLS session %r from %s via %s (%s)", identity, peer, session.info.inner, cipher)
        if self._on_session is not None:
            try:
                self._on_session(session.info, moved_from)
            except Exception:
                log.exception("on_session callback failed")

    # -- established sessions ----------------------------------------------------------------

    def _open_inner(self, session: Session) -> None:
        family = socket.AF_INET6 if ":" in self._backend[0] else socket.AF_INET
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((host, 0))
        sock.connect(self._backend)
        name = sock.getsockname()
        inner = (name[0], name[1])
        session.info.inner = inner
        session.inner_sock = sock
        task = asyncio.get_running_loop().create_task(self._attach_inner(session, sock, inner))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attach_inner(self, session: Session, sock: socket.socket, inner: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: DatagramEndpoint(self._inner_receiver(inner), f"inner socket {inner}"), sock=sock
            )
        except Exception:
            log.exception("cannot attach inner socket %s", inner)
            sock.close()
            return
        owner = self._by_inner.get(inner)
        if owner is None or owner.inner_sock is not sock:
            transport.close()  # the session ended while the endpoint was being created
            return
        owner.inner_transport = transport
        for datagram in owner.inner_pending:
            transport.sendto(datagram)
        owner.inner_pending.clear()

    def _session_receive(self, session: Session, data: bytes) -> None:
        buffer = session.buffer
        buffer.receive_from_network(data)
        delivered = False
        try:
            for record in read_records(buffer):
                delivered = True
                self._to_backend(session, record)
        except (tls.RaggedEOF, TLSError) as exc:
            log.info("DTLS session from %s closed: %s", session.info.peer, exc)
            self._send(session.info.peer, drain(buffer))
            self._close_session(session, close_inner=not self._moved_away(session))
            return
        self._send(session.info.peer, drain(buffer))
        if delivered:
            self._touch(session)
        else:
            self.counters.datagrams_dropped += 1

    def _moved_away(self, session: Session) -> bool:
        return self._by_inner.get(session.info.inner) is not session

    def _to_backend(self, session: Session, plaintext: bytes) -> None:
        if session.inner_transport is not None:
            session.inner_transport.sendto(plaintext)
        elif len(session.inner_pending) < _PENDING_INNER_LIMIT:
            session.inner_pending.append(plaintext)
        else:
            self.counters.datagrams_dropped += 1

    def _inner_receiver(self, inner: Address) -> Callable[[bytes, Address], None]:
        return lambda data, _addr: self._datagram_from_backend(inner, data)

    def _datagram_from_backend(self, inner: Address, data: bytes) -> None:
        try:
            session = self._by_inner.get(inner)
            if session is None:
                self.counters.datagrams_dropped += 1
                return
            session.buffer.write(data)
            self._send(session.info.peer, drain(session.buffer))
            self._touch(session)
        except Exception:
            log.exception("dropping datagram from the CoAP listener toward %s", inner)
            self.counters.datagrams_dropped += 1

    def _touch(self, session: Session) -> None:
        session.idle_since = asyncio.get_running_loop().time()
        session.info.last_activity = time.time()

    def _close_session(self, session: Session, *, close_inner: bool) -> None:
        peer = session.info.peer
        if self._sessions.get(peer) is session:
            del self._sessions[peer]
        if self._by_identity.get(session.info.identity) is session:
            del self._by_identity[session.info.identity]
        if close_inner:
            if self._by_inner.get(session.info.inner) is session:
                del self._by_inner[session.info.inner]
            if session.inner_transport is not None:
                session.inner_transport.close()
            elif session.inner_sock is not None:
                session.inner_sock.close()
        session.inner_transport = None
        session.inner_sock = None
        session.inner_pending = []

    # -- timers ------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        interval = max(0.01, min(0.25, self._handshake_timeout / 4, self._idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                self._sweep()
            except Exception:
                log.exception("DTLS sweeper failed")
            self._sync_gauges()

    def _sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        for handshake in list(self._handshakes.values()):
            if now >= handshake.deadline:
                self._handshakes.pop(handshake.peer, None)
                self.counters.handshakes_failed["timeout"] += 1
                continue
            self._drive_handshake(handshake, None)  # lets mbedtls retransmit its flight when due
        for session in list(self._sessions.values()):
            if now - session.idle_since >= self._idle_timeout:
                log.info("evicting idle DTLS session %r from %s", session.info.identity, session.info.peer)
                self.counters.sessions_idle_evicted += 1
                self._close_session(session, close_inner=True)

    # -- helpers -----------------------------------------------------------------------------

    def _send(self, peer: Address, data: bytes) -> None:
        if data and self._transport is not None:
            self._transport.sendto(data, peer)
            self.counters.bytes_out += len(data)

    def _sync_gauges(self) -> None:
        self.counters.sessions = len(self._sessions)
        self.counters.half_open = len(self._handshakes)
