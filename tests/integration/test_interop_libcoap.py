"""An independent CoAP client (libcoap's coap-client-openssl) registers with a hand-written
link-format payload, updates and de-registers; in plaintext it cannot take over an endpoint that
has a PSK, with the key over DTLS it registers (issue 13)."""

from __future__ import annotations

import asyncio

from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings
from tests.conftest import ServerFactory
from tests.support import require_tool


async def run_coap_client(*args: str) -> tuple[int, str]:
    tool = require_tool("coap-client-openssl", "libcoap3-bin")
    process = await asyncio.create_subprocess_exec(
        tool, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, output.decode("utf-8", "replace")


async def test_libcoap_client_registers_with_a_hand_written_link_payload(server: Lwm2mServer) -> None:
    host, port = server.listeners["default"].address
    payload = '</>;rt="oma.lwm2m",</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>'
    code, output = await run_coap_client(
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        payload,
        "-v",
        "6",
        f"coap://{host}:{port}/rd?ep=libcoap-1&lt=120&lwm2m=1.1&b=U",
    )
    assert code == 0, output
    reg = server.registration("libcoap-1")
    assert reg is not None
    assert reg.lifetime == 120 and reg.lwm2m_version == "1.1"
    assert [str(p) for p in reg.objects.instances] == ["/1/0", "/3/0", "/3303/0"]
    assert reg.objects.objects[3303] == "1.1"
    stored = {r.endpoint: r for r in await server.store.load_registrations()}
    assert stored["libcoap-1"].object_links == payload
    assert f"Location-Path:rd, Location-Path:{reg.registration_id}" in output  # what the tool printed

    code, output = await run_coap_client("-m", "delete", f"coap://{host}:{port}/rd/{reg.registration_id}")
    assert code == 0, output
    assert server.registration("libcoap-1") is None


async def test_libcoap_client_in_plaintext_cannot_take_over_an_endpoint_with_a_psk(
    server_factory: ServerFactory,
) -> None:
    listeners = [ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=0)]
    server: Lwm2mServer = await server_factory(listeners=listeners)
    await server.set_psk("libcoap-psk", "libcoap-psk", "libcoap-key-01")
    host, dtls_port = server.dtls["default"].address
    _host, port = server.listeners["default"].address
    payload = "</1/0>,</3/0>"
    query = "rd?ep=libcoap-psk&lt=120&lwm2m=1.1&b=U"

    code, output = await run_coap_client(
        "-m",
        "post",
        "-u",
        "libcoap-psk",
        "-k",
        "libcoap-key-01",
        "-e",
        payload,
        f"coaps://{host}:{dtls_port}/{query}",
    )
    assert code == 0, output
    secure = server.registration("libcoap-psk")
    assert secure is not None and secure.secure_identity == "libcoap-psk", output

    code, output = await run_coap_client(
        "-m", "post", "-e", payload, "-v", "6", f"coap://{host}:{port}/{query}"
    )
    assert "4.03" in output, output
    assert server.registration("libcoap-psk") == secure, "the device stays on its DTLS registration"
    stored = {r.endpoint: r for r in await server.store.load_registrations()}
    assert stored["libcoap-psk"].registration_id == secure.registration_id

    # Again with its key over DTLS: 2.01, a new registration of the same device.
    code, output = await run_coap_client(
        "-m",
        "post",
        "-u",
        "libcoap-psk",
        "-k",
        "libcoap-key-01",
        "-e",
        payload,
        "-v",
        "6",
        f"coaps://{host}:{dtls_port}/{query}",
    )
    assert "2.01" in output, output
    renewed = server.registration("libcoap-psk")
    assert renewed is not None and renewed.secure_identity == "libcoap-psk"
    assert renewed.registration_id != secure.registration_id
