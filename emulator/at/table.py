"""The command table: command name -> forms, parameter signature, handlers, error style.

Data, not code: the module builds one `CommandSpec` per command of the manual and the engine
dispatches on it. A form without a handler is a syntax error in the command's error style
(`+CIS ERROR: 601` for MIPL commands, `+CME ERROR: 50` for 3GPP ones, `ERROR` for V.250 ones);
a test form (`=?`) without a handler answers `OK`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
from emulator.at.syntax import CommandLine, Form

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
    signature: Signature | None = None
    test: Handler | None = None
    errors: ErrorStyle = "cis"

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
