"""The LwM2M client underneath an emulated module, on aiocoap over UDP.

Specifications: OMA TS LwM2M Core 1.1.1 §6.1 (Bootstrap), §6.2 (Register / Update / De-register,
query parameters `ep lt lwm2m b Q`), §6.4.3-6.4.4 (Send `POST /dp`), §6.3 / §6.4 answered in
`emulator.client.resources`; Transport 1.1.1 §6.4 (Register payload in CoRE link format,
content format 40). Core 1.0.2 §5.3 is the 1.0 form (`lwm2m=1.0`, queue mode as `b=UQ`).

Design choices:
- One aiocoap server context bound to the configured local address serves the server's
  requests and sends the client's own: the server must be able to reach the client at the
  source address of its Register (Transport §6), so there is never a second socket.
- `remote_override` redirects every client request to another address (a DTLS tunnel's
  plaintext side) while the query and payload stay those of the configured server.
- Failures are values for the module above: every operation emits a `ClientEvent`; operations
  that must return something raise `ClientError` carrying the CoAP code (None on timeout or a
  network error).
- A handler that owns changing data (the in-memory tree) implements `NotificationSource` and
  gets a notifier at construction; anything else calls `Lwm2mClient.notify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from aiocoap import Context, Message
from aiocoap import error as coap_error
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption, OpaqueOption

from emulator.client.delivery import DeliveryTracker
from emulator.client.events import ClientEvent, EventCallback
from emulator.client.handler import RequestHandler
from emulator.client.resources import Lwm2mResource, Observation
from emulator.client.settings import ClientSettings
from lwm2m import codec
from lwm2m.codec import link_format
from lwm2m.model import ModelRegistry
from lwm2m.node import Node
from lwm2m.numbers import CoapCode, ContentFormat
from lwm2m.path import Path

log = logging.getLogger(__name__)

Notifier = Callable[[int, Node | None], None]


@runtime_checkable
class NotificationSource(Protocol):
    """A handler that pushes value changes to the client's observations by observation id."""

    def attach_notifier(self, notifier: Notifier) -> None: ...


class ClientError(Exception):
    """A client request that failed: `code` is the server's answer, None for a timeout or a
    network error."""

    def __init__(self, operation: str, code: CoapCode | int | None, detail: str = "") -> None:
        self.operation = operation
        self.code = code
        shown = str(code)
        if code is not None and code in CoapCode._value2member_map_:
            shown = CoapCode(code).dotted
        super().__init__(f"{operation} failed: {shown if code is not None else 'no answer'} {detail}".strip())


