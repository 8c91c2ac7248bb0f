"""Settings of the private cloud: one pydantic-settings class, environment prefix `TESTBED_`."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from transport.address_plan import (
    LISTENER_ADDRESSES,
    LISTENER_HOST_NAMES,
    LISTENER_SHARED_PORTS,
    PUBLIC_ADDRESSES,
)


class ListenerSettings(BaseModel):
    """One CoAP listener (a carrier host): plain UDP, optionally a DTLS port on the same address."""

    name: str = "default"
    host: str = "127.0.0.1"
    port: int = 5683
    dtls_port: int | None = 5684
    carrier: str = "custom"
    # "access" (an LwM2M server) or "bootstrap" (a bootstrap server, OneNET's nbiotbt).
    role: str = "access"
    # The address a bootstrap server writes into the Security object for this listener (clients
    # only accept `coap://a.b.c.d:5683`); None = `host`. Set it when `host` is 0.0.0.0.
    public_host: str | None = None


# The carrier listeners, their names, ports and public addresses: views of the one address plan
# (`transport.address_plan`), which the emulator's host map reads too.
CARRIER_ADDRESSES: dict[str, tuple[str, str, str]] = dict(LISTENER_ADDRESSES)
CARRIER_HOST_NAMES: dict[str, str] = dict(LISTENER_HOST_NAMES)
CARRIER_PORTS: dict[str, tuple[int, int]] = dict(LISTENER_SHARED_PORTS)
CARRIER_PUBLIC_ADDRESSES: dict[str, str] = dict(PUBLIC_ADDRESSES)


def shared_carrier_listeners(host: str) -> list[ListenerSettings]:
    """The carrier listeners on one address (`host`, e.g. 0.0.0.0 in a container), each carrier
    on its own ports (`CARRIER_PORTS`)."""
    return [
        ListenerSettings(
            name=name,
            host=host,
            port=CARRIER_PORTS[name][0],
            dtls_port=CARRIER_PORTS[name][1],
            carrier=carrier,
            role=role,
            public_host=CARRIER_PUBLIC_ADDRESSES.get(name),
        )
        for name, (carrier, role, _address) in CARRIER_ADDRESSES.items()
    ]


def carrier_listeners(
    port: int = 5683, dtls_port: int | None = 5684, addresses: dict[str, str] | None = None
) -> list[ListenerSettings]:
    """One listener per carrier host; `addresses` overrides the address of a listener by name.
    Tests pass port 0 (ephemeral)."""
    chosen = addresses or {}
    return [
        ListenerSettings(
            name=name,
            host=chosen.get(name, address),
            port=port,
            dtls_port=dtls_port,
            carrier=carrier,
            role=role,
        )
        for name, (carrier, role, address) in CARRIER_ADDRESSES.items()
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESTBED_", env_nested_delimiter="__")

    database_url: str = "sqlite+aiosqlite:///./data/testbed.db"
    listeners: list[ListenerSettings] = Field(default_factory=lambda: [ListenerSettings()])
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    models_dir: str | None = None
    # Seconds a registration outlives its lifetime before it expires (Core §6.2.2 leaves it open).
    lifetime_grace: float = 15.0
    # How often expired registrations are swept.
    expiry_sweep_interval: float = 1.0
    # Default timeout of a downlink request (read, write, ...), seconds.
    request_timeout: float = 25.0
    # Largest accepted request body on the CoAP side and the HTTP side, bytes.
    max_payload: int = 64 * 1024
    api_key: str | None = None
    # Failed key attempts (a key given but no key of ours) one client address may make within
    # `auth_failure_window` seconds; the next ones are answered 429 until the window passes.
    auth_failure_limit: int = 20
    auth_failure_window: float = 60.0
    # The same per key prefix (`auth_failure_limit`) and for all addresses together: rotating
    # source addresses do not escape the limit.
    auth_failure_global_limit: int = 40
    # What a Register / Update may claim (beyond: 4.00 with the reason).
    registration_max_endpoint_length: int = 128
    registration_max_link_payload: int = 64 * 1024
    registration_max_object_links: int = 1000
    # Push receivers of products may be on loopback / private addresses (a developer's local
    # receiver); off in docker compose. Never the cloud's own ports nor link-local addresses.
    push_allow_private: bool = True
    # Firmware packages (object 5 updates): where their files live, and the largest accepted.
    firmware_dir: str = "./data/firmware"
    firmware_max_size: int = 8 * 1024 * 1024
    # Add the default carrier listeners (`carrier_listeners()`) to `listeners`.
    carrier_map: bool = False
    # With `carrier_map`: bind every carrier listener on this one address, each carrier on its own
    # ports (`CARRIER_PORTS`), instead of one loopback address per carrier (docker compose).
    carrier_host: str | None = None

    def all_listeners(self) -> list[ListenerSettings]:
        """`listeners`, plus the carrier listeners when `carrier_map` is set (names not taken)."""
        result = list(self.listeners)
        if self.carrier_map:
            taken = {spec.name for spec in result}
            carriers = (
                shared_carrier_listeners(self.carrier_host) if self.carrier_host else carrier_listeners()
            )
            result.extend(spec for spec in carriers if spec.name not in taken)
        return result
