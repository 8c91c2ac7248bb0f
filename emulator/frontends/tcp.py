"""AT over TCP: a socket stands in for the module's UART (manual §2.1 framing is unchanged).

Design choices: one connection at a time, like one MCU on one UART; a second client is closed at
once. Bytes received go to `EmulatedModule.feed`; the module's output goes to the connection. The
module keeps its state across connections (a reconnecting MCU finds the module as it left it).
"""

from __future__ import annotations

import asyncio
import logging

from emulator.runner import EmulatedModule

log = logging.getLogger(__name__)

READ_SIZE = 4096


async def serve_tcp(module: EmulatedModule, host: str, port: int) -> asyncio.Server:
    """Listen on `host:port` (0 = any free port); the server is closed by `module.stop()`."""
    busy = asyncio.Lock()
    handlers: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if busy.locked():
            writer.close()
            return
        task = asyncio.current_task()
        async with busy:
            if task is not None:
                handlers.add(task)
            module.add_listener(writer.write)
            try:
                while data := await reader.read(READ_SIZE):
                    module.feed(data)
            except ConnectionError as exc:
                log.info("AT connection lost: %s", exc)
            except asyncio.CancelledError:
                pass
            finally:
                handlers.discard(task)  # type: ignore[arg-type]
                module.remove_listener(writer.write)
                writer.close()

    server = await asyncio.start_server(connection, host, port)

    async def close() -> None:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    module.on_close(close)
    return server
