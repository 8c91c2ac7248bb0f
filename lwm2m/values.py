"""Values to and from JSON-safe form, for storage, events and APIs.

    str, int, float, bool -> themselves; bytes -> {"hex": "..."} ; datetime -> {"time": epoch seconds};
    ObjectLink -> {"objlnk": "o:i"}

The resource type travels beside the value (`ResourceType.value`), so nothing is guessed on the way back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lwm2m.errors import CodecError
from lwm2m.node import ObjectLink, Value


def value_to_jsonable(value: Value) -> Any:
    """A JSON-safe representation of a node value."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, datetime):
        return {"time": value.timestamp()}
    if isinstance(value, ObjectLink):
        return {"objlnk": str(value)}
    return value


def value_from_jsonable(data: Any) -> Value:
    """Inverse of `value_to_jsonable`. Raises CodecError on anything else."""
    if isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, dict) and len(data) == 1:
        ((key, raw),) = data.items()
        try:
            if key == "hex":
                return bytes.fromhex(raw)
            if key == "time":
                return datetime.fromtimestamp(float(raw), tz=UTC)
            if key == "objlnk":
                return ObjectLink.parse(raw)
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            raise CodecError(f"bad stored value {data!r}") from exc
    raise CodecError(f"bad stored value {data!r}")


def value_to_display(value: Value) -> str:
    """A short human form: bytes as hex, time as ISO 8601, links as `o:i`."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
