"""CBOR codec (content format 60, application/cbor): OMA TS LwM2M Core 1.1.1 §7.3.6 (1.2 §7.3.6).

The payload is one CBOR data item (RFC 8949) holding the value of a single-instance resource or of
one resource instance:

    String, Corelnk   text string                 Opaque   byte string
    Integer           major type 0/1              Unsigned Integer  major type 0
    Float             float (half/single/double; an integer item is accepted on decode)
    Boolean           simple value true/false
    Time              tag 1 with integer seconds on encode; on decode tag 1 (integer or float),
                      tag 0 (RFC 3339 text) or a bare integer, as an aware UTC datetime
    Objlnk            text string "object:instance"

Design choices: decoding is typed by the model; for a resource the model does not know the CBOR
major type decides (text -> String, bytes -> Opaque, bool, int -> Integer or Unsigned Integer
beyond 2**63, float, tagged time -> Time). Trailing bytes after the item are an error. Floats are
encoded in the shortest IEEE 754 width that keeps their value (cbor2 canonical mode). Every failure
of the cbor2 decoder is translated to CodecError at this boundary.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import cbor2

from lwm2m.errors import CodecError, UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import Node, ObjectLink, ResourceInstance, SingleResource, Value
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_MAX_DEPTH = 16  # a single value needs no nesting; this bounds hostile input


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode a SingleResource or ResourceInstance as one CBOR data item."""
    del path, model
    if not isinstance(node, SingleResource | ResourceInstance):
        raise UnsupportedContentFormat(ContentFormat.CBOR, f"cannot carry a {type(node).__name__}")
    item = _to_item(node.value, node.type)
    try:
        return cbor2.dumps(item, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode {node.value!r} as CBOR: {exc}") from exc


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode one CBOR data item for the resource or resource instance at `path`."""
    if path.depth not in (3, 4):
        raise UnsupportedContentFormat(ContentFormat.CBOR, f"cannot carry {path}")
    object_id, resource_id = path.object_id, path.resource_id
    assert object_id is not None and resource_id is not None
    definition = model.get_resource(object_id, resource_id)
    if definition is not None and definition.multiple and path.depth == 3:
        raise UnsupportedContentFormat(ContentFormat.CBOR, f"{path} is a multiple resource")
    item = _load(bytes(payload))
    if definition is not None:
        rtype = definition.type
        value = _from_item(item, rtype)
    else:
        rtype, value = _infer(item)
    if path.depth == 3:
        return SingleResource(resource_id, value, rtype)
    assert path.resource_instance_id is not None
    return ResourceInstance(path.resource_instance_id, value, rtype)


def _load(payload: bytes) -> object:
    if not payload:
        raise CodecError("empty CBOR payload")
    stream = io.BytesIO(payload)
    try:
        item = cbor2.CBORDecoder(stream, max_depth=_MAX_DEPTH).decode()
    except Exception as exc:  # cbor2 raises many kinds on hostile input; translate them all here
        raise CodecError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(payload):
        raise CodecError(f"{len(payload) - stream.tell()} trailing bytes after the CBOR item")
    return item


def _to_item(value: Value, rtype: ResourceType) -> object:
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if isinstance(value, str):
            return value
    elif rtype is ResourceType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool) and _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
    elif rtype is ResourceType.UNSIGNED_INTEGER:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _UINT64_MAX:
            return int(value)
    elif rtype is ResourceType.FLOAT:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif rtype is ResourceType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif rtype is ResourceType.TIME:
        if isinstance(value, datetime):
            moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return cbor2.CBORTag(1, math.floor(moment.timestamp()))
        if isinstance(value, int) and not isinstance(value, bool):
            return cbor2.CBORTag(1, value)
    elif rtype is ResourceType.OBJLNK:
        if isinstance(value, ObjectLink):
            return str(value)
    elif isinstance(value, bytes | bytearray | memoryview):  # OPAQUE, NONE
        return bytes(value)
    raise CodecError(f"cannot write {value!r} as a {rtype.value} in CBOR")


def _from_item(item: object, rtype: ResourceType) -> Value:
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if isinstance(item, str):
            return item
    elif rtype is ResourceType.INTEGER:
        if isinstance(item, int) and not isinstance(item, bool) and _INT64_MIN <= item <= _INT64_MAX:
            return item
    elif rtype is ResourceType.UNSIGNED_INTEGER:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= _UINT64_MAX:
            return item
    elif rtype is ResourceType.FLOAT:
        if isinstance(item, float):
            return item
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) <= _UINT64_MAX:
            return float(item)
    elif rtype is ResourceType.BOOLEAN:
        if isinstance(item, bool):
            return item
    elif rtype is ResourceType.TIME:
        return _time(item)
    elif rtype is ResourceType.OBJLNK:
        if isinstance(item, str):
            return _objlnk(item)
    elif isinstance(item, bytes):  # OPAQUE, NONE
        return item
    raise CodecError(f"CBOR item {type(item).__name__} is not a {rtype.value}")


def _infer(item: object) -> tuple[ResourceType, Value]:
    """Type and value of an item for a resource the model does not know."""
    if isinstance(item, bool):
        return ResourceType.BOOLEAN, item
    if isinstance(item, str):
        return ResourceType.STRING, item
    if isinstance(item, bytes):
        return ResourceType.OPAQUE, item
    if isinstance(item, int):
        if _INT64_MIN <= item <= _INT64_MAX:
            return ResourceType.INTEGER, item
        if 0 <= item <= _UINT64_MAX:
            return ResourceType.UNSIGNED_INTEGER, item
        raise CodecError(f"CBOR integer out of 64-bit range: {item}")
    if isinstance(item, float):
        return ResourceType.FLOAT, item
    if isinstance(item, datetime):
        return ResourceType.TIME, _time(item)
    raise CodecError(f"CBOR item {type(item).__name__} is not an LwM2M value")


def _time(item: object) -> datetime:
    if isinstance(item, datetime):
        if item.tzinfo is None:
            return item.replace(tzinfo=UTC)
        try:
            return item.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise CodecError(f"Time value out of range: {item!r}") from exc
    if isinstance(item, int) and not isinstance(item, bool):
        try:
            return datetime.fromtimestamp(item, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise CodecError(f"Time value out of range: {item}") from exc
    raise CodecError(f"CBOR item {type(item).__name__} is not a Time")


def _objlnk(text: str) -> ObjectLink:
    left, sep, right = text.partition(":")
    if not (sep and left.isascii() and left.isdigit() and right.isascii() and right.isdigit()):
        raise CodecError(f"not an object link o:i: {text!r}")
    if len(left) > 5 or len(right) > 5 or int(left) > 0xFFFF or int(right) > 0xFFFF:
        raise CodecError(f"object link ids out of range: {text!r}")
    return ObjectLink(int(left), int(right))
