"""The AT commands that connect a module to a provisioned device (module manual §4.1, chapter 5),
written as the manual writes them for the device's carrier: the carrier's host name when this
server runs that carrier's listener (OneNET through its bootstrap server, §5.1/§5.2), else the
address of the listener that serves the carrier (a wildcard address shown as 127.0.0.1)."""

from __future__ import annotations

from server.carriers.base import ATTR_ACCESS_PSK, ATTR_PSK, ATTR_PSK_ENCODING
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Device
from server.settings import CARRIER_HOST_NAMES, ListenerSettings

# AT+MIPLCFG "platform" numbers (manual §4.1).
PLATFORM_NUMBERS = {"onenet": 0, "ctwing": 1, "yanfei": 2, "huawei": 3, "custom": 10}
COAP_PORT, DTLS_PORT = 5683, 5684


def _listener(server: Lwm2mServer, carrier: str, role: str) -> ListenerSettings | None:
    specs = server.settings.all_listeners()
    found = next((s for s in specs if s.carrier == carrier and s.role == role), None)
    if found is None and role == "access":
        found = next((s for s in specs if s.role == "access"), None)
    return found


def _server_address(server: Lwm2mServer, spec: ListenerSettings, secure: bool) -> str:
    """`host:port` of a listener as the manual writes it: the carrier's name on the standard
    port when it has one, else the listener's own address."""
    name = CARRIER_HOST_NAMES.get(spec.name)
    if name is not None:
        return f"{name}:{DTLS_PORT if secure else COAP_PORT}"
    if secure and spec.name in server.dtls:
        host, port = server.dtls[spec.name].address
    elif spec.name in server.listeners:
        host, port = server.listeners[spec.name].address
    else:
        host, port = spec.host, (spec.dtls_port if secure else spec.port) or spec.port
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"{host}:{port}"


def connect_commands(server: Lwm2mServer, device: Device) -> list[str]:
    """The AT lines, in order, from AT+MIPLCREATEEX to AT+MIPLOPEN."""
    carrier = device.carrier
    bootstrap = _listener(server, carrier, "bootstrap") if carrier == "onenet" else None
    spec = bootstrap or _listener(server, carrier, "access")
    # OneNET's bootstrap PSK is the device PSK; its access PSK is learnt through bootstrap.
    psk = device.attributes.get(ATTR_PSK) if bootstrap else None
    if bootstrap is None:
        psk = device.attributes.get(ATTR_ACCESS_PSK) or device.attributes.get(ATTR_PSK)
    secure = bool(psk) and spec is not None and spec.dtls_port is not None
    address = _server_address(server, spec, secure) if spec is not None else f"127.0.0.1:{COAP_PORT}"
    create = f'AT+MIPLCREATEEX="{address}",{1 if bootstrap else 0}'
    if device.auth_code or secure:
        create += f',"{device.auth_code or ""}"'
    if secure:
        create += f',"{psk}"'
        if device.attributes.get(ATTR_PSK_ENCODING) == "hex":
            create += ",,1"
    commands = [create]
    if carrier != "onenet":
        commands.append(f'AT+MIPLCFG="platform",0,{PLATFORM_NUMBERS.get(carrier, 10)}')
    commands.append('AT+MIPLADDOBJ=0,3303,1,"1",1,0')
    commands.append("AT+MIPLOPEN=0,86400")
    return commands
