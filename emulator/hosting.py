"""Emulated modules hosted inside the server process, for the web console's AT terminal.

`ModuleHost` keeps `EmulatedModule` instances under short ids and offers what the API's
`ModuleHost` protocol (server/api/modules.py, `WS /api/v1/modules/{id}/at`) asks for: `list()`,
`send(id, line)` and `subscribe(id, callback) -> unsubscribe`. The composition package
(`testbed.cloud`, the one place that brings server and emulator together) passes a host to
`create_app(..., module_host=...)`; `testbed.hosting` routes it to the server's listeners.

Design choices:
- The emulator never imports the server, so `HostedModule` mirrors the fields of the server's
  `ModuleInfo` (id, model, imei, imsi, endpoint, carrier, `as_dict()`) instead of importing it.
- A module's output is bytes as a serial port carries them (manual §2.1: `<CR><LF>line<CR><LF>`
  for responses and URCs, the raw echo of received characters). Subscribers get text lines:
  CR and LF both end a line, empty lines are dropped, a partial line waits for its end.
- `endpoint` and `carrier` follow the module's current AT+MIPLCREATE/AT+MIPLCONFIG state
  (manual §4.1 platform numbers, default endpoint pattern per platform), so they are None until
  the MCU creates a device instance.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from emulator.at.syntax import SyntaxFault, parse_line
from emulator.module.device import CTWING, CUSTOM, HUAWEI, ONENET, YANFEI
from emulator.module.models import MODELS
from emulator.module.network import Target
from emulator.runner import EmulatedModule

log = logging.getLogger(__name__)

LineCallback = Callable[[str], None]

# AT+MIPLCFG platform numbers (manual §4.1) -> carrier names of the server's profiles.
PLATFORM_CARRIERS: dict[int, str] = {
    ONENET: "onenet",
    CTWING: "ctwing",
    YANFEI: "yanfei",
    HUAWEI: "huawei",
    CUSTOM: "custom",
}

_LINE_END = re.compile(rb"\r\n|\r|\n")

# Quick lines a console offers for a module, kept to those its model's command table answers
# (`quick_lines`): AT+MIPLVER? is not in the manual, AT+MIPLUPDATESET only on some models (§4.5).
QUICK_LINES: tuple[str, ...] = (
    "AT",
    "AT+CGSN=1",
    "AT+CIMI",
    "AT+CGMR",
    "AT+MIPLVER?",
    "AT+MIPLCREATE",
    'AT+MIPLADDOBJ=0,3303,1,"1",1,0',
    "AT+MIPLOPEN=0,3600",
    "AT+MIPLUPDATE=0,3600,0",
    "AT+MIPLUPDATESET=0,1",
    "AT+MIPLLTRDP",
    "AT+MIPLDEVINFO?",
    "AT+MIPLCLOSE=0",
    "AT+MIPLDELETE=0",
)


def quick_lines(emulated: EmulatedModule) -> tuple[str, ...]:
    """The `QUICK_LINES` the module's command table has a handler for (name and form)."""
    module = emulated.module
    if module is None:
        return ()
    table = module.engine.table
    result = []
    for line in QUICK_LINES:
        parsed = parse_line(line)
        if isinstance(parsed, SyntaxFault):
            continue
        spec = table.get(parsed.name)
        if spec is not None and spec.handler(parsed.form) is not None:
            result.append(line)
    return tuple(result)


@dataclass(frozen=True, slots=True)
class HostedModule:
    """One hosted module as the API lists it (same fields as server.api.modules.ModuleInfo)."""

    id: str
    model: str
    imei: str
    imsi: str
    endpoint: str | None
    carrier: str | None
    quick_lines: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LineSplitter:
    """Turns a module's output bytes into text lines (CR, LF or CRLF end a line)."""

    def __init__(self, emit: LineCallback) -> None:
        self._emit = emit
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        parts = _LINE_END.split(self._buffer)
        self._buffer = parts.pop()
        for part in parts:
            if part:
                self._emit(part.decode("utf-8", errors="replace"))


