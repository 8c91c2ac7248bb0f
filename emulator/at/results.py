"""Final result codes and their rendering (OneMO LwM2M AT manual §2.2, §6; 3GPP TS 27.007 §9.1).

`OK`; `ERROR`; `+CIS ERROR: <err>` for the MIPL commands (manual §6: 100 unknown, 601 syntax,
602 not registered / registering, 651 not allowed, 652 uplink busy, 653 resource exists / does not
exist); `+CME ERROR: <err>` for the 3GPP commands. AT+CMEE selects the rendering: 0 plain
`ERROR`, 1 numeric, 2 verbose text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, slots=True)
class Ok:
    pass


@dataclass(frozen=True, slots=True)
class PlainError:
    """`ERROR` whatever the CMEE mode: unknown commands and malformed lines."""


@dataclass(frozen=True, slots=True)
class CisError:
    code: int


@dataclass(frozen=True, slots=True)
class CmeError:
    code: int


Result = Ok | PlainError | CisError | CmeError
OK: Final = Ok()
ERROR: Final = PlainError()

CIS_UNKNOWN: Final = 100
CIS_SYNTAX: Final = 601
CIS_NOT_REGISTERED: Final = 602
CIS_NOT_ALLOWED: Final = 651
CIS_UPLINK_BUSY: Final = 652
CIS_RESOURCE: Final = 653

CIS_TEXT: Final[dict[int, str]] = {
    100: "unknown error",
    601: "syntax error",
    602: "not registered or registering",
    651: "operation not allowed",
    652: "uplink busy",
    653: "resource already exists or does not exist",
}

CME_OPERATION_NOT_ALLOWED: Final = 3
CME_SIM_NOT_INSERTED: Final = 10
CME_INCORRECT_PARAMETERS: Final = 50
CME_UNKNOWN: Final = 100

CME_TEXT: Final[dict[int, str]] = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    30: "no network service",
    50: "incorrect parameters",
    100: "unknown",
}

FINAL_PREFIXES: Final = ("OK", "ERROR", "+CIS ERROR: ", "+CME ERROR: ")


def is_final(line: str) -> bool:
    """True for a final result code line in any CMEE mode."""
    return line in ("OK", "ERROR") or line.startswith(("+CIS ERROR: ", "+CME ERROR: "))


@dataclass(slots=True)
class Reply:
    """What a handler answers: information lines, then the final result code."""

    lines: list[str] = field(default_factory=list)
    result: Result = OK


def render_result(result: Result, cmee: int) -> str:
    if isinstance(result, Ok):
        return "OK"
    if isinstance(result, PlainError) or cmee == 0:
        return "ERROR"
    if isinstance(result, CisError):
        detail = CIS_TEXT.get(result.code, str(result.code)) if cmee == 2 else str(result.code)
        return f"+CIS ERROR: {detail}"
    detail = CME_TEXT.get(result.code, str(result.code)) if cmee == 2 else str(result.code)
    return f"+CME ERROR: {detail}"
