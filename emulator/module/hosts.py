"""Where the emulated module's datagrams really go: carrier hosts (`nbiotbt.heclouds.com`,
`183.230.40.40`, `lwm2m.ctwing.cn`, ...) resolve through `HostMap` to the loopback address of the
testbed's carrier listener (`CARRIER_HOSTS`, a view of `transport.address_plan`), other names to
127.0.0.1; other IP literals are kept. Overrides map a name or an address, optionally with its
port (`"127.0.1.2:5684": ("127.0.1.2", 40123)`), which is how tests reach ephemeral ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

from transport.address_plan import DEFAULT_ADDRESS, HOST_ADDRESSES

# Carrier hosts (names and public IPs) -> the loopback address of the testbed's listener for that
# host: a view of the one address plan (`transport.address_plan`), which the server's listeners read.
CARRIER_HOSTS: Final[dict[str, str]] = dict(HOST_ADDRESSES)

Target = str | tuple[str, int]


class HostMap:
    """Host (name or address, optionally `host:port`) -> where the emulator really sends.

    `names` adds to / overrides `CARRIER_HOSTS` (pass `carrier_defaults=False` to start empty);
    a value is an address (the port is kept) or an (address, port) pair. Names not in the map go
    to `default`; IP literals not in the map are kept."""

    def __init__(
        self,
        names: Mapping[str, Target] | None = None,
        default: str = DEFAULT_ADDRESS,
        *,
        carrier_defaults: bool = True,
    ) -> None:
        merged: dict[str, Target] = dict(CARRIER_HOSTS) if carrier_defaults else {}
        merged.update(names or {})
        self.names = {k.lower(): v for k, v in merged.items()}
        self.default = default

    def resolve(self, host: str) -> str:
        """The address of `host` (ports of (address, port) entries are ignored here)."""
        found = self.names.get(host.lower())
        if found is not None:
            return found if isinstance(found, str) else found[0]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return self.default
        return host

    def route(self, host: str, port: int) -> tuple[str, int]:
        """The (address, port) a datagram for `host:port` goes to."""
        for key in (f"{host.lower()}:{port}", host.lower()):
            found = self.names.get(key)
            if isinstance(found, tuple):
                return found[0], found[1]
        address = self.resolve(host)
        found = self.names.get(f"{address}:{port}")
        if isinstance(found, tuple):
            return found[0], found[1]
        return (found if isinstance(found, str) else address), port

    def carrier_host(self, host: str, port: int) -> str:
        """The carrier-side name of `host:port`, the map read backwards: the first carrier host
        (an address for an address, else a name) whose route is the route of `host:port`.

        A bootstrap server writes an address a standards client reaches here (the testbed's
        access listener, `coaps://127.0.1.2:5684`); the module shows and keeps the carrier's
        address instead (`183.230.40.40`, manual §5.2), which this map sends to the same place,
        so nothing ever goes to the real carrier. A host that is a carrier host already, a name,
        or an address no carrier host routes to is kept."""
        key = host.lower()
        if key in self.names or not _is_address(key):
            return host
        target = self.route(host, port)
        candidates = [k for k in self.names if ":" not in k and not _is_loopback(k)]
        candidates.sort(key=lambda k: not _is_address(k))  # stable: addresses first, map order
        for candidate in candidates:
            if self.route(candidate, port) == target:
                return candidate
        return host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    return _is_address(host) and ipaddress.ip_address(host).is_loopback
