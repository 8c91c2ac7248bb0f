"""`GET /api/v1/cluster`: the nodes of the cluster, their liveness and how many devices each one
holds (server.cluster); a single process answers `{"clustered": false, ...}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.api.deps import CurrentKey, ServerDep

router = APIRouter()


@router.get("/cluster")
async def cluster_status(server: ServerDep, _principal: CurrentKey) -> dict[str, Any]:
    """The nodes of the cluster. Each node with its liveness (heartbeats every second, down after
    5 s without one) and how many devices it owns; a single process answers
    `{"clustered": false, ...}`."""
    return await server.cluster.status()
