"""All OneNET-compatible routes, mounted at the root as on api.heclouds.com."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.onenet import datastreams, devices, nbiot, offline

router = APIRouter()
router.include_router(datastreams.router)  # before /devices/{device_id}
router.include_router(devices.router)
router.include_router(offline.router)  # before /nbiot/{...} patterns of nbiot
router.include_router(nbiot.router)
