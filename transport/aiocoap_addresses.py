"""Memoized address arithmetic for aiocoap's UDP transport (used by the server and the emulator).

aiocoap's `UDP6EndpointAddress` turns its socket address into text with the `ipaddress` module
several times for every datagram: to tell whether the remote is a multicast address, whether the
local one is, and for the v4-mapped form of host names. That parsing is a pure function of the
address, yet it cost about a tenth of the CPU of a notification on both ends (a fleet of 10,000
modules sends 1,000 a second). `install()` caches it per address; behaviour is unchanged.

This module does no I/O; it lives in the transport edge package, and only the
CoAP edges (`server.coap`, `emulator.client`) import it.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from aiocoap.transports import udp6

CACHE_SIZE = 1 << 16


@functools.lru_cache(maxsize=CACHE_SIZE)
def strip_v4mapped(address: str | bytes) -> str:
    """The address as text: IPv4 for a v4-mapped IPv6 address, else the compressed IPv6 form."""
    parsed = ipaddress.IPv6Address(address)
    mapped = parsed.ipv4_mapped
    return str(mapped) if mapped is not None else str(parsed)


@functools.lru_cache(maxsize=CACHE_SIZE)
def is_multicast(plain_address: str) -> bool:
    """Whether an address text (optionally with a `%zone`) is a multicast address."""
    return ipaddress.ip_address(plain_address.split("%", 1)[0]).is_multicast


def _remote_is_multicast(self: Any) -> bool:
    return is_multicast(self._plainaddress())


def _local_is_multicast(self: Any) -> bool:
    return is_multicast(self._plainaddress_local())


def install() -> None:
    """Make `UDP6EndpointAddress` use the cached functions (idempotent)."""
    cls: Any = udp6.UDP6EndpointAddress
    if getattr(cls, "_testbed_memoized", False):
        return
    cls._strip_v4mapped = staticmethod(strip_v4mapped)
    cls.is_multicast = property(_remote_is_multicast)
    cls.is_multicast_locally = property(_local_is_multicast)
    cls._testbed_memoized = True
