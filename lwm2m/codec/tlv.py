"""LwM2M TLV codec (content format 11542, legacy 1542): OMA TS LwM2M Core 1.1.1 §7.4.3.

Wire layout of one TLV (§7.4.3, Table 7.4.3-1):

    type byte  bits 7-6  identifier kind: 00 object instance, 01 resource instance,
                                           10 multiple resource, 11 resource with value
               bit 5     identifier length: 0 = 8 bits, 1 = 16 bits
               bits 4-3  length type: 00 = length in bits 2-0, 01/10/11 = 8/16/24-bit length field
               bits 2-0  the length when the length type is 00
    identifier (1 or 2 bytes), length field (0-3 bytes), value

Values (§7.4.3 Table 7.4.3-2 and Appendix C): String and Corelnk UTF-8; Integer 1/2/4/8 bytes two's
complement; Unsigned Integer 1/2/4/8 bytes; Float 4/8 bytes IEEE 754; Boolean one byte 0/1; Time an
Integer of seconds since the epoch; Objlnk two unsigned 16-bit ids; Opaque and none raw bytes.

Design choices:
- TLV carries no types, so decoding asks the model (`model.resource_type`); unknown resources come
  back as OPAQUE bytes. Whether a resource is multiple comes from `model.is_multiple` when the model
  knows, else from the TLV itself (type 10). A TLV that contradicts the model is a CodecError.
- Encoding never consults the model: nodes carry their types. Integers use the smallest of 1/2/4/8
  bytes, floats 4 bytes when exact, headers the shortest length form, so the spec's examples
  re-encode byte for byte.
- Decoding is tolerant where real clients differ: at `/o` a bare list of resources is taken as
  instance 0 of a single-instance object (LwM2M 1.0); at `/o/i` both the bare resources and one
  object-instance TLV wrapping them are accepted; at `/o/i/r` a multiple resource may come as its
  type-10 TLV or as bare resource-instance TLVs.
- An ObjectInstance encoded at `/o` (a Create naming the instance id) is wrapped in its object
  instance TLV; at `/o/i` it is its bare resource TLVs.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    Resource,
    ResourceInstance,
    SingleResource,
    Value,
)
from lwm2m.numbers import ResourceType
from lwm2m.path import Path

_INT_SIZES = (1, 2, 4, 8)
_MAX_LENGTH = 0xFFFFFF


class TlvKind(IntEnum):
    """The identifier kind in bits 7-6 of the type byte."""

    OBJECT_INSTANCE = 0b00
    RESOURCE_INSTANCE = 0b01
    MULTIPLE_RESOURCE = 0b10
    RESOURCE_VALUE = 0b11


@dataclass(frozen=True, slots=True)
class Tlv:
    """One raw TLV entry: its kind, identifier and value bytes (nested TLVs stay undecoded)."""

    kind: TlvKind
    id: int
    value: bytes


# ---------------------------------------------------------------------------------------- raw TLV


def parse_tlvs(payload: bytes) -> list[Tlv]:
    """Split a byte string into consecutive TLV entries. Raises CodecError on truncation."""
    data = bytes(payload)
    entries: list[Tlv] = []
    pos = 0
    end = len(data)
    while pos < end:
        type_byte = data[pos]
        pos += 1
        id_size = 2 if type_byte & 0x20 else 1
        length_type = (type_byte >> 3) & 0x03
        header_end = pos + id_size + length_type
        if header_end > end:
            raise CodecError(f"TLV header truncated at byte {pos - 1}")
        identifier = int.from_bytes(data[pos : pos + id_size], "big")
        pos += id_size
        if length_type == 0:
            length = type_byte & 0x07
        else:
            length = int.from_bytes(data[pos : pos + length_type], "big")
            pos += length_type
        if pos + length > end:
            raise CodecError(f"TLV value of {length} bytes overruns the payload at byte {pos}")
        entries.append(Tlv(TlvKind(type_byte >> 6), identifier, data[pos : pos + length]))
        pos += length
    return entries


def build_tlv(kind: TlvKind, identifier: int, value: bytes) -> bytes:
    """One TLV entry with the shortest identifier and length forms."""
    if not 0 <= identifier <= 0xFFFF:
        raise CodecError(f"TLV identifier out of range: {identifier}")
    length = len(value)
    if length > _MAX_LENGTH:
        raise CodecError(f"TLV value too long: {length} bytes")
    type_byte = kind << 6
    id_bytes = identifier.to_bytes(1 if identifier <= 0xFF else 2, "big")
    if identifier > 0xFF:
        type_byte |= 0x20
    if length <= 7:
        type_byte |= length
        length_bytes = b""
    else:
        size = 1 if length <= 0xFF else 2 if length <= 0xFFFF else 3
        type_byte |= size << 3
        length_bytes = length.to_bytes(size, "big")
    return bytes([type_byte]) + id_bytes + length_bytes + value


# ---------------------------------------------------------------------------------------- values


def encode_value(value: Value, rtype: ResourceType) -> bytes:
    """The TLV value bytes of one resource (instance) value of type `rtype`."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if not isinstance(value, str):
            raise CodecError(f"{rtype.value} value must be str, not {type(value).__name__}")
        return _utf8(value)
    if rtype is ResourceType.INTEGER:
        return _encode_signed(_expect_int(value, rtype))
    if rtype is ResourceType.UNSIGNED_INTEGER:
        return _encode_unsigned(_expect_int(value, rtype))
    if rtype is ResourceType.FLOAT:
        return _encode_float(value)
    if rtype is ResourceType.BOOLEAN:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return b"\x01" if value else b"\x00"
        raise CodecError(f"Boolean value must be bool, not {value!r}")
    if rtype is ResourceType.TIME:
        if isinstance(value, datetime):
            return _encode_signed(_seconds(value))
        return _encode_signed(_expect_int(value, rtype))
    if rtype is ResourceType.OBJLNK:
        if not isinstance(value, ObjectLink):
            raise CodecError(f"Objlnk value must be ObjectLink, not {type(value).__name__}")
        if not (0 <= value.object_id <= 0xFFFF and 0 <= value.instance_id <= 0xFFFF):
            raise CodecError(f"Objlnk ids out of range: {value}")
        return struct.pack(">HH", value.object_id, value.instance_id)
    # OPAQUE and NONE carry raw bytes.
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise CodecError(f"{rtype.value} value must be bytes, not {type(value).__name__}")


