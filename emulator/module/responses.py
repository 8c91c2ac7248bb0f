"""The MCU's answers to the server's requests (manual §3.5, §3.11 - §3.19) and the operation cache
(§4.3, §4.4): AT+MIPLDISCOVERRSP, AT+MIPLREADRSP, AT+MIPLWRITERSP, AT+MIPLEXECUTERSP,
AT+MIPLPARAMETERRSP, AT+MIPLOBSERVERSP, AT+MIPLMGR, AT+MIPLQMGR.
"""

from __future__ import annotations

from typing import Final

from emulator.at.params import IntParam, Signature, StrParam, one_of, sig
from emulator.at.results import CIS_NOT_ALLOWED, CIS_NOT_REGISTERED, CIS_RESOURCE, CIS_SYNTAX, Reply
from emulator.at.table import CommandSpec, Invocation
from emulator.client.handler import ReadResult
from emulator.module.core import REF_PARAM, U16, ModuleCore, err
from emulator.module.correlation import PendingRequests
from emulator.module.device import REF, State
from emulator.module.operations import FLAG_LAST, MAX_PAYLOAD, Kind, Part, build_node, covers
from emulator.module.values import RESULT_CODES, AtType, parse_value, value_size
from lwm2m.numbers import CoapCode

READ_RESULTS: Final = frozenset({1, 11, 12, 13, 14, 15})
CHANGE_RESULTS: Final = frozenset({2, 11, 12, 13, 14})
ACK_RESULTS: Final = frozenset({1, 2, 11, 12, 13, 14})  # PARAMETERRSP / OBSERVERSP (examples use 1)


