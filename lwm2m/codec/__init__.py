"""Content-format dispatch over the pure codecs.

Every codec module exposes the same two functions:

    encode(node: Node, path: Path, model: ModelRegistry) -> bytes
    decode(payload: bytes, path: Path, model: ModelRegistry) -> Node

`path` is the request path the payload belongs to (a Read's target, a Write's target). Decoders
raise `CodecError` on malformed input and nothing else. The multi-path formats (SenML JSON,
SenML CBOR, LwM2M JSON, LwM2M CBOR) also expose

    encode_composite(nodes: Mapping[Path, Node], model) -> bytes
    decode_composite(payload: bytes, model) -> dict[Path, Node]
    decode_timestamped(payload: bytes, path: Path, model) -> list[TimestampedValue]
    encode_paths(paths: Sequence[Path]) -> bytes        (SenML only: Read/Observe-Composite bodies)
    decode_paths(payload: bytes) -> list[Path]          (SenML only)

The CoRE link format (40) is not a node codec; see `lwm2m.codec.link_format`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

from lwm2m.errors import UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import Node, Value
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path


@dataclass(frozen=True, slots=True)
class TimestampedValue:
    """One resource (instance) value with the time it was measured, when the payload says so."""

    path: Path
    value: Value
    type: ResourceType
    time: datetime | None = None


def _module(content_format: int) -> ModuleType:
    from lwm2m.codec import cbor, lwm2m_cbor, lwm2m_json, opaque, senml_cbor, senml_json, text, tlv

    try:
        fmt = ContentFormat(content_format).canonical
    except ValueError as exc:
        raise UnsupportedContentFormat(content_format) from exc
    modules: dict[ContentFormat, ModuleType] = {
        ContentFormat.TEXT: text,
        ContentFormat.OPAQUE: opaque,
        ContentFormat.CBOR: cbor,
        ContentFormat.TLV: tlv,
        ContentFormat.LWM2M_JSON: lwm2m_json,
        ContentFormat.SENML_JSON: senml_json,
        ContentFormat.SENML_CBOR: senml_cbor,
        ContentFormat.LWM2M_CBOR: lwm2m_cbor,
    }
    if fmt not in modules:
        raise UnsupportedContentFormat(content_format, "not a node format")
    return modules[fmt]


COMPOSITE_FORMATS = frozenset({ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR})
MULTI_PATH_FORMATS = COMPOSITE_FORMATS | {ContentFormat.LWM2M_JSON, ContentFormat.LWM2M_CBOR}


def encode(node: Node, path: Path, content_format: int, model: ModelRegistry) -> bytes:
    """Encode `node` found at `path` in `content_format`."""
    encoded: bytes = _module(content_format).encode(node, path, model)
    return encoded


def decode(payload: bytes, path: Path, content_format: int, model: ModelRegistry) -> Node:
    """Decode a payload that answers (or writes) `path`."""
    decoded: Node = _module(content_format).decode(payload, path, model)
    return decoded


def _multi(content_format: int, formats: frozenset[ContentFormat]) -> ModuleType:
    module = _module(content_format)
    if ContentFormat(content_format).canonical not in formats:
        raise UnsupportedContentFormat(content_format, "not a composite format")
    return module


def encode_composite(nodes: Mapping[Path, Node], content_format: int, model: ModelRegistry) -> bytes:
    encoded: bytes = _multi(content_format, MULTI_PATH_FORMATS).encode_composite(nodes, model)
    return encoded


def decode_composite(payload: bytes, content_format: int, model: ModelRegistry) -> dict[Path, Node]:
    decoded: dict[Path, Node] = _multi(content_format, MULTI_PATH_FORMATS).decode_composite(payload, model)
    return decoded


def decode_timestamped(
    payload: bytes, path: Path, content_format: int, model: ModelRegistry
) -> list[TimestampedValue]:
    """Values with their measurement times. Formats without times give `time=None`."""
    fmt = (
        ContentFormat(content_format).canonical
        if content_format in ContentFormat._value2member_map_
        else None
    )
    if fmt in MULTI_PATH_FORMATS:
        values: list[TimestampedValue] = _module(content_format).decode_timestamped(payload, path, model)
        return values
    from lwm2m.node import iter_values

    node = decode(payload, path, content_format, model)
    return [TimestampedValue(p, v, t) for p, v, t in iter_values(node, path)]


def encode_paths(paths: Sequence[Path], content_format: int) -> bytes:
    encoded: bytes = _multi(content_format, COMPOSITE_FORMATS).encode_paths(paths)
    return encoded


def decode_paths(payload: bytes, content_format: int) -> list[Path]:
    decoded: list[Path] = _multi(content_format, COMPOSITE_FORMATS).decode_paths(payload)
    return decoded
