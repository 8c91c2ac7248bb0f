"""Device Management interface, server side (Core 1.1.1 §6.3 and §6.4; Transport §6.4.2-3).

Read, Discover, Write (replace `PUT` / partial update `POST`), Write-Attributes, Execute, Create,
Delete, and the 1.1 composite operations (Read-Composite `FETCH`, Write-Composite `iPATCH`).
Each operation is a typed, JSON-safe record (`server.services.operations`) so that queue mode can
persist it, and one coroutine here encodes and performs it against a registration through the
listener it registered on; answers are decoded by `lwm2m.codec.responses`.

Content formats: a caller may ask for one (plain text, 0, included), and that wins. Otherwise the
server chooses from what the client declared at registration (`lwm2m=` and the root link's `ct=`):
reads and observes ask (Accept) a LwM2M 1.0 client for TLV (objects and instances; a resource in
the client's default) and a 1.1+ client for its declared format (by READ_PREFERENCE when it lists
several), SenML CBOR when it declares none; writes use TLV for 1.0 clients and for 1.1+ clients
that list it, else the declared SenML or LwM2M CBOR/JSON format. A partial update is a POST on the
object instance. Whatever Content-Format an answer carries is decoded; an answer that does not
decode, or answers another path, is an `UndecodableAnswer`, never a made-up device error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lwm2m import codec
from lwm2m.codec import responses
from lwm2m.codec.link_format import Link
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
    Value,
    build_node,
    iter_values,
)
from lwm2m.numbers import CoapCode, ContentFormat, ResourceType
from lwm2m.path import Path
from lwm2m.values import value_from_jsonable, value_to_jsonable
from server.domain import Registration
from server.event_kinds import EventKind
from server.events import EventBus
from server.services.errors import BadArgument, RequestFailed, UndecodableAnswer
from server.services.operations import (
    Create,
    Delete,
    Discover,
    Execute,
    Operation,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
    WriteComposite,
)
from server.services.ports import Transport
from server.services.requests import Downlink, DownlinkResponse
from server.store.repository import Store, StoredValue

# The node formats a 1.1+ client may declare (`ct=`), in the order we prefer them for reads.
READ_PREFERENCE = (
    ContentFormat.SENML_CBOR,
    ContentFormat.SENML_JSON,
    ContentFormat.LWM2M_CBOR,
    ContentFormat.TLV,
    ContentFormat.TLV_LEGACY,
    ContentFormat.LWM2M_JSON,
    ContentFormat.LWM2M_JSON_LEGACY,
)
ATTRIBUTE_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax")


def _given_format(given: int | None, otherwise: int | None) -> Any:
    """The caller's content format (0, plain text, is one), else `otherwise`."""
    return otherwise if given is None else given


def values_to_json(node: Node, path: Path) -> list[dict[str, Any]]:
    return [
        {"path": str(p), "type": t.value, "value": value_to_jsonable(v)}
        for p, v, t in iter_values(node, path)
    ]


def values_from_json(entries: Sequence[Mapping[str, Any]]) -> list[tuple[Path, Value, ResourceType]]:
    try:
        return [
            (Path.parse(e["path"]), value_from_jsonable(e["value"]), ResourceType(e["type"])) for e in entries
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadArgument(f"bad value list: {exc}") from exc


def coerce_value(value: Any, rtype: ResourceType) -> Value:
    """Turn a plain Python (or JSON) value into the resource's declared type."""
    from datetime import UTC, datetime

    from lwm2m.node import ObjectLink

    try:
        if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER):
            if isinstance(value, bool):
                return int(value)
            return int(value)
        if rtype is ResourceType.FLOAT:
            return float(value)
        if rtype is ResourceType.BOOLEAN:
            if isinstance(value, str):
                if value.lower() in ("1", "true"):
                    return True
                if value.lower() in ("0", "false"):
                    return False
                raise ValueError(value)
            return bool(value)
        if rtype is ResourceType.OPAQUE:
            if isinstance(value, bytes):
                return value
            if isinstance(value, str):
                return bytes.fromhex(value)
            raise ValueError(value)
        if rtype is ResourceType.TIME:
            if isinstance(value, datetime):
                return value
            return datetime.fromtimestamp(int(value), tz=UTC)
        if rtype is ResourceType.OBJLNK:
            return value if isinstance(value, ObjectLink) else ObjectLink.parse(str(value))
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if not isinstance(value, str | int | float):
            raise TypeError(f"a {type(value).__name__}")
        return str(value)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise BadArgument(f"{_short(value)} is not a valid {rtype.value}") from exc


