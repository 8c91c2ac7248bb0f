"""Shared record logic of the SenML-family codecs (SenML JSON, SenML CBOR, LwM2M JSON).

RFC 8428 §4 (SenML records, base name and base time resolution) as profiled by OMA TS LwM2M Core
1.1.1 §7.4.4-§7.4.6: one record per resource (instance), its name the LwM2M path, its value in
`v` (numbers, Time as unix seconds), `vs` (String, Corelnk), `vb` (Boolean), `vd` (Opaque) or
`vlo` (Objlnk as "o:i").

The format modules turn their wire form into *raw records*: dicts keyed by the SenML JSON labels
(`bn bt n t v vs vb vd vlo`) with `vd` already as bytes. Everything after that is here:

- `resolve` applies base name / base time (a base field holds until a later record changes it) and
  checks every field's type, giving `Record`s with an absolute `Path`.
- `typed_value` turns a record's value into the Python value of the resource's model type; when the
  model does not know the resource the record's own kind decides (`v` integral -> Integer, `v`
  otherwise -> Float, `vs` -> String, `vb` -> Boolean, `vd` -> Opaque, `vlo` -> Objlnk).
- `build_node` assembles the node kind of a request path (like TLV): `/o` -> LwM2MObject,
  `/o/i` -> ObjectInstance, `/o/i/r` -> Single- or MultipleResource, `/o/i/r/ri` ->
  ResourceInstance. A resource is multiple when the model says so or when its records carry
  resource-instance ids.
- `flatten` is the encoder side: node -> (path, kind, wire value) entries, typed by the model
  (falling back to the node's own type when the model does not know the resource).
- `resolve_time` turns base time + time into a UTC datetime; per RFC 8428 §4.5.3 a resolved time
  below 2**28 is relative to `now`.

Only `CodecError` leaves these functions on bad input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lwm2m.codec import TimestampedValue
from lwm2m.errors import CodecError, InvalidPath
from lwm2m.model import ModelRegistry
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ResourceInstance,
    SingleResource,
    Value,
    iter_values,
)
from lwm2m.numbers import ResourceType
from lwm2m.path import Path

VALUE_KINDS = ("v", "vs", "vb", "vd", "vlo")
KNOWN_LABELS = frozenset({"bn", "bt", "n", "t", *VALUE_KINDS})
RELATIVE_TIME_LIMIT = 2**28  # RFC 8428 §4.5.3

_KIND_BY_TYPE: dict[ResourceType, str] = {
    ResourceType.STRING: "vs",
    ResourceType.CORELNK: "vs",
    ResourceType.INTEGER: "v",
    ResourceType.UNSIGNED_INTEGER: "v",
    ResourceType.FLOAT: "v",
    ResourceType.TIME: "v",
    ResourceType.BOOLEAN: "vb",
    ResourceType.OPAQUE: "vd",
    ResourceType.OBJLNK: "vlo",
}


@dataclass(frozen=True, slots=True)
class Record:
    """A resolved record: absolute path, value kind (None for a name-only record) and times."""

    path: Path
    kind: str | None
    value: Any
    time: float | None


# ---------------------------------------------------------------- decoding


INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """A JSON/CBOR number that is not a boolean, NaN or infinite (ints of any size qualify)."""
    if isinstance(value, int):
        return not isinstance(value, bool)
    return isinstance(value, float) and math.isfinite(value)


def resolve(raw_records: object, *, allow_root: bool = False) -> list[Record]:
    """Apply base name and base time to raw records (RFC 8428 §4.6) and check the fields."""
    if not isinstance(raw_records, list):
        raise CodecError("a SenML pack must be an array of records")
    base_name = ""
    base_time: float | None = None
    records: list[Record] = []
    for raw in raw_records:
        if not isinstance(raw, dict):
            raise CodecError("a SenML record must be a map")
        for label in raw:
            if isinstance(label, str) and label.endswith("_"):
                raise CodecError(f"unsupported must-understand label {label!r}")
        if "bn" in raw:
            if not isinstance(raw["bn"], str):
                raise CodecError("bn must be a string")
            base_name = raw["bn"]
        if "bt" in raw:
            if not is_finite_number(raw["bt"]):
                raise CodecError("bt must be a finite number")
            base_time = raw["bt"]
        name = raw.get("n", "")
        if not isinstance(name, str):
            raise CodecError("n must be a string")
        time = raw.get("t")
        if time is not None and not is_finite_number(time):
            raise CodecError("t must be a finite number")
        if time is not None or base_time is not None:
            time = (base_time or 0) + (time or 0)
        kinds = [k for k in VALUE_KINDS if k in raw]
        if len(kinds) > 1:
            raise CodecError(f"a record carries more than one value: {kinds}")
        kind = kinds[0] if kinds else None
        value = raw[kind] if kind else None
        if kind is not None:
            _check_wire_value(kind, value)
        records.append(Record(parse_name(base_name + name, allow_root=allow_root), kind, value, time))
    return records


def parse_name(name: str, *, allow_root: bool = False) -> Path:
    """A resolved record name as a Path."""
    try:
        path = Path.parse(name)
    except InvalidPath as exc:
        raise CodecError(f"record name is not an LwM2M path: {name!r}") from exc
    if path.is_root and not allow_root:
        raise CodecError("record name is empty")
    return path


def _check_wire_value(kind: str, value: object) -> None:
    if kind == "v":
        if not is_finite_number(value):
            raise CodecError("v must be a finite number")
    elif kind in ("vs", "vlo"):
        if not isinstance(value, str):
            raise CodecError(f"{kind} must be a string")
    elif kind == "vb":
        if not isinstance(value, bool):
            raise CodecError("vb must be a boolean")
    elif kind == "vd" and not isinstance(value, bytes):
        raise CodecError("vd must carry bytes")


def _integral(value: float | int, what: str) -> int:
    if isinstance(value, int):
        return value
    if value.is_integer():
        return int(value)
    raise CodecError(f"{what} must be an integer, got {value!r}")


def _float(value: float | int, path: Path) -> float:
    try:
        number = float(value)
    except OverflowError as exc:
        raise CodecError(f"{path}: {value!r} is out of range for Float") from exc
    if not math.isfinite(number):
        raise CodecError(f"{path}: {number} cannot be carried")
    return number


def to_datetime(seconds: float | int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise CodecError(f"time out of range: {seconds!r}") from exc


def parse_objlnk(text: str) -> ObjectLink:
    left, sep, right = text.partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or not left.isascii() or not right.isascii():
        raise CodecError(f"object link must be 'object:instance', got {text!r}")
    link = ObjectLink(int(left), int(right))
    if link.object_id > 65535 or link.instance_id > 65535:
        raise CodecError(f"object link ids out of range: {text!r}")
    return link


def record_type(record: Record, model: ModelRegistry) -> ResourceType:
    """The model's type for the record's resource, or the type its value kind implies."""
    path = record.path
    if path.resource_id is not None and path.object_id is not None:
        definition = model.get_resource(path.object_id, path.resource_id)
        if definition is not None:
            return definition.type
    if record.kind == "v":
        return ResourceType.INTEGER if isinstance(record.value, int) else ResourceType.FLOAT
    if record.kind == "vs":
        return ResourceType.STRING
    if record.kind == "vb":
        return ResourceType.BOOLEAN
    if record.kind == "vd":
        return ResourceType.OPAQUE
    if record.kind == "vlo":
        return ResourceType.OBJLNK
    raise CodecError(f"record {record.path} carries no value")


def typed_value(record: Record, model: ModelRegistry) -> tuple[Value, ResourceType]:
    """The record's value as the Python value of its resource type."""
    rtype = record_type(record, model)
    kind, value = record.kind, record.value
    expected = _KIND_BY_TYPE.get(rtype)
    if expected is None:
        raise CodecError(f"{record.path} is executable and carries no value")
    if kind != expected:
        raise CodecError(f"{record.path} is {rtype.value}: expected {expected}, got {kind}")
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER):
        number = _integral(value, str(record.path))
        low, high = UINT64 if rtype is ResourceType.UNSIGNED_INTEGER else INT64
        if not low <= number <= high:
            raise CodecError(f"{record.path}: {number} is out of range for {rtype.value}")
        return number, rtype
    if rtype is ResourceType.FLOAT:
        return _float(value, record.path), rtype
    if rtype is ResourceType.TIME:
        return to_datetime(value), rtype
    if rtype is ResourceType.OBJLNK:
        return parse_objlnk(value), rtype
    return value, rtype


