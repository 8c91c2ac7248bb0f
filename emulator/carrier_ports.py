"""Routes to a server whose carrier listeners share one address, each carrier on its own ports
(`server.settings.CARRIER_PORTS`): the docker compose layout, where every carrier host name is a
network alias of the one server container.

`port_routes()` gives `HostMap` overrides: each carrier host of the module manual, by name or by
the carrier's IP literal, on 5683 (CoAP) or 5684 (DTLS), goes to the carrier's canonical host name
on the carrier's port. The name is resolved when the datagram is sent (the container network's
DNS), so the routes hold whatever address the server container has.
"""

from __future__ import annotations

from typing import Final

from transport.address_plan import COAP_PORT, DTLS_PORT, HOST_ADDRESSES, SHARED_PORT_ROUTES

# The testbed's default carrier address -> the carrier host name that reaches it in compose, and
# its CoAP and DTLS ports: a view of the one address plan (`transport.address_plan`).
CARRIER_PORTS: Final[dict[str, tuple[str, int, int]]] = dict(SHARED_PORT_ROUTES)


def port_routes() -> dict[str, str | tuple[str, int]]:
    """`HostMap` overrides: every carrier host (name or address) and its default address, on
    5683 and 5684 -> (the carrier's host name, the carrier's CoAP or DTLS port)."""
    routes: dict[str, str | tuple[str, int]] = {}
    hosts = [*HOST_ADDRESSES.items(), *((address, address) for address in CARRIER_PORTS)]
    for host, address in hosts:
        name, coap_port, dtls_port = CARRIER_PORTS[address]
        routes[f"{host}:{COAP_PORT}"] = (name, coap_port)
        routes[f"{host}:{DTLS_PORT}"] = (name, dtls_port)
    return routes
