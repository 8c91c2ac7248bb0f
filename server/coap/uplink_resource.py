"""The uplink side of a CoAP listener: the catch-all aiocoap resource that parses every request
reaching the listener into a typed request (`server.services.requests`) and hands it to the
listener's `UplinkHandler`; the handler's `UplinkResult` becomes the CoAP response. The RD paths
are `/rd` (Register), `/rd/<id>` (Update, De-register), `/bs` (Bootstrap-Request) and `/dp`
(Send), per Core 1.1.1 §6 and Transport 1.1.1 §6.4; anything else is 4.04 (or the firmware
resource, `/fw/{id}`). A request that does not parse is answered 4.00 without involving the
services; nothing a handler raises reaches the socket: it becomes 5.00.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import aiocoap
import aiocoap.resource
from aiocoap.numbers.codes import Code

from lwm2m.numbers import CoapCode, ContentFormat
from server.services.requests import (
    BootstrapRequest,
    DeregisterRequest,
    RegisterRequest,
    SendRequest,
    UpdateRequest,
    UplinkResult,
)

if TYPE_CHECKING:
    from server.coap.listener import CoapListener

log = logging.getLogger(__name__)

# Custom options LwM2M carriers put on registration messages (OneNET's auth code is option 63).
CARRIED_OPTIONS = (63,)


class UplinkHandler(Protocol):
    async def register(self, request: RegisterRequest) -> UplinkResult: ...

    async def update(self, request: UpdateRequest) -> UplinkResult: ...

    async def deregister(self, request: DeregisterRequest) -> UplinkResult: ...

    async def send(self, request: SendRequest) -> UplinkResult: ...

    async def bootstrap(self, request: BootstrapRequest) -> UplinkResult: ...


class InvalidUplink(ValueError):
    """A request the listener answers 4.00 without involving the services."""


def _host_of(remote: Any) -> tuple[str, int]:
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr is None:
        raise InvalidUplink("request without a UDP source address")
    host, port = sockaddr[0], sockaddr[1]
    if host.startswith("::ffff:"):
        host = host[7:]
    return host, int(port)


def _query(request: aiocoap.Message) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in request.opt.uri_query:
        key, sep, value = item.partition("=")
        params[key] = value if sep else None
    return params


def _int_param(params: dict[str, str | None], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidUplink(f"{name}={raw!r} is not a number")
    return int(raw)


def _options(request: aiocoap.Message) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for option in request.opt.option_list():
        if int(option.number) in CARRIED_OPTIONS:
            found[int(option.number)] = option.encode()
    return found


def _link_payload(request: aiocoap.Message) -> str:
    cf = request.opt.content_format
    if cf is not None and int(cf) != ContentFormat.LINK:
        raise InvalidUplink(f"registration payload must be link format, not {int(cf)}")
    try:
        return request.payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUplink("registration payload is not UTF-8") from exc


class UplinkResource(aiocoap.resource.Resource):
    """Catch-all resource that routes `/rd`, `/rd/<id>`, `/bs` and `/dp`."""

    def __init__(self, listener: CoapListener) -> None:
        super().__init__()
        self.listener = listener

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        # Firmware downloads (`/fw/{id}`) are served block by block by `FirmwareServer`.
        return not (request.opt.uri_path and request.opt.uri_path[0] == "fw")

    async def render_to_pipe(self, pipe: Any) -> None:
        # Register and Update: the answer is on the wire (aiocoap sends it from add_response,
        # at the end of the render) before any request of their after-hooks leaves for the peer.
        request = pipe.request
        peer = peer_of(request.remote) if tuple(request.opt.uri_path)[:1] == ("rd",) else None
        if peer is None:
            await super().render_to_pipe(pipe)
            return
        gate = self.listener.answering(peer)
        try:
            await super().render_to_pipe(pipe)
        finally:
            self.listener.answered(peer, gate)

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        listener = self.listener
        listener.counters.requests += 1
        try:
            typed = self._parse(request)
        except InvalidUplink as exc:
            listener.counters.bad_requests += 1
            return aiocoap.Message(code=Code.BAD_REQUEST, payload=str(exc).encode()[:120])
        if typed is None:
            return aiocoap.Message(code=Code.NOT_FOUND)
        if isinstance(typed, aiocoap.Message):
            return typed
        try:
            result = await listener.dispatch(typed)
        except Exception:
            listener.counters.handler_errors += 1
            log.exception("uplink handler failed for %s", type(typed).__name__)
            return aiocoap.Message(code=Code.INTERNAL_SERVER_ERROR)
        if result.code == CoapCode.BAD_REQUEST:
            listener.counters.bad_requests += 1
        response = aiocoap.Message(code=Code(int(result.code)), payload=result.diagnostic.encode()[:120])
        if result.location:
            response.opt.location_path = result.location
        return response

    def _parse(
        self, request: aiocoap.Message
    ) -> (
        RegisterRequest
        | UpdateRequest
        | DeregisterRequest
        | SendRequest
        | BootstrapRequest
        | aiocoap.Message
        | None
    ):
        path = tuple(request.opt.uri_path)
        method = request.code
        host, port = _host_of(request.remote)
        origin = self.listener.origin_for(host, port)
        if len(request.payload) > self.listener.max_payload:
            return aiocoap.Message(code=Code.REQUEST_ENTITY_TOO_LARGE)
        if path[:1] == ("fw",) and self.listener.firmware is not None:
            return self.listener.firmware.render(request, origin)
        if path == ("rd",):
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            params = _query(request)
            endpoint = params.get("ep")
            if not endpoint:
                raise InvalidUplink("registration without ep=")
            lifetime = _int_param(params, "lt")
            if lifetime is not None and lifetime == 0:
                raise InvalidUplink("lifetime must be positive")
            return RegisterRequest(
                origin=origin,
                endpoint=endpoint,
                lifetime=86400 if lifetime is None else lifetime,
                lwm2m_version=params.get("lwm2m") or "1.0",
                binding=params.get("b") or "U",
                queue_mode="Q" in params or "Q" in (params.get("b") or ""),
                sms=params.get("sms"),
                object_links=_link_payload(request),
                options=_options(request),
            )
        if len(path) == 2 and path[0] == "rd":
            if method == Code.DELETE:
                return DeregisterRequest(origin=origin, registration_id=path[1])
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            params = _query(request)
            lifetime = _int_param(params, "lt")
            if lifetime is not None and lifetime == 0:
                raise InvalidUplink("lifetime must be positive")
            return UpdateRequest(
                origin=origin,
                registration_id=path[1],
                lifetime=lifetime,
                binding=params.get("b"),
                sms=params.get("sms"),
                object_links=_link_payload(request) if request.payload else None,
                options=_options(request),
            )
        if path == ("bs",):
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            params = _query(request)
            endpoint = params.get("ep")
            if not endpoint:
                raise InvalidUplink("bootstrap request without ep=")
            return BootstrapRequest(
                origin=origin,
                endpoint=endpoint,
                preferred_content_format=_int_param(params, "pct"),
                options=_options(request),
            )
        if path == ("dp",):
            if method != Code.POST:
                return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
            cf = request.opt.content_format
            return SendRequest(
                origin=origin, content_format=None if cf is None else int(cf), payload=request.payload
            )
        return None


def peer_of(remote: Any) -> tuple[str, int] | None:
    try:
        return _host_of(remote)
    except InvalidUplink:
        return None
