"""An independent CoAP/DTLS client (libcoap's coap-client-openssl) registers over DTLS-PSK and then
sends values (LwM2M Send, POST /dp, SenML JSON) in a DTLS session of its own: the PSK identity
names the client, so the values are stored with their times; an identity that is not registered
is refused."""

from __future__ import annotations

import json

from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.integration.test_interop_libcoap import run_coap_client

ENDPOINT = "libcoap-dtls"
IDENTITY = "libcoap-dtls-id"
KEY = "libcoap-secret-1"


async def dtls_server(server_factory: ServerFactory) -> Lwm2mServer:
    server: Lwm2mServer = await server_factory(
        listeners=[ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0)]
    )
    await server.set_psk(ENDPOINT, IDENTITY, KEY)
    await server.set_psk("not-registered", "other-id", "other-secret-2")
    return server


async def test_libcoap_client_sends_values_over_dtls_after_registering(server_factory: ServerFactory) -> None:
    server = await dtls_server(server_factory)
    host, port = server.dtls["default"].address
    psk = ("-u", IDENTITY, "-k", KEY)
    code, output = await run_coap_client(
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        "</3303/0>",
        *psk,
        f"coaps://{host}:{port}/rd?ep={ENDPOINT}&lt=120&lwm2m=1.1",
    )
    assert code == 0, output
    registration = server.registration(ENDPOINT)
    assert registration is not None and registration.secure_identity == IDENTITY

    records = [
        {"bn": "/3303/0/", "bt": 1700000000, "n": "5700", "v": 24.5},
        {"n": "5700", "v": 25.0, "t": 10},
    ]
    with server.subscribe(endpoint=ENDPOINT, kinds=("send",)) as events:
        code, output = await run_coap_client(
            "-m", "post", "-t", "110", "-e", json.dumps(records), *psk, f"coaps://{host}:{port}/dp"
        )
        assert code == 0 and "4." not in output and "5." not in output, output
        sent = await events.get(timeout=5)
    assert [v["value"] for v in sent.data["values"]] == [24.5, 25.0]
    points = await server.datapoints(ENDPOINT, "/3303/0/5700")
    assert [(p.value, p.measured_at, p.source) for p in points] == [
        (24.5, 1700000000.0, "send"),
        (25.0, 1700000010.0, "send"),
    ]

    code, output = await run_coap_client(
        "-m",
        "post",
        "-t",
        "110",
        "-e",
        json.dumps(records),
        "-u",
        "other-id",
        "-k",
        "other-secret-2",
        f"coaps://{host}:{port}/dp",
    )
    assert "4.03" in output, output
    assert await server.datapoints("not-registered") == []
