"""A test object model with one resource of every data type, single and multiple.

Object 9000: resource i+1 is a single resource of TYPES[i], resource i+101 a multiple one.
"""

from __future__ import annotations

from lwm2m.model import ModelRegistry, ObjectDefinition, ResourceDefinition
from lwm2m.numbers import Operations, ResourceType
from lwm2m.path import Path

T = ResourceType
TYPES = [T.STRING, T.INTEGER, T.UNSIGNED_INTEGER, T.FLOAT, T.BOOLEAN, T.OPAQUE, T.TIME, T.OBJLNK, T.CORELNK]
MODEL = ModelRegistry(
    [
        ObjectDefinition(
            9000,
            "Typed",
            multiple=True,
            mandatory=False,
            resources={
                **{
                    i + 1: ResourceDefinition(i + 1, t.value, Operations.RW, False, False, t)
                    for i, t in enumerate(TYPES)
                },
                **{
                    i + 101: ResourceDefinition(i + 101, t.value, Operations.RW, True, False, t)
                    for i, t in enumerate(TYPES)
                },
            },
        )
    ]
)


def single(rtype: ResourceType) -> Path:
    return Path(9000, 0, TYPES.index(rtype) + 1)


def multiple(rtype: ResourceType, ri: int = 0) -> Path:
    return Path(9000, 0, TYPES.index(rtype) + 101, ri)
