"""The aiocoap internals a `CoapListener` wraps, on its own context only (aiocoap==0.4.17 is
pinned and the fault tests cover each): a forced token for an Observe=1 cancel, a guard against
datagrams whose string options are not UTF-8, firmware blocks left out of the duplicate cache,
and the hooks of acknowledge-after-commit. Also the listener's counters, which these count into.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import CON


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


class MalformedCounter(logging.Handler):
    """Counts aiocoap's 'dropped' log records for one context."""

    MARKERS = ("Ignoring unparsable message", "those don't fit")

    def __init__(self, counters: ListenerCounters) -> None:
        super().__init__(level=logging.DEBUG)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if any(marker in message for marker in self.MARKERS):
            self.counters.malformed_datagrams += 1


def install_token_override(context: aiocoap.Context, forced_tokens: dict[int, bytes]) -> None:
    """Let `send(..., token=...)` reuse a token: an Observe=1 cancel must carry the token of
    the observation it cancels (RFC 7641 §3.6), and aiocoap always draws a fresh one."""
    for interface in context.request_interfaces:
        if not hasattr(interface, "next_token"):
            continue
        original_request = interface.request

        def request(pipe: Any, _interface: Any = interface, _original: Any = original_request) -> None:
            forced = forced_tokens.pop(id(pipe.request), None)
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


def install_decode_guard(context: aiocoap.Context, counters: ListenerCounters) -> None:
    """aiocoap 0.4.17 lets a string option with invalid UTF-8 escape `Message.decode` as a
    UnicodeDecodeError, which reaches the event loop's exception handler (logged at ERROR)
    for every such datagram. Wrap the UDP transport's `datagram_msg_received` on this
    context: such a datagram is counted as malformed and dropped, like any unparsable one."""
    for interface in context.request_interfaces:
        message_interface = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        original = getattr(message_interface, "datagram_msg_received", None)
        if message_interface is None or original is None:
            continue

        def datagram_msg_received(
            data: bytes, ancdata: Any, flags: int, address: Any, _original: Any = original
        ) -> None:
            try:
                _original(data, ancdata, flags, address)
            except UnicodeDecodeError:
                counters.malformed_datagrams += 1
            except Exception:
                # Raised by the dispatch; aiocoap has logged it already, with its traceback.
                counters.handler_errors += 1

        message_interface.datagram_msg_received = datagram_msg_received


def install_firmware_blocks_uncached(context: aiocoap.Context) -> None:
    """aiocoap remembers every request's message id, with its response, for EXCHANGE_LIFETIME
    (247 s) to answer a duplicate (RFC 7252 §4.5); for a firmware campaign that is every
    block of the last four minutes (827 MiB with 1,000 devices). A `GET /fw/{id}` block is
    idempotent, which §4.5 lets a server process again instead: such a request is not
    remembered, and a retransmission is answered afresh from the one copy of the package.
    Wraps the message manager's `_deduplicate_message` (an aiocoap internal, pinned version)."""
    for interface in context.request_interfaces:
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


def install_ack_after_commit(
    context: aiocoap.Context,
    claim: Callable[[aiocoap.Message], bool],
    acknowledge: Callable[[Any, int, str, Callable[[Any, int, str], None]], None],
) -> None:
    """Wrap the message manager's `dispatch_message` and `_send_empty_ack` (acknowledge after
    commit, see `server.coap.listener`): a notification `claim` takes stops there, and every
    empty ACK goes through `acknowledge`, which may hold it back until the write commits."""
    for interface in context.request_interfaces:
        manager = getattr(interface, "token_interface", None)
        dispatch = getattr(manager, "dispatch_message", None)
        send_ack = getattr(manager, "_send_empty_ack", None)
        if manager is None or dispatch is None or send_ack is None:
            continue

        def dispatch_message(
            message: aiocoap.Message, _original: Any = dispatch, _send_ack: Any = send_ack
        ) -> None:
            if claim(message):
                # Ours entirely: aiocoap's token and observation layers would only find it
                # claimed; a CON gets its empty ACK once the write commits.
                if message.mtype == CON:
                    acknowledge(message.remote, message.mid, "notification", _send_ack)
                return
            _original(message)

        def send_empty_ack(remote: Any, mid: int, reason: str, _original: Any = send_ack) -> None:
            acknowledge(remote, mid, reason, _original)

        manager.dispatch_message = dispatch_message
        manager._send_empty_ack = send_empty_ack


def _retrieve_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def owned(request: Any) -> Any:
    """Give an aiocoap request's response an owner for its outcome. The caller may stop waiting
    (our timeout, a cancelled caller) while aiocoap goes on retransmitting to a client that died;
    the final ConRetransmitsExceeded, or the LibraryShutdown of a stop, is then taken here instead
    of being reported as "Future exception was never retrieved"."""
    request.response.add_done_callback(_retrieve_outcome)
    return request
