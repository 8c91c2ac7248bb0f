"""A raw CoAP peer for registration-interface tests: sends exactly the bytes a test writes."""

from __future__ import annotations

import aiocoap
from aiocoap.numbers.codes import Code


class RawPeer:
    def __init__(self, context: aiocoap.Context, server: tuple[str, int]) -> None:
        self.context = context
        self.server = server

    @classmethod
    async def create(cls, server: tuple[str, int]) -> RawPeer:
        context = await aiocoap.Context.create_server_context(
            None, bind=("127.0.0.1", 0), transports=["udp6"]
        )
        return cls(context, server)

    async def request(
        self,
        method: Code,
        path: str,
        query: tuple[str, ...] = (),
        payload: bytes = b"",
        content_format: int | None = None,
    ) -> aiocoap.Message:
        msg = aiocoap.Message(code=method, uri=f"coap://{self.server[0]}:{self.server[1]}", payload=payload)
        msg.opt.uri_host = None
        msg.opt.uri_path = tuple(s for s in path.split("/") if s)
        msg.opt.uri_query = query
        if content_format is not None:
            msg.opt.content_format = content_format
        return await self.context.request(msg).response

    async def close(self) -> None:
        await self.context.shutdown()
