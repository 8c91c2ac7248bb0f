"""SenML JSON (content format 110): RFC 8428 §4-§5 as profiled by OMA TS LwM2M Core 1.1.1 §7.4.4.

A pack is a JSON array of records `{"bn", "bt", "n", "t", "v" | "vs" | "vb" | "vd" | "vlo"}`; the
record logic (base name/time resolution, typing by the model, node assembly) is shared with SenML
CBOR in `lwm2m.codec._senml`.

Design choices:
- Encoding writes the request path as the first record's base name: `/3/0/` with relative names
  (`"n": "7/0"`) for objects, instances and multiple resources, and the full path with no `n` for a
  single resource or a resource instance (`[{"bn": "/3/0/0", "vs": "..."}]`). Composite payloads
  repeat that per node.
- Opaque values travel in `vd` as base64url without padding (RFC 8428 §5); decoding also accepts
  padding. Objlnk values travel in `vlo` as "o:i"; Time as integer unix seconds in `v`.
- Output is compact UTF-8 JSON; NaN and infinities cannot be encoded (CodecError).
- `decode_composite_write` splits a Write-Composite body into values and paths to delete (records
  with a name and no value, Core 1.1.1 §5.4.7).
- Times (`decode_timestamped`): `bt + t`; a result below 2**28 is relative to `now` (RFC 8428
  §4.5.3), which defaults to the current time.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lwm2m.codec import TimestampedValue
from lwm2m.codec import _senml as senml
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import Node
from lwm2m.path import Path

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise CodecError("vd is not base64url")
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"vd is not base64url: {exc}") from exc


def _dump(records: list[dict[str, Any]]) -> bytes:
    try:
        return json.dumps(records, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise CodecError(f"cannot encode as JSON: {exc}") from exc


def _reject_constant(name: str) -> None:
    raise CodecError(f"{name} is not a valid JSON number")


def _load(payload: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, digit limit
        raise CodecError(f"malformed SenML JSON: {exc}") from exc
    if not isinstance(data, list):
        raise CodecError("a SenML pack must be a JSON array")
    raw: list[dict[str, Any]] = []
    for record in data:
        if not isinstance(record, dict):
            raise CodecError("a SenML record must be a JSON object")
        if "vd" in record:
            if not isinstance(record["vd"], str):
                raise CodecError("vd must be a string")
            record = {**record, "vd": _b64url_decode(record["vd"])}
        raw.append(record)
    return raw


def _wire(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for record in records:
        if "vd" in record:
            record["vd"] = _b64url_encode(record["vd"])
    return records


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode `node` found at `path`."""
    return _dump(_wire(senml.layout(senml.flatten(node, path, model), path)))


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode a payload answering (or writing) `path` into the node kind of that path."""
    return senml.build_node(senml.resolve(_load(payload)), path, model)


def encode_composite(nodes: Mapping[Path, Node], model: ModelRegistry) -> bytes:
    """Encode several nodes (Read-Composite answer, Write-Composite body, composite Notify)."""
    return _dump(_wire(senml.layout_composite(nodes, model)))


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
    """A Read-Composite / Observe-Composite request body: one `{"n": path}` record per path."""
    return _dump([{"n": str(Path.of(p))} for p in paths])


def decode_paths(payload: bytes) -> list[Path]:
    """The paths of a Read-Composite / Observe-Composite request body."""
    return senml.request_paths(_load(payload))
