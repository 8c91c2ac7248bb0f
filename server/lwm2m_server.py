"""The LwM2M server and its Python API: everything the REST API, the web console and the carrier
profiles do, they do through `Lwm2mServer`.

    server = Lwm2mServer(Settings(database_url="sqlite+aiosqlite:///./data/t.db"))
    await server.start()
    node = await server.read("my-endpoint", "/3/0")          # a typed ObjectInstance
    await server.write("my-endpoint", "/3/0/13", datetime.now(UTC))
    observation = await server.observe("my-endpoint", "/3303/0/5700")
    with server.subscribe(endpoint="my-endpoint") as events:
        event = await events.get(timeout=30)
    await server.stop()

Errors are `server.services.errors.ServerError` subclasses (UnknownEndpoint, DeviceSleeping,
DeviceTimeout, RequestFailed carrying the CoAP code, BadArgument).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lwm2m.codec.link_format import Link
from lwm2m.model import ModelRegistry
from lwm2m.model.builtin import registry_with
from lwm2m.node import Node, build_node
from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from server.carriers.policy import AppData, CarrierPolicy
from server.cluster.hooks import ClusterHooks, LocalNode
from server.coap.dtls import DtlsServer
from server.coap.firmware_resource import FirmwareServer
from server.coap.listener import CoapListener
from server.domain import Registration
from server.event_kinds import EventKind
from server.events import EventBus, Subscription
from server.services.bootstrap import BootstrapServer, access_servers_from
from server.services.device_management import (
    DeviceManagement,
    Operation,
    links_of,
    result_node,
    values_from_json,
    values_to_json,
)
from server.services.directory import DeviceDirectory
from server.services.errors import BadArgument, DeviceSleeping, UnknownEndpoint
from server.services.firmware_store import FirmwareStore
from server.services.fota import FotaService
from server.services.provisioning import Device, Provisioning
from server.services.queue_mode import QueueMode
from server.services.registration import RegistrationLimits, RegistrationPolicy, RegistrationService
from server.services.reporting import ActiveObservation, Reporting
from server.services.requests import (
    BootstrapRequest,
    DeregisterRequest,
    RegisterRequest,
    SendRequest,
    UpdateRequest,
    UplinkResult,
)
from server.services.security import PskEncoding
from server.settings import ListenerSettings, Settings
from server.store.fota_repository import FotaRepository
from server.store.repository import Store

log = logging.getLogger(__name__)

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class Observation:
    """What `observe` returns: the observation id and the first value."""

    id: int
    endpoint: str
    paths: tuple[Path, ...]
    node: Node | None
    values: list[dict[str, Any]]
    observed: bool


def _identity_lookup(dtls: DtlsServer) -> Callable[[str, int], str | None]:
    """Map an inner address of `dtls` back to its peer's PSK identity (UTF-8 text)."""

    def lookup(host: str, port: int) -> str | None:
        session = dtls.session_by_inner((host, port))
        return session.identity.decode("utf-8", "replace") if session is not None else None

    return lookup


def _path(path: Path | str) -> Path:
    try:
        return Path.of(path)
    except ValueError as exc:
        raise BadArgument(str(exc)) from exc


