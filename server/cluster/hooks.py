"""The one seam between `Lwm2mServer` and a cluster: `ClusterHooks`.

The server calls these hooks only where a single process has nothing local to act on (no
registration of the endpoint here, an Update for a registration id not held here), so the hot
paths do not pass through them. `LocalNode` is the single-process answer: what the server raised
or answered before the cluster existed.
"""

from __future__ import annotations

from typing import Any, Protocol

from server.services.errors import UnknownEndpoint
from server.services.operations import Operation


class ClusterHooks(Protocol):
    @property
    def node_id(self) -> str | None:
        """This node's id in the cluster; None for a single process."""

    async def join(self) -> None:
        """Called by `Lwm2mServer.start` once registrations are loaded, before anything is sent."""

    async def leave(self) -> None:
        """Called by `Lwm2mServer.stop` first."""

    async def status(self) -> dict[str, Any]:
        """What `GET /api/v1/cluster` shows."""

    async def perform(self, endpoint: str, op: Operation, *, timeout: float | None, queue: bool) -> Any:
        """Run `op` on the node that owns `endpoint`; returns the JSON-safe result."""

    async def observe(self, endpoint: str, request: dict[str, Any]) -> dict[str, Any]:
        """Start an observation on the owner; returns {id, values, observed}."""

    async def enqueue(self, endpoint: str, op: Operation) -> int:
        """Queue `op` on the owner (its queue mode delivers it); returns the request id."""

    async def adopt(self, registration_id: str) -> bool:
        """Take over a registration held by another node; True when it is now indexed here."""


class LocalNode:
    """One process, no cluster: an endpoint not registered here is not registered at all."""

    node_id: str | None = None

    async def join(self) -> None:
        return None

    async def leave(self) -> None:
        return None

    async def status(self) -> dict[str, Any]:
        return {"clustered": False, "node_id": None, "nodes": []}

    async def perform(self, endpoint: str, op: Operation, *, timeout: float | None, queue: bool) -> Any:
        raise UnknownEndpoint(endpoint)

    async def observe(self, endpoint: str, request: dict[str, Any]) -> dict[str, Any]:
        raise UnknownEndpoint(endpoint)

    async def enqueue(self, endpoint: str, op: Operation) -> int:
        raise UnknownEndpoint(endpoint)

    async def adopt(self, registration_id: str) -> bool:
        return False