def decode_value(data: bytes, rtype: ResourceType) -> Value:
    """A resource (instance) value of type `rtype` from its TLV value bytes."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"{rtype.value} value is not UTF-8: {exc}") from exc
    if rtype is ResourceType.INTEGER:
        return _decode_int(data, signed=True, rtype=rtype)
    if rtype is ResourceType.UNSIGNED_INTEGER:
        return _decode_int(data, signed=False, rtype=rtype)
    if rtype is ResourceType.FLOAT:
        if len(data) == 4:
            return float(struct.unpack(">f", data)[0])
        if len(data) == 8:
            return float(struct.unpack(">d", data)[0])
        raise CodecError(f"Float value must be 4 or 8 bytes, got {len(data)}")
    if rtype is ResourceType.BOOLEAN:
        if data == b"\x00":
            return False
        if data == b"\x01":
            return True
        raise CodecError(f"Boolean value must be one byte 0 or 1, got {data.hex()}")
    if rtype is ResourceType.TIME:
        seconds = _decode_int(data, signed=True, rtype=rtype)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise CodecError(f"Time value out of range: {seconds}") from exc
    if rtype is ResourceType.OBJLNK:
        if len(data) != 4:
            raise CodecError(f"Objlnk value must be 4 bytes, got {len(data)}")
        object_id, instance_id = struct.unpack(">HH", data)
        return ObjectLink(object_id, instance_id)
    return bytes(data)


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CodecError(f"string cannot be encoded as UTF-8: {exc}") from exc


def _expect_int(value: Value, rtype: ResourceType) -> int:
    if isinstance(value, int):
        return int(value)
    raise CodecError(f"{rtype.value} value must be int, not {type(value).__name__}")


def _encode_signed(number: int) -> bytes:
    for size in _INT_SIZES:
        if -(1 << (size * 8 - 1)) <= number < (1 << (size * 8 - 1)):
            return number.to_bytes(size, "big", signed=True)
    raise CodecError(f"integer does not fit in 64 bits: {number}")


def _encode_unsigned(number: int) -> bytes:
    if number < 0:
        raise CodecError(f"Unsigned Integer value is negative: {number}")
    for size in _INT_SIZES:
        if number < (1 << (size * 8)):
            return number.to_bytes(size, "big")
    raise CodecError(f"Unsigned Integer does not fit in 64 bits: {number}")


def _decode_int(data: bytes, *, signed: bool, rtype: ResourceType) -> int:
    if len(data) not in _INT_SIZES:
        raise CodecError(f"{rtype.value} value must be 1, 2, 4 or 8 bytes, got {len(data)}")
    return int.from_bytes(data, "big", signed=signed)


def _encode_float(value: Value) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(f"Float value must be float, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        return struct.pack(">d", number)
    try:
        single = struct.pack(">f", number)
    except OverflowError:
        return struct.pack(">d", number)
    if struct.unpack(">f", single)[0] == number:
        return single
    return struct.pack(">d", number)


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


# ---------------------------------------------------------------------------------------- encode


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode `node` found at `path` as TLV. The model is not needed: nodes carry their types."""
    del model
    if isinstance(node, LwM2MObject):
        return b"".join(_instance_tlv(inst) for inst in node.instances.values())
    if isinstance(node, ObjectInstance):
        if path.depth == 1:
            return _instance_tlv(node)
        return _resources(node)
    if isinstance(node, SingleResource | MultipleResource):
        return _resource_tlv(node)
    if isinstance(node, ResourceInstance):
        return build_tlv(TlvKind.RESOURCE_INSTANCE, node.id, encode_value(node.value, node.type))
    raise CodecError(f"cannot encode {type(node).__name__} as TLV")


