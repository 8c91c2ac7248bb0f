"""The loopback address plan: one table, read by the server's listeners and the emulator's host map.

A real module resolves a carrier's host name (`nbiotacc.heclouds.com`) or dials its public address
(`183.230.40.40`, module manual chapter 5); the testbed answers each carrier host on a loopback
address of its own, so one machine holds every carrier at once. In a container the carrier host
names all resolve to the container's one address, so each carrier listener there has its own pair
of ports instead (`CarrierHost.shared_ports`, the docker compose layout).

Every view the rest of the code needs is derived from `CARRIER_PLAN` below:
- `LISTENER_ADDRESSES`: listener name -> (carrier, role, loopback address) (server listeners);
- `LISTENER_HOST_NAMES`: listener name -> the carrier host name the manual writes;
- `LISTENER_SHARED_PORTS`: listener name -> (CoAP port, DTLS port) on a shared address;
- `PUBLIC_ADDRESSES`: listener name -> the public address a bootstrap server writes;
- `HOST_ADDRESSES`: every carrier host name or public IP -> loopback address (emulator host map);
- `SHARED_PORT_ROUTES`: loopback address -> (host name, CoAP port, DTLS port) (compose routes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

COAP_PORT: Final = 5683
DTLS_PORT: Final = 5684
DEFAULT_ADDRESS: Final = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class CarrierHost:
    """One carrier listener of the testbed and every name a module may use to reach it."""

    listener: str  # the listener's name in the server's settings
    carrier: str
    role: str  # "access" or "bootstrap"
    address: str  # the loopback address the testbed listens on
    host_name: str  # the host name of the module manual / platforms
    aliases: tuple[str, ...]  # the carrier's public IP literals, also routed here
    shared_ports: tuple[int, int]  # (CoAP, DTLS) when all carriers share one address
    public_address: str | None = None  # what a bootstrap server writes for this carrier


CARRIER_PLAN: Final[tuple[CarrierHost, ...]] = (
    CarrierHost(
        "onenet-bootstrap", "onenet", "bootstrap", "127.0.1.1", "nbiotbt.heclouds.com",
        ("183.230.40.39",), (5685, 5686),
    ),
    CarrierHost(
        "onenet", "onenet", "access", "127.0.1.2", "nbiotacc.heclouds.com",
        ("183.230.40.40", "183.230.40.149"), (5687, 5688), public_address="183.230.40.40",
    ),
    CarrierHost(
        "ctwing", "ctwing", "access", "127.0.1.3", "lwm2m.ctwing.cn",
        ("221.229.214.202",), (5689, 5690), public_address="221.229.214.202",
    ),
    CarrierHost("yanfei", "yanfei", "access", "127.0.1.4", "dmp-coap.cuiot.cn", (), (5691, 5692)),
    CarrierHost(
        "huawei", "huawei", "access", "127.0.1.5", "iot-coaps.cn-north-4.myhuaweicloud.com", (), (5693, 5694)
    ),
)  # fmt: skip

LISTENER_ADDRESSES: Final[dict[str, tuple[str, str, str]]] = {
    host.listener: (host.carrier, host.role, host.address) for host in CARRIER_PLAN
}
LISTENER_HOST_NAMES: Final[dict[str, str]] = {host.listener: host.host_name for host in CARRIER_PLAN}
LISTENER_SHARED_PORTS: Final[dict[str, tuple[int, int]]] = {
    host.listener: host.shared_ports for host in CARRIER_PLAN
}
PUBLIC_ADDRESSES: Final[dict[str, str]] = {
    host.listener: host.public_address for host in CARRIER_PLAN if host.public_address is not None
}
HOST_ADDRESSES: Final[dict[str, str]] = {
    name: host.address for host in CARRIER_PLAN for name in (host.host_name, *host.aliases)
}
SHARED_PORT_ROUTES: Final[dict[str, tuple[str, int, int]]] = {
    host.address: (host.host_name, *host.shared_ports) for host in CARRIER_PLAN
}
ACCESS_HOST_NAMES: Final[dict[str, str]] = {
    host.carrier: host.host_name for host in CARRIER_PLAN if host.role == "access"
}
