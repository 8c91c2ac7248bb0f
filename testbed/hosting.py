"""Module hosting for the console: where a module hosted in the server's process sends its
traffic. The `ModuleHost` itself is the emulator's (`emulator.hosting`, which never imports the
server); this module joins it to a running server's listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.settings import CARRIER_ADDRESSES

if TYPE_CHECKING:
    from server.lwm2m_server import Lwm2mServer


def reachable(address: tuple[str, int]) -> tuple[str, int]:
    """A listening address as a client in this process reaches it (a wildcard on 127.0.0.1)."""
    return ("127.0.0.1" if address[0] in ("0.0.0.0", "::") else address[0]), address[1]


def module_routes(server: Lwm2mServer) -> dict[str, tuple[str, int]]:
    """Host-map overrides for modules hosted in this process: each carrier's default address
    (server.settings.CARRIER_ADDRESSES), on 5683 and 5684, -> where its listener really is (a
    wildcard address is reached on 127.0.0.1), e.g. when the carriers share one address."""
    routes: dict[str, tuple[str, int]] = {}
    for name, (_carrier, _role, default) in CARRIER_ADDRESSES.items():
        if name in server.listeners:
            routes[f"{default}:5683"] = reachable(server.listeners[name].address)
        if name in server.dtls:
            routes[f"{default}:5684"] = reachable(server.dtls[name].address)
    return routes
