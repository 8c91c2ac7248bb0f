"""AT over a pseudo-terminal: `/dev/pts/N` opens like the module's serial port (pyserial,
minicom, a vendor tool).

Design choices: the slave side is put in raw mode (no echo, no line editing: the module echoes
itself, manual ATE) and kept open by the emulator, so the master never sees EOF when a program
closes the port and a later program can open it again. The master is read with
`loop.add_reader`; module output is written to the master.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty

from emulator.runner import EmulatedModule

READ_SIZE = 4096


def open_pty(module: EmulatedModule) -> str:
    """Open a pseudo-terminal for `module`; returns the slave path. Closed by `module.stop()`."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(master, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            loop.remove_reader(master)
            return
        if data:
            module.feed(data)

    def write(data: bytes) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(master, data)

    loop.add_reader(master, readable)
    module.add_listener(write)

    def close() -> None:
        loop.remove_reader(master)
        module.remove_listener(write)
        os.close(master)
        os.close(slave)

    module.on_close(close)
    return path
