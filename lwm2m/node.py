"""Typed LwM2M nodes: what a Read returns and a Write carries.

A node is one of: `LwM2MObject` (instances), `ObjectInstance` (resources), `SingleResource`,
`MultipleResource` (resource instances) or `ResourceInstance`. Values are plain Python values:

    String -> str, Integer / Unsigned Integer -> int, Float -> float, Boolean -> bool,
    Opaque -> bytes, Time -> datetime (timezone-aware UTC), Objlnk -> ObjectLink,
    Corelnk -> str

Nodes carry their ResourceType so that codecs without type information (TLV, opaque) can encode
them, and so that decoders can say which type they read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from lwm2m.numbers import ResourceType
from lwm2m.path import Path


@dataclass(frozen=True, slots=True)
class ObjectLink:
    """An Objlnk value `object_id:instance_id` (Core 1.1.1 Appendix C)."""

    object_id: int
    instance_id: int

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"

    @classmethod
    def parse(cls, text: str) -> ObjectLink:
        left, _, right = text.partition(":")
        return cls(int(left), int(right))


Value = str | int | float | bool | bytes | datetime | ObjectLink


@dataclass(slots=True)
class SingleResource:
    id: int
    value: Value
    type: ResourceType = ResourceType.STRING


@dataclass(slots=True)
class ResourceInstance:
    id: int
    value: Value
    type: ResourceType = ResourceType.STRING


@dataclass(slots=True)
class MultipleResource:
    id: int
    instances: dict[int, Value] = field(default_factory=dict)
    type: ResourceType = ResourceType.STRING


Resource = SingleResource | MultipleResource


@dataclass(slots=True)
class ObjectInstance:
    id: int
    resources: dict[int, Resource] = field(default_factory=dict)


@dataclass(slots=True)
class LwM2MObject:
    id: int
    instances: dict[int, ObjectInstance] = field(default_factory=dict)


Node = LwM2MObject | ObjectInstance | SingleResource | MultipleResource | ResourceInstance


def iter_values(node: Node, path: Path) -> Iterator[tuple[Path, Value, ResourceType]]:
    """Flatten a node found at `path` into (resource or resource-instance path, value, type).

    `path` is where the node sits: for a LwM2MObject `/o`, for an ObjectInstance `/o/i`, for a
    resource `/o/i/r`, for a ResourceInstance `/o/i/r/ri`.
    """
    if isinstance(node, LwM2MObject):
        for inst in node.instances.values():
            yield from iter_values(inst, Path(node.id, inst.id))
    elif isinstance(node, ObjectInstance):
        for res in node.resources.values():
            yield from iter_values(
                res, path.child(res.id) if path.depth == 2 else Path(*(*path.ids[:2], res.id))
            )
    elif isinstance(node, SingleResource):
        yield path, node.value, node.type
    elif isinstance(node, MultipleResource):
        for ri, value in node.instances.items():
            yield path.child(ri), value, node.type
    else:
        yield path, node.value, node.type


def build_node(
    path: Path,
    values: list[tuple[Path, Value, ResourceType]],
    is_multiple: Callable[[int, int], bool | None] | None = None,
) -> Node:
    """Rebuild the node at `path` from flat (path, value, type) entries (the inverse of iter_values).

    `is_multiple(object_id, resource_id)` tells whether a resource given at `/o/i/r` is multiple;
    entries at `/o/i/r/ri` always make a MultipleResource.
    """
    if path.depth == 4:
        ((_p, value, rtype),) = [v for v in values if v[0] == path] or [(path, b"", ResourceType.OPAQUE)]
        return ResourceInstance(path.resource_instance_id or 0, value, rtype)

    def resource(res_path: Path, entries: list[tuple[Path, Value, ResourceType]]) -> Resource:
        rid = res_path.resource_id
        assert rid is not None and res_path.object_id is not None
        multi = any(p.depth == 4 for p, _v, _t in entries)
        if not multi and is_multiple is not None:
            multi = bool(is_multiple(res_path.object_id, rid)) and not entries
        if multi:
            rtype = entries[0][2] if entries else ResourceType.OPAQUE
            return MultipleResource(
                rid, {p.resource_instance_id or 0: v for p, v, _t in entries if p.depth == 4}, rtype
            )
        _p, value, rtype = entries[0]
        return SingleResource(rid, value, rtype)

    def instance(inst_path: Path, entries: list[tuple[Path, Value, ResourceType]]) -> ObjectInstance:
        by_resource: dict[int, list[tuple[Path, Value, ResourceType]]] = {}
        for entry in entries:
            by_resource.setdefault(entry[0].resource_id or 0, []).append(entry)
        return ObjectInstance(
            inst_path.instance_id or 0,
            {rid: resource(inst_path.child(rid), group) for rid, group in sorted(by_resource.items())},
        )

    if path.depth == 3:
        return resource(path, [v for v in values if v[0].starts_with(path)])
    if path.depth == 2:
        return instance(path, [v for v in values if v[0].starts_with(path)])
    if path.depth == 1:
        by_instance: dict[int, list[tuple[Path, Value, ResourceType]]] = {}
        for entry in values:
            if entry[0].starts_with(path) and entry[0].depth >= 3:
                by_instance.setdefault(entry[0].instance_id or 0, []).append(entry)
        return LwM2MObject(
            path.object_id or 0,
            {iid: instance(path.child(iid), group) for iid, group in sorted(by_instance.items())},
        )
    raise ValueError("cannot build a node at the root")
