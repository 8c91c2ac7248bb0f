"""AT+MIPLNOTIFY and AT+MIPLUPDATE end to end (manual §3.9, §3.18/§3.19, §3.7): the emulated
module's real LwM2M client against a real `Lwm2mServer` on loopback UDP with SQLite. The server
observes, the MCU answers +MIPLOBSERVE with AT+MIPLOBSERVERSP, notifies with an ackid, the
server stores the datapoint and the module prints `+MIPLEVENT: 0,26,<ackid>`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from emulator.runner import EmulatedModule
from lwm2m.node import SingleResource
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory

IMEI = "869975030000461"


@pytest.fixture
async def emulated() -> AsyncIterator[EmulatedModule]:
    module = EmulatedModule("ML307R", imei=IMEI, request_timeout=3.0, echo=False)
    await module.start()
    yield module
    await module.stop()


async def command(module: EmulatedModule, line: str) -> str:
    module.feed(line.encode() + b"\r")
    return (await module.expect(r"\r\n(OK|ERROR|\+CIS ERROR: \d+)\r\n", timeout=3.0)).group(1)


async def login(module: EmulatedModule, server: Lwm2mServer, lifetime: int = 300) -> str:
    _host, port = server.listeners["default"].address
    assert await command(module, f'AT+MIPLCREATEEX="127.0.0.1:{port}",2') == "OK"
    assert await command(module, 'AT+MIPLADDOBJ=0,3303,1,"1",1,0') == "OK"
    assert await command(module, f"AT+MIPLOPEN=0,{lifetime},30") == "OK"
    await module.expect(r"\+MIPLEVENT: 0,6\r\n", timeout=5.0)
    (registration,) = server.registered()
    return registration.endpoint


async def observe(module: EmulatedModule, server: Lwm2mServer, endpoint: str, path: str = "/3303/0") -> int:
    """The server observes `path`; the MCU answers the URC; returns the observe's msgid.

    The module answers an Observe at once with the values the MCU last gave (§3.18 note). Before
    any value, a resource observe is answered 2.05 with an empty payload, which the server
    cannot decode yet (reported to the lead), so the tests observe the instance as OneNET does
    (`+MIPLOBSERVE: 0,<mid>,1,3200,0,-1`, manual §5.1) or give a value first (a read)."""
    observing = asyncio.create_task(server.observe(endpoint, path))
    ids = ",".join(path.strip("/").split("/")[1:] + ([] if path.count("/") == 3 else ["-1"]))
    urc = await module.expect(rf"\+MIPLOBSERVE: 0,(\d+),1,3303,{ids}\r\n", timeout=5.0)
    mid = int(urc.group(1))
    assert await command(module, f"AT+MIPLOBSERVERSP=0,{mid},1") == "OK"
    observation = await asyncio.wait_for(observing, 5.0)
    assert observation.observed
    return mid


async def wait_for(predicate_source, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while True:
            found = await predicate_source()
            if found:
                return found
            await asyncio.sleep(0.05)


async def test_confirmable_notify_is_stored_by_the_server_and_acknowledged_with_event_26(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    endpoint = await login(emulated, server)
    mid = await observe(emulated, server, endpoint)

    assert await command(emulated, f"AT+MIPLNOTIFY=0,{mid},3303,0,5700,4,4,21.5,0,0,147") == "OK"
    await emulated.expect(r"\+MIPLEVENT: 0,26,147\r\n", timeout=5.0)

    points = await wait_for(lambda: server.datapoints(endpoint, "/3303/0/5700"))
    values = [p.value if hasattr(p, "value") else p["value"] for p in points]
    assert 21.5 in values or "21.5" in values


async def test_notify_with_mid_zero_finds_the_observation_and_later_values_arrive_in_order(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    endpoint = await login(emulated, server)
    await observe(emulated, server, endpoint)
    for ackid, value in ((1, "22.0"), (2, "22.5"), (3, "23.0")):
        assert (
            await command(emulated, f"AT+MIPLNOTIFY=0,0,3303,0,5700,4,{len(value)},{value},0,0,{ackid}")
            == "OK"
        )
        await emulated.expect(rf"\+MIPLEVENT: 0,26,{ackid}\r\n", timeout=5.0)

    async def three() -> list[object]:
        found = await server.datapoints(endpoint, "/3303/0/5700")
        return found if len(found) >= 3 else []

    points = await wait_for(three)
    values = [float(p.value if hasattr(p, "value") else p["value"]) for p in points]
    assert sorted(values[-3:]) == [22.0, 22.5, 23.0]


async def test_notify_without_an_observation_is_cis_error_653(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    await login(emulated, server)
    assert await command(emulated, "AT+MIPLNOTIFY=0,0,3303,0,5700,4,4,21.5,0,0,9") == "+CIS ERROR: 653"


async def test_update_refreshes_the_registration_lifetime_and_time_on_the_server(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    endpoint = await login(emulated, server, lifetime=300)
    before = server.registration(endpoint)
    assert before is not None and before.lifetime == 300
    first_update = before.updated_at
    await asyncio.sleep(0.05)

    assert await command(emulated, "AT+MIPLUPDATE=0,7200,0") == "OK"
    await emulated.expect(r"\+MIPLEVENT: 0,11\r\n", timeout=5.0)
    after = server.registration(endpoint)
    assert after is not None
    assert after.lifetime == 7200
    assert after.updated_at > first_update
    assert after.registration_id == before.registration_id


async def test_update_with_lifetime_below_10_asks_for_86400(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    endpoint = await login(emulated, server)
    assert await command(emulated, "AT+MIPLUPDATE=0,5,1") == "OK"
    await emulated.expect(r"\+MIPLEVENT: 0,11\r\n", timeout=5.0)
    registration = server.registration(endpoint)
    assert registration is not None and registration.lifetime == 86400


async def test_resource_observe_after_a_read_notifies_the_resource_and_acks_with_event_26(
    emulated: EmulatedModule, server_factory: ServerFactory
) -> None:
    server: Lwm2mServer = await server_factory()
    endpoint = await login(emulated, server)
    read = asyncio.create_task(server.read(endpoint, "/3303/0/5700"))
    urc = await emulated.expect(r"\+MIPLREAD: 0,(\d+),3303,0,5700\r\n", timeout=5.0)
    assert await command(emulated, f"AT+MIPLREADRSP=0,{urc.group(1)},1,3303,0,5700,4,4,19.5,0,0") == "OK"
    node = await asyncio.wait_for(read, 5.0)
    assert isinstance(node, SingleResource) and node.value == 19.5

    mid = await observe(emulated, server, endpoint, "/3303/0/5700")
    assert await command(emulated, f"AT+MIPLNOTIFY=0,{mid},3303,0,5700,4,4,20.5,0,0,300") == "OK"
    await emulated.expect(r"\+MIPLEVENT: 0,26,300\r\n", timeout=5.0)

    async def notified() -> list[object]:
        found = await server.datapoints(endpoint, "/3303/0/5700")
        return [p for p in found if float(p.value if hasattr(p, "value") else p["value"]) == 20.5]

    assert await wait_for(notified)


async def test_module_fleet_registers_answers_observes_and_notifies_periodically(
    server_factory: ServerFactory,
) -> None:
    from emulator.module_fleet import ModuleFleet, ModuleFleetSettings

    server: Lwm2mServer = await server_factory()
    port = server.listeners["default"].address[1]
    fleet = ModuleFleet(ModuleFleetSettings(count=3, server=f"127.0.0.1:{port}", notify_interval=0.2))
    seen: list[tuple[int, int]] = []
    try:
        stats = await asyncio.wait_for(fleet.start(lambda done, total: seen.append((done, total))), 10.0)
        assert stats.registered == 3 and stats.failed == 0
        assert seen[-1] == (3, 3)
        for index in range(3):
            await server.observe(fleet.endpoint(index), "/3303/0")

        async def all_notified() -> bool:
            for index in range(3):
                if len(await server.datapoints(fleet.endpoint(index), "/3303/0/5700")) < 2:
                    return False
            return fleet.stats.notifies_acked >= 6

        assert await wait_for(all_notified, 5.0)
        node = await server.read(fleet.endpoint(0), "/3303/0/5700")
        assert isinstance(node, SingleResource) and -10.0 <= float(node.value) <= 40.0
        assert fleet.stats.notifies_refused == 0
    finally:
        await fleet.stop()
