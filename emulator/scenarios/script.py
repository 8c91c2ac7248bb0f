"""The send/expect scenario format: parsing and pattern building (pure, no I/O).

A scenario is a text file of one step per line, written from the MCU's side of the serial port:

    # a comment; blank lines are ignored
    @title   OneNET access (manual §5.1)         free-form header fields: @title, @needs, @model ...
    @timeout 5                                   default seconds an `expect` waits (default 10)
    @var     server nbiotbt.heclouds.com:5683    a variable with its default (callers may override)
    @fail    \\+CIS ERROR: \\d+                    a received line matching this ends the run at once
    send AT+MIPLCREATEEX="${server}",1           write the line (CR-terminated) after substitution
    expect +MIPLCREATEEX: 0                      wait for a received line matching the regex
    expect within 30 \\+MIPLEVENT: 0,6            ... with its own timeout in seconds
    expect +MIPLOBSERVE: 0,<obs>,1,3200,0,-1     `<obs>` captures a field into the variable `obs`
    send AT+MIPLOBSERVERSP=0,${obs},1
    do observe /3303/0/5700                      start a platform action (a callable the runner
                                                 was given) in the background
    await                                        wait until the actions started so far are done
    wait 0.5                                     sleep
    set ackid 147                                set a variable

Design choices:
- `expect` patterns are Python regexes that must match a whole received line (`fullmatch`);
  lines that do not match are skipped (URCs interleave with responses), and each `expect`
  searches only the lines after the previous match, so a script reads the output in order.
- A pattern starting with `+` (every URC does; no regex can) has that `+` taken literally, so
  the manual's lines can be pasted as they are.
- `<name>` in a pattern is shorthand for `(?P<name>[^,"\\s]+)` (a message id, an ack id, ...);
  full named groups `(?P<name>...)` capture too. `${name}` is replaced by the variable's value:
  verbatim in `send` and `do`, regex-escaped in `expect`.
- Malformed scripts are refused at parse time with the file name and line number (`ScriptError`);
  failures while running are values (`emulator.scenarios.runner.Failure`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

DEFAULT_TIMEOUT: Final = 10.0
PLACEHOLDER: Final = re.compile(r"(?<!\?P)<([A-Za-z_]\w*)>")
VARIABLE: Final = re.compile(r"\$\{([A-Za-z_]\w*)\}")
CAPTURE: Final = r'[^,"\s]+'


class ScriptError(ValueError):
    """A scenario file that cannot be parsed: `<source>:<line>: <reason>`."""


@dataclass(frozen=True, slots=True)
class Send:
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class Expect:
    line: int
    pattern: str  # a regex with ${var} references still in it
    timeout: float | None = None  # None = the script's default


@dataclass(frozen=True, slots=True)
class Wait:
    line: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Do:
    line: int
    action: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Await:
    line: int


@dataclass(frozen=True, slots=True)
class SetVar:
    line: int
    name: str
    value: str


Step = Send | Expect | Wait | Do | Await | SetVar


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    steps: tuple[Step, ...]
    timeout: float = DEFAULT_TIMEOUT
    variables: dict[str, str] = field(default_factory=dict)
    # Header fields other than @timeout / @var (`@title`, `@needs`, `@model`, ...), lower-cased
    # keys; a field given twice keeps both values joined by a newline.
    meta: dict[str, str] = field(default_factory=dict)
    # `@fail` patterns: any received line matching one (while an `expect` waits) fails the run.
    fail_patterns: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.meta.get("title", self.name)


def expand_pattern(pattern: str) -> str:
    """The regex for an `expect` pattern, `${var}` references untouched."""
    if pattern.startswith("+"):
        pattern = "\\" + pattern
    return PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>{CAPTURE})", pattern)


def substitute(text: str, variables: dict[str, str], *, escape: bool = False) -> str:
    """Replace `${name}`; raises KeyError(name) for an unknown variable."""

    def value(match: re.Match[str]) -> str:
        found = variables[match.group(1)]
        return re.escape(found) if escape else found

    return VARIABLE.sub(value, text)


def _number(text: str, where: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ScriptError(f"{where}: {text!r} is not a number of seconds") from None
    if seconds < 0:
        raise ScriptError(f"{where}: negative time {text!r}")
    return seconds


def _check_regex(pattern: str, where: str) -> None:
    probe = VARIABLE.sub("x", expand_pattern(pattern))
    try:
        re.compile(probe)
    except re.error as exc:
        raise ScriptError(f"{where}: bad pattern {pattern!r}: {exc}") from None


def parse_script(text: str, name: str = "<scenario>") -> Script:
    steps: list[Step] = []
    timeout = DEFAULT_TIMEOUT
    variables: dict[str, str] = {}
    meta: dict[str, str] = {}
    fail_patterns: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword.startswith("@"):
            key = keyword[1:].lower()
            if key == "timeout":
                timeout = _number(rest, where)
            elif key == "var":
                var, _, default = rest.partition(" ")
                if not re.fullmatch(r"[A-Za-z_]\w*", var):
                    raise ScriptError(f"{where}: bad variable name {var!r}")
                variables[var] = default.strip()
            elif key == "fail":
                if not rest:
                    raise ScriptError(f"{where}: @fail needs a pattern")
                _check_regex(rest, where)
                fail_patterns.append(rest)
            elif not key:
                raise ScriptError(f"{where}: empty header field")
            else:
                meta[key] = f"{meta[key]}\n{rest}" if key in meta else rest
            continue
        keyword = keyword.lower()
        if keyword == "send":
            steps.append(Send(number, raw.strip()[len("send") :].strip()))
        elif keyword == "expect":
            seconds: float | None = None
            head, _, tail = rest.partition(" ")
            if head == "within":
                amount, _, rest = tail.strip().partition(" ")
                seconds = _number(amount, where)
                rest = rest.strip()
            if not rest:
                raise ScriptError(f"{where}: expect needs a pattern")
            _check_regex(rest, where)
            steps.append(Expect(number, rest, seconds))
        elif keyword == "wait":
            steps.append(Wait(number, _number(rest, where)))
        elif keyword == "do":
            words = rest.split()
            if not words:
                raise ScriptError(f"{where}: do needs an action name")
            steps.append(Do(number, words[0], tuple(words[1:])))
        elif keyword == "await":
            if rest:
                raise ScriptError(f"{where}: await takes no arguments")
            steps.append(Await(number))
        elif keyword == "set":
            var, _, value = rest.partition(" ")
            if not re.fullmatch(r"[A-Za-z_]\w*", var):
                raise ScriptError(f"{where}: bad variable name {var!r}")
            steps.append(SetVar(number, var, value.strip()))
        else:
            raise ScriptError(f"{where}: unknown step {keyword!r}")
    return Script(name, tuple(steps), timeout, variables, meta, tuple(fail_patterns))
