"""The command table: command name -> forms, parameter signature, handlers, error style.

Data, not code: the module builds one `CommandSpec` per command of the manual and the engine
dispatches on it. A form without a handler is a syntax error in the command's error style
(`+CIS ERROR: 601` for MIPL commands, `+CME ERROR: 50` for 3GPP ones, `ERROR` for V.250 ones).

A set form has one signature, or several alternatives (AT+MIPLCFG's "platform" and "binding"
forms, manual §4.1): the first that binds the arguments is used. A test form (`=?`) without a
handler answers the parameter list and ranges of each signature, one line each
(`+MIPLNMI: (0-65535),(0-2),(0,1)`), drawn from the signatures that validate the set form (manual
§2.1 Table 2), and a bare `OK` for a command without parameters (as 3GPP TS 27.007 does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from emulator.at.params import Signature, Value
from emulator.at.results import (
    CIS_SYNTAX,
    CME_INCORRECT_PARAMETERS,
    ERROR,
    CisError,
    CmeError,
    Reply,
    Result,
)
from emulator.at.syntax import Arg, CommandLine, Form

ErrorStyle = Literal["cis", "cme", "plain"]


@dataclass(frozen=True, slots=True)
class Invocation:
    """A parsed command line plus its bound set-form values (empty for other forms)."""

    line: CommandLine
    values: list[Value] = field(default_factory=list)

    def number(self, index: int, default: int | None = None) -> int | None:
        value = self.values[index] if index < len(self.values) else None
        return default if value is None else int(value)

    def text(self, index: int, default: str | None = None) -> str | None:
        value = self.values[index] if index < len(self.values) else None
        return default if value is None else str(value)


Handler = Callable[[Invocation], Reply]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    execute: Handler | None = None
    read: Handler | None = None
    set: Handler | None = None
    signature: Signature | tuple[Signature, ...] | None = None
    test: Handler | None = None
    errors: ErrorStyle = "cis"

    def signatures(self) -> tuple[Signature, ...]:
        if self.signature is None:
            return ()
        return self.signature if isinstance(self.signature, tuple) else (self.signature,)

    def bind(self, args: Sequence[Arg]) -> list[Value] | None:
        """The values of the first signature that takes `args`, else None."""
        for signature in self.signatures():
            bound = signature.bind(args)
            if isinstance(bound, list):
                return bound
        return None

    def parameter_lines(self) -> list[str]:
        """The test form's answer: `+CMD: (range),(range),...` per signature."""
        return [f"{self.name}: {signature.describe()}" for signature in self.signatures()]

    def handler(self, form: Form) -> Handler | None:
        return {Form.EXECUTE: self.execute, Form.READ: self.read, Form.SET: self.set, Form.TEST: self.test}[
            form
        ]

    def syntax_error(self) -> Result:
        if self.errors == "cis":
            return CisError(CIS_SYNTAX)
        if self.errors == "cme":
            return CmeError(CME_INCORRECT_PARAMETERS)
        return ERROR


class CommandTable:
    def __init__(self, specs: Iterable[CommandSpec] = ()) -> None:
        self._specs: dict[str, CommandSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: CommandSpec) -> None:
        self._specs[spec.name.upper()] = spec

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name.upper())

    def __contains__(self, name: str) -> bool:
        return name.upper() in self._specs

    def names(self) -> list[str]:
        return sorted(self._specs)
