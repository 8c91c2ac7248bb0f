"""A timestamped transcript of everything on a module's AT port (issue 4: "every line in and out
can be written to a timestamped transcript").

One line per complete line on the wire:

    2024-05-01T08:30:12.345678+00:00 > AT+MIPLOPEN=0,3000,30
    2024-05-01T08:30:12.346012+00:00 < OK

`>` is MCU -> module, `<` module -> MCU (the raw echo included, as a serial sniffer would see
it). Lines are cut at CR or LF, blank ones dropped; the timestamp is when the line's last byte
arrived (UTC). Bytes that are not printable ASCII or UTF-8 text are shown as `\\xNN` escapes.

Design choices: plain synchronous appends, flushed per line, so a crashed run still leaves its
transcript; a partial line is written on `close()`. Meant for one module or a handful — a fleet
of thousands should not write transcripts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

TO_MODULE: Final = ">"
FROM_MODULE: Final = "<"


def _render(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c):02x}" for c in text)


class TranscriptWriter:
    """Appends timestamped lines to a text stream (a file opened by `open_transcript`, or any
    `TextIO`)."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], datetime] | None = None) -> None:
        self.stream = stream
        self._clock = clock or (lambda: datetime.now(UTC))
        self._partial: dict[str, bytearray] = {TO_MODULE: bytearray(), FROM_MODULE: bytearray()}

    def to_module(self, data: bytes) -> None:
        self._record(TO_MODULE, data)

    def from_module(self, data: bytes) -> None:
        self._record(FROM_MODULE, data)

    def _record(self, direction: str, data: bytes) -> None:
        buffer = self._partial[direction]
        for byte in data:
            if byte in (0x0D, 0x0A):
                if buffer:
                    self._write(direction, bytes(buffer))
                    buffer.clear()
            else:
                buffer.append(byte)

    def _write(self, direction: str, raw: bytes) -> None:
        if self.stream.closed:
            return
        self.stream.write(f"{self._clock().isoformat()} {direction} {_render(raw)}\n")
        self.stream.flush()

    def close(self) -> None:
        for direction, buffer in self._partial.items():
            if buffer:
                self._write(direction, bytes(buffer))
                buffer.clear()
        if not self.stream.closed:
            self.stream.close()


def open_transcript(path: str | Path) -> TranscriptWriter:
    """Append to `path` (created with its parent folders)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    return TranscriptWriter(file.open("a", encoding="utf-8"))
