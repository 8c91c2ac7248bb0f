"""OneNET end to end (manual §5.1, §5.2; platforms.md "OneNET"): an emulated module driven by AT
lines bootstraps at the OneNET bootstrap listener (127.0.1.1) and registers at the access
listener (127.0.1.2) as `IMEI;IMSI` with its auth code in option 63; the platform observes,
discovers and reads /3/0; DTLS bootstrap issues a new access PSK every time. Refusals: unknown
device, wrong auth code, wrong IMSI (+MIPLEVENT: 0,7, or 0,3 during bootstrap)."""

from __future__ import annotations

import re

from emulator.client.dtls import DtlsClientTunnel, DtlsHandshakeError
from lwm2m.path import Path
from server.carriers.base import ATTR_ACCESS_PSK, ATTR_PSK
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory
from tests.e2e.carrier_support import IMEI, IMSI, at, eventually, module_for, provision, start_carrier_server

ENDPOINT = f"{IMEI};{IMSI}"


async def test_manual_5_1_bootstrap_register_auto_observe_and_notify(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "onenet", auth_code="cmiot", obsv=True)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5683",1,"cmiot"')
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, 'AT+MIPLDISCOVERRSP=0,3200,1,4,"5750"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,2\r\n")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        observe = await module.expect(r"\+MIPLOBSERVE: 0,(\d+),1,3200,0,-1\r\n")
        await module.expect(r"\+MIPLDISCOVER: 0,\d+,3200\r\n")
        registration = server.registration(ENDPOINT)
        assert registration is not None and registration.listener == "onenet"
        assert server.provisioning.device(device.id).endpoint == ENDPOINT  # type: ignore[union-attr]
        await eventually(lambda: [o.paths for o in server.observations(ENDPOINT)] == [[Path(3200, 0)]])
        mid = observe.group(1)
        await at(module, f'AT+MIPLNOTIFY=0,{mid},3200,0,5750,1,4,"abcd",0,0')

        async def stored() -> bool:
            values = await server.latest_values(ENDPOINT)
            return values.get("/3200/0/5750", {}).get("value") == "abcd"

        await eventually(stored)
        # Plain bootstrap hands out the plain access server and no PSK; the module shows it by
        # its carrier-side address (the testbed's access listener 127.0.1.2 read backwards).
        devinfo = await at(module, "AT+MIPLDEVINFO?")
        assert '+MIPLDEVINFO: "183.230.40.40:5683", 0, "cmiot"\r\n' in devinfo