def check_depth(record: Record) -> None:
    if record.path.depth < 3:
        raise CodecError(f"a value record must name a resource or resource instance, got {record.path}")


def build_node(records: Sequence[Record], path: Path, model: ModelRegistry) -> Node:
    """Assemble the node found at `path` from value records below it."""
    if path.is_root:
        raise CodecError("cannot decode a single node at the root path")
    for record in records:
        if record.kind is None:
            raise CodecError(f"record {record.path} carries no value")
        check_depth(record)
        if not record.path.starts_with(path):
            raise CodecError(f"record {record.path} is outside the target {path}")
    if path.is_resource_instance:
        if len(records) != 1 or records[0].path != path:
            raise CodecError(f"expected exactly one record for {path}")
        value, rtype = typed_value(records[0], model)
        return ResourceInstance(path.ids[3], value, rtype)
    if path.is_resource:
        return _resource(records, path, model)
    if path.is_instance:
        return _instance(records, path, model)
    instances: dict[int, list[Record]] = {}
    for record in records:
        instances.setdefault(record.path.ids[1], []).append(record)
    obj = LwM2MObject(path.ids[0])
    for instance_id, group in instances.items():
        obj.instances[instance_id] = _instance(group, Path(path.ids[0], instance_id), model)
    return obj


def _instance(records: Sequence[Record], path: Path, model: ModelRegistry) -> ObjectInstance:
    grouped: dict[int, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.path.ids[2], []).append(record)
    instance = ObjectInstance(path.ids[1])
    for resource_id, group in grouped.items():
        instance.resources[resource_id] = _resource(group, path.child(resource_id), model)
    return instance


