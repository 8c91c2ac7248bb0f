"""Information Reporting interface, server side (Core 1.1.1 §6.4; RFC 7641).

Observe / Observe-Composite start an observation through the listener the device registered on;
each notification is decoded, stored (time series and latest value) and published.
Acknowledge after commit: the listener delivers each notification once per (remote, message id)
and ACKs a CON notification when the task storing it is done (see `server.coap.listener`); a
retransmission is not stored again, a failed write is not ACKed. A notification that arrives
after a newer one (RFC 7641 §3.4) is still stored in the time series: it was acknowledged.

Cancel: `cancel(..., active=True)` sends a GET with Observe=1 (Core §6.4.2) and forgets the
observation; `active=False` only forgets it, so the next notification is answered with Reset.

Observations are persisted. They die with a registration (de-register, expiry, re-registration
clears them, as the spec says) and are re-established after an address change or a server restart
(the client's side of the token is gone then), at the device's next Update or right at start.

Send (`POST /dp`, 1.1) values are stored the same way with the timestamps the client gave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lwm2m import codec
from lwm2m.errors import CodecError
from lwm2m.model import ModelRegistry
from lwm2m.node import iter_values
from lwm2m.numbers import CoapCode, ContentFormat
from lwm2m.path import Path
from lwm2m.values import value_to_jsonable
from server.domain import Registration
from server.event_kinds import EventKind
from server.events import EventBus
from server.services.device_management import DeviceManagement
from server.services.errors import RequestFailed, UndecodableAnswer
from server.services.ports import ObservationHandle, Transport
from server.services.requests import Downlink, DownlinkResponse, SendRequest, UplinkResult
from server.store.repository import Store, StoredValue

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ActiveObservation:
    id: int
    endpoint: str
    paths: list[Path]
    composite: bool
    content_format: int | None
    attributes: dict[str, Any]
    handle: ObservationHandle | None = None
    notifications: int = 0
    last: list[dict[str, Any]] = field(default_factory=list)


class Reporting:
    def __init__(self, model: ModelRegistry, store: Store, bus: EventBus, dm: DeviceManagement) -> None:
        self.model = model
        self.store = store
        self.bus = bus
        self.dm = dm
        self._active: dict[int, ActiveObservation] = {}
        # Endpoints with observations stored as active: a (re)registration of any other endpoint
        # needs no database write to clear them.
        self._stored_endpoints: set[str] = set()
        self._pending_writes: set[asyncio.Task[None]] = set()
        self.notifications_stored = 0
        self.notifications_rejected = 0
        # Called with the endpoint on every notification (queue mode: the device is awake).
        self.on_heard: Callable[[str], None] = lambda _endpoint: None

    async def load(self) -> None:
        self._stored_endpoints = {record.endpoint for record in await self.store.observations()}

    # --- observe ---------------------------------------------------------------------------------

    def observations(self, endpoint: str | None = None) -> list[ActiveObservation]:
        return [o for o in self._active.values() if endpoint is None or o.endpoint == endpoint]

    async def observe(
        self,
        transport: Transport,
        reg: Registration,
        paths: Sequence[Path],
        *,
        composite: bool = False,
        content_format: int | None = None,
        attributes: dict[str, Any] | None = None,
        timeout: float = 25.0,
        existing_id: int | None = None,
    ) -> tuple[ActiveObservation, list[dict[str, Any]]]:
        """Start observing; returns the observation and the first values."""
        if composite:
            fmt = content_format or ContentFormat.SENML_CBOR
            root = tuple(s for s in reg.root_path.split("/") if s)
            downlink = Downlink(
                "FETCH", root, codec.encode_paths(list(paths), fmt), content_format=fmt, accept=fmt, observe=0
            )
        else:
            if content_format is None:  # 0 (plain text) is a caller's choice too
                content_format = self.dm.read_format(reg, paths[0])
            downlink = Downlink("GET", self.dm.segments(reg, paths[0]), accept=content_format, observe=0)
        observation = ActiveObservation(
            id=existing_id or 0,
            endpoint=reg.endpoint,
            paths=list(paths),
            composite=composite,
            content_format=content_format,
            attributes=attributes or {},
        )

        def on_notification(response: DownlinkResponse) -> asyncio.Task[None]:
            # The listener acknowledges a CON notification when this task is done (after the
            # commit); a failed write leaves it unacknowledged, so the device retransmits.
            task = asyncio.create_task(self._store_notification(observation, response))
            self._pending_writes.add(task)
            task.add_done_callback(self._pending_writes.discard)
            return task

        def on_end(exc: Exception | None) -> None:
            if self._active.get(observation.id) is observation:
                del self._active[observation.id]
                self.bus.publish(
                    EventKind.OBSERVATION_ENDED, observation.endpoint, id=observation.id, reason=str(exc)
                )

        first, handle = await transport.observe(reg.address, downlink, timeout, on_notification, on_end)
        if not first.success:
            raise RequestFailed(first.code)
        values = await self._record(observation, first, "observe")
        if observation.id == 0:
            observation.id = await self.store.add_observation(
                reg.endpoint,
                [str(p) for p in paths],
                composite=composite,
                content_format=content_format,
                attributes=observation.attributes,
            )
            self._stored_endpoints.add(reg.endpoint)
        observation.handle = handle
        if handle is not None:
            self._active[observation.id] = observation
        self.bus.publish(
            EventKind.OBSERVATION_STARTED,
            reg.endpoint,
            id=observation.id,
            paths=[str(p) for p in paths],
            composite=composite,
            observed=handle is not None,
        )
        return observation, values

    async def cancel(
        self,
        transport: Transport | None,
        reg: Registration | None,
        observation_id: int,
        *,
        active: bool = True,
    ) -> None:
        observation = self._active.pop(observation_id, None)
        if observation is None:
            return
        if observation.handle is not None:
            observation.handle.cancel()
        await self.store.deactivate_observations(observation.endpoint, observation_id)
        if active and reg is not None:
            if observation.composite:
                fmt = observation.content_format or ContentFormat.SENML_CBOR
                root = tuple(s for s in reg.root_path.split("/") if s)
                downlink = Downlink(
                    "FETCH",
                    root,
                    codec.encode_paths(observation.paths, fmt),
                    content_format=fmt,
                    accept=fmt,
                    observe=1,
                )
            else:
                downlink = Downlink(
                    "GET",
                    self.dm.segments(reg, observation.paths[0]),
                    accept=observation.content_format,
                    observe=1,
                )
            token = observation.handle.token if observation.handle is not None else None
            try:
                assert transport is not None  # a registration has its listener
                await transport.send(reg.address, downlink, 10.0, token=token)
            except Exception as exc:
                log.info("cancel of observation %s on %s not answered: %s", observation_id, reg.endpoint, exc)
        self.bus.publish(
            EventKind.OBSERVATION_CANCELLED, observation.endpoint, id=observation_id, active=active
        )

    async def forget_endpoint(self, endpoint: str, *, keep_stored: bool = False) -> None:
        """Drop every local observation of an endpoint (its registration ended or moved)."""
        for observation in self.observations(endpoint):
            self._active.pop(observation.id, None)
            if observation.handle is not None:
                observation.handle.cancel()
        if not keep_stored and endpoint in self._stored_endpoints:
            self._stored_endpoints.discard(endpoint)
            await self.store.deactivate_observations(endpoint)

    async def reestablish(self, transport: Transport, reg: Registration, timeout: float = 25.0) -> int:
        """Observe again everything stored as active for this endpoint (after a move or a restart)."""
        count = 0
        await self.forget_endpoint(reg.endpoint, keep_stored=True)
        for record in await self.store.observations(reg.endpoint):
            try:
                await self.observe(
                    transport,
                    reg,
                    [Path.parse(p) for p in record.paths],
                    composite=record.composite,
                    content_format=record.content_format,
                    attributes=record.attributes,
                    timeout=timeout,
                    existing_id=record.id,
                )
                count += 1
            except Exception as exc:
                log.info("could not re-observe %s on %s: %s", record.paths, reg.endpoint, exc)
        return count

    async def drain(self) -> None:
        """Wait until every notification received so far is stored."""
        while self._pending_writes:
            await asyncio.gather(*list(self._pending_writes), return_exceptions=True)

    # --- notifications ---------------------------------------------------------------------------

    async def _record(
        self, observation: ActiveObservation, response: DownlinkResponse, source: str
    ) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = []
        if not response.payload:
            # A module that has no value yet answers the Observe with an empty 2.05 (OneMO
            # modules answer observations themselves); the observation stands, nothing to store.
            return values
        if observation.composite:
            fmt = response.content_format or observation.content_format or ContentFormat.SENML_CBOR
            try:
                nodes = list(codec.decode_composite(response.payload, fmt, self.model).items())
            except CodecError as exc:
                raise UndecodableAnswer(f"the composite answer ({fmt}) does not decode: {exc}") from exc
        else:
            path = observation.paths[0]
            nodes = [(path, self.dm.decode_response(response, path))]
        # One pass over the values gives both the stored rows and the published JSON, and a
        # composite notification is one write (one commit), not one per node.
        stored: list[StoredValue] = []
        for node_path, node in nodes:
            for p, v, t in iter_values(node, node_path):
                text, jsonable = str(p), value_to_jsonable(v)
                stored.append(StoredValue(text, t.value, jsonable))
                values.append({"path": text, "type": t.value, "value": jsonable})
        await self.store.record_values(observation.endpoint, stored, source)
        observation.last = values
        return values

    async def _store_notification(self, observation: ActiveObservation, response: DownlinkResponse) -> None:
        self.on_heard(observation.endpoint)
        if not response.success:
            self._active.pop(observation.id, None)
            self.bus.publish(
                EventKind.OBSERVATION_ENDED, observation.endpoint, id=observation.id, code=response.code
            )
            return
        try:
            values = await self._record(observation, response, "notify")
        except (CodecError, RequestFailed, UndecodableAnswer) as exc:
            self.notifications_rejected += 1
            self.bus.publish(
                EventKind.NOTIFICATION_REJECTED, observation.endpoint, id=observation.id, reason=str(exc)
            )
            return
        observation.notifications += 1
        self.notifications_stored += 1
        self.bus.publish(
            EventKind.NOTIFICATION,
            observation.endpoint,
            id=observation.id,
            sequence=response.observe,
            values=values,
        )

    # --- send ------------------------------------------------------------------------------------

    async def send(self, reg: Registration, request: SendRequest) -> UplinkResult:
        fmt = request.content_format
        if fmt is None or fmt not in (
            ContentFormat.SENML_CBOR,
            ContentFormat.SENML_JSON,
            ContentFormat.LWM2M_JSON,
        ):
            return UplinkResult(CoapCode.UNSUPPORTED_CONTENT_FORMAT)
        try:
            entries = codec.decode_timestamped(request.payload, Path(), fmt, self.model)
        except CodecError as exc:
            return UplinkResult(CoapCode.BAD_REQUEST, diagnostic=str(exc)[:100])
        stored = [
            StoredValue(
                str(e.path), e.type.value, value_to_jsonable(e.value), e.time.timestamp() if e.time else None
            )
            for e in entries
        ]
        await self.store.record_values(reg.endpoint, stored, "send")
        self.bus.publish(
            EventKind.SEND,
            reg.endpoint,
            values=[
                {"path": s.path, "type": s.type, "value": s.value, "time": s.measured_at} for s in stored
            ],
        )
        return UplinkResult(CoapCode.CHANGED)
