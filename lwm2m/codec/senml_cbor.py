"""SenML CBOR (content format 112): RFC 8428 §6 as profiled by OMA TS LwM2M Core 1.1.1 §7.4.6.

The same records as SenML JSON with the integer labels of RFC 8428 Table 4 (bn -2, bt -3, n 0,
v 2, vs 3, vb 4, t 6, vd 8) and the text label "vlo" for object links (Core 1.1.1 §7.4.6, since
RFC 8428 registers no integer for it). The record logic is shared in `lwm2m.codec._senml`.

Design choices:
- Encoding and decoding use `cbor2`. Opaque values are CBOR byte strings; floats are written as
  CBOR doubles (cbor2's default, lossless); Time is integer unix seconds in `v`.
- The record layout follows SenML JSON: the request path as the first record's base name, with
  relative names below it (see `lwm2m.codec.senml_json`).
- Labels RFC 8428 defines but LwM2M does not use (units, sums, base value, version) are ignored;
  a label ending in "_" (must-understand) is rejected. Trailing bytes after the pack are rejected.
- Any cbor2 failure becomes a CodecError.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import cbor2

from lwm2m.codec import TimestampedValue
from lwm2m.codec import _senml as senml
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import Node
from lwm2m.path import Path

LABELS: dict[str, int | str] = {
    "bn": -2,
    "bt": -3,
    "n": 0,
    "v": 2,
    "vs": 3,
    "vb": 4,
    "t": 6,
    "vd": 8,
    "vlo": "vlo",
}
_NAMES: dict[object, str] = {label: name for name, label in LABELS.items() if isinstance(label, int)}


def _dump(records: list[dict[str, Any]]) -> bytes:
    packed = [{LABELS[name]: value for name, value in record.items()} for record in records]
    try:
        return cbor2.dumps(packed)
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError) as exc:
        raise CodecError(f"cannot encode as CBOR: {exc}") from exc


def _load(payload: bytes) -> list[dict[str, Any]]:
    stream = io.BytesIO(payload)
    try:
        data = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises many kinds; all mean a malformed payload
        raise CodecError(f"malformed SenML CBOR: {exc}") from exc
    if stream.tell() != len(payload):
        raise CodecError("trailing bytes after the SenML CBOR pack")
    if not isinstance(data, list):
        raise CodecError("a SenML pack must be a CBOR array")
    raw: list[dict[str, Any]] = []
    for record in data:
        if not isinstance(record, Mapping):
            raise CodecError("a SenML record must be a CBOR map")
        converted: dict[str, Any] = {}
        for label, value in record.items():
            if label == "vlo":
                converted["vlo"] = value
            elif type(label) is int and label in _NAMES:
                converted[_NAMES[label]] = value
            elif isinstance(label, str) and label.endswith("_"):
                raise CodecError(f"unsupported must-understand label {label!r}")
        raw.append(converted)
    return raw


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode `node` found at `path`."""
    return _dump(senml.layout(senml.flatten(node, path, model), path))


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode a payload answering (or writing) `path` into the node kind of that path."""
    return senml.build_node(senml.resolve(_load(payload)), path, model)


def encode_composite(nodes: Mapping[Path, Node], model: ModelRegistry) -> bytes:
    """Encode several nodes (Read-Composite answer, Write-Composite body, composite Notify)."""
    return _dump(senml.layout_composite(nodes, model))


def decode_composite(
    payload: bytes, model: ModelRegistry, paths: Sequence[Path] | None = None
) -> dict[Path, Node]:
    """Decode a composite payload; see `_senml.build_composite` for how records are grouped."""
    return senml.build_composite(senml.resolve(_load(payload)), model, paths)


def decode_composite_write(payload: bytes, model: ModelRegistry) -> tuple[dict[Path, Node], list[Path]]:
    """A Write-Composite body: (nodes to write, paths to delete: records without a value)."""
    return senml.composite_write(_load(payload), model)


def decode_timestamped(
    payload: bytes, path: Path, model: ModelRegistry, now: datetime | None = None
) -> list[TimestampedValue]:
    """Every value under `path` with its resolved time (None when the record has none)."""
    return senml.timestamped(_load(payload), path, model, now)


def encode_paths(paths: Sequence[Path]) -> bytes:
    """A Read-Composite / Observe-Composite request body: one `{0: path}` record per path."""
    return _dump([{"n": str(Path.of(p))} for p in paths])


def decode_paths(payload: bytes) -> list[Path]:
    """The paths of a Read-Composite / Observe-Composite request body."""
    return senml.request_paths(_load(payload))
