"""Carrier rules beyond the chapter 5 flows (platforms.md "OneNET"; manual §4.1 AT+MIPLCFG
"binding", §4.6 AT+MIPLCREATEEX "monitor"): OneNET's monitor object 10290/0 read and stored as
cell information; lifetime limits (OneNET 15 … 86400 s, refused with 4.00 otherwise) and
binding modes (U, UQ with queue mode); OneNET's Reset for a notify of what it no longer
observes; the strict custom listener that admits only provisioned devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from server.carriers import STRICT_CUSTOM
from server.carriers.base import ATTR_CELL, AUTH_CODE_OPTION
from server.lwm2m_server import Lwm2mServer
from server.services.errors import RequestFailed
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.e2e.carrier_support import (
    IMEI,
    IMSI,
    at,
    carrier_test_listeners,
    eventually,
    module_for,
    provision,
    start_carrier_server,
)

MODEL = builtin_registry()
ENDPOINT = f"{IMEI};{IMSI}"
STRICT_HOST = "127.0.1.10"


@asynccontextmanager
async def standard_client(
    server: Lwm2mServer, *, lifetime: int = 300, binding: str = "U", listener: str = "onenet"
) -> AsyncIterator[tuple[Lwm2mClient, ObjectTreeHandler]]:
    """A standards LwM2M client at `listener` with a temperature sensor /3303/0."""
    tree = ObjectTreeHandler(MODEL)
    tree.add_instance(3303, 0, {5700: 21.5})
    host, port = server.listeners[listener].address
    settings = ClientSettings(
        endpoint=ENDPOINT,
        server_host=host,
        server_port=port,
        lifetime=lifetime,
        binding=binding,
        object_links=tree.object_links,
        extra_options=((AUTH_CODE_OPTION, b"cmiot"),),
        request_timeout=3.0,
        confirmable_notifications=True,  # a CON notification shows the server's ACK or Reset
    )
    async with Lwm2mClient(settings, tree, MODEL) as client:
        yield client, tree


# --- monitor object 10290/0 -------------------------------------------------------------------------


async def test_onenet_reads_the_monitor_object_and_stores_the_cell_information(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "onenet", obsv=True)
    async with module_for(server) as module:
        # <flag> 0: no bootstrap, bit 1 clear = monitor on (manual §4.6).
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, 'AT+MIPLDISCOVERRSP=0,3200,1,4,"5750"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")

        def cell() -> object:
            stored = server.provisioning.device(device.id)
            return stored.attributes.get(ATTR_CELL) if stored is not None else None

        await eventually(lambda: cell() is not None)
        assert cell() == {"cell_id": 0x0F1B2C3, "rsrp": -85, "snr": 12, "pci": 120, "earfcn": 2506}
        values = await server.latest_values(ENDPOINT)
        assert set(values) >= {f"/10290/0/{r}" for r in range(5)}
        # The module answered the read itself: the MCU saw no +MIPLREAD.
        assert "+MIPLREAD" not in module.transcript.decode()


async def test_a_module_without_the_monitor_leaves_no_cell_information(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "onenet", obsv=True)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",2')  # bit 1 set: no monitor
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, 'AT+MIPLDISCOVERRSP=0,3200,1,4,"5750"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        await eventually(lambda: ENDPOINT in server.carriers.learned)
        assert server.carriers.learned[ENDPOINT] == {}
        # A read of the same object shows what the platform got: 4.04.
        with pytest.raises(RequestFailed, match=r"4\.04"):
            await server.read(ENDPOINT, Path(10290, 0))
    stored = server.provisioning.device(device.id)
    assert stored is not None and ATTR_CELL not in stored.attributes
    assert not any(p.startswith("/10290") for p in await server.latest_values(ENDPOINT))


async def test_devices_without_obsv_get_no_monitor_read(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "onenet", obsv=False)
    reads: list[object] = []
    server.bus.add_listener(lambda e: reads.append(e.data) if e.kind == "request.read" else None)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        await eventually(lambda: ENDPOINT in server.carriers.learned)
    assert server.carriers.learned[ENDPOINT] == {} and reads == []
    stored = server.provisioning.device(device.id)
    assert stored is not None and ATTR_CELL not in stored.attributes


# --- lifetime and binding ---------------------------------------------------------------------------


async def test_onenet_refuses_a_lifetime_above_24_hours_with_event_7(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, "AT+MIPLOPEN=0,86401,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
    assert server.carriers.refusals[ENDPOINT].code == CoapCode.BAD_REQUEST
    assert "lifetime" in server.carriers.refusals[ENDPOINT].reason


@pytest.mark.parametrize(("lifetime", "accepted"), [(14, False), (15, True), (86400, True), (86401, False)])
async def test_onenet_lifetime_limits_are_15_to_86400_seconds(
    server_factory: ServerFactory, lifetime: int, accepted: bool
) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code="cmiot", obsv=False)
    async with standard_client(server, lifetime=lifetime) as (client, _):
        if accepted:
            await client.register()
            registration = server.registration(ENDPOINT)
            assert registration is not None and registration.lifetime == lifetime
        else:
            with pytest.raises(ClientError) as failed:
                await client.register()
            assert failed.value.code == CoapCode.BAD_REQUEST
            assert server.registered() == []


async def test_onenet_refuses_an_update_to_an_out_of_range_lifetime_and_keeps_the_old_one(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code="cmiot", obsv=False)
    async with standard_client(server, lifetime=300) as (client, _):
        await client.register()
        with pytest.raises(ClientError) as failed:
            await client.update(lifetime=100_000)
        assert failed.value.code == CoapCode.BAD_REQUEST
        await client.update(lifetime=600)
        registration = server.registration(ENDPOINT)
        assert registration is not None and registration.lifetime == 600


async def test_ctwing_accepts_a_lifetime_that_onenet_refuses(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "ctwing")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="221.229.214.202:5683",0')
        await at(module, 'AT+MIPLCFG="platform",0,1')
        await at(module, "AT+MIPLOPEN=0,86401,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
    registration = server.registration(IMEI)
    assert registration is not None and registration.lifetime == 86401


async def test_binding_uq_from_miplcfg_registers_in_queue_mode(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", obsv=False)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, 'AT+MIPLCFG="binding",0,2')  # manual §4.1: 2 = UQ
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        registration = server.registration(ENDPOINT)
        assert registration is not None
        assert registration.binding == "UQ" and registration.queue_mode


async def test_onenet_refuses_a_binding_other_than_u_or_uq(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code="cmiot", obsv=False)
    async with standard_client(server, binding="S") as (client, _):
        with pytest.raises(ClientError) as failed:
            await client.register()
    assert failed.value.code == CoapCode.BAD_REQUEST
    assert server.registered() == []
    assert "binding" in server.carriers.refusals[ENDPOINT].reason


# --- notifies of what the platform does not observe -------------------------------------------------


async def test_onenet_resets_a_notify_on_a_token_cleared_by_re_registration(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code="cmiot", obsv=False)
    async with standard_client(server) as (client, tree):
        await client.register()
        await server.observe(ENDPOINT, "/3303/0/5700")
        assert len(client.observations) == 1
        (observation_id,) = client.observations
        tree.set_value("/3303/0/5700", 22.5)

        async def stored(value: float) -> bool:
            return (await server.latest_values(ENDPOINT)).get("/3303/0/5700", {}).get("value") == value

        await eventually(lambda: stored(22.5))
        # Re-registration clears OneNET's subscriptions (platforms.md).
        await client.register()
        assert server.observations(ENDPOINT) == []
        (delivered,) = await client.notify(observation_id, None)
        assert await delivered is False  # answered with Reset
        assert await stored(22.5)
        assert [d.value for d in await server.datapoints(ENDPOINT, "/3303/0/5700")] == [21.5, 22.5]


# --- the strict custom listener ---------------------------------------------------------------------


async def start_with_strict_listener(server_factory: ServerFactory) -> Lwm2mServer:
    strict = ListenerSettings(name="strict", host=STRICT_HOST, port=0, dtls_port=0, carrier=STRICT_CUSTOM)
    server: Lwm2mServer = await server_factory(listeners=[*carrier_test_listeners(), strict])
    return server


async def open_custom(module: object, host: str, epname: str) -> None:
    await at(module, f'AT+MIPLCREATEEX="{host}:5683",0')  # type: ignore[arg-type]
    await at(module, f'AT+MIPLCFG="platform",0,10,"{epname}"')  # type: ignore[arg-type]
    await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')  # type: ignore[arg-type]
    await at(module, "AT+MIPLOPEN=0,3000,30")  # type: ignore[arg-type]


async def test_strict_custom_listener_refuses_an_unprovisioned_endpoint_with_event_7(
    server_factory: ServerFactory,
) -> None:
    server = await start_with_strict_listener(server_factory)
    async with module_for(server) as module:
        await open_custom(module, STRICT_HOST, "sensor-1")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
    assert server.carriers.refusals["sensor-1"].code == CoapCode.FORBIDDEN


async def test_strict_custom_listener_admits_a_provisioned_device(server_factory: ServerFactory) -> None:
    server = await start_with_strict_listener(server_factory)
    device = await provision(server, "custom", endpoint="sensor-1")
    async with module_for(server) as module:
        await open_custom(module, STRICT_HOST, "sensor-1")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
    registration = server.registration("sensor-1")
    assert registration is not None and registration.listener == "strict"
    assert server.provisioning.device(device.id).endpoint == "sensor-1"  # type: ignore[union-attr]


async def test_the_default_custom_listener_admits_any_endpoint(server_factory: ServerFactory) -> None:
    server = await start_with_strict_listener(server_factory)
    async with module_for(server) as module:
        await open_custom(module, "127.0.0.1", "sensor-1")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
    registration = server.registration("sensor-1")
    assert registration is not None and registration.listener == "default"
