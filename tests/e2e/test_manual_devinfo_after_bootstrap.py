"""Manual §5.2 / §4.7 over the network, on every model: a DTLS bootstrap at the testbed's OneNET
bootstrap listener writes its access listener's own address (`coaps://127.0.1.2:5684`, which
any standards client reaches), and the module shows the LwM2M server by the carrier's address,
as the manual prints it (§5.2, line 1552):

    +MIPLDEVINFO:"183.230.40.40:5684",0,, "cPYxj0cTs9qMVL72"

Given back verbatim (§5.2, line 1561: AT+MIPLCREATEEX="183.230.40.40:5684",0,,"<psk>"), that
address reaches the testbed's access listener, never the carrier."""

from __future__ import annotations

import re

from emulator.module.models import MODELS
from server.carriers.base import ATTR_PSK
from testbed.testkit.module import make_imei, make_imsi
from tests.conftest import ServerFactory
from tests.e2e.carrier_support import at, module_for, provision, start_carrier_server

DEVINFO = re.compile(r'\+MIPLDEVINFO: "183\.230\.40\.40:5684", 0,, "([A-Za-z0-9]{16})"\r\n')


async def test_every_model_shows_the_bootstrapped_server_by_its_carrier_address(
    server_factory: ServerFactory,
) -> None:
    server = await start_carrier_server(server_factory)
    for model in sorted(MODELS):
        imei = make_imei()
        imsi = make_imsi(imei)
        await provision(server, "onenet", imei=imei, imsi=imsi, obsv=False, attributes={ATTR_PSK: "1234abcd"})
        endpoint = f"{imei};{imsi}"
        async with module_for(server, model, imei=imei, imsi=imsi) as module:
            await at(module, 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5684",1,, "1234abcd"')
            await at(module, "AT+MIPLOPEN=0,3000,60")
            await module.expect(r"\+MIPLEVENT: 0,2\r\n")
            await module.expect(r"\+MIPLEVENT: 0,6\r\n")
            registration = server.registration(endpoint)
            assert registration is not None and registration.listener == "onenet", model
            devinfo = await at(module, "AT+MIPLDEVINFO?")
            match = DEVINFO.search(devinfo)
            assert match is not None, f"{model}: {devinfo!r}"
            await at(module, "AT+MIPLDELETE=0")
            # The manual's next step: the learned server and PSK, given back as shown.
            await at(module, f'AT+MIPLCREATEEX="183.230.40.40:5684",0,,"{match.group(1)}"')
            await at(module, "AT+MIPLOPEN=0,3000,60")
            await module.expect(r"\+MIPLEVENT: 0,6\r\n")
            registration = server.registration(endpoint)
            assert registration is not None and registration.listener == "onenet", model
            await at(module, "AT+MIPLDELETE=0")
