"""`ClusterNode`: the cluster hooks of one server node over NATS and the shared database (see the
package docstring for the design): lifecycle and liveness, ownership, events, notifications on
another node's observation tokens and device rows other nodes store. Requests for devices another
node owns go through `server.cluster.forwarding`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from lwm2m.path import Path
from server.cluster import wire
from server.cluster.forwarding import Forwarder, request_subject
from server.cluster.owners import ClusterRepository
from server.coap.listener import NotificationHandler
from server.domain import Registration
from server.event_kinds import EventKind
from server.events import Event
from server.services.operations import Operation
from server.services.provisioning import Device
from server.services.reporting import ActiveObservation
from server.services.requests import DownlinkResponse

if TYPE_CHECKING:
    from server.lwm2m_server import Lwm2mServer

log = logging.getLogger(__name__)

# Subjects live under the cluster's name (`--cluster-name`, default "testbed"), so that several
# clusters can share one NATS server.
DEFAULT_NAME = "testbed"
HEARTBEAT_INTERVAL = 1.0
DEAD_AFTER = 5.0
# Device rows another node creates are looked up in batches every LEARN_PAUSE seconds, at most
# LEARN_ATTEMPTS times per endpoint.
LEARN_PAUSE = 0.2
LEARN_ATTEMPTS = 20
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Events whose producer now holds the endpoint's registration.
_OWNING_EVENTS = (EventKind.REGISTRATION_REGISTERED, EventKind.REGISTRATION_UPDATED)
_ENDING_EVENTS = (EventKind.REGISTRATION_DEREGISTERED, EventKind.REGISTRATION_EXPIRED)


def events_subject(cluster: str, node_id: str) -> str:
    return f"{cluster}.events.{node_id}"


@dataclass(frozen=True, slots=True)
class _Foreign:
    """An observation another node created (learned from its `observation.started` event)."""

    id: int
    endpoint: str
    paths: tuple[str, ...]
    composite: bool
    content_format: int | None


class ClusterNode:
    def __init__(
        self,
        server: Lwm2mServer,
        node_id: str,
        nats_url: str,
        *,
        http_url: str | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        cluster: str = DEFAULT_NAME,
    ) -> None:
        if not NODE_ID.match(node_id):
            raise ValueError(f"node id {node_id!r}: use 1-64 letters, digits, '-' or '_'")
        if not NODE_ID.match(cluster):
            raise ValueError(f"cluster name {cluster!r}: use 1-64 letters, digits, '-' or '_'")
        self.cluster = cluster
        self.server = server
        self.node_id = node_id
        self.nats_url = nats_url
        self.http_url = http_url
        self.heartbeat_interval = heartbeat_interval
        self.started_at = time.time()
        self.nc: NatsClient | None = None
        self.repo: ClusterRepository | None = None
        self._owners: dict[str, str] = {}
        self._adopted: set[str] = set()
        self._leaving = False
        self._unlearned: dict[str, int] = {}
        self._outbox: list[bytes] = []
        # Other nodes' observations by token, and those whose notifications arrived here.
        self._tokens: dict[bytes, _Foreign] = {}
        # Set by the node runner: OneNET cached commands stored through another node (by device id).
        self.waiting_command: Callable[[int], None] | None = None
        self._stray_observations: dict[int, ActiveObservation] = {}
        self._learner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.link_losses = 0
        self.forwarding = Forwarder(self)

    # --- lifecycle -------------------------------------------------------------------------------

    async def join(self) -> None:
        server = self.server
        self.repo = ClusterRepository(server.store)
        self.repo.start()
        self.nc = await nats.connect(
            self.nats_url,
            name=f"testbed-node-{self.node_id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
            error_cb=self._error,
        )
        await self.nc.subscribe(request_subject(self.cluster, self.node_id), cb=self._on_request)
        await self.nc.subscribe(events_subject(self.cluster, "*"), cb=self._on_event)
        # Registrations loaded from the shared table that other nodes own are theirs to serve.
        owners = await self.repo.owners()
        for reg in server.registrations.all():
            owner = owners.get(reg.endpoint)
            if owner is not None and owner != self.node_id:
                server.registrations.release(reg.endpoint)
                self._owners[reg.endpoint] = owner
        server.provisioning.shared_store = True
        # Observations made before this node started: their tokens are in the shared table.
        for record in await self.repo.observation_tokens():
            if record.token is not None:
                self._tokens[bytes.fromhex(record.token)] = _Foreign(
                    record.id, record.endpoint, tuple(record.paths), record.composite, record.content_format
                )
        for listener in server.listeners.values():
            listener.stray_notification = functools.partial(self._stray, listener.name)
        server.bus.add_listener(self._publish_event)
        server.registrations.on_register(self._claim)
        server.registrations.on_removal(self._removed)
        server.registrations.on_update(self._after_update)
        await self._beat()
        self._spawn(self._heartbeat_forever())

    async def leave(self) -> None:
        self._leaving = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        self.nc = None
        if self.repo is not None:
            with contextlib.suppress(Exception):
                await self.repo.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _disconnected(self) -> None:
        if self._leaving:
            return
        self.link_losses += 1
        log.warning("node %s lost its NATS link; reconnecting", self.node_id)
        self.forwarding.link_lost()

    async def _reconnected(self) -> None:
        log.warning("node %s reconnected to NATS", self.node_id)

    async def _error(self, exc: Exception) -> None:
        log.info("NATS: %s", exc)

    # --- liveness --------------------------------------------------------------------------------

    def _coap(self) -> list[str]:
        return [f"coap://{listener.host}:{listener.port}" for listener in self.server.listeners.values()]

    async def _beat(self) -> None:
        assert self.repo is not None
        await self.repo.heartbeat(self.node_id, self.http_url, self._coap(), self.started_at)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._beat()
                if self.nc is not None and self.nc.is_connected:
                    await self.nc.publish(
                        f"{self.cluster}.heartbeat", wire.dumps({"node": self.node_id, "time": time.time()})
                    )
            except Exception as exc:
                log.warning("heartbeat of node %s failed: %s", self.node_id, exc)

    async def status(self) -> dict[str, Any]:
        assert self.repo is not None
        now = time.time()
        counts = await self.repo.owned_counts()
        nodes = [
            {
                "node_id": row.node_id,
                "http_url": row.http_url,
                "coap": row.coap,
                "started_at": row.started_at,
                "heartbeat_at": row.heartbeat_at,
                "alive": now - row.heartbeat_at < DEAD_AFTER,
                "devices": counts.get(row.node_id, 0),
            }
            for row in await self.repo.nodes()
        ]
        return {
            "clustered": True,
            "node_id": self.node_id,
            "nats_connected": bool(self.nc is not None and self.nc.is_connected),
            "dead_after": DEAD_AFTER,
            "nodes": nodes,
        }

    # --- ownership -------------------------------------------------------------------------------

    async def _claim(self, reg: Registration, _reason: str) -> None:
        assert self.repo is not None
        self._owners[reg.endpoint] = self.node_id
        previous = await self.repo.claim(reg.endpoint, self.node_id, reg.registration_id)
        if previous is not None and previous != self.node_id:
            await self._took_over(reg, previous)

    def _announce_replacement(self, reg: Registration, previous: str) -> None:
        self.server.bus.publish(
            EventKind.REGISTRATION_REPLACED,
            reg.endpoint,
            registration_id=reg.registration_id,
            from_node=previous,
            node=self.node_id,
        )

    async def _took_over(self, reg: Registration, previous: str) -> None:
        self._announce_replacement(reg, previous)
        # Requests queued while another node owned the device wait in the store: deliver them.
        self.server.queue.note_queued(reg.endpoint)
        await self.server._flush(reg)

    async def _removed(self, reg: Registration, reason: str) -> None:
        if reason == "replaced" or self.repo is None:
            return
        if self._owners.get(reg.endpoint) == self.node_id:
            del self._owners[reg.endpoint]
        await self.repo.release(reg.endpoint, self.node_id)

    async def adopt(self, registration_id: str) -> bool:
        """An Update for a registration another node accepted: hold it here from now on."""
        if self.repo is None:
            return False
        reg = await self.repo.registration(registration_id)
        if reg is None or self.server.registrations.get(reg.endpoint) is not None:
            return False
        previous = await self.repo.claim(reg.endpoint, self.node_id, reg.registration_id)
        self._owners[reg.endpoint] = self.node_id
        self.server.registrations.adopt(reg)
        # The Update itself runs next; its hooks flush queued requests, and `_after_update`
        # re-establishes the stored observations from this node's socket.
        self.server.queue.note_queued(reg.endpoint)
        self._adopted.add(reg.endpoint)
        if previous is not None and previous != self.node_id:
            self._announce_replacement(reg, previous)
        return True

    async def _after_update(self, reg: Registration, reason: str) -> None:
        if reg.endpoint not in self._adopted:
            return
        self._adopted.discard(reg.endpoint)
        if reason != "address":  # an address change re-establishes them already
            server = self.server
            await server.reporting.reestablish(server.listener_for(reg), reg, server.settings.request_timeout)

    async def owner_of(self, endpoint: str) -> str | None:
        owner = self._owners.get(endpoint)
        if owner is None and self.repo is not None:
            owner = await self.repo.owner_of(endpoint)
            if owner is not None:
                self._owners[endpoint] = owner
        return owner

    # --- events ----------------------------------------------------------------------------------

    def _publish_event(self, event: Event) -> None:
        """Bus listener: queue the event for NATS; one task publishes what queued meanwhile."""
        if self.nc is None or self.nc.is_closed:
            return
        if event.kind == EventKind.OBSERVATION_STARTED and event.endpoint is not None:
            event = self._with_token(event)
        self._outbox.append(wire.event_to_wire(event))
        if len(self._outbox) == 1:
            self._spawn(self._publish_outbox())

    def _with_token(self, event: Event) -> Event:
        """The other nodes learn an observation's token, to accept its notifications; it is kept
        beside the observation's row too, for nodes that start later."""
        for observation in self.server.observations(event.endpoint):
            if observation.id == event.data.get("id") and observation.handle is not None:
                extra = {
                    "token": observation.handle.token.hex(),
                    "content_format": observation.content_format,
                }
                self._spawn(self._remember_token(observation.id, observation.handle.token))
                return replace(event, data={**event.data, **extra})
        return event

    async def _remember_token(self, observation_id: int, token: bytes) -> None:
        if self.repo is None:
            return
        try:
            await self.repo.remember_token(observation_id, token)
        except Exception as exc:  # the store is closing; the live event carried the token anyway
            log.info("token of observation %d not stored: %s", observation_id, exc)

    async def _publish_outbox(self) -> None:
        nc = self.nc
        batch, self._outbox = self._outbox, []
        if nc is None:
            return
        subject = events_subject(self.cluster, self.node_id)
        try:
            for payload in batch:
                await nc.publish(subject, payload)
        except Exception as exc:
            log.info("%d event(s) not published on NATS: %s", len(batch), exc)

    async def _on_event(self, msg: Msg) -> None:
        producer = msg.subject.rsplit(".", 1)[-1]
        if producer == self.node_id:
            return
        try:
            event = wire.event_from_wire(msg.data, producer)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("undecodable event from node %s: %s", producer, exc)
            return
        endpoint = event.endpoint
        if endpoint is not None and event.kind in _OWNING_EVENTS:
            self._owners[endpoint] = producer
            if self.server.registrations.get(endpoint) is not None:
                self._spawn(self._let_go(endpoint))
            if event.kind == EventKind.REGISTRATION_REGISTERED:
                self._learn_device(endpoint)
        elif endpoint is not None and event.kind in _ENDING_EVENTS and self._owners.get(endpoint) == producer:
            del self._owners[endpoint]
        if endpoint is not None and event.kind == EventKind.OBSERVATION_STARTED and "token" in event.data:
            self._tokens[bytes.fromhex(event.data["token"])] = _Foreign(
                int(event.data["id"]),
                endpoint,
                tuple(event.data.get("paths") or ()),
                bool(event.data.get("composite")),
                event.data.get("content_format"),
            )
        elif event.kind == EventKind.OFFLINE_COMMAND_CREATED and self.waiting_command is not None:
            self.waiting_command(int(event.data["device_id"]))
        elif endpoint is not None and event.kind in (
            EventKind.OBSERVATION_CANCELLED,
            EventKind.OBSERVATION_ENDED,
        ):
            for token, known in list(self._tokens.items()):
                if known.id == event.data.get("id") and known.endpoint == endpoint:
                    del self._tokens[token]
        self.server.bus.relay(event)

    # --- notifications on another node's observation tokens -----------------------------------

    def _stray(self, listener: str, token: bytes, host: str, port: int) -> NotificationHandler | None:
        """A notification on a token this node's listener did not create: one of another node's
        observations (after a load-balancer change) is stored here and acknowledged after the
        commit; anything else is answered with Reset as before."""
        known = self._tokens.get(token)
        if known is None:
            return None

        def handle(response: DownlinkResponse) -> asyncio.Future[Any]:
            task = asyncio.create_task(self._store_stray(known, listener, host, port, response))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return task

        return handle

    async def _store_stray(
        self, known: _Foreign, listener: str, host: str, port: int, response: DownlinkResponse
    ) -> None:
        server = self.server
        await self._take_over(known.endpoint, listener, host, port)
        observation = self._stray_observations.get(known.id)
        if observation is None:
            observation = ActiveObservation(
                id=known.id,
                endpoint=known.endpoint,
                paths=[Path.parse(p) for p in known.paths],
                composite=known.composite,
                content_format=known.content_format,
                attributes={},
            )
            self._stray_observations[known.id] = observation
        await server.reporting._store_notification(observation, response)

    async def _take_over(self, endpoint: str, listener: str, host: str, port: int) -> None:
        """The device now talks to this node: hold its registration here, at its new address."""
        server = self.server
        if server.registrations.get(endpoint) is not None or self.repo is None:
            return
        stored = await self.repo.registration_of(endpoint)
        if stored is None or server.registrations.get(endpoint) is not None:
            return
        reg = replace(stored, listener=listener, host=host, port=port)
        await server.store.save_registration(reg)
        server.registrations.adopt(reg)
        self._owners[endpoint] = self.node_id
        previous = await self.repo.claim(endpoint, self.node_id, reg.registration_id)
        if previous is not None and previous != self.node_id:
            self._announce_replacement(reg, previous)
        server.queue.note_queued(endpoint)

    async def _let_go(self, endpoint: str) -> None:
        """Another node took `endpoint`: drop this node's copy and its live observations."""
        server = self.server
        if server.registrations.release(endpoint) is not None:
            server.queue.forget(endpoint)
            await server.reporting.forget_endpoint(endpoint, keep_stored=True)

    def _learn_device(self, endpoint: str) -> None:
        """Index, soon, the device row another node stores for `endpoint` (the API finds devices
        by id): endpoints are looked up together, a few times while their rows are not there."""
        if self.server.provisioning.device_by_endpoint(endpoint) is not None:
            return
        self._unlearned[endpoint] = LEARN_ATTEMPTS
        if self._learner is None or self._learner.done():
            self._learner = asyncio.create_task(self._learn_devices())
            self._tasks.add(self._learner)
            self._learner.add_done_callback(self._tasks.discard)

    async def _learn_devices(self) -> None:
        assert self.repo is not None
        while self._unlearned:
            await asyncio.sleep(LEARN_PAUSE)
            batch = list(self._unlearned)[:1000]
            try:
                rows = await self.repo.device_rows(batch)
            except Exception as exc:
                log.warning("could not read device rows: %s", exc)
                rows = []
            for row in rows:
                self.server.provisioning.remember(Device.from_row(row))
                self._unlearned.pop(row["endpoint"], None)
            for endpoint in batch:
                if endpoint in self._unlearned:
                    self._unlearned[endpoint] -= 1
                    if self._unlearned[endpoint] <= 0:
                        del self._unlearned[endpoint]

    # --- requests for devices another node owns (server.cluster.forwarding) ----------------------

    async def perform(self, endpoint: str, op: Operation, *, timeout: float | None, queue: bool) -> Any:
        return await self.forwarding.perform(endpoint, op, timeout=timeout, queue=queue)

    async def observe(self, endpoint: str, request: dict[str, Any]) -> dict[str, Any]:
        return await self.forwarding.observe(endpoint, request)

    async def enqueue(self, endpoint: str, op: Operation) -> int:
        return await self.forwarding.enqueue(endpoint, op)

    async def _on_request(self, msg: Msg) -> None:
        # One task per request: a slow device must not hold up the subscription's other requests.
        self._spawn(self.forwarding.serve(msg))
