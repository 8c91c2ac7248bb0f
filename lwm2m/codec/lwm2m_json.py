"""LwM2M JSON (content format 11543, legacy 1543): OMA TS LwM2M Core 1.0.2 §6.4.4 / 1.1.1 §7.4.5.

    {"bn": "/3/0/", "bt": 1367491215,
     "e": [{"n": "0", "sv": "Open Mobile Alliance"}, {"n": "7/0", "v": 3800, "t": 0}, ...]}

Each entry carries one of `v` (numbers; Time as unix seconds), `sv` (String, Corelnk, and Opaque
as standard base64), `bv` (Boolean) or `ov` (Objlnk as "o:i"). Entry names are appended to the
base name (`bn`). The shared record logic (typing by the model, node assembly) is in
`lwm2m.codec._senml`: entries are translated to SenML records first.

Design choices:
- Encoding: `bn` is the request path (`/3/0/` with relative names, or the full path and an entry
  without `n` for a single resource or a resource instance); composite payloads use `bn` "/" and
  full names without the leading slash (`"n": "3/0/0"`).
- Opaque: `sv` is base64-decoded when the model types the resource Opaque; for a resource the
  model does not know, `sv` stays a String.
- Times (`decode_timestamped`): an entry's `t` above 2**28 is absolute unix seconds; otherwise it
  is relative to `bt` (0 when absent). A result still below 2**28 is then relative to `now`
  (default: the current time), following the spec's "negative values are relative to now".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from lwm2m.codec import TimestampedValue
from lwm2m.codec import _senml as senml
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import Node
from lwm2m.numbers import ResourceType
from lwm2m.path import Path

_TO_SENML = {"v": "v", "sv": "vs", "bv": "vb", "ov": "vlo"}
_FROM_SENML = {"v": "v", "vs": "sv", "vb": "bv", "vlo": "ov", "vd": "sv"}


def _dump(document: dict[str, Any]) -> bytes:
    try:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise CodecError(f"cannot encode as JSON: {exc}") from exc


def _reject_constant(name: str) -> None:
    raise CodecError(f"{name} is not a valid JSON number")


def _entries(entries: list[senml.Entry], base: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in entries:
        item: dict[str, Any] = {}
        if entry.path != base:
            item["n"] = senml.relative_name(entry.path, base)
        value = base64.b64encode(entry.value).decode("ascii") if entry.kind == "vd" else entry.value
        item[_FROM_SENML[entry.kind]] = value
        out.append(item)
    return out


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode `node` found at `path`."""
    entries = senml.flatten(node, path, model)
    single = len(entries) == 1 and entries[0].path == path
    base = str(path) if single else senml.base_name(path)
    return _dump({"bn": base, "e": _entries(entries, path)})


def encode_composite(nodes: Mapping[Path, Node], model: ModelRegistry) -> bytes:
    """Encode several nodes in one document with `bn` "/" and full entry names."""
    entries = senml.flatten_composite(nodes, model)
    return _dump({"bn": "/", "e": _entries(entries, Path())})


def _parse(payload: bytes, model: ModelRegistry) -> tuple[list[senml.Record], float | None]:
    """The entries as resolved records (times still raw, relative to bt), and bt."""
    try:
        document = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, digit limit
        raise CodecError(f"malformed LwM2M JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise CodecError("an LwM2M JSON document must be a JSON object")
    base_name = document.get("bn", "")
    if not isinstance(base_name, str):
        raise CodecError("bn must be a string")
    base_time = document.get("bt")
    if base_time is not None and not senml.is_finite_number(base_time):
        raise CodecError("bt must be a number")
    entries = document.get("e")
    if not isinstance(entries, list):
        raise CodecError('an LwM2M JSON document needs an "e" array')
    raw: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise CodecError("an LwM2M JSON entry must be a JSON object")
        record: dict[str, Any] = {"n": base_name + _name(entry)}
        if "t" in entry:
            record["t"] = entry["t"]
        for label, kind in _TO_SENML.items():
            if label in entry:
                record[kind] = entry[label]
        raw.append(record)
    records = [_opaque(record, model) for record in senml.resolve(raw)]
    return records, base_time


def _name(entry: dict[str, Any]) -> str:
    name = entry.get("n", "")
    if not isinstance(name, str):
        raise CodecError("n must be a string")
    return name


def _opaque(record: senml.Record, model: ModelRegistry) -> senml.Record:
    """Turn `sv` into bytes where the model types the resource Opaque."""
    if record.kind != "vs" or record.path.depth < 3:
        return record
    object_id, resource_id = record.path.ids[0], record.path.ids[2]
    definition = model.get_resource(object_id, resource_id)
    if definition is None or definition.type is not ResourceType.OPAQUE:
        return record
    try:
        data = base64.b64decode(record.value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"{record.path}: opaque value is not base64") from exc
    return replace(record, kind="vd", value=data)


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode a payload answering (or writing) `path` into the node kind of that path."""
    records, _ = _parse(payload, model)
    return senml.build_node(records, path, model)


def decode_composite(
    payload: bytes, model: ModelRegistry, paths: Sequence[Path] | None = None
) -> dict[Path, Node]:
    """Decode a multi-path document; see `_senml.build_composite` for how entries are grouped."""
    records, _ = _parse(payload, model)
    return senml.build_composite(records, model, paths)


def decode_timestamped(
    payload: bytes, path: Path, model: ModelRegistry, now: datetime | None = None
) -> list[TimestampedValue]:
    """Every value under `path` with its time (see the module docstring for the time rule)."""
    records, base_time = _parse(payload, model)
    result: list[TimestampedValue] = []
    for record in records:
        if not record.path.starts_with(path):
            raise CodecError(f"record {record.path} is outside the target {path}")
        senml.check_depth(record)
        value, rtype = senml.typed_value(record, model)
        result.append(TimestampedValue(record.path, value, rtype, _time(record.time, base_time, now)))
    return result


def _time(entry_time: float | None, base_time: float | None, now: datetime | None) -> datetime | None:
    if entry_time is None and base_time is None:
        return None
    if entry_time is not None and entry_time > senml.RELATIVE_TIME_LIMIT:
        return senml.to_datetime(entry_time)
    return senml.resolve_time((base_time or 0) + (entry_time or 0), now)