async def test_devices_without_obsv_are_not_auto_observed(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", obsv=False)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        assert server.registration(ENDPOINT) is not None
        assert server.observations(ENDPOINT) == []
        assert "+MIPLOBSERVE" not in module.transcript.decode()


async def dtls_bootstrap(server: object, module: object) -> str:
    """Manual §5.2: bootstrap over DTLS; returns the access PSK AT+MIPLDEVINFO? shows."""
    await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5684",1,,"1234abcd"')  # type: ignore[arg-type]
    await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')  # type: ignore[arg-type]
    await at(module, "AT+MIPLOPEN=0,3000,60")  # type: ignore[arg-type]
    await module.expect(r"\+MIPLEVENT: 0,2\r\n")  # type: ignore[attr-defined]
    await module.expect(r"\+MIPLEVENT: 0,6\r\n")  # type: ignore[attr-defined]
    devinfo = await at(module, "AT+MIPLDEVINFO?")  # type: ignore[arg-type]
    # Manual §5.2: +MIPLDEVINFO:"183.230.40.40:5684",0,, "cPYxj0cTs9qMVL72"
    match = re.search(r'\+MIPLDEVINFO: "183\.230\.40\.40:5684", 0,, "([A-Za-z0-9]{16})"', devinfo)
    assert match is not None, devinfo
    await at(module, "AT+MIPLCLOSE=0")  # type: ignore[arg-type]
    await module.expect(r"\+MIPLEVENT: 0,15\r\n")  # type: ignore[attr-defined]
    await at(module, "AT+MIPLDELETE=0")  # type: ignore[arg-type]
    return match.group(1)


async def test_manual_5_2_each_dtls_bootstrap_issues_a_new_psk_and_the_old_one_stops_working(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    device = await provision(server, "onenet", obsv=False, attributes={ATTR_PSK: "1234abcd"})
    async with module_for(server) as module:
        first = await dtls_bootstrap(server, module)
        second = await dtls_bootstrap(server, module)
        assert first != second
        stored = server.provisioning.device(device.id)
        assert stored is not None and stored.attributes[ATTR_ACCESS_PSK] == second
        assert server.registration(ENDPOINT) is None
        # Manual §5.2: create directly at the access server with the key from AT+MIPLDEVINFO?.
        await at(module, f'AT+MIPLCREATEEX="183.230.40.40:5684",0,,"{first}"')
        await at(module, "AT+MIPLOPEN=0,3000,60")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
        assert server.registration(ENDPOINT) is None
        await at(module, "AT+MIPLDELETE=0")
        await at(module, f'AT+MIPLCREATEEX="183.230.40.40:5684",0,,"{second}"')
        await at(module, "AT+MIPLOPEN=0,3000,60")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n")
        registration = server.registration(ENDPOINT)
        assert registration is not None and registration.secure_identity == IMEI


async def handshake(server: Lwm2mServer, listener: str, key: bytes) -> bool:
    """Whether a DTLS handshake with identity IMEI and `key` succeeds at `listener`."""
    tunnel = DtlsClientTunnel(server.dtls[listener].address, IMEI.encode(), key, handshake_timeout=3)
    try:
        await tunnel.start()
    except DtlsHandshakeError:
        return False
    finally:
        await tunnel.close()
    return True


async def test_after_a_bootstrap_the_new_access_psk_is_the_only_key_of_the_access_listener(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    product = await server.provisioning.create_product("OneNET", "onenet")
    device = await server.directory.create_device(
        product_id=product.id, imei=IMEI, imsi=IMSI, obsv=False, psk="1234abcd", psk_encoding="string"
    )
    await server.directory.set_key(device, "accpsk-set-by-api", attribute=ATTR_ACCESS_PSK)  # as accpsk does
    async with module_for(server) as module:
        issued = await dtls_bootstrap(server, module)
    stored = server.provisioning.device(device.id)
    assert stored is not None and stored.attributes[ATTR_ACCESS_PSK] == issued
    # One directory: the access listener's key is the issued one, the bootstrap listener's the
    # bootstrap PSK, each from the same device row.
    assert server.directory.psk_for("onenet", IMEI.encode()) == issued.encode()
    assert server.directory.psk_for("onenet-bootstrap", IMEI.encode()) == b"1234abcd"
    assert await handshake(server, "onenet", issued.encode())
    assert not await handshake(server, "onenet", b"accpsk-set-by-api")
    assert not await handshake(server, "onenet", b"1234abcd")
    assert await handshake(server, "onenet-bootstrap", b"1234abcd")
    assert not await handshake(server, "onenet-bootstrap", issued.encode())


async def test_a_device_with_a_bootstrap_psk_may_not_bootstrap_in_plaintext(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", attributes={ATTR_PSK: "1234abcd"})
    with server.subscribe(kinds=["bootstrap.refused"]) as refused:
        async with module_for(server) as module:
            await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5683",1')
            await at(module, "AT+MIPLOPEN=0,3000,30")
            await module.expect(r"\+MIPLEVENT: 0,3\r\n")
        event = await refused.get(timeout=5)
    assert "DTLS" in event.data["reason"]
    assert server.registered() == []


async def test_bootstrap_with_a_wrong_bootstrap_psk_fails_with_event_3(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", attributes={ATTR_PSK: "1234abcd"})
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5684",1,,"wrongkey"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,3\r\n")
    assert server.registered() == []


async def test_unknown_device_is_refused_at_bootstrap_with_event_3(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5683",1')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,3\r\n")
        assert "+MIPLEVENT: 0,6" not in module.transcript.decode()
    assert server.registered() == []


async def test_unknown_device_is_refused_at_the_access_server_with_event_7(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
    assert server.carriers.refusals[ENDPOINT].reason.startswith("no onenet device")


async def test_wrong_auth_code_is_refused_with_event_7(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code="cmiot")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0,"wrong"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
    assert server.carriers.refusals[ENDPOINT].reason == "wrong auth code"


async def test_wrong_auth_code_is_refused_at_bootstrap_with_event_3(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", auth_code="cmiot")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5683",1,"wrong"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,3\r\n")
    assert server.registered() == []


async def test_wrong_imsi_is_refused_with_event_7(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "onenet", imsi="460000000000001")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
    assert "IMSI" in server.carriers.refusals[ENDPOINT].reason


async def test_ctwing_device_cannot_register_at_the_onenet_listener(server_factory: ServerFactory) -> None:
    server = await start_carrier_server(server_factory)
    await provision(server, "ctwing")
    async with module_for(server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,7\r\n")
    assert server.registered() == []
