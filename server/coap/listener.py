"""One CoAP listener: an aiocoap server context bound to one (address, port).

Uplink: every request that reaches the listener is parsed here into a typed request
(`server.services.requests`) and handed to the `UplinkHandler`; its `UplinkResult` becomes the
CoAP response. The RD paths are `/rd` (Register), `/rd/<id>` (Update, De-register), `/bs`
(Bootstrap-Request) and `/dp` (Send), per Core 1.1.1 §6 and Transport 1.1.1 §6.4.

Downlink: `send()` and `observe()` send requests from this listener's own socket, which LwM2M
requires (a client behind NAT only hears from the address it registered with).

Robustness: unparsable datagrams are dropped by aiocoap; we count them by listening to its log
records (aiocoap's transports are not part of its API, its log messages are stable), and count
every request we answer 4.00. Nothing raised by a handler reaches the socket: it becomes 5.00.
A datagram whose string option is not UTF-8 makes aiocoap's decoder raise past its own "unparsable"
handling; `_install_decode_guard` catches that at the transport's receive method (another
aiocoap internal, see below) and counts it as malformed.

Acknowledge after commit (RFC 7252 §4.2, §5.2.2; RFC 7641 §4.5): a confirmable notification is
ACKed only once the notification handler's future (the store write) has completed, so an ACK the
device sees means the values are in the database. aiocoap's message manager sends that empty ACK
right after the observation callback returns; we wrap two of its methods on this context only —
`dispatch_message` (to see each notification with its message id before aiocoap does) and
`_send_empty_ack` (to hold the ACK back). A notification of a live observation (and a duplicate of
one) stops at `dispatch_message`: it is delivered and, when confirmable, ACKed after the commit
without passing aiocoap's token and observation layers, which would only find it claimed. With the token override and the decode guard these are
the aiocoap internals we rely on, pinned by `aiocoap==0.4.17` and covered by the fault tests.
- Every notification is delivered once per (remote, message id), kept for EXCHANGE_LIFETIME: a
  retransmitted duplicate is not stored again, and its ACK waits for the first copy's commit.
- A notification older than the newest one (RFC 7641 §3.4) is still delivered: aiocoap would
  ACK it without a callback, and an acknowledged datapoint must not be lost.
- A failed write sends no ACK and forgets the message id, so the device's retransmission is
  delivered and stored again (the write is retried, nothing is stored twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiocoap
import aiocoap.error
import aiocoap.resource
from aiocoap.numbers.codes import Code
from aiocoap.numbers.constants import TransportTuning
from aiocoap.numbers.types import CON, NON

from lwm2m.numbers import CoapCode, ContentFormat
from server.coap.firmware_resource import FirmwareServer
from server.services.errors import DeviceTimeout, DeviceUnreachable
from server.services.requests import (
    BootstrapRequest,
    DeregisterRequest,
    Downlink,
    DownlinkResponse,
    Origin,
    RegisterRequest,
    SendRequest,
    UpdateRequest,
    UplinkResult,
)

log = logging.getLogger(__name__)

# Custom options LwM2M carriers put on registration messages (OneNET's auth code is option 63).
CARRIED_OPTIONS = (63,)

_METHODS = {
    "GET": Code.GET,
    "PUT": Code.PUT,
    "POST": Code.POST,
    "DELETE": Code.DELETE,
    "FETCH": Code.FETCH,
    "IPATCH": Code.iPATCH,
}


class UplinkHandler(Protocol):
    async def register(self, request: RegisterRequest) -> UplinkResult: ...

    async def update(self, request: UpdateRequest) -> UplinkResult: ...

    async def deregister(self, request: DeregisterRequest) -> UplinkResult: ...

    async def send(self, request: SendRequest) -> UplinkResult: ...

    async def bootstrap(self, request: BootstrapRequest) -> UplinkResult: ...


class InvalidUplink(ValueError):
    """A request the listener answers 4.00 without involving the services."""


@dataclass(slots=True)
class ListenerCounters:
    requests: int = 0
    bad_requests: int = 0
    malformed_datagrams: int = 0
    handler_errors: int = 0
    downlinks: int = 0
    downlink_timeouts: int = 0
    notifications: int = 0
    duplicate_notifications: int = 0
    acks_deferred: int = 0
    acks_withheld: int = 0


class _MalformedCounter(logging.Handler):
    """Counts aiocoap's 'dropped' log records for one context."""

    MARKERS = ("Ignoring unparsable message", "those don't fit")

    def __init__(self, counters: ListenerCounters) -> None:
        super().__init__(level=logging.DEBUG)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if any(marker in message for marker in self.MARKERS):
            self.counters.malformed_datagrams += 1


