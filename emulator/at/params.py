"""Parameter specifications of AT commands and their validation (OneMO LwM2M AT manual §2.1).

A `Signature` lists the parameters of a set form: the first `required` must be present, the rest
are optional (`[...]` in the manual) and may be left out or given empty (`,,`). `bind` turns the
parsed arguments into Python values (int or str; None for an omitted optional parameter) or a
`ParamFault`, which the engine renders as the command's syntax error (`+CIS ERROR: 601` for the
MIPL commands).

Integers are decimal, optionally signed; `IntParam(allow_hex=True)` also takes `0x...` (the
manual's AT+MIPLNOTIFY `<flag>` values 0x200 / 0x400); `one_of` builds an `IntParam` of a set of
values (AT+MIPLCFG `<platform>` 0, 1, 2, 3, 10). `StrParam(choices=...)` takes only those words
(case-insensitive). `HexParam` is a string of hex digits of even length, quoted or not.

`describe()` gives the test form's answer (manual §2.1 Table 2: `AT+<CMD>=?` "返回参数列表及参数值
范围"), in the 3GPP TS 27.007 style: integers as their ranges `(0-3)`, `(0,1)`, `(0-2,0x200,0x400)`,
word choices as `("platform")`, free strings and hex as the parameter's name `<host>`. It is drawn
from the very fields `bind` validates with, so the answer and the validation cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
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
    spans: tuple[tuple[int, int], ...] = ()  # when given, the allowed values (lo..hi is unused)

    def allowed(self) -> tuple[tuple[int, int], ...]:
        return self.spans or ((self.lo, self.hi),)

    def convert(self, arg: Arg) -> int | str:
        text = arg.text.strip()
        if _DECIMAL.match(text):
            value = int(text)
        elif self.allow_hex and _HEX_NUMBER.match(text):
            value = int(text, 16)
        else:
            return f"{self.name}: not an integer"
        if not any(lo <= value <= hi for lo, hi in self.allowed()):
            return f"{self.name}: {value} out of range {self.describe()}"
        return value

    def describe(self) -> str:
        return "(" + ",".join(self._span(lo, hi) for lo, hi in self.allowed()) + ")"

    def _span(self, lo: int, hi: int) -> str:
        def number(value: int) -> str:
            return hex(value) if self.allow_hex and value > 0xFF else str(value)

        if lo == hi:
            return number(lo)
        return f"{number(lo)}{',' if hi == lo + 1 else '-'}{number(hi)}"


def one_of(name: str, values: Iterable[int], *, allow_hex: bool = False) -> IntParam:
    """An integer parameter taking exactly `values` (runs of consecutive values become spans)."""
    spans: list[tuple[int, int]] = []
    for value in sorted(set(values)):
        if spans and value == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], value)
        else:
            spans.append((value, value))
    if not spans:
        raise ValueError(f"{name}: no values")
    return IntParam(name, spans[0][0], spans[-1][1], allow_hex, tuple(spans))


@dataclass(frozen=True, slots=True)
class StrParam:
    name: str
    max_len: int | None = None
    must_quote: bool = False
    choices: tuple[str, ...] = ()  # when given, the only words taken (case-insensitive)

    def convert(self, arg: Arg) -> str:
        return arg.text

    def check(self, arg: Arg) -> str | None:
        if self.must_quote and not arg.quoted:
            return f"{self.name}: must be quoted"
        if self.max_len is not None and len(arg.text) > self.max_len:
            return f"{self.name}: longer than {self.max_len}"
        if self.choices and arg.text.lower() not in (c.lower() for c in self.choices):
            return f"{self.name}: not one of {self.describe()}"
        return None

    def describe(self) -> str:
        if self.choices:
            return "(" + ",".join(f'"{c}"' for c in self.choices) + ")"
        return f"<{self.name}>"


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

    def describe(self) -> str:
        return f"<{self.name}>"


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

    def describe(self) -> str:
        """The parameter list and value ranges, `(0-65535),<host>,(0-3)` (27.007 test form)."""
        return ",".join(param.describe() for param in self.params)


def sig(*params: Param, required: int | None = None) -> Signature:
    """A signature whose parameters are all required unless `required` says how many are."""
    return Signature(tuple(params), len(params) if required is None else required)
