"""Plain text codec (content format 0, text/plain): OMA TS LwM2M Core 1.1.1 §7.3.2.

Plain text carries one value: a single-instance resource or one resource instance. Representations
(Core 1.1.1 Table 7.3.2-1 and Appendix C):

    String, Corelnk   the UTF-8 text itself
    Integer           decimal, optional sign            Unsigned Integer  decimal digits
    Float             decimal, Python `repr` form on encode (round-trip exact; `inf`/`nan` for
                      non-finite values), any decimal or exponent form on decode
    Boolean           "0" / "1" (decoding also accepts "true" / "false", any case)
    Time              integer seconds since 1970-01-01T00:00:00Z, decoded as an aware UTC datetime
    Objlnk            "object:instance"
    Opaque            base64 (RFC 4648 §4, padded), as LwM2M 1.1 specifies

Design choices: decoding is typed by the model; a resource the model does not know is read as a
String (text is text). A resource the model declares multiple cannot be read at `/o/i/r`. Encoding
uses the node's own type and refuses a value of another Python type. Numbers may be surrounded by
ASCII whitespace on decode; strings are taken verbatim.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime

from lwm2m.errors import CodecError, UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import Node, ObjectLink, ResourceInstance, SingleResource, Value
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path

_INTEGER = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"\+?[0-9]+")
_FLOAT = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE
)
_OBJLNK = re.compile(r"([0-9]{1,5}):([0-9]{1,5})")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1
_MAX_DIGITS = 400  # far beyond any 64-bit number or double; keeps int() cheap on hostile input


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode a SingleResource or ResourceInstance as text/plain."""
    del path, model
    if not isinstance(node, SingleResource | ResourceInstance):
        raise UnsupportedContentFormat(ContentFormat.TEXT, f"plain text cannot carry a {type(node).__name__}")
    try:
        return format_value(node.value, node.type).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CodecError(f"value cannot be encoded as UTF-8: {exc}") from exc


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode a text/plain payload for the resource or resource instance at `path`."""
    if path.depth not in (3, 4):
        raise UnsupportedContentFormat(ContentFormat.TEXT, f"plain text cannot carry {path}")
    object_id, resource_id = path.object_id, path.resource_id
    assert object_id is not None and resource_id is not None
    definition = model.get_resource(object_id, resource_id)
    if definition is not None and definition.multiple and path.depth == 3:
        raise UnsupportedContentFormat(ContentFormat.TEXT, f"{path} is a multiple resource")
    rtype = definition.type if definition is not None else ResourceType.STRING
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"text/plain payload is not UTF-8: {exc}") from exc
    value = parse_value(text, rtype)
    if path.depth == 3:
        return SingleResource(resource_id, value, rtype)
    assert path.resource_instance_id is not None
    return ResourceInstance(path.resource_instance_id, value, rtype)


def format_value(value: Value, rtype: ResourceType) -> str:
    """The text/plain form of one value of type `rtype`."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK, ResourceType.NONE):
        if isinstance(value, str):
            return value
    elif rtype is ResourceType.INTEGER:
        if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
            return str(int(value))
    elif rtype is ResourceType.UNSIGNED_INTEGER:
        if isinstance(value, int) and 0 <= value <= _UINT64_MAX:
            return str(int(value))
    elif rtype is ResourceType.FLOAT:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return repr(float(value))
    elif rtype is ResourceType.BOOLEAN:
        if isinstance(value, bool):
            return "1" if value else "0"
    elif rtype is ResourceType.TIME:
        if isinstance(value, datetime):
            moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return str(math.floor(moment.timestamp()))
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    elif rtype is ResourceType.OBJLNK:
        if isinstance(value, ObjectLink):
            return str(value)
    elif rtype is ResourceType.OPAQUE and isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise CodecError(f"cannot write {value!r} as a {rtype.value} in plain text")


def parse_value(text: str, rtype: ResourceType) -> Value:
    """One value of type `rtype` from its text/plain form. Raises CodecError."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK, ResourceType.NONE):
        return text
    if rtype is ResourceType.OPAQUE:
        try:
            return base64.b64decode(text.strip().encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise CodecError(f"Opaque text is not base64: {exc}") from exc
    stripped = text.strip(" \t\r\n")
    if len(stripped) > _MAX_DIGITS:
        raise CodecError(f"{rtype.value} text too long ({len(stripped)} characters)")
    if rtype is ResourceType.INTEGER or rtype is ResourceType.TIME:
        if not _INTEGER.fullmatch(stripped):
            raise CodecError(f"not a decimal integer: {text!r}")
        number = int(stripped)
        if not _INT64[0] <= number <= _INT64[1]:
            raise CodecError(f"integer out of 64-bit range: {text!r}")
        if rtype is ResourceType.INTEGER:
            return number
        try:
            return datetime.fromtimestamp(number, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise CodecError(f"Time value out of range: {text!r}") from exc
    if rtype is ResourceType.UNSIGNED_INTEGER:
        if not _UNSIGNED.fullmatch(stripped):
            raise CodecError(f"not an unsigned decimal integer: {text!r}")
        number = int(stripped)
        if number > _UINT64_MAX:
            raise CodecError(f"unsigned integer out of 64-bit range: {text!r}")
        return number
    if rtype is ResourceType.FLOAT:
        if not _FLOAT.fullmatch(stripped):
            raise CodecError(f"not a decimal number: {text!r}")
        return float(stripped)
    if rtype is ResourceType.BOOLEAN:
        lowered = stripped.lower()
        if lowered in ("1", "true"):
            return True
        if lowered in ("0", "false"):
            return False
        raise CodecError(f"not a boolean (0 or 1): {text!r}")
    if rtype is ResourceType.OBJLNK:
        match = _OBJLNK.fullmatch(stripped)
        if not match or int(match[1]) > 0xFFFF or int(match[2]) > 0xFFFF:
            raise CodecError(f"not an object link o:i: {text!r}")
        return ObjectLink(int(match[1]), int(match[2]))
    raise CodecError(f"unsupported resource type {rtype!r}")
