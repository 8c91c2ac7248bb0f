"""The memoized address helpers agree with aiocoap's own on every kind of address it meets."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from aiocoap.transports import udp6

from transport import aiocoap_addresses

ADDRESSES = [
    "::ffff:127.0.0.1",
    "::ffff:127.0.1.3",
    "::ffff:224.0.1.187",
    "::1",
    "2001:db8:0:0:0:0:0:1",
    "ff02::fd",
    "ff05:0:0:0:0:0:0:fd",
    "fe80::1",
]


def _reference_strip(address: str | bytes) -> str:
    parsed = ipaddress.IPv6Address(address)
    return str(parsed.ipv4_mapped) if parsed.ipv4_mapped is not None else str(parsed)


@pytest.mark.parametrize("address", ADDRESSES)
def test_text_and_multicast_flags_match_the_uncached_computation(address: str) -> None:
    assert aiocoap_addresses.strip_v4mapped(address) == _reference_strip(address)
    packed = socket.inet_pton(socket.AF_INET6, address)
    assert aiocoap_addresses.strip_v4mapped(packed) == _reference_strip(packed)
    plain = _reference_strip(address)
    assert aiocoap_addresses.is_multicast(plain) == ipaddress.ip_address(plain).is_multicast


def test_endpoint_addresses_use_the_cache_and_keep_their_answers() -> None:
    aiocoap_addresses.install()
    aiocoap_addresses.install()  # idempotent

    class Interface:  # the endpoint address keeps only a weak reference to its interface
        def _local_port(self) -> int:
            return 5683

    interface = Interface()
    pktinfo = struct.pack("16sI", socket.inet_pton(socket.AF_INET6, "::ffff:224.0.1.187"), 0)
    remote = udp6.UDP6EndpointAddress(("::ffff:127.0.0.1", 40000, 0, 0), interface, pktinfo=pktinfo)
    assert remote.hostinfo == "127.0.0.1:40000"
    assert remote.is_multicast is False
    assert remote.is_multicast_locally is True
    multicast = udp6.UDP6EndpointAddress(("ff05::fd", 5683, 0, 0), interface)
    assert multicast.is_multicast is True
    before = aiocoap_addresses.is_multicast.cache_info().hits
    assert remote.is_multicast is False
    assert aiocoap_addresses.is_multicast.cache_info().hits == before + 1
