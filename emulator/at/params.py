"""Parameter specifications of AT commands and their validation (OneMO LwM2M AT manual §2.1).

A `Signature` lists the parameters of a set form: the first `required` must be present, the rest
are optional (`[...]` in the manual) and may be left out or given empty (`,,`). `bind` turns the
parsed arguments into Python values (int or str; None for an omitted optional parameter) or a
`ParamFault`, which the engine renders as the command's syntax error (`+CIS ERROR: 601` for the
MIPL commands).

Integers are decimal, optionally signed; `IntParam(allow_hex=True)` also takes `0x...` (the
manual's AT+MIPLNOTIFY `<flag>` values 0x200 / 0x400). `HexParam` is a string of hex digits of
even length, quoted or not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from emulator.at.syntax import Arg

_DECIMAL = re.compile(r"[+-]?\d+$")
_HEX_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]+$")
_HEX_STRING = re.compile(r"([0-9A-Fa-f]{2})*$")


@dataclass(frozen=True, slots=True)
class IntParam:
    name: str
    lo: int = 0
    hi: int = 65535
    allow_hex: bool = False

    def convert(self, arg: Arg) -> int | str:
        text = arg.text.strip()
        if _DECIMAL.match(text):
            value = int(text)
        elif self.allow_hex and _HEX_NUMBER.match(text):
            value = int(text, 16)
        else:
            return f"{self.name}: not an integer"
        if not self.lo <= value <= self.hi:
            return f"{self.name}: {value} out of range {self.lo}..{self.hi}"
        return value


@dataclass(frozen=True, slots=True)
class StrParam:
    name: str
    max_len: int | None = None
    must_quote: bool = False

    def convert(self, arg: Arg) -> str:
        return arg.text

    def check(self, arg: Arg) -> str | None:
        if self.must_quote and not arg.quoted:
            return f"{self.name}: must be quoted"
        if self.max_len is not None and len(arg.text) > self.max_len:
            return f"{self.name}: longer than {self.max_len}"
        return None


@dataclass(frozen=True, slots=True)
class HexParam:
    name: str
    max_len: int | None = None

    def check(self, arg: Arg) -> str | None:
        if not _HEX_STRING.match(arg.text):
            return f"{self.name}: not a hex string"
        if self.max_len is not None and len(arg.text) > self.max_len:
            return f"{self.name}: longer than {self.max_len}"
        return None


Param = IntParam | StrParam | HexParam
Value = int | str | None


@dataclass(frozen=True, slots=True)
class ParamFault:
    reason: str


@dataclass(frozen=True, slots=True)
class Signature:
    params: tuple[Param, ...]
    required: int

    def bind(self, args: Sequence[Arg]) -> list[Value] | ParamFault:
        if len(args) > len(self.params):
            return ParamFault(f"too many parameters ({len(args)} > {len(self.params)})")
        values: list[Value] = []
        for index, param in enumerate(self.params):
            arg = args[index] if index < len(args) else None
            if arg is None or arg.omitted:
                if index < self.required:
                    return ParamFault(f"{param.name}: missing")
                values.append(None)
                continue
            if isinstance(param, IntParam):
                if arg.quoted:
                    return ParamFault(f"{param.name}: integers are not quoted")
                converted = param.convert(arg)
                if isinstance(converted, str):
                    return ParamFault(converted)
                values.append(converted)
            else:
                problem = param.check(arg)
                if problem is not None:
                    return ParamFault(problem)
                values.append(arg.text)
        return values


def sig(*params: Param, required: int | None = None) -> Signature:
    """A signature whose parameters are all required unless `required` says how many are."""
    return Signature(tuple(params), len(params) if required is None else required)
