"""AT over TCP: a socket stands in for the module's UART (manual §2.1 framing is unchanged).

Design choices: one connection at a time, like one MCU on one UART; a new connection takes over
from the current one, which is closed (a driver that probes the port and reconnects at once, or
one that restarts without closing its socket, is never turned away). Every connection starts on
an empty line: a half line the previous connection left is forgotten. Bytes received go to
`EmulatedModule.feed`; the module's output goes to the current connection only. The module keeps
its state across connections (a reconnecting MCU finds the module as it left it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from emulator.runner import EmulatedModule

log = logging.getLogger(__name__)

READ_SIZE = 4096


@dataclass(eq=False)
class _Connection:
    writer: asyncio.StreamWriter
    task: asyncio.Task[None]


async def serve_tcp(module: EmulatedModule, host: str, port: int) -> asyncio.Server:
    """Listen on `host:port` (0 = any free port); the server is closed by `module.stop()`."""
    takeover = asyncio.Lock()
    current: list[_Connection] = []  # zero or one

    async def end(connection: _Connection) -> None:
        connection.writer.close()
        connection.task.cancel()
        await asyncio.gather(connection.task, return_exceptions=True)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        me = _Connection(writer, task)
        async with takeover:
            for previous in list(current):
                await end(previous)
            current[:] = [me]
            module.discard_partial_line()
            module.add_listener(writer.write)
        try:
            while data := await reader.read(READ_SIZE):
                module.feed(data)
        except ConnectionError as exc:
            log.info("AT connection lost: %s", exc)
        finally:
            module.remove_listener(writer.write)
            if me in current:
                current.remove(me)
            writer.close()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(reader, writer)
        except asyncio.CancelledError:
            writer.close()  # taken over, or the module stopped

    server = await asyncio.start_server(connection, host, port)

    async def close() -> None:
        server.close()
        for connection in list(current):
            await end(connection)
        await server.wait_closed()

    module.on_close(close)
    return server
