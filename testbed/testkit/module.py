"""`Module`: one emulated OneMO module attached to a `PrivateCloud`, reachable as a Python object,
a TCP port (`socket://` URL for pyserial) and a PTY path, driven from synchronous test code.

Design choices:
- The module's output is one transcript (manual §2.1 framing, echo included); `expect(regex)`
  moves a cursor through it in order, whichever front-end the bytes also went to. `command()`
  waits for its own final result code after the point where it was sent and leaves the cursor
  alone, so URCs that arrived meanwhile are still there for `expect`.
- `login()` types the AT sequence a firmware would use for the module's carrier (manual §4.6
  AT+MIPLCREATEEX, §4.1 AT+MIPLCFG, §3.3 AT+MIPLADDOBJ, §3.6 AT+MIPLOPEN) against the carrier's
  real host name, which the cloud's host map resolves to its own listener.
- IMEIs made up by the factory are 15 digits with a valid Luhn check digit and differ per worker
  and per module.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from testbed.testkit.addresses import worker_index

if TYPE_CHECKING:
    from emulator.module.fota import FotaFaults
    from emulator.runner import EmulatedModule
    from server.services.provisioning import Device
    from testbed.testkit.cloud import CarrierProduct, PrivateCloud

FINAL_RESULT: Final = re.compile(r"\r\n(OK|ERROR|\+CIS ERROR: ?\d+|\+CME ERROR: ?\d+)\r\n")
POLL_INTERVAL: Final = 0.01
# AT+MIPLCFG "platform" numbers (manual §4.1); "custom" logs in at the cloud's `default` listener.
PLATFORMS: Final = {"onenet": 0, "ctwing": 1, "yanfei": 2, "huawei": 3, "custom": 10}
DEFAULT_MODEL: Final = "ML307R"


class AtCommandError(AssertionError):
    """An AT command did not end in OK; carries the command and the module's answer."""

    def __init__(self, line: str, answer: str) -> None:
        super().__init__(f"{line!r} answered {answer!r}")
        self.line = line
        self.answer = answer


def luhn_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


_serial = itertools.count(1)


def make_imei(prefix: str = "8699750") -> str:
    """A fresh 15-digit IMEI: prefix, worker number, a process-wide counter, check digit."""
    body = f"{prefix}{worker_index() % 100:02d}{next(_serial) % 100_000:05d}"[:14]
    return body + luhn_digit(body)


def make_imsi(imei: str) -> str:
    return "46000" + imei[-10:]


@dataclass(frozen=True, slots=True)
class Frontends:
    tcp_port: int
    pty_path: str


