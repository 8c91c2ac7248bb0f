"""An asyncio event loop in a daemon thread, driven from synchronous code.

`run(coro)` submits a coroutine and blocks until it finishes (re-raising its exception); `stop()`
cancels what is left and joins the thread. The loop thread is the only thread that touches the
cloud's and the modules' asyncio objects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "lwm2m-testbed") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def run(self, awaitable: Awaitable[T], timeout: float | None = 60.0) -> T:
        """Run `awaitable` on the loop and wait for its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from the loop's own thread")

        async def wrapper() -> T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def call(self, function: Callable[[], T], timeout: float | None = 10.0) -> T:
        """Call a plain function on the loop thread and return its result."""

        async def wrapper() -> T:
            return function()

        return self.run(wrapper(), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return

        async def cancel_rest() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        try:
            self.run(cancel_rest(), timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()