class Lwm2mClient:
    """One LwM2M client endpoint. Use `async with Lwm2mClient(...)` or `start()` / `stop()`."""

    def __init__(
        self,
        settings: ClientSettings,
        handler: RequestHandler,
        model: ModelRegistry | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.model = model if model is not None else ModelRegistry()
        self._on_event = on_event
        self.site = Lwm2mResource(handler, settings, self.model, self._emit)
        self.site.on_bootstrap_finish = self._bootstrap_finished
        self._context: Context | None = None
        self._local: tuple[str, int] | None = None
        self.location: str | None = None
        self._bootstrap_done: asyncio.Future[None] | None = None
        self._update_task: asyncio.Task[None] | None = None
        if isinstance(handler, NotificationSource):
            handler.attach_notifier(self._notify_now)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._context is not None:
            return
        bind = (self.settings.local_host, self.settings.local_port)
        self._context = await Context.create_server_context(self.site, bind=bind, transports=["udp6"])
        self.site.tracker = DeliveryTracker(self._context)
        self._local = (self.settings.local_host, _bound_port(self._context))

    async def stop(self) -> None:
        """Close the socket without de-registering (a module powered off)."""
        if self._update_task is not None:
            self._update_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._update_task
            self._update_task = None
        if self._context is not None:
            context, self._context = self._context, None
            await context.shutdown()
            await self.site.shutdown()

    async def __aenter__(self) -> Lwm2mClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def local_address(self) -> tuple[str, int]:
        """The (host, port) the client listens on and sends from."""
        if self._local is None:
            raise RuntimeError("client not started")
        return self._local

    @property
    def registered(self) -> bool:
        return self.location is not None

    @property
    def observations(self) -> Mapping[int, Observation]:
        return self.site.observations

    # -- registration (Core §6.2) -----------------------------------------------------------------

    def registration_query(self) -> list[str]:
        """`ep lt lwm2m b` (and `Q` for 1.1 queue mode), in the order Leshan and OneNET send them."""
        s = self.settings
        binding = s.binding
        queue_flag = False
        if s.queue_mode or "Q" in binding.upper():
            if s.is_1_1:
                binding = binding.upper().replace("Q", "") or "U"
                queue_flag = True
            elif "Q" not in binding.upper():
                binding = binding + "Q"
        query = [f"ep={s.endpoint}", f"lt={s.lifetime}", f"lwm2m={s.lwm2m_version}", f"b={binding}"]
        if queue_flag:
            query.append("Q")
        return query

    def object_links_payload(self) -> bytes:
        links = self.settings.object_links()
        text = link_format.format_object_links(
            list(links.instances),
            objects_without_instances=links.objects_without_instances,
            versions=links.versions,
            content_format=self.settings.container_format if self.settings.is_1_1 else None,
        )
        return text.encode()

    async def register(self) -> str:
        """Register; returns the location (`/rd/abc`). Raises ClientError."""
        try:
            answer = await self._request(
                Code.POST,
                ("rd",),
                self.registration_query(),
                self.object_links_payload(),
                ContentFormat.LINK,
                extra=True,
            )
        except ClientError:
            self._emit(ClientEvent.REGISTER_FAILED)
            raise
        if answer.code != Code.CREATED or not answer.opt.location_path:
            self._emit(ClientEvent.REGISTER_FAILED)
            raise ClientError(
                "register", int(answer.code), "no location" if answer.code.is_successful() else ""
            )
        self.location = "/" + "/".join(answer.opt.location_path)
        self._emit(ClientEvent.REGISTERED)
        if self.settings.auto_update and self._update_task is None:
            self._update_task = asyncio.get_running_loop().create_task(self._update_loop())
        return self.location

    async def update(
        self, lifetime: int | None = None, binding: str | None = None, with_objects: bool = False
    ) -> None:
        """Registration Update; a 4.04 answer forgets the registration. Raises ClientError."""
        if self.location is None:
            self._emit(ClientEvent.UPDATE_FAILED)
            raise ClientError("update", None, "not registered")
        query = []
        if lifetime is not None:
            query.append(f"lt={lifetime}")
        if binding is not None:
            query.append(f"b={binding}")
        payload = self.object_links_payload() if with_objects else b""
        try:
            answer = await self._request(
                Code.POST,
                _segments(self.location),
                query,
                payload,
                ContentFormat.LINK if with_objects else None,
                extra=True,
            )
        except ClientError:
            self._emit(ClientEvent.UPDATE_FAILED)
            raise
        if answer.code != Code.CHANGED:
            if answer.code == Code.NOT_FOUND:
                self.location = None
            self._emit(ClientEvent.UPDATE_FAILED)
            raise ClientError("update", int(answer.code))
        self._emit(ClientEvent.UPDATED)

    async def deregister(self) -> None:
        """De-register; the registration is forgotten locally whatever the server says."""
        if self._update_task is not None:
            self._update_task.cancel()
            self._update_task = None
        if self.location is None:
            self._emit(ClientEvent.DEREGISTER_FAILED)
            raise ClientError("deregister", None, "not registered")
        location, self.location = self.location, None
        try:
            answer = await self._request(Code.DELETE, _segments(location), [], b"", None)
        except ClientError:
            self._emit(ClientEvent.DEREGISTER_FAILED)
            raise
        if answer.code != Code.DELETED:
            self._emit(ClientEvent.DEREGISTER_FAILED)
            raise ClientError("deregister", int(answer.code))
        self._emit(ClientEvent.DEREGISTERED)

    async def _update_loop(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.settings.lifetime * 0.9))
            try:
                await self.update()
            except ClientError:
                with contextlib.suppress(ClientError):
                    await self.register()

    # -- bootstrap (Core §6.1) --------------------------------------------------------------------

    async def bootstrap_request(self) -> asyncio.Future[None]:
        """Send `POST /bs?ep=`; the returned future resolves on Bootstrap-Finish. Until then the
        bootstrap server's writes go to the handler (creating missing instances)."""
        loop = asyncio.get_running_loop()
        self._bootstrap_done = loop.create_future()
        self.site.bootstrapping = True
        try:
            answer = await self._request(
                Code.POST, ("bs",), [f"ep={self.settings.endpoint}"], b"", None, extra=True
            )
        except ClientError:
            self.site.bootstrapping = False
            self._emit(ClientEvent.BOOTSTRAP_FAILED)
            raise
        if answer.code != Code.CHANGED:
            self.site.bootstrapping = False
            self._emit(ClientEvent.BOOTSTRAP_FAILED)
            raise ClientError("bootstrap", int(answer.code))
        self._emit(ClientEvent.BOOTSTRAP_REQUESTED)
        return self._bootstrap_done

    def _bootstrap_finished(self) -> CoapCode:
        self.site.bootstrapping = False
        if self._bootstrap_done is not None and not self._bootstrap_done.done():
            self._bootstrap_done.set_result(None)
        self._emit(ClientEvent.BOOTSTRAP_FINISHED)
        return CoapCode.CHANGED

    # -- information reporting --------------------------------------------------------------------

    async def send(
        self, nodes: Mapping[Path, Node], content_format: int = ContentFormat.SENML_CBOR
    ) -> CoapCode:
        """LwM2M 1.1 Send (`POST /dp`); returns the server's code. Raises ClientError on no answer
        and CodecError when the nodes cannot be encoded."""
        payload = codec.encode_composite(nodes, content_format, self.model)
        answer = await self._request(Code.POST, ("dp",), [], payload, content_format)
        return CoapCode(int(answer.code))

    async def notify(
        self, target: Path | int, node: Node | None = None, *, confirmable: bool | None = None
    ) -> list[asyncio.Future[bool]]:
        """Notify the observation with id `target`, or every observation covering path `target`.
        One future per notification: True once acknowledged (CON) or sent (NON), False when
        reset, timed out or dropped."""
        return self.site.notify(target, node, confirmable)

    def _notify_now(self, observation_id: int, node: Node | None) -> None:
        self.site.notify(observation_id, node)

    async def get_block(
        self, remote: tuple[str, int], path: tuple[str, ...], query: tuple[str, ...], number: int, szx: int
    ) -> Message:
        """One `GET` with Block2 (RFC 7959) `number` of size 2**(szx+4) to `remote`, from this
        client's socket (a firmware download, object 5); raises ClientError on no answer."""
        if self._context is None:
            raise ClientError("get", None, "client not started")
        host, port = remote
        shown_host = f"[{host}]" if ":" in host else host
        message = Message(code=Code.GET, uri=f"coap://{shown_host}:{port}")
        message.opt.uri_path = path
        message.opt.uri_query = query
        message.opt.block2 = BlockOption.BlockwiseTuple(number, False, szx)
        try:
            request = self._context.request(message, handle_blockwise=False)
            return await asyncio.wait_for(request.response, self.settings.request_timeout)
        except TimeoutError as exc:
            raise ClientError("get", None, "timeout") from exc
        except coap_error.Error as exc:
            raise ClientError("get", None, str(exc)) from exc

    # -- plumbing ---------------------------------------------------------------------------------

    async def _request(
        self,
        code: Code,
        path: tuple[str, ...],
        query: list[str],
        payload: bytes,
        content_format: int | None,
        *,
        extra: bool = False,
    ) -> Message:
        if self._context is None:
            raise ClientError(_operation(path, code), None, "client not started")
        host, port = self.settings.remote
        shown_host = f"[{host}]" if ":" in host else host
        message = Message(code=code, uri=f"coap://{shown_host}:{port}", payload=payload)
        message.opt.uri_path = path
        message.opt.uri_query = tuple(query)
        if content_format is not None:
            message.opt.content_format = content_format
        if extra:
            for number, value in self.settings.extra_options:
                message.opt.add_option(OpaqueOption(number, value))
        try:
            return await asyncio.wait_for(
                self._context.request(message).response, self.settings.request_timeout
            )
        except TimeoutError as exc:
            raise ClientError(_operation(path, code), None, "timeout") from exc
        except coap_error.Error as exc:
            raise ClientError(_operation(path, code), None, str(exc)) from exc

    def _emit(self, event: ClientEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("event callback failed on %s", event)


def _bound_port(context: Context) -> int:
    for interface in context.request_interfaces:
        manager = getattr(interface, "token_interface", None)
        transport = getattr(getattr(manager, "message_interface", None), "transport", None)
        if transport is not None:
            port: int = transport.get_extra_info("socket").getsockname()[1]
            return port
    raise RuntimeError("no UDP transport in the context")


def _segments(location: str) -> tuple[str, ...]:
    return tuple(s for s in location.split("/") if s)


def _operation(path: tuple[str, ...], code: Code) -> str:
    return {"rd": "register", "bs": "bootstrap", "dp": "send"}.get(path[0] if path else "", str(code))


__all__ = ["ClientError", "Lwm2mClient", "NotificationSource", "Notifier"]
