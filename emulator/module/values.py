"""Value conversions between AT parameters and LwM2M nodes (manual §3.9, §3.11, §3.12).

AT `<type>`: 1 string, 2 opaque (hex digits in AT -> bytes), 3 integer, 4 float, 5 bool,
6 hex string (hex digits in AT -> the ASCII text they encode, sent as a string). `<result>`
codes map to CoAP per platforms.md. Pure functions; errors are returned as None.
"""

from __future__ import annotations

import math
import re
import struct
from datetime import datetime
from enum import IntEnum
from typing import Final

from lwm2m.node import ObjectLink, Value
from lwm2m.numbers import CoapCode, ContentFormat, ResourceType


class AtType(IntEnum):
    STRING = 1
    OPAQUE = 2
    INTEGER = 3
    FLOAT = 4
    BOOL = 5
    HEX_STRING = 6


RESOURCE_TYPE: Final[dict[AtType, ResourceType]] = {
    AtType.STRING: ResourceType.STRING,
    AtType.OPAQUE: ResourceType.OPAQUE,
    AtType.INTEGER: ResourceType.INTEGER,
    AtType.FLOAT: ResourceType.FLOAT,
    AtType.BOOL: ResourceType.BOOLEAN,
    AtType.HEX_STRING: ResourceType.STRING,
}

# AT <result> -> CoAP code (platforms.md "module side"); 16..19 only where the model allows them.
RESULT_CODES: Final[dict[int, CoapCode]] = {
    1: CoapCode.CONTENT,
    2: CoapCode.CHANGED,
    11: CoapCode.BAD_REQUEST,
    12: CoapCode.UNAUTHORIZED,
    13: CoapCode.NOT_FOUND,
    14: CoapCode.METHOD_NOT_ALLOWED,
    15: CoapCode.NOT_ACCEPTABLE,
    16: CoapCode.CONTINUE,  # 2.31
    17: CoapCode.REQUEST_ENTITY_INCOMPLETE,
    18: CoapCode.REQUEST_ENTITY_TOO_LARGE,
    19: CoapCode.UNSUPPORTED_CONTENT_FORMAT,
}

# AT+MIPLNOTIFY <contentType> -> CoAP content format (manual §3.9).
CONTENT_TYPES: Final[dict[int, ContentFormat]] = {
    0: ContentFormat.TEXT,
    1: ContentFormat.LINK,
    2: ContentFormat.OPAQUE,
    3: ContentFormat.TLV,
    4: ContentFormat.LWM2M_JSON,
}

_HEX: Final = re.compile(r"([0-9A-Fa-f]{2})*$")
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def parse_value(at_type: AtType, text: str) -> tuple[Value, ResourceType] | None:
    """An AT `<value>` of `<type>` -> (node value, resource type), or None when malformed."""
    try:
        if at_type is AtType.STRING:
            return text, ResourceType.STRING
        if at_type is AtType.OPAQUE:
            if not _HEX.match(text):
                return None
            return bytes.fromhex(text), ResourceType.OPAQUE
        if at_type is AtType.HEX_STRING:
            if not _HEX.match(text):
                return None
            return bytes.fromhex(text).decode("utf-8"), ResourceType.STRING
        if at_type is AtType.INTEGER:
            number = int(text.strip())
            return (number, ResourceType.INTEGER) if INT64_MIN <= number <= INT64_MAX else None
        if at_type is AtType.FLOAT:
            real = float(text.strip())
            return (real, ResourceType.FLOAT) if math.isfinite(real) else None
        if text.strip() in ("0", "1"):
            return text.strip() == "1", ResourceType.BOOLEAN
        return None
    except (ValueError, UnicodeDecodeError):
        return None


def value_size(value: Value) -> int:
    """Bytes of user payload a value takes (for the 1000-byte limits)."""
    if isinstance(value, bytes):
        return len(value)
    return len(format_plain(value).encode("utf-8"))


def format_float(value: float) -> str:
    """At most 9 decimals (manual §3.12 note), `24.5`, `60.0`."""
    text = f"{value:.9f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_plain(value: Value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, datetime):
        return str(int(value.timestamp()))
    if isinstance(value, ObjectLink):
        return str(value)
    return str(value)


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    return format_plain(value).encode("utf-8")


def format_for_write(
    value: Value,
    declared: AtType | None,
    written_as: ResourceType | None = None,
    undeclared_opaque: AtType = AtType.HEX_STRING,
) -> tuple[AtType, str]:
    """How +MIPLWRITE prints a written value: as the type the MCU declared for the resource
    (by AT+MIPLNOTIFY / AT+MIPLREADRSP), else as a hex string (manual §3.12 note) — except opaque
    data the platform wrote, printed as `undeclared_opaque` (the platform's rule: opaque on
    CTWing, as manual §5.3 prints `+MIPLWRITE: 0,24265,19,1,0,2,8,34353637,0`; see
    `emulator.module.device.UNDECLARED_OPAQUE_TYPE`)."""
    if declared is None and written_as is ResourceType.OPAQUE and undeclared_opaque is AtType.OPAQUE:
        return AtType.OPAQUE, _as_bytes(value).hex().upper()
    if declared is None or declared is AtType.HEX_STRING:
        return AtType.HEX_STRING, _as_bytes(value).hex().upper()
    if declared is AtType.OPAQUE:
        return AtType.OPAQUE, _as_bytes(value).hex().upper()
    if declared is AtType.STRING:
        if isinstance(value, bytes):
            return AtType.STRING, value.decode("utf-8", errors="replace")
        return AtType.STRING, format_plain(value)
    if declared is AtType.INTEGER:
        number = _to_int(value)
        return (AtType.INTEGER, str(number)) if number is not None else format_for_write(value, None)
    if declared is AtType.FLOAT:
        real = _to_float(value)
        return (AtType.FLOAT, format_float(real)) if real is not None else format_for_write(value, None)
    truth = _to_bool(value)
    return (AtType.BOOL, "1" if truth else "0") if truth is not None else format_for_write(value, None)


def _to_int(value: Value) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bytes) and len(value) in (1, 2, 4, 8):
        return int.from_bytes(value, "big", signed=True)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _to_float(value: Value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, bytes) and len(value) in (4, 8):
        return float(struct.unpack(">f" if len(value) == 4 else ">d", value)[0])
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _to_bool(value: Value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, bytes) and len(value) == 1:
        return value != b"\x00"
    if isinstance(value, str) and value in ("0", "1", "true", "false"):
        return value in ("1", "true")
    return None
