"""Delivery tracking of notifications: which CON notification the server acknowledged, which it
rejected with a Reset (RFC 7252 §4.2, RFC 7641 §3.6), including Resets to NON notifications.

aiocoap 0.4.17 has no public hook for "this CON response was ACKed": its message manager drops
the exchange silently. This module wraps the message manager's `_remove_exchange` (called for
every incoming empty ACK and RST) on one context — the only use of aiocoap internals in the
client, pinned by the `aiocoap==0.4.17` requirement and covered by the client's tests. A Reset
that ends an observation also reaches the pipe (aiocoap then cancels the observation's task);
this tracker only resolves delivery futures.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from aiocoap import Context, Message
from aiocoap.numbers.types import ACK, RST

_Key = tuple[Any, int]


class DeliveryTracker:
    """Resolves a future per sent notification: True on ACK, False on RST."""

    def __init__(self, context: Context) -> None:
        self._watched: dict[_Key, asyncio.Future[bool]] = {}
        for interface in context.request_interfaces:
            manager = getattr(interface, "token_interface", None)
            original = getattr(manager, "_remove_exchange", None)
            if manager is None or original is None:
                continue
            manager._remove_exchange = self._wrap(original)

    def _wrap(self, original: Callable[[Message], None]) -> Callable[[Message], None]:
        def remove_exchange(message: Message) -> None:
            future = self._watched.pop((message.remote, message.mid), None)
            original(message)
            if future is not None and not future.done():
                if message.mtype is ACK:
                    future.set_result(True)
                elif message.mtype is RST:
                    future.set_result(False)

        return remove_exchange

    def watch(self, sent: Message) -> asyncio.Future[bool]:
        """Call right after the message went out (its message id is set by then)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if sent.mid is None or sent.remote is None:
            future.set_result(False)
            return future
        self._watched[(sent.remote, sent.mid)] = future
        future.add_done_callback(functools.partial(self._forget, (sent.remote, sent.mid)))
        return future

    def _forget(self, key: _Key, future: asyncio.Future[bool]) -> None:
        if self._watched.get(key) is future:
            del self._watched[key]
