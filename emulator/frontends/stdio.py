"""AT over standard input and output: the module's UART is the terminal (or a pipe).

Design choices: bytes read from stdin go to `EmulatedModule.feed` as they come (any chunking, as
from a serial port); the module's output, echo included, is written to stdout and flushed at
once. End of input ends the session: the returned task finishes, so a script can pipe a batch
of AT lines through the module (or redirect a file, or /dev/null) and read its answers. Pipes,
sockets and terminals are watched by the event loop; a regular file or /dev/null, which epoll
cannot watch, is read in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from emulator.runner import EmulatedModule

READ_SIZE = 4096


async def serve_stdio(
    module: EmulatedModule, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> asyncio.Task[None]:
    """Connect `module` to stdin/stdout; the task ends at end of input (or on `module.stop()`)."""
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    read, close_input = await _chunk_reader(source)

    def write(data: bytes) -> None:
        sink.write(data)
        sink.flush()

    module.add_listener(write)

    async def pump() -> None:
        try:
            while data := await read():
                module.feed(data)
            # Let the answers to the last lines reach stdout before the session ends.
            await asyncio.sleep(0.2)
        finally:
            module.remove_listener(write)
            close_input()

    task = asyncio.create_task(pump(), name="at-stdio")

    async def close() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    module.on_close(close)
    return task


async def _chunk_reader(source: BinaryIO) -> tuple[Callable[[], Awaitable[bytes]], Callable[[], None]]:
    """(read, close) for `source`: pipes, sockets and terminals are watched by the event loop; a
    regular file or a device the loop cannot watch (`< file`, `< /dev/null`) is read in a worker
    thread. `read()` returns b"" at end of input."""
    loop = asyncio.get_running_loop()
    mode = os.fstat(source.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(source.fileno()):
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)
        return (lambda: reader.read(READ_SIZE)), transport.close
    fd = source.fileno()

    async def read_file() -> bytes:
        return await loop.run_in_executor(None, os.read, fd, READ_SIZE)

    return read_file, lambda: None
