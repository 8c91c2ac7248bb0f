"""The AT engine: bytes in, response lines out (OneMO LwM2M AT manual §2).

* Line assembly: a line ends at CR (the manual's terminator); LF is also accepted, so CRLF
  works and the empty line between CR and LF is skipped. Backspace (0x08) deletes a character.
  Lines longer than `max_line` are answered `ERROR`. Bytes are decoded as UTF-8 with
  replacement, so any input is a line.
* Echo (ATE0 / ATE1, default on): with an `echo_sink` the received bytes are echoed raw as they
  arrive; without one each complete line is echoed to the line sink before its response.
* Dispatch: `parse_line` -> `CommandTable` -> bind the set-form parameters -> handler ->
  information lines + the final result code rendered in the current AT+CMEE mode. A test form
  (`=?`) without a handler of its own answers the command's parameter list and ranges, from the
  same signatures that bind the set form (`CommandSpec.parameter_lines`).
* URCs raised while a command runs (e.g. `+MIPLEVENT` raised synchronously by AT+MIPLOPEN) are
  held back until the command's final result code is out, as on the real modules.

Every non-empty line gets exactly one final result code; `feed` never raises (a handler that
raises is answered with the command's unknown-error code and logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from emulator.at.params import IntParam, sig
from emulator.at.results import (
    CIS_UNKNOWN,
    CME_UNKNOWN,
    ERROR,
    OK,
    CisError,
    CmeError,
    Reply,
    Result,
    render_result,
)
from emulator.at.syntax import CommandLine, Form, SyntaxFault, parse_line
from emulator.at.table import CommandSpec, CommandTable, Invocation

log = logging.getLogger(__name__)

LineSink = Callable[[str], None]
EchoSink = Callable[[bytes], None]
DEFAULT_MAX_LINE = 4096


class AtEngine:
    def __init__(
        self,
        table: CommandTable,
        sink: LineSink,
        *,
        echo: bool = True,
        echo_sink: EchoSink | None = None,
        cmee: int = 1,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.table = table
        self.sink = sink
        self.echo = echo
        self.echo_sink = echo_sink
        self.cmee = cmee
        self.max_line = max_line
        self._buffer = bytearray()
        self._overflow = False
        self._running = False
        self._held: list[str] = []
        self._install_builtins()

    # -- built-in V.250 / 27.007 commands owned by the engine ---------------------------------

    def _install_builtins(self) -> None:
        if "" not in self.table:
            self.table.add(CommandSpec("", execute=lambda _inv: Reply(), errors="plain"))
        self.table.add(
            CommandSpec(
                "E",
                execute=self._set_echo,
                set=self._set_echo,
                signature=sig(IntParam("n", 0, 1)),
                errors="plain",
            )
        )
        self.table.add(
            CommandSpec(
                "+CMEE",
                set=self._set_cmee,
                signature=sig(IntParam("n", 0, 2), required=0),
                read=lambda _inv: Reply([f"+CMEE: {self.cmee}"]),
                test=lambda _inv: Reply(["+CMEE: (0-2)"]),
                errors="cme",
            )
        )

    def _set_echo(self, inv: Invocation) -> Reply:
        self.echo = bool(inv.number(0, 0))
        return Reply()

    def _set_cmee(self, inv: Invocation) -> Reply:
        self.cmee = inv.number(0, 0) or 0
        return Reply()

    # -- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take bytes as they come from a serial port, in any chunking."""
        if self.echo and self.echo_sink is not None and data:
            self.echo_sink(data)
        for byte in data:
            if byte in (0x0D, 0x0A):
                self._end_line()
            elif byte == 0x08:
                if self._buffer:
                    self._buffer.pop()
            elif len(self._buffer) >= self.max_line:
                self._overflow = True
            else:
                self._buffer.append(byte)

    def discard_partial_line(self) -> None:
        """Forget the bytes of an unfinished line (a new connection starts on an empty line)."""
        self._buffer.clear()
        self._overflow = False

    def _end_line(self) -> None:
        raw = bytes(self._buffer)
        overflow = self._overflow
        self._buffer.clear()
        self._overflow = False
        text = raw.decode("utf-8", errors="replace")
        if not overflow and text.strip(" \t") == "":
            return
        if self.echo and self.echo_sink is None:
            self.sink(text)
        if overflow:
            self._finish(Reply(result=ERROR))
            return
        self.execute(text)

    def execute(self, text: str) -> None:
        """Run one complete command line and write its response."""
        self._running = True
        try:
            reply = self._dispatch(text)
        except Exception:  # a handler bug must not take the port down
            log.exception("AT handler failed on %r", text)
            reply = Reply(result=ERROR)
        self._finish(reply)

    def _finish(self, reply: Reply) -> None:
        for line in reply.lines:
            self.sink(line)
        self.sink(render_result(reply.result, self.cmee))
        self._running = False
        held, self._held = self._held, []
        for line in held:
            self.sink(line)

    def _dispatch(self, text: str) -> Reply:
        parsed = parse_line(text)
        if isinstance(parsed, SyntaxFault):
            spec = self.table.get(parsed.name) if parsed.name is not None else None
            return Reply(result=spec.syntax_error() if spec is not None else ERROR)
        spec = self.table.get(parsed.name)
        if spec is None:
            return Reply(result=ERROR)
        return self._invoke(spec, parsed)

    def _invoke(self, spec: CommandSpec, line: CommandLine) -> Reply:
        handler = spec.handler(line.form)
        if handler is None:
            if line.form is Form.TEST:
                return Reply(spec.parameter_lines())
            return Reply(result=spec.syntax_error())
        if line.form is Form.SET:
            bound = spec.bind(line.args)
            if bound is None:
                return Reply(result=spec.syntax_error())
            invocation = Invocation(line, bound)
        else:
            invocation = Invocation(line)
        try:
            return handler(invocation)
        except Exception:
            log.exception("AT handler %s failed on %r", spec.name, line.raw)
            return Reply(result=_unknown_error(spec))

    # -- output --------------------------------------------------------------------------------

    def urc(self, line: str) -> None:
        """An unsolicited result code; held back while a command is being answered."""
        if self._running:
            self._held.append(line)
        else:
            self.sink(line)


def _unknown_error(spec: CommandSpec) -> Result:
    if spec.errors == "cis":
        return CisError(CIS_UNKNOWN)
    if spec.errors == "cme":
        return CmeError(CME_UNKNOWN)
    return ERROR


__all__ = ["OK", "AtEngine", "EchoSink", "LineSink"]
