"""Run a send/expect scenario (`emulator.scenarios.script`) over any line transport.

Transports: `ModuleTransport` (an in-process `EmulatedModule`), `StreamTransport` (asyncio
streams, e.g. the TCP front-end or a serial bridge), or anything with `send_line` / `read_line`.
Received bytes are split into lines at CR or LF and empty lines are dropped, so the manual's
`<CR><LF>response<CR><LF>` framing and a raw echo both come out as plain lines.

Design choices:
- The run stops at the first failing step and returns a `ScenarioResult` whose `failure` names the
  file, the line, the step, the reason and the lines received while the step waited: a failure is
  a value, `raise_for_failure()` turns it into `ScenarioFailed` for tests.
- `do <action> <args>` starts `actions[<action>](args)` as a background task (a platform request
  such as a read blocks until the MCU answers, which the script itself does next). `await` and
  the end of the script wait for those tasks (within the script's timeout); an action that raised
  fails the run. Without a callable for the action the run fails, unless `missing_actions="log"`,
  which only logs it (for a person driving the platform by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from emulator.scenarios.script import (
    Await,
    Do,
    Expect,
    Script,
    Send,
    SetVar,
    Step,
    Wait,
    expand_pattern,
    substitute,
)

log = logging.getLogger(__name__)

Action = Callable[[Sequence[str]], Awaitable[object]]


class LineTransport(Protocol):
    async def send_line(self, line: str) -> None:
        """Write one command line; the transport adds the CR."""
        ...

    async def read_line(self) -> str:
        """The next non-empty received line; raises EOFError once the peer is gone. Must be safe
        to cancel (a timed-out wait loses no data)."""
        ...


class LineSplitter:
    """Bytes in any chunking -> complete lines (CR or LF ends a line; empty lines dropped)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._buffer:
                    lines.append(self._buffer.decode("utf-8", errors="replace"))
                    self._buffer.clear()
            else:
                self._buffer.append(byte)
        return lines


class ModuleTransport:
    """The MCU side of an in-process `EmulatedModule` (anything with `feed` and listeners)."""

    def __init__(self, module: _ByteModule) -> None:
        self.module = module
        self._splitter = LineSplitter()
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        module.add_listener(self._on_output)

    def _on_output(self, data: bytes) -> None:
        for line in self._splitter.feed(data):
            self._lines.put_nowait(line)

    async def send_line(self, line: str) -> None:
        self.module.feed(line.encode("utf-8") + b"\r")

    async def read_line(self) -> str:
        return await self._lines.get()

    def close(self) -> None:
        self.module.remove_listener(self._on_output)


class _ByteModule(Protocol):
    def feed(self, data: bytes) -> None: ...

    def add_listener(self, listener: Callable[[bytes], None]) -> None: ...

    def remove_listener(self, listener: Callable[[bytes], None]) -> None: ...


