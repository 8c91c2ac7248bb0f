"""The loopback address plan is one table; the server's listeners and the emulator's routes agree."""

from __future__ import annotations

from emulator.carrier_ports import port_routes
from emulator.module.network import HostMap
from server.settings import carrier_listeners, shared_carrier_listeners
from transport.address_plan import CARRIER_PLAN, HOST_ADDRESSES, PUBLIC_ADDRESSES


def test_every_carrier_host_name_and_alias_resolves_to_its_listener_address() -> None:
    listeners = {listener.name: listener.host for listener in carrier_listeners()}
    hosts = HostMap()
    for host in CARRIER_PLAN:
        for name in (host.host_name, *host.aliases):
            assert hosts.resolve(name) == listeners[host.listener] == host.address


def test_a_bootstrap_writes_a_public_address_that_routes_back_to_the_same_listener() -> None:
    by_listener = {host.listener: host.address for host in CARRIER_PLAN}
    for listener, public in PUBLIC_ADDRESSES.items():
        assert HOST_ADDRESSES[public] == by_listener[listener]


def test_loopback_addresses_and_shared_ports_are_unique_and_match_the_compose_routes() -> None:
    assert len({host.address for host in CARRIER_PLAN}) == len(CARRIER_PLAN)
    ports = [port for host in CARRIER_PLAN for port in host.shared_ports]
    assert len(set(ports)) == len(ports) and 5683 not in ports and 5684 not in ports
    shared = {
        listener.name: (listener.port, listener.dtls_port) for listener in shared_carrier_listeners("0.0.0.0")
    }
    routes = port_routes()
    for host in CARRIER_PLAN:
        assert shared[host.listener] == host.shared_ports
        assert routes[f"{host.host_name}:5683"] == (host.host_name, host.shared_ports[0])
        assert routes[f"{host.address}:5684"] == (host.host_name, host.shared_ports[1])
