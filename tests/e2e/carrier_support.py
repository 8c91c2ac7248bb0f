"""Shared parts of the carrier end-to-end tests: a server with every carrier listener on its own
127.0.1.x address with ephemeral ports, and emulated modules whose host map sends the carrier
host names (and the `a.b.c.d:5683` / `:5684` a bootstrap writes) to those ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from emulator.module.network import HostMap
from emulator.runner import EmulatedModule
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device
from server.settings import ListenerSettings, carrier_listeners
from tests.conftest import ServerFactory

IMEI = "869975030000461"
IMSI = "460041064826326"


def carrier_test_listeners() -> list[ListenerSettings]:
    """The default carrier listeners on ephemeral ports, plus the custom one on 127.0.0.1."""
    return [
        *carrier_listeners(port=0, dtls_port=0),
        ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0),
    ]


async def start_carrier_server(server_factory: ServerFactory) -> Lwm2mServer:
    server: Lwm2mServer = await server_factory(listeners=carrier_test_listeners())
    return server


def host_map(server: Lwm2mServer) -> HostMap:
    """Every listener's nominal `address:5683` / `address:5684` -> its ephemeral ports."""
    names: dict[str, str | tuple[str, int]] = {}
    for name, listener in server.listeners.items():
        host, port = listener.address
        names[f"{host}:5683"] = (host, port)
        dtls = server.dtls.get(name)
        if dtls is not None:
            names[f"{host}:5684"] = dtls.address
    return HostMap(names)


@asynccontextmanager
async def module_for(
    server: Lwm2mServer, model: str = "MN316", *, imei: str = IMEI, imsi: str = IMSI
) -> AsyncIterator[EmulatedModule]:
    module = EmulatedModule(model, imei=imei, imsi=imsi, request_timeout=3.0)
    module.hosts = host_map(server)
    await module.start()
    try:
        yield module
    finally:
        await module.stop()


async def at(module: EmulatedModule, line: str, final: str = r"\r\nOK\r\n") -> str:
    """Send one AT line and wait for its final result; returns the output up to it."""
    module.feed(line.encode() + b"\r")
    return (await module.expect(r"(?s).*?" + final)).group(0)


async def provision(
    server: Lwm2mServer, carrier: str, *, imei: str = IMEI, imsi: str | None = IMSI, **values: Any
) -> Device:
    """A product of `carrier` and one device in it (what the API's device creation does)."""
    product = await server.provisioning.create_product(f"{carrier} product", carrier)
    return await server.provisioning.create_device(product_id=product.id, imei=imei, imsi=imsi, **values)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0) -> None:
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
