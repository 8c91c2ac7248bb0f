"""SenML JSON (110): RFC 8428 and OMA TS LwM2M Core 1.1.1 §7.4.4.

Also home of the node strategies the SenML CBOR and LwM2M JSON tests share (`MODEL`, `typed_nodes`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import senml_json
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry, ObjectDefinition, ResourceDefinition
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ResourceInstance,
    SingleResource,
)
from lwm2m.numbers import Operations, ResourceType
from lwm2m.path import Path

# ------------------------------------------------------------------ shared model and strategies

TEST_OBJECT = 32000
VALUE_TYPES = [t for t in ResourceType if t is not ResourceType.NONE]
SINGLE_IDS = {rtype: index for index, rtype in enumerate(VALUE_TYPES)}
MULTIPLE_IDS = {rtype: 100 + index for index, rtype in enumerate(VALUE_TYPES)}


def _test_object() -> ObjectDefinition:
    resources = {}
    for ids, multiple in ((SINGLE_IDS, False), (MULTIPLE_IDS, True)):
        for rtype, rid in ids.items():
            resources[rid] = ResourceDefinition(
                rid, f"{rtype.value} {rid}", Operations.RW, multiple, False, rtype
            )
    resources[999] = ResourceDefinition(999, "Run", Operations.E, False, False, ResourceType.NONE)
    return ObjectDefinition(TEST_OBJECT, "Codec test object", True, False, resources=resources)


MODEL = builtin_registry()
MODEL.add(_test_object())
EMPTY_MODEL = ModelRegistry()

times = st.integers(min_value=0, max_value=2**33).map(lambda s: datetime.fromtimestamp(s, UTC))
VALUES: dict[ResourceType, st.SearchStrategy] = {
    ResourceType.STRING: st.text(),
    ResourceType.INTEGER: st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ResourceType.UNSIGNED_INTEGER: st.integers(min_value=0, max_value=2**64 - 1),
    ResourceType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    ResourceType.BOOLEAN: st.booleans(),
    ResourceType.OPAQUE: st.binary(max_size=64),
    ResourceType.TIME: times,
    ResourceType.OBJLNK: st.builds(ObjectLink, st.integers(0, 65535), st.integers(0, 65535)),
    ResourceType.CORELNK: st.text().map(lambda t: f"</{t}>"),
}
ids = st.integers(min_value=0, max_value=65535)


@st.composite
def single_resources(draw: st.DrawFn) -> SingleResource:
    rtype = draw(st.sampled_from(VALUE_TYPES))
    return SingleResource(SINGLE_IDS[rtype], draw(VALUES[rtype]), rtype)


@st.composite
def multiple_resources(draw: st.DrawFn, min_size: int = 1) -> MultipleResource:
    rtype = draw(st.sampled_from(VALUE_TYPES))
    instances = draw(st.dictionaries(ids, VALUES[rtype], min_size=min_size, max_size=4))
    return MultipleResource(MULTIPLE_IDS[rtype], instances, rtype)


@st.composite
def instances(draw: st.DrawFn, instance_id: int | None = None) -> ObjectInstance:
    resources = draw(st.lists(single_resources() | multiple_resources(), min_size=1, max_size=6))
    iid = draw(ids) if instance_id is None else instance_id
    return ObjectInstance(iid, {r.id: r for r in resources})


@st.composite
def objects(draw: st.DrawFn) -> LwM2MObject:
    chosen = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
    return LwM2MObject(TEST_OBJECT, {i: draw(instances(i)) for i in chosen})


@st.composite
def typed_nodes(draw: st.DrawFn) -> tuple[Node, Path]:
    """A node of any kind of the test object, with the path it sits at."""
    kind = draw(st.sampled_from(["object", "instance", "single", "multiple", "resource_instance"]))
    iid = draw(ids)
    if kind == "object":
        return draw(objects()), Path(TEST_OBJECT)
    if kind == "instance":
        return draw(instances(iid)), Path(TEST_OBJECT, iid)
    if kind == "single":
        node = draw(single_resources())
        return node, Path(TEST_OBJECT, iid, node.id)
    if kind == "multiple":
        node = draw(multiple_resources())
        return node, Path(TEST_OBJECT, iid, node.id)
    rtype = draw(st.sampled_from(VALUE_TYPES))
    ri = draw(ids)
    return ResourceInstance(ri, draw(VALUES[rtype]), rtype), Path(TEST_OBJECT, iid, MULTIPLE_IDS[rtype], ri)


@st.composite
def composites(draw: st.DrawFn) -> dict[Path, Node]:
    """Nodes at distinct, non-overlapping paths (one per object instance)."""
    chosen = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
    nodes: dict[Path, Node] = {}
    for iid in chosen:
        if draw(st.booleans()):
            nodes[Path(TEST_OBJECT, iid)] = draw(instances(iid))
        else:
            resource = draw(single_resources() | multiple_resources())
            nodes[Path(TEST_OBJECT, iid, resource.id)] = resource
    return nodes


# Values whose record kind alone fixes the type (used with a model that knows nothing).
SELF_TYPED = [
    ResourceType.STRING,
    ResourceType.INTEGER,
    ResourceType.FLOAT,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
    ResourceType.OBJLNK,
]

# ------------------------------------------------------------------ fixed vectors

# Core 1.1.1 §7.4.4: Read /3/0 answered in SenML JSON (the Device object example, abridged to the
# values our built-in Device object defines).
DEVICE_READ = (
    b'[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},'
    b'{"n":"1","vs":"Lightweight M2M Client"},'
    b'{"n":"2","vs":"345000123"},'
    b'{"n":"3","vs":"1.0"},'
    b'{"n":"6/0","v":1},{"n":"6/1","v":5},'
    b'{"n":"7/0","v":3800},{"n":"7/1","v":5000},'
    b'{"n":"8/0","v":125},{"n":"8/1","v":900},'
    b'{"n":"9","v":100},{"n":"10","v":15},'
    b'{"n":"11/0","v":0},'
    b'{"n":"13","v":1367491215},'
    b'{"n":"14","vs":"+02:00"},'
    b'{"n":"16","vs":"U"}]'
)


def device_instance() -> ObjectInstance:
    def s(rid: int, value: object, rtype: ResourceType) -> SingleResource:
        return SingleResource(rid, value, rtype)  # type: ignore[arg-type]

    def m(rid: int, values: dict[int, int]) -> MultipleResource:
        return MultipleResource(rid, dict(values), ResourceType.INTEGER)

    resources = [
        s(0, "Open Mobile Alliance", ResourceType.STRING),
        s(1, "Lightweight M2M Client", ResourceType.STRING),
        s(2, "345000123", ResourceType.STRING),
        s(3, "1.0", ResourceType.STRING),
        m(6, {0: 1, 1: 5}),
        m(7, {0: 3800, 1: 5000}),
        m(8, {0: 125, 1: 900}),
        s(9, 100, ResourceType.INTEGER),
        s(10, 15, ResourceType.INTEGER),
        m(11, {0: 0}),
        s(13, datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC), ResourceType.TIME),
        s(14, "+02:00", ResourceType.STRING),
        s(16, "U", ResourceType.STRING),
    ]
    return ObjectInstance(0, {r.id: r for r in resources})


def test_device_object_read_decodes_to_typed_instance() -> None:
    assert senml_json.decode(DEVICE_READ, Path(3, 0), MODEL) == device_instance()


def test_device_object_read_encodes_to_spec_bytes() -> None:
    assert senml_json.encode(device_instance(), Path(3, 0), MODEL) == DEVICE_READ


# Core 1.1.1 §6.4.x Read-Composite example: the request names /3/0/0, /3/0/9 and /1/0/1 ...
READ_COMPOSITE_REQUEST = b'[{"n":"/3/0/0"},{"n":"/3/0/9"},{"n":"/1/0/1"}]'
# ... and the response carries their values under two base names.
READ_COMPOSITE_RESPONSE = (
    b'[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"9","v":95},{"bn":"/1/0/","n":"1","v":86400}]'
)


def test_read_composite_request_paths_round_trip() -> None:
    paths = [Path(3, 0, 0), Path(3, 0, 9), Path(1, 0, 1)]
    assert senml_json.decode_paths(READ_COMPOSITE_REQUEST) == paths
    assert senml_json.encode_paths(paths) == READ_COMPOSITE_REQUEST


def test_read_composite_request_accepts_base_names_and_root() -> None:
    payload = b'[{"bn":"/3/0/","n":"0"},{"n":"9"},{"bn":"/1"},{"bn":"/"}]'
    assert senml_json.decode_paths(payload) == [Path(3, 0, 0), Path(3, 0, 9), Path(1), Path()]


def test_read_composite_request_with_a_value_is_rejected() -> None:
    with pytest.raises(CodecError):
        senml_json.decode_paths(b'[{"n":"/3/0/0","vs":"x"}]')


def test_read_composite_response_decodes_per_resource() -> None:
    nodes = senml_json.decode_composite(READ_COMPOSITE_RESPONSE, MODEL)
    assert nodes == {
        Path(3, 0, 0): SingleResource(0, "Open Mobile Alliance", ResourceType.STRING),
        Path(3, 0, 9): SingleResource(9, 95, ResourceType.INTEGER),
        Path(1, 0, 1): SingleResource(1, 86400, ResourceType.INTEGER),
    }


def test_read_composite_response_groups_under_requested_paths() -> None:
    nodes = senml_json.decode_composite(READ_COMPOSITE_RESPONSE, MODEL, paths=[Path(3, 0), Path(1, 0, 1)])
    assert set(nodes) == {Path(3, 0), Path(1, 0, 1)}
    instance = nodes[Path(3, 0)]
    assert isinstance(instance, ObjectInstance)
    assert set(instance.resources) == {0, 9}


def test_composite_record_outside_requested_paths_is_rejected() -> None:
    with pytest.raises(CodecError):
        senml_json.decode_composite(READ_COMPOSITE_RESPONSE, MODEL, paths=[Path(3, 0)])


def test_single_resource_encodes_as_one_record_with_full_base_name() -> None:
    node = SingleResource(0, "Open Mobile Alliance", ResourceType.STRING)
    assert senml_json.encode(node, Path(3, 0, 0), MODEL) == b'[{"bn":"/3/0/0","vs":"Open Mobile Alliance"}]'


def test_multiple_resource_records_become_a_multiple_resource() -> None:
    payload = b'[{"bn":"/3/0/7/","n":"0","v":3800},{"n":"1","v":5000}]'
    assert senml_json.decode(payload, Path(3, 0, 7), MODEL) == MultipleResource(
        7, {0: 3800, 1: 5000}, ResourceType.INTEGER
    )


def test_resource_instance_decodes_at_its_path() -> None:
    payload = b'[{"n":"/3/0/7/1","v":5000}]'
    assert senml_json.decode(payload, Path(3, 0, 7, 1), MODEL) == ResourceInstance(
        1, 5000, ResourceType.INTEGER
    )


def test_object_decodes_with_all_its_instances() -> None:
    payload = b'[{"bn":"/3303/","n":"0/5700","v":21.5},{"n":"1/5700","v":-3},{"n":"1/5701","vs":"Cel"}]'
    node = senml_json.decode(payload, Path(3303), MODEL)
    assert node == LwM2MObject(
        3303,
        {
            0: ObjectInstance(0, {5700: SingleResource(5700, 21.5, ResourceType.FLOAT)}),
            1: ObjectInstance(
                1,
                {
                    5700: SingleResource(5700, -3.0, ResourceType.FLOAT),
                    5701: SingleResource(5701, "Cel", ResourceType.STRING),
                },
            ),
        },
    )


def test_opaque_travels_as_base64url_without_padding() -> None:
    node = ResourceInstance(0, b"\xfb\xff\x00", ResourceType.OPAQUE)
    payload = senml_json.encode(node, Path(19, 0, 0, 0), MODEL)
    assert json.loads(payload) == [{"bn": "/19/0/0/0", "vd": "-_8A"}]
    assert senml_json.decode(b'[{"n":"/19/0/0/0","vd":"-_8A"}]', Path(19, 0, 0, 0), MODEL).value == (
        b"\xfb\xff\x00"
    )


def test_padded_base64url_is_accepted_and_standard_alphabet_rejected() -> None:
    assert senml_json.decode(b'[{"n":"/19/0/0/0","vd":"AQ=="}]', Path(19, 0, 0, 0), MODEL).value == b"\x01"
    with pytest.raises(CodecError):
        senml_json.decode(b'[{"n":"/19/0/0/0","vd":"+/8A"}]', Path(19, 0, 0, 0), MODEL)


def test_object_link_travels_in_vlo() -> None:
    instance = ObjectInstance(0, {22: MultipleResource(22, {0: ObjectLink(3, 0)}, ResourceType.OBJLNK)})
    payload = senml_json.encode(instance, Path(3, 0), MODEL)
    assert payload == b'[{"bn":"/3/0/","n":"22/0","vlo":"3:0"}]'
    assert senml_json.decode(payload, Path(3, 0), MODEL) == instance


def test_unknown_resource_is_typed_by_its_record_kind() -> None:
    payload = (
        b'[{"bn":"/40000/0/","n":"0","v":3},{"n":"1","v":2.5},{"n":"2","vs":"a"},'
        b'{"n":"3","vb":true},{"n":"4","vd":"AQI"},{"n":"5","vlo":"1:2"},{"n":"6/0","v":7}]'
    )
    node = senml_json.decode(payload, Path(40000, 0), MODEL)
    assert node == ObjectInstance(
        0,
        {
            0: SingleResource(0, 3, ResourceType.INTEGER),
            1: SingleResource(1, 2.5, ResourceType.FLOAT),
            2: SingleResource(2, "a", ResourceType.STRING),
            3: SingleResource(3, True, ResourceType.BOOLEAN),
            4: SingleResource(4, b"\x01\x02", ResourceType.OPAQUE),
            5: SingleResource(5, ObjectLink(1, 2), ResourceType.OBJLNK),
            6: MultipleResource(6, {0: 7}, ResourceType.INTEGER),
        },
    )


def test_integral_float_is_accepted_for_an_integer_resource() -> None:
    assert senml_json.decode(b'[{"n":"/3/0/9","v":95.0}]', Path(3, 0, 9), MODEL).value == 95


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (b'[{"n":"/3/0/9","v":95.5}]', Path(3, 0, 9)),  # Integer with a fraction
        (b'[{"n":"/3/0/0","v":1}]', Path(3, 0, 0)),  # String as a number
        (b'[{"n":"/3/0/9","vs":"95"}]', Path(3, 0, 9)),  # Integer as a string
        (b'[{"n":"/3/0/4","v":1}]', Path(3, 0, 4)),  # executable carries no value
        (b'[{"n":"/3/0/7","v":1}]', Path(3, 0, 7)),  # multiple resource without instance ids
        (b'[{"n":"/3/0/0/0","vs":"x"}]', Path(3, 0, 0)),  # single resource with an instance id
        (b'[{"n":"/3/0/0","vs":"x","v":1}]', Path(3, 0, 0)),  # two values
        (b'[{"n":"/3/0/0"}]', Path(3, 0, 0)),  # no value
        (b'[{"n":"/3/1/0","vs":"x"}]', Path(3, 0)),  # outside the target
        (b'[{"n":"/3/0","vs":"x"}]', Path(3, 0)),  # value on an instance
        (b'[{"n":"/3/0/x","vs":"x"}]', Path(3, 0)),  # not a path
        (b'[{"n":"/3/0/0","vs":"x"},{"n":"/3/0/0","vs":"y"}]', Path(3, 0, 0)),  # duplicate
        (b'[{"n":"/1/0/13","v":-1}]', Path(1, 0, 13)),  # negative Unsigned Integer
        (b'[{"n":"/3/0/0","vs":"x","x_":1}]', Path(3, 0, 0)),  # must-understand label
        (b'[{"n":"/3/0/9","v":NaN}]', Path(3, 0, 9)),
        (b'[{"n":"/3/0/9","v":1' + b"0" * 400 + b"}]", Path(3, 0, 9)),  # beyond a float
        (b'[{"n":"/3/0/9","v":1' + b"0" * 5000 + b"}]", Path(3, 0, 9)),  # beyond the digit limit
        (b'[{"n":"/3/0/9","v":9223372036854775808}]', Path(3, 0, 9)),  # beyond Integer (int64)
        (b'[{"n":"/3303/0/5700","v":1' + b"0" * 400 + b"}]", Path(3303, 0, 5700)),  # Float overflow
        (b'[{"n":"/3/0/13","v":1' + b"0" * 30 + b"}]", Path(3, 0, 13)),  # Time overflow
        (b'{"n":"/3/0/9","v":1}', Path(3, 0, 9)),  # not an array
        (b"[1]", Path(3, 0, 9)),
        (b"\xff", Path(3, 0, 9)),
        (b'[{"n":"/3/0/9","v":1}]', Path()),  # root target
    ],
)
def test_malformed_or_mistyped_payload_raises_codec_error(payload: bytes, path: Path) -> None:
    with pytest.raises(CodecError):
        senml_json.decode(payload, path, MODEL)


def test_encoding_a_value_that_does_not_match_the_model_raises_codec_error() -> None:
    with pytest.raises(CodecError):
        senml_json.encode(SingleResource(9, "ninety", ResourceType.STRING), Path(3, 0, 9), MODEL)
    with pytest.raises(CodecError):
        senml_json.encode(SingleResource(9, float("nan"), ResourceType.FLOAT), Path(40000, 0, 9), MODEL)
    with pytest.raises(CodecError):
        senml_json.encode(SingleResource(9, 1, ResourceType.INTEGER), Path(3, 0, 8), MODEL)


def test_base_time_and_time_give_measurement_times() -> None:
    payload = b'[{"bn":"/3303/0/5700","bt":1320067464,"v":22.4},{"t":60,"v":22.9},{"n":"","v":23.1,"t":-60}]'
    values = senml_json.decode_timestamped(payload, Path(3303, 0), MODEL)
    assert [(v.value, v.time) for v in values] == [
        (22.4, datetime(2011, 10, 31, 13, 24, 24, tzinfo=UTC)),
        (22.9, datetime(2011, 10, 31, 13, 25, 24, tzinfo=UTC)),
        (23.1, datetime(2011, 10, 31, 13, 23, 24, tzinfo=UTC)),
    ]
    assert all(v.path == Path(3303, 0, 5700) and v.type is ResourceType.FLOAT for v in values)


def test_small_times_are_relative_to_now_and_missing_times_are_none() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    payload = b'[{"n":"/3303/0/5700","v":1,"t":-5},{"n":"/3303/0/5700","v":2}]'
    values = senml_json.decode_timestamped(payload, Path(3303), MODEL, now=now)
    assert [v.time for v in values] == [datetime(2023, 12, 31, 23, 59, 55, tzinfo=UTC), None]


def test_write_composite_record_without_value_means_delete() -> None:
    payload = b'[{"n":"/3/0/14","vs":"+08:00"},{"n":"/3303/0"},{"n":"/3/0/7/1","v":4200}]'
    values, deletes = senml_json.decode_composite_write(payload, MODEL)
    assert deletes == [Path(3303, 0)]
    assert values == {
        Path(3, 0, 14): SingleResource(14, "+08:00", ResourceType.STRING),
        Path(3, 0, 7): MultipleResource(7, {1: 4200}, ResourceType.INTEGER),
    }


def test_plain_decode_composite_rejects_delete_records() -> None:
    with pytest.raises(CodecError):
        senml_json.decode_composite(b'[{"n":"/3303/0"}]', MODEL)


# ------------------------------------------------------------------ properties


@settings(derandomize=True)
@given(typed_nodes())
def test_every_node_kind_and_value_type_round_trips(case: tuple[Node, Path]) -> None:
    node, path = case
    assert senml_json.decode(senml_json.encode(node, path, MODEL), path, MODEL) == node


@settings(derandomize=True)
@given(composites())
def test_composite_round_trips_with_and_without_requested_paths(nodes: dict[Path, Node]) -> None:
    payload = senml_json.encode_composite(nodes, MODEL)
    assert senml_json.decode_composite(payload, MODEL, paths=list(nodes)) == nodes
    by_resource = senml_json.decode_composite(payload, MODEL)
    assert all(path.is_resource for path in by_resource)


@settings(derandomize=True)
@given(st.sampled_from(SELF_TYPED).flatmap(lambda t: st.tuples(st.just(t), VALUES[t])))
def test_record_kind_types_values_the_model_does_not_know(case: tuple[ResourceType, object]) -> None:
    rtype, value = case
    path = Path(40000, 1, 2)
    payload = senml_json.encode(SingleResource(2, value, rtype), path, EMPTY_MODEL)  # type: ignore[arg-type]
    assert senml_json.decode(payload, path, EMPTY_MODEL) == SingleResource(2, value, rtype)  # type: ignore[arg-type]


@settings(derandomize=True)
@given(st.lists(st.sampled_from(["/3/0/0", "/3/0", "/1", "/", "/3/0/7/1"]).map(Path.parse), max_size=5))
def test_request_paths_round_trip(paths: list[Path]) -> None:
    assert senml_json.decode_paths(senml_json.encode_paths(paths)) == paths


huge_numbers = st.sampled_from([2**63, 2**64, -(10**400), 10**400, 1e308])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_numbers
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
senml_labels = st.sampled_from(["bn", "bt", "n", "t", "v", "vs", "vb", "vd", "vlo", "x_", "u"])
name_texts = st.sampled_from(["/3/0/", "0", "7/0", "/3303/0/5700", "", "/", "//", "a", "/3/0/9"])
junk_records = st.dictionaries(senml_labels, json_scalars | name_texts, max_size=5)
junk_packs = st.lists(junk_records, max_size=5).map(lambda r: json.dumps(r).encode()) | st.binary(max_size=40)


@settings(max_examples=300, derandomize=True)
@given(
    junk_packs, st.sampled_from([Path(3), Path(3, 0), Path(3, 0, 7), Path(3, 0, 7, 0), Path(3303, 0, 5700)])
)
def test_decoders_raise_only_codec_error_on_junk(payload: bytes, path: Path) -> None:
    for decode in (
        lambda: senml_json.decode(payload, path, MODEL),
        lambda: senml_json.decode_composite(payload, MODEL),
        lambda: senml_json.decode_composite_write(payload, MODEL),
        lambda: senml_json.decode_timestamped(payload, path, MODEL, now=datetime(2024, 1, 1, tzinfo=UTC)),
        lambda: senml_json.decode_paths(payload),
    ):
        try:
            decode()
        except CodecError:
            pass