class ResponseCommands:
    """The `AT+MIPL…RSP` commands, resolving the operations waiting in `PendingRequests`."""

    def __init__(self, core: ModuleCore, pending: PendingRequests) -> None:
        self._core = core
        self._pending = pending

    def commands(self) -> list[CommandSpec]:
        u16 = IntParam
        return [
            CommandSpec(
                "+MIPLDISCOVERRSP",
                set=self._discover_rsp,
                signature=sig(
                    REF_PARAM,
                    u16("objid"),
                    one_of("result", {1}),
                    IntParam("length", 0, 4096),
                    StrParam("data", 4096),
                ),
            ),
            CommandSpec(
                "+MIPLREADRSP",
                set=self._read_rsp,
                signature=sig(
                    REF_PARAM,
                    u16("mid"),
                    one_of("result", self._core.allowed_results(READ_RESULTS)),
                    u16("objid"),
                    u16("insid"),
                    u16("resid"),
                    IntParam("type", 1, 6),
                    IntParam("len", 0, 65535),
                    StrParam("value", 2048),
                    IntParam("index", 0, 255),
                    IntParam("flag", 0, 2),
                    required=3,
                ),
            ),
            CommandSpec("+MIPLWRITERSP", set=self._write_rsp, signature=self._rsp_signature(CHANGE_RESULTS)),
            CommandSpec(
                "+MIPLEXECUTERSP", set=self._execute_rsp, signature=self._rsp_signature(CHANGE_RESULTS)
            ),
            CommandSpec("+MIPLPARAMETERRSP", set=self._ack_rsp, signature=self._rsp_signature(ACK_RESULTS)),
            CommandSpec("+MIPLOBSERVERSP", set=self._ack_rsp, signature=self._rsp_signature(ACK_RESULTS)),
            CommandSpec("+MIPLMGR", set=self._mgr, signature=sig(REF_PARAM)),
            CommandSpec("+MIPLQMGR", set=self._qmgr, signature=sig(REF_PARAM)),
        ]

    def _rsp_signature(self, results: frozenset[int]) -> Signature:
        return sig(REF_PARAM, IntParam("mid", 0, U16), one_of("result", self._core.allowed_results(results)))

    def _discover_rsp(self, inv: Invocation) -> Reply:
        """AT+MIPLDISCOVERRSP=<ref>,<objid>,<result>,<length>,<data>: `<result>` must be 1 and
        `<length>` the length of `<data>` ("5500;5501;5750" is 14). Answers OK only, as the example
        (the syntax table's "+MIPLCREATE: <ref>" is a copy slip of the manual)."""
        device = self._core.device_at(inv.number(0))
        _ref, objid, _result, length, data = inv.values
        if device is None or objid not in device.objects:
            return err(CIS_RESOURCE)
        assert isinstance(data, str) and isinstance(objid, int)
        if length != len(data):
            return err(CIS_SYNTAX)
        parts = [p for p in data.split(";")] if data else []
        if any(not p.isdigit() or int(p) > U16 for p in parts):
            return err(CIS_SYNTAX)
        device.resource_lists[objid] = tuple(int(p) for p in parts)
        return Reply()

    def _read_rsp(self, inv: Invocation) -> Reply:
        """AT+MIPLREADRSP=<ref>,<mid>,<result>[,<objid>,<insid>,<resid>,<type>,<len>,<value>,
        <index>,<flag>] (§3.11); the parts of one answer end with `<flag>` 0."""
        op = self._pending.answered(inv.number(0), inv.number(1), Kind.READ)
        if isinstance(op, Reply):
            return op
        result = inv.number(2)
        assert result is not None  # required by the signature
        if result != 1:
            self._pending.resolve(op, ReadResult(RESULT_CODES[result]))
            return Reply()
        if any(v is None for v in inv.values[3:]):
            return err(CIS_SYNTAX)
        _r, _m, _res, objid, insid, resid, type_, _len, value, _index, flag = inv.values
        assert isinstance(objid, int) and isinstance(insid, int) and isinstance(resid, int)
        assert isinstance(flag, int) and isinstance(type_, int)
        if not covers(op.path, objid, insid, resid) or not op.parts.accepts(flag):
            return err(CIS_SYNTAX)
        at_type = AtType(type_)
        parsed = parse_value(at_type, str(value))
        if parsed is None:
            return err(CIS_SYNTAX)
        if op.parts.size_with(value_size(parsed[0])) > MAX_PAYLOAD:
            return err(CIS_NOT_ALLOWED)
        part = Part(objid, insid, resid, parsed[0], parsed[1])
        self._core.remember(part, at_type)
        op.parts.items.append(part)
        if flag == FLAG_LAST:
            self._pending.resolve(op, ReadResult(CoapCode.CONTENT, build_node(op.path, op.parts.items)))
        return Reply()

    def _write_rsp(self, inv: Invocation) -> Reply:
        return self._change_rsp(inv, Kind.WRITE)

    def _execute_rsp(self, inv: Invocation) -> Reply:
        return self._change_rsp(inv, Kind.EXECUTE)

    def _change_rsp(self, inv: Invocation, kind: Kind) -> Reply:
        """AT+MIPLWRITERSP / AT+MIPLEXECUTERSP=<ref>,<mid>,<result> (§3.13, §3.15)."""
        op = self._pending.answered(inv.number(0), inv.number(1), kind)
        if isinstance(op, Reply):
            return op
        result = inv.number(2)
        assert result is not None
        self._pending.resolve(op, RESULT_CODES[result])
        return Reply()

    def _ack_rsp(self, inv: Invocation) -> Reply:
        """AT+MIPLPARAMETERRSP / AT+MIPLOBSERVERSP: the module already answered the platform
        (§3.17, §3.19 notes), so a well-formed answer is accepted and changes nothing."""
        if self._core.device_at(inv.number(0)) is None:
            return err(CIS_RESOURCE)
        return Reply()

    def _mgr(self, inv: Invocation) -> Reply:
        """AT+MIPLMGR=<ref>: the oldest unanswered cached operation, again until answered (§4.3)."""
        device = self._core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        if device.state is not State.REGISTERED:
            return err(CIS_NOT_REGISTERED)
        op = self._core.queue.oldest()
        if device.nnmi == 0 or op is None:
            return Reply()
        return Reply(list(op.lines))

    def _qmgr(self, inv: Invocation) -> Reply:
        """AT+MIPLQMGR=<ref>: `+MIPLQMGR: 0,QUEUES=<n>,DROPPED=<n>,BUFFERS=<n>` (§4.4 example)."""
        if self._core.device_at(inv.number(0)) is None:
            return err(CIS_RESOURCE)
        q = self._core.queue
        return Reply([f"+MIPLQMGR: {REF},QUEUES={len(q)},DROPPED={q.dropped},BUFFERS={q.buffers}"])