class StreamTransport:
    """A byte stream pair (TCP front-end, a serial bridge) as lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._splitter = LineSplitter()
        self._lines: list[str] = []

    async def send_line(self, line: str) -> None:
        self.writer.write(line.encode("utf-8") + b"\r")
        await self.writer.drain()

    async def read_line(self) -> str:
        while not self._lines:
            data = await self.reader.read(4096)
            if not data:
                raise EOFError("connection closed")
            self._lines.extend(self._splitter.feed(data))
        return self._lines.pop(0)


@dataclass(frozen=True, slots=True)
class Failure:
    script: str
    line: int
    step: str
    reason: str
    # Lines received while the failing step waited (an `expect` that timed out).
    received: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.script}:{self.line}: {self.step}: {self.reason}"
        if self.received:
            text += "\n  received meanwhile:\n" + "\n".join(f"    {line}" for line in self.received)
        return text


class ScenarioFailed(AssertionError):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass(slots=True)
class ScenarioResult:
    script: str
    failure: Failure | None = None
    variables: dict[str, str] = field(default_factory=dict)
    # Everything exchanged, in order: (">", sent line) or ("<", received line).
    exchange: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise ScenarioFailed(self.failure)


class _Run:
    def __init__(
        self,
        script: Script,
        transport: LineTransport,
        variables: Mapping[str, str] | None,
        actions: Mapping[str, Action] | None,
        missing_actions: Literal["fail", "log"],
    ) -> None:
        self.script = script
        self.transport = transport
        self.actions = dict(actions or {})
        self.missing_actions = missing_actions
        self.result = ScenarioResult(script.name, variables={**script.variables, **(variables or {})})
        self.tasks: list[tuple[Do, asyncio.Task[object]]] = []

    def fail(self, step: Step, reason: str, received: Sequence[str] = ()) -> Failure:
        failure = Failure(self.script.name, step.line, _describe(step), reason, tuple(received))
        self.result.failure = failure
        return failure

    async def run(self) -> ScenarioResult:
        try:
            for step in self.script.steps:
                if await self.step(step) is not None:
                    return self.result
            end = Await(self.script.steps[-1].line if self.script.steps else 0)
            await self.await_actions(end)
            return self.result
        finally:
            for _do, task in self.tasks:
                task.cancel()
            for _do, task in self.tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def step(self, step: Step) -> Failure | None:
        variables = self.result.variables
        try:
            if isinstance(step, Send):
                line = substitute(step.text, variables)
                self.result.exchange.append((">", line))
                await self.transport.send_line(line)
            elif isinstance(step, Expect):
                return await self.expect(
                    step, re.compile(substitute(expand_pattern(step.pattern), variables, escape=True))
                )
            elif isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, SetVar):
                variables[step.name] = substitute(step.value, variables)
            elif isinstance(step, Do):
                return self.start_action(step, [substitute(a, variables) for a in step.args])
            else:
                return await self.await_actions(step)
        except KeyError as exc:
            return self.fail(step, f"unknown variable ${{{exc.args[0]}}}")
        except (EOFError, ConnectionError) as exc:
            return self.fail(step, f"transport closed: {exc}")
        return None

    async def expect(self, step: Expect, regex: re.Pattern[str]) -> Failure | None:
        timeout = self.script.timeout if step.timeout is None else step.timeout
        fails = [re.compile(expand_pattern(p)) for p in self.script.fail_patterns]
        seen: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self.transport.read_line()
                    self.result.exchange.append(("<", line))
                    match = regex.fullmatch(line)
                    if match is not None:
                        self.result.variables.update(
                            {k: v for k, v in match.groupdict().items() if v is not None}
                        )
                        return None
                    seen.append(line)
                    for fail in fails:
                        if fail.fullmatch(line):
                            return self.fail(
                                step, f"received {line!r}, which matches @fail /{fail.pattern}/", seen
                            )
        except TimeoutError:
            return self.fail(step, f"no line matched /{regex.pattern}/ within {timeout:g} s", seen)
        except EOFError as exc:
            return self.fail(step, f"transport closed while waiting for /{regex.pattern}/: {exc}", seen)

    def start_action(self, step: Do, args: list[str]) -> Failure | None:
        action = self.actions.get(step.action)
        if action is None:
            if self.missing_actions == "log":
                log.warning(
                    "%s:%d: platform action for you: %s %s",
                    self.script.name,
                    step.line,
                    step.action,
                    " ".join(args),
                )
                return None
            return self.fail(step, f"no action {step.action!r} was given to the runner")
        self.tasks.append((step, asyncio.ensure_future(action(args))))
        return None

    async def await_actions(self, step: Step) -> Failure | None:
        pending = [(do, task) for do, task in self.tasks if not task.done()]
        if pending:
            await asyncio.wait([t for _d, t in pending], timeout=self.script.timeout)
        for do, task in self.tasks:
            if not task.done():
                return self.fail(do, f"action did not finish within {self.script.timeout:g} s")
            if task.cancelled():
                return self.fail(do, "action was cancelled")
            exc = task.exception()
            if exc is not None:
                return self.fail(do, f"action failed: {type(exc).__name__}: {exc}")
        self.tasks.clear()
        return None


def _describe(step: Step) -> str:
    if isinstance(step, Send):
        return f"send {step.text}"
    if isinstance(step, Expect):
        return f"expect {step.pattern}"
    if isinstance(step, Wait):
        return f"wait {step.seconds:g}"
    if isinstance(step, Do):
        return " ".join(("do", step.action, *step.args))
    if isinstance(step, SetVar):
        return f"set {step.name} {step.value}"
    return "await"


async def run_scenario(
    script: Script,
    transport: LineTransport,
    *,
    variables: Mapping[str, str] | None = None,
    actions: Mapping[str, Action] | None = None,
    missing_actions: Literal["fail", "log"] = "fail",
) -> ScenarioResult:
    """Run `script` over `transport`; `variables` override the script's `@var` defaults."""
    return await _Run(script, transport, variables, actions, missing_actions).run()
