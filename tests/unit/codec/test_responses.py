"""Decoding the answers to Device Management requests (lwm2m.codec.responses)."""

from __future__ import annotations

import pytest

from lwm2m.codec import responses, tlv
from lwm2m.errors import CodecError
from lwm2m.node import MultipleResource, SingleResource
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path
from tests.unit.codec.typed_model import MODEL


def test_an_answer_without_format_is_text_for_a_resource_and_tlv_above() -> None:
    assert responses.answer_format(None, Path.parse("/9000/0/2")) == ContentFormat.TEXT
    assert responses.answer_format(None, Path.parse("/9000/0")) == ContentFormat.TLV
    assert (
        responses.answer_format(ContentFormat.SENML_CBOR, Path.parse("/9000/0")) == ContentFormat.SENML_CBOR
    )


def test_a_text_answer_decodes_to_the_typed_resource() -> None:
    node = responses.decode_answer(b"42", None, Path.parse("/9000/0/2"), MODEL)
    assert node == SingleResource(2, 42, ResourceType.INTEGER)


def test_a_multiple_resource_answered_with_one_plain_value_is_instance_0() -> None:
    node = responses.decode_answer(b"\x01\x02", ContentFormat.OPAQUE, Path.parse("/9000/0/106"), MODEL)
    assert node == MultipleResource(106, {0: b"\x01\x02"}, ResourceType.OPAQUE)
    single_tlv = tlv.encode(SingleResource(102, 7, ResourceType.INTEGER), Path.parse("/9000/0/102"), MODEL)
    node = responses.decode_answer(single_tlv, ContentFormat.TLV, Path.parse("/9000/0/102"), MODEL)
    assert node == MultipleResource(102, {0: 7}, ResourceType.INTEGER)


def test_an_answer_that_does_not_decode_raises_codec_error() -> None:
    with pytest.raises(CodecError):
        responses.decode_answer(b"not a number", None, Path.parse("/9000/0/2"), MODEL)


def test_format_names_for_messages() -> None:
    assert responses.format_name(ContentFormat.TLV) == "content format 11542 TLV"
    assert "cannot decode" in responses.format_name(99)


def test_links_of_a_discover_answer() -> None:
    links = responses.decode_links(b"</3/0>,</3/0/1>;dim=2")
    assert [link.target for link in links] == ["/3/0", "/3/0/1"]
