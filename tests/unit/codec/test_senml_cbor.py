"""SenML CBOR (112): RFC 8428 §6 and OMA TS LwM2M Core 1.1.1 §7.4.6.

Fixed vectors are the CBOR diagnostic examples written out byte by byte (labels bn -2 = 0x21,
n 0 = 0x00, v 2 = 0x02, vs 3 = 0x03, vd 8 = 0x08, vlo as the text "vlo").
"""

from __future__ import annotations

from datetime import UTC, datetime

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import senml_cbor
from lwm2m.errors import CodecError
from lwm2m.node import MultipleResource, Node, ObjectInstance, ObjectLink, ResourceInstance, SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path
from tests.unit.codec.test_senml_json import EMPTY_MODEL, MODEL, SELF_TYPED, VALUES, composites, typed_nodes

OMA = b"Open Mobile Alliance".hex()

# Core 1.1.1 §7.4.6, Read-Composite answer:
#   [{-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"}, {0: "9", 2: 95}, {-2: "/1/0/", 0: "1", 2: 86400}]
READ_COMPOSITE_RESPONSE = bytes.fromhex(
    "83 a3 21 65 2f332f302f 00 6130 03 74"
    + OMA
    + " a2 00 6139 02 185f a3 21 65 2f312f302f 00 6131 02 1a00015180"
)
# Read-Composite request: [{0: "/3/0/0"}, {0: "/1/0/1"}]
READ_COMPOSITE_REQUEST = bytes.fromhex("82 a1 00 66 2f332f302f30 a1 00 66 2f312f302f31")


def response_nodes() -> dict[Path, Node]:
    return {
        Path(3, 0): ObjectInstance(
            0,
            {
                0: SingleResource(0, "Open Mobile Alliance", ResourceType.STRING),
                9: SingleResource(9, 95, ResourceType.INTEGER),
            },
        ),
        Path(1, 0): ObjectInstance(0, {1: SingleResource(1, 86400, ResourceType.INTEGER)}),
    }


def test_read_composite_response_encodes_to_spec_bytes() -> None:
    assert senml_cbor.encode_composite(response_nodes(), MODEL) == READ_COMPOSITE_RESPONSE


def test_read_composite_response_decodes_under_requested_paths() -> None:
    decoded = senml_cbor.decode_composite(READ_COMPOSITE_RESPONSE, MODEL, paths=[Path(3, 0), Path(1, 0)])
    assert decoded == response_nodes()


def test_read_composite_request_paths_round_trip() -> None:
    paths = [Path(3, 0, 0), Path(1, 0, 1)]
    assert senml_cbor.encode_paths(paths) == READ_COMPOSITE_REQUEST
    assert senml_cbor.decode_paths(READ_COMPOSITE_REQUEST) == paths


def test_opaque_is_a_byte_string_and_objlnk_uses_the_vlo_text_label() -> None:
    opaque = ResourceInstance(0, b"\x01\x02", ResourceType.OPAQUE)
    assert senml_cbor.encode(opaque, Path(19, 0, 0, 0), MODEL) == bytes.fromhex(
        "81a22169" + b"/19/0/0/0".hex() + "08420102"
    )
    link = MultipleResource(22, {0: ObjectLink(3, 0)}, ResourceType.OBJLNK)
    assert senml_cbor.encode(link, Path(3, 0, 22), MODEL) == bytes.fromhex(
        "81a32168" + b"/3/0/22/".hex() + "00613063" + b"vlo".hex() + "63" + b"3:0".hex()
    )


def test_half_precision_float_decodes() -> None:
    payload = bytes.fromhex("81a2006c" + b"/3303/0/5700".hex() + "02f94d60")
    assert senml_cbor.decode(payload, Path(3303, 0, 5700), MODEL) == SingleResource(
        5700, 21.5, ResourceType.FLOAT
    )


def test_base_time_and_time_give_measurement_times() -> None:
    payload = cbor2.dumps([{-2: "/3303/0/5700", -3: 1320067464, 2: 22.4}, {6: 60, 2: 22.9}])
    values = senml_cbor.decode_timestamped(payload, Path(3303, 0, 5700), MODEL)
    assert [(v.value, v.time) for v in values] == [
        (22.4, datetime(2011, 10, 31, 13, 24, 24, tzinfo=UTC)),
        (22.9, datetime(2011, 10, 31, 13, 25, 24, tzinfo=UTC)),
    ]