def check_datapoint_window(start: float | None, end: float | None, after_id: int | None) -> None:
    """A stored-value query's bounds as the store can take them: times between 1970 and 9999 (no
    NaN), a cursor below 2**63; BadArgument otherwise."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not 0 <= value <= MAX_TIMESTAMP:  # also refuses NaN
            raise BadArgument(f"{name} is not a time between 1970 and 9999")
    if after_id is not None and not 0 <= after_id < 2**63:
        raise BadArgument("cursor out of range")


class Lwm2mServer:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model: ModelRegistry | None = None,
        policy: RegistrationPolicy | None = None,
        store: Store | None = None,
    ) -> None:

        self.settings = settings or Settings()
        self.model = model or registry_with(self.settings.models_dir)
        self.bus = EventBus()
        self._store = store
        self.provisioning = Provisioning()
        # Carrier rules by listener (server.carriers); who is who: the device directory.
        self.carriers = CarrierPolicy(self.provisioning)
        self.directory = DeviceDirectory(self.provisioning, self.carriers)
        self._policy: RegistrationPolicy = policy or self.directory
        self.listeners: dict[str, CoapListener] = {}
        self.dtls: dict[str, DtlsServer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.bootstrap_handler: Any = None
        self.started = False
        # The cluster seam (server.cluster): reached only when nothing here can act.
        self.cluster: ClusterHooks = LocalNode()
        self.bus.add_listener(self._log_event)

    def _log_event(self, event: Any) -> None:
        """Every event goes to the event log (while a store is open)."""
        if self._store is not None:
            self._store.log_event(event.kind, event.endpoint, event.data, event.time)

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        assert self._store is not None, "server not started"
        return self._store

    async def start(self) -> None:
        if self._store is None:
            self._store = await Store.open(self.settings.database_url)
        store = self._store
        self.provisioning.attach(store)
        await self.provisioning.load()
        self.directory.load()
        self.registrations = RegistrationService(
            store,
            self.bus,
            policy=self._policy,
            limits=RegistrationLimits(
                self.settings.registration_max_endpoint_length,
                self.settings.registration_max_link_payload,
                self.settings.registration_max_object_links,
            ),
            lifetime_grace=self.settings.lifetime_grace,
            sweep_interval=self.settings.expiry_sweep_interval,
        )
        self.dm = DeviceManagement(self.model, store, self.bus, self.settings.request_timeout)
        self.reporting = Reporting(self.model, store, self.bus, self.dm)
        self.queue = QueueMode(store, self.bus)
        self.reporting.on_heard = self.queue.heard_from
        await self.reporting.load()
        await self.queue.load()
        self.registrations.on_register(self._after_register)
        self.registrations.on_update(self._after_update)
        self.registrations.on_removal(self._after_removal)
        AppData(self.bus, self.carriers, self._listener_of)
        # Firmware over the air: the package store, its CoAP side (`/fw/{id}`) and the tasks.
        self.firmware = FirmwareStore(
            FotaRepository(store), self.settings.firmware_dir, self.settings.firmware_max_size
        )
        await self.firmware.load()
        self.fota = FotaService(self, self.firmware, FotaRepository(store))
        self.firmware_server = FirmwareServer(self.firmware, self.fota.may_fetch, self.fota.on_served)
        for spec in self.settings.all_listeners():
            await self.add_listener(spec)
        access = access_servers_from(self.settings.all_listeners(), self.carriers)
        if self.bootstrap_handler is None and access:
            self.bootstrap_handler = BootstrapServer(
                self.directory, self.carriers, self.model, self.bus, self.listeners, access
            )
        await self.registrations.start()
        await self.fota.start()
        await self.cluster.join()
        for reg in self.registrations.all():
            if not reg.queue_mode:
                self._spawn(
                    self.reporting.reestablish(self.listener_for(reg), reg, self.settings.request_timeout)
                )
        self.started = True

    async def add_listener(self, spec: ListenerSettings) -> CoapListener:
        self.carriers.attach_listener(spec.name, spec.carrier, spec.role)
        listener = CoapListener(spec.name, spec.host, spec.port, self, max_payload=self.settings.max_payload)
        listener.firmware = self.firmware_server
        await listener.start()
        self.listeners[spec.name] = listener
        if spec.dtls_port is not None:
            dtls = DtlsServer(
                bind=(spec.host, spec.dtls_port),
                backend=listener.address,
                psk_lookup=self.directory.psk_lookup(spec.name),
            )
            await dtls.start()
            self.dtls[spec.name] = dtls
            listener.identity_lookup = _identity_lookup(dtls)
        return listener

    async def stop(self) -> None:
        if hasattr(self, "fota"):
            await self.fota.stop()
        await self.cluster.leave()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if isinstance(self.bootstrap_handler, BootstrapServer):
            await self.bootstrap_handler.drain()
        if hasattr(self, "registrations"):
            await self.registrations.stop()
            await self.reporting.drain()
        for dtls in self.dtls.values():
            await dtls.stop()
        self.dtls.clear()
        for listener in self.listeners.values():
            await listener.stop()
        self.listeners.clear()
        if self._store is not None:
            await self._store.close()
            self._store = None
        self.started = False

    async def __aenter__(self) -> Lwm2mServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def listener_for(self, reg: Registration) -> CoapListener:
        listener = self.listeners.get(reg.listener)
        if listener is None:
            raise UnknownEndpoint(reg.endpoint)
        return listener

    # --- uplink (UplinkHandler) --------------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> UplinkResult:
        result = await self.registrations.register(request)
        if result.code == CoapCode.CREATED:
            reg = self.registrations.by_id(result.location[-1])
            if reg is not None:
                self.queue.heard_from(reg.endpoint)
        return result

    async def update(self, request: UpdateRequest) -> UplinkResult:
        result = await self.registrations.update(request)
        if result.code == CoapCode.NOT_FOUND and await self.cluster.adopt(request.registration_id):
            result = await self.registrations.update(request)
        if result.code == CoapCode.CHANGED:
            reg = self.registrations.by_id(request.registration_id)
            if reg is not None:
                self.queue.heard_from(reg.endpoint)
        return result

    async def deregister(self, request: DeregisterRequest) -> UplinkResult:
        return await self.registrations.deregister(request)

    async def send(self, request: SendRequest) -> UplinkResult:
        origin = request.origin
        reg = self.registrations.by_address(origin.listener, origin.host, origin.port)
        if reg is None and origin.secure_identity is not None:
            # Over DTLS the PSK identity names the client, whatever session (address) it sends on.
            reg = next(
                (
                    r
                    for r in self.registrations.all()
                    if r.listener == origin.listener and r.secure_identity == origin.secure_identity
                ),
                None,
            )
        if reg is None:
            return UplinkResult(CoapCode.FORBIDDEN, diagnostic="not registered")
        device = self.directory.device_of(reg.endpoint)
        if origin.secure_identity is None and (
            reg.secure_identity is not None
            or (device is not None and self.directory.requires_security(device, origin.listener))
        ):
            self.bus.publish(EventKind.SEND_REFUSED, reg.endpoint, reason="the endpoint must use DTLS")
            return UplinkResult(CoapCode.FORBIDDEN, diagnostic="the endpoint must use DTLS")
        self.queue.heard_from(reg.endpoint)
        return await self.reporting.send(reg, request)

    async def bootstrap(self, request: BootstrapRequest) -> UplinkResult:
        if self.bootstrap_handler is None:
            return UplinkResult(CoapCode.NOT_FOUND, diagnostic="no bootstrap server here")
        beyond = self.registrations.limits.check_endpoint(request.endpoint)
        if beyond is not None:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=beyond)
        result: UplinkResult = await self.bootstrap_handler.bootstrap(request)
        return result

    async def _after_register(self, reg: Registration, _reason: str) -> None:
        await self.reporting.forget_endpoint(reg.endpoint)
        await self._flush(reg)
        await self.carriers.after_register(self, reg)

    def _listener_of(self, endpoint: str) -> str | None:
        reg = self.registrations.get(endpoint)
        return reg.listener if reg is not None else None

    async def _after_update(self, reg: Registration, reason: str) -> None:
        if reason == "address":
            await self.reporting.reestablish(self.listener_for(reg), reg, self.settings.request_timeout)
        await self._flush(reg)

    async def _after_removal(self, reg: Registration, reason: str) -> None:
        if self.registrations.get(reg.endpoint) is not None:
            # Replaced by a new Register (a reboot): the device is here, heard just now; forgetting
            # it would leave a queue-mode device asleep until its next Update.
            return
        self.queue.forget(reg.endpoint)
        await self.reporting.forget_endpoint(reg.endpoint)

    async def _flush(self, reg: Registration) -> None:
        await self.queue.flush(reg, self._perform_now)

    # --- the Python API ------------------------------------------------------------------------

    def registration(self, endpoint: str) -> Registration | None:
        return self.registrations.get(endpoint)

    def registered(self) -> list[Registration]:
        return self.registrations.all()

    def _require(self, endpoint: str) -> Registration:
        reg = self.registrations.get(endpoint)
        if reg is None:
            raise UnknownEndpoint(endpoint)
        return reg

    async def _perform_now(self, reg: Registration, op: Operation, timeout: float | None = None) -> Any:
        return await self.dm.perform(self.listener_for(reg), reg, op, timeout)

    async def perform(
        self, endpoint: str, op: Operation, *, timeout: float | None = None, queue: bool = False
    ) -> Any:
        """Run `op` now; for a sleeping queue-mode device, queue it (and wait) when `queue` is set,
        else raise DeviceSleeping."""
        reg = self.registrations.get(endpoint)
        if reg is None:
            return await self.cluster.perform(endpoint, op, timeout=timeout, queue=queue)
        if not self.queue.is_awake(reg):
            if not queue:
                raise DeviceSleeping(endpoint)
            _request_id, future = await self.queue.enqueue(endpoint, op)
            return await future
        return await self._perform_now(reg, op, timeout)

    async def enqueue(self, endpoint: str, op: Operation) -> int:
        """Queue `op` for delivery at the device's next Register or Update, whatever its state."""
        if self.registrations.get(endpoint) is None:
            return await self.cluster.enqueue(endpoint, op)
        request_id, _future = await self.queue.enqueue(endpoint, op)
        return request_id

    async def read(
        self,
        endpoint: str,
        path: Path | str,
        *,
        content_format: int | None = None,
        timeout: float | None = None,
        queue: bool = False,
    ) -> Node:
        """Read a resource, instance or object; returns the typed node."""
        target = _path(path)
        params: dict[str, Any] = {"path": str(target)}
        if content_format is not None:
            params["content_format"] = int(content_format)
        result = await self.perform(endpoint, Operation("read", params), timeout=timeout, queue=queue)
        return result_node(result, target, self.model)

    async def discover(self, endpoint: str, path: Path | str, *, timeout: float | None = None) -> list[Link]:
        result = await self.perform(
            endpoint, Operation("discover", {"path": str(_path(path))}), timeout=timeout
        )
        return links_of(result)

    async def write(
        self,
        endpoint: str,
        path: Path | str,
        value: Any,
        *,
        replace: bool = True,
        content_format: int | None = None,
        timeout: float | None = None,
        queue: bool = False,
    ) -> None:
        """Write a value (typed by the model), a {resource id: value} mapping, or a node.
        `replace=False` is the partial update (`POST`)."""
        target = _path(path)
        node = self.dm.node_for_write(target, value)
        params: dict[str, Any] = {
            "path": str(target),
            "values": values_to_json(node, target),
            "replace": replace,
        }
        if content_format is not None:
            params["content_format"] = int(content_format)
        await self.perform(endpoint, Operation("write", params), timeout=timeout, queue=queue)

    async def write_attributes(
        self,
        endpoint: str,
        path: Path | str,
        attributes: Mapping[str, float | int | None],
        *,
        timeout: float | None = None,
        queue: bool = False,
    ) -> None:
        """Write-Attributes (pmin, pmax, gt, lt, st, ...); a None value removes the attribute."""
        params = {"path": str(_path(path)), "attributes": dict(attributes)}
        await self.perform(endpoint, Operation("write_attributes", params), timeout=timeout, queue=queue)

    async def execute(
        self,
        endpoint: str,
        path: Path | str,
        arguments: str = "",
        *,
        timeout: float | None = None,
        queue: bool = False,
    ) -> None:
        params = {"path": str(_path(path)), "arguments": arguments}
        await self.perform(endpoint, Operation("execute", params), timeout=timeout, queue=queue)

    async def create(
        self,
        endpoint: str,
        object_path: Path | str,
        values: Mapping[int, Any],
        *,
        instance_id: int | None = None,
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> None:
        target = _path(object_path)
        if target.depth != 1:
            raise BadArgument("create takes an object path such as /3303")
        inst = target.child(instance_id if instance_id is not None else 0)
        node = self.dm.node_for_write(inst, dict(values))
        params: dict[str, Any] = {
            "path": str(target),
            "values": values_to_json(node, inst),
            "instance_id": instance_id,
        }
        if content_format is not None:
            params["content_format"] = int(content_format)
        await self.perform(endpoint, Operation("create", params), timeout=timeout)

    async def delete(self, endpoint: str, path: Path | str, *, timeout: float | None = None) -> None:
        await self.perform(endpoint, Operation("delete", {"path": str(_path(path))}), timeout=timeout)

    async def read_composite(
        self,
        endpoint: str,
        paths: Sequence[Path | str],
        *,
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> dict[Path, Any]:
        """Read-Composite (1.1): returns {resource path: value}."""
        params: dict[str, Any] = {"paths": [str(_path(p)) for p in paths]}
        if content_format is not None:
            params["content_format"] = int(content_format)
        result = await self.perform(endpoint, Operation("read_composite", params), timeout=timeout)

        return {p: v for p, v, _t in values_from_json(result["node"])}

    async def write_composite(
        self,
        endpoint: str,
        values: Mapping[Path | str, Any],
        *,
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> None:
        entries: list[dict[str, Any]] = []
        for raw_path, value in values.items():
            target = _path(raw_path)
            entries.extend(values_to_json(self.dm.node_for_write(target, value), target))
        params: dict[str, Any] = {"values": entries}
        if content_format is not None:
            params["content_format"] = int(content_format)
        await self.perform(endpoint, Operation("write_composite", params), timeout=timeout)

    async def observe(
        self,
        endpoint: str,
        path: Path | str | Sequence[Path | str],
        *,
        content_format: int | None = None,
        attributes: Mapping[str, float | int | None] | None = None,
        timeout: float | None = None,
    ) -> Observation:
        """Observe one path, or several with Observe-Composite (pass a list). Attributes, when
        given, are written first (Write-Attributes), as OneNET's platform does."""
        composite = not isinstance(path, Path | str)
        paths = [_path(p) for p in path] if composite else [_path(path)]  # type: ignore[union-attr]
        reg = self.registrations.get(endpoint)
        if reg is None:
            remote = await self.cluster.observe(
                endpoint,
                {
                    "paths": [str(p) for p in paths],
                    "composite": composite,
                    "content_format": content_format,
                    "attributes": dict(attributes or {}),
                    "timeout": timeout,
                },
            )
            remote_node = None
            if not composite:
                remote_node = build_node(paths[0], values_from_json(remote["values"]), self.model.is_multiple)
            return Observation(
                remote["id"], endpoint, tuple(paths), remote_node, remote["values"], remote["observed"]
            )
        if not self.queue.is_awake(reg):
            raise DeviceSleeping(endpoint)
        if attributes and not composite:
            await self.write_attributes(endpoint, paths[0], attributes, timeout=timeout)
        observation, values = await self.reporting.observe(
            self.listener_for(reg),
            reg,
            paths,
            composite=composite,
            content_format=content_format,
            attributes=dict(attributes or {}),
            timeout=self.settings.request_timeout if timeout is None else timeout,
        )

        # No first value (an empty 2.05, as OneMO modules answer before the MCU has one): no node.
        node = (
            None
            if composite or not values
            else build_node(paths[0], values_from_json(values), self.model.is_multiple)
        )
        return Observation(
            observation.id, endpoint, tuple(paths), node, values, observed=observation.handle is not None
        )

    async def cancel_observation(self, endpoint: str, observation_id: int, *, active: bool = True) -> None:
        """Cancel with a GET Observe=1 (`active`) or by answering the next notification with Reset."""
        reg = self.registrations.get(endpoint)
        transport = self.listener_for(reg) if reg is not None else None
        await self.reporting.cancel(transport, reg, observation_id, active=active)

    def observations(self, endpoint: str | None = None) -> list[ActiveObservation]:
        return self.reporting.observations(endpoint)

    def subscribe(
        self, *, endpoint: str | None = None, kinds: Iterable[str] | None = None, maxsize: int = 10_000
    ) -> Subscription:
        """Subscribe to events: `registration.*`, `notification`, `send`, `request.*`, `observation.*`."""
        return self.bus.subscribe(endpoint=endpoint, kinds=tuple(kinds) if kinds else None, maxsize=maxsize)

    async def latest_values(self, endpoint: str) -> dict[str, dict[str, Any]]:
        return await self.store.latest_values(endpoint)

    async def datapoints(self, endpoint: str, path: Path | str | None = None, **kwargs: Any) -> list[Any]:
        """Stored values, oldest first (`newest_first=True` reverses): `start`/`end` in seconds
        since the epoch, `after_id` a cursor, `limit`. Values out of range raise BadArgument."""
        check_datapoint_window(kwargs.get("start"), kwargs.get("end"), kwargs.get("after_id"))
        return await self.store.datapoints(endpoint, None if path is None else str(_path(path)), **kwargs)

    def counters(self) -> dict[str, Any]:
        """Per-listener traffic counters and store counters."""

        return {
            "listeners": {name: asdict(listener.counters) for name, listener in self.listeners.items()},
            "registrations": len(self.registrations),
            "notifications_stored": self.reporting.notifications_stored,
            "store_commits": self.store.writer.commits,
            "store_operations": self.store.writer.operations,
            "dtls": self.dtls_counters(),
        }

    # --- DTLS pre-shared keys ------------------------------------------------------------------

    async def set_psk(self, endpoint: str, identity: str, key: str, encoding: PskEncoding = "string") -> None:
        """Provision the DTLS PSK of `endpoint` at the open listener (key as text, or hexadecimal
        with encoding="hex"); invalid input raises BadArgument."""
        await self.directory.set_endpoint_psk(endpoint, identity, key, encoding)

    async def remove_psk(self, endpoint: str) -> bool:
        """Forget the PSK of `endpoint`; False when it had none."""
        return await self.directory.remove_endpoint_psk(endpoint)

    def dtls_counters(self) -> dict[str, dict[str, Any]]:
        """Per-listener DTLS counters: handshakes ok / failed by reason, sessions, bytes."""

        result: dict[str, dict[str, Any]] = {}
        for name, dtls in self.dtls.items():
            counters = asdict(dtls.counters)
            counters["handshakes_failed"] = dict(dtls.counters.handshakes_failed)
            result[name] = counters
        return result

    # --- provisioned devices and endpoints (used by the northbound API) --------------------------

    def endpoint_of(self, device: Device) -> str | None:
        """The name the registrations of `device` are kept under (`DeviceDirectory.endpoint_of`)."""
        return self.directory.endpoint_of(device)

    def device_of(self, endpoint: str) -> Device | None:
        """The device row a registration name belongs to."""
        return self.directory.device_of(endpoint)
