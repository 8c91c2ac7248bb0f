"""Queue mode (Core 1.1.1 §6.5; `b=UQ` in 1.0, the `Q` parameter in 1.1).

A queue-mode client is reachable only for a short while after it sent something (Register,
Update, Send, a notification). Requests for it while it sleeps are stored in the persistent
pending-request queue and go out, in order, the next time it is heard from; their results are
stored beside them and handed to any caller still waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from server.domain import Registration
from server.event_kinds import EventKind
from server.events import EventBus
from server.services.errors import ServerError
from server.services.operations import Operation, operation_from_dict
from server.store.repository import Store

log = logging.getLogger(__name__)

Performer = Callable[[Registration, Operation], Awaitable[Any]]


class QueueMode:
    def __init__(self, store: Store, bus: EventBus, awake_window: float = 30.0) -> None:
        self.store = store
        self.bus = bus
        self.awake_window = awake_window
        self._last_heard: dict[str, float] = {}
        # Wall-clock time of each endpoint's last uplink (the console's "last seen"): kept in
        # memory, beside `_last_heard`, so a notification costs no statement.
        self.last_seen: dict[str, float] = {}
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._flushing: dict[str, asyncio.Lock] = {}
        # Endpoints with queued requests: an Update of any other endpoint needs no database read.
        self._queued_endpoints: set[str] = set()

    async def load(self) -> None:
        self._queued_endpoints = {r.endpoint for r in await self.store.pending_requests()}

    def note_queued(self, endpoint: str) -> None:
        """Requests of `endpoint` may wait in the store (queued through another cluster node)."""
        self._queued_endpoints.add(endpoint)

    def heard_from(self, endpoint: str, at: float | None = None) -> None:
        self._last_heard[endpoint] = time.monotonic() if at is None else at
        self.last_seen[endpoint] = time.time()

    def forget(self, endpoint: str) -> None:
        self._last_heard.pop(endpoint, None)

    def is_awake(self, reg: Registration) -> bool:
        if not reg.queue_mode:
            return True
        heard = self._last_heard.get(reg.endpoint)
        return heard is not None and time.monotonic() - heard < self.awake_window

    async def enqueue(self, endpoint: str, op: Operation) -> tuple[int, asyncio.Future[Any]]:
        request_id = await self.store.enqueue_request(endpoint, op.kind, op.params)
        self._queued_endpoints.add(endpoint)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        self.bus.publish(EventKind.REQUEST_QUEUED, endpoint, id=request_id, operation=op.as_dict())
        return request_id, future

    async def flush(self, reg: Registration, perform: Performer) -> int:
        """Deliver every queued request of this endpoint, oldest first; returns how many ran."""
        if reg.endpoint not in self._queued_endpoints:
            return 0
        lock = self._flushing.setdefault(reg.endpoint, asyncio.Lock())
        done = 0
        async with lock:
            self._queued_endpoints.discard(reg.endpoint)
            for pending in await self.store.pending_requests(reg.endpoint):
                waiter = self._waiters.pop(pending.id, None)
                try:
                    result = await perform(reg, operation_from_dict(pending.operation, pending.params))
                except ServerError as exc:
                    await self.store.complete_request(pending.id, "failed", {"error": str(exc)})
                    self.bus.publish(EventKind.REQUEST_FAILED, reg.endpoint, id=pending.id, error=str(exc))
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(exc)
                    continue
                await self.store.complete_request(pending.id, "done", result)
                self.bus.publish(EventKind.REQUEST_DELIVERED, reg.endpoint, id=pending.id, result=result)
                if waiter is not None and not waiter.done():
                    waiter.set_result(result)
                done += 1
        return done