class Module:
    """An emulated module: `send`, `command`, `expect`, `login`, and its serial front-ends."""

    def __init__(
        self,
        cloud: PrivateCloud,
        emulated: EmulatedModule,
        frontends: Frontends,
        *,
        carrier: str,
        device: Device | None,
    ) -> None:
        self.cloud = cloud
        self.emulated = emulated
        self.carrier = carrier
        self.device = device
        self.tcp_port = frontends.tcp_port
        self.pty_path = frontends.pty_path

    # --- identity and addresses ----------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.emulated.model_name

    @property
    def imei(self) -> str:
        return self.emulated.imei

    @property
    def imsi(self) -> str:
        return self.emulated.imsi

    @property
    def endpoint(self) -> str:
        """The endpoint name `login()` registers with (OneNET `IMEI;IMSI`, the others `IMEI`;
        manual §4.1 default patterns; custom keeps the OneNET default of the module)."""
        return self.imei if self.carrier in ("ctwing", "yanfei", "huawei") else f"{self.imei};{self.imsi}"

    @property
    def serial_url(self) -> str:
        """pyserial URL of the TCP front-end: `serial.serial_for_url(module.serial_url)`."""
        return f"socket://127.0.0.1:{self.tcp_port}"

    @property
    def server_uri(self) -> str:
        """The `host:port` a firmware puts into AT+MIPLCREATEEX for this module's carrier."""
        from testbed.testkit.cloud import CARRIER_HOSTS

        if self.carrier in CARRIER_HOSTS:
            return f"{CARRIER_HOSTS[self.carrier]}:5683"
        host, port = self.cloud.coap_address
        return f"{host}:{port}"

    # --- bytes in, bytes out -------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Bytes as the MCU's UART would send them."""
        self.cloud.loop.call(lambda: self.emulated.feed(data))

    def send(self, line: str) -> None:
        """One AT command line (the `<CR>` is added)."""
        self.write(line.encode("utf-8") + b"\r")

    @property
    def transcript(self) -> str:
        """Everything the module printed so far (echo, responses, URCs)."""
        return self.cloud.loop.call(lambda: self.emulated.transcript).decode("utf-8", errors="replace")

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 5.0) -> re.Match[str]:
        """The next match of `pattern` in the output after the previous `expect` match."""
        try:
            return self.cloud.loop.run(self.emulated.expect(pattern, timeout), timeout + 5.0)
        except TimeoutError:
            tail = self.transcript[-600:]
            shown = pattern if isinstance(pattern, str) else pattern.pattern
            raise TimeoutError(
                f"no {shown!r} from the module within {timeout} s; output ends {tail!r}"
            ) from None

    def command(self, line: str, timeout: float = 5.0, *, check: bool = True) -> list[str]:
        """Send `line` and wait for its final result code; returns the response lines before it
        (echo and blank lines left out). Raises `AtCommandError` unless it ends in OK (`check`)."""
        start = len(self.cloud.loop.call(lambda: self.emulated.transcript))
        self.send(line)
        deadline = time.monotonic() + timeout
        while True:
            output = self.cloud.loop.call(lambda: self.emulated.transcript)[start:].decode("utf-8", "replace")
            match = FINAL_RESULT.search(output)
            if match is not None:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{line!r}: no final result within {timeout} s; got {output!r}")
            time.sleep(POLL_INTERVAL)
        body = output[: match.start()].split("\r\n")
        lines = [part for part in body if part.strip() and part.strip() != line.strip()]
        if check and match.group(1) != "OK":
            raise AtCommandError(line, match.group(1))
        return lines

    # --- the carrier login ---------------------------------------------------------------------

    def login(self, lifetime: int = 3600, objects: Mapping[int, int] | None = None) -> None:
        """Create the LwM2M client for the module's carrier, add `objects` ({object id: instance
        count}, default one 3303 temperature instance) and AT+MIPLOPEN. Returns after OK; the
        registration result follows as `+MIPLEVENT: 0,6` (or 0,7). The module logs in the same
        way again by itself whenever it powers up again (after a firmware update's reboot)."""
        lines = [f'AT+MIPLCREATEEX="{self.server_uri}",2']
        if self.carrier not in ("onenet", "custom"):
            lines.append(f'AT+MIPLCFG="platform",0,{PLATFORMS[self.carrier]}')
        for object_id, count in (objects or {3303: 1}).items():
            lines.append(f'AT+MIPLADDOBJ=0,{object_id},{count},"{"1" * count}",1,0')
        lines.append(f"AT+MIPLOPEN=0,{lifetime}")
        self.cloud.loop.call(lambda: self.emulated.remember_login(lines))
        for line in lines:
            self.command(line)

    def stop(self) -> None:
        """Power the module off (front-ends closed, client socket dropped)."""
        if self.cloud._loop is not None:
            self.cloud.loop.run(self.emulated.stop(), 15.0)


class ModuleFactory:
    """Makes modules attached to one cloud; `close()` stops them all."""

    def __init__(self, cloud: PrivateCloud, products: Mapping[str, CarrierProduct] | None = None) -> None:
        self.cloud = cloud
        self.products = dict(products or {})
        self.modules: list[Module] = []

    def __call__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        imei: str | None = None,
        imsi: str | None = None,
        carrier: str = "onenet",
        product: CarrierProduct | None = None,
        provision: bool = True,
        request_timeout: float = 5.0,
        fota_faults: str = "",
    ) -> Module:
        """A started module with TCP and PTY front-ends. For `onenet` and `ctwing` the device is
        provisioned in `product` (default: the factory's product of that carrier, created on
        first use) unless `provision` is False. `fota_faults` asks for faults of firmware updates
        (`emulator.module.fota.FotaFaults` text form: "cut=50,corrupt,rate=2048", ...)."""
        from emulator.module.fota import FotaFaults

        faults = FotaFaults.parse(fota_faults)
        if carrier not in PLATFORMS:
            raise ValueError(f"carrier must be one of {sorted(PLATFORMS)}")
        imei = imei or make_imei()
        imsi = imsi or make_imsi(imei)
        device = None
        if provision and carrier != "custom":
            if product is None:
                product = self.products.get(carrier)
                if product is None:
                    product = self.products[carrier] = self.cloud.create_product(carrier)
            device = self.cloud.provision(product, imei, imsi)
        emulated, frontends = self.cloud.run(self._start(model, imei, imsi, request_timeout, faults))
        module = Module(self.cloud, emulated, frontends, carrier=carrier, device=device)
        self.modules.append(module)
        return module

    async def _start(
        self, model: str, imei: str, imsi: str, request_timeout: float, faults: FotaFaults | None = None
    ) -> tuple[EmulatedModule, Frontends]:
        from emulator.frontends.pty import open_pty
        from emulator.frontends.tcp import serve_tcp
        from emulator.runner import EmulatedModule

        emulated = EmulatedModule(
            model,
            imei=imei,
            imsi=imsi,
            hosts=self.cloud.hosts,
            request_timeout=request_timeout,
            fota_faults=faults,
        )
        emulated.hosts.default = self.cloud.default_host
        await emulated.start()
        tcp = await serve_tcp(emulated, "127.0.0.1", 0)
        port = int(tcp.sockets[0].getsockname()[1])
        return emulated, Frontends(port, open_pty(emulated))

    def close(self) -> None:
        for module in reversed(self.modules):
            module.stop()
        self.modules.clear()