def _resource(
    records: Sequence[Record], path: Path, model: ModelRegistry
) -> SingleResource | MultipleResource:
    object_id, _, resource_id = path.ids
    declared = model.is_multiple(object_id, resource_id)
    multiple = declared if declared is not None else any(r.path.is_resource_instance for r in records)
    if not multiple:
        if len(records) != 1 or records[0].path != path:
            raise CodecError(f"single resource {path} needs exactly one record at its path")
        value, rtype = typed_value(records[0], model)
        return SingleResource(resource_id, value, rtype)
    resource = MultipleResource(resource_id, type=model.resource_type(object_id, resource_id))
    for record in records:
        if not record.path.is_resource_instance:
            raise CodecError(f"multiple resource {path} needs resource instance records")
        value, rtype = typed_value(record, model)
        resource.type = rtype
        instance_id = record.path.ids[3]
        if instance_id in resource.instances:
            raise CodecError(f"duplicate record for {record.path}")
        resource.instances[instance_id] = value
    return resource


def build_composite(
    records: Sequence[Record], model: ModelRegistry, paths: Sequence[Path] | None = None
) -> dict[Path, Node]:
    """Group value records into nodes.

    With `paths` (the targets of a Read-Composite / Observe-Composite) each record goes under the
    deepest target holding it and every target with records becomes a node of its kind. Without
    `paths`, a record at `/o/i/r` becomes a SingleResource and records at `/o/i/r/ri` are grouped
    into a MultipleResource at `/o/i/r` (holding the instances present).
    """
    for record in records:
        if record.kind is None:
            raise CodecError(f"record {record.path} carries no value")
        check_depth(record)
    if paths is None:
        targets = [r.path if r.path.is_resource else r.path.parent for r in records]
    else:
        targets = []
        for record in records:
            holders = [p for p in paths if record.path.starts_with(p) and not p.is_root]
            if not holders:
                raise CodecError(f"record {record.path} is outside the requested paths")
            targets.append(max(holders, key=lambda p: p.depth))
    groups: dict[Path, list[Record]] = {}
    for target, record in zip(targets, records, strict=True):
        groups.setdefault(target, []).append(record)
    return {target: build_node(group, target, model) for target, group in groups.items()}


# ---------------------------------------------------------------- encoding


@dataclass(frozen=True, slots=True)
class Entry:
    """One record to write: absolute path, SenML value kind and the value in wire form
    (`v` int/float, `vs`/`vlo` str, `vb` bool, `vd` bytes)."""

    path: Path
    kind: str
    value: Any


def node_path_ok(node: Node, path: Path) -> None:
    expected = {
        LwM2MObject: 1,
        ObjectInstance: 2,
        SingleResource: 3,
        MultipleResource: 3,
        ResourceInstance: 4,
    }.get(type(node))
    if expected is None:
        raise CodecError(f"not a node: {type(node).__name__}")
    if path.depth != expected:
        raise CodecError(f"a {type(node).__name__} cannot sit at {path}")
    if path.ids[-1] != node.id:
        raise CodecError(f"node id {node.id} does not match path {path}")


def flatten(node: Node, path: Path, model: ModelRegistry) -> list[Entry]:
    """The records of `node` found at `path`, in node order."""
    node_path_ok(node, path)
    entries: list[Entry] = []
    for value_path, value, node_type in iter_values(node, path):
        object_id, resource_id = value_path.ids[0], value_path.ids[2]
        definition = model.get_resource(object_id, resource_id)
        rtype = definition.type if definition is not None else node_type
        entries.append(Entry(value_path, *wire_value(value, rtype, value_path)))
    return entries


