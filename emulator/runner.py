"""One emulated OneMO module on the event loop: the AT `Module`, an asyncio scheduler, the real
LwM2M client (`emulator.module.network`) and byte framing (manual §2.1), ready for a front-end.

Design choices:
- Output is framed bytes (`<CR><LF>line<CR><LF>`, raw echo as received); every byte goes to the
  registered listeners (a front-end's writer) and into a transcript that `expect()` searches,
  so tests read the same bytes a serial port would carry.
- `expect(regex)` searches the transcript from a cursor and moves the cursor past the match, so
  consecutive expectations read the output in order.
- `run_emulator` is the entry point for a CLI: it builds the module, opens the requested
  front-ends and serves until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path as FsPath

from emulator.at.framing import ByteFramer
from emulator.module.basic import DEFAULT_IMEI, DEFAULT_IMSI
from emulator.module.clock import AsyncioScheduler
from emulator.module.module import Module
from emulator.module.network import AiocoapClientPort, HostMap, Target, port_factory
from emulator.transcript import TranscriptWriter, open_transcript
from lwm2m.model import ModelRegistry
from lwm2m.model.builtin import builtin_registry

log = logging.getLogger(__name__)

OutputListener = Callable[[bytes], None]


class EmulatedModule:
    """A `Module` wired to the network and to byte output."""

    def __init__(
        self,
        model: str = "ML307R",
        *,
        imei: str = DEFAULT_IMEI,
        imsi: str = DEFAULT_IMSI,
        hosts: Mapping[str, Target] | None = None,
        registry: ModelRegistry | None = None,
        request_timeout: float = 10.0,
        echo: bool = True,
        transcript: str | FsPath | TranscriptWriter | None = None,
    ) -> None:
        self.model_name = model
        self.imei = imei
        self.imsi = imsi
        self.hosts = HostMap(hosts)
        self.registry = registry if registry is not None else builtin_registry()
        self.request_timeout = request_timeout
        self.echo = echo
        self.module: Module | None = None
        self._listeners: list[OutputListener] = []
        self._transcript = bytearray()
        self._cursor = 0
        self._changed = asyncio.Event()
        self._closers: list[Callable[[], Awaitable[None] | None]] = []
        # Every byte in and out, as timestamped lines (emulator.transcript), when asked for.
        self.transcript_writer = (
            open_transcript(transcript) if isinstance(transcript, str | FsPath) else transcript
        )

    async def start(self) -> None:
        if self.module is not None:
            return
        framer = ByteFramer(self._output)
        self.module = Module(
            self.model_name,
            imei=self.imei,
            imsi=self.imsi,
            client_factory=port_factory(self.registry, self.hosts, self.request_timeout),
            clock=AsyncioScheduler(asyncio.get_running_loop()),
            sink=framer.on_line,
            echo_sink=framer.on_echo,
            echo=self.echo,
        )

    async def stop(self) -> None:
        """Close the front-ends and drop the client's socket (a module powered off)."""
        for closer in reversed(self._closers):
            result = closer()
            if result is not None:
                await result
        self._closers.clear()
        module = self.module
        if module is not None:
            client = module.power_off()
            if isinstance(client, AiocoapClientPort):
                await client.aclose()
        if self.transcript_writer is not None:
            self.transcript_writer.close()

    def on_close(self, closer: Callable[[], Awaitable[None] | None]) -> None:
        """Run `closer` on `stop()` (front-ends register their cleanup here)."""
        self._closers.append(closer)

    def feed(self, data: bytes) -> None:
        if self.module is None:
            raise RuntimeError("EmulatedModule not started")
        if self.transcript_writer is not None:
            self.transcript_writer.to_module(data)
        self.module.feed(data)

    def discard_partial_line(self) -> None:
        """Forget a half-typed command line (a new MCU connection starts with an empty line)."""
        if self.module is not None:
            self.module.engine.discard_partial_line()

    def add_listener(self, listener: OutputListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: OutputListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    @property
    def transcript(self) -> bytes:
        return bytes(self._transcript)

    def _output(self, data: bytes) -> None:
        self._transcript += data
        if self.transcript_writer is not None:
            self.transcript_writer.from_module(data)
        self._changed.set()
        for listener in list(self._listeners):
            try:
                listener(data)
            except Exception:
                log.exception("output listener failed")

    async def expect(self, pattern: str | re.Pattern[str], timeout: float = 5.0) -> re.Match[str]:
        """Wait for `pattern` in the output after the last match; raises TimeoutError."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        async with asyncio.timeout(timeout):
            while True:
                text = self._transcript.decode("utf-8", errors="replace")
                match = regex.search(text, self._cursor)
                if match is not None:
                    self._cursor = match.end()
                    return match
                self._changed.clear()
                await self._changed.wait()


async def run_emulator(
    model: str,
    imei: str,
    imsi: str,
    tcp: str | None,
    pty: bool,
    *,
    hosts: Mapping[str, Target] | None = None,
    ready: Callable[[list[str]], None] | None = None,
    transcript: str | FsPath | None = None,
    stdio: bool = False,
) -> None:
    """Serve one emulated module until cancelled. `tcp` is "host:port" (or ":port"); `pty` opens a
    pseudo-terminal. `ready` receives the front-end addresses ("tcp://127.0.0.1:5000",
    "/dev/pts/3") once they are open; without it they are logged. `transcript` is a file that
    receives every line in and out with a timestamp (`emulator.transcript`). With `stdio` the module
    also talks over standard input and output, and the end of input ends the run."""
    from emulator.frontends.pty import open_pty
    from emulator.frontends.tcp import serve_tcp

    emulated = EmulatedModule(model, imei=imei, imsi=imsi, hosts=hosts, transcript=transcript)
    await emulated.start()
    addresses: list[str] = []
    try:
        if tcp is not None:
            host, _, port_text = tcp.rpartition(":")
            server = await serve_tcp(emulated, host or "127.0.0.1", int(port_text))
            bound = server.sockets[0].getsockname()
            addresses.append(f"tcp://{bound[0]}:{bound[1]}")
        if pty:
            addresses.append(open_pty(emulated))
        session = None
        if stdio:
            from emulator.frontends.stdio import serve_stdio

            session = await serve_stdio(emulated)
            addresses.append("stdio")
        if ready is not None:
            ready(addresses)
        else:
            log.info("emulated %s (IMEI %s) on %s", model, imei, ", ".join(addresses) or "nothing")
        if session is not None:
            await session
        else:
            await asyncio.Event().wait()
    finally:
        await emulated.stop()