def test_write_composite_record_without_value_means_delete() -> None:
    payload = cbor2.dumps([{0: "/3/0/14", 3: "+08:00"}, {0: "/3303/0"}])
    values, deletes = senml_cbor.decode_composite_write(payload, MODEL)
    assert values == {Path(3, 0, 14): SingleResource(14, "+08:00", ResourceType.STRING)}
    assert deletes == [Path(3303, 0)]


def test_unused_senml_labels_are_ignored() -> None:
    payload = cbor2.dumps([{-1: 10, 0: "/3303/0/5700", 1: "Cel", 2: 20.0}])
    assert senml_cbor.decode(payload, Path(3303, 0, 5700), MODEL).value == 20.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "payload",
    [
        cbor2.dumps([{0: "/3/0/0", 3: b"bytes"}]),  # vs as a byte string
        cbor2.dumps([{0: "/19/0/0/0", 8: "text"}]),  # vd as text
        cbor2.dumps([{0: "/3/0/9", 2: True}]),  # a boolean is not a number
        cbor2.dumps([{0: "/3/0/9", 2.0: 5}]),  # a float label is not a label
        cbor2.dumps([{0: "/3/0/9", 2: float("inf")}]),
        cbor2.dumps([{0: "/3/0/9", 2: 5}]) + b"\x00",  # trailing bytes
        cbor2.dumps({0: "/3/0/9", 2: 5}),  # not an array
        cbor2.dumps([{0: "/3/0/9", 2: 5, "x_": 1}]),  # must-understand label
        bytes.fromhex("9f"),  # truncated indefinite array
        b"",
    ],
)
def test_malformed_payload_raises_codec_error(payload: bytes) -> None:
    with pytest.raises(CodecError):
        senml_cbor.decode(payload, Path(3, 0, 9), MODEL)


@settings(derandomize=True)
@given(typed_nodes())
def test_every_node_kind_and_value_type_round_trips(case: tuple[Node, Path]) -> None:
    node, path = case
    assert senml_cbor.decode(senml_cbor.encode(node, path, MODEL), path, MODEL) == node


@settings(derandomize=True)
@given(composites())
def test_composite_round_trips_under_requested_paths(nodes: dict[Path, Node]) -> None:
    payload = senml_cbor.encode_composite(nodes, MODEL)
    assert senml_cbor.decode_composite(payload, MODEL, paths=list(nodes)) == nodes


@settings(derandomize=True)
@given(st.sampled_from(SELF_TYPED).flatmap(lambda t: st.tuples(st.just(t), VALUES[t])))
def test_record_kind_types_values_the_model_does_not_know(case: tuple[ResourceType, object]) -> None:
    rtype, value = case
    path = Path(40000, 1, 2)
    payload = senml_cbor.encode(SingleResource(2, value, rtype), path, EMPTY_MODEL)  # type: ignore[arg-type]
    assert senml_cbor.decode(payload, path, EMPTY_MODEL) == SingleResource(2, value, rtype)  # type: ignore[arg-type]


cbor_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**64, -(10**400), 10**400])
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.sampled_from(["/3/0/", "0", "7/0", "/3303/0/5700", "", "/", "1:2"])
)
cbor_labels = st.sampled_from([-3, -2, 0, 2, 3, 4, 6, 8, "vlo", "x_", 1, 99])
junk_packs = st.lists(st.dictionaries(cbor_labels, cbor_scalars, max_size=5), max_size=5).map(
    cbor2.dumps
) | st.binary(max_size=40)


@settings(max_examples=300, derandomize=True)
@given(
    junk_packs, st.sampled_from([Path(3), Path(3, 0), Path(3, 0, 7), Path(3, 0, 7, 0), Path(3303, 0, 5700)])
)
def test_decoders_raise_only_codec_error_on_junk(payload: bytes, path: Path) -> None:
    for decode in (
        lambda: senml_cbor.decode(payload, path, MODEL),
        lambda: senml_cbor.decode_composite(payload, MODEL),
        lambda: senml_cbor.decode_composite_write(payload, MODEL),
        lambda: senml_cbor.decode_timestamped(payload, path, MODEL, now=datetime(2024, 1, 1, tzinfo=UTC)),
        lambda: senml_cbor.decode_paths(payload),
    ):
        try:
            decode()
        except CodecError:
            pass
