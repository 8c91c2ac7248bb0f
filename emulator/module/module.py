"""The emulated OneMO module: the MIPL command set and its LwM2M state machine (OneMO LwM2M AT
manual V4.4.0 chapters 3 and 4; platforms.md "module side").

Layers: bytes -> `emulator.at.AtEngine` (syntax, parameters, result codes) -> the handlers of
each manual section (state, model rules) -> `ClientPort` (the LwM2M client). The client comes back
through `RequestHandler` (server requests -> `+MIPLREAD` ... URCs, answered by the MCU's
`AT+MIPL...RSP`) and `ClientEvents` (-> `+MIPLEVENT`).

`Module` is the shared device state (`ModuleCore`, emulator.module.core) with its roles around it,
one module each:

* handlers per manual section, each contributing its rows to the command table:
  basic modem commands (`basic`), device instance and objects (`objects`, §3.1 - §3.5, §4.6),
  login (`login`, §3.6 - §3.8, §4.9), configuration (`config`, §4.1 - §4.8), AT+MIPLNOTIFY
  (`notify`, §3.9), the MCU's `…RSP` answers and the operation cache (`responses`);
* the server's requests waiting for the MCU's answer (`correlation`);
* the server-request side, `RequestHandler` (`requests`), and the module's own objects /3, /5,
  /10290 (`builtin`, FOTA in `fota`);
* the client event sink, `ClientEvents` (`client_events`), reached through the live `Session`.

States of the device instance (ref 0): none -> CREATED (AT+MIPLCREATE[EX]) -> OPENING
(AT+MIPLOPEN; bootstrap and register run in the client) -> REGISTERED (+MIPLEVENT 6) ->
CLOSING (AT+MIPLCLOSE) -> CREATED (+MIPLEVENT 15); AT+MIPLDELETE drops it from any state.

Error codes (manual §6): 601 malformed or unsupported parameter values, 602 not registered (or
still registering), 651 not allowed in this state, 652 the client refused an uplink, 653 the
device instance, object or message id does not exist (or the instance already exists on create).
Design choices the manual leaves open are marked *(choice)* in the handlers' docstrings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from emulator.at.engine import AtEngine, EchoSink, LineSink
from emulator.at.table import CommandTable
from emulator.client.handler import DiscoverResult, ReadResult
from emulator.module.basic import DEFAULT_ICCID, DEFAULT_IMEI, DEFAULT_IMSI, Identity, basic_commands
from emulator.module.builtin import BuiltinObjects
from emulator.module.client_events import ClientEventSink
from emulator.module.clock import Scheduler
from emulator.module.config import ConfigCommands
from emulator.module.core import DEFAULT_QUEUED_RESPONSE_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, ModuleCore
from emulator.module.correlation import PendingRequests
from emulator.module.device import State
from emulator.module.fota import FirmwareUpdate, FotaFaults
from emulator.module.login import Login
from emulator.module.models import OPTIONAL_COMMANDS, capabilities
from emulator.module.notify import NotifyCommand
from emulator.module.objects import ObjectCommands
from emulator.module.ports import ClientFactory, ClientPort
from emulator.module.requests import ServerRequests
from emulator.module.responses import ResponseCommands
from emulator.module.session import Session
from lwm2m.node import Node
from lwm2m.numbers import CoapCode
from lwm2m.path import Path


class Module(ModuleCore):
    """One emulated OneMO module: feed it AT bytes, read response lines from `sink`."""

    def __init__(
        self,
        model: str = "ML307R",
        *,
        imei: str = DEFAULT_IMEI,
        imsi: str = DEFAULT_IMSI,
        iccid: str = DEFAULT_ICCID,
        client_factory: ClientFactory | None = None,
        clock: Scheduler,
        sink: LineSink,
        echo_sink: EchoSink | None = None,
        echo: bool = True,
        wall_start: datetime | None = None,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
        queued_response_timeout: float = DEFAULT_QUEUED_RESPONSE_TIMEOUT,
        first_mid: int = 18172,
        fota_faults: FotaFaults | None = None,
    ) -> None:
        super().__init__(
            capabilities(model),
            Identity(imei, imsi, iccid),
            clock=clock,
            client_factory=client_factory,
            wall_start=wall_start,
            response_timeout=response_timeout,
            queued_response_timeout=queued_response_timeout,
            first_mid=first_mid,
        )
        self._pending = PendingRequests(self)
        self._builtin = BuiltinObjects(self)
        self._requests = ServerRequests(self, self._pending, self._builtin)
        self._login = Login(self, self._pending, self._builtin, self._new_session)
        self._client_events = ClientEventSink(self, self._login)
        self._objects = ObjectCommands(self, self._login)
        # Object 5 and its flash (emulator.module.fota): they outlive power cycles.
        if self.caps.fota:
            self.fota = FirmwareUpdate(
                self.caps.name,
                changed=self._builtin.fota_changed,
                reboot=self._fota_reboot,
                source=self._builtin.fota_source,
                call_later=lambda delay, callback: self.clock.call_later(delay, callback),
                faults=fota_faults,
            )
        table = CommandTable(
            basic_commands(
                self.caps, self.identity, self.network, self.wall_time, self._login.on_attach_change
            )
        )
        sections = (
            self._objects,
            self._login,
            NotifyCommand(self),
            ResponseCommands(self, self._pending),
            ConfigCommands(self),
        )
        for section in sections:
            for spec in section.commands():
                if spec.name in OPTIONAL_COMMANDS and spec.name not in self.caps.optional_commands:
                    continue
                table.add(spec)
        self.engine = AtEngine(table, sink, echo=echo, echo_sink=echo_sink, cmee=self.caps.default_cmee)

    def _new_session(self) -> Session:
        return Session(self, self._requests, self._client_events)

    # ------------------------------------------------------------------ plumbing

    def feed(self, data: bytes) -> None:
        """Bytes from the MCU (any chunking); responses and URCs go to the sink."""
        if self.halted:
            return
        self.engine.feed(data)

    def send_line(self, line: str) -> None:
        """Convenience for tests and scripts: one command line, CR-terminated."""
        self.feed(line.encode("utf-8") + b"\r")

    def power_off(self) -> ClientPort | None:
        """The supply is cut: no message goes out, timers stop, pending server requests are
        answered as unanswered, and the device instance and the MCU's values are gone (RAM state;
        *(choice)* nothing survives a power cycle). Returns the dropped client (already aborted)
        so an async owner can wait for its socket to close."""
        client = self.client
        self._login.end(abort=True)
        if self.fota is not None:
            self.fota.shutdown()
        self.builtin_observations.clear()
        self.device = None
        self.values.clear()
        self.attributes.clear()
        self._objects.reset_create()
        return client

    @property
    def state(self) -> State | None:
        return None if self.device is None else self.device.state

    def _fota_reboot(self, version: str | None, comes_back: bool) -> None:
        """The update's reboot: as a power cycle (the MIPL configuration is lost), on `version`;
        the power-on lines tell the MCU it may log in again. `comes_back` False: it never does."""
        client = self.power_off()
        if client is not None:
            aclose = getattr(client, "aclose", None)
            if aclose is not None:
                asyncio.get_running_loop().create_task(aclose())
        if version:
            self.identity.revision = version
        if not comes_back:
            self.halted = True
            return
        for line in self.caps.power_on_urcs:
            self.urc(line)

    # ------------------------------------------------------------------ RequestHandler

    async def read(self, path: Path) -> ReadResult:
        return await self._requests.read(path)

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        return await self._requests.write(path, node, replace)

    async def execute(self, path: Path, arguments: str) -> CoapCode:
        return await self._requests.execute(path, arguments)

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode:
        return await self._requests.write_attributes(path, attributes)

    async def discover(self, path: Path) -> DiscoverResult:
        return await self._requests.discover(path)

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        return await self._requests.observe(path, observation_id)

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode:
        return await self._requests.cancel_observation(path, observation_id)

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        return await self._requests.create(path, node)

    async def delete(self, path: Path) -> CoapCode:
        return await self._requests.delete(path)
