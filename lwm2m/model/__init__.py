"""The LwM2M object model: object and resource definitions, and a registry to look them up.

Definitions come from OMA DDF XML (see `lwm2m.model.ddf`); the built-in set ships as package data
under `lwm2m/model/builtin/`. Unknown objects and resources still work: `resource_type` answers
OPAQUE for them, so values pass through as bytes (or as text where a codec carries text).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lwm2m.numbers import Operations, ResourceType


@dataclass(frozen=True, slots=True)
class ResourceDefinition:
    id: int
    name: str
    operations: Operations
    multiple: bool
    mandatory: bool
    type: ResourceType
    range_enumeration: str = ""
    units: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class ObjectDefinition:
    id: int
    name: str
    multiple: bool
    mandatory: bool
    version: str = "1.0"
    lwm2m_version: str = "1.0"
    urn: str = ""
    description: str = ""
    resources: dict[int, ResourceDefinition] = field(default_factory=dict)


class ModelRegistry:
    """Object definitions by id. Later additions replace earlier ones with the same id."""

    def __init__(self, objects: Iterable[ObjectDefinition] = ()) -> None:
        self._objects: dict[int, ObjectDefinition] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: ObjectDefinition) -> None:
        self._objects[obj.id] = obj

    def get_object(self, object_id: int) -> ObjectDefinition | None:
        return self._objects.get(object_id)

    def get_resource(self, object_id: int, resource_id: int) -> ResourceDefinition | None:
        obj = self._objects.get(object_id)
        return obj.resources.get(resource_id) if obj else None

    def resource_type(self, object_id: int, resource_id: int) -> ResourceType:
        """The declared type, or OPAQUE for an unknown object or resource."""
        res = self.get_resource(object_id, resource_id)
        return res.type if res else ResourceType.OPAQUE

    def is_multiple(self, object_id: int, resource_id: int) -> bool | None:
        """Whether a resource is multiple-instance; None when the model does not know it."""
        res = self.get_resource(object_id, resource_id)
        return res.multiple if res else None

    def __iter__(self) -> Iterator[ObjectDefinition]:
        return iter(sorted(self._objects.values(), key=lambda o: o.id))

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects
