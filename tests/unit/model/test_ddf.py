"""The OMA DDF XML loader, against every registry file in tests/data/ddf (and its version history)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwm2m.errors import ModelError
from lwm2m.model import ObjectDefinition
from lwm2m.model.ddf import load_ddf, load_ddf_directory, load_ddf_file
from lwm2m.numbers import Operations, ResourceType

# The registry files live in the repository (tests/data/ddf); a missing folder must fail, not skip.
DDF_DIR = Path(__file__).resolve().parents[2] / "data" / "ddf"
HISTORY_DIR = DDF_DIR / "version_history"
DDF_FILES = sorted(DDF_DIR.glob("*.xml")) + sorted(HISTORY_DIR.glob("*.xml"))


def test_ddf_folders_in_the_repository_hold_the_registry_files() -> None:
    repository = Path(__file__).resolve().parents[3]
    assert DDF_DIR.resolve().is_relative_to(repository)
    assert len(sorted(DDF_DIR.glob("*.xml"))) >= 13
    assert len(sorted(HISTORY_DIR.glob("*.xml"))) >= 28


@pytest.mark.parametrize("file", DDF_FILES or [DDF_DIR / "missing.xml"], ids=lambda p: p.name)
def test_every_registry_file_loads_with_consistent_definitions(file: Path) -> None:
    [definition] = load_ddf_file(file)
    assert definition.id == int(file.stem.split("-")[0])
    assert definition.name
    assert definition.resources
    for resource in definition.resources.values():
        assert resource.name
        assert (resource.type is ResourceType.NONE) == (resource.operations is Operations.E)


def load(name: str) -> ObjectDefinition:
    [definition] = load_ddf_file(DDF_DIR / name)
    return definition


def test_device_manufacturer_is_a_readable_single_optional_string() -> None:
    manufacturer = load("3.xml").resources[0]
    assert manufacturer.name == "Manufacturer"
    assert manufacturer.operations is Operations.R
    assert manufacturer.type is ResourceType.STRING
    assert not manufacturer.multiple
    assert not manufacturer.mandatory


def test_device_object_facts() -> None:
    device = load("3.xml")
    assert (device.name, device.version, device.lwm2m_version) == ("Device", "1.2", "1.1")
    assert device.urn == "urn:oma:lwm2m:oma:3:1.2"
    assert not device.multiple and device.mandatory
    assert device.description.startswith("This LwM2M Object provides a range of device related information")
    voltage = device.resources[7]
    assert voltage.multiple and voltage.type is ResourceType.INTEGER
    reboot = device.resources[4]
    assert reboot.operations is Operations.E and reboot.type is ResourceType.NONE and reboot.mandatory
    assert device.resources[13].type is ResourceType.TIME
    assert device.resources[13].operations is Operations.RW
    assert device.resources[22].type is ResourceType.OBJLNK


def test_binary_app_data_container_data_is_multiple_opaque() -> None:
    data = load("19.xml").resources[0]
    assert data.multiple and data.type is ResourceType.OPAQUE and data.mandatory


def test_security_object_resources_have_no_operations_and_unsigned_types() -> None:
    security = load("0.xml")
    assert security.multiple and security.mandatory
    assert security.resources[0].operations is Operations.NONE
    assert security.resources[13].type is ResourceType.UNSIGNED_INTEGER


def test_ipso_temperature_units_and_float_sensor_value() -> None:
    temperature = load("3303.xml")
    assert temperature.resources[5700].type is ResourceType.FLOAT
    assert temperature.resources[5701].type is ResourceType.STRING
    assert temperature.multiple and not temperature.mandatory


def test_missing_versions_default_to_1_0() -> None:
    [security_1_0] = load_ddf_file(HISTORY_DIR / "0-1_0.xml")
    assert (security_1_0.version, security_1_0.lwm2m_version) == ("1.0", "1.0")
    [connectivity_1_1] = load_ddf_file(HISTORY_DIR / "4-1_1.xml")
    assert (connectivity_1_1.version, connectivity_1_1.lwm2m_version) == ("1.1", "1.0")


def test_directory_loads_every_file_in_name_order() -> None:
    definitions = load_ddf_directory(DDF_DIR)
    assert [d.id for d in definitions] == [int(p.stem) for p in sorted(DDF_DIR.glob("*.xml"))]
    assert len(load_ddf_directory(HISTORY_DIR)) == len(sorted(HISTORY_DIR.glob("*.xml")))


MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<LWM2M{ns}>
  <Object ObjectType="MODefinition">
    <Name>Test</Name><Description1>A test object</Description1>
    <ObjectID>40000</ObjectID><ObjectURN>urn:oma:lwm2m:x:40000</ObjectURN>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="1"><Name>Level</Name><Operations>{ops}</Operations>
        <MultipleInstances>{multiple}</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>{type}</Type><RangeEnumeration>0..100</RangeEnumeration><Units>%</Units>
        <Description>How full</Description></Item>
    </Resources>
  </Object>
</LWM2M>"""


