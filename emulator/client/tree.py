"""A generic LwM2M device: an in-memory object tree behind the `RequestHandler` protocol.

Semantics from OMA TS LwM2M Core 1.1.1: Read / Write / Execute / Create / Delete §6.3, Discover
§6.3.4, Write-Attributes and the notification attributes §7.3 (pmin, pmax, gt, lt, st), Observe
§6.4.1, Bootstrap-Delete §6.1.7.5.

Design choices:
- Values are typed by the ModelRegistry; resources the model does not know take the type of the
  Python value (str, int, float, bool, bytes...). Operations from the model are enforced for the
  Device Management server (read of an executable is 4.05, write of a read-only resource 4.05)
  except on the Security object, which only the bootstrap server writes.
- `set_value` is the device changing its own data: it decides per observation, from the
  effective attributes (resource level first, then instance, then object for pmin / pmax), whether
  to notify now, later (pmin not elapsed), or not (gt / lt not crossed, change below st). pmax
  sends the current value when nothing was sent for pmax seconds. Writes by the server count as
  changes too.
- Notifications leave through a notifier the client attaches (`attach_notifier`), by observation
  id, carrying a copy of the node at the observed path.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from emulator.client.handler import DiscoverResult, ReadResult
from emulator.client.settings import ObjectLinks
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
from lwm2m.numbers import CoapCode, ResourceType
from lwm2m.path import Path

ExecuteCallback = Callable[[str], CoapCode | Awaitable[CoapCode | None] | None]
Notifier = Callable[[int, Node | None], None]

NOTIFICATION_ATTRIBUTES = frozenset(
    {"pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax"}
)
SECURITY_OBJECT = 0
DEVICE_OBJECT = 3


@dataclass(eq=False, slots=True)
class _Watch:
    """One observation as the tree sees it."""

    id: int
    path: Path
    last_sent: float
    last_value: Value | None
    pmin_timer: asyncio.TimerHandle | None = None
    pmax_timer: asyncio.TimerHandle | None = None

    def stop_timers(self) -> None:
        for timer in (self.pmin_timer, self.pmax_timer):
            if timer is not None:
                timer.cancel()
        self.pmin_timer = self.pmax_timer = None


def infer_type(value: Value) -> ResourceType:
    """The LwM2M type of a Python value, for resources the model does not describe."""
    if isinstance(value, bool):
        return ResourceType.BOOLEAN
    if isinstance(value, int):
        return ResourceType.INTEGER
    if isinstance(value, float):
        return ResourceType.FLOAT
    if isinstance(value, bytes):
        return ResourceType.OPAQUE
    if isinstance(value, datetime):
        return ResourceType.TIME
    if isinstance(value, ObjectLink):
        return ResourceType.OBJLNK
    return ResourceType.STRING


class ObjectTreeHandler:
    """An LwM2M device made of plain values. Implements `RequestHandler` and `NotificationSource`."""

    def __init__(self, model: ModelRegistry, versions: Mapping[int, str] | None = None) -> None:
        self.model = model
        self.objects: dict[int, LwM2MObject] = {}
        self.versions: dict[int, str] = dict(versions or {})
        self.attributes: dict[Path, dict[str, str]] = {}
        self._executables: dict[Path, ExecuteCallback] = {}
        self._watches: dict[tuple[int, Path], _Watch] = {}
        self._notifier: Notifier | None = None

    # -- building the tree ------------------------------------------------------------------------

    def attach_notifier(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def add_object(self, object_id: int, version: str | None = None) -> LwM2MObject:
        """Declare an object (registered even without instances)."""
        obj = self.objects.setdefault(object_id, LwM2MObject(object_id))
        if version is not None:
            self.versions[object_id] = version
        return obj

    def add_instance(
        self, object_id: int, instance_id: int, values: Mapping[int, Value | Mapping[int, Value]] = {}
    ) -> ObjectInstance:
        """Add (or replace) an instance; a Mapping value makes a multiple resource."""
        instance = ObjectInstance(instance_id)
        for resource_id, value in values.items():
            instance.resources[resource_id] = self._resource(object_id, resource_id, value)
        self.add_object(object_id).instances[instance_id] = instance
        return instance

    def set_value(self, path: Path | str, value: Value | Mapping[int, Value]) -> None:
        """The device changes a resource (or resource instance); observations are notified as
        their attributes allow. Raises LookupError when the instance does not exist."""
        path = Path.of(path)
        if path.depth not in (3, 4):
            raise ValueError(f"set_value needs a resource or resource instance path, not {path}")
        instance = self._instance(path)
        if instance is None:
            raise LookupError(f"no instance {path.parent if path.depth == 3 else path.parent.parent}")
        assert path.object_id is not None and path.resource_id is not None
        if path.depth == 3:
            instance.resources[path.resource_id] = self._resource(path.object_id, path.resource_id, value)
        else:
            assert path.resource_instance_id is not None
            if isinstance(value, Mapping):
                raise ValueError("a resource instance holds one value")
            resource = instance.resources.get(path.resource_id)
            if not isinstance(resource, MultipleResource):
                resource = self._resource(path.object_id, path.resource_id, {})
                assert isinstance(resource, MultipleResource)
                instance.resources[path.resource_id] = resource
            resource.instances[path.resource_instance_id] = value
        self._changed(path)

    def get_value(self, path: Path | str) -> Value | None:
        node = self._find(Path.of(path))
        if isinstance(node, SingleResource | ResourceInstance):
            return node.value
        return None

    def on_execute(self, path: Path | str, callback: ExecuteCallback) -> None:
        """Run `callback(arguments)` on Execute; it may return a code (None = 2.04), sync or async."""
        self._executables[Path.of(path)] = callback

    def object_links(self) -> ObjectLinks:
        """For `ClientSettings.object_links`."""
        instances = [Path(o, i) for o, obj in sorted(self.objects.items()) for i in sorted(obj.instances)]
        objects: dict[int, str | None] = {o: self.versions.get(o) for o in sorted(self.objects)}
        return ObjectLinks(instances=instances, objects=objects)

    @property
    def observed_paths(self) -> dict[int, tuple[Path, ...]]:
        """Observation id -> observed paths (several for Observe-Composite)."""
        paths: dict[int, tuple[Path, ...]] = {}
        for watch in self._watches.values():
            paths[watch.id] = (*paths.get(watch.id, ()), watch.path)
        return paths

    # -- RequestHandler ---------------------------------------------------------------------------

    async def read(self, path: Path) -> ReadResult:
        if path.is_root:
            return ReadResult(CoapCode.METHOD_NOT_ALLOWED)
        node = self._find(path)
        if node is None:
            return ReadResult(CoapCode.NOT_FOUND)
        if path.depth >= 3 and not self._allowed(path, "R"):
            return ReadResult(CoapCode.METHOD_NOT_ALLOWED)
        return ReadResult(CoapCode.CONTENT, self._readable_copy(path, node))

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        if path.depth < 2:
            return CoapCode.METHOD_NOT_ALLOWED
        instance = self._instance(path)
        if instance is None:
            return CoapCode.NOT_FOUND
        assert path.object_id is not None
        if path.is_instance:
            if not isinstance(node, ObjectInstance):
                return CoapCode.BAD_REQUEST
            for resource_id in node.resources:
                if not self._allowed(path.child(resource_id), "W"):
                    return CoapCode.METHOD_NOT_ALLOWED
            if replace:
                kept = {
                    r: res for r, res in instance.resources.items() if not self._allowed(path.child(r), "W")
                }
                instance.resources = kept
            instance.resources.update(copy.deepcopy(node.resources))
        elif path.is_resource:
            if not isinstance(node, SingleResource | MultipleResource) or node.id != path.resource_id:
                return CoapCode.BAD_REQUEST
            if not self._allowed(path, "W"):
                return CoapCode.METHOD_NOT_ALLOWED
            existing = instance.resources.get(node.id)
            if not replace and isinstance(existing, MultipleResource) and isinstance(node, MultipleResource):
                existing.instances.update(node.instances)
            else:
                instance.resources[node.id] = copy.deepcopy(node)
        else:
            if not isinstance(node, ResourceInstance):
                return CoapCode.BAD_REQUEST
            if not self._allowed(path.parent, "W"):
                return CoapCode.METHOD_NOT_ALLOWED
            assert path.resource_id is not None
            resource = instance.resources.get(path.resource_id)
            if not isinstance(resource, MultipleResource):
                resource = MultipleResource(path.resource_id, type=node.type)
                instance.resources[path.resource_id] = resource
            resource.instances[node.id] = node.value
        self._changed(path)
        return CoapCode.CHANGED

    async def execute(self, path: Path, arguments: str) -> CoapCode:
        if not path.is_resource or self._instance(path) is None:
            return CoapCode.NOT_FOUND if path.is_resource else CoapCode.METHOD_NOT_ALLOWED
        assert path.object_id is not None and path.resource_id is not None
        definition = self.model.get_resource(path.object_id, path.resource_id)
        callback = self._executables.get(path)
        if definition is not None and not definition.operations.executable:
            return CoapCode.METHOD_NOT_ALLOWED
        if callback is None:
            return CoapCode.CHANGED if definition is not None else CoapCode.NOT_FOUND
        outcome = callback(arguments)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return CoapCode.CHANGED if outcome is None else outcome

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode:
        if path.is_root or self._find(path) is None:
            return CoapCode.NOT_FOUND
        stored = self.attributes.setdefault(path, {})
        for name, value in attributes.items():
            if name not in NOTIFICATION_ATTRIBUTES:
                return CoapCode.BAD_REQUEST
            if value is None:
                stored.pop(name, None)
                continue
            try:
                float(value)
            except ValueError:
                return CoapCode.BAD_REQUEST
            stored[name] = value
        if not stored:
            del self.attributes[path]
        for watch in self._watches.values():
            if watch.path.starts_with(path):
                self._arm_pmax(watch)
        return CoapCode.CHANGED

    async def discover(self, path: Path) -> DiscoverResult:
        if path.is_root:
            links: list[tuple[Path, dict[str, str]]] = []
            for object_id, obj in sorted(self.objects.items()):
                if obj.instances:
                    links.extend((Path(object_id, i), {}) for i in sorted(obj.instances))
                else:
                    links.append((Path(object_id), {}))
            return DiscoverResult(CoapCode.CONTENT, links)
        node = self._find(path)
        if node is None:
            return DiscoverResult(CoapCode.NOT_FOUND)
        links = [(path, dict(self.attributes.get(path, {})))]
        if isinstance(node, LwM2MObject):
            for instance_id, instance in sorted(node.instances.items()):
                links.append(
                    (path.child(instance_id), dict(self.attributes.get(path.child(instance_id), {})))
                )
                links.extend(self._resource_links(path.child(instance_id), instance))
        elif isinstance(node, ObjectInstance):
            links.extend(self._resource_links(path, node))
        elif isinstance(node, MultipleResource):
            links[0][1]["dim"] = str(len(node.instances))
        return DiscoverResult(CoapCode.CONTENT, links)

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        if not path.is_object or not isinstance(node, ObjectInstance):
            return CoapCode.BAD_REQUEST, None
        assert path.object_id is not None
        if path.object_id not in self.objects and path.object_id not in self.model:
            return CoapCode.NOT_FOUND, None
        obj = self.add_object(path.object_id)
        if node.id in obj.instances:
            return CoapCode.BAD_REQUEST, None
        obj.instances[node.id] = copy.deepcopy(node)
        self._changed(Path(path.object_id, node.id))
        return CoapCode.CREATED, node.id

    async def delete(self, path: Path) -> CoapCode:
        if path.is_root or path.is_object:
            self._bootstrap_delete(path)
            return CoapCode.DELETED
        if not path.is_instance:
            return CoapCode.METHOD_NOT_ALLOWED
        obj = self.objects.get(path.object_id) if path.object_id is not None else None
        if obj is None or path.instance_id not in obj.instances:
            return CoapCode.NOT_FOUND
        del obj.instances[path.instance_id]
        self.attributes = {p: a for p, a in self.attributes.items() if not p.starts_with(path)}
        self._changed(path)
        return CoapCode.DELETED

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        result = await self.read(path)
        if result.code is not CoapCode.CONTENT:
            return result
        loop = asyncio.get_running_loop()
        watch = _Watch(observation_id, path, loop.time(), _last_value(result.node))
        self._watches[(observation_id, path)] = watch
        self._arm_pmax(watch)
        return result

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode:
        watch = self._watches.pop((observation_id, path), None)
        if watch is None:
            return CoapCode.NOT_FOUND
        watch.stop_timers()
        return CoapCode.DELETED

    # -- notification rules (Core 1.1.1 §7.3.1-7.3.2) ---------------------------------------------

    def effective_attributes(self, path: Path) -> dict[str, float]:
        """pmin / pmax inherited from instance and object levels; gt / lt / st from the resource."""
        merged: dict[str, float] = {}
        for depth in range(1, path.depth + 1):
            level = Path(*path.ids[:depth])
            for name, value in self.attributes.get(level, {}).items():
                if name in ("pmin", "pmax") or level == path:
                    merged[name] = float(value)
        return merged

    def _changed(self, path: Path) -> None:
        for watch in list(self._watches.values()):
            if watch.path.starts_with(path) or path.starts_with(watch.path):
                self._evaluate(watch)

    def _evaluate(self, watch: _Watch) -> None:
        node = self._find(watch.path)
        if node is None:
            return
        attrs = self.effective_attributes(watch.path)
        current = self._numeric(node)
        if current is not None and watch.last_value is not None and ({"gt", "lt", "st"} & attrs.keys()):
            if not _crosses(watch.last_value, current, attrs):
                return
        elif isinstance(node, SingleResource | ResourceInstance) and node.value == watch.last_value:
            return
        loop = asyncio.get_running_loop()
        pmin = attrs.get("pmin", 0.0)
        due = watch.last_sent + pmin
        if loop.time() >= due:
            self._send(watch)
        elif watch.pmin_timer is None:
            watch.pmin_timer = loop.call_at(due, self._send, watch)

    def _send(self, watch: _Watch) -> None:
        if self._watches.get((watch.id, watch.path)) is not watch:
            return
        node = self._find(watch.path)
        if node is None:
            return
        watch.stop_timers()
        watch.last_sent = asyncio.get_running_loop().time()
        watch.last_value = _last_value(node)
        if self._notifier is not None:
            self._notifier(watch.id, self._readable_copy(watch.path, node))
        self._arm_pmax(watch)

    def _arm_pmax(self, watch: _Watch) -> None:
        if watch.pmax_timer is not None:
            watch.pmax_timer.cancel()
            watch.pmax_timer = None
        pmax = self.effective_attributes(watch.path).get("pmax")
        if pmax is not None and pmax > 0:
            watch.pmax_timer = asyncio.get_running_loop().call_at(watch.last_sent + pmax, self._send, watch)

    # -- lookups ----------------------------------------------------------------------------------

    def _find(self, path: Path) -> Node | None:
        if path.object_id is None:
            return None
        obj = self.objects.get(path.object_id)
        if obj is None or path.instance_id is None:
            return obj
        instance = obj.instances.get(path.instance_id)
        if instance is None or path.resource_id is None:
            return instance
        resource = instance.resources.get(path.resource_id)
        if resource is None or path.resource_instance_id is None:
            return resource
        if not isinstance(resource, MultipleResource) or path.resource_instance_id not in resource.instances:
            return None
        return ResourceInstance(
            path.resource_instance_id, resource.instances[path.resource_instance_id], resource.type
        )

    def _instance(self, path: Path) -> ObjectInstance | None:
        node = self._find(Path(*path.ids[:2])) if path.depth >= 2 else None
        return node if isinstance(node, ObjectInstance) else None

    def _allowed(self, path: Path, operation: str) -> bool:
        if path.object_id == SECURITY_OBJECT or path.resource_id is None or path.object_id is None:
            return True
        definition = self.model.get_resource(path.object_id, path.resource_id)
        return definition is None or operation in definition.operations.value

    def _readable_copy(self, path: Path, node: Node) -> Node:
        """A copy without the resources a Read must not return (executables, write-only)."""
        node = copy.deepcopy(node)
        if isinstance(node, LwM2MObject):
            for instance_id, instance in node.instances.items():
                self._strip(Path(node.id, instance_id), instance)
        elif isinstance(node, ObjectInstance):
            self._strip(path, node)
        return node

    def _strip(self, path: Path, instance: ObjectInstance) -> None:
        instance.resources = {
            r: res for r, res in instance.resources.items() if self._allowed(path.child(r), "R")
        }

    def _resource_links(self, path: Path, instance: ObjectInstance) -> list[tuple[Path, dict[str, str]]]:
        links = []
        for resource_id, resource in sorted(instance.resources.items()):
            attrs = dict(self.attributes.get(path.child(resource_id), {}))
            if isinstance(resource, MultipleResource):
                attrs["dim"] = str(len(resource.instances))
            links.append((path.child(resource_id), attrs))
        return links

    def _resource(self, object_id: int, resource_id: int, value: Value | Mapping[int, Value]) -> Resource:
        definition = self.model.get_resource(object_id, resource_id)
        if isinstance(value, Mapping):
            first = next(iter(value.values()), "")
            rtype = definition.type if definition is not None else infer_type(first)
            return MultipleResource(resource_id, dict(value), rtype)
        rtype = definition.type if definition is not None else infer_type(value)
        return SingleResource(resource_id, value, rtype)

    def _bootstrap_delete(self, path: Path) -> None:
        """Delete every instance under `path`, keeping the bootstrap server's Security instance and
        the Device object (Core 1.1.1 §6.1.7.5)."""
        for object_id, obj in self.objects.items():
            if path.object_id is not None and object_id != path.object_id:
                continue
            if object_id == DEVICE_OBJECT:
                continue
            for instance_id in list(obj.instances):
                if object_id == SECURITY_OBJECT and _is_bootstrap_account(obj.instances[instance_id]):
                    continue
                del obj.instances[instance_id]

    @staticmethod
    def _numeric(node: Node | None) -> float | None:
        if isinstance(node, SingleResource | ResourceInstance):
            value = node.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        return None


def _last_value(node: Node | None) -> Value | None:
    """What the next change is compared with: the number (as float) or the plain value."""
    numeric = ObjectTreeHandler._numeric(node)
    if numeric is not None:
        return numeric
    return node.value if isinstance(node, SingleResource | ResourceInstance) else None


def _crosses(previous: Value, current: float, attrs: Mapping[str, float]) -> bool:
    """gt / lt crossing or a step of at least st since the last notified value (§7.3.2)."""
    if not isinstance(previous, int | float) or isinstance(previous, bool):
        return True
    for name in ("gt", "lt"):
        if name in attrs and (previous > attrs[name]) != (current > attrs[name]):
            return True
    return "st" in attrs and abs(current - previous) >= attrs["st"]


def _is_bootstrap_account(instance: ObjectInstance) -> bool:
    flag = instance.resources.get(1)
    return isinstance(flag, SingleResource) and flag.value is True
