"""Request forwarding between cluster nodes (subject `<cluster>.node.<id>.request`, NATS
request/reply; see the package docstring): the caller's side sends an operation on a device another
node owns to that owner and maps what comes back (or does not) to the errors of
`server.services.errors`; the owner's side runs it as a local request and answers with the JSON
result or the error (`wire.py` encodes both ways)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from server.cluster import wire
from server.services.errors import DeviceTimeout, DeviceUnreachable, ServerError, UnknownEndpoint
from server.services.operations import Operation, operation_from_dict

if TYPE_CHECKING:
    from server.lwm2m_server import Lwm2mServer

log = logging.getLogger(__name__)

# Transit allowance of a forwarded request on top of the caller's timeout (the owner spends the
# timeout itself on the device).
FORWARD_GRACE = 2.0


def request_subject(cluster: str, node_id: str) -> str:
    return f"{cluster}.node.{node_id}.request"


class ForwardingNode(Protocol):
    """What forwarding needs of its node (`ClusterNode`)."""

    @property
    def server(self) -> Lwm2mServer: ...
    @property
    def node_id(self) -> str: ...
    @property
    def cluster(self) -> str: ...
    @property
    def nc(self) -> NatsClient | None: ...

    async def owner_of(self, endpoint: str) -> str | None: ...


class Forwarder:
    """One node's forwarded requests, both ways; `forwarded` and `served` count them."""

    def __init__(self, node: ForwardingNode) -> None:
        self.node = node
        self.forwarded = 0
        self.served = 0
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._lost: set[asyncio.Future[Any]] = set()

    def link_lost(self) -> None:
        """The NATS link dropped: the requests in flight fail at once, their outcome unknown."""
        for task in list(self._in_flight):
            self._lost.add(task)
            task.cancel()

    # --- the caller's side ------------------------------------------------------------------------

    def _budget(self, timeout: float | None) -> float:
        return self.node.server.settings.request_timeout if timeout is None else timeout

    async def _forward(self, endpoint: str, body: dict[str, Any], budget: float) -> Any:
        node = self.node
        owner = await node.owner_of(endpoint)
        if owner is None or owner == node.node_id:
            raise UnknownEndpoint(endpoint)
        nc = node.nc
        if nc is None or not nc.is_connected:
            raise DeviceUnreachable(
                f"the cluster link (NATS) is down, node {node.node_id} is reconnecting; "
                f"{endpoint!r} is served by node {owner}: try again"
            )
        body = {**body, "endpoint": endpoint, "timeout": budget}
        task = asyncio.ensure_future(
            nc.request(request_subject(node.cluster, owner), wire.dumps(body), timeout=budget + FORWARD_GRACE)
        )
        self._in_flight.add(task)
        self.forwarded += 1
        try:
            msg = await task
        except asyncio.CancelledError:
            if task in self._lost:
                raise DeviceUnreachable(
                    f"the cluster link (NATS) was lost while the request to node {owner} was in "
                    "flight; its outcome is unknown: check, then try again"
                ) from None
            raise
        except nats.errors.NoRespondersError:
            raise DeviceUnreachable(
                f"node {owner}, which holds {endpoint!r}, does not answer (down?): the device is "
                "offline until it registers through a live node"
            ) from None
        except nats.errors.TimeoutError:
            raise DeviceTimeout(f"no answer from node {owner} within {budget + FORWARD_GRACE:g} s") from None
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise DeviceUnreachable(f"the cluster link (NATS) is down: {exc}; try again") from None
        finally:
            self._in_flight.discard(task)
            self._lost.discard(task)
        reply = wire.loads(msg.data)
        if "error" in reply:
            raise wire.error_from_wire(reply)
        return reply["ok"]

    async def perform(self, endpoint: str, op: Operation, *, timeout: float | None, queue: bool) -> Any:
        budget = self._budget(timeout)
        return await self._forward(endpoint, {"kind": "perform", "op": op.as_dict(), "queue": queue}, budget)

    async def observe(self, endpoint: str, request: dict[str, Any]) -> dict[str, Any]:
        budget = self._budget(request.get("timeout"))
        result: dict[str, Any] = await self._forward(
            endpoint, {"kind": "observe", "observe": request}, budget
        )
        return result

    async def enqueue(self, endpoint: str, op: Operation) -> int:
        budget = self._budget(None)
        return int(await self._forward(endpoint, {"kind": "enqueue", "op": op.as_dict()}, budget))

    # --- the owner's side -------------------------------------------------------------------------

    async def serve(self, msg: Msg) -> None:
        """Run one forwarded request here and answer it (the node runs each in its own task)."""
        try:
            body = wire.loads(msg.data)
            reply: dict[str, Any] = {"ok": await self._run_locally(body)}
        except ServerError as exc:
            reply = wire.error_to_wire(exc)
        except Exception as exc:
            log.exception("forwarded request failed on node %s", self.node.node_id)
            reply = wire.error_to_wire(exc)
        self.served += 1
        with contextlib.suppress(Exception):
            await msg.respond(wire.dumps(reply))

    async def _run_locally(self, body: dict[str, Any]) -> Any:
        server = self.node.server
        endpoint = str(body["endpoint"])
        if server.registrations.get(endpoint) is None:
            # Not (or no longer) ours: never forward again from here (no loops between nodes).
            raise UnknownEndpoint(endpoint)
        timeout = float(body["timeout"])
        kind = body["kind"]
        if kind == "perform":
            op = operation_from_dict(body["op"]["kind"], body["op"]["params"])
            return await server.perform(endpoint, op, timeout=timeout, queue=bool(body.get("queue")))
        if kind == "enqueue":
            op = operation_from_dict(body["op"]["kind"], body["op"]["params"])
            return await server.enqueue(endpoint, op)
        if kind == "observe":
            request = body["observe"]
            paths: Any = request["paths"] if request["composite"] else request["paths"][0]
            observation = await server.observe(
                endpoint,
                paths,
                content_format=request.get("content_format"),
                attributes=request.get("attributes") or None,
                timeout=timeout,
            )
            return {"id": observation.id, "values": observation.values, "observed": observation.observed}
        raise ValueError(f"unknown forwarded request {kind!r}")
