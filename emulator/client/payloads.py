"""The payload side of the client's CoAP face (emulator.client.resources): request payloads
decoded and answers encoded with the codecs of `lwm2m.codec` in the format the request, the
handler or the settings name, with the carriers' octet-stream convention for multiple opaque
resources, and the errors a request is answered with (`RequestError` -> 4.00, 4.04, 4.06, 4.15).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiocoap import Message
from aiocoap.numbers.codes import Code

from emulator.client.handler import ReadResult
from emulator.client.settings import ClientSettings
from lwm2m import codec
from lwm2m.errors import CodecError, InvalidPath, UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import MultipleResource, Node, ResourceInstance, SingleResource
from lwm2m.numbers import CoapCode, ContentFormat, ResourceType
from lwm2m.path import Path


class RequestError(Exception):
    """A request answered with an error code (raised inside the translation, rendered at its edge)."""

    def __init__(self, code: CoapCode, detail: str = "") -> None:
        self.code = code
        super().__init__(f"{code.dotted} {detail}".strip())


def response(code: CoapCode, payload: bytes = b"", content_format: int | None = None) -> Message:
    message = Message(code=Code(int(code)), payload=payload)
    if content_format is not None:
        message.opt.content_format = content_format
    return message


class PayloadCodec:
    """Decoding and encoding with the client's settings and object model (a base of
    `Lwm2mResource`)."""

    settings: ClientSettings
    model: ModelRegistry

    def _decode_paths(self, request: Message) -> list[Path]:
        fmt = content_format_of(request)
        try:
            return codec.decode_paths(request.payload, fmt)
        except UnsupportedContentFormat as exc:
            raise RequestError(CoapCode.UNSUPPORTED_CONTENT_FORMAT) from exc
        except CodecError as exc:
            raise RequestError(CoapCode.BAD_REQUEST, str(exc)) from exc

    def _composite_format(self, request: Message) -> int:
        if request.opt.accept is not None:
            return int(request.opt.accept)
        return content_format_of(request)

    def _composite_response(self, nodes: Mapping[Path, Node], fmt: int) -> Message:
        try:
            payload = codec.encode_composite(nodes, fmt, self.model)
        except CodecError as exc:
            raise RequestError(CoapCode.NOT_ACCEPTABLE, str(exc)) from exc
        return response(CoapCode.CONTENT, payload, fmt)

    # -- codecs -----------------------------------------------------------------------------------

    def _read_format(self, result: ReadResult, accept: int | None) -> int:
        if accept is not None:
            return int(accept)
        if result.content_format is not None:
            return result.content_format
        node = result.node
        if isinstance(node, SingleResource | ResourceInstance):
            if self.settings.preferred_content_format is not None:
                return self.settings.preferred_content_format
            return ContentFormat.OPAQUE if node.type is ResourceType.OPAQUE else ContentFormat.TEXT
        return self.settings.container_format

    def _encode(self, node: Node, path: Path, fmt: int) -> bytes:
        if int(fmt) == ContentFormat.OPAQUE and path.depth == 3 and self._is_multiple_opaque(path):
            # The counterpart of `_decode`: a carrier that reads application data as octet-stream
            # (Huawei observes /19/0/0 with Accept 42, manual §5.6) gets instance 0 as one value;
            # no value yet (the handler's empty placeholder) is an empty payload.
            value = node.instances.get(0, b"") if isinstance(node, MultipleResource) else None
            if isinstance(node, SingleResource):
                value = node.value
            if value == "":
                value = b""
            if isinstance(value, bytes | bytearray):
                return bytes(value)
        try:
            return codec.encode(node, path, fmt, self.model)
        except CodecError as exc:
            raise RequestError(CoapCode.NOT_ACCEPTABLE, str(exc)) from exc

    def _decode(self, request: Message, path: Path) -> Node:
        fmt = request.opt.content_format
        if fmt is None:
            fmt = ContentFormat.TEXT if path.depth >= 3 else self.settings.container_format
        if int(fmt) == ContentFormat.OPAQUE and path.depth == 3 and self._is_multiple_opaque(path):
            # Carriers write application data (`PUT /19/1/0`, octet-stream) to a multiple opaque
            # resource as one value: it is instance 0.
            assert path.resource_id is not None
            return MultipleResource(path.resource_id, {0: bytes(request.payload)}, ResourceType.OPAQUE)
        try:
            return codec.decode(request.payload, path, int(fmt), self.model)
        except UnsupportedContentFormat as exc:
            raise RequestError(CoapCode.UNSUPPORTED_CONTENT_FORMAT) from exc
        except CodecError as exc:
            raise RequestError(CoapCode.BAD_REQUEST, str(exc)) from exc

    def _is_multiple_opaque(self, path: Path) -> bool:
        assert path.object_id is not None and path.resource_id is not None
        definition = self.model.get_resource(path.object_id, path.resource_id)
        return definition is not None and definition.multiple and definition.type is ResourceType.OPAQUE


def path_of(segments: tuple[str, ...]) -> Path:
    try:
        return Path.parse("/".join(segments))
    except InvalidPath as exc:
        raise RequestError(CoapCode.NOT_FOUND, str(exc)) from exc


def content_format_of(request: Message) -> int:
    if request.opt.content_format is None:
        raise RequestError(CoapCode.UNSUPPORTED_CONTENT_FORMAT, "no content format")
    return int(request.opt.content_format)


def error_code(code: CoapCode) -> CoapCode:
    """A handler that answered 2.05 without a node is an internal error."""
    return CoapCode.INTERNAL_SERVER_ERROR if code.is_success else code
