"""Byte framing of response lines (OneMO LwM2M AT manual §2.1: `<CR><LF>response<CR><LF>`).

The engine and the module speak in lines without terminators; a front-end that writes to a
serial port or a socket wraps its byte writer in a `ByteFramer` and hands `framer.on_line` (and
`framer.on_echo` for raw echo) to the module.
"""

from __future__ import annotations

from collections.abc import Callable

CRLF = b"\r\n"


def frame_line(line: str) -> bytes:
    """`OK` -> b"\\r\\nOK\\r\\n"."""
    return CRLF + line.encode("utf-8") + CRLF


def on_bytes(write: Callable[[bytes], None]) -> Callable[[str], None]:
    """The module's line sink for a front-end that writes bytes: `Module(sink=on_bytes(port.write))`."""
    return ByteFramer(write).on_line


class ByteFramer:
    """Adapts a byte writer to the module's line sink and raw echo sink."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write

    def on_line(self, line: str) -> None:
        self._write(frame_line(line))

    def on_echo(self, data: bytes) -> None:
        self._write(data)
