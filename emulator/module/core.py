"""The shared device state of one emulated module, and the small helpers every role uses.

`Module` (emulator.module.module) is built around one `ModuleCore`: the handlers of each manual
section (create / objects, login, configuration, notify, the MCU's `…RSP` answers), the request
correlation, the server-request side and the client event sink each hold the core and read or
change its state; none of them holds state of its own that another needs. The helpers here are
the primitives they share: URC output, `+MIPLEVENT` numbers as the model shows them, message ids,
named timers, the device instance lookup and the send reports of AT+MIPLNMI `<nsmi>`.

Error codes and states are described in emulator.module.module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from emulator.at.engine import AtEngine
from emulator.at.params import IntParam
from emulator.at.results import CisError, Reply
from emulator.module.basic import Identity, NetworkState, default_wall_start
from emulator.module.clock import Handle, Scheduler
from emulator.module.device import REF, Device, State
from emulator.module.events import Event, shown_as
from emulator.module.fota import FirmwareUpdate
from emulator.module.models import ModelCapabilities, NsmiStyle
from emulator.module.operations import OperationQueue, Part
from emulator.module.ports import ClientFactory, ClientOwner, ClientPort
from emulator.module.values import AtType
from lwm2m.node import LwM2MObject, Node, ObjectInstance, Value
from lwm2m.numbers import CoapCode, ResourceType
from lwm2m.path import Path

# MCU answer windows: the manual's "read响应（5秒内）" (§5.1) in the direct URC mode; the OneNET
# API's default 25 s when the operation waits in the cache for AT+MIPLMGR (*(choice)*).
DEFAULT_RESPONSE_TIMEOUT: Final = 5.0
DEFAULT_QUEUED_RESPONSE_TIMEOUT: Final = 25.0
# What a RequestHandler call returns when the MCU did not answer in time or the operation was
# dropped from the cache: the client turns it into its response (*(choice)*: 5.03).
NO_ANSWER: Final = CoapCode.SERVICE_UNAVAILABLE
EXTENDED_RESULTS: Final = frozenset({16, 17, 18, 19})
U16: Final = 65535
# `<ref>`: the device instance (only 0 exists).
REF_PARAM: Final = IntParam("ref", 0, U16)


def err(code: int) -> Reply:
    return Reply(result=CisError(code))


def ids(path: Path) -> str:
    """`<objid>,<insid>,<resid>` with -1 for what the path leaves out."""
    ins = -1 if path.instance_id is None else path.instance_id
    res = -1 if path.resource_id is None else path.resource_id
    return f"{path.object_id},{ins},{res}"


def select(instance: ObjectInstance, path: Path) -> Node | None:
    """What `path` addresses in the module's own single-instance object `instance`."""
    if path.is_object:
        return LwM2MObject(path.object_id or 0, {0: instance})
    if path.instance_id != 0:
        return None
    if path.is_instance:
        return instance
    if path.is_resource:
        return instance.resources.get(path.resource_id or 0)
    return None


@dataclass(slots=True)
class Observation:
    mid: int
    observation_id: int
    path: Path


class ModuleCore:
    """The state one module's roles share: the device instance (ref 0), its client and login,
    the MCU's last values, the server's observations and the operations waiting for the MCU."""

    engine: AtEngine
    fota: FirmwareUpdate | None

    def __init__(
        self,
        caps: ModelCapabilities,
        identity: Identity,
        *,
        clock: Scheduler,
        client_factory: ClientFactory | None,
        wall_start: datetime | None,
        response_timeout: float,
        queued_response_timeout: float,
        first_mid: int,
    ) -> None:
        self.caps = caps
        self.identity = identity
        self.network = NetworkState()
        self.clock = clock
        self.client_factory = client_factory
        self.response_timeout = response_timeout
        self.queued_response_timeout = queued_response_timeout
        self.wall_start = wall_start or default_wall_start()
        self.clock_start = clock.now()
        self.mids: Iterator[int] = itertools.count(first_mid)
        self.device: Device | None = None
        self.client: ClientPort | None = None
        # The client's view of the module (emulator.module.session): only this one is live.
        self.session: ClientOwner | None = None
        self.queue = OperationQueue()
        self.observations: dict[int, Observation] = {}
        self.values: dict[tuple[int, int, int], tuple[Value, ResourceType]] = {}
        self.attributes: dict[Path, dict[str, str]] = {}
        self.notify_parts: list[Part] = []
        self.lifetime = 0
        self.pending_lifetime = 0
        self.registered_at = 0.0
        self.bootstrapping = False
        self.timers: dict[str, Handle] = {}
        self.fota = None
        # Observations of the module's own objects (/3/0, /5/0): observation id -> path.
        self.builtin_observations: dict[int, Path] = {}
        # Set when a firmware update's reboot never comes back: the module stays silent.
        self.halted = False

    def wall_time(self) -> datetime:
        return self.wall_start + timedelta(seconds=self.clock.now() - self.clock_start)

    def urc(self, line: str) -> None:
        self.engine.urc(line)

    def show_event(self, event: Event, ackid: int | None = None) -> None:
        """`+MIPLEVENT: 0,<n>[,<ackid>]` with the number the model reports for `event`, if any."""
        shown = shown_as(event, self.caps.events)
        if shown is not None:
            self.urc(f"+MIPLEVENT: {REF},{int(shown)}" + ("" if ackid is None else f",{ackid}"))

    def next_mid(self) -> int:
        while True:
            mid = next(self.mids) & U16
            if mid and mid not in self.queue and mid not in self.observations:
                return mid

    def set_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self.cancel_timer(name)
        self.timers[name] = self.clock.call_later(delay, callback)

    def cancel_timer(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def device_at(self, ref: int | None) -> Device | None:
        """The device instance `<ref>` names (only ref 0 exists), if created."""
        return self.device if ref == REF else None

    def registered(self) -> Device | None:
        """The device instance when it is registered, else None."""
        device = self.device
        return device if device is not None and device.state is State.REGISTERED else None

    def send_report(self, mid: int) -> None:
        """`+MIPLNSMI: 0,1,<num>` after a message went out, when AT+MIPLNMI `<nsmi>` asks for it."""
        device = self.device
        if device is None or not device.nsmi or self.caps.nsmi is NsmiStyle.UNSUPPORTED:
            return
        num = mid & 127
        if self.caps.nsmi is NsmiStyle.M5311 and num == 0:
            num = 128
        self.urc(f"+MIPLNSMI: {REF},1,{num}")

    def allowed_results(self, base: frozenset[int]) -> frozenset[int]:
        extended = self.caps.result_codes & EXTENDED_RESULTS
        return base | extended

    def remember(self, part: Part, at_type: AtType) -> None:
        """Keep a value the MCU gave (notify, read answer) and the AT type it was declared with."""
        key = (part.object_id, part.instance_id, part.resource_id)
        self.values[key] = (part.value, part.type)
        if self.device is not None:
            self.device.declared[key] = at_type
