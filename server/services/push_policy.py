"""Where a push receiver may be (issue 13): a product key may not point the cloud's HTTP client at
the cloud itself or at the host's neighbours.

Rules, checked when a receiver is added (before its URL check, which is a request too) and
before every delivery (a name may resolve elsewhere later):

* link-local addresses (169.254.0.0/16 — cloud metadata services at 169.254.169.254 — and
  fe80::/10), unspecified, multicast and reserved addresses: never;
* loopback and private addresses (127.0.0.0/8, 10/8, 172.16/12, 192.168/16, 100.64/10, ::1,
  fc00::/7): only when `Settings.push_allow_private` (TESTBED_PUSH_ALLOW_PRIVATE) is on — on for
  `testbed up` on a developer's machine, where the receiver is local; off in docker compose;
* the cloud's own ports (its HTTP port, its CoAP ports, its database's port) on a loopback,
  private or own address: never, whatever the setting.

Refusals raise `BadArgument` with a short reason; the admin key is not restricted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from server.services.errors import BadArgument
from server.services.ports import ServerApi

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_SHARED = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True, slots=True)
class PushPolicy:
    allow_private: bool = True
    own_ports: frozenset[int] = frozenset()
    own_hosts: frozenset[str] = frozenset()

    def check_address(self, address: Address, port: int) -> str | None:
        """Why `address`:`port` may not receive pushes, or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_link_local or address.is_unspecified or address.is_multicast or address.is_reserved:
            return "link-local, multicast or reserved addresses are not allowed"
        local = (
            address.is_loopback or address.is_private or address in _SHARED or str(address) in self.own_hosts
        )
        if local and port in self.own_ports:
            return "the cloud's own ports are not allowed"
        if local and not self.allow_private:
            return "loopback and private addresses are not allowed (TESTBED_PUSH_ALLOW_PRIVATE is off)"
        return None

    async def check_url(self, url: str) -> None:
        """Raise BadArgument when `url` may not receive pushes of a product key."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise BadArgument("push URL is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise BadArgument("push URL must be http:// or https:// with a host")
        for address in await _resolve(host, port):
            reason = self.check_address(address, port)
            if reason is not None:
                raise BadArgument(f"push URL refused: {reason}")


def policy_for(server: ServerApi) -> PushPolicy:
    """The push policy of a started `Lwm2mServer`: its settings' switch, its HTTP, CoAP, DTLS and
    database ports, and the addresses it listens on."""
    settings = server.settings
    ports = {settings.http_port}
    hosts = {settings.http_host}
    for spec in settings.all_listeners():
        ports.update(p for p in (spec.port, spec.dtls_port) if p)
        hosts.add(spec.host)
    for listener in getattr(server, "listeners", {}).values():
        ports.add(listener.port)
    for dtls in getattr(server, "dtls", {}).values():
        ports.add(dtls.address[1])
    try:
        url = make_url(settings.database_url)
        if url.get_backend_name() == "postgresql":
            ports.add(url.port or 5432)
        elif url.port:
            ports.add(url.port)
    except Exception:
        pass
    return PushPolicy(settings.push_allow_private, frozenset(p for p in ports if p), frozenset(hosts))


async def _resolve(host: str, port: int) -> Iterable[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise BadArgument(f"push URL host {host!r} does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
