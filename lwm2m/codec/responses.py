"""Decoding a client's answer to a Device Management request: payload + Content-Format in, typed
nodes or links out (pure; the server's device management turns a `CodecError` into its own error).

* `answer_format` — the format of an answer that names none: plain text for a resource (the
  LwM2M 1.0 default), TLV above it.
* `decode_answer` — the node a Read (or Observe) answered. Many modules answer a multiple resource
  (/19/0/0 above all) with one plain value: a single-resource TLV, text or opaque. Carriers accept
  that as instance 0, and so does this decoder.
* `decode_composite_answer` — the nodes of a Read-Composite answer.
* `decode_links` — the links of a Discover answer (CoRE link format).
"""

from __future__ import annotations

from lwm2m import codec
from lwm2m.codec import tlv
from lwm2m.codec.link_format import Link, parse_links
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import MultipleResource, Node, ResourceInstance
from lwm2m.numbers import ContentFormat, ResourceType
from lwm2m.path import Path


def answer_format(content_format: int | None, path: Path) -> int:
    """The answer's Content-Format, or the default of an answer to `path` that names none."""
    if content_format is not None:
        return content_format
    return ContentFormat.TEXT if path.depth >= 3 else ContentFormat.TLV


def format_name(fmt: int) -> str:
    """`content format 11542 TLV`, for error messages."""
    try:
        return f"content format {fmt} {ContentFormat(fmt).name}"
    except ValueError:
        return f"content format {fmt}, which the server cannot decode"


def decode_answer(payload: bytes, content_format: int | None, path: Path, model: ModelRegistry) -> Node:
    """The node an answer to a Read of `path` carries; `CodecError` when it does not decode."""
    fmt = answer_format(content_format, path)
    try:
        return codec.decode(payload, path, fmt, model)
    except CodecError:
        lenient = single_value_of_multiple(payload, path, fmt, model)
        if lenient is not None:
            return lenient
        raise


def single_value_of_multiple(payload: bytes, path: Path, fmt: int, model: ModelRegistry) -> Node | None:
    """A multiple resource answered with one plain value, as instance 0 (None when it is not)."""
    if path.depth != 3 or path.object_id is None or path.resource_id is None:
        return None
    if not model.is_multiple(path.object_id, path.resource_id):
        return None
    rtype = model.resource_type(path.object_id, path.resource_id)
    try:
        if ContentFormat(fmt).canonical is ContentFormat.TLV:
            entries = tlv.parse_tlvs(payload)
            if (
                len(entries) != 1
                or entries[0].id != path.resource_id
                or entries[0].kind != tlv.TlvKind.RESOURCE_VALUE
            ):
                return None
            value = tlv.decode_value(entries[0].value, rtype)
        elif rtype is ResourceType.OPAQUE and ContentFormat(fmt).canonical in (
            ContentFormat.TEXT,
            ContentFormat.OPAQUE,
        ):
            value = payload  # what such modules send is the data itself, not base64
        else:
            instance = codec.decode(payload, path.child(0), fmt, model)
            if not isinstance(instance, ResourceInstance):
                return None
            value = instance.value
    except (CodecError, ValueError):
        return None
    return MultipleResource(path.resource_id, {0: value}, rtype)


def decode_composite_answer(payload: bytes, content_format: int, model: ModelRegistry) -> dict[Path, Node]:
    """The nodes of a Read-Composite answer, by path; `CodecError` when it does not decode."""
    return codec.decode_composite(payload, content_format, model)


def decode_links(payload: bytes) -> list[Link]:
    """The links of a Discover answer; `CodecError` when it is not link format."""
    return parse_links(payload)
