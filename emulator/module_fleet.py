"""N emulated OneMO modules in one process, each driven by a built-in MCU (for load and the bench).

Each `FleetModule` is a full AT `Module` (manual chapters 3-4) on the real LwM2M client
(`emulator.module.network`), with echo off and no byte framing: its response lines go straight to
an `McuBehaviour`, which plays the device maker's firmware:

* login: AT+MIPLCREATEEX, AT+MIPLADDOBJ 3303 (one instance), AT+MIPLDISCOVERRSP, AT+MIPLOPEN;
* `+MIPLOBSERVE` -> AT+MIPLOBSERVERSP (and remembers the observation; a cancel forgets it),
  `+MIPLREAD` -> AT+MIPLREADRSP with the current temperature, `+MIPLWRITE` / `+MIPLEXECUTE` ->
  result 2, `+MIPLPARAMETER` -> result 1;
* every `notify_interval` seconds, per observation, a confirmable AT+MIPLNOTIFY of the temperature
  (a bounded random walk) with a fresh ackid; `+MIPLEVENT: 0,26` / `0,25` count acks / failures.

Login pacing: logins start at most `login_rate` per second (on a schedule of absolute times, so a
busy loop does not slow the fleet below the rate nor let it burst to catch up) and at most
`logins_in_flight` are unfinished at once. The window is what keeps a large fleet from collapsing
when the process is short of CPU: without it, slow answers turn into retransmissions and CoAP
separate responses, which slow the loop further until registrations time out (issue 4: at 3,000
modules with the server in the same process, half the logins failed that way).

Notify timing: each module's ticks are anchored on absolute times (`call_at`, first one at a
random offset in the interval), so its period is exactly `notify_interval` however late the
loop runs a tick.

Design choices: the MCU answers on the next loop iteration (`call_soon`), never from inside the
module's output callback; no transcript and no output buffer are kept, so memory per module is
the module, its client and socket. Who observes is up to the platform (OneNET rules, or a test /
bench calling `Lwm2mServer.observe`): a module notifies only what has been observed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from emulator.module.clock import AsyncioScheduler
from emulator.module.module import Module
from emulator.module.network import HostMap, port_factory
from lwm2m.model import ModelRegistry
from lwm2m.model.builtin import builtin_registry

log = logging.getLogger(__name__)

REQUEST = re.compile(r"^\+MIPL(OBSERVE|READ|WRITE|EXECUTE|PARAMETER): 0,(\d+),(.*)$")
EVENT = re.compile(r"^\+MIPLEVENT: 0,(\d+)(?:,(\d+))?$")


@dataclass(slots=True)
class FleetStats:
    registered: int = 0
    failed: int = 0
    notifies_sent: int = 0
    notifies_acked: int = 0
    notifies_failed: int = 0
    notifies_refused: int = 0  # AT+MIPLNOTIFY answered with an error
    requests_answered: int = 0
    failed_by_event: dict[int, int] = field(default_factory=dict)  # +MIPLEVENT number -> logins


@dataclass(frozen=True, slots=True)
class ModuleFleetSettings:
    count: int
    server: str = "127.0.0.1:5683"
    model: str = "ML307R"
    first_imei: int = 869975030000000
    first_imsi: int = 460040000000000
    lifetime: int = 3600
    notify_interval: float = 10.0
    # Logins started per second while the fleet comes up (a burst of thousands would drop).
    login_rate: float = 200.0
    # At most this many logins unfinished at once (0: no window).
    logins_in_flight: int = 100
    open_timeout: int = 60
    request_timeout: float = 10.0
    hosts: Mapping[str, str] | None = None


class McuBehaviour:
    """The firmware of one fleet module: reacts to URCs, notifies observed values."""

    def __init__(self, fleet: ModuleFleet, index: int, rng: random.Random) -> None:
        self.fleet = fleet
        self.index = index
        self.rng = rng
        self.module: Module | None = None
        self.temperature = 15.0 + rng.random() * 10
        self.observations: dict[int, str] = {}  # observe msgid -> "<obj>,<ins>,<res>"
        self.registered = asyncio.Event()
        self.done = asyncio.Event()
        self._ackid = 0
        self.sent = 0  # notifies this module's MCU sent
        self.acked = 0  # this module's +MIPLEVENT: 0,26 count
        self.unacked: dict[int, float] = {}  # ackid -> loop time sent, until +MIPLEVENT: 0,26
        self._timer: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._last_command = ""
        # The login commands, sent again when the module powers up again (a firmware update).
        self.login_lines: list[str] = []

    def send(self, line: str) -> None:
        self._last_command = line
        if self.module is not None:
            self.module.send_line(line)

    def later(self, line: str) -> None:
        asyncio.get_running_loop().call_soon(self.send, line)

    def login(self, lines: list[str]) -> None:
        self.login_lines = lines
        for line in lines:
            self.send(line)

    def on_line(self, line: str) -> None:
        stats = self.fleet.stats
        if self.module is not None and line in self.module.caps.power_on_urcs:
            if self.registered.is_set():
                self.fleet.stats.registered -= 1
            self.registered.clear()
            self.observations.clear()
            for command in self.login_lines:
                self.later(command)
            return
        if line.startswith("+CIS ERROR") and self._last_command.startswith("AT+MIPLNOTIFY"):
            stats.notifies_refused += 1
            return
        event = EVENT.match(line)
        if event is not None:
            self._on_event(int(event.group(1)), int(event.group(2)) if event.group(2) else None)
            return
        request = REQUEST.match(line)
        if request is None:
            return
        kind, mid, rest = request.group(1), request.group(2), request.group(3)
        stats.requests_answered += 1
        if kind == "OBSERVE":
            flag, _, ids = rest.partition(",")
            if flag == "1":
                self.observations[int(mid)] = ids
            else:
                self.observations = {m: p for m, p in self.observations.items() if p != ids}
            self.later(f"AT+MIPLOBSERVERSP=0,{mid},1")
        elif kind == "READ":
            self.later(f"AT+MIPLREADRSP=0,{mid},1,3303,0,5700,4,{len(self._value())},{self._value()},0,0")
        elif kind in ("WRITE", "EXECUTE"):
            if kind == "EXECUTE" or rest.endswith(",0"):
                self.later(f"AT+MIPL{kind}RSP=0,{mid},2")
        else:
            self.later(f"AT+MIPLPARAMETERRSP=0,{mid},1")

    def _on_event(self, number: int, ackid: int | None = None) -> None:
        stats = self.fleet.stats
        if number == 6:
            stats.registered += 1
            self.registered.set()
            self._finish()
            self._schedule()
        elif number in (3, 7, 8):
            stats.failed += 1
            stats.failed_by_event[number] = stats.failed_by_event.get(number, 0) + 1
            self._finish()
        elif number == 26:
            stats.notifies_acked += 1
            self.acked += 1
            if ackid is not None:
                self.unacked.pop(ackid, None)
        elif number == 25:
            stats.notifies_failed += 1
        elif number in (9, 15, 31):
            if self.registered.is_set():
                stats.registered -= 1
            self.registered.clear()
            self.observations.clear()

    def _finish(self) -> None:
        if not self.done.is_set():
            self.done.set()
            self.fleet._login_finished()

    def _value(self) -> str:
        return f"{self.temperature:.1f}"

    def _schedule(self) -> None:
        interval = self.fleet.settings.notify_interval
        loop = asyncio.get_running_loop()
        if self._timer is None:
            # Spread the fleet's notifies over the interval instead of sending them in one burst.
            self._next_tick = loop.time() + interval * self.rng.random()
        else:
            self._next_tick = max(self._next_tick + interval, loop.time())
        self._timer = loop.call_at(self._next_tick, self._tick)

    def _tick(self) -> None:
        if not self.registered.is_set():
            self._timer = None
            return
        self.temperature = min(40.0, max(-10.0, self.temperature + self.rng.uniform(-0.5, 0.5)))
        for mid in list(self.observations):
            self._ackid = self._ackid % 65535 + 1
            value = self._value()
            self.fleet.stats.notifies_sent += 1
            self.sent += 1
            self.unacked[self._ackid] = asyncio.get_running_loop().time()
            self.send(f"AT+MIPLNOTIFY=0,{mid},3303,0,5700,4,{len(value)},{value},0,0,{self._ackid}")
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class ModuleFleet:
    def __init__(
        self, settings: ModuleFleetSettings, registry: ModelRegistry | None = None, seed: int = 1
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else builtin_registry()
        self.stats = FleetStats()
        self.mcus: list[McuBehaviour] = []
        self._rng = random.Random(seed)
        self._window: asyncio.Semaphore | None = None

    def _login_finished(self) -> None:
        if self._window is not None:
            self._window.release()

    def imei(self, index: int) -> str:
        return str(self.settings.first_imei + index)

    def endpoint(self, index: int) -> str:
        """The endpoint name the module registers with (OneNET pattern `IMEI;IMSI`)."""
        return f"{self.imei(index)};{self.settings.first_imsi + index}"

    async def start(self, progress: Callable[[int, int], None] | None = None) -> FleetStats:
        """Bring every module up and wait until each has registered or failed; `progress(done,
        total)` is called as they finish."""
        s = self.settings
        loop = asyncio.get_running_loop()
        factory = port_factory(self.registry, HostMap(s.hosts), s.request_timeout)
        clock = AsyncioScheduler(loop)
        for index in range(s.count):
            mcu = McuBehaviour(self, index, random.Random(self._rng.random()))
            mcu.module = Module(
                s.model,
                imei=self.imei(index),
                imsi=str(s.first_imsi + index),
                client_factory=factory,
                clock=clock,
                sink=mcu.on_line,
                echo=False,
            )
            self.mcus.append(mcu)
        finished = 0
        self._window = asyncio.Semaphore(s.logins_in_flight) if s.logins_in_flight > 0 else None
        next_start = loop.time()
        for mcu in self.mcus:
            if self._window is not None:
                await self._window.acquire()
            if s.login_rate > 0:
                next_start = max(next_start + 1.0 / s.login_rate, loop.time() - 0.1)
                if next_start > loop.time():
                    await asyncio.sleep(next_start - loop.time())
            mcu.login(
                [
                    f'AT+MIPLCREATEEX="{s.server}",2',
                    'AT+MIPLADDOBJ=0,3303,1,"1",1,0',
                    'AT+MIPLDISCOVERRSP=0,3303,1,4,"5700"',
                    f"AT+MIPLOPEN=0,{s.lifetime},{s.open_timeout}",
                ]
            )
            while finished < len(self.mcus) and self.mcus[finished].done.is_set():
                finished += 1
                if progress is not None:
                    progress(finished, s.count)
        for mcu in self.mcus[finished:]:
            await mcu.done.wait()
            finished += 1
            if progress is not None:
                progress(finished, s.count)
        self._window = None
        return self.stats

    async def stop(self) -> None:
        """Power every module off (no de-register: the fleet simply goes away)."""
        closing = []
        for mcu in self.mcus:
            mcu.stop()
            if mcu.module is not None:
                client = mcu.module.power_off()
                aclose = getattr(client, "aclose", None)
                if aclose is not None:
                    closing.append(aclose())
        await asyncio.gather(*closing, return_exceptions=True)
        self.mcus.clear()
