"""CTWing (manual §5.3, §5.4), Yanfei (§5.5) and Huawei Cloud IoTDA (§5.6, §5.7) end to end: an
emulated MN316 driven by AT lines registers by IMEI at the carrier's listener (127.0.1.3 / .4 /
.5), the platform observes what its flow shows, uplink notifies are stored (and /19/0/0 becomes
an `appdata.uplink` event), downlink writes to /19/1/0 are acknowledged by the module itself;
DTLS with string and hex PSKs (identity = IMEI). A device provisioned for OneNET cannot register
at CTWing."""

from __future__ import annotations

import pytest

from server.carriers.base import ATTR_PSK, ATTR_PSK_ENCODING
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.e2e.carrier_support import IMEI, at, eventually, module_for, provision, start_carrier_server

APPDATA_OPEN = [
    'AT+MIPLADDOBJ=0,19,2,"11",0,0',
    'AT+MIPLDISCOVERRSP=0,19,1,3,"1;0"',
    "AT+MIPLOPEN=0,3000,30",
]


async def appdata_subscribed(server: Lwm2mServer, module: object, listener: str) -> None:
    """Registered by IMEI at `listener`; the platform observed /19/0/0 (the module prints it)."""
    from emulator.runner import EmulatedModule

    assert isinstance(module, EmulatedModule)
    await module.expect(r"\+MIPLEVENT: 0,6\r\n")
    await module.expect(r"\+MIPLOBSERVE: 0,\d+,1,19,0,0\r\n")
    registration = server.registration(IMEI)
    assert registration is not None and registration.listener == listener
    assert "</19/0>" in registration.object_links


async def test_ctwing_manual_5_3_plain(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "ctwing")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="221.229.214.202:5683",0')
        await at(module, 'AT+MIPLCFG="platform",0,1')
        for line in APPDATA_OPEN:
            await at(module, line)
        await appdata_subscribed(server, module, "ctwing")
    assert server.provisioning.device(device.id).endpoint == IMEI  # type: ignore[union-attr]


@pytest.mark.parametrize(("key", "encoding", "flag"), [("abcdefgh", "string", 0), ("abcd1234", "hex", 1)])
async def test_ctwing_manual_5_4_dtls_with_string_and_hex_psk(
    server_factory: ServerFactory, key: str, encoding: str, flag: int
) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "ctwing", attributes={ATTR_PSK: key, ATTR_PSK_ENCODING: encoding})
    async with module_for(server) as module:
        await at(module, f'AT+MIPLCREATEEX="221.229.214.202:5684",0,,{key},,{flag}')
        await at(module, 'AT+MIPLCFG="platform",0,1')
        for line in APPDATA_OPEN:
            await at(module, line)
        await appdata_subscribed(server, module, "ctwing")
    registration = server.registration(IMEI)
    assert registration is not None and registration.secure_identity == IMEI


async def test_ctwing_dtls_with_the_wrong_psk_is_refused_with_event_7(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "ctwing", attributes={ATTR_PSK: "abcdefgh"})
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="221.229.214.202:5684",0,,hgfedcba,,0')
        await at(module, 'AT+MIPLCFG="platform",0,1')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []


async def test_onenet_device_cannot_register_at_the_ctwing_listener(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="221.229.214.202:5683",0')
        await at(module, 'AT+MIPLCFG="platform",0,1')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
    assert server.carriers.refusals[IMEI].reason == f"no ctwing device with IMEI {IMEI}"


async def test_ctwing_accepts_the_urn_imei_pattern(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "ctwing")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="lwm2m.ctwing.cn:5683",0')
        await at(module, 'AT+MIPLCFG="platform",0,1,3')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
    assert server.provisioning.device(device.id).endpoint == f"urn:imei:{IMEI}"  # type: ignore[union-attr]


async def test_yanfei_manual_5_5_observe_notify_read(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "yanfei")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="dmp-coap.cuiot.cn:5683",0')
        await at(module, 'AT+MIPLCFG="platform",0,2')
        await at(module, 'AT+MIPLADDOBJ=0,3300,1,"1",0,1')
        await at(module, 'AT+MIPLDISCOVERRSP=0,3300,1,4,"5700"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        observe = await module.expect(r"\+MIPLOBSERVE: 0,(\d+),1,3300,0,-1\r\n")
        registration = server.registration(IMEI)
        assert registration is not None and registration.listener == "yanfei"
        await eventually(lambda: len(server.observations(IMEI)) == 1)
        await at(module, f"AT+MIPLNOTIFY=0,{observe.group(1)},3300,0,5700,4,4,50.8,0,0,3")
        await module.expect(r"\+MIPLEVENT: 0,26,3\r\n")

        async def stored() -> bool:
            return (await server.latest_values(IMEI)).get("/3300/0/5700", {}).get("value") == 50.8

        await eventually(stored)


async def test_huawei_manual_5_6_plain(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "huawei")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="iot-coaps.cn-north-4.myhuaweicloud.com",0')
        await at(module, 'AT+MIPLCFG="platform",0,3')
        for line in APPDATA_OPEN:
            await at(module, line)
        await appdata_subscribed(server, module, "huawei")


async def test_huawei_manual_5_7_dtls_with_hex_psk(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "huawei", attributes={ATTR_PSK: "abcd1234"})
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="iot-coaps.cn-north-4.myhuaweicloud.com:5684",0,,abcd1234,,1')
        await at(module, 'AT+MIPLCFG="platform",0,3')
        for line in APPDATA_OPEN:
            await at(module, line)
        await appdata_subscribed(server, module, "huawei")
    registration = server.registration(IMEI)
    assert registration is not None and registration.secure_identity == IMEI


async def test_ctwing_object_19_uplink_and_downlink_round_trip(server_factory: ServerFactory) -> None:
    """Manual §5.3 "数据收发": the MCU notifies /19/0/0 with an ack id; the cloud stores the bytes and
    publishes an application message; a downlink to /19/1/0 reaches the MCU as +MIPLWRITE and the
    module acknowledges it itself (no MIPLWRITERSP)."""
    from server.carriers.policy import send_appdata

    server = await start_carrier_server(server_factory)
    await provision(server, "ctwing")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="221.229.214.202:5683",0')
        await at(module, 'AT+MIPLCFG="platform",0,1')
        for line in APPDATA_OPEN:
            await at(module, line)
        observe = await module.expect(r"\+MIPLOBSERVE: 0,(\d+),1,19,0,0\r\n")
        await eventually(lambda: len(server.observations(IMEI)) == 1)
        with server.subscribe(endpoint=IMEI, kinds=("appdata.uplink",)) as uplinks:
            await at(module, f'AT+MIPLNOTIFY=0,{observe.group(1)},19,0,0,1,12,"003233343333",0,0,11')
            await module.expect(r"\+MIPLEVENT: 0,26,11\r\n")
            event = await uplinks.get(timeout=5)
        # Value type 1 (string): the module sends the characters themselves as the opaque data.
        data = {"hex": b"003233343333".hex()}
        assert event.data["values"][0]["value"] == data
        points = await server.datapoints(IMEI, "/19/0/0/0")
        assert [p.value for p in points] == [data]
        await send_appdata(server, IMEI, bytes.fromhex("34353637"))
        await module.expect(r"\+MIPLWRITE: 0,\d+,19,1,0,2,8,34353637,0\r\n")  # as manual §5.3 prints it