def _host_of(remote: Any) -> tuple[str, int]:
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr is None:
        raise InvalidUplink("request without a UDP source address")
    host, port = sockaddr[0], sockaddr[1]
    if host.startswith("::ffff:"):
        host = host[7:]
    return host, int(port)


def _query(request: aiocoap.Message) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in request.opt.uri_query:
        key, sep, value = item.partition("=")
        params[key] = value if sep else None
    return params


def _int_param(params: dict[str, str | None], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidUplink(f"{name}={raw!r} is not a number")
    return int(raw)


def _options(request: aiocoap.Message) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for option in request.opt.option_list():
        if int(option.number) in CARRIED_OPTIONS:
            found[int(option.number)] = option.encode()
    return found


def _link_payload(request: aiocoap.Message) -> str:
    cf = request.opt.content_format
    if cf is not None and int(cf) != ContentFormat.LINK:
        raise InvalidUplink(f"registration payload must be link format, not {int(cf)}")
    try:
        return request.payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUplink("registration payload is not UTF-8") from exc


class _UplinkResource(aiocoap.resource.Resource):
    """Catch-all resource that routes `/rd`, `/rd/<id>`, `/bs` and `/dp`."""

    def __init__(self, listener: CoapListener) -> None:
        super().__init__()
        self.listener = listener

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        # Firmware downloads (`/fw/{id}`) are served block by block by `FirmwareServer`.
        return not (request.opt.uri_path and request.opt.uri_path[0] == "fw")

    async def render_to_pipe(self, pipe: Any) -> None:
        # Register and Update: the answer is on the wire (aiocoap sends it from add_response,
        # at the end of the render) before any request of their after-hooks leaves for the peer.
        request = pipe.request
        peer = _peer(request.remote) if tuple(request.opt.uri_path)[:1] == ("rd",) else None
        if peer is None:
            await super().render_to_pipe(pipe)
            return
        gate = self.listener.answering(peer)
        try:
            await super().render_to_pipe(pipe)
        finally:
            self.listener.answered(peer, gate)

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        listener = self.listener
        listener.counters.requests += 1
        try:
            typed = self._parse(request)
        except InvalidUplink as exc:
            listener.counters.bad_requests += 1
            return aiocoap.Message(code=Code.BAD_REQUEST, payload=str(exc).encode()[:120])
        if typed is None:
            return aiocoap.Message(code=Code.NOT_FOUND)
        if isinstance(typed, aiocoap.Message):
            return typed
        try:
            result = await listener.dispatch(typed)
        except Exception:
            listener.counters.handler_errors += 1
            log.exception("uplink handler failed for %s", type(typed).__name__)
            return aiocoap.Message(code=Code.INTERNAL_SERVER_ERROR)
        if result.code == CoapCode.BAD_REQUEST:
            listener.counters.bad_requests += 1
        response = aiocoap.Message(code=Code(int(result.code)), payload=result.diagnostic.encode()[:120])
        if result.location:
            response.opt.location_path = result.location
        return response

    def _parse(
        self, request: aiocoap.Message
    ) -> (
        RegisterRequest
        | UpdateRequest
        | DeregisterRequest
        | SendRequest
        | BootstrapRequest
        | aiocoap.Message
        | None
    ):
        path = tuple(request.opt.uri_path)
        method = request.code
        host, port = _host_of(request.remote)
        origin = self.listener.origin_for(host, port)
        if len(request.payload) > self.listener.max_payload:
            return aiocoap.Message(code=Code.REQUEST_ENTITY_TOO_LARGE)
        if path[:1] == ("fw",) and self.listener.firmware is not None:
            return self.listener.firmware.render(request, origin)
        if path == ("rd",):
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            params = _query(request)
            endpoint = params.get("ep")
            if not endpoint:
                raise InvalidUplink("registration without ep=")
            lifetime = _int_param(params, "lt")
            if lifetime is not None and lifetime == 0:
                raise InvalidUplink("lifetime must be positive")
            return RegisterRequest(
                origin=origin,
                endpoint=endpoint,
                lifetime=86400 if lifetime is None else lifetime,
                lwm2m_version=params.get("lwm2m") or "1.0",
                binding=params.get("b") or "U",
                queue_mode="Q" in params or "Q" in (params.get("b") or ""),
                sms=params.get("sms"),
                object_links=_link_payload(request),
                options=_options(request),
            )
        if len(path) == 2 and path[0] == "rd":
            if method == Code.DELETE:
                return DeregisterRequest(origin=origin, registration_id=path[1])
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            params = _query(request)
            lifetime = _int_param(params, "lt")
            if lifetime is not None and lifetime == 0:
                raise InvalidUplink("lifetime must be positive")
            return UpdateRequest(
                origin=origin,
                registration_id=path[1],
                lifetime=lifetime,
                binding=params.get("b"),
                sms=params.get("sms"),
                object_links=_link_payload(request) if request.payload else None,
                options=_options(request),
            )
        if path == ("bs",):
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            params = _query(request)
            endpoint = params.get("ep")
            if not endpoint:
                raise InvalidUplink("bootstrap request without ep=")
            return BootstrapRequest(
                origin=origin,
                endpoint=endpoint,
                preferred_content_format=_int_param(params, "pct"),
                options=_options(request),
            )
        if path == ("dp",):
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            cf = request.opt.content_format
            return SendRequest(
                origin=origin, content_format=None if cf is None else int(cf), payload=request.payload
            )
        return None


def _peer(remote: Any) -> tuple[str, int] | None:
    try:
        return _host_of(remote)
    except InvalidUplink:
        return None


def _chain(source: asyncio.Future[Any] | None, target: asyncio.Future[Any]) -> None:
    """Complete `target` like `source` (None: at once)."""
    if source is None:
        if not target.done():
            target.set_result(None)
        return

    def copy(f: asyncio.Future[Any]) -> None:
        if target.done():
            return
        if f.cancelled():
            target.cancel()
        elif f.exception() is not None:
            target.set_exception(f.exception())  # type: ignore[arg-type]
        else:
            target.set_result(f.result())

    source.add_done_callback(copy)


def _retrieve_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _owned(request: Any) -> Any:
    """Give an aiocoap request's response an owner for its outcome. The caller may stop waiting
    (our timeout, a cancelled caller) while aiocoap goes on retransmitting to a client that died;
    the final ConRetransmitsExceeded, or the LibraryShutdown of a stop, is then taken here instead
    of being reported as "Future exception was never retrieved"."""
    request.response.add_done_callback(_retrieve_outcome)
    return request


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


EXCHANGE_LIFETIME = TransportTuning().EXCHANGE_LIFETIME

# What a notification handler returns: a future that completes once the values are committed
# (the ACK is sent then; an exception withholds it), or None when there is nothing to wait for.
NotificationHandler = Callable[[DownlinkResponse], "asyncio.Future[Any] | None"]
_MessageKey = tuple[Any, int]


@dataclass(slots=True)
class _Subscription:
    remote: Any
    handle: ObservationHandle
    deliver: Callable[[aiocoap.Message], None]


class ObservationHandle:
    """A running observation on a client: notifications go to the callback until cancelled."""

    def __init__(self, request: Any, token: bytes, forget_token: Callable[[bytes], None]) -> None:
        self._request = request
        self.token = token
        self._forget_token = forget_token
        self.cancelled = False

    def cancel(self) -> None:
        """Forget the observation locally; the next notification is answered with a Reset."""
        if not self.cancelled:
            self.cancelled = True
            with contextlib.suppress(Exception):
                self._request.observation.cancel()
            self._forget_token(self.token)


class CoapListener:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        handler: UplinkHandler,
        *,
        max_payload: int = 64 * 1024,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.max_payload = max_payload
        self.counters = ListenerCounters()
        self.context: aiocoap.Context | None = None
        # Set by the DTLS terminator: maps an inner address to the peer's identity.
        self.identity_lookup: Callable[[str, int], str | None] | None = None
        # Serves `GET /fw/{id}` (server.coap.firmware_resource), set by the server.
        self.firmware: FirmwareServer | None = None
        self._counter_handler = _MalformedCounter(self.counters)
        self._forced_tokens: dict[int, bytes] = {}
        # Acknowledge after commit: observation token -> subscription; (remote, mid) of every
        # notification seen -> the future of its write (None: nothing to wait for).
        self._subscriptions: dict[bytes, _Subscription] = {}
        self._seen: dict[_MessageKey, asyncio.Future[Any] | None] = {}
        self._seen_order: deque[tuple[float, _MessageKey]] = deque()
        # Peers whose Register/Update is being answered: downlinks to them wait for the answer.
        self._answering: dict[tuple[str, int], tuple[int, asyncio.Event]] = {}
        # Observations being set up, by device address; notifications that overtook the set-up.
        self._observing: dict[tuple[str, int], int] = {}
        self._early: dict[_MessageKey, asyncio.Future[Any]] = {}
        # A cluster node's handler for notifications on tokens this listener did not create
        # (server.cluster): given (token, host, port), a notification handler or None (Reset).
        self.stray_notification: Callable[[bytes, str, int], NotificationHandler | None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self) -> None:
        loggername = f"coap-server.{self.name}.{id(self)}"
        logging.getLogger(loggername).addHandler(self._counter_handler)
        self.context = await aiocoap.Context.create_server_context(
            _UplinkResource(self), bind=(self.host, self.port), transports=["udp6"], loggername=loggername
        )
        if self.port == 0:
            self.port = self._bound_port()
        self._install_token_override()
        self._install_ack_after_commit()
        self._install_decode_guard()
        self._install_firmware_blocks_uncached()

    def _forget_token(self, token: bytes) -> None:
        """Drop the token from aiocoap's table of open requests, so that the next response on it
        (a notification) is answered with Reset at once rather than one notification later."""
        self._subscriptions.pop(token, None)
        if self.context is None:
            return
        for interface in self.context.request_interfaces:
            table = getattr(interface, "outgoing_requests", None)
            if isinstance(table, dict):
                for key in [k for k in table if k[0] == token]:
                    table.pop(key, None)

    def _install_token_override(self) -> None:
        """Let `send(..., token=...)` reuse a token: an Observe=1 cancel must carry the token of
        the observation it cancels (RFC 7641 §3.6), and aiocoap always draws a fresh one."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            if not hasattr(interface, "next_token"):
                continue
            original_request = interface.request

            def request(pipe: Any, _interface: Any = interface, _original: Any = original_request) -> None:
                forced = self._forced_tokens.pop(id(pipe.request), None)
                if forced is None:
                    _original(pipe)
                    return
                draw = _interface.next_token
                _interface.next_token = lambda: forced
                try:
                    _original(pipe)
                finally:
                    _interface.next_token = draw

            interface.request = request

    def _install_decode_guard(self) -> None:
        """aiocoap 0.4.17 lets a string option with invalid UTF-8 escape `Message.decode` as a
        UnicodeDecodeError, which reaches the event loop's exception handler (logged at ERROR)
        for every such datagram. Wrap the UDP transport's `datagram_msg_received` on this
        context: such a datagram is counted as malformed and dropped, like any unparsable one."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            message_interface = getattr(
                getattr(interface, "token_interface", None), "message_interface", None
            )
            original = getattr(message_interface, "datagram_msg_received", None)
            if message_interface is None or original is None:
                continue

            def datagram_msg_received(
                data: bytes, ancdata: Any, flags: int, address: Any, _original: Any = original
            ) -> None:
                try:
                    _original(data, ancdata, flags, address)
                except UnicodeDecodeError:
                    self.counters.malformed_datagrams += 1
                except Exception:
                    # Raised by the dispatch; aiocoap has logged it already, with its traceback.
                    self.counters.handler_errors += 1

            message_interface.datagram_msg_received = datagram_msg_received

    def _install_firmware_blocks_uncached(self) -> None:
        """aiocoap remembers every request's message id, with its response, for EXCHANGE_LIFETIME
        (247 s) to answer a duplicate (RFC 7252 §4.5); for a firmware campaign that is every
        block of the last four minutes (827 MiB with 1,000 devices). A `GET /fw/{id}` block is
        idempotent, which §4.5 lets a server process again instead: such a request is not
        remembered, and a retransmission is answered afresh from the one copy of the package.
        Wraps the message manager's `_deduplicate_message` (an aiocoap internal, pinned version)."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            manager = getattr(interface, "token_interface", None)
            deduplicate = getattr(manager, "_deduplicate_message", None)
            if manager is None or deduplicate is None:
                continue

            def deduplicate_message(message: aiocoap.Message, _original: Any = deduplicate) -> bool:
                if message.code == Code.GET and tuple(message.opt.uri_path[:1]) == ("fw",):
                    return False
                result: bool = _original(message)
                return result

            manager._deduplicate_message = deduplicate_message

    def _install_ack_after_commit(self) -> None:
        """Wrap the message manager's `dispatch_message` and `_send_empty_ack` (module docstring)."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            manager = getattr(interface, "token_interface", None)
            dispatch = getattr(manager, "dispatch_message", None)
            send_ack = getattr(manager, "_send_empty_ack", None)
            if manager is None or dispatch is None or send_ack is None:
                continue

            def dispatch_message(
                message: aiocoap.Message, _original: Any = dispatch, _send_ack: Any = send_ack
            ) -> None:
                if self._claim_notification(message):
                    # Ours entirely: aiocoap's token and observation layers would only find it
                    # claimed; a CON gets its empty ACK once the write commits.
                    if message.mtype == CON:
                        self._acknowledge(message.remote, message.mid, "notification", _send_ack)
                    return
                _original(message)

            def send_empty_ack(remote: Any, mid: int, reason: str, _original: Any = send_ack) -> None:
                self._acknowledge(remote, mid, reason, _original)

            manager.dispatch_message = dispatch_message
            manager._send_empty_ack = send_empty_ack

    def _claim_notification(self, message: aiocoap.Message) -> bool:
        """Deliver a notification of one of our observations once per (remote, message id).
        True when it is fully handled here (delivered now, or a duplicate of one that was): the
        caller acknowledges it and aiocoap does not see it."""
        if (
            message.opt.observe is None
            or message.opt.block2 is not None
            or message.mtype not in (CON, NON)
            or not message.code.is_response()
        ):
            return False
        key = (message.remote, message.mid)
        if key in self._seen:
            self.counters.duplicate_notifications += 1
            # A copy held for an observation still being set up goes on to aiocoap with it.
            return key not in self._early
        subscription = self._subscriptions.get(bytes(message.token))
        if subscription is None:
            if _peer(message.remote) in self._observing:
                # A notification that overtook the observation's set-up (the device notified
                # right after its first response): hold its ACK until the observation's
                # callback delivers it and the write commits.
                placeholder: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._remember_seen(key, placeholder)
                self._early[key] = placeholder
                return False
            stray = self.stray_notification
            peer = _peer(message.remote)
            handler = stray(bytes(message.token), *peer) if stray is not None and peer is not None else None
            if handler is None:
                return False
            self._deliver_once(message, handler)
            return True
        if subscription.handle.cancelled or subscription.remote != message.remote:
            return False
        subscription.deliver(message)
        return True

    def _remember_seen(self, key: _MessageKey, future: asyncio.Future[Any] | None) -> None:
        self._expire_seen()
        self._seen[key] = future
        self._seen_order.append((time.monotonic() + EXCHANGE_LIFETIME, key))

    def _deliver_once(self, message: aiocoap.Message, handler: NotificationHandler) -> None:
        key = (message.remote, message.mid)
        early = self._early.pop(key, None)
        if early is None:
            if key in self._seen:
                return
            self._remember_seen(key, None)
        self.counters.notifications += 1
        try:
            future = handler(self._response(message))
        except Exception:
            log.exception("notification handler failed")
            if early is not None:
                early.cancel()
            return
        if early is not None:
            _chain(future, early)
            future = early
        if future is not None:
            self._remember_write(key, future)

    def _drop_early(self, peer: tuple[str, int] | None) -> None:
        """The observation was not set up: notifications held for it stay unacknowledged."""
        for key in [k for k in self._early if _peer(k[0]) == peer]:
            self._early.pop(key).cancel()
            self._seen.pop(key, None)

    def _remember_write(self, key: _MessageKey, future: asyncio.Future[Any]) -> None:
        self._seen[key] = future

        def done(f: asyncio.Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None:
                # Forget the message id: the device's retransmission is delivered again.
                if self._seen.get(key) is f:
                    del self._seen[key]

        future.add_done_callback(done)

    def _expire_seen(self) -> None:
        now = time.monotonic()
        order = self._seen_order
        while order and order[0][0] <= now:
            _deadline, key = order.popleft()
            if key not in self._seen:
                continue
            entry = self._seen[key]
            if entry is None or entry.done():
                del self._seen[key]

    def _acknowledge(self, remote: Any, mid: int, reason: str, send: Callable[[Any, int, str], None]) -> None:
        future = self._seen.get((remote, mid))
        if future is None:
            send(remote, mid, reason)
            return
        if not future.done():
            self.counters.acks_deferred += 1
        future.add_done_callback(lambda f: self._acknowledge_when_stored(f, remote, mid, reason, send))

    def _acknowledge_when_stored(
        self,
        future: asyncio.Future[Any],
        remote: Any,
        mid: int,
        reason: str,
        send: Callable[[Any, int, str], None],
    ) -> None:
        if future.cancelled():
            self.counters.acks_withheld += 1
            return
        if future.exception() is not None:
            self.counters.acks_withheld += 1
            log.warning("notification %s from %s not stored, not acknowledged", mid, remote)
            return
        if self.context is None:
            return
        try:
            send(remote, mid, reason)
        except Exception as exc:  # the transport may be closing
            log.info("could not acknowledge notification %s from %s: %s", mid, remote, exc)

    def _bound_port(self) -> int:
        assert self.context is not None
        for interface in self.context.request_interfaces:
            message_interface = getattr(
                getattr(interface, "token_interface", None), "message_interface", None
            )
            transport = getattr(message_interface, "transport", None)
            if transport is not None:
                return int(transport.get_extra_info("socket").getsockname()[1])
        raise RuntimeError("cannot find the bound port")

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None

    def origin_for(self, host: str, port: int) -> Origin:
        identity = self.identity_lookup(host, port) if self.identity_lookup else None
        return Origin(listener=self.name, host=host, port=port, secure_identity=identity)

    async def dispatch(
        self, request: RegisterRequest | UpdateRequest | DeregisterRequest | SendRequest | BootstrapRequest
    ) -> UplinkResult:
        if isinstance(request, RegisterRequest):
            return await self.handler.register(request)
        if isinstance(request, UpdateRequest):
            return await self.handler.update(request)
        if isinstance(request, DeregisterRequest):
            return await self.handler.deregister(request)
        if isinstance(request, SendRequest):
            return await self.handler.send(request)
        return await self.handler.bootstrap(request)

    # --- downlink --------------------------------------------------------------------------------

    def answering(self, peer: tuple[str, int]) -> asyncio.Event:
        """Hold downlinks to `peer` until `answered`: its registration answer goes first."""
        count, gate = self._answering.get(peer, (0, asyncio.Event()))
        self._answering[peer] = (count + 1, gate)
        return gate

    def answered(self, peer: tuple[str, int], gate: asyncio.Event) -> None:
        count, current = self._answering.get(peer, (1, gate))
        if count > 1:
            self._answering[peer] = (count - 1, current)
            return
        self._answering.pop(peer, None)
        gate.set()

    async def _after_answer(self, address: tuple[str, int], timeout: float) -> None:
        """The `after_register` ordering: no request reaches a client before the 2.01 (or
        2.04) of its Register (Update) that is being answered (waiting at most `timeout`)."""
        held = self._answering.get((address[0], int(address[1])))
        if held is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(held[1].wait(), timeout)

    def _message(self, address: tuple[str, int], downlink: Downlink) -> aiocoap.Message:
        msg = aiocoap.Message(
            code=_METHODS[downlink.method],
            uri=f"coap://{_format_host(address[0])}:{address[1]}",
            transport_tuning=aiocoap.Reliable if downlink.confirmable else aiocoap.Unreliable,
            payload=downlink.payload,
        )
        msg.opt.uri_host = None
        msg.opt.uri_path = downlink.path
        if downlink.query:
            msg.opt.uri_query = downlink.query
        if downlink.content_format is not None:
            msg.opt.content_format = downlink.content_format
        if downlink.accept is not None:
            msg.opt.accept = downlink.accept
        if downlink.observe is not None:
            msg.opt.observe = downlink.observe
        return msg

    @staticmethod
    def _response(message: aiocoap.Message) -> DownlinkResponse:
        cf = message.opt.content_format
        return DownlinkResponse(
            code=int(message.code),
            payload=bytes(message.payload),
            content_format=None if cf is None else int(cf),
            observe=message.opt.observe,
        )

    def _require_context(self) -> aiocoap.Context:
        if self.context is None:
            raise DeviceUnreachable(f"listener {self.name} is not running")
        return self.context

    async def send(
        self, address: tuple[str, int], downlink: Downlink, timeout: float, *, token: bytes | None = None
    ) -> DownlinkResponse:
        """Send one request to a client and wait for its (block-wise assembled) response.
        `token` reuses a given token (for an Observe=1 cancel); such a request is not block-wise."""
        await self._after_answer(address, timeout)
        context = self._require_context()
        self.counters.downlinks += 1
        message = self._message(address, downlink)
        if token is not None:
            self._forced_tokens[id(message)] = token
            request = _owned(context.request(message, handle_blockwise=False))
        else:
            request = _owned(context.request(message))
        return self._response(await self._await_response(request, address, timeout))

    async def _await_response(
        self, request: Any, address: tuple[str, int], timeout: float
    ) -> aiocoap.Message:
        """The first response of `request`, with aiocoap's errors turned into the server's."""
        try:
            # Shielded: a timeout must not cancel aiocoap's own future, or a late answer makes
            # aiocoap's set_result raise InvalidStateError inside its datagram handler.
            response: aiocoap.Message = await asyncio.wait_for(asyncio.shield(request.response), timeout)
        except TimeoutError as exc:
            self.counters.downlink_timeouts += 1
            raise DeviceTimeout(f"no answer from {address} within {timeout} s") from exc
        except aiocoap.error.ConRetransmitsExceeded as exc:
            self.counters.downlink_timeouts += 1
            raise DeviceTimeout(f"no acknowledgement from {address}") from exc
        except aiocoap.error.Error as exc:
            raise DeviceUnreachable(f"{address}: {exc}") from exc
        return response

    async def observe(
        self,
        address: tuple[str, int],
        downlink: Downlink,
        timeout: float,
        on_notification: NotificationHandler,
        on_end: Callable[[Exception | None], None],
    ) -> tuple[DownlinkResponse, ObservationHandle | None]:
        """Start an observation; returns the first response and a handle (None if not observed).
        `on_notification` returns the future of the notification's write: a CON notification is
        acknowledged when it completes (module docstring)."""
        await self._after_answer(address, timeout)
        context = self._require_context()
        self.counters.downlinks += 1
        peer = (address[0], int(address[1]))
        self._observing[peer] = self._observing.get(peer, 0) + 1
        try:
            request = _owned(context.request(self._message(address, downlink)))
            first = await self._await_response(request, address, timeout)
        except BaseException:
            self._observe_done(peer)
            raise
        first_response = self._response(first)
        if not first_response.success or first.opt.observe is None:
            self._observe_done(peer)
            return first_response, None
        handle = ObservationHandle(request, bytes(first.token), self._forget_token)

        def deliver(message: aiocoap.Message) -> None:
            self._deliver_once(message, on_notification)

        def callback(message: aiocoap.Message) -> None:
            # Notifications of this observation are claimed (and delivered) before aiocoap sees
            # them; what reaches here unclaimed is the final error response, a block-wise
            # notification (assembled by aiocoap), or one that overtook the set-up below.
            if (
                handle.cancelled
                or message is first
                or (message.mid == first.mid and message.mtype == first.mtype)
            ):
                return
            deliver(message)

        def errback(exc: Exception) -> None:
            self._subscriptions.pop(handle.token, None)
            if not handle.cancelled:
                on_end(exc)

        self._subscriptions[handle.token] = _Subscription(first.remote, handle, deliver)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                request.observation.register_callback(callback)
                request.observation.register_errback(errback)
        finally:
            self._observe_done(peer)
        return first_response, handle

    def _observe_done(self, peer: tuple[str, int]) -> None:
        remaining = self._observing.get(peer, 1) - 1
        if remaining > 0:
            self._observing[peer] = remaining
            return
        self._observing.pop(peer, None)
        self._drop_early(peer)