def _id(key: Any, what: str) -> int:
    """A resource (instance) id given as a mapping key: 0..65535, as a number or ASCII digits."""
    text = str(key)
    if isinstance(key, bool) or not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise BadArgument(f"{_short(key)} is not a {what}")
    return int(text)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class DeviceManagement:
    def __init__(
        self, model: ModelRegistry, store: Store, bus: EventBus, default_timeout: float = 25.0
    ) -> None:
        self.model = model
        self.store = store
        self.bus = bus
        self.default_timeout = default_timeout

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def segments(reg: Registration, path: Path) -> tuple[str, ...]:
        root = tuple(s for s in reg.root_path.split("/") if s)
        return root + tuple(path.segments)

    @staticmethod
    def read_format(reg: Registration, path: Path) -> int | None:
        """The Accept of a Read or Observe the caller gave no format for (module docstring). A
        1.0 client is asked for TLV above the resource level only: it answers a resource in text
        or opaque by default, and OneMO modules answer the Observe of a resource the MCU has no
        value for yet with an empty 2.05 whatever the Accept."""
        if reg.lwm2m_version == "1.0":
            return ContentFormat.TLV if path.depth < 3 else None
        declared = reg.objects.content_formats
        for fmt in READ_PREFERENCE:
            if fmt in declared:
                return int(fmt)
        return ContentFormat.SENML_CBOR

    def write_format(self, reg: Registration, node: Node) -> int:
        formats = reg.objects.content_formats
        if reg.lwm2m_version == "1.0" or not formats or ContentFormat.TLV in formats:
            return ContentFormat.TLV
        for fmt in (
            ContentFormat.SENML_CBOR,
            ContentFormat.SENML_JSON,
            ContentFormat.LWM2M_CBOR,
            ContentFormat.LWM2M_JSON,
        ):
            if fmt in formats:
                return int(fmt)
        return ContentFormat.TLV

    def decode_response(self, response: DownlinkResponse, path: Path) -> Node:
        """The node an answer to a Read (or Observe) of `path` carries (`lwm2m.codec.responses`);
        UndecodableAnswer when it does not decode."""
        try:
            return responses.decode_answer(response.payload, response.content_format, path, self.model)
        except CodecError as exc:
            fmt = responses.answer_format(response.content_format, path)
            raise UndecodableAnswer(
                f"the answer to {path} ({responses.format_name(fmt)}) does not decode: {exc}"
            ) from exc

    @staticmethod
    def _check(response: DownlinkResponse, expected: Sequence[CoapCode]) -> None:
        if response.code not in expected:
            detail = response.payload.decode("utf-8", "replace")[:80] if response.payload else ""
            raise RequestFailed(response.code, detail)

    async def record_node(self, endpoint: str, node: Node, path: Path, source: str) -> list[StoredValue]:
        values = [StoredValue(str(p), t.value, value_to_jsonable(v)) for p, v, t in iter_values(node, path)]
        await self.store.record_values(endpoint, values, source)
        return values

    def node_for_write(self, path: Path, value: Any) -> Node:
        """A node from what a caller passed: a Node as is, a mapping {resource id: value} for an
        instance, a list or dict {ri: value} for a multiple resource, or a plain value."""
        if isinstance(
            value, LwM2MObject | ObjectInstance | SingleResource | MultipleResource | ResourceInstance
        ):
            return value
        if path.depth == 2 and isinstance(value, Mapping):
            resources = {}
            for rid, raw in value.items():
                res_path = path.child(_id(rid, "resource id"))
                node = self.node_for_write(res_path, raw)
                assert isinstance(node, SingleResource | MultipleResource)
                resources[int(rid)] = node
            return ObjectInstance(path.instance_id or 0, resources)
        if path.depth == 3:
            assert path.object_id is not None and path.resource_id is not None
            rtype = self.model.resource_type(path.object_id, path.resource_id)
            if self.model.get_resource(path.object_id, path.resource_id) is None:
                rtype = ResourceType.OPAQUE if isinstance(value, bytes) else ResourceType.STRING
            multiple = self.model.is_multiple(path.object_id, path.resource_id)
            if isinstance(value, list | tuple) and multiple is not False:
                value = dict(enumerate(value))
            if isinstance(value, Mapping) and multiple is not False:
                return MultipleResource(
                    path.resource_id,
                    {_id(k, "resource instance id"): coerce_value(v, rtype) for k, v in value.items()},
                    rtype,
                )
            return SingleResource(path.resource_id, coerce_value(value, rtype), rtype)
        if path.depth == 4:
            assert path.object_id is not None and path.resource_id is not None
            rtype = self.model.resource_type(path.object_id, path.resource_id)
            return ResourceInstance(path.resource_instance_id or 0, coerce_value(value, rtype), rtype)
        raise BadArgument(f"cannot write {type(value).__name__} to {path}")

    # --- operations ------------------------------------------------------------------------------

    async def perform(
        self, transport: Transport, reg: Registration, op: Operation, timeout: float | None = None
    ) -> Any:
        """Run one operation; returns a JSON-safe result (what queue mode stores)."""
        timeout = self.default_timeout if timeout is None else timeout
        perform = _PERFORMERS.get(type(op))
        if perform is None:
            raise BadArgument(f"unknown operation {op!r}")
        return await perform(self, _Call(transport, reg, timeout), op)

    async def _read(self, call: _Call, op: Read) -> Any:
        reg, path = call.reg, op.path
        accept = _given_format(op.content_format, self.read_format(reg, path))
        response = await call.send(Downlink("GET", self.segments(reg, path), accept=accept))
        self._check(response, (CoapCode.CONTENT,))
        node = self.decode_response(response, path)
        await self.record_node(reg.endpoint, node, path, "read")
        self.bus.publish(
            EventKind.REQUEST_READ, reg.endpoint, path=str(path), values=values_to_json(node, path)
        )
        return {"node": values_to_json(node, path), "content_format": response.content_format}

    async def _discover(self, call: _Call, op: Discover) -> Any:
        reg, path = call.reg, op.path
        response = await call.send(Downlink("GET", self.segments(reg, path), accept=ContentFormat.LINK))
        self._check(response, (CoapCode.CONTENT,))
        try:
            links = responses.decode_links(response.payload)
        except CodecError as exc:
            raise UndecodableAnswer(f"the discover answer of {path} is not link format: {exc}") from exc
        result = [{"target": link.target, "params": dict(link.params)} for link in links]
        self.bus.publish(EventKind.REQUEST_DISCOVER, reg.endpoint, path=str(path), links=result)
        return {"links": result}

    async def _write(self, call: _Call, op: Write) -> Any:
        reg, path = call.reg, op.path
        entries = values_from_json(op.values)
        # A partial update is a POST on the object instance carrying only the resources it
        # changes (Core §5.4.3): a POST on a resource path is an Execute.
        target = path if op.replace or path.depth <= 2 else Path(path.object_id, path.instance_id)
        node = build_node(target, entries, self.model.is_multiple)
        fmt = _given_format(op.content_format, self.write_format(reg, node))
        try:
            payload = codec.encode(node, target, fmt, self.model)
        except CodecError as exc:
            raise BadArgument(str(exc)) from exc
        method = "PUT" if op.replace else "POST"
        response = await call.send(Downlink(method, self.segments(reg, target), payload, content_format=fmt))
        self._check(response, (CoapCode.CHANGED,))
        self.bus.publish(
            EventKind.REQUEST_WRITE,
            reg.endpoint,
            path=str(path),
            values=list(op.values),
            replace=method == "PUT",
        )
        return {"code": CoapCode.CHANGED.dotted}

    async def _write_attributes(self, call: _Call, op: WriteAttributes) -> Any:
        reg, path = call.reg, op.path
        query = []
        for name, value in op.attributes:
            if name not in ATTRIBUTE_NAMES:
                raise BadArgument(f"unknown attribute {name!r}")
            query.append(name if value is None else f"{name}={value}")
        response = await call.send(Downlink("PUT", self.segments(reg, path), query=tuple(query)))
        self._check(response, (CoapCode.CHANGED,))
        self.bus.publish(
            EventKind.REQUEST_WRITE_ATTRIBUTES, reg.endpoint, path=str(path), attributes=dict(op.attributes)
        )
        return {"code": CoapCode.CHANGED.dotted}

    async def _execute(self, call: _Call, op: Execute) -> Any:
        reg, path, args = call.reg, op.path, op.arguments
        response = await call.send(
            Downlink(
                "POST",
                self.segments(reg, path),
                args.encode(),
                content_format=ContentFormat.TEXT if args else None,
            )
        )
        self._check(response, (CoapCode.CHANGED,))
        self.bus.publish(EventKind.REQUEST_EXECUTE, reg.endpoint, path=str(path), arguments=args)
        return {"code": CoapCode.CHANGED.dotted}

    async def _create(self, call: _Call, op: Create) -> Any:
        reg, path, instance_id = call.reg, op.path, op.instance_id
        inst_path = path.child(instance_id if instance_id is not None else 0)
        node = build_node(inst_path, values_from_json(op.values), self.model.is_multiple)
        fmt = _given_format(op.content_format, self.write_format(reg, node))
        # With an id, TLV wraps the resources in an object-instance TLV (encoded at the object
        # path); without one the client picks the id and gets bare resources. SenML names carry
        # the instance id in every record.
        tlv = ContentFormat(fmt).canonical is ContentFormat.TLV
        target = path if instance_id is not None and tlv else inst_path
        try:
            payload = codec.encode(node, target, fmt, self.model)
        except CodecError as exc:
            raise BadArgument(str(exc)) from exc
        response = await call.send(Downlink("POST", self.segments(reg, path), payload, content_format=fmt))
        self._check(response, (CoapCode.CREATED,))
        self.bus.publish(EventKind.REQUEST_CREATE, reg.endpoint, path=str(path), instance_id=instance_id)
        return {"code": CoapCode.CREATED.dotted, "instance_id": instance_id}

    async def _delete(self, call: _Call, op: Delete) -> Any:
        reg, path = call.reg, op.path
        response = await call.send(Downlink("DELETE", self.segments(reg, path)))
        self._check(response, (CoapCode.DELETED,))
        self.bus.publish(EventKind.REQUEST_DELETE, reg.endpoint, path=str(path))
        return {"code": CoapCode.DELETED.dotted}

    async def _read_composite(self, call: _Call, op: ReadComposite) -> Any:
        reg = call.reg
        fmt = op.content_format or ContentFormat.SENML_CBOR
        body = codec.encode_paths(list(op.paths), fmt)
        response = await call.send(Downlink("FETCH", _root(reg), body, content_format=fmt, accept=fmt))
        self._check(response, (CoapCode.CONTENT,))
        answer_format = response.content_format or fmt
        try:
            nodes = responses.decode_composite_answer(response.payload, answer_format, self.model)
        except CodecError as exc:
            raise UndecodableAnswer(
                f"the read-composite answer ({responses.format_name(answer_format)}) does not decode: {exc}"
            ) from exc
        values: list[dict[str, Any]] = []
        for node_path, node in nodes.items():
            await self.record_node(reg.endpoint, node, node_path, "read")
            values.extend(values_to_json(node, node_path))
        self.bus.publish(
            EventKind.REQUEST_READ_COMPOSITE, reg.endpoint, paths=[str(p) for p in op.paths], values=values
        )
        return {"node": values}

    async def _write_composite(self, call: _Call, op: WriteComposite) -> Any:
        reg = call.reg
        entries = values_from_json(op.values)
        fmt = op.content_format or ContentFormat.SENML_CBOR
        nodes: dict[Path, Node] = {
            e_path: build_node(e_path, [(e_path, v, t)], self.model.is_multiple) for e_path, v, t in entries
        }
        body = codec.encode_composite(nodes, fmt, self.model)
        response = await call.send(Downlink("IPATCH", _root(reg), body, content_format=fmt))
        self._check(response, (CoapCode.CHANGED,))
        self.bus.publish(EventKind.REQUEST_WRITE_COMPOSITE, reg.endpoint, values=list(op.values))
        return {"code": CoapCode.CHANGED.dotted}


