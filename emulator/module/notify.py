"""AT+MIPLNOTIFY (manual §3.9): the MCU's values for the server's observations, one line per
resource, sent as one notification when the last part (`<flag>` 0 or a release flag) arrives.
"""

from __future__ import annotations

from typing import Final

from emulator.at.params import IntParam, StrParam, one_of, sig
from emulator.at.results import (
    CIS_NOT_ALLOWED,
    CIS_NOT_REGISTERED,
    CIS_RESOURCE,
    CIS_SYNTAX,
    CIS_UPLINK_BUSY,
    Reply,
)
from emulator.at.table import CommandSpec, Invocation
from emulator.module.core import REF_PARAM, ModuleCore, Observation, err
from emulator.module.device import State
from emulator.module.models import NsmiStyle, ReleaseFlags
from emulator.module.operations import FLAG_LAST, MAX_PAYLOAD, Part, build_node, covers
from emulator.module.ports import Notification, Release
from emulator.module.values import CONTENT_TYPES, AtType, parse_value, value_size
from lwm2m.numbers import ResourceType

RELEASE_AFTER_SEND: Final = 0x200
RELEASE_AFTER_ACK: Final = 0x400


class NotifyCommand:
    """AT+MIPLNOTIFY over the shared state (its parts wait in `core.notify_parts`)."""

    def __init__(self, core: ModuleCore) -> None:
        self._core = core

    def commands(self) -> list[CommandSpec]:
        u16 = IntParam
        return [
            CommandSpec(
                "+MIPLNOTIFY",
                set=self._notify,
                signature=sig(
                    REF_PARAM,
                    u16("mid"),
                    u16("objid"),
                    u16("insid"),
                    u16("resid"),
                    IntParam("type", 1, 6),
                    IntParam("len", 0, 65535),
                    StrParam("value", 2048),
                    IntParam("index", 0, 255),
                    one_of("flag", self._notify_flags(), allow_hex=True),
                    u16("ackid"),
                    IntParam("contentType", 0, 4),
                    required=10,
                ),
            ),
        ]

    def _notify_flags(self) -> set[int]:
        """AT+MIPLNOTIFY `<flag>`: 1 first, 2 middle, 0 last (§3.9); 0x200 / 0x400 release the RRC
        connection (§3.9 footnote 3) except where the model rejects them."""
        release = (
            set()
            if self._core.caps.release_flags is ReleaseFlags.REJECTED
            else {RELEASE_AFTER_SEND, RELEASE_AFTER_ACK}
        )
        return {0, 1, 2} | release

    def _notify(self, inv: Invocation) -> Reply:
        """AT+MIPLNOTIFY (§3.9). Parts with `<flag>` 1 / 2 wait; `<flag>` 0 (or a release flag)
        sends the object instance's parts as one notification on the matching observation."""
        core = self._core
        device = core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        _ref, mid, objid, insid, resid, type_, _len, value, _index, flag, ackid, ctype = inv.values
        assert isinstance(objid, int) and isinstance(insid, int) and isinstance(resid, int)
        assert isinstance(flag, int) and isinstance(type_, int) and isinstance(mid, int)
        assert (ackid is None or isinstance(ackid, int)) and (ctype is None or isinstance(ctype, int))
        release = Release.NONE
        if flag in (RELEASE_AFTER_SEND, RELEASE_AFTER_ACK):
            if core.caps.release_flags is ReleaseFlags.SUPPORTED and not device.dtls:
                release = Release.AFTER_SEND if flag == RELEASE_AFTER_SEND else Release.AFTER_ACK
            flag = FLAG_LAST
        if core.caps.nsmi is NsmiStyle.M5311 and device.nsmi and mid == 0:
            return err(CIS_SYNTAX)
        at_type = AtType(type_)
        if at_type is AtType.STRING and not inv.line.args[7].quoted:
            return err(CIS_SYNTAX)
        if flag != FLAG_LAST and ctype is not None and ctype != 3:
            return err(CIS_SYNTAX)  # only TLV combines several lines (§3.9 footnote 4)
        parsed = parse_value(at_type, str(value))
        if parsed is None:
            return err(CIS_SYNTAX)
        node_value, rtype = parsed
        if ctype == 2 and not core.caps.content_type_keeps_value and isinstance(node_value, str):
            node_value, rtype = node_value.encode("utf-8"), ResourceType.OPAQUE
        if device.state is not State.REGISTERED or core.client is None:
            core.notify_parts = []
            return err(CIS_NOT_REGISTERED)
        parts = core.notify_parts
        if parts and flag == 1:
            parts = []
        elif not parts and flag == 2:
            return err(CIS_SYNTAX)
        if parts and parts[0].object_id != objid:
            core.notify_parts = []
            return err(CIS_SYNTAX)
        observation = self._observation_for(mid, objid, insid, resid)
        if observation is None:
            core.notify_parts = []
            return err(CIS_RESOURCE)
        if sum(value_size(p.value) for p in parts) + value_size(node_value) > MAX_PAYLOAD:
            core.notify_parts = []
            return err(CIS_NOT_ALLOWED)
        part = Part(objid, insid, resid, node_value, rtype)
        core.remember(part, at_type)
        if flag != FLAG_LAST:
            core.notify_parts = [*parts, part]
            return Reply()
        core.notify_parts = []
        notification = Notification(
            observation_id=observation.observation_id,
            path=observation.path,
            node=build_node(observation.path, [*parts, part]),
            confirmable=ackid is not None,
            ackid=ackid,
            content_format=None if ctype is None else int(CONTENT_TYPES[ctype]),
            release=release,
        )
        if not core.client.notify(notification):
            return err(CIS_UPLINK_BUSY)
        core.send_report(mid)
        return Reply()

    def _observation_for(self, mid: int, objid: int, insid: int, resid: int) -> Observation | None:
        observations = self._core.observations
        if mid and mid in observations:
            observation = observations[mid]
            if covers(observation.path, objid, insid, resid):
                return observation
        matching = [o for o in observations.values() if covers(o.path, objid, insid, resid)]
        return max(matching, key=lambda o: o.path.depth, default=None)