class _Slot:
    """A hosted module with its line subscribers."""

    def __init__(self, module_id: str, emulated: EmulatedModule) -> None:
        self.id = module_id
        self.emulated = emulated
        self.callbacks: list[LineCallback] = []
        self.splitter = LineSplitter(self._emit)
        emulated.add_listener(self.splitter.feed)
        self.quick_lines = quick_lines(emulated)  # the model's command table does not change

    def _emit(self, line: str) -> None:
        for callback in list(self.callbacks):
            try:
                callback(line)
            except Exception:
                log.exception("module %s: line subscriber failed", self.id)

    def info(self) -> HostedModule:
        emulated = self.emulated
        endpoint: str | None = None
        carrier: str | None = None
        module = emulated.module
        if module is not None and module.device is not None:
            device = module.device
            endpoint = device.endpoint(emulated.imei, emulated.imsi)
            carrier = PLATFORM_CARRIERS.get(device.platform, "custom")
        return HostedModule(
            self.id,
            emulated.model_name,
            emulated.imei,
            emulated.imsi,
            endpoint,
            carrier,
            self.quick_lines,
        )


class ModuleHost:
    """Emulated modules by id; satisfies server.api.modules.ModuleHost."""

    def __init__(self, hosts: Mapping[str, Target] | None = None) -> None:
        self._slots: dict[str, _Slot] = {}
        # The host map of the modules it starts (emulator.module.network.HostMap overrides).
        self.hosts = dict(hosts or {})

    def add(self, emulated: EmulatedModule, module_id: str | None = None) -> str:
        """Host a started `EmulatedModule`; the id defaults to its IMEI (made unique)."""
        base = module_id or emulated.imei
        candidate, n = base, 1
        while candidate in self._slots:
            n += 1
            candidate = f"{base}-{n}"
        self._slots[candidate] = _Slot(candidate, emulated)
        return candidate

    async def start_module(self, model: str, *, imei: str, imsi: str, **options: Any) -> str:
        """Build, start and host an `EmulatedModule` (options as EmulatedModule takes them)."""
        options.setdefault("hosts", self.hosts)
        emulated = EmulatedModule(model, imei=imei, imsi=imsi, **options)
        await emulated.start()
        return self.add(emulated)

    def models(self) -> list[str]:
        """The models a module can be started as (emulator.module.models)."""
        return list(MODELS)

    def get(self, module_id: str) -> EmulatedModule | None:
        slot = self._slots.get(module_id)
        return slot.emulated if slot is not None else None

    def set_fota_faults(self, module_id: str, text: str) -> str:
        """Faults of the module's next firmware updates, in `FotaFaults` text form; returns them
        as understood. KeyError for an unknown module (or one without object 5), ValueError for
        an unknown fault."""
        from emulator.module.fota import FotaFaults

        module = self._slots[module_id].emulated.module
        if module is None or module.fota is None:
            raise KeyError(module_id)
        module.fota.faults = FotaFaults.parse(text)
        return module.fota.faults.describe()

    def list(self) -> list[HostedModule]:
        return [slot.info() for slot in self._slots.values()]

    async def send(self, module_id: str, line: str) -> None:
        """Type one AT line into the module (the carriage return is added); KeyError if unknown."""
        self._slots[module_id].emulated.feed(line.encode("utf-8") + b"\r")

    def subscribe(self, module_id: str, callback: LineCallback) -> Callable[[], None]:
        """Call `callback(line)` for every output line of the module; returns the unsubscribe."""
        slot = self._slots[module_id]
        slot.callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                slot.callbacks.remove(callback)

        return unsubscribe

    async def remove(self, module_id: str) -> None:
        slot = self._slots.pop(module_id, None)
        if slot is not None:
            slot.emulated.remove_listener(slot.splitter.feed)
            await slot.emulated.stop()

    async def close(self) -> None:
        """Stop every hosted module."""
        for module_id in list(self._slots):
            await self.remove(module_id)