@dataclass(frozen=True, slots=True)
class _Call:
    """One operation's way to its device: the transport, the registration, the time budget."""

    transport: Transport
    reg: Registration
    timeout: float

    async def send(self, downlink: Downlink) -> DownlinkResponse:
        return await self.transport.send(self.reg.address, downlink, self.timeout)


def _root(reg: Registration) -> tuple[str, ...]:
    return tuple(s for s in reg.root_path.split("/") if s)


# One function per operation kind (the encoders above), chosen by the operation's type.
_PERFORMERS: dict[type, Callable[[DeviceManagement, _Call, Any], Awaitable[Any]]] = {
    Read: DeviceManagement._read,
    Discover: DeviceManagement._discover,
    Write: DeviceManagement._write,
    WriteAttributes: DeviceManagement._write_attributes,
    Execute: DeviceManagement._execute,
    Create: DeviceManagement._create,
    Delete: DeviceManagement._delete,
    ReadComposite: DeviceManagement._read_composite,
    WriteComposite: DeviceManagement._write_composite,
}


def result_node(result: Mapping[str, Any], path: Path, model: ModelRegistry) -> Node:
    """Rebuild the typed node of a read result (see `DeviceManagement.perform`)."""
    return build_node(path, values_from_json(result["node"]), model.is_multiple)


def links_of(result: Mapping[str, Any]) -> list[Link]:
    return [Link(r["target"], tuple(r["params"].items())) for r in result["links"]]
