"""One CoAP listener: an aiocoap server context bound to one (address, port).

Uplink: every request that reaches the listener goes to `server.coap.uplink_resource`, which
parses it and hands it to the `UplinkHandler`.

Downlink: `send()` and `observe()` send requests from this listener's own socket, which LwM2M
requires (a client behind NAT only hears from the address it registered with).

Robustness: unparsable datagrams are dropped by aiocoap; we count them by listening to its log
records (aiocoap's transports are not part of its API, its log messages are stable), and count
every request we answer 4.00. A datagram whose string option is not UTF-8 is counted as malformed
by a guard at the transport's receive method (`server.coap.aiocoap_hooks`).

Acknowledge after commit (RFC 7252 §4.2, §5.2.2; RFC 7641 §4.5): a confirmable notification is
ACKed only once the notification handler's future (the store write) has completed, so an ACK the
device sees means the values are in the database. aiocoap's message manager sends that empty ACK
right after the observation callback returns; we wrap two of its methods on this context only —
`dispatch_message` (to see each notification with its message id before aiocoap does) and
`_send_empty_ack` (to hold the ACK back). A notification of a live observation (and a duplicate of
one) stops at `dispatch_message`: it is delivered and, when confirmable, ACKed after the commit
without passing aiocoap's token and observation layers, which would only find it claimed. The
wrappers live in `server.coap.aiocoap_hooks`.
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
from typing import Any

import aiocoap
import aiocoap.error
import aiocoap.resource
from aiocoap.numbers.codes import Code
from aiocoap.numbers.constants import TransportTuning
from aiocoap.numbers.types import CON, NON

from server.coap.aiocoap_hooks import (
    ListenerCounters,
    MalformedCounter,
    install_ack_after_commit,
    install_decode_guard,
    install_firmware_blocks_uncached,
    install_token_override,
    owned,
)
from server.coap.firmware_resource import FirmwareServer
from server.coap.observations import ObservationHandle, Subscription, chain
from server.coap.uplink_resource import UplinkHandler, UplinkResource, peer_of
from server.services.errors import DeviceTimeout, DeviceUnreachable
from server.services.ports import NotificationHandler
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
from transport.failed_bind import close_sockets_left_by

log = logging.getLogger(__name__)

_METHODS = {
    "GET": Code.GET,
    "PUT": Code.PUT,
    "POST": Code.POST,
    "DELETE": Code.DELETE,
    "FETCH": Code.FETCH,
    "IPATCH": Code.iPATCH,
}


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


EXCHANGE_LIFETIME = TransportTuning().EXCHANGE_LIFETIME

_MessageKey = tuple[Any, int]


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
        self._counter_handler = MalformedCounter(self.counters)
        self._forced_tokens: dict[int, bytes] = {}
        # Acknowledge after commit: observation token -> subscription; (remote, mid) of every
        # notification seen -> the future of its write (None: nothing to wait for).
        self._subscriptions: dict[bytes, Subscription] = {}
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
        try:
            self.context = await aiocoap.Context.create_server_context(
                UplinkResource(self), bind=(self.host, self.port), transports=["udp6"], loggername=loggername
            )
        except OSError as exc:  # the port is taken: aiocoap leaves its socket open
            close_sockets_left_by(exc)
            raise
        if self.port == 0:
            self.port = self._bound_port()
        install_token_override(self.context, self._forced_tokens)
        install_ack_after_commit(self.context, self._claim_notification, self._acknowledge)
        install_decode_guard(self.context, self.counters)
        install_firmware_blocks_uncached(self.context)

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
            if peer_of(message.remote) in self._observing:
                # A notification that overtook the observation's set-up (the device notified
                # right after its first response): hold its ACK until the observation's
                # callback delivers it and the write commits.
                placeholder: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._remember_seen(key, placeholder)
                self._early[key] = placeholder
                return False
            stray = self.stray_notification
            peer = peer_of(message.remote)
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
            chain(future, early)
            future = early
        if future is not None:
            self._remember_write(key, future)

    def _drop_early(self, peer: tuple[str, int] | None) -> None:
        """The observation was not set up: notifications held for it stay unacknowledged."""
        for key in [k for k in self._early if peer_of(k[0]) == peer]:
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
            request = owned(context.request(message, handle_blockwise=False))
        else:
            request = owned(context.request(message))
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
            request = owned(context.request(self._message(address, downlink)))
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

        self._subscriptions[handle.token] = Subscription(first.remote, handle, deliver)
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
