"""In-process publish/subscribe of server events (registrations, notifications, requests, ...).

Every change the services make becomes an `Event`. Subscribers get an async iterator backed by a
bounded queue; a subscriber that falls more than `maxsize` events behind loses the oldest ones and
is told how many through `Subscription.dropped` (a slow web page must not stall the server).

Kinds are `EventKind` members (server.event_kinds); an event keeps its kind as the plain string
(its wire name), so events relayed from another node (server.cluster) and events read back from
the log compare equal to the enum the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from server.event_kinds import EventKind

__all__ = ["Event", "EventBus", "EventKind", "Subscription"]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    endpoint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    seq: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "time": self.time,
            "data": self.data,
        }


class Subscription:
    """An async iterator of events, optionally filtered by endpoint or kind prefix."""

    def __init__(self, bus: EventBus, maxsize: int, predicate: Callable[[Event], bool] | None) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._predicate = predicate
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._predicate is not None and not self._predicate(event):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> Event:
        return await asyncio.wait_for(self._queue.get(), timeout)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    def close(self) -> None:
        self._bus._subscriptions.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._listeners: list[Callable[[Event], None]] = []

    def publish(self, kind: EventKind, endpoint: str | None = None, /, **data: Any) -> Event:
        event = Event(kind=str(kind), endpoint=endpoint, data=data, seq=next(self._seq))
        for sub in list(self._subscriptions):
            sub._offer(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def relay(self, event: Event) -> None:
        """Hand an event produced by another node (server.cluster) to the subscriptions only: the
        producing node logs it and pushes it, this node's live streams show it."""
        for sub in list(self._subscriptions):
            sub._offer(event)

    def subscribe(
        self,
        *,
        endpoint: str | None = None,
        kinds: tuple[str, ...] | None = None,
        maxsize: int = 10_000,
    ) -> Subscription:
        """Subscribe to events, optionally for one endpoint and/or kinds starting with given prefixes."""

        def predicate(event: Event) -> bool:
            if endpoint is not None and event.endpoint != endpoint:
                return False
            return kinds is None or event.kind.startswith(kinds)

        sub = Subscription(self, maxsize, predicate if (endpoint or kinds) else None)
        self._subscriptions.add(sub)
        return sub

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """A synchronous listener called for every event (used to persist the event log)."""
        self._listeners.append(listener)
