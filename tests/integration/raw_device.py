"""A LwM2M client made of one UDP socket, for tests that need to see (or choose) the exact bytes:
it registers with the query and link payload a test gives, records every datagram it receives in
arrival order, and answers each request from the server with what the test's `answer` returns
(a piggybacked response in the ACK of a confirmable request)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import ACK, CON

Answer = Callable[[aiocoap.Message], aiocoap.Message | None]


def content(payload: bytes, content_format: int | None) -> aiocoap.Message:
    """A 2.05 answer with `payload` (no Content-Format option when None)."""
    message = aiocoap.Message(code=Code.CONTENT, payload=payload)
    if content_format is not None:
        message.opt.content_format = content_format
    return message


def _changed(_request: aiocoap.Message) -> aiocoap.Message:
    return aiocoap.Message(code=Code.CHANGED)


class RawDevice(asyncio.DatagramProtocol):
    def __init__(self, server: tuple[str, int], answer: Answer = _changed) -> None:
        self.server = server
        self.answer = answer
        self.received: list[aiocoap.Message] = []  # every datagram, decoded, in arrival order
        self.requests: list[aiocoap.Message] = []  # the server's requests among them
        self.transport: asyncio.DatagramTransport | None = None
        self.location: tuple[str, ...] = ()
        self._waiting: dict[int, asyncio.Future[aiocoap.Message]] = {}
        self._arrived = asyncio.Event()
        self._mid = secrets.randbelow(0xFFFF)
        self.silent = False  # when set, requests are recorded and left unanswered

    @classmethod
    async def open(
        cls, server: tuple[str, int], answer: Answer = _changed, bind: str = "127.0.0.1"
    ) -> RawDevice:
        device = cls(server, answer)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: device, local_addr=(bind, 0))
        return device

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        message = aiocoap.Message.decode(data)
        self.received.append(message)
        self._arrived.set()
        if message.code.is_response() or message.code == Code.EMPTY:
            waiter = self._waiting.pop(message.mid, None)
            if waiter is not None and not waiter.done() and message.mtype == ACK:
                waiter.set_result(message)
            return
        self.requests.append(message)
        if self.silent:
            return
        response = self.answer(message)
        if response is None:
            return
        response.mtype = ACK if message.mtype == CON else message.mtype
        response.mid = message.mid if message.mtype == CON else self._next_mid()
        response.token = message.token
        assert self.transport is not None
        self.transport.sendto(response.encode(), addr)

    def _next_mid(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    async def request(
        self,
        code: Code,
        path: tuple[str, ...],
        query: tuple[str, ...] = (),
        payload: bytes = b"",
        content_format: int | None = None,
        timeout: float = 5.0,
    ) -> aiocoap.Message:
        message = aiocoap.Message(code=code, payload=payload)
        message.mtype = CON
        message.mid = self._next_mid()
        message.token = secrets.token_bytes(4)
        message.opt.uri_path = path
        message.opt.uri_query = query
        if content_format is not None:
            message.opt.content_format = content_format
        waiter: asyncio.Future[aiocoap.Message] = asyncio.get_running_loop().create_future()
        self._waiting[message.mid] = waiter
        assert self.transport is not None
        self.transport.sendto(message.encode(), self.server)
        return await asyncio.wait_for(waiter, timeout)

    async def register(
        self, endpoint: str, links: str, *, lwm2m: str = "1.1", lifetime: int = 300
    ) -> aiocoap.Message:
        response = await self.request(
            Code.POST,
            ("rd",),
            (f"ep={endpoint}", f"lt={lifetime}", f"lwm2m={lwm2m}", "b=U"),
            links.encode(),
            content_format=40,
        )
        assert response.code == Code.CREATED, response
        self.location = tuple(response.opt.location_path)
        return response

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[aiocoap.Message]:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.requests

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
