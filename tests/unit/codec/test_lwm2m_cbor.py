"""LwM2M CBOR (content format 11544, Core 1.2 §7.4.7): nested maps of path ids from the object down,
path compaction with id arrays as keys, the plain CBOR value items. The examples are the Core
spec's Device object (the same instance its TLV, JSON and SenML examples use), in both of the
spec's layouts: nested single ids and compacted id arrays."""

from __future__ import annotations

from datetime import UTC, datetime

import cbor2
import pytest

from lwm2m import codec
from lwm2m.codec import lwm2m_cbor
from lwm2m.errors import CodecError
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import LwM2MObject, MultipleResource, ObjectInstance, ResourceInstance, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path

MODEL = builtin_registry()
T = ResourceType

# The spec's Device object instance /3/0.
DEVICE_RESOURCES = {
    0: "Open Mobile Alliance",
    1: "Lightweight M2M Client",
    2: "345000123",
    3: "1.0",
    6: {0: 1, 1: 5},
    7: {0: 3800, 1: 5000},
    8: {0: 125, 1: 900},
    9: 100,
    10: 15,
    11: {0: 0},
    13: cbor2.CBORTag(1, 1367491215),
    14: "+02:00",
    16: "U",
}
DEVICE = ObjectInstance(
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
        13: SingleResource(13, datetime.fromtimestamp(1367491215, tz=UTC), T.TIME),
        14: SingleResource(14, "+02:00", T.STRING),
        16: SingleResource(16, "U", T.STRING),
    },
)


def wire(item: object) -> bytes:
    return cbor2.dumps(item)


def test_the_device_instance_in_nested_maps_decodes_to_the_instance() -> None:
    payload = wire({3: {0: DEVICE_RESOURCES}})
    assert lwm2m_cbor.decode(payload, Path(3, 0), MODEL) == DEVICE


def test_the_device_instance_with_a_compacted_path_decodes_to_the_same_instance() -> None:
    payload = wire({(3, 0): DEVICE_RESOURCES})
    assert lwm2m_cbor.decode(payload, Path(3, 0), MODEL) == DEVICE


def test_a_single_resource_with_its_whole_path_in_one_key_is_exactly_these_bytes() -> None:
    # {[3, 0, 9]: 100}: map(1), array(3) 3 0 9, unsigned(100)
    payload = bytes.fromhex("A1 83 03 00 09 18 64")
    assert lwm2m_cbor.decode(payload, Path(3, 0, 9), MODEL) == SingleResource(9, 100, T.INTEGER)


def test_encoding_writes_nested_maps_from_the_object_down_and_reads_back() -> None:
    payload = lwm2m_cbor.encode(DEVICE, Path(3, 0), MODEL)
    item = cbor2.loads(payload)
    assert list(item) == [3] and list(item[3]) == [0]
    assert item[3][0][0] == "Open Mobile Alliance" and item[3][0][6] == {0: 1, 1: 5}
    assert item[3][0][13] == datetime.fromtimestamp(1367491215, tz=UTC)  # tag 1
    assert lwm2m_cbor.decode(payload, Path(3, 0), MODEL) == DEVICE
    assert lwm2m_cbor.encode(SingleResource(9, 100, T.INTEGER), Path(3, 0, 9), MODEL) == bytes.fromhex(
        "A1 03 A1 00 A1 09 18 64"
    )


def test_a_resource_instance_an_object_and_a_multiple_resource_round_trip() -> None:
    instance = ResourceInstance(1, 5, T.INTEGER)
    assert lwm2m_cbor.decode(
        lwm2m_cbor.encode(instance, Path(3, 0, 6, 1), MODEL), Path(3, 0, 6, 1), MODEL
    ) == (instance)
    multiple = MultipleResource(6, {0: 1, 1: 5}, T.INTEGER)
    assert lwm2m_cbor.decode(wire({(3, 0, 6): {0: 1, 1: 5}}), Path(3, 0, 6), MODEL) == multiple
    temperature = LwM2MObject(
        3303, {0: ObjectInstance(0, {5700: SingleResource(5700, 21.5, T.FLOAT)}), 1: ObjectInstance(1, {})}
    )
    payload = lwm2m_cbor.encode(temperature, Path(3303), MODEL)
    assert lwm2m_cbor.decode(payload, Path(3303), MODEL) == temperature


def test_composite_answers_mix_objects_and_compacted_keys() -> None:
    payload = wire({3: {0: {0: "Open Mobile Alliance", 9: 100}}, (1, 0, 1): 86400})
    nodes = codec.decode_composite(payload, ContentFormat.LWM2M_CBOR, MODEL)
    assert nodes == {
        Path(1, 0, 1): SingleResource(1, 86400, T.INTEGER),
        Path(3, 0, 0): SingleResource(0, "Open Mobile Alliance", T.STRING),
        Path(3, 0, 9): SingleResource(9, 100, T.INTEGER),
    }
    encoded = codec.encode_composite(nodes, ContentFormat.LWM2M_CBOR, MODEL)
    assert cbor2.loads(encoded) == {1: {0: {1: 86400}}, 3: {0: {0: "Open Mobile Alliance", 9: 100}}}


def test_a_null_in_a_composite_write_deletes_the_path() -> None:
    nodes, deleted = lwm2m_cbor.decode_composite_write(
        wire({(3303, 0, 5700): 22.5, (3303, 1): {5700: None}}), MODEL
    )
    assert nodes == {Path(3303, 0, 5700): SingleResource(5700, 22.5, T.FLOAT)}
    assert deleted == [Path(3303, 1, 5700)]


@pytest.mark.parametrize(
    ("item", "path", "reason"),
    [
        ([1, 2], Path(3, 0), "must be a map"),
        ({3: {0: 5}}, Path(3, 0), "above the resource level"),
        ({(3, 0, 9, 0, 1): 5}, Path(3, 0), "deeper"),
        ({3: {0: {70000: 1}}}, Path(3, 0), "0..65535"),
        ({"3": {0: {9: 1}}}, Path(3, 0), "not an integer"),
        ({(): 1}, Path(3, 0), "empty path array"),
        ({3: {0: {9: 100}}}, Path(3, 0, 10), "not under the request path"),
        ({}, Path(3, 0, 10), "no value for /3/0/10"),
        ({3: {1: {}}}, Path(3, 0), "not under the request path"),
        ({3: {}}, Path(3, 0), "no value for /3/0"),
        ({3: {1: {9: 100}}}, Path(3, 0), "not under the request path"),
        ({3: {0: {6: 1}}}, Path(3, 0, 6), "multiple resource"),
        ({3: {0: {9: {0: 1}}}}, Path(3, 0, 9), "single resource"),
        ({3: {0: {9: "a hundred"}}}, Path(3, 0, 9), "not a Integer"),
    ],
)
def test_payloads_that_do_not_answer_the_request_are_codec_errors(
    item: object, path: Path, reason: str
) -> None:
    with pytest.raises(CodecError, match=reason):
        lwm2m_cbor.decode(wire(item), path, MODEL)


def test_malformed_and_trailing_bytes_are_codec_errors() -> None:
    for payload in (b"", b"\xa1", wire({3: {0: {9: 1}}}) + b"\x00", b"\xff\xff"):
        with pytest.raises(CodecError):
            lwm2m_cbor.decode(payload, Path(3, 0), MODEL)
