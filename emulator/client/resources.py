"""The client's CoAP face: one catch-all aiocoap resource that turns the server's requests into
`RequestHandler` calls (OMA TS LwM2M Transport 1.1.1 §6.3 / Core 1.1.1 §6.3-§6.4, §6.1.7 for
bootstrap, and the 1.0.2 mapping in Core 1.0.2 §8.2.6-8.2.8).

    GET                 Read; with Accept 40 Discover; with Observe 0 Observe, Observe 1 a plain Read
    FETCH               Read-Composite; with Observe 0 Observe-Composite (SenML path lists, 1.1)
    PUT                 Write (replace); with a query and no payload Write-Attributes
    POST /o             Create        POST /o/i  Write (partial update)
    POST /o/i/r         Execute       POST /bs   Bootstrap-Finish
    iPATCH              Write-Composite
    DELETE              Delete (Bootstrap-Delete on / or /o)

Answers: unknown or malformed paths 4.04, a payload the codec rejects 4.00, an unknown request
content format 4.15, an Accept the node cannot be encoded in 4.06.

Design choices:
- The resource implements aiocoap's `render_to_pipe` itself: plain requests go through aiocoap's
  blockwise-capable rendering, observations keep the pipe open and add one response per
  notification with an Observe number from one client-wide counter (so a renewed observation
  still counts up), as CON or NON per notification.
- Cancellation is aiocoap's: a GET with the same token, or a Reset to a notification, makes
  aiocoap cancel the observation's task; the `finally` clause tells the handler.
- Default read formats: a single resource in plain text (opaque resources in 42) unless the
  handler or the settings name one; instances and objects in TLV (1.0), SenML CBOR (1.1) or LwM2M
  CBOR (1.2, content format 11544).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from aiocoap import Message, interfaces
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import CON, NON
from aiocoap.pipe import Pipe

from emulator.client.delivery import DeliveryTracker
from emulator.client.events import ClientEvent, EventCallback
from emulator.client.handler import ReadResult, RequestHandler
from emulator.client.payloads import (
    PayloadCodec,
    RequestError,
    content_format_of,
    error_code,
    path_of,
    response,
)
from emulator.client.settings import ClientSettings
from lwm2m import codec
from lwm2m.codec import link_format
from lwm2m.errors import CodecError, UnsupportedContentFormat
from lwm2m.model import ModelRegistry
from lwm2m.node import LwM2MObject, Node, ObjectInstance
from lwm2m.numbers import CoapCode, ContentFormat
from lwm2m.path import Path

log = logging.getLogger(__name__)

_OBSERVE_MODULUS = 1 << 24


@dataclass(slots=True)
class _Pending:
    node: Node | None
    confirmable: bool | None
    delivered: asyncio.Future[bool]


@dataclass(eq=False, slots=True)
class Observation:
    """One running observation: a single path, or several for Observe-Composite."""

    id: int
    paths: tuple[Path, ...]
    composite: bool
    content_format: int
    confirmable: bool
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)

    def concerns(self, path: Path) -> bool:
        return any(path.starts_with(p) or p.starts_with(path) for p in self.paths)


class Lwm2mResource(PayloadCodec, interfaces.Resource):
    """Serves every path of the client's CoAP endpoint."""

    def __init__(
        self,
        handler: RequestHandler,
        settings: ClientSettings,
        model: ModelRegistry,
        emit: EventCallback,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.settings = settings
        self.model = model
        self.emit = emit
        self.tracker: DeliveryTracker | None = None
        self.bootstrapping = False
        self.on_bootstrap_finish: Callable[[], CoapCode] | None = None
        self.observations: dict[int, Observation] = {}
        self._observation_ids = itertools.count(1)
        self._sequence = itertools.count(1)
        self._background: set[asyncio.Task[object]] = set()

    # -- aiocoap interface ------------------------------------------------------------------------

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return True

    async def render_to_pipe(self, pipe: Pipe) -> None:
        request = pipe.request
        if (
            request.opt.observe == 0
            and request.code in (Code.GET, Code.FETCH)
            and request.opt.accept != ContentFormat.LINK
        ):
            await self._serve_observation(pipe)
        else:
            await self._render_to_pipe(pipe)

    async def render(self, request: Message) -> Message:
        try:
            return await self._dispatch(request)
        except RequestError as exc:
            return response(exc.code)

    # -- dispatch ---------------------------------------------------------------------------------

    async def _dispatch(self, request: Message) -> Message:
        segments = tuple(s for s in request.opt.uri_path if s != "")
        if segments == ("bs",) and request.code == Code.POST:
            return self._bootstrap_finish()
        path = path_of(segments)
        code = request.code
        if code == Code.GET:
            if request.opt.accept == ContentFormat.LINK:
                return await self._discover(path)
            return await self._read(path, request.opt.accept)
        if code == Code.FETCH:
            paths = self._decode_paths(request)
            nodes = await self._read_all(paths)
            return self._composite_response(nodes, self._composite_format(request))
        if code == Code.PUT:
            if not request.payload and request.opt.uri_query:
                return await self._write_attributes(path, request.opt.uri_query)
            return await self._write(path, request, replace=True)
        if code == Code.POST:
            if path.is_object:
                return await self._create(path, request)
            if path.is_instance:
                return await self._write(path, request, replace=False)
            if path.is_resource:
                return await self._execute(path, request.payload)
            raise RequestError(CoapCode.METHOD_NOT_ALLOWED)
        if code == Code.iPATCH:
            return await self._write_composite(request)
        if code == Code.DELETE:
            return response(await self.handler.delete(path))
        raise RequestError(CoapCode.METHOD_NOT_ALLOWED)

    # -- operations -------------------------------------------------------------------------------

    async def _read(self, path: Path, accept: int | None) -> Message:
        result = await self.handler.read(path)
        if result.code is not CoapCode.CONTENT or result.node is None:
            return response(error_code(result.code))
        fmt = self._read_format(result, accept)
        return response(CoapCode.CONTENT, self._encode(result.node, path, fmt), fmt)

    async def _discover(self, path: Path) -> Message:
        result = await self.handler.discover(path)
        if not result.code.is_success:
            return response(result.code)
        links = [link_format.Link(str(p), tuple(attrs.items())) for p, attrs in result.links]
        payload = link_format.format_links(links).encode()
        return response(CoapCode.CONTENT, payload, ContentFormat.LINK)

    async def _write(self, path: Path, request: Message, *, replace: bool) -> Message:
        if path.is_root:
            raise RequestError(CoapCode.METHOD_NOT_ALLOWED)
        node = self._decode(request, path)
        if self.bootstrapping and isinstance(node, LwM2MObject):
            codes = [await self._bootstrap_write(path.child(i), inst) for i, inst in node.instances.items()]
            failed = [c for c in codes if not c.is_success]
            return response(failed[0] if failed else CoapCode.CHANGED)
        if self.bootstrapping and path.is_instance and isinstance(node, ObjectInstance):
            return response(await self._bootstrap_write(path, node))
        return response(await self.handler.write(path, node, replace))

    async def _bootstrap_write(self, path: Path, instance: ObjectInstance) -> CoapCode:
        """Bootstrap-Write creates the instance when it does not exist yet (Core 1.1.1 §6.1.7.4)."""
        code = await self.handler.write(path, instance, True)
        if code is CoapCode.NOT_FOUND:
            created, _ = await self.handler.create(path.parent, instance)
            return CoapCode.CHANGED if created.is_success else created
        return code

    async def _write_attributes(self, path: Path, queries: tuple[str, ...]) -> Message:
        attributes: dict[str, str | None] = {}
        for query in queries:
            name, sep, value = query.partition("=")
            attributes[name] = value if sep else None
        return response(await self.handler.write_attributes(path, attributes))

    async def _execute(self, path: Path, payload: bytes) -> Message:
        try:
            arguments = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(CoapCode.BAD_REQUEST, "arguments are not UTF-8") from exc
        return response(await self.handler.execute(path, arguments))

    async def _create(self, path: Path, request: Message) -> Message:
        node = self._decode(request, path)
        if isinstance(node, LwM2MObject):
            if len(node.instances) != 1:
                raise RequestError(CoapCode.BAD_REQUEST, "create carries exactly one instance")
            node = next(iter(node.instances.values()))
        if not isinstance(node, ObjectInstance):
            raise RequestError(CoapCode.BAD_REQUEST, "create carries an instance")
        code, instance_id = await self.handler.create(path, node)
        if not code.is_success:
            return response(code)
        message = response(code)
        if instance_id is not None:
            message.opt.location_path = (str(path.object_id), str(instance_id))
        return message

    async def _write_composite(self, request: Message) -> Message:
        fmt = content_format_of(request)
        try:
            nodes = codec.decode_composite(request.payload, fmt, self.model)
        except UnsupportedContentFormat as exc:
            raise RequestError(CoapCode.UNSUPPORTED_CONTENT_FORMAT) from exc
        except CodecError as exc:
            raise RequestError(CoapCode.BAD_REQUEST, str(exc)) from exc
        for path, node in nodes.items():
            code = await self.handler.write(path, node, True)
            if not code.is_success:
                return response(code)
        return response(CoapCode.CHANGED)

    def _bootstrap_finish(self) -> Message:
        if self.on_bootstrap_finish is None:
            raise RequestError(CoapCode.METHOD_NOT_ALLOWED)
        return response(self.on_bootstrap_finish())

    # -- composite helpers ------------------------------------------------------------------------

    async def _read_all(self, paths: list[Path]) -> dict[Path, Node]:
        """Read-Composite: paths that do not exist are left out; none at all is 4.04."""
        nodes: dict[Path, Node] = {}
        for path in paths:
            result = await self.handler.read(path)
            if result.code is CoapCode.CONTENT and result.node is not None:
                nodes[path] = result.node
            elif result.code is not CoapCode.NOT_FOUND:
                raise RequestError(error_code(result.code))
        if not nodes:
            raise RequestError(CoapCode.NOT_FOUND)
        return nodes

    # -- observations -----------------------------------------------------------------------------

    def next_sequence(self) -> int:
        return next(self._sequence) % _OBSERVE_MODULUS

    def _observed_paths(self, request: Message) -> tuple[tuple[Path, ...], bool]:
        if request.code == Code.FETCH:
            return tuple(self._decode_paths(request)), True
        return (path_of(tuple(s for s in request.opt.uri_path if s != "")),), False

    async def _start_observation(self, request: Message) -> tuple[Message, Observation | None]:
        try:
            paths, composite = self._observed_paths(request)
        except RequestError as exc:
            return response(exc.code), None
        observation_id = next(self._observation_ids)
        nodes: dict[Path, Node] = {}
        try:
            first: ReadResult | None = None
            for path in paths:
                result = await self.handler.observe(path, observation_id)
                if result.code is CoapCode.CONTENT and result.node is not None:
                    nodes[path] = result.node
                    first = first or result
                elif not composite or result.code is not CoapCode.NOT_FOUND:
                    raise RequestError(error_code(result.code))
            if first is None:
                raise RequestError(CoapCode.NOT_FOUND)
            if composite:
                fmt = self._composite_format(request)
                message = self._composite_response(nodes, fmt)
            else:
                fmt = self._read_format(first, request.opt.accept)
                message = response(CoapCode.CONTENT, self._encode(nodes[paths[0]], paths[0], fmt), fmt)
        except RequestError as exc:
            await self._cancel_in_handler(tuple(nodes), observation_id)
            return response(exc.code), None
        observation = Observation(
            id=observation_id,
            paths=paths,
            composite=composite,
            content_format=fmt,
            confirmable=self.settings.confirmable_notifications,
        )
        return message, observation

    async def _serve_observation(self, pipe: Pipe) -> None:
        first, observation = await self._start_observation(pipe.request)
        if observation is None:
            pipe.add_response(first, is_last=True)
            return
        first.opt.observe = self.next_sequence()
        self.observations[observation.id] = observation
        outstanding: set[asyncio.Future[bool]] = set()
        try:
            pipe.add_response(first, is_last=False)
            self.emit(ClientEvent.OBSERVED)
            while True:
                pending = await observation.queue.get()
                message = await self._notification(observation, pending.node)
                if not message.code.is_successful():
                    pending.delivered.set_result(False)
                    pipe.add_response(message, is_last=True)
                    return
                message.opt.observe = self.next_sequence()
                confirmable = observation.confirmable if pending.confirmable is None else pending.confirmable
                message.mtype = CON if confirmable else NON
                pipe.add_response(message, is_last=False)
                if confirmable and self.tracker is not None:
                    acked = self.tracker.watch(message)
                    outstanding.add(acked)

                    def on_acked(f: asyncio.Future[bool], p: _Pending = pending) -> None:
                        outstanding.discard(f)
                        self._delivered(p, f.result())

                    acked.add_done_callback(on_acked)
                elif not pending.delivered.done():
                    pending.delivered.set_result(True)
        finally:
            self.observations.pop(observation.id, None)
            for acked in list(outstanding):
                if not acked.done():
                    acked.set_result(False)
            while not observation.queue.empty():
                self._delivered(observation.queue.get_nowait(), False)
            self._background_task(self._cancel_in_handler(observation.paths, observation.id))
            self.emit(ClientEvent.OBSERVE_CANCELLED)

    def _delivered(self, pending: _Pending, ok: bool) -> None:
        if not pending.delivered.done():
            pending.delivered.set_result(ok)
        self.emit(ClientEvent.NOTIFY_ACKED if ok else ClientEvent.NOTIFY_FAILED)

    async def _notification(self, observation: Observation, node: Node | None) -> Message:
        try:
            if observation.composite:
                nodes = await self._read_all(list(observation.paths))
                return self._composite_response(nodes, observation.content_format)
            path = observation.paths[0]
            if node is None:
                result = await self.handler.read(path)
                if result.code is not CoapCode.CONTENT or result.node is None:
                    return response(error_code(result.code))
                node = result.node
            return response(
                CoapCode.CONTENT,
                self._encode(node, path, observation.content_format),
                observation.content_format,
            )
        except RequestError as exc:
            return response(exc.code)

    def notify(
        self, target: Path | int, node: Node | None = None, confirmable: bool | None = None
    ) -> list[asyncio.Future[bool]]:
        """Queue a notification on the observation `target` (an id) or on every observation that
        covers the path `target`. `node` is the new value at the observed path; None (or a node
        at a different path) makes the client read the handler again."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bool]] = []
        for observation in list(self.observations.values()):
            if isinstance(target, int):
                if observation.id != target:
                    continue
                value = node
            else:
                if not observation.concerns(target):
                    continue
                value = node if observation.paths == (target,) else None
            delivered: asyncio.Future[bool] = loop.create_future()
            observation.queue.put_nowait(_Pending(value, confirmable, delivered))
            futures.append(delivered)
        return futures

    async def _cancel_in_handler(self, paths: tuple[Path, ...], observation_id: int) -> None:
        for path in paths:
            try:
                await self.handler.cancel_observation(path, observation_id)
            except Exception:
                log.exception("handler failed to cancel observation %s on %s", observation_id, path)

    def _background_task(self, coroutine: Coroutine[object, object, None]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def shutdown(self) -> None:
        for task in list(self._background):
            await task
