"""LwM2M JSON (11543, legacy 1543): OMA TS LwM2M Core 1.0.2 §6.4.4 and 1.1.1 §7.4.5."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import lwm2m_json
from lwm2m.errors import CodecError
from lwm2m.node import MultipleResource, Node, ObjectLink, ResourceInstance, SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from tests.unit.codec.test_senml_json import MODEL, composites, device_instance, typed_nodes

# Core 1.0.2 §6.4.4 / 1.1.1 §7.4.5: Read /3/0 answered in LwM2M JSON (the Device object example).
DEVICE_READ = (
    b'{"bn":"/3/0/","e":['
    b'{"n":"0","sv":"Open Mobile Alliance"},'
    b'{"n":"1","sv":"Lightweight M2M Client"},'
    b'{"n":"2","sv":"345000123"},'
    b'{"n":"3","sv":"1.0"},'
    b'{"n":"6/0","v":1},{"n":"6/1","v":5},'
    b'{"n":"7/0","v":3800},{"n":"7/1","v":5000},'
    b'{"n":"8/0","v":125},{"n":"8/1","v":900},'
    b'{"n":"9","v":100},{"n":"10","v":15},'
    b'{"n":"11/0","v":0},'
    b'{"n":"13","v":1367491215},'
    b'{"n":"14","sv":"+02:00"},'
    b'{"n":"16","sv":"U"}]}'
)


def test_device_object_read_decodes_to_typed_instance() -> None:
    assert lwm2m_json.decode(DEVICE_READ, Path(3, 0), MODEL) == device_instance()


def test_device_object_read_encodes_to_spec_bytes() -> None:
    assert lwm2m_json.encode(device_instance(), Path(3, 0), MODEL) == DEVICE_READ


def test_legacy_root_base_name_with_full_entry_names_decodes() -> None:
    payload = b'{"bn":"/","e":[{"n":"3/0/0","sv":"Open Mobile Alliance"},{"n":"3/0/9","v":95}]}'
    node = lwm2m_json.decode(payload, Path(3, 0), MODEL)
    assert node.resources[9] == SingleResource(9, 95, ResourceType.INTEGER)  # type: ignore[union-attr]


def test_single_resource_has_one_entry_without_name() -> None:
    node = SingleResource(0, "Open Mobile Alliance", ResourceType.STRING)
    payload = lwm2m_json.encode(node, Path(3, 0, 0), MODEL)
    assert payload == b'{"bn":"/3/0/0","e":[{"sv":"Open Mobile Alliance"}]}'
    assert lwm2m_json.decode(payload, Path(3, 0, 0), MODEL) == node


def test_opaque_travels_as_standard_base64_in_sv() -> None:
    node = ResourceInstance(0, b"\xfb\xff\x00", ResourceType.OPAQUE)
    payload = lwm2m_json.encode(node, Path(19, 0, 0, 0), MODEL)
    assert json.loads(payload) == {"bn": "/19/0/0/0", "e": [{"sv": "+/8A"}]}
    assert lwm2m_json.decode(payload, Path(19, 0, 0, 0), MODEL) == node


def test_opaque_with_invalid_base64_is_rejected() -> None:
    with pytest.raises(CodecError):
        lwm2m_json.decode(b'{"bn":"/19/0/0/0","e":[{"sv":"not base64!"}]}', Path(19, 0, 0, 0), MODEL)


def test_booleans_and_object_links_use_bv_and_ov() -> None:
    payload = b'{"bn":"/3/0/22/","e":[{"n":"0","ov":"3:0"}]}'
    assert lwm2m_json.decode(payload, Path(3, 0, 22), MODEL) == MultipleResource(
        22, {0: ObjectLink(3, 0)}, ResourceType.OBJLNK
    )
    assert lwm2m_json.decode(b'{"bn":"/3311/0/5850","e":[{"bv":true}]}', Path(3311, 0, 5850), MODEL) == (
        SingleResource(5850, True, ResourceType.BOOLEAN)
    )


def test_composite_uses_root_base_name_and_full_names() -> None:
    nodes: dict[Path, Node] = {
        Path(3, 0, 0): SingleResource(0, "OMA", ResourceType.STRING),
        Path(3303, 0, 5700): SingleResource(5700, 21.5, ResourceType.FLOAT),
    }
    payload = lwm2m_json.encode_composite(nodes, MODEL)
    assert payload == b'{"bn":"/","e":[{"n":"3/0/0","sv":"OMA"},{"n":"3303/0/5700","v":21.5}]}'
    assert lwm2m_json.decode_composite(payload, MODEL) == nodes


NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_entry_time_is_relative_to_base_time() -> None:
    payload = b'{"bn":"/3303/0/5700","bt":1320067464,"e":[{"v":22.4,"t":0},{"v":22.9,"t":60}]}'
    values = lwm2m_json.decode_timestamped(payload, Path(3303), MODEL, now=NOW)
    assert [v.time for v in values] == [
        datetime(2011, 10, 31, 13, 24, 24, tzinfo=UTC),
        datetime(2011, 10, 31, 13, 25, 24, tzinfo=UTC),
    ]


def test_large_entry_time_is_absolute_even_with_base_time() -> None:
    payload = b'{"bn":"/3303/0/5700","bt":1320067464,"e":[{"v":22.4,"t":1400000000}]}'
    [value] = lwm2m_json.decode_timestamped(payload, Path(3303, 0, 5700), MODEL, now=NOW)
    assert value.time == datetime(2014, 5, 13, 16, 53, 20, tzinfo=UTC)


def test_small_time_without_base_time_is_relative_to_now_and_no_time_is_none() -> None:
    payload = b'{"bn":"/3303/0/5700","e":[{"v":22.4,"t":-30},{"v":22.9}]}'
    values = lwm2m_json.decode_timestamped(payload, Path(3303, 0, 5700), MODEL, now=NOW)
    assert [v.time for v in values] == [datetime(2023, 12, 31, 23, 59, 30, tzinfo=UTC), None]


def test_base_time_out_of_range_raises_codec_error() -> None:
    payload = b'{"bn":"/3/0/","bt":1' + b"0" * 400 + b',"e":[{"n":"9","v":1}]}'
    with pytest.raises(CodecError):
        lwm2m_json.decode_timestamped(payload, Path(3, 0), MODEL, now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",  # not an object
        b'{"bn":"/3/0/"}',  # no entries
        b'{"bn":3,"e":[]}',
        b'{"bn":"/3/0/","e":[{"n":"9","sv":"x"}]}',  # Integer as a string
        b'{"bn":"/3/0/","e":[{"n":"9","v":1,"sv":"1"}]}',  # two values
        b'{"bn":"/3/0/","e":[{"n":9,"v":1}]}',  # numeric name
        b'{"bn":"/3/0/","e":[{"n":"9","v":1,"t":"now"}]}',
        b'{"bn":"/3/0/","bt":"x","e":[{"n":"9","v":1}]}',
        b'{"bn":"/3/0/","e":[{"n":"13","v":1' + b"0" * 400 + b"}]}",
        b'{"bn":"/3/1/","e":[{"n":"9","v":1}]}',  # outside the target
        b"\x80",
    ],
)
def test_malformed_payload_raises_codec_error(payload: bytes) -> None:
    with pytest.raises(CodecError):
        lwm2m_json.decode(payload, Path(3, 0), MODEL)
    with pytest.raises(CodecError):
        lwm2m_json.decode_timestamped(payload, Path(3, 0), MODEL, now=NOW)


@settings(derandomize=True)
@given(typed_nodes())
def test_every_node_kind_and_value_type_round_trips(case: tuple[Node, Path]) -> None:
    node, path = case
    assert lwm2m_json.decode(lwm2m_json.encode(node, path, MODEL), path, MODEL) == node


@settings(derandomize=True)
@given(composites())
def test_composite_round_trips_under_requested_paths(nodes: dict[Path, Node]) -> None:
    payload = lwm2m_json.encode_composite(nodes, MODEL)
    assert lwm2m_json.decode_composite(payload, MODEL, paths=list(nodes)) == nodes


huge_numbers = st.sampled_from([2**63, 2**64, -(10**400), 10**400, 1e308])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_numbers
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
names = st.sampled_from(["0", "7/0", "3/0/0", "", "/", "//", "x", "5700"])
entries = st.dictionaries(
    st.sampled_from(["n", "t", "v", "sv", "bv", "ov", "x"]), json_scalars | names, max_size=4
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "bn": st.sampled_from(["/3/0/", "/", "/3303/0/5700", "/19/0/0/", ""]) | json_scalars,
        "bt": json_scalars,
        "e": st.lists(entries, max_size=4) | json_scalars,
    },
).map(lambda d: json.dumps(d).encode()) | st.binary(max_size=40)


@settings(max_examples=300, derandomize=True)
@given(
    documents, st.sampled_from([Path(3), Path(3, 0), Path(3, 0, 7), Path(19, 0, 0, 0), Path(3303, 0, 5700)])
)
def test_decoders_raise_only_codec_error_on_junk(payload: bytes, path: Path) -> None:
    for decode in (
        lambda: lwm2m_json.decode(payload, path, MODEL),
        lambda: lwm2m_json.decode_composite(payload, MODEL),
        lambda: lwm2m_json.decode_timestamped(payload, path, MODEL, now=NOW),
    ):
        try:
            decode()
        except CodecError:
            pass
