"""AT command line syntax (OneMO LwM2M AT manual §2.1; ITU-T V.250 §5.3-5.4).

A line starts with `AT` or `at` (the manual allows exactly these two spellings) and is one of:

* `AT` alone (name ""), execute form;
* basic syntax `AT<x>[<n>]` (e.g. `ATE0`, `ATI`): name is the upper-case letter, the digits are
  one argument;
* S-parameter syntax `ATS<n>=<m>` / `ATS<n>?`: name `S<n>`;
* extended syntax `AT+<NAME>` (also `^`/`$` vendor prefixes) with the four forms of manual
  Table 2: test `=?`, read `?`, set `=<p1>[,<p2>...]`, execute (nothing).

Arguments are split on commas outside double quotes; whitespace around an argument is dropped
(the manual's own examples write `,, "1234abcd"`). A quoted argument keeps its content verbatim
(no V.250 backslash escapes) and remembers that it was quoted, because some commands require
quotes (AT+MIPLNOTIFY string values). An empty argument (`,,`) is an omitted optional
parameter. Command names are matched case-insensitively.

Design: `parse_line` never raises; a malformed line becomes a `SyntaxFault` that still carries the
command name when one could be read, so the engine can answer in that command's error style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Form(Enum):
    EXECUTE = "execute"
    SET = "set"
    READ = "read"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Arg:
    text: str
    quoted: bool = False

    @property
    def omitted(self) -> bool:
        return not self.quoted and self.text == ""


@dataclass(frozen=True, slots=True)
class CommandLine:
    name: str
    form: Form
    args: tuple[Arg, ...] = ()
    raw: str = ""


@dataclass(frozen=True, slots=True)
class SyntaxFault:
    reason: str
    name: str | None = None


_EXTENDED = re.compile(r"([+^$][A-Za-z][A-Za-z0-9_]*)(.*)", re.DOTALL)
_S_REGISTER = re.compile(r"[Ss](\d+)(\?|=(\d*))$")
_BASIC = re.compile(r"(&?[A-Za-z])(\d*)$")


def split_args(text: str) -> tuple[Arg, ...] | str:
    """Split a set-form argument list; returns the reason string when malformed."""
    args: list[Arg] = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                return "unterminated quoted string"
            value = text[i + 1 : end]
            i = end + 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] != ",":
                return "characters after a quoted string"
            args.append(Arg(value, quoted=True))
        else:
            end = text.find(",", i)
            token = text[i:] if end < 0 else text[i:end]
            if '"' in token:
                return "stray double quote"
            args.append(Arg(token.strip(" \t")))
            i = n if end < 0 else end
        if i >= n:
            return tuple(args)
        i += 1  # the comma


def parse_line(line: str) -> CommandLine | SyntaxFault:
    """Parse one command line (without its terminator)."""
    text = line.strip(" \t")
    if text[:2] not in ("AT", "at"):
        return SyntaxFault("missing AT prefix")
    body = text[2:]
    if body == "":
        return CommandLine("", Form.EXECUTE, (), line)
    extended = _EXTENDED.match(body)
    if extended:
        name = extended.group(1).upper()
        rest = extended.group(2)
        if rest == "":
            return CommandLine(name, Form.EXECUTE, (), line)
        if rest == "?":
            return CommandLine(name, Form.READ, (), line)
        if rest == "=?":
            return CommandLine(name, Form.TEST, (), line)
        if rest.startswith("="):
            args = split_args(rest[1:])
            if isinstance(args, str):
                return SyntaxFault(args, name)
            return CommandLine(name, Form.SET, args, line)
        return SyntaxFault("unexpected characters after the command name", name)
    s_register = _S_REGISTER.match(body)
    if s_register:
        name = "S" + str(int(s_register.group(1)))
        if s_register.group(2) == "?":
            return CommandLine(name, Form.READ, (), line)
        return CommandLine(name, Form.SET, (Arg(s_register.group(3) or ""),), line)
    basic = _BASIC.match(body)
    if basic:
        name = basic.group(1).upper()
        digits = basic.group(2)
        if digits:
            return CommandLine(name, Form.SET, (Arg(digits),), line)
        return CommandLine(name, Form.EXECUTE, (), line)
    return SyntaxFault("not a command")
