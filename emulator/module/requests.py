"""The module's `RequestHandler`: the server's requests as the MCU sees them (manual §3.10 - §3.18,
§5.1): `+MIPLREAD`, `+MIPLWRITE`, `+MIPLEXECUTE` wait for the MCU's `AT+MIPL…RSP`
(emulator.module.correlation); `+MIPLPARAMETER`, `+MIPLDISCOVER` and `+MIPLOBSERVE` are answered
by the module itself, from what the MCU declared and last gave. The module's own objects
(emulator.module.builtin) never reach the MCU.
"""

from __future__ import annotations

from collections.abc import Mapping

from emulator.client.handler import DiscoverResult, ReadResult
from emulator.module.builtin import BuiltinObjects
from emulator.module.core import NO_ANSWER, ModuleCore, Observation, ids
from emulator.module.correlation import PendingRequests
from emulator.module.device import AUTO_ACK_WRITES, DEFAULT_UNDECLARED_TYPE, REF, UNDECLARED_OPAQUE_TYPE
from emulator.module.operations import Kind, Part, build_node, covers
from emulator.module.values import format_for_write, value_size
from lwm2m.node import Node, SingleResource, iter_values
from lwm2m.numbers import CoapCode, ResourceType
from lwm2m.path import Path


class ServerRequests:
    """`RequestHandler` over the shared state."""

    def __init__(self, core: ModuleCore, pending: PendingRequests, builtin: BuiltinObjects) -> None:
        self._core = core
        self._pending = pending
        self._builtin = builtin

    async def read(self, path: Path) -> ReadResult:
        """+MIPLREAD: <ref>,<mid>,<objid>,<insid>,<resid>, answered by AT+MIPLREADRSP (§3.10)."""
        device = self._core.registered()
        if device is None or path.object_id is None:
            return ReadResult(CoapCode.NOT_FOUND if device else NO_ANSWER)
        builtin = self._builtin.node(path)
        if builtin is not None:
            return ReadResult(CoapCode.CONTENT, builtin)
        if not device.has_instance(path.object_id, path.instance_id) or path.is_resource_instance:
            return ReadResult(CoapCode.NOT_FOUND)
        mid = self._core.next_mid()
        outcome = await self._pending.enqueue(
            Kind.READ, path, [f"+MIPLREAD: {REF},{mid},{ids(path)}"], 0, mid
        )
        assert isinstance(outcome, ReadResult)
        return outcome

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        """+MIPLWRITE: <ref>,<mid>,<objid>,<insid>,<resid>,<type>,<len>,<value>,<flag>, one line per
        resource (flag 1 first, 2 middle, 0 last), answered by AT+MIPLWRITERSP (§3.12)."""
        device = self._core.registered()
        if device is None or path.object_id is None:
            return CoapCode.NOT_FOUND if device else NO_ANSWER
        if self._builtin.is_fota(device, path):
            return self._builtin.fota_write(path, node)
        if not device.has_instance(path.object_id, path.instance_id):
            return CoapCode.NOT_FOUND
        values = list(iter_values(node, path))
        if not values:
            return CoapCode.BAD_REQUEST
        mid = self._core.next_mid()
        lines: list[str] = []
        undeclared = UNDECLARED_OPAQUE_TYPE.get(device.platform, DEFAULT_UNDECLARED_TYPE)
        for n, (vpath, value, rtype) in enumerate(values):
            o, i, r = vpath.ids[:3]
            at_type, text = format_for_write(value, device.declared.get((o, i, r)), rtype, undeclared)
            flag = 0 if n == len(values) - 1 else (1 if n == 0 else 2)
            lines.append(f"+MIPLWRITE: {REF},{mid},{o},{i},{r},{int(at_type)},{len(text)},{text},{flag}")
        size = sum(value_size(v) for _p, v, _t in values)
        if path in AUTO_ACK_WRITES.get(device.platform, frozenset()):
            for line in lines:
                self._core.urc(line)
            return CoapCode.CHANGED
        outcome = await self._pending.enqueue(Kind.WRITE, path, lines, size, mid)
        assert isinstance(outcome, CoapCode)
        return outcome

    async def execute(self, path: Path, arguments: str) -> CoapCode:
        """+MIPLEXECUTE: <ref>,<mid>,<objid>,<insid>,<resid>[,<len>,"<cmd>"] (§3.14)."""
        device = self._core.registered()
        if device is None or not path.is_resource:
            return CoapCode.METHOD_NOT_ALLOWED if device else NO_ANSWER
        assert path.object_id is not None
        if self._builtin.is_fota(device, path):
            return self._builtin.fota_execute(path)
        if not device.has_instance(path.object_id, path.instance_id):
            return CoapCode.NOT_FOUND
        mid = self._core.next_mid()
        line = f"+MIPLEXECUTE: {REF},{mid},{ids(path)}"
        if arguments:
            line += f',{len(arguments)},"{arguments}"'
        outcome = await self._pending.enqueue(Kind.EXECUTE, path, [line], len(arguments.encode()), mid)
        assert isinstance(outcome, CoapCode)
        return outcome

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode:
        """+MIPLPARAMETER: <ref>,<mid>,<objid>,<insid>,<resid>,<len>,"<para>"; the module answers
        the platform itself (§3.16 note), after checking the note's rules. `<para>` lists the
        attributes in the order and spelling the server sent (LwM2M 1.0 `stp`, 1.1 `st`)."""
        core = self._core
        device = core.registered()
        if device is None or path.object_id is None:
            return NO_ANSWER
        if not device.has_instance(path.object_id, path.instance_id):
            return CoapCode.NOT_FOUND
        given = {k: v for k, v in attributes.items() if v is not None}
        if not valid_attributes(path, given):
            return CoapCode.BAD_REQUEST
        para = ";".join(f"{k}={v}" for k, v in given.items())
        core.attributes.setdefault(path, {}).update(given)
        for key, value in attributes.items():
            if value is None:
                core.attributes[path].pop(key, None)
        core.urc(f'+MIPLPARAMETER: {REF},{core.next_mid()},{ids(path)},{len(para)},"{para}"')
        return CoapCode.CHANGED

    async def discover(self, path: Path) -> DiscoverResult:
        """+MIPLDISCOVER: <ref>,<mid>,<objid> (manual §5.1); answered from AT+MIPLDISCOVERRSP's list
        and the resources the MCU has notified or read."""
        core = self._core
        device = core.registered()
        if device is None or path.object_id is None:
            return DiscoverResult(NO_ANSWER)
        objid = path.object_id
        if not device.has_instance(objid, path.instance_id):
            return DiscoverResult(CoapCode.NOT_FOUND)
        core.urc(f"+MIPLDISCOVER: {REF},{core.next_mid()},{objid}")
        entry = device.objects[objid]
        links: list[tuple[Path, dict[str, str]]] = []
        if path.is_object:
            links.append((path, dict(core.attributes.get(path, {}))))
        instances = entry.instances if path.instance_id is None else (path.instance_id,)
        listed = device.resource_lists.get(objid, ())
        for iid in instances:
            ipath = Path(objid, iid)
            if path.is_object:
                links.append((ipath, dict(core.attributes.get(ipath, {}))))
            known = set(listed) | {r for (o, i, r) in core.values if o == objid and i == iid}
            for rid in sorted(known):
                rpath = Path(objid, iid, rid)
                if path.is_resource and rpath != path:
                    continue
                links.append((rpath, dict(core.attributes.get(rpath, {}))))
        return DiscoverResult(CoapCode.CONTENT, links)

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        """+MIPLOBSERVE: <ref>,<mid>,1,<objid>,<insid>,<resid>, answered by the module (§3.18) with
        the values the MCU last gave."""
        core = self._core
        device = core.registered()
        if device is None or path.object_id is None:
            return ReadResult(NO_ANSWER)
        builtin = self._builtin.node(path)
        if builtin is not None:
            core.builtin_observations[observation_id] = path
            return ReadResult(CoapCode.CONTENT, builtin)
        if not device.has_instance(path.object_id, path.instance_id):
            return ReadResult(CoapCode.NOT_FOUND)
        for mid in [m for m, o in core.observations.items() if o.path == path]:
            del core.observations[mid]
        mid = core.next_mid()
        core.observations[mid] = Observation(mid, observation_id, path)
        core.urc(f"+MIPLOBSERVE: {REF},{mid},1,{ids(path)}")
        return ReadResult(CoapCode.CONTENT, self._cached_node(path))

    def _cached_node(self, path: Path) -> Node:
        parts = [
            Part(o, i, r, v, t) for (o, i, r), (v, t) in self._core.values.items() if covers(path, o, i, r)
        ]
        if path.is_resource and not parts:
            return SingleResource(path.resource_id or 0, "", ResourceType.STRING)
        return build_node(path, parts)

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode:
        """+MIPLOBSERVE: <ref>,<mid>,0,<objid>,<insid>,<resid> (§3.18)."""
        core = self._core
        if core.builtin_observations.pop(observation_id, None) is not None:
            return CoapCode.CONTENT
        found = [m for m, o in core.observations.items() if o.observation_id == observation_id]
        if not found or core.registered() is None:
            return CoapCode.NOT_FOUND
        for mid in found:
            del core.observations[mid]
        core.urc(f"+MIPLOBSERVE: {REF},{core.next_mid()},0,{ids(path)}")
        return CoapCode.CONTENT

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        """The MIPL interface has no Create: 4.05."""
        return CoapCode.METHOD_NOT_ALLOWED, None

    async def delete(self, path: Path) -> CoapCode:
        """The MIPL interface has no Delete: 4.05."""
        return CoapCode.METHOD_NOT_ALLOWED


def valid_attributes(path: Path, given: Mapping[str, str]) -> bool:
    """§3.16 notes: pmax > pmin when both are given; lt < gt and lt + 2*st < gt; gt / lt / st only
    on a resource."""
    try:
        numbers = {
            ("st" if k == "stp" else k): float(v)
            for k, v in given.items()
            if k in ("pmin", "pmax", "gt", "lt", "st", "stp")
        }
    except ValueError:
        return False
    if "pmin" in numbers and "pmax" in numbers and not numbers["pmax"] > numbers["pmin"]:
        return False
    if any(k in numbers for k in ("gt", "lt", "st")) and not path.is_resource:
        return False
    if "lt" in numbers and "gt" in numbers:
        if not numbers["lt"] < numbers["gt"]:
            return False
        if numbers["lt"] + 2 * numbers.get("st", 0.0) >= numbers["gt"]:
            return False
    return True
