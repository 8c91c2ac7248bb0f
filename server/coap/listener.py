"""One CoAP listener: an aiocoap server context bound to one (address, port).

Uplink: every request that reaches the listener is parsed here into a typed request
(`server.services.requests`) and handed to the `UplinkHandler`; its `UplinkResult` becomes the
CoAP response. The RD paths are `/rd` (Register), `/rd/<id>` (Update, De-register), `/bs`
(Bootstrap-Request) and `/dp` (Send), per Core 1.1.1 §6 and Transport 1.1.1 §6.4.

Downlink: `send()` and `observe()` send requests from this listener's own socket, which LwM2M
requires (a client behind NAT only hears from the address it registered with).

Robustness: unparsable datagrams are dropped by aiocoap; we count them by listening to its log
records (aiocoap's transports are not part of its API, its log messages are stable), and count
every request we answer 4.00. Nothing raised by a handler reaches the socket: it becomes 5.00.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiocoap
import aiocoap.error
import aiocoap.resource
from aiocoap.numbers.codes import Code

from lwm2m.numbers import CoapCode, ContentFormat
from server.services.errors import DeviceTimeout, DeviceUnreachable
from server.services.requests import (
    BootstrapRequest,
    DeregisterRequest,
    Downlink,
    DownlinkResponse,
    Origin,
    RegisterRequest,
    SendRequest,
    UpdateRequest,
    UplinkResult,
)

log = logging.getLogger(__name__)

# Custom options LwM2M carriers put on registration messages (OneNET's auth code is option 63).
CARRIED_OPTIONS = (63,)

_METHODS = {
    "GET": Code.GET,
    "PUT": Code.PUT,
    "POST": Code.POST,
    "DELETE": Code.DELETE,
    "FETCH": Code.FETCH,
    "IPATCH": Code.iPATCH,
}


class UplinkHandler(Protocol):
    async def register(self, request: RegisterRequest) -> UplinkResult: ...

    async def update(self, request: UpdateRequest) -> UplinkResult: ...

    async def deregister(self, request: DeregisterRequest) -> UplinkResult: ...

    async def send(self, request: SendRequest) -> UplinkResult: ...

    async def bootstrap(self, request: BootstrapRequest) -> UplinkResult: ...


class InvalidUplink(ValueError):
    """A request the listener answers 4.00 without involving the services."""


@dataclass(slots=True)
class ListenerCounters:
    requests: int = 0
    bad_requests: int = 0
    malformed_datagrams: int = 0
    handler_errors: int = 0
    downlinks: int = 0
    downlink_timeouts: int = 0
    notifications: int = 0


class _MalformedCounter(logging.Handler):
    """Counts aiocoap's 'dropped' log records for one context."""

    MARKERS = ("Ignoring unparsable message", "those don't fit")

    def __init__(self, counters: ListenerCounters) -> None:
        super().__init__(level=logging.DEBUG)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if any(marker in message for marker in self.MARKERS):
            self.counters.malformed_datagrams += 1


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


class _UplinkResource(aiocoap.resource.Resource):
    """Catch-all resource that routes `/rd`, `/rd/<id>`, `/bs` and `/dp`."""

    def __init__(self, listener: CoapListener) -> None:
        super().__init__()
        self.listener = listener

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

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


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class ObservationHandle:
    """A running observation on a client: notifications go to the callback until cancelled."""

    def __init__(self, request: Any, token: bytes, forget_token: Callable[[bytes], None]) -> None:
        self._request = request
        self.token = token
        self._forget_token = forget_token
        self.cancelled = False

    def cancel(self) -> None:
        """Forget the observation locally; the next notification is answered with a Reset."""
        if not self.cancelled:
            self.cancelled = True
            with contextlib.suppress(Exception):
                self._request.observation.cancel()
            self._forget_token(self.token)


