"""Loopback addresses for carrier listeners, one set per cloud, distinct across test processes.

Module firmware sends to a carrier host name on the carrier's fixed port (5683 / 5684), so two
clouds on one machine cannot share an address. Linux answers on all of 127.0.0.0/8: a cloud of
pytest-xdist worker `gwN` takes addresses from 127.0.<N+2>.1-254 (127.0.0.x is left to a testbed
started by hand), and an address is taken only after binding its ports succeeded, so a second test
session on the same machine moves on to the next free address.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Sequence

FIRST_WORKER_OCTET = 2


def worker_index() -> int:
    """The pytest-xdist worker number (`PYTEST_XDIST_WORKER=gw3` -> 3), 0 without xdist."""
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) if match else 0


def candidate_addresses(worker: int | None = None) -> Iterator[str]:
    """Addresses of this worker's block first, then the other blocks."""
    index = worker_index() if worker is None else worker
    blocks = 256 - FIRST_WORKER_OCTET
    for step in range(blocks):
        octet = FIRST_WORKER_OCTET + (index + step) % blocks
        for last in range(1, 255):
            yield f"127.0.{octet}.{last}"


def udp_ports_free(host: str, ports: Sequence[int]) -> bool:
    """True when every UDP port in `ports` can be bound on `host` right now."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind((host, port))
    except OSError:
        return False
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
    return True


def free_addresses(count: int, ports: Sequence[int], exclude: set[str] | None = None) -> list[str]:
    """`count` loopback addresses on which all `ports` are free, skipping `exclude`."""
    chosen: list[str] = []
    skip = exclude or set()
    for address in candidate_addresses():
        if address in skip or not udp_ports_free(address, ports):
            continue
        chosen.append(address)
        if len(chosen) == count:
            return chosen
    raise OSError(f"no free loopback address for UDP ports {list(ports)}")