def wire_value(value: object, rtype: ResourceType, path: Path) -> tuple[str, Any]:
    """(kind, wire value) for a Python value of type `rtype`. Raises CodecError on a mismatch."""
    kind = _KIND_BY_TYPE.get(rtype)
    if kind is None:
        raise CodecError(f"{path}: an executable resource has no value to encode")
    if rtype in (ResourceType.STRING, ResourceType.CORELNK) and isinstance(value, str):
        return kind, value
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER) and isinstance(value, int):
        low, high = UINT64 if rtype is ResourceType.UNSIGNED_INTEGER else INT64
        if isinstance(value, bool) or not low <= value <= high:
            raise CodecError(f"{path}: {value!r} is not a {rtype.value}")
        return kind, value
    if rtype is ResourceType.FLOAT and is_number(value):
        return kind, _float(value, path)  # type: ignore[arg-type]
    if rtype is ResourceType.BOOLEAN and isinstance(value, bool):
        return kind, value
    if rtype is ResourceType.OPAQUE and isinstance(value, bytes | bytearray):
        return kind, bytes(value)
    if rtype is ResourceType.TIME:
        if isinstance(value, datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
            return kind, int(stamp.timestamp())
        if isinstance(value, int) and not isinstance(value, bool):
            return kind, value
    if rtype is ResourceType.OBJLNK and isinstance(value, ObjectLink):
        return kind, str(value)
    raise CodecError(f"{path}: {type(value).__name__} value is not a {rtype.value}")


def flatten_composite(nodes: Mapping[Path, Node], model: ModelRegistry) -> list[Entry]:
    entries: list[Entry] = []
    for path, node in nodes.items():
        entries.extend(flatten(node, path, model))
    return entries


def relative_name(path: Path, base: Path) -> str:
    """The record name of `path` below `base`: '' for the base itself, else 'r' or 'r/ri'."""
    return "/".join(str(i) for i in path.ids[base.depth :])


def base_name(base: Path) -> str:
    """A base name that record names append to: `/3/0/` (or `/` for the root)."""
    return str(base) if base.is_root else f"{base}/"


# ---------------------------------------------------------------- time


def resolve_time(seconds: float | None, now: datetime | None) -> datetime | None:
    """Absolute UTC time for a resolved SenML time; values below 2**28 are relative to `now`."""
    if seconds is None:
        return None
    if seconds >= RELATIVE_TIME_LIMIT:
        return to_datetime(seconds)
    reference = now if now is not None else datetime.now(UTC)
    try:
        return reference + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise CodecError(f"relative time out of range: {seconds!r}") from exc


# ---------------------------------------------------------------- whole packs


def layout(entries: Sequence[Entry], base: Path) -> list[dict[str, Any]]:
    """Raw records for the entries of one node at `base`: the first record carries the base name
    (`/3/0/` with relative names after it, or the full path for a single-record node)."""
    records: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        record: dict[str, Any] = {}
        if entry.path == base:
            record["bn"] = str(base)
        else:
            if index == 0:
                record["bn"] = base_name(base)
            record["n"] = relative_name(entry.path, base)
        record[entry.kind] = entry.value
        records.append(record)
    return records


def layout_composite(nodes: Mapping[Path, Node], model: ModelRegistry) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path, node in nodes.items():
        records.extend(layout(flatten(node, path, model), path))
    return records


def timestamped(
    raw_records: object, path: Path, model: ModelRegistry, now: datetime | None
) -> list[TimestampedValue]:
    """Every value under `path` with its resolved time (None when the record has none)."""
    result: list[TimestampedValue] = []
    for record in resolve(raw_records):
        if not record.path.starts_with(path):
            raise CodecError(f"record {record.path} is outside the target {path}")
        if record.kind is None:
            raise CodecError(f"record {record.path} carries no value")
        check_depth(record)
        value, rtype = typed_value(record, model)
        result.append(TimestampedValue(record.path, value, rtype, resolve_time(record.time, now)))
    return result


def composite_write(raw_records: object, model: ModelRegistry) -> tuple[dict[Path, Node], list[Path]]:
    """(nodes to write, paths to delete) of a Write-Composite body; records without a value are
    deletions (Core 1.1.1 §5.4.7)."""
    records = resolve(raw_records)
    deletes = [r.path for r in records if r.kind is None]
    values = build_composite([r for r in records if r.kind is not None], model)
    return values, deletes


def request_paths(raw_records: object) -> list[Path]:
    """The paths of a Read-Composite / Observe-Composite request body (name-only records)."""
    records = resolve(raw_records, allow_root=True)
    for record in records:
        if record.kind is not None:
            raise CodecError(f"a composite request record must not carry a value ({record.path})")
    return [r.path for r in records]
