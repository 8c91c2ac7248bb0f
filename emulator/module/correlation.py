"""Server requests waiting for the MCU's answer (manual §3.10 - §3.15, §4.2 - §4.4).

A read / write / execute the server sends becomes a `PendingOperation` keyed by its message id:
its URC lines go out at once (AT+MIPLNMI `<nnmi>` 0) or wait in the cache for AT+MIPLMGR
(`<nnmi>` 1 announces them with `+MIPLNMI: 0`, 2 says nothing). The MCU's `AT+MIPL…RSP` resolves
it; the answer window (`response_timeout`, or `queued_response_timeout` for a cached one) fails
it, as does the end of the login. A failed operation answers the server `NO_ANSWER`.
"""

from __future__ import annotations

import asyncio
from typing import Final

from emulator.at.results import CIS_NOT_REGISTERED, CIS_RESOURCE, Reply
from emulator.client.handler import ReadResult
from emulator.module.core import NO_ANSWER, ModuleCore, err
from emulator.module.device import REF, State
from emulator.module.operations import (
    MAX_QUEUED,
    MAX_QUEUED_DATA,
    Kind,
    OperationQueue,
    PendingOperation,
)
from lwm2m.path import Path

# Writes / executes with more data than this are sent directly, never cached (*(choice)*: a
# blockwise transfer cannot wait for AT+MIPLMGR).
BLOCKWISE_THRESHOLD: Final = 1024


class PendingRequests:
    """The operations of one login waiting for the MCU (`core.queue`)."""

    def __init__(self, core: ModuleCore) -> None:
        self._core = core

    async def enqueue(self, kind: Kind, path: Path, lines: list[str], data_size: int, mid: int) -> object:
        """Announce the request (`lines`) and wait for the MCU's answer or the window's end."""
        core = self._core
        device = core.device
        assert device is not None
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        cached = device.nnmi in (1, 2) and not (kind is not Kind.READ and data_size > BLOCKWISE_THRESHOLD)
        op = PendingOperation(kind, mid, path, lines, data_size, future)
        if cached:
            if kind is not Kind.READ and core.queue.buffers + data_size > MAX_QUEUED_DATA:
                core.queue.dropped += 1
                return ReadResult(NO_ANSWER) if kind is Kind.READ else NO_ANSWER
            if len(core.queue) >= MAX_QUEUED:
                oldest = core.queue.oldest()
                if oldest is not None:
                    self.fail(oldest)
                    core.queue.dropped += 1
        core.queue.add(op)
        timeout = core.queued_response_timeout if cached else core.response_timeout
        op.timer = core.clock.call_later(timeout, lambda: self.fail(op))
        if not cached:
            for line in lines:
                core.urc(line)
        elif device.nnmi == 1:
            core.urc(f"+MIPLNMI: {REF}")
        return await future

    def answered(self, ref: int | None, mid: int | None, kind: Kind) -> PendingOperation | Reply:
        """The operation an `AT+MIPL…RSP=<ref>,<mid>,...` answers, or the error to reply."""
        device = self._core.device_at(ref)
        if device is None:
            return err(CIS_RESOURCE)
        if device.state is not State.REGISTERED:
            return err(CIS_NOT_REGISTERED)
        op = self._core.queue.get(mid or 0)
        if op is None or op.kind is not kind:
            return err(CIS_RESOURCE)
        return op

    def resolve(self, op: PendingOperation, outcome: object) -> None:
        self._core.queue.pop(op.mid)
        if op.timer is not None:
            op.timer.cancel()
        if not op.future.done():
            op.future.set_result(outcome)
        self._core.send_report(op.mid)

    def fail(self, op: PendingOperation) -> None:
        self._core.queue.pop(op.mid)
        if op.timer is not None:
            op.timer.cancel()
        if not op.future.done():
            op.future.set_result(ReadResult(NO_ANSWER) if op.kind is Kind.READ else NO_ANSWER)

    def fail_all(self) -> None:
        """The login is over: every waiting operation is unanswered, the cache starts empty."""
        for op in self._core.queue.all():
            self.fail(op)
        self._core.queue = OperationQueue()
