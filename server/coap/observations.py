"""A listener's running observations: the handle a caller keeps (`ObservationHandle`), the
subscription the listener routes notifications by, and `chain`, which completes a held
acknowledgement like the store write of the notification it waits for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiocoap


@dataclass(slots=True)
class Subscription:
    """One of our observations as the listener routes its notifications."""

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


def chain(source: asyncio.Future[Any] | None, target: asyncio.Future[Any]) -> None:
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
