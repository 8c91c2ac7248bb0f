"""Server operations waiting for the MCU (manual §3.10-§3.15, §4.2-§4.4).

Each READ / WRITE / EXECUTE the server sends becomes a `PendingOperation` with a message id, the
URC lines that announce it, a future the RequestHandler call awaits and a timeout. The
`OperationQueue` keeps them in arrival order, which is what AT+MIPLMGR walks, and the statistics
AT+MIPLQMGR prints. In the cached URC modes (AT+MIPLNMI `<nnmi>` 1, 2) the queue holds at most 40
operations (the oldest is dropped) and 2 KB of WRITE / EXECUTE data (the new one is dropped).

`Parts` assembles a multi-line answer (`<index>` N-1..0, `<flag>` 1 first, 2 middle, 0 last) and
`build_node` turns the parts into the node for the requested path.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from emulator.module.clock import Handle
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    SingleResource,
    Value,
)
from lwm2m.numbers import ResourceType
from lwm2m.path import Path

MAX_QUEUED: Final = 40
MAX_QUEUED_DATA: Final = 2048
MAX_PAYLOAD: Final = 1000
FLAG_LAST, FLAG_FIRST, FLAG_MIDDLE = 0, 1, 2


class Kind(Enum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"


@dataclass(slots=True)
class Part:
    object_id: int
    instance_id: int
    resource_id: int
    value: Value
    type: ResourceType


@dataclass(slots=True)
class Parts:
    """Lines of one multi-part message, validated as they come."""

    items: list[Part] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return bool(self.items)

    def accepts(self, flag: int) -> bool:
        """Whether `flag` may come next: 1 or 0 to start, 2 or 0 to continue."""
        if self.items:
            return flag in (FLAG_MIDDLE, FLAG_LAST)
        return flag in (FLAG_FIRST, FLAG_LAST)

    def size_with(self, extra: int) -> int:
        from emulator.module.values import value_size

        return sum(value_size(p.value) for p in self.items) + extra


@dataclass(slots=True)
class PendingOperation:
    kind: Kind
    mid: int
    path: Path
    lines: list[str]
    data_size: int
    future: asyncio.Future[object]
    timer: Handle | None = None
    parts: Parts = field(default_factory=Parts)


class OperationQueue:
    def __init__(self) -> None:
        self._ops: OrderedDict[int, PendingOperation] = OrderedDict()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, mid: object) -> bool:
        return mid in self._ops

    def add(self, op: PendingOperation) -> None:
        self._ops[op.mid] = op

    def get(self, mid: int) -> PendingOperation | None:
        return self._ops.get(mid)

    def pop(self, mid: int) -> PendingOperation | None:
        return self._ops.pop(mid, None)

    def oldest(self) -> PendingOperation | None:
        return next(iter(self._ops.values()), None)

    def all(self) -> list[PendingOperation]:
        return list(self._ops.values())

    @property
    def buffers(self) -> int:
        return sum(op.data_size for op in self._ops.values() if op.kind is not Kind.READ)

    def clear_stats(self) -> None:
        self.dropped = 0


def build_node(path: Path, parts: list[Part]) -> Node:
    """The node answering `path` from flat (object, instance, resource) parts. Repeated resource
    ids become a multiple resource with instances 0..n-1."""
    instances: dict[int, dict[int, list[Part]]] = {}
    for part in parts:
        instances.setdefault(part.instance_id, {}).setdefault(part.resource_id, []).append(part)

    def resource(rid: int, items: list[Part]) -> SingleResource | MultipleResource:
        if len(items) == 1:
            return SingleResource(rid, items[0].value, items[0].type)
        return MultipleResource(rid, {n: p.value for n, p in enumerate(items)}, items[0].type)

    def instance(iid: int) -> ObjectInstance:
        resources = instances.get(iid, {})
        return ObjectInstance(iid, {rid: resource(rid, items) for rid, items in resources.items()})

    if path.is_resource and path.instance_id is not None and path.resource_id is not None:
        return resource(path.resource_id, instances.get(path.instance_id, {}).get(path.resource_id, []))
    if path.is_instance and path.instance_id is not None:
        return instance(path.instance_id)
    assert path.object_id is not None
    return LwM2MObject(path.object_id, {iid: instance(iid) for iid in instances})


def covers(path: Path, object_id: int, instance_id: int, resource_id: int) -> bool:
    """Whether a resource belongs under `path`."""
    return path.starts_with(Path(object_id, instance_id, resource_id)) or Path(
        object_id, instance_id, resource_id
    ).starts_with(path)
