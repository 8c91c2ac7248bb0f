"""Opaque codec (content format 42, application/octet-stream): OMA TS LwM2M Core 1.1.1 §7.3.3.

The payload is the raw bytes of one Opaque value: a single-instance resource or one resource
instance (for example a firmware package written to /5/0/0).

Design choices: decoding gives bytes for a resource the model declares Opaque (or none) and for a
resource the model does not know; a resource of any other declared type cannot be carried in this
format, nor a multiple resource at `/o/i/r`. Encoding takes any node whose value is bytes.
"""

from __future__ import annotations

from lwm2m.errors import UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import Node, ResourceInstance, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path

_OPAQUE_TYPES = (ResourceType.OPAQUE, ResourceType.NONE)


def encode(node: Node, path: Path, model: ModelRegistry) -> bytes:
    """The raw bytes of a SingleResource or ResourceInstance holding bytes."""
    del path, model
    if not isinstance(node, SingleResource | ResourceInstance):
        raise UnsupportedContentFormat(ContentFormat.OPAQUE, f"cannot carry a {type(node).__name__}")
    if not isinstance(node.value, bytes | bytearray | memoryview):
        raise UnsupportedContentFormat(
            ContentFormat.OPAQUE, f"value {type(node.value).__name__} ({node.type.value}) is not bytes"
        )
    return bytes(node.value)


def decode(payload: bytes, path: Path, model: ModelRegistry) -> Node:
    """The payload as the Opaque value of the resource or resource instance at `path`."""
    if path.depth not in (3, 4):
        raise UnsupportedContentFormat(ContentFormat.OPAQUE, f"cannot carry {path}")
    object_id, resource_id = path.object_id, path.resource_id
    assert object_id is not None and resource_id is not None
    definition = model.get_resource(object_id, resource_id)
    if definition is not None:
        if definition.type not in _OPAQUE_TYPES:
            raise UnsupportedContentFormat(ContentFormat.OPAQUE, f"{path} is a {definition.type.value}")
        if definition.multiple and path.depth == 3:
            raise UnsupportedContentFormat(ContentFormat.OPAQUE, f"{path} is a multiple resource")
    rtype = definition.type if definition is not None else ResourceType.OPAQUE
    value = bytes(payload)
    if path.depth == 3:
        return SingleResource(resource_id, value, rtype)
    assert path.resource_instance_id is not None
    return ResourceInstance(path.resource_instance_id, value, rtype)