class CoapListener:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        handler: UplinkHandler,
        *,
        max_payload: int = 64 * 1024,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.max_payload = max_payload
        self.counters = ListenerCounters()
        self.context: aiocoap.Context | None = None
        # Set by the DTLS terminator: maps an inner address to the peer's identity.
        self.identity_lookup: Callable[[str, int], str | None] | None = None
        self._counter_handler = _MalformedCounter(self.counters)
        self._forced_tokens: dict[int, bytes] = {}

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self) -> None:
        loggername = f"coap-server.{self.name}.{id(self)}"
        logging.getLogger(loggername).addHandler(self._counter_handler)
        self.context = await aiocoap.Context.create_server_context(
            _UplinkResource(self), bind=(self.host, self.port), transports=["udp6"], loggername=loggername
        )
        if self.port == 0:
            self.port = self._bound_port()
        self._install_token_override()

    def _forget_token(self, token: bytes) -> None:
        """Drop the token from aiocoap's table of open requests, so that the next response on it
        (a notification) is answered with Reset at once rather than one notification later."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            table = getattr(interface, "outgoing_requests", None)
            if isinstance(table, dict):
                for key in [k for k in table if k[0] == token]:
                    table.pop(key, None)

    def _install_token_override(self) -> None:
        """Let `send(..., token=...)` reuse a token: an Observe=1 cancel must carry the token of
        the observation it cancels (RFC 7641 §3.6), and aiocoap always draws a fresh one."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            if not hasattr(interface, "next_token"):
                continue
            original_request = interface.request

            def request(pipe: Any, _interface: Any = interface, _original: Any = original_request) -> None:
                forced = self._forced_tokens.pop(id(pipe.request), None)
                if forced is None:
                    _original(pipe)
                    return
                draw = _interface.next_token
                _interface.next_token = lambda: forced
                try:
                    _original(pipe)
                finally:
                    _interface.next_token = draw

            interface.request = request

    def _bound_port(self) -> int:
        assert self.context is not None
        for interface in self.context.request_interfaces:
            message_interface = getattr(getattr(interface, "token_interface", None), "message_interface", None)
            transport = getattr(message_interface, "transport", None)
            if transport is not None:
                return int(transport.get_extra_info("socket").getsockname()[1])
        raise RuntimeError("cannot find the bound port")

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None

    def origin_for(self, host: str, port: int) -> Origin:
        identity = self.identity_lookup(host, port) if self.identity_lookup else None
        return Origin(listener=self.name, host=host, port=port, secure_identity=identity)

    async def dispatch(
        self, request: RegisterRequest | UpdateRequest | DeregisterRequest | SendRequest | BootstrapRequest
    ) -> UplinkResult:
        if isinstance(request, RegisterRequest):
            return await self.handler.register(request)
        if isinstance(request, UpdateRequest):
            return await self.handler.update(request)
        if isinstance(request, DeregisterRequest):
            return await self.handler.deregister(request)
        if isinstance(request, SendRequest):
            return await self.handler.send(request)
        return await self.handler.bootstrap(request)

    # --- downlink --------------------------------------------------------------------------------

    def _message(self, address: tuple[str, int], downlink: Downlink) -> aiocoap.Message:
        msg = aiocoap.Message(
            code=_METHODS[downlink.method],
            uri=f"coap://{_format_host(address[0])}:{address[1]}",
            transport_tuning=aiocoap.Reliable if downlink.confirmable else aiocoap.Unreliable,
            payload=downlink.payload,
        )
        msg.opt.uri_host = None
        msg.opt.uri_path = downlink.path
        if downlink.query:
            msg.opt.uri_query = downlink.query
        if downlink.content_format is not None:
            msg.opt.content_format = downlink.content_format
        if downlink.accept is not None:
            msg.opt.accept = downlink.accept
        if downlink.observe is not None:
            msg.opt.observe = downlink.observe
        return msg

    @staticmethod
    def _response(message: aiocoap.Message) -> DownlinkResponse:
        cf = message.opt.content_format
        return DownlinkResponse(
            code=int(message.code),
            payload=bytes(message.payload),
            content_format=None if cf is None else int(cf),
            observe=message.opt.observe,
        )

    def _require_context(self) -> aiocoap.Context:
        if self.context is None:
            raise DeviceUnreachable(f"listener {self.name} is not running")
        return self.context

    async def send(
        self, address: tuple[str, int], downlink: Downlink, timeout: float, *, token: bytes | None = None
    ) -> DownlinkResponse:
        """Send one request to a client and wait for its (block-wise assembled) response.
        `token` reuses a given token (for an Observe=1 cancel); such a request is not block-wise."""
        context = self._require_context()
        self.counters.downlinks += 1
        message = self._message(address, downlink)
        if token is not None:
            self._forced_tokens[id(message)] = token
            request = context.request(message, handle_blockwise=False)
        else:
            request = context.request(message)
        return self._response(await self._await_response(request, address, timeout))

    async def _await_response(self, request: Any, address: tuple[str, int], timeout: float) -> aiocoap.Message:
        """The first response of `request`, with aiocoap's errors turned into the server's."""
        try:
            response: aiocoap.Message = await asyncio.wait_for(request.response, timeout)
        except TimeoutError as exc:
            self.counters.downlink_timeouts += 1
            raise DeviceTimeout(f"no answer from {address} within {timeout} s") from exc
        except aiocoap.error.ConRetransmitsExceeded as exc:
            self.counters.downlink_timeouts += 1
            raise DeviceTimeout(f"no acknowledgement from {address}") from exc
        except aiocoap.error.Error as exc:
            raise DeviceUnreachable(f"{address}: {exc}") from exc
        return response

    async def observe(
        self,
        address: tuple[str, int],
        downlink: Downlink,
        timeout: float,
        on_notification: Callable[[DownlinkResponse], None],
        on_end: Callable[[Exception | None], None],
    ) -> tuple[DownlinkResponse, ObservationHandle | None]:
        """Start an observation; returns the first response and a handle (None if not observed)."""
        context = self._require_context()
        self.counters.downlinks += 1
        request = context.request(self._message(address, downlink))
        first = await self._await_response(request, address, timeout)
        first_response = self._response(first)
        if not first_response.success or first.opt.observe is None:
            return first_response, None
        handle = ObservationHandle(request, bytes(first.token), self._forget_token)

        def callback(message: aiocoap.Message) -> None:
            if handle.cancelled or message is first:
                return
            self.counters.notifications += 1
            try:
                on_notification(self._response(message))
            except Exception:
                log.exception("notification handler failed")

        def errback(exc: Exception) -> None:
            if not handle.cancelled:
                on_end(exc)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            request.observation.register_callback(callback)
            request.observation.register_errback(errback)
        return first_response, handle