def minimal(ns: str = "", ops: str = "RW", multiple: str = "Single", type: str = "Unsigned Integer") -> str:
    return MINIMAL.format(ns=ns, ops=ops, multiple=multiple, type=type)


def test_minimal_document_loads_from_text_and_bytes() -> None:
    [from_text] = load_ddf(minimal())
    [from_bytes] = load_ddf(minimal().encode())
    assert from_text == from_bytes
    level = from_text.resources[1]
    assert (level.range_enumeration, level.units, level.description) == ("0..100", "%", "How full")
    assert level.type is ResourceType.UNSIGNED_INTEGER and level.operations is Operations.RW
    assert (from_text.version, from_text.lwm2m_version, from_text.urn) == (
        "1.0",
        "1.0",
        "urn:oma:lwm2m:x:40000",
    )


def test_namespaced_document_loads() -> None:
    [definition] = load_ddf(minimal(ns=' xmlns="urn:example:ddf"'))
    assert definition.id == 40000 and 1 in definition.resources


@pytest.mark.parametrize(
    "document",
    [
        minimal(type="Decimal"),
        minimal(ops="RWX"),
        minimal(multiple="Many"),
        minimal().replace("<ObjectID>40000</ObjectID>", "<ObjectID>abc</ObjectID>"),
        minimal().replace("<ObjectID>40000</ObjectID>", "<ObjectID>70000</ObjectID>"),
        minimal().replace('<Item ID="1">', "<Item>"),
        minimal().replace("</Object>", ""),
        "<LWM2M></LWM2M>",
        '<?xml version="1.0"?><!DOCTYPE LWM2M [<!ENTITY x "boom">]><LWM2M>&x;</LWM2M>',
        '<!DOCTYPE LWM2M SYSTEM "http://example.invalid/lwm2m.dtd"><LWM2M/>',
    ],
)
def test_invalid_documents_raise_model_error(document: str) -> None:
    with pytest.raises(ModelError):
        load_ddf(document)


def test_duplicate_resource_ids_raise_model_error() -> None:
    item = minimal().split("<Resources>")[1].split("</Resources>")[0]
    with pytest.raises(ModelError, match="defined twice"):
        load_ddf(minimal().replace(item, item + item))


def test_malformed_file_in_directory_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(minimal())
    (tmp_path / "b.xml").write_text("<LWM2M><Object>")
    (tmp_path / "notes.txt").write_text("not a definition")
    with pytest.raises(ModelError, match=r"b\.xml"):
        load_ddf_directory(tmp_path)
    (tmp_path / "b.xml").unlink()
    assert [d.id for d in load_ddf_directory(tmp_path)] == [40000]


def test_missing_file_or_directory_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        load_ddf_file(tmp_path / "absent.xml")
    with pytest.raises(ModelError):
        load_ddf_directory(tmp_path / "absent")
