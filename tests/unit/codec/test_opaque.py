"""Opaque codec (content format 42, Core 1.1.1 §7.3.3): raw bytes of one Opaque value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import opaque
from lwm2m.errors import CodecError, UnsupportedContentFormat
from lwm2m.model import ModelRegistry, ObjectDefinition, ResourceDefinition
from lwm2m.node import MultipleResource, ObjectInstance, ResourceInstance, SingleResource
from lwm2m.numbers import Operations, ResourceType
from lwm2m.path import Path

T = ResourceType
# Firmware Update (5) subset: 0 Package (Opaque, W), 1 Package URI (String), 2 Update (Executable).
# Object 9001: 0 a multiple Opaque resource.
MODEL = ModelRegistry(
    [
        ObjectDefinition(
            5,
            "Firmware Update",
            multiple=False,
            mandatory=False,
            resources={
                0: ResourceDefinition(0, "Package", Operations.W, False, True, T.OPAQUE),
                1: ResourceDefinition(1, "Package URI", Operations.RW, False, True, T.STRING),
                2: ResourceDefinition(2, "Update", Operations.E, False, True, T.NONE),
            },
        ),
        ObjectDefinition(
            9001,
            "Blobs",
            multiple=True,
            mandatory=False,
            resources={0: ResourceDefinition(0, "Blob", Operations.RW, True, False, T.OPAQUE)},
        ),
    ]
)


def test_firmware_package_is_carried_as_raw_bytes() -> None:
    package = bytes(range(256)) * 4
    node = opaque.decode(package, Path(5, 0, 0), MODEL)
    assert node == SingleResource(0, package, T.OPAQUE)
    assert opaque.encode(node, Path(5, 0, 0), MODEL) == package


def test_resource_instance_of_a_multiple_opaque_resource() -> None:
    node = opaque.decode(b"\x00\xff", Path(9001, 1, 0, 7), MODEL)
    assert node == ResourceInstance(7, b"\x00\xff", T.OPAQUE)
    assert opaque.encode(node, Path(9001, 1, 0, 7), MODEL) == b"\x00\xff"


def test_unknown_resource_decodes_as_bytes() -> None:
    assert opaque.decode(b"abc", Path(42, 0, 3), MODEL) == SingleResource(3, b"abc", T.OPAQUE)


def test_empty_payload_is_an_empty_value() -> None:
    assert opaque.decode(b"", Path(5, 0, 0), MODEL) == SingleResource(0, b"", T.OPAQUE)


def test_resource_of_another_declared_type_is_refused() -> None:
    with pytest.raises(UnsupportedContentFormat):
        opaque.decode(b"http://x", Path(5, 0, 1), MODEL)


@pytest.mark.parametrize("path", [Path(5), Path(5, 0), Path(9001, 0, 0)])
def test_objects_instances_and_multiple_resources_are_refused(path: Path) -> None:
    with pytest.raises(CodecError):
        opaque.decode(b"x", path, MODEL)


@pytest.mark.parametrize(
    "node",
    [
        SingleResource(1, "http://x", T.STRING),
        ObjectInstance(0, {0: SingleResource(0, b"x", T.OPAQUE)}),
        MultipleResource(0, {0: b"x"}, T.OPAQUE),
    ],
)
def test_nodes_that_are_not_one_bytes_value_cannot_be_encoded(node: object) -> None:
    with pytest.raises(CodecError):
        opaque.encode(node, Path(5, 0, 1), MODEL)  # type: ignore[arg-type]


@settings(max_examples=100)
@given(st.binary(max_size=512))
def test_any_bytes_round_trip(payload: bytes) -> None:
    node = opaque.decode(payload, Path(5, 0, 0), MODEL)
    assert opaque.encode(node, Path(5, 0, 0), MODEL) == payload
