"""The built-in object definitions shipped as package data."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from lwm2m.errors import ModelError
from lwm2m.model.builtin import builtin_registry, registry_with
from lwm2m.numbers import Operations, ResourceType

DDF_DIR = Path(__file__).resolve().parents[2] / "data" / "ddf"
OMA_IDS = [0, 1, 2, 3, 4, 5, 6, 7, 19]
COPIED_FROM_REGISTRY = {
    "0.xml": "version_history/0-1_1.xml",
    "1.xml": "version_history/1-1_1.xml",
    **{f"{i}.xml": f"{i}.xml" for i in (2, 3, 4, 5, 6, 7, 19, 3200, 3300, 3303, 10290)},
}
IPSO_SENSORS = [3301, 3303, 3304, 3316, 3323, 3328]
EXPECTED_IDS = {*OMA_IDS, 3200, 3201, 3202, 3203, 3300, 3301, 3303, 3304, 3311, 3316, 3323, 3328, 10290}


def test_builtin_registry_holds_the_oma_and_ipso_objects() -> None:
    assert {definition.id for definition in builtin_registry()} == EXPECTED_IDS


def test_security_and_server_objects_are_the_lwm2m_1_1_versions() -> None:
    registry = builtin_registry()
    for object_id in (0, 1):
        definition = registry.get_object(object_id)
        assert definition is not None
        assert (definition.version, definition.lwm2m_version) == ("1.1", "1.1")


def test_no_builtin_object_declares_lwm2m_1_2() -> None:
    assert all(definition.lwm2m_version in ("1.0", "1.1") for definition in builtin_registry())


@pytest.mark.parametrize(("packaged", "source"), sorted(COPIED_FROM_REGISTRY.items()))
def test_registry_objects_are_unmodified_copies(packaged: str, source: str) -> None:
    data = resources.files("lwm2m.model").joinpath("builtin", packaged).read_bytes()
    assert data == (DDF_DIR / source).read_bytes()


@pytest.mark.parametrize("object_id", IPSO_SENSORS)
def test_ipso_sensors_report_a_float_value_with_units(object_id: int) -> None:
    registry = builtin_registry()
    value = registry.get_resource(object_id, 5700)
    units = registry.get_resource(object_id, 5701)
    reset = registry.get_resource(object_id, 5605)
    assert value is not None and value.type is ResourceType.FLOAT and value.mandatory
    assert value.operations is Operations.R
    assert units is not None and units.type is ResourceType.STRING
    assert reset is not None and reset.operations is Operations.E and reset.type is ResourceType.NONE


@pytest.mark.parametrize(
    ("object_id", "resource_id", "name", "operations", "rtype", "mandatory"),
    [
        (3201, 5550, "Digital Output State", Operations.RW, ResourceType.BOOLEAN, True),
        (3201, 5551, "Digital Output Polarity", Operations.RW, ResourceType.BOOLEAN, False),
        (3202, 5600, "Analog Input Current Value", Operations.R, ResourceType.FLOAT, True),
        (3202, 5751, "Sensor Type", Operations.R, ResourceType.STRING, False),
        (3203, 5650, "Analog Output Current Value", Operations.RW, ResourceType.FLOAT, True),
        (3311, 5850, "On/Off", Operations.RW, ResourceType.BOOLEAN, True),
        (3311, 5851, "Dimmer", Operations.RW, ResourceType.INTEGER, False),
        (3311, 5706, "Colour", Operations.RW, ResourceType.STRING, False),
        (3316, 5821, "Current Calibration", Operations.RW, ResourceType.FLOAT, False),
        (3328, 5750, "Application Type", Operations.RW, ResourceType.STRING, False),
    ],
)
def test_written_ipso_resources_follow_the_reusable_resource_definitions(
    object_id: int, resource_id: int, name: str, operations: Operations, rtype: ResourceType, mandatory: bool
) -> None:
    resource = builtin_registry().get_resource(object_id, resource_id)
    assert resource is not None
    assert (resource.name, resource.operations, resource.type, resource.mandatory) == (
        name,
        operations,
        rtype,
        mandatory,
    )
    assert not resource.multiple


def test_written_ipso_objects_are_optional_multiple_instance_objects() -> None:
    registry = builtin_registry()
    for object_id in (3201, 3202, 3203, 3301, 3304, 3311, 3316, 3323, 3328):
        definition = registry.get_object(object_id)
        assert definition is not None and definition.multiple and not definition.mandatory
        assert definition.urn == f"urn:oma:lwm2m:ext:{object_id}"


def test_each_call_returns_an_independent_registry() -> None:
    first = builtin_registry()
    device = first.get_object(3)
    assert device is not None
    first.add(replace(device, name="Custom Device"))
    assert builtin_registry().get_object(3).name == "Device"  # type: ignore[union-attr]
    assert first.get_object(3).name == "Custom Device"  # type: ignore[union-attr]


CUSTOM_DEVICE = """<LWM2M><Object><Name>Vendor Device</Name><ObjectID>3</ObjectID>
<MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory><Resources/></Object>
<Object><Name>Vendor Meter</Name><ObjectID>26241</ObjectID>
<MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory><Resources/></Object></LWM2M>"""


def test_registry_with_a_directory_adds_and_overrides_definitions(tmp_path: Path) -> None:
    (tmp_path / "vendor.xml").write_text(CUSTOM_DEVICE)
    registry = registry_with(tmp_path)
    assert registry.get_object(3).name == "Vendor Device"  # type: ignore[union-attr]
    assert registry.get_object(26241).name == "Vendor Meter"  # type: ignore[union-attr]
    assert 3303 in registry
    assert builtin_registry().get_object(3).name == "Device"  # type: ignore[union-attr]


def test_registry_with_none_is_the_builtins_and_a_missing_directory_fails(tmp_path: Path) -> None:
    assert {d.id for d in registry_with(None)} == EXPECTED_IDS
    with pytest.raises(ModelError):
        registry_with(tmp_path / "absent")
