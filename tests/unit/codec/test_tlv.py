"""TLV codec: the specification's byte examples, structure rules, and property round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import tlv
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry, ObjectDefinition, ResourceDefinition
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ResourceInstance,
    SingleResource,
)
from lwm2m.numbers import Operations, ResourceType
from lwm2m.path import Path

T = ResourceType


def _obj(object_id: int, name: str, multiple: bool, resources: dict[int, tuple[T, bool]]) -> ObjectDefinition:
    return ObjectDefinition(
        id=object_id,
        name=name,
        multiple=multiple,
        mandatory=False,
        resources={
            rid: ResourceDefinition(rid, f"r{rid}", Operations.RW, multi, False, rtype)
            for rid, (rtype, multi) in resources.items()
        },
    )


SERVER = _obj(1, "LwM2M Server", True, {0: (T.INTEGER, False), 1: (T.INTEGER, False),
                                         6: (T.BOOLEAN, False), 7: (T.STRING, False)})  # fmt: skip
ACCESS_CONTROL = _obj(2, "LwM2M Access Control", True, {0: (T.INTEGER, False), 1: (T.INTEGER, False),
                                                         2: (T.INTEGER, True),
                                                         3: (T.INTEGER, False)})  # fmt: skip
DEVICE = _obj(3, "Device", False, {
    0: (T.STRING, False), 1: (T.STRING, False), 2: (T.STRING, False), 3: (T.STRING, False),
    4: (T.NONE, False), 6: (T.INTEGER, True), 7: (T.INTEGER, True), 8: (T.INTEGER, True),
    9: (T.INTEGER, False), 10: (T.INTEGER, False), 11: (T.INTEGER, True), 13: (T.TIME, False),
    14: (T.STRING, False), 16: (T.STRING, False),
})  # fmt: skip
# The hypothetical objects 66 and 67 of the Objlnk example (Core 1.1.1 §7.4.3.3 / 1.0.2 §6.4.3.3).
OBJ66 = _obj(66, "Test 66", True, {0: (T.STRING, False), 1: (T.STRING, False), 2: (T.OBJLNK, False)})
# One resource of every type, single (id = 1..) and multiple (id = 101..).
ALL_TYPES = [
    T.STRING,
    T.INTEGER,
    T.UNSIGNED_INTEGER,
    T.FLOAT,
    T.BOOLEAN,
    T.OPAQUE,
    T.TIME,
    T.OBJLNK,
    T.CORELNK,
]
TYPED = _obj(
    9000,
    "Typed",
    True,
    {i + 1: (t, False) for i, t in enumerate(ALL_TYPES)}
    | {i + 101: (t, True) for i, t in enumerate(ALL_TYPES)},
)
MODEL = ModelRegistry([SERVER, ACCESS_CONTROL, DEVICE, OBJ66, TYPED])

# Core 1.1.1 §7.4.3.1 (1.0.2 §6.4.3.1) "Single Object Instance Request Example": Read /3/0.
DEVICE_TLV = bytes.fromhex(
    "C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65"  # 0 Manufacturer
    "C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74"  # 1 Model Number
    "C8 02 09 33 34 35 30 30 30 31 32 33"  # 2 Serial Number
    "C3 03 31 2E 30"  # 3 Firmware Version
    "86 06 41 00 01 41 01 05"  # 6 Available Power Sources [1, 5]
    "88 07 08 42 00 0E D8 42 01 13 88"  # 7 Power Source Voltage [3800, 5000]
    "87 08 41 00 7D 42 01 03 84"  # 8 Power Source Current [125, 900]
    "C1 09 64"  # 9 Battery Level 100
    "C1 0A 0F"  # 10 Memory Free 15
    "83 0B 41 00 00"  # 11 Error Code [0]
    "C4 0D 51 82 42 8F"  # 13 Current Time
    "C6 0E 2B 30 32 3A 30 30"  # 14 UTC Offset "+02:00"
    "C1 10 55"  # 16 Binding Mode "U"
)


def _device_instance() -> ObjectInstance:
    return ObjectInstance(
        0,
        {
            0: SingleResource(0, "Open Mobile Alliance", T.STRING),
            1: SingleResource(1, "Lightweight M2M Client", T.STRING),
            2: SingleResource(2, "345000123", T.STRING),
            3: SingleResource(3, "1.0", T.STRING),
            6: MultipleResource(6, {0: 1, 1: 5}, T.INTEGER),
            7: MultipleResource(7, {0: 3800, 1: 5000}, T.INTEGER),
            8: MultipleResource(8, {0: 125, 1: 900}, T.INTEGER),
            9: SingleResource(9, 100, T.INTEGER),
            10: SingleResource(10, 15, T.INTEGER),
            11: MultipleResource(11, {0: 0}, T.INTEGER),
            13: SingleResource(13, datetime.fromtimestamp(0x5182428F, tz=UTC), T.TIME),
            14: SingleResource(14, "+02:00", T.STRING),
            16: SingleResource(16, "U", T.STRING),
        },
    )


# Core 1.1.1 §7.4.3.2 (1.0.2 §6.4.3.2) "Multiple Object Instance Request Example": Read /2.
ACL_TLV = bytes.fromhex(
    "08 00 0E  C1 00 01  C1 01 00  83 02 41 7F 07  C1 03 7F"
    "08 02 12  C1 00 03  C1 01 00  87 02 41 7F 07 61 01 36 01  C1 03 7F"
)
# Core 1.1.1 §7.4.3.2 (1.0.2 §6.4.3.2) Read /1 of a Server object with one instance.
SERVER_TLV = bytes.fromhex("08 00 0F  C1 00 01  C4 01 00 01 51 80  C1 06 01  C1 07 55")
# Core 1.1.1 §7.4.3.3 (1.0.2 §6.4.3.3) "Example of Request on an Object Instance containing an
# Object Link Resource": Read /66.
OBJ66_TLV = bytes.fromhex(
    "08 00 26"
    "C8 00 0B 6D 79 53 65 72 76 69 63 65 20 31"  # "myService 1"
    "C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 34"  # "Internet.15.234"
    "C4 02 00 43 00 00"  # 67:0
    "08 01 26"
    "C8 00 0B 6D 79 53 65 72 76 69 63 65 20 32"  # "myService 2"
    "C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 35"  # "Internet.15.235"
    "C4 02 FF FF FF FF"  # 65535:65535, the null link
)


def test_fixture_vectors_have_the_lengths_the_spec_prints() -> None:
    assert len(ACL_TLV) == 3 + 0x0E + 3 + 0x12
    assert len(SERVER_TLV) == 3 + 0x0F
    assert len(OBJ66_TLV) == 2 * (3 + 0x26)


def test_device_object_instance_decodes_to_typed_resources() -> None:
    node = tlv.decode(DEVICE_TLV, Path(3, 0), MODEL)
    assert node == _device_instance()


def test_device_object_instance_encodes_to_the_spec_bytes() -> None:
    assert tlv.encode(_device_instance(), Path(3, 0), MODEL) == DEVICE_TLV


def test_single_instance_object_read_as_bare_resources_is_instance_zero() -> None:
    node = tlv.decode(DEVICE_TLV, Path(3), MODEL)
    assert node == LwM2MObject(3, {0: _device_instance()})


def test_object_instance_wrapped_in_its_instance_tlv_is_accepted_at_instance_path() -> None:
    wrapped = tlv.build_tlv(tlv.TlvKind.OBJECT_INSTANCE, 0, DEVICE_TLV)
    assert tlv.decode(wrapped, Path(3, 0), MODEL) == _device_instance()


def test_wrapped_instance_with_another_id_than_the_path_is_rejected() -> None:
    wrapped = tlv.build_tlv(tlv.TlvKind.OBJECT_INSTANCE, 1, DEVICE_TLV)
    with pytest.raises(CodecError):
        tlv.decode(wrapped, Path(3, 0), MODEL)


def test_object_instance_encoded_at_object_path_is_wrapped() -> None:
    encoded = tlv.encode(_device_instance(), Path(3), MODEL)
    assert encoded[:3] == bytes([0x08, 0x00, len(DEVICE_TLV)])
    assert tlv.parse_tlvs(encoded) == [tlv.Tlv(tlv.TlvKind.OBJECT_INSTANCE, 0, DEVICE_TLV)]


def _acl_object() -> LwM2MObject:
    return LwM2MObject(
        2,
        {
            0: ObjectInstance(
                0,
                {
                    0: SingleResource(0, 1, T.INTEGER),
                    1: SingleResource(1, 0, T.INTEGER),
                    2: MultipleResource(2, {127: 7}, T.INTEGER),
                    3: SingleResource(3, 127, T.INTEGER),
                },
            ),
            2: ObjectInstance(
                2,
                {
                    0: SingleResource(0, 3, T.INTEGER),
                    1: SingleResource(1, 0, T.INTEGER),
                    2: MultipleResource(2, {127: 7, 310: 1}, T.INTEGER),
                    3: SingleResource(3, 127, T.INTEGER),
                },
            ),
        },
    )


def test_access_control_object_with_two_instances_decodes() -> None:
    assert tlv.decode(ACL_TLV, Path(2), MODEL) == _acl_object()


def test_access_control_object_encodes_to_the_spec_bytes_with_16_bit_instance_id() -> None:
    assert tlv.encode(_acl_object(), Path(2), MODEL) == ACL_TLV


def test_server_object_with_one_instance_round_trips_the_spec_bytes() -> None:
    expected = LwM2MObject(
        1,
        {
            0: ObjectInstance(
                0,
                {
                    0: SingleResource(0, 1, T.INTEGER),
                    1: SingleResource(1, 86400, T.INTEGER),
                    6: SingleResource(6, True, T.BOOLEAN),
                    7: SingleResource(7, "U", T.STRING),
                },
            )
        },
    )
    assert tlv.decode(SERVER_TLV, Path(1), MODEL) == expected
    assert tlv.encode(expected, Path(1), MODEL) == SERVER_TLV


def test_objlnk_example_decodes_links_including_the_null_link() -> None:
    node = tlv.decode(OBJ66_TLV, Path(66), MODEL)
    assert isinstance(node, LwM2MObject)
    assert node.instances[0].resources[0] == SingleResource(0, "myService 1", T.STRING)
    assert node.instances[0].resources[1] == SingleResource(1, "Internet.15.234", T.STRING)
    assert node.instances[0].resources[2] == SingleResource(2, ObjectLink(67, 0), T.OBJLNK)
    assert node.instances[1].resources[2] == SingleResource(2, ObjectLink(0xFFFF, 0xFFFF), T.OBJLNK)
    assert tlv.encode(node, Path(66), MODEL) == OBJ66_TLV


def test_multiple_resource_read_at_resource_path() -> None:
    payload = bytes.fromhex("88 07 08 42 00 0E D8 42 01 13 88")
    assert tlv.decode(payload, Path(3, 0, 7), MODEL) == MultipleResource(7, {0: 3800, 1: 5000}, T.INTEGER)
    assert tlv.encode(MultipleResource(7, {0: 3800, 1: 5000}, T.INTEGER), Path(3, 0, 7), MODEL) == payload


def test_multiple_resource_written_as_bare_resource_instances_is_accepted() -> None:
    payload = bytes.fromhex("42 00 0E D8 42 01 13 88")
    assert tlv.decode(payload, Path(3, 0, 7), MODEL) == MultipleResource(7, {0: 3800, 1: 5000}, T.INTEGER)


def test_resource_instance_path_decodes_one_instance() -> None:
    payload = bytes.fromhex("42011388")
    assert tlv.decode(payload, Path(3, 0, 7, 1), MODEL) == ResourceInstance(1, 5000, T.INTEGER)
    assert tlv.encode(ResourceInstance(1, 5000, T.INTEGER), Path(3, 0, 7, 1), MODEL) == payload


def test_single_resource_at_resource_path() -> None:
    assert tlv.decode(bytes.fromhex("C10964"), Path(3, 0, 9), MODEL) == SingleResource(9, 100, T.INTEGER)


def test_unknown_resource_decodes_as_opaque_bytes() -> None:
    assert tlv.decode(bytes.fromhex("C1 63 41"), Path(3, 0, 99), MODEL) == SingleResource(99, b"A", T.OPAQUE)


def test_unknown_object_uses_the_tlv_structure_for_multiplicity() -> None:
    node = tlv.decode(bytes.fromhex("86 06 41 00 01 41 01 02  C1 07 03"), Path(500, 0), MODEL)
    assert node == ObjectInstance(
        0,
        {6: MultipleResource(6, {0: b"\x01", 1: b"\x02"}, T.OPAQUE), 7: SingleResource(7, b"\x03", T.OPAQUE)},
    )


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        ("C109", Path(3, 0, 9), "value truncated"),
        ("C8", Path(3, 0), "header truncated"),
        ("E8", Path(3, 0), "16-bit id truncated"),
        ("D8000100", Path(3, 0), "16-bit length runs past the end"),
        ("C3 09 00 00 64", Path(3, 0, 9), "3-byte integer"),
        ("C10602", Path(1, 0), "boolean 2"),
        ("C30D000001", Path(3, 0), "3-byte time"),
        ("C3020000FF", Path(66, 0), "3-byte objlnk"),
        ("C102FF", Path(3, 0), "invalid UTF-8 string"),
        ("C1 06 01", Path(3, 0), "single TLV for multiple resource"),
        ("83 09 41 00 64", Path(3, 0), "multiple TLV for single resource"),
        ("C10A0F", Path(3, 0, 9), "other resource id than the path"),
        ("41 00 01", Path(3, 0, 7, 1), "other instance id than the path"),
        ("C10964C10964", Path(3, 0), "duplicate resource"),
        ("08 00 00 C1 09 64", Path(3), "object instances mixed with resources"),
        ("C10964", Path(), "root path"),
        ("C10964", Path(3, 0, 9, 0), "resource TLV at resource instance path"),
        ("", Path(3, 0, 9), "empty payload for a resource"),
    ],
)
def test_malformed_tlv_raises_codec_error(payload: str, path: Path, reason: str) -> None:
    with pytest.raises(CodecError):
        tlv.decode(bytes.fromhex(payload), path, MODEL)


def test_empty_payload_at_instance_path_is_an_empty_instance() -> None:
    assert tlv.decode(b"", Path(3, 0), MODEL) == ObjectInstance(0)
    assert tlv.decode(b"", Path(2), MODEL) == LwM2MObject(2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "00"),
        (127, "7F"),
        (128, "0080"),
        (-128, "80"),
        (-129, "FF7F"),
        (32767, "7FFF"),
        (32768, "00008000"),
        (2**31, "0000000080000000"),
        (-(2**63), "8000000000000000"),
    ],
)
def test_integers_use_the_smallest_twos_complement_size(value: int, expected: str) -> None:
    assert tlv.encode_value(value, T.INTEGER) == bytes.fromhex(expected)


def test_unsigned_integers_use_the_smallest_unsigned_size() -> None:
    assert tlv.encode_value(255, T.UNSIGNED_INTEGER) == b"\xff"
    assert tlv.encode_value(2**64 - 1, T.UNSIGNED_INTEGER) == b"\xff" * 8
    assert tlv.decode_value(b"\xff\xff", T.UNSIGNED_INTEGER) == 65535


def test_floats_use_four_bytes_when_exact_else_eight() -> None:
    assert tlv.encode_value(1.5, T.FLOAT) == bytes.fromhex("3FC00000")
    assert tlv.encode_value(0.1, T.FLOAT) == bytes.fromhex("3FB999999999999A")
    assert tlv.encode_value(1e300, T.FLOAT) == bytes.fromhex("7E37E43C8800759C")


def test_long_values_use_16_and_24_bit_length_fields() -> None:
    assert tlv.build_tlv(tlv.TlvKind.RESOURCE_VALUE, 0, b"x" * 300)[:4] == bytes([0xD0, 0x00, 0x01, 0x2C])
    big = tlv.build_tlv(tlv.TlvKind.RESOURCE_VALUE, 0, b"x" * 70000)
    assert big[:5] == bytes([0xD8, 0x00, 0x01, 0x11, 0x70])
    assert tlv.parse_tlvs(big) == [tlv.Tlv(tlv.TlvKind.RESOURCE_VALUE, 0, b"x" * 70000)]


@pytest.mark.parametrize(
    ("value", "rtype"),
    [
        (2**63, T.INTEGER),
        (-1, T.UNSIGNED_INTEGER),
        (2**64, T.UNSIGNED_INTEGER),
        ("1", T.INTEGER),
        (1, T.STRING),
        ("x", T.OPAQUE),
        ("1:2", T.OBJLNK),
        (ObjectLink(70000, 0), T.OBJLNK),
        ("yes", T.BOOLEAN),
        ("1.0", T.FLOAT),
    ],
)
def test_values_that_do_not_fit_their_type_cannot_be_encoded(value: object, rtype: ResourceType) -> None:
    with pytest.raises(CodecError):
        tlv.encode(SingleResource(1, value, rtype), Path(9000, 0, 1), MODEL)  # type: ignore[arg-type]


def test_executable_resource_of_type_none_encodes_empty() -> None:
    assert tlv.encode(SingleResource(4, b"", T.NONE), Path(3, 0, 4), MODEL) == bytes.fromhex("C0 04")


def test_time_decodes_as_timezone_aware_utc() -> None:
    value = tlv.decode_value(bytes.fromhex("5182428F"), T.TIME)
    assert value == datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC)
    assert isinstance(value, datetime) and value.utcoffset() is not None


# ---------------------------------------------------------------------------------------- properties

_INT64 = st.integers(-(2**63), 2**63 - 1)
_TIMES = st.integers(-(2**31), 2**33).map(lambda s: datetime.fromtimestamp(s, tz=UTC))
_VALUES: dict[ResourceType, st.SearchStrategy[object]] = {
    T.STRING: st.text(),
    T.INTEGER: _INT64,
    T.UNSIGNED_INTEGER: st.integers(0, 2**64 - 1),
    T.FLOAT: st.floats(allow_nan=False),
    T.BOOLEAN: st.booleans(),
    T.OPAQUE: st.binary(),
    T.TIME: _TIMES,
    T.OBJLNK: st.builds(ObjectLink, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    T.CORELNK: st.text(),
}

_TYPED_VALUES = st.sampled_from(ALL_TYPES).flatmap(lambda t: st.tuples(st.just(t), _VALUES[t]))
_NODE_TYPES = (LwM2MObject, ObjectInstance, SingleResource, MultipleResource, ResourceInstance)
_FUZZ_PATHS = [Path(3), Path(3, 0), Path(3, 0, 7), Path(3, 0, 7, 1), Path(9000, 1), Path(500), Path(66, 0)]


@st.composite
def _typed_instance(draw: st.DrawFn, instance_id: int | None = None) -> ObjectInstance:
    iid = draw(st.integers(0, 0xFFFF)) if instance_id is None else instance_id
    instance = ObjectInstance(iid)
    for index in draw(st.sets(st.integers(0, len(ALL_TYPES) - 1), max_size=4)):
        rtype = ALL_TYPES[index]
        instance.resources[index + 1] = SingleResource(index + 1, draw(_VALUES[rtype]), rtype)  # type: ignore[arg-type]
    for index in draw(st.sets(st.integers(0, len(ALL_TYPES) - 1), max_size=3)):
        rtype = ALL_TYPES[index]
        ids = draw(st.lists(st.integers(0, 0xFFFF), unique=True, max_size=3))
        instance.resources[index + 101] = MultipleResource(
            index + 101,
            {ri: draw(_VALUES[rtype]) for ri in ids},
            rtype,  # type: ignore[misc]
        )
    return instance


@given(_TYPED_VALUES)
def test_every_type_round_trips_as_a_single_resource(typed: tuple[ResourceType, object]) -> None:
    rtype, value = typed
    rid = ALL_TYPES.index(rtype) + 1
    node = SingleResource(rid, value, rtype)  # type: ignore[arg-type]
    path = Path(9000, 0, rid)
    assert tlv.decode(tlv.encode(node, path, MODEL), path, MODEL) == node


@given(_TYPED_VALUES, st.integers(0, 0xFFFF))
def test_every_type_round_trips_as_a_resource_instance(typed: tuple[ResourceType, object], ri: int) -> None:
    rtype, value = typed
    node = ResourceInstance(ri, value, rtype)  # type: ignore[arg-type]
    path = Path(9000, 0, ALL_TYPES.index(rtype) + 101, ri)
    assert tlv.decode(tlv.encode(node, path, MODEL), path, MODEL) == node


@settings(max_examples=60)
@given(_typed_instance())
def test_object_instances_round_trip(instance: ObjectInstance) -> None:
    path = Path(9000, instance.id)
    assert tlv.decode(tlv.encode(instance, path, MODEL), path, MODEL) == instance


@settings(max_examples=40)
@given(st.lists(_typed_instance(), max_size=3, unique_by=lambda i: i.id))
def test_objects_round_trip(instances: list[ObjectInstance]) -> None:
    obj = LwM2MObject(9000, {inst.id: inst for inst in instances})
    assert tlv.decode(tlv.encode(obj, Path(9000), MODEL), Path(9000), MODEL) == obj


@settings(max_examples=300)
@given(
    st.binary(max_size=64),
    st.sampled_from(
        [Path(3), Path(3, 0), Path(3, 0, 7), Path(3, 0, 7, 1), Path(9000, 1), Path(500), Path(66, 0)]
    ),
)
def test_random_bytes_decode_to_a_node_or_codec_error(payload: bytes, path: Path) -> None:
    try:
        node = tlv.decode(payload, path, MODEL)
    except CodecError:
        return
    assert isinstance(
        node, LwM2MObject | ObjectInstance | SingleResource | MultipleResource | ResourceInstance
    )


@settings(max_examples=200)
@given(_typed_instance(), st.data())
def test_corrupted_encodings_decode_to_a_node_or_codec_error(
    instance: ObjectInstance, data: st.DataObject
) -> None:
    encoded = bytearray(tlv.encode(instance, Path(9000, instance.id), MODEL))
    if encoded:
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        node = tlv.decode(bytes(encoded[:cut]), Path(9000, instance.id), MODEL)
    except CodecError:
        return
    assert isinstance(node, ObjectInstance)
