"""A UDP impairment proxy between emulated modules and the server: loss, duplication, reordering,
delay, jitter and NAT rebinding.

Modules send to the proxy's address instead of the server's. Each module address (a *flow*) gets
its own upstream socket towards the server, so the server sees one source address per module,
as behind a carrier NAT. `rebind()` swaps a flow's upstream socket for a fresh one: the server
then hears the module from a new source port (the NAT mapping changed, RFC 4787 §4.3), and what
it sends to the old port is lost — exactly what LwM2M's Update after an address change and
DTLS Connection ID (RFC 9146) exist for.

Design choices:
- Datagram-level only: the proxy never parses CoAP or DTLS, so it impairs both ports alike.
- Impairments apply in both directions, per flow (`set_flow`) or for every flow (`default`).
  Per datagram, in this order: loss, then duplication (the copy gets its own delay), then
  delay + uniform jitter, then reordering (a held-back datagram waits `reorder_delay` more, so
  the ones after it overtake it).
- Deterministic: every flow draws from its own `random.Random` seeded from the proxy's seed and
  the flow's number, so a test with a fixed seed sees the same fate for the n-th datagram of the
  k-th flow whatever the other flows do.
- Plain non-blocking sockets with `loop.add_reader`: creating a flow or rebinding it needs no
  await, so it happens inside the datagram callback. A full socket buffer drops the datagram,
  like a congested link.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger(__name__)

Address = tuple[str, int]
_MAX_DATAGRAM = 65535


@dataclass(frozen=True, slots=True)
class Impairment:
    """What happens to datagrams; probabilities in [0, 1], times in seconds."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.02
    delay: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} is not a probability")
        for name in ("reorder_delay", "delay", "jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(slots=True)
class ProxyCounters:
    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    rebinds: int = 0


@dataclass(slots=True)
class _Flow:
    number: int
    client: Address
    upstream: socket.socket
    rng: random.Random
    retired: list[socket.socket] = field(default_factory=list)

    @property
    def upstream_port(self) -> int:
        return int(self.upstream.getsockname()[1])


def parse_address(value: str | Address) -> Address:
    """`"host:port"` (or `"[v6]:port"`) or a (host, port) tuple."""
    if isinstance(value, tuple):
        return (value[0], int(value[1]))
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{value!r} is not host:port")
    return (host.strip("[]") or "127.0.0.1", int(port))


class ImpairmentProxy:
    """`await proxy.start()`, point modules at `proxy.address`, change `default` or `set_flow()`
    at any time, `rebind()` a flow to change its source port, `await proxy.stop()`."""

    def __init__(
        self,
        target: Address | str,
        *,
        listen: Address | str = ("127.0.0.1", 0),
        impairment: Impairment | None = None,
        seed: int = 0,
    ) -> None:
        self.target = parse_address(target)
        self._listen = parse_address(listen)
        self.default = impairment or Impairment()
        self.seed = seed
        self.counters = ProxyCounters()
        self._sock: socket.socket | None = None
        self._flows: dict[Address, _Flow] = {}
        self._overrides: dict[Address, Impairment] = {}
        self._by_upstream: dict[int, _Flow] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        if self._sock is None:
            raise RuntimeError("proxy not started")
        host, port = self._sock.getsockname()[:2]
        return (host, int(port))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = self._socket(self._listen)
        self._loop.add_reader(self._sock.fileno(), self._from_clients)

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for flow in list(self._flows.values()):
            for sock in [flow.upstream, *flow.retired]:
                self._close_upstream(sock)
        self._flows.clear()
        self._by_upstream.clear()
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> ImpairmentProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- settings --------------------------------------------------------------------------------

    def set_flow(self, client: Address | str, impairment: Impairment | None) -> None:
        """Impair one module's traffic differently (None: back to `default`), before or after
        the module's first datagram."""
        address = parse_address(client)
        if impairment is None:
            self._overrides.pop(address, None)
        else:
            self._overrides[address] = impairment

    def update_default(self, **changes: Any) -> Impairment:
        """Change some fields of the fleet-wide impairment, e.g. `update_default(loss=0.2)`."""
        self.default = replace(self.default, **changes)
        return self.default

    def flows(self) -> dict[Address, int]:
        """Each module address and the source port the server currently sees it from."""
        return {client: flow.upstream_port for client, flow in self._flows.items()}

    def upstream_port(self, client: Address) -> int:
        return self._flows[parse_address(client)].upstream_port

    def rebind(self, client: Address | None = None) -> None:
        """NAT rebinding: give one flow (or every flow) a new source port towards the server.
        Datagrams the server sends to the old port from now on are dropped silently."""
        targets = [self._flows[parse_address(client)]] if client is not None else list(self._flows.values())
        for flow in targets:
            # A NAT drops what arrives on a dropped mapping, silently (no ICMP error): the old
            # socket stays open and its datagrams are discarded.
            flow.retired.append(flow.upstream)
            flow.upstream = self._upstream_socket(flow.number)
            self._by_upstream[flow.upstream.fileno()] = flow
            self.counters.rebinds += 1

    # --- datagrams -------------------------------------------------------------------------------

    @staticmethod
    def _socket(bind: Address) -> socket.socket:
        family = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(bind)
        return sock

    def _upstream_socket(self, flow_number: int) -> socket.socket:
        assert self._loop is not None
        host = self._listen[0] if self._listen[0] not in ("0.0.0.0", "::") else "127.0.0.1"
        sock = self._socket((host, 0))
        self._loop.add_reader(sock.fileno(), self._from_server, sock)
        return sock

    def _close_upstream(self, sock: socket.socket) -> None:
        if sock.fileno() < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        self._by_upstream.pop(sock.fileno(), None)
        sock.close()

    def _flow(self, client: Address) -> _Flow:
        flow = self._flows.get(client)
        if flow is None:
            number = len(self._flows)
            sock = self._upstream_socket(number)
            flow = _Flow(number, client, sock, random.Random(self.seed * 1_000_003 + number))
            self._by_upstream[sock.fileno()] = flow
            self._flows[client] = flow
        return flow

    def _from_clients(self) -> None:
        assert self._sock is not None
        for _ in range(64):
            try:
                data, addr = self._sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("proxy receive failed: %s", exc)
                return
            flow = self._flow((addr[0], int(addr[1])))
            self._impair(flow, data, upstream=True)

    def _from_server(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                data, _addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("proxy receive failed: %s", exc)
                return
            flow = self._by_upstream.get(sock.fileno())
            if flow is None or flow.upstream is not sock:
                self.counters.dropped += 1
                continue
            self._impair(flow, data, upstream=False)

    def _impair(self, flow: _Flow, data: bytes, *, upstream: bool) -> None:
        self.counters.received += 1
        settings = self._overrides.get(flow.client, self.default)
        rng = flow.rng
        if settings.loss and rng.random() < settings.loss:
            self.counters.dropped += 1
            return
        copies = 1
        if settings.duplicate and rng.random() < settings.duplicate:
            copies = 2
            self.counters.duplicated += 1
        for _ in range(copies):
            wait = settings.delay
            if settings.jitter:
                wait += rng.uniform(0.0, settings.jitter)
            if settings.reorder and rng.random() < settings.reorder:
                wait += settings.reorder_delay
                self.counters.reordered += 1
            if wait <= 0:
                self._deliver(flow, data, upstream)
            else:
                self._later(wait, flow, data, upstream)

    def _later(self, wait: float, flow: _Flow, data: bytes, upstream: bool) -> None:
        assert self._loop is not None
        timer: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._timers.discard(timer)
            self._deliver(flow, data, upstream)

        timer = self._loop.call_later(wait, fire)
        self._timers.add(timer)

    def _deliver(self, flow: _Flow, data: bytes, upstream: bool) -> None:
        try:
            if upstream:
                if flow.upstream.fileno() < 0:
                    return
                flow.upstream.sendto(data, self.target)
            else:
                if self._sock is None:
                    return
                self._sock.sendto(data, flow.client)
        except (BlockingIOError, InterruptedError):
            self.counters.dropped += 1
            return
        except OSError as exc:
            log.debug("proxy send failed: %s", exc)
            self.counters.dropped += 1
            return
        self.counters.forwarded += 1


async def run_proxy(
    listen: Address | str,
    target: Address | str,
    *,
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    rebind_every: float | None = None,
    **settings: Any,
) -> None:
    """Run an impairment proxy until cancelled (`testbed impair`). `settings` are the fields of
    `Impairment` plus `seed`, for every module; `flows` maps a module address ("host:port") to
    its own `Impairment` fields; `rebind_every` (seconds) rebinds every flow periodically, like a
    carrier NAT with a short mapping timeout. Example:
    `run_proxy("0.0.0.0:15683", "127.0.0.1:5683", loss=0.2, flows={"10.0.0.7:5683": {"loss": 1}})`."""
    seed = int(settings.pop("seed", 0))
    proxy = ImpairmentProxy(target, listen=listen, impairment=Impairment(**settings), seed=seed)
    for client, fields in (flows or {}).items():
        proxy.set_flow(client, Impairment(**fields))
    await proxy.start()
    log.info("impairment proxy %s -> %s: %s", proxy.address, proxy.target, proxy.default)
    try:
        while True:
            await asyncio.sleep(rebind_every if rebind_every else 3600.0)
            if rebind_every:
                proxy.rebind()
    finally:
        await proxy.stop()
