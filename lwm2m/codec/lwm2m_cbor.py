"""LwM2M CBOR (content format 11544, application/vnd.oma.lwm2m+cbor): OMA TS LwM2M Core 1.2 §7.4.7.

One CBOR map (RFC 8949) whose keys are path ids and whose values are either nested maps or
resource (instance) values, from the root of the data model down:

    {3: {0: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}, 9: 100}}}

A key may also be an array of consecutive ids (path compaction), so the same read of /3/0 may
come as `{[3, 0]: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}, 9: 100}}`; a whole path of a
single value as `{[3, 0, 9]: 100}`. Values are the items of the plain CBOR format
(`lwm2m.codec.cbor`): text, byte strings, integers, floats, booleans, tag 1 time, "o:i" object
links. A null value (Write-Composite: delete) names a path without a value.

Design choices: the encoder writes nested single-id maps from the object id down (no
compaction; every decoder must accept it); the decoder accepts any mix of single ids and id
arrays, any map key order, and rejects ids above 65535, paths deeper than four ids, values above
the resource level, values outside the request path, duplicate paths and trailing bytes. Values
are typed by the model; for a resource the model does not know the CBOR major type decides.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import cbor2

from lwm2m.codec import cbor as plain
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
    Value,
    build_node,
    iter_values,
)
from lwm2m.numbers import ResourceType
from lwm2m.path import MAX_ID, Path

_MAX_DEPTH = 16  # four path levels, compaction arrays and tags; this bounds hostile input
Entry = tuple[Path, Value, ResourceType]
EMPTY = object()  # an object instance without resources


# --- encoding --------------------------------------------------------------------------------------


def _insert(tree: dict[int, object], path: Path, item: object) -> None:
    ids = path.ids
    level = tree
    for segment in ids[:-1]:
        child = level.setdefault(segment, {})
        if not isinstance(child, dict):
            raise CodecError(f"{path} is both a value and a container")
        level = child
    if ids[-1] in level:
        raise CodecError(f"{path} given twice")
    level[ids[-1]] = item


def _tree(nodes: Mapping[Path, Node]) -> dict[int, object]:
    tree: dict[int, object] = {}
    for path, node in nodes.items():
        if path.is_root:
            raise CodecError("LwM2M CBOR cannot carry the root")
        _check_kind(node, path)
        for value_path, value, rtype in iter_values(node, path):
            _insert(tree, value_path, plain._to_item(value, rtype))
        if isinstance(node, LwM2MObject):
            for instance_id in node.instances:
                _ensure_container(tree, path.child(instance_id))
        if isinstance(node, LwM2MObject | ObjectInstance | MultipleResource):
            _ensure_container(tree, path)
    return tree


def _ensure_container(tree: dict[int, object], path: Path) -> None:
    """An empty instance or multiple resource is still written, as an empty map."""
    level = tree
    for segment in path.ids:
        child = level.setdefault(segment, {})
        if not isinstance(child, dict):
            raise CodecError(f"{path} is both a value and a container")
        level = child


def _check_kind(node: Node, path: Path) -> None:
    expected = {1: LwM2MObject, 2: ObjectInstance, 3: SingleResource | MultipleResource, 4: ResourceInstance}
    if not isinstance(node, expected[path.depth]):
        raise CodecError(f"a {type(node).__name__} cannot be found at {path}")


def _dump(tree: dict[int, object]) -> bytes:
    try:
        return cbor2.dumps(tree, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError) as exc:
        raise CodecError(f"cannot encode as LwM2M CBOR: {exc}") from exc


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """Encode `node` found at `path` (its full path from the object id down)."""
    del model
    return _dump(_tree({path: node}))


def encode_composite(nodes: Mapping[Path, Node], model: ModelRegistry) -> bytes:
    """Several nodes in one map (Read-Composite answer, Write-Composite body)."""
    del model
    return _dump(_tree(nodes))


# --- decoding --------------------------------------------------------------------------------------


def _load(payload: bytes) -> object:
    if not payload:
        raise CodecError("empty LwM2M CBOR payload")
    stream = io.BytesIO(bytes(payload))
    try:
        item = cbor2.CBORDecoder(stream, max_depth=_MAX_DEPTH).decode()
    except Exception as exc:  # cbor2 raises many kinds on hostile input; translate them all here
        raise CodecError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(payload):
        raise CodecError(f"{len(payload) - stream.tell()} trailing bytes after the LwM2M CBOR map")
    if not isinstance(item, Mapping):
        raise CodecError("LwM2M CBOR must be a map")
    return item


def _key_ids(key: object) -> tuple[int, ...]:
    ids = tuple(key) if isinstance(key, list | tuple) else (key,)
    if not ids:
        raise CodecError("empty path array as a map key")
    for segment in ids:
        if isinstance(segment, bool) or not isinstance(segment, int) or not 0 <= segment <= MAX_ID:
            raise CodecError(f"path id {segment!r} is not an integer in 0..{MAX_ID}")
    return ids


def _leaves(item: Mapping[object, object], prefix: tuple[int, ...], out: dict[Path, object]) -> None:
    """Every value by its path; an empty object instance (`{}` at /o/i) as the value EMPTY."""
    for key, value in item.items():
        ids = prefix + _key_ids(key)
        if len(ids) > 4:
            raise CodecError(f"path {'/'.join(map(str, ids))} is deeper than a resource instance")
        if isinstance(value, Mapping):
            if not value and len(ids) == 2:
                out[Path(*ids)] = EMPTY
            _leaves(value, ids, out)
            continue
        if len(ids) < 3:
            raise CodecError(f"value above the resource level at /{'/'.join(map(str, ids))}")
        path = Path(*ids)
        if path in out:
            raise CodecError(f"{path} given twice")
        out[path] = value


def _entry(path: Path, item: object, model: ModelRegistry) -> Entry:
    assert path.object_id is not None and path.resource_id is not None
    definition = model.get_resource(path.object_id, path.resource_id)
    if definition is None:
        rtype, value = plain._infer(item)
        return path, value, rtype
    if definition.multiple and path.depth == 3:
        raise CodecError(f"{path} is a multiple resource: its values are resource instances")
    if not definition.multiple and path.depth == 4:
        raise CodecError(f"{path.parent} is a single resource: it has no instances")
    return path, plain._from_item(item, definition.type), definition.type


def _entries(payload: bytes, model: ModelRegistry) -> tuple[list[Entry], list[Path]]:
    """The typed values, and the empty object instances."""
    leaves: dict[Path, object] = {}
    _leaves(_load(payload), (), leaves)  # type: ignore[arg-type]
    values = [
        _entry(path, item, model)
        for path, item in sorted(leaves.items())
        if item is not None and item is not EMPTY
    ]
    return values, [path for path, item in leaves.items() if item is EMPTY]


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """Decode a payload answering (or writing) `path` into the node kind of that path."""
    if path.is_root:
        raise CodecError("LwM2M CBOR cannot carry the root")
    entries, empty = _entries(payload, model)
    outside = [p for p in [*(e[0] for e in entries), *empty] if not p.starts_with(path)]
    if outside:
        raise CodecError(f"{outside[0]} is not under the request path {path}")
    if path.depth >= 3 and not entries:
        raise CodecError(f"no value for {path}")
    node = build_node(path, entries, model.is_multiple)
    if isinstance(node, LwM2MObject) and empty:
        instances = {
            **{p.instance_id or 0: ObjectInstance(p.instance_id or 0, {}) for p in empty},
            **node.instances,
        }
        node = LwM2MObject(node.id, dict(sorted(instances.items())))
    elif isinstance(node, ObjectInstance) and not entries and path not in empty:
        raise CodecError(f"no value for {path}")
    return node


def decode_composite(
    payload: bytes, model: ModelRegistry, paths: Sequence[Path] | None = None
) -> dict[Path, Node]:
    """Decode a composite payload into one node per resource (or per requested path that holds
    values, when `paths` is given)."""
    entries, _empty = _entries(payload, model)
    if paths:
        nodes: dict[Path, Node] = {}
        for requested in paths:
            below = [e for e in entries if e[0].starts_with(requested)]
            if below and not requested.is_root:
                nodes[requested] = build_node(requested, below, model.is_multiple)
        return nodes
    resources: dict[Path, list[Entry]] = {}
    for entry in entries:
        p = entry[0]
        resources.setdefault(Path(p.object_id, p.instance_id, p.resource_id), []).append(entry)
    return {p: build_node(p, group, model.is_multiple) for p, group in resources.items()}


def decode_composite_write(payload: bytes, model: ModelRegistry) -> tuple[dict[Path, Node], list[Path]]:
    """A Write-Composite body: (nodes to write, paths to delete: the null values)."""
    leaves: dict[Path, object] = {}
    _leaves(_load(payload), (), leaves)  # type: ignore[arg-type]
    deleted = [p for p, item in leaves.items() if item is None]
    values = [
        _entry(p, item, model) for p, item in sorted(leaves.items()) if item is not None and item is not EMPTY
    ]
    nodes: dict[Path, Node] = {}
    for entry in values:
        p = entry[0]
        key = Path(p.object_id, p.instance_id, p.resource_id)
        nodes[key] = build_node(key, [e for e in values if e[0].starts_with(key)], model.is_multiple)
    return nodes, deleted


def decode_timestamped(payload: bytes, path: Path, model: ModelRegistry) -> list[object]:
    """Every value under `path` (LwM2M CBOR carries no times)."""
    from lwm2m.codec import TimestampedValue

    node = decode(payload, path, model)
    return [TimestampedValue(p, v, t) for p, v, t in iter_values(node, path)]
