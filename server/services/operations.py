"""Typed downlink operations: one small frozen record per LwM2M Device Management operation
(Core 1.1.1 §6.3), the counterpart of the typed uplink requests in `server.services.requests`.

An operation is also JSON-safe: `as_dict()` gives `{"kind": ..., "params": {...}}`, the form queue
mode persists and the cluster forwards between nodes, and `operation_from_dict` reads it back
(a bad field raises `BadArgument`). `DeviceManagement.perform` encodes each kind with one function.
Values to write travel as JSON entries (`values_to_json`): `{"path", "type", "value"}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from lwm2m.errors import InvalidPath
from lwm2m.path import Path
from server.services.errors import BadArgument

ValueEntry = Mapping[str, Any]  # {"path": "/3/0/13", "type": "time", "value": 1700000000}


def _with_format(params: dict[str, Any], content_format: int | None) -> dict[str, Any]:
    if content_format is not None:
        params["content_format"] = int(content_format)
    return params


class _Operation:
    """What every operation has: its kind and its JSON-safe parameters."""

    __slots__ = ()
    kind: ClassVar[str]

    @property
    def params(self) -> dict[str, Any]:
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        """The JSON-safe form (what queue mode stores and the cluster forwards)."""
        return {"kind": self.kind, "params": self.params}


@dataclass(frozen=True, slots=True)
class Read(_Operation):
    kind: ClassVar[str] = "read"
    path: Path
    content_format: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        return _with_format({"path": str(self.path)}, self.content_format)


@dataclass(frozen=True, slots=True)
class Discover(_Operation):
    kind: ClassVar[str] = "discover"
    path: Path

    @property
    def params(self) -> dict[str, Any]:
        return {"path": str(self.path)}


@dataclass(frozen=True, slots=True)
class Write(_Operation):
    """Replace (`PUT`) or, with `replace=False`, partial update (`POST` on the instance)."""

    kind: ClassVar[str] = "write"
    path: Path
    values: tuple[ValueEntry, ...]
    replace: bool = True
    content_format: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        params = {"path": str(self.path), "values": list(self.values), "replace": self.replace}
        return _with_format(params, self.content_format)


@dataclass(frozen=True, slots=True)
class WriteAttributes(_Operation):
    """pmin, pmax, gt, lt, st, ...; a None value removes the attribute."""

    kind: ClassVar[str] = "write_attributes"
    path: Path
    attributes: tuple[tuple[str, float | int | None], ...] = ()

    @property
    def params(self) -> dict[str, Any]:
        return {"path": str(self.path), "attributes": dict(self.attributes)}


@dataclass(frozen=True, slots=True)
class Execute(_Operation):
    kind: ClassVar[str] = "execute"
    path: Path
    arguments: str = ""

    @property
    def params(self) -> dict[str, Any]:
        return {"path": str(self.path), "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class Create(_Operation):
    """Create an instance of the object at `path`; the client picks the id when it is None."""

    kind: ClassVar[str] = "create"
    path: Path
    values: tuple[ValueEntry, ...]
    instance_id: int | None = None
    content_format: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        params = {"path": str(self.path), "values": list(self.values), "instance_id": self.instance_id}
        return _with_format(params, self.content_format)


@dataclass(frozen=True, slots=True)
class Delete(_Operation):
    kind: ClassVar[str] = "delete"
    path: Path

    @property
    def params(self) -> dict[str, Any]:
        return {"path": str(self.path)}


@dataclass(frozen=True, slots=True)
class ReadComposite(_Operation):
    """Read-Composite (1.1, `FETCH` on the root); SenML CBOR unless a format is given."""

    kind: ClassVar[str] = "read_composite"
    paths: tuple[Path, ...]
    content_format: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        return _with_format({"paths": [str(p) for p in self.paths]}, self.content_format)


@dataclass(frozen=True, slots=True)
class WriteComposite(_Operation):
    """Write-Composite (1.1, `iPATCH` on the root); SenML CBOR unless a format is given."""

    kind: ClassVar[str] = "write_composite"
    values: tuple[ValueEntry, ...]
    content_format: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        return _with_format({"values": list(self.values)}, self.content_format)


Operation = (
    Read | Discover | Write | WriteAttributes | Execute | Create | Delete | ReadComposite | WriteComposite
)


# --- reading the JSON-safe form back -------------------------------------------------------------


def _path(text: Any) -> Path:
    try:
        return Path.parse(text)
    except (InvalidPath, TypeError, AttributeError) as exc:
        raise BadArgument(str(exc)) from exc


def _format(params: Mapping[str, Any]) -> int | None:
    value = params.get("content_format")
    return None if value is None else int(value)


def _entries(params: Mapping[str, Any]) -> tuple[ValueEntry, ...]:
    values = params.get("values")
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        raise BadArgument("bad value list: no values")
    return tuple(values)


def _read(p: Mapping[str, Any]) -> Operation:
    return Read(_path(p.get("path", "/")), _format(p))


def _discover(p: Mapping[str, Any]) -> Operation:
    return Discover(_path(p.get("path", "/")))


def _write(p: Mapping[str, Any]) -> Operation:
    return Write(_path(p.get("path", "/")), _entries(p), bool(p.get("replace", True)), _format(p))


def _write_attributes(p: Mapping[str, Any]) -> Operation:
    attributes = p.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise BadArgument("attributes must be a mapping")
    return WriteAttributes(_path(p.get("path", "/")), tuple(attributes.items()))


def _execute(p: Mapping[str, Any]) -> Operation:
    return Execute(_path(p.get("path", "/")), str(p.get("arguments") or ""))


def _create(p: Mapping[str, Any]) -> Operation:
    instance_id = p.get("instance_id")
    return Create(
        _path(p.get("path", "/")), _entries(p), None if instance_id is None else int(instance_id), _format(p)
    )


def _delete(p: Mapping[str, Any]) -> Operation:
    return Delete(_path(p.get("path", "/")))


def _read_composite(p: Mapping[str, Any]) -> Operation:
    paths = p.get("paths")
    if not isinstance(paths, Sequence) or isinstance(paths, str | bytes):
        raise BadArgument("read_composite takes a list of paths")
    return ReadComposite(tuple(_path(x) for x in paths), _format(p))


def _write_composite(p: Mapping[str, Any]) -> Operation:
    return WriteComposite(_entries(p), _format(p))


_READERS: dict[str, Callable[[Mapping[str, Any]], Operation]] = {
    Read.kind: _read,
    Discover.kind: _discover,
    Write.kind: _write,
    WriteAttributes.kind: _write_attributes,
    Execute.kind: _execute,
    Create.kind: _create,
    Delete.kind: _delete,
    ReadComposite.kind: _read_composite,
    WriteComposite.kind: _write_composite,
}


def operation_from_dict(kind: str, params: Mapping[str, Any]) -> Operation:
    """The operation `as_dict` wrote; BadArgument for an unknown kind or a bad parameter."""
    reader = _READERS.get(kind)
    if reader is None:
        raise BadArgument(f"unknown operation {kind!r}")
    try:
        return reader(params)
    except (TypeError, ValueError) as exc:
        raise BadArgument(f"bad {kind} parameters: {exc}") from exc
