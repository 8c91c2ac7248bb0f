"""AT over standard input and output: the module's UART is the terminal (or a pipe).

Design choices: bytes read from stdin go to `EmulatedModule.feed` as they come (any chunking, as
from a serial port); the module's output, echo included, is written to stdout and flushed at
once. End of input ends the session: the returned task finishes, so a script can pipe a batch
of AT lines through the module and read its answers.
"""

from __future__ import annotations

import asyncio
import sys
from typing import BinaryIO

from emulator.runner import EmulatedModule

READ_SIZE = 4096


async def serve_stdio(
    module: EmulatedModule, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> asyncio.Task[None]:
    """Connect `module` to stdin/stdout; the task ends at end of input (or on `module.stop()`)."""
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _protocol = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)

    def write(data: bytes) -> None:
        sink.write(data)
        sink.flush()

    module.add_listener(write)

    async def pump() -> None:
        try:
            while data := await reader.read(READ_SIZE):
                module.feed(data)
            # Let the answers to the last lines reach stdout before the session ends.
            await asyncio.sleep(0.2)
        finally:
            module.remove_listener(write)
            transport.close()

    task = asyncio.create_task(pump(), name="at-stdio")

    async def close() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    module.on_close(close)
    return task
