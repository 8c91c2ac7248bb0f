"""Plain text codec (content format 0, Core 1.1.1 §7.3.2): representations, errors, round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import text
from lwm2m.errors import CodecError, UnsupportedContentFormat
from lwm2m.node import MultipleResource, ObjectInstance, ObjectLink, ResourceInstance, SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from tests.unit.codec.typed_model import MODEL, TYPES, T, multiple, single


@pytest.mark.parametrize(
    ("rtype", "value", "wire"),
    [
        (T.STRING, "Open Mobile Alliance", b"Open Mobile Alliance"),
        (T.STRING, "中国移动", "中国移动".encode()),
        (T.INTEGER, -42, b"-42"),
        (T.INTEGER, 3800, b"3800"),
        (T.UNSIGNED_INTEGER, 2**64 - 1, b"18446744073709551615"),
        (T.FLOAT, 3.5, b"3.5"),
        (T.FLOAT, 0.1, b"0.1"),
        (T.FLOAT, -1e-7, b"-1e-07"),
        (T.BOOLEAN, True, b"1"),
        (T.BOOLEAN, False, b"0"),
        (T.TIME, datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC), b"1367491215"),
        (T.OBJLNK, ObjectLink(67, 0), b"67:0"),
        (T.OPAQUE, b"\x00\x01\xfe\xff", b"AAH+/w=="),
        (T.CORELNK, "</3/0>", b"</3/0>"),
    ],
)
def test_values_encode_and_decode_in_their_text_form(rtype: ResourceType, value: object, wire: bytes) -> None:
    node = SingleResource(TYPES.index(rtype) + 1, value, rtype)  # type: ignore[arg-type]
    assert text.encode(node, single(rtype), MODEL) == wire
    assert text.decode(wire, single(rtype), MODEL) == node


def test_resource_instance_decodes_at_its_path() -> None:
    assert text.decode(b"17", multiple(T.INTEGER, 3), MODEL) == ResourceInstance(3, 17, T.INTEGER)
    assert text.encode(ResourceInstance(3, 17, T.INTEGER), multiple(T.INTEGER, 3), MODEL) == b"17"


def test_unknown_resource_decodes_as_string() -> None:
    assert text.decode(b"hello", Path(3, 0, 0), MODEL) == SingleResource(0, "hello", T.STRING)


@pytest.mark.parametrize(
    ("rtype", "wire", "expected"),
    [
        (T.INTEGER, b"+7", 7),
        (T.INTEGER, b" 12\r\n", 12),
        (T.FLOAT, b"25", 25.0),
        (T.FLOAT, b"1.5E3", 1500.0),
        (T.FLOAT, b".5", 0.5),
        (T.BOOLEAN, b"true", True),
        (T.BOOLEAN, b"FALSE", False),
        (T.TIME, b"0", datetime(1970, 1, 1, tzinfo=UTC)),
        (T.OPAQUE, b"", b""),
    ],
)
def test_lenient_forms_real_clients_send_are_accepted(
    rtype: ResourceType, wire: bytes, expected: object
) -> None:
    node = text.decode(wire, single(rtype), MODEL)
    assert isinstance(node, SingleResource) and node.value == expected


@pytest.mark.parametrize(
    ("rtype", "wire"),
    [
        (T.INTEGER, b"12a"),
        (T.INTEGER, b"1_000"),
        (T.INTEGER, "١٢".encode()),  # Arabic-Indic digits are not decimal text here
        (T.INTEGER, b"9223372036854775808"),
        (T.INTEGER, b""),
        (T.UNSIGNED_INTEGER, b"-1"),
        (T.UNSIGNED_INTEGER, b"18446744073709551616"),
        (T.FLOAT, b"1.2.3"),
        (T.FLOAT, b"0x10"),
        (T.BOOLEAN, b"2"),
        (T.BOOLEAN, b"yes"),
        (T.TIME, b"99999999999999999"),
        (T.OBJLNK, b"67"),
        (T.OBJLNK, b"67:70000"),
        (T.OBJLNK, b"a:b"),
        (T.OPAQUE, b"not base64!"),
        (T.OPAQUE, b"AAH"),
        (T.STRING, b"\xff\xfe"),
        (T.INTEGER, b"1" * 1000),
    ],
)
def test_malformed_text_raises_codec_error(rtype: ResourceType, wire: bytes) -> None:
    with pytest.raises(CodecError):
        text.decode(wire, single(rtype), MODEL)


def test_multiple_resource_cannot_be_read_as_text() -> None:
    with pytest.raises(UnsupportedContentFormat):
        text.decode(b"1", Path(9000, 0, 102), MODEL)


@pytest.mark.parametrize("path", [Path(9000), Path(9000, 0), Path()])
def test_objects_and_instances_cannot_be_decoded_from_text(path: Path) -> None:
    with pytest.raises(UnsupportedContentFormat):
        text.decode(b"1", path, MODEL)


@pytest.mark.parametrize(
    "node",
    [ObjectInstance(0, {1: SingleResource(1, "x")}), MultipleResource(102, {0: 1}, T.INTEGER)],
)
def test_instances_and_multiple_resources_cannot_be_encoded_as_text(node: object) -> None:
    with pytest.raises(UnsupportedContentFormat):
        text.encode(node, Path(9000, 0), MODEL)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rtype", "value"),
    [(T.INTEGER, "1"), (T.STRING, 5), (T.BOOLEAN, 1), (T.OBJLNK, "1:2"), (T.OPAQUE, "x"), (T.INTEGER, 2**63)],
)
def test_values_of_the_wrong_python_type_cannot_be_encoded(rtype: ResourceType, value: object) -> None:
    with pytest.raises(CodecError):
        text.encode(SingleResource(1, value, rtype), single(rtype), MODEL)  # type: ignore[arg-type]


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
    assert text.decode(text.encode(node, single(rtype), MODEL), single(rtype), MODEL) == node


@settings(max_examples=300)
@given(st.binary(max_size=40), st.sampled_from(TYPES), st.booleans())
def test_random_bytes_decode_to_a_value_or_codec_error(
    payload: bytes, rtype: ResourceType, instance: bool
) -> None:
    path = multiple(rtype) if instance else single(rtype)
    try:
        node = text.decode(payload, path, MODEL)
    except CodecError:
        return
    assert isinstance(node, ResourceInstance if instance else SingleResource)
