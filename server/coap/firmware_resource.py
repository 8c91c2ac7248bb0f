"""Firmware packages over CoAP: `GET /fw/{id}` with Block2 (RFC 7959) on every listener, plain and
behind DTLS (`coap://host:5683/fw/{id}`, `coaps://host:5684/fw/{id}`).

- The block size is the one the client asks for (SZX 0..6; larger is answered with 1024-byte
  blocks, RFC 7959 §2.2), any block number may be asked first, so a download resumes where it
  stopped; a block past the end is 4.02 Bad Option. Every response carries the package's ETag
  and Size2 (RFC 7959 §4), so a client sees when the package changed.
- Each block is a slice of the one copy the firmware store holds; nothing is copied per download.
- Behind DTLS only a device's own identity may fetch (`may_fetch`: the update tasks know which
  devices a package is for); otherwise 4.03. A query `ep=<endpoint>` attributes the bytes to a
  device, for the task's progress (`on_served`).
"""

from __future__ import annotations

from collections.abc import Callable

import aiocoap
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption

from lwm2m.numbers import ContentFormat
from server.services.firmware_store import FirmwareStore
from server.services.requests import Origin

MAX_SZX = 6
OCTET_STREAM = int(ContentFormat.OPAQUE)

# (firmware id, origin with its PSK identity) -> may this DTLS peer fetch the package?
FetchCheck = Callable[[int, Origin], bool]
# (firmware id, endpoint from ep= or None, origin, bytes served up to) -> None
ServedHook = Callable[[int, str | None, Origin, int], None]


class FirmwareServer:
    def __init__(
        self,
        store: FirmwareStore,
        may_fetch: FetchCheck | None = None,
        on_served: ServedHook | None = None,
    ) -> None:
        self.store = store
        self.may_fetch = may_fetch
        self.on_served = on_served
        self.blocks_served = 0

    def render(self, request: aiocoap.Message, origin: Origin) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        if request.code != Code.GET:
            return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
        if len(path) != 2 or not path[1].isdigit() or len(path[1]) > 9:
            return aiocoap.Message(code=Code.NOT_FOUND)
        firmware_id = int(path[1])
        package = self.store.find(firmware_id)
        if package is None:
            return aiocoap.Message(code=Code.NOT_FOUND)
        if origin.secure_identity is not None and self.may_fetch is not None:
            if not self.may_fetch(firmware_id, origin):
                return aiocoap.Message(code=Code.FORBIDDEN, payload=b"not for this identity")
        data = memoryview(self.store.content(firmware_id))
        asked = request.opt.block2
        number, szx = (asked.block_number, min(asked.size_exponent, MAX_SZX)) if asked else (0, MAX_SZX)
        if asked is not None and asked.size_exponent > MAX_SZX:
            # A larger block asked for: the same bytes in 1024-byte blocks.
            number = number << (asked.size_exponent - MAX_SZX)
        size = 16 << szx
        start = number * size
        if start >= len(data) and not (start == 0 and len(data) == 0):
            return aiocoap.Message(code=Code.BAD_OPTION, payload=b"block past the end")
        end = min(start + size, len(data))
        more = end < len(data)
        # A view of the shared copy: the response holds no bytes of its own.
        response = aiocoap.Message(code=Code.CONTENT, payload=data[start:end])
        response.opt.content_format = OCTET_STREAM
        response.opt.etag = package.etag
        response.opt.size2 = len(data)
        if asked is not None or more:
            response.opt.block2 = BlockOption.BlockwiseTuple(number, more, szx)
        self.blocks_served += 1
        if self.on_served is not None:
            endpoint = None
            for item in request.opt.uri_query:
                key, _, value = item.partition("=")
                if key == "ep" and value:
                    endpoint = value
            self.on_served(firmware_id, endpoint, origin, end)
        return response
