"""The host-side driver: talks AT to a OneMO module over a serial port (pyserial; a device path
such as /dev/ttyUSB0 or /dev/pts/5, or a URL such as socket://127.0.0.1:5000), logs in to
OneNET with one IPSO temperature object (3303) and answers the platform's requests (manual §3.10
+MIPLREAD / AT+MIPLREADRSP, §3.19 +MIPLOBSERVE / AT+MIPLOBSERVERSP, §3.5 +MIPLDISCOVER /
AT+MIPLDISCOVERRSP, §3.13 AT+MIPLNOTIFY).

Threads: a reader splits the port's output into lines (final result codes go to the command
waiting for them, URCs to a queue); a dispatcher answers URCs. Commands are sent one at a time.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable

import serial

FINAL = re.compile(r"^(OK|ERROR|\+CIS ERROR: ?\d+|\+CME ERROR: ?\d+)$")
URC_PREFIXES = (
    "+MIPLREAD:",
    "+MIPLWRITE:",
    "+MIPLEXECUTE:",
    "+MIPLOBSERVE:",
    "+MIPLDISCOVER:",
    "+MIPLPARAMETER:",
    "+MIPLEVENT:",
)
SENSOR_OBJECT = 3303
SENSOR_VALUE = 5700
FLOAT_TYPE = 4


class ModemError(Exception):
    pass


class Thermometer:
    def __init__(
        self,
        port: str,
        read_sensor: Callable[[], float],
        server: str = "nbiotacc.heclouds.com:5683",
        timeout: float = 5.0,
    ) -> None:
        self.serial = serial.serial_for_url(port, baudrate=115200, timeout=0.05)
        self.read_sensor = read_sensor
        self.server = server
        self.timeout = timeout
        self.events: queue.Queue[int] = queue.Queue()
        self.observed = threading.Event()
        self._observe_mid: int | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._urcs: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._running = True
        self._threads = [
            threading.Thread(target=self._read_loop, daemon=True),
            threading.Thread(target=self._dispatch_loop, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> Thermometer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._running = False
        self._urcs.put(None)
        for thread in self._threads:
            thread.join(2.0)
        self.serial.close()

    # --- AT plumbing ---------------------------------------------------------------------------

    def _read_loop(self) -> None:
        buffer = b""
        while self._running:
            try:
                buffer += self.serial.read(256)
            except (serial.SerialException, OSError, TypeError):
                return
            *lines, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if not line or line.startswith("AT"):
                    continue  # blank framing lines and the module's echo
                if line.startswith(URC_PREFIXES):
                    self._urcs.put(line)
                else:
                    self._lines.put(line)

    def command(self, line: str, timeout: float | None = None) -> list[str]:
        """Send one command; returns its response lines, raises ModemError unless OK."""
        with self._lock:
            self.serial.write(line.encode() + b"\r")
            response: list[str] = []
            while True:
                try:
                    answer = self._lines.get(timeout=timeout or self.timeout)
                except queue.Empty:
                    raise ModemError(f"{line}: no answer") from None
                if FINAL.match(answer):
                    if answer != "OK":
                        raise ModemError(f"{line}: {answer}")
                    return response
                response.append(answer)

    # --- the OneNET login and the platform's requests ------------------------------------------

    def login(self, lifetime: int = 3600, timeout: float = 10.0) -> None:
        self.command(f'AT+MIPLCREATEEX="{self.server}",2')
        self.command(f'AT+MIPLADDOBJ=0,{SENSOR_OBJECT},1,"1",1,0')
        self.command(f"AT+MIPLOPEN=0,{lifetime}")
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                raise ModemError("no registration event") from None
            if event == 6:
                return
            if event in (3, 7):
                raise ModemError(f"registration failed (event {event})")

    def report(self, value: float) -> bool:
        """Notify the platform of a new temperature; False while nothing observes it."""
        mid = self._observe_mid
        if mid is None:
            return False
        text = _format(value)
        self.command(
            f'AT+MIPLNOTIFY=0,{mid},{SENSOR_OBJECT},0,{SENSOR_VALUE},{FLOAT_TYPE},{len(text)},"{text}",0,0'
        )
        return True

    def _dispatch_loop(self) -> None:
        while (urc := self._urcs.get()) is not None:
            try:
                self._answer(urc)
            except ModemError:
                continue

    def _answer(self, urc: str) -> None:
        name, _, rest = urc.partition(":")
        fields = [f.strip() for f in rest.split(",")]
        if name == "+MIPLEVENT":
            self.events.put(int(fields[1]))
        elif name == "+MIPLREAD":
            mid, obj, inst = fields[1], int(fields[2]), int(fields[3])
            if obj != SENSOR_OBJECT:
                self.command(f"AT+MIPLREADRSP=0,{mid},13")
                return
            text = _format(self.read_sensor())
            self.command(
                f'AT+MIPLREADRSP=0,{mid},1,{obj},{inst},{SENSOR_VALUE},{FLOAT_TYPE},{len(text)},"{text}",0,0'
            )
        elif name == "+MIPLOBSERVE":
            mid, flag, obj = fields[1], fields[2], int(fields[3])
            self.command(f"AT+MIPLOBSERVERSP=0,{mid},1")
            if obj == SENSOR_OBJECT:
                self._observe_mid = int(mid) if flag == "1" else None
                if flag == "1":
                    self.observed.set()
        elif name == "+MIPLDISCOVER":
            resources = str(SENSOR_VALUE)
            self.command(f'AT+MIPLDISCOVERRSP=0,{fields[2]},1,{len(resources)},"{resources}"')
        elif name == "+MIPLPARAMETER":
            self.command(f"AT+MIPLPARAMETERRSP=0,{fields[1]},1")
        elif name == "+MIPLWRITE":
            self.command(f"AT+MIPLWRITERSP=0,{fields[1]},14")  # 4.05: nothing to write
        elif name == "+MIPLEXECUTE":
            self.command(f"AT+MIPLEXECUTERSP=0,{fields[1]},14")


def _format(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