def _instance_tlv(instance: ObjectInstance) -> bytes:
    return build_tlv(TlvKind.OBJECT_INSTANCE, instance.id, _resources(instance))


def _resources(instance: ObjectInstance) -> bytes:
    return b"".join(_resource_tlv(res) for res in instance.resources.values())


def _resource_tlv(resource: Resource) -> bytes:
    if isinstance(resource, SingleResource):
        return build_tlv(TlvKind.RESOURCE_VALUE, resource.id, encode_value(resource.value, resource.type))
    inner = b"".join(
        build_tlv(TlvKind.RESOURCE_INSTANCE, ri, encode_value(value, resource.type))
        for ri, value in resource.instances.items()
    )
    return build_tlv(TlvKind.MULTIPLE_RESOURCE, resource.id, inner)


# ---------------------------------------------------------------------------------------- decode


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode a TLV payload that answers (or writes) `path`. Raises only CodecError."""
    entries = parse_tlvs(payload)
    object_id = path.object_id
    if object_id is None:
        raise CodecError("TLV cannot carry the root path")
    if path.depth == 1:
        return _decode_object(entries, object_id, model)
    instance_id = path.instance_id
    assert instance_id is not None
    if path.depth == 2:
        if len(entries) == 1 and entries[0].kind is TlvKind.OBJECT_INSTANCE:
            if entries[0].id != instance_id:
                raise CodecError(f"TLV object instance {entries[0].id} does not match path {path}")
            entries = parse_tlvs(entries[0].value)
        return _decode_instance(entries, object_id, instance_id, model)
    resource_id = path.resource_id
    assert resource_id is not None
    if path.depth == 3:
        return _decode_resource_at_path(entries, object_id, resource_id, model)
    ri = path.resource_instance_id
    if len(entries) != 1 or entries[0].kind is not TlvKind.RESOURCE_INSTANCE:
        raise CodecError(f"TLV at {path} must be one resource instance")
    if entries[0].id != ri:
        raise CodecError(f"TLV resource instance {entries[0].id} does not match path {path}")
    if model.is_multiple(object_id, resource_id) is False:
        raise CodecError(f"resource /{object_id}/{path.instance_id}/{resource_id} is not multiple")
    rtype = model.resource_type(object_id, resource_id)
    return ResourceInstance(entries[0].id, decode_value(entries[0].value, rtype), rtype)


def _decode_object(entries: list[Tlv], object_id: int, model: ModelRegistry) -> LwM2MObject:
    obj = LwM2MObject(object_id)
    if entries and all(e.kind in (TlvKind.RESOURCE_VALUE, TlvKind.MULTIPLE_RESOURCE) for e in entries):
        # LwM2M 1.0: a single-instance object may be answered with its resources only.
        obj.instances[0] = _decode_instance(entries, object_id, 0, model)
        return obj
    for entry in entries:
        if entry.kind is not TlvKind.OBJECT_INSTANCE:
            raise CodecError(f"TLV for object {object_id} mixes object instances and other entries")
        if entry.id in obj.instances:
            raise CodecError(f"duplicate object instance {entry.id} in TLV")
        obj.instances[entry.id] = _decode_instance(parse_tlvs(entry.value), object_id, entry.id, model)
    return obj


def _decode_instance(
    entries: list[Tlv], object_id: int, instance_id: int, model: ModelRegistry
) -> ObjectInstance:
    instance = ObjectInstance(instance_id)
    for entry in entries:
        if entry.id in instance.resources:
            raise CodecError(f"duplicate resource {entry.id} in TLV of /{object_id}/{instance_id}")
        instance.resources[entry.id] = _decode_resource(entry, object_id, model)
    return instance


def _decode_resource(entry: Tlv, object_id: int, model: ModelRegistry) -> Resource:
    rtype = model.resource_type(object_id, entry.id)
    multiple = model.is_multiple(object_id, entry.id)
    if entry.kind is TlvKind.RESOURCE_VALUE:
        if multiple:
            raise CodecError(f"resource {entry.id} of object {object_id} is multiple, TLV has one value")
        return SingleResource(entry.id, decode_value(entry.value, rtype), rtype)
    if entry.kind is TlvKind.MULTIPLE_RESOURCE:
        if multiple is False:
            raise CodecError(f"resource {entry.id} of object {object_id} is single, TLV has instances")
        return _multiple(entry.id, parse_tlvs(entry.value), rtype)
    raise CodecError(f"unexpected {entry.kind.name} TLV {entry.id} among resources")


def _decode_resource_at_path(
    entries: list[Tlv], object_id: int, resource_id: int, model: ModelRegistry
) -> Resource:
    if entries and all(e.kind is TlvKind.RESOURCE_INSTANCE for e in entries):
        if model.is_multiple(object_id, resource_id) is False:
            raise CodecError(f"resource {resource_id} of object {object_id} is single, TLV has instances")
        return _multiple(resource_id, entries, model.resource_type(object_id, resource_id))
    if len(entries) != 1:
        raise CodecError(f"TLV for resource {resource_id} must hold exactly one resource")
    if entries[0].id != resource_id:
        raise CodecError(f"TLV resource {entries[0].id} does not match requested resource {resource_id}")
    return _decode_resource(entries[0], object_id, model)


def _multiple(resource_id: int, entries: list[Tlv], rtype: ResourceType) -> MultipleResource:
    resource = MultipleResource(resource_id, type=rtype)
    for entry in entries:
        if entry.kind is not TlvKind.RESOURCE_INSTANCE:
            raise CodecError(f"multiple resource {resource_id} holds a {entry.kind.name} TLV")
        if entry.id in resource.instances:
            raise CodecError(f"duplicate resource instance {entry.id} in resource {resource_id}")
        resource.instances[entry.id] = decode_value(entry.value, rtype)
    return resource
