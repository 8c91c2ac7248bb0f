"""OneNET's write `type` of one resource value (NB-IoT "real-time command: write", also the
cached write): 1 = Opaque, the value its bytes as hex text; 2 = Time, the value Unix seconds;
none = a basic type (boolean, string, integer, float), taken as is. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.services.errors import BadArgument

OPAQUE = 1
TIME = 2


def typed_value(res_id: int | str, value: Any, kind: int | None) -> Any:
    """The value to write: bytes for type 1, a UTC datetime for type 2, else `value` itself."""
    if kind == OPAQUE:
        try:
            return bytes.fromhex(str(value))
        except ValueError:
            raise BadArgument(f"res {res_id}: type 1 takes the bytes as hex text") from None
    if kind == TIME:
        if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
            raise BadArgument(f"res {res_id}: type 2 takes Unix seconds")
        return datetime.fromtimestamp(int(value), tz=UTC)
    return value


def typed_values(values: dict[str, Any], kinds: dict[str, int] | None) -> dict[str, Any]:
    """Every value of a write (`{res id: value}`) with its type applied."""
    kinds = kinds or {}
    return {rid: typed_value(rid, value, kinds.get(rid)) for rid, value in values.items()}
