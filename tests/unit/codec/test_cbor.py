"""CBOR codec (content format 60, Core 1.1.1 §7.3.6): one data item per value, RFC 8949 encodings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import cbor
from lwm2m.errors import CodecError, UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import MultipleResource, ObjectInstance, ObjectLink, ResourceInstance, SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from tests.unit.codec.typed_model import MODEL, TYPES, T, single


# Hand-assembled RFC 8949 encodings (major type in the top 3 bits, §3.1; tag 1 is §3.4.2).
@pytest.mark.parametrize(
    ("rtype", "value", "wire"),
    [
        (T.STRING, "Open", "64 4F 70 65 6E"),
        (T.INTEGER, 0, "00"),
        (T.INTEGER, 23, "17"),
        (T.INTEGER, 24, "18 18"),
        (T.INTEGER, -500, "39 01 F3"),
        (T.INTEGER, 3800, "19 0E D8"),
        (T.UNSIGNED_INTEGER, 2**64 - 1, "1B FF FF FF FF FF FF FF FF"),
        (T.FLOAT, 1.5, "F9 3E 00"),
        (T.FLOAT, 0.1, "FB 3F B9 99 99 99 99 99 9A"),
        (T.BOOLEAN, True, "F5"),
        (T.BOOLEAN, False, "F4"),
        (T.OPAQUE, b"\x01\x02", "42 01 02"),
        (T.TIME, datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC), "C1 1A 51 82 42 8F"),
        (T.OBJLNK, ObjectLink(67, 0), "64 36 37 3A 30"),
        (T.CORELNK, "</3>", "64 3C 2F 33 3E"),
    ],
)
def test_values_encode_to_the_cbor_item_and_back(rtype: ResourceType, value: object, wire: str) -> None:
    node = SingleResource(TYPES.index(rtype) + 1, value, rtype)  # type: ignore[arg-type]
    assert cbor.encode(node, single(rtype), MODEL) == bytes.fromhex(wire)
    assert cbor.decode(bytes.fromhex(wire), single(rtype), MODEL) == node


MOMENT = datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC)
RFC3339_MOMENT = "C0 74" + b"2013-05-02T10:40:15Z".hex()  # tag 0, text of 20 characters


@pytest.mark.parametrize(
    ("rtype", "wire", "expected"),
    [
        (T.TIME, "1A 51 82 42 8F", MOMENT),  # untagged integer
        (T.TIME, RFC3339_MOMENT, MOMENT),
        (T.FLOAT, "18 19", 25.0),  # an integer item for a Float resource
        (T.FLOAT, "FA 3F C0 00 00", 1.5),  # single precision
    ],
)
def test_alternative_encodings_are_accepted(rtype: ResourceType, wire: str, expected: object) -> None:
    node = cbor.decode(bytes.fromhex(wire), single(rtype), MODEL)
    assert isinstance(node, SingleResource) and node.value == expected


def test_resource_instance_decodes_at_its_path() -> None:
    path = Path(9000, 0, 102, 4)
    assert cbor.decode(b"\x07", path, MODEL) == ResourceInstance(4, 7, T.INTEGER)
    assert cbor.encode(ResourceInstance(4, 7, T.INTEGER), path, MODEL) == b"\x07"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("63 61 62 63", SingleResource(9, "abc", T.STRING)),
        ("43 61 62 63", SingleResource(9, b"abc", T.OPAQUE)),
        ("F5", SingleResource(9, True, T.BOOLEAN)),
        ("20", SingleResource(9, -1, T.INTEGER)),
        ("1B FF FF FF FF FF FF FF FF", SingleResource(9, 2**64 - 1, T.UNSIGNED_INTEGER)),
        ("F9 3E 00", SingleResource(9, 1.5, T.FLOAT)),
        ("C1 00", SingleResource(9, datetime(1970, 1, 1, tzinfo=UTC), T.TIME)),
    ],
)
def test_unknown_resource_is_typed_by_the_cbor_item(wire: str, expected: SingleResource) -> None:
    assert cbor.decode(bytes.fromhex(wire), Path(3, 0, 9), ModelRegistry()) == expected


@pytest.mark.parametrize(
    ("rtype", "wire"),
    [
        (T.STRING, "43 61 62 63"),  # bytes for a string
        (T.INTEGER, "F5"),  # bool for an integer
        (T.INTEGER, "1B FF FF FF FF FF FF FF FF"),  # beyond int64
        (T.UNSIGNED_INTEGER, "20"),  # negative
        (T.BOOLEAN, "01"),
        (T.OPAQUE, "61 61"),
        (T.OBJLNK, "63 36 37 30"),  # no colon
        (T.OBJLNK, "68 37 30 30 30 30 3A 30 30"),  # 70000:00
        (T.TIME, "61 61"),
        (T.TIME, "C1 1B 7F FF FF FF FF FF FF FF"),  # out of datetime range
        (T.STRING, ""),  # empty payload
        (T.STRING, "64 61 62"),  # truncated text
        (T.INTEGER, "01 02"),  # trailing bytes
        (T.STRING, "62 FF FE"),  # invalid UTF-8
        (T.STRING, "82 01 02"),  # array
        (T.STRING, "1C"),  # reserved additional information
    ],
)
def test_malformed_or_mistyped_cbor_raises_codec_error(rtype: ResourceType, wire: str) -> None:
    with pytest.raises(CodecError):
        cbor.decode(bytes.fromhex(wire), single(rtype), MODEL)


def test_deeply_nested_input_raises_codec_error() -> None:
    with pytest.raises(CodecError):
        cbor.decode(b"\x81" * 10_000 + b"\x00", Path(3, 0, 9), ModelRegistry())


def test_multiple_resource_and_instances_are_refused() -> None:
    with pytest.raises(UnsupportedContentFormat):
        cbor.decode(b"\x01", Path(9000, 0, 102), MODEL)
    with pytest.raises(UnsupportedContentFormat):
        cbor.decode(b"\x01", Path(9000, 0), MODEL)
    with pytest.raises(UnsupportedContentFormat):
        cbor.encode(MultipleResource(102, {0: 1}, T.INTEGER), Path(9000, 0, 102), MODEL)
    with pytest.raises(UnsupportedContentFormat):
        cbor.encode(ObjectInstance(0), Path(9000, 0), MODEL)


@pytest.mark.parametrize(
    ("rtype", "value"),
    [(T.INTEGER, 2**63), (T.UNSIGNED_INTEGER, -1), (T.STRING, b"x"), (T.OBJLNK, "1:2"), (T.BOOLEAN, 0)],
)
def test_values_that_do_not_fit_their_type_cannot_be_encoded(rtype: ResourceType, value: object) -> None:
    with pytest.raises(CodecError):
        cbor.encode(SingleResource(1, value, rtype), single(rtype), MODEL)  # type: ignore[arg-type]


_VALUES: dict[ResourceType, st.SearchStrategy[object]] = {
    T.STRING: st.text(),
    T.INTEGER: st.integers(-(2**63), 2**63 - 1),
    T.UNSIGNED_INTEGER: st.integers(0, 2**64 - 1),
    T.FLOAT: st.floats(allow_nan=False),
    T.BOOLEAN: st.booleans(),
    T.OPAQUE: st.binary(),
    T.TIME: st.integers(-(2**31), 2**33).map(lambda s: datetime.fromtimestamp(s, tz=UTC)),
    T.OBJLNK: st.builds(ObjectLink, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    T.CORELNK: st.text(),
}


@given(st.sampled_from(TYPES).flatmap(lambda t: st.tuples(st.just(t), _VALUES[t])))
def test_every_type_round_trips(typed: tuple[ResourceType, object]) -> None:
    rtype, value = typed
    node = SingleResource(TYPES.index(rtype) + 1, value, rtype)  # type: ignore[arg-type]
    assert cbor.decode(cbor.encode(node, single(rtype), MODEL), single(rtype), MODEL) == node


@settings(max_examples=400)
@given(st.binary(max_size=48), st.sampled_from([*TYPES, None]))
def test_random_bytes_decode_to_a_value_or_codec_error(payload: bytes, rtype: ResourceType | None) -> None:
    path = single(rtype) if rtype is not None else Path(3, 0, 9)
    try:
        node = cbor.decode(payload, path, MODEL)
    except CodecError:
        return
    assert isinstance(node, SingleResource)
