"""The demo of `testbed up`: its identities, its hosted AT modules and the sensor values the cloud
observes on the open listener.

The demo's own identities: IMEIs and endpoint names starting 8699750399 (modules) and 8699750398
(the small fleet of `up`), so that the manual's example IMEI (869975030000461, chapter 5) and the
fleets a user starts never meet a demo device.

The constants load with the CLI (`fleet` checks its names against them); the server, the emulator
and the codecs only when a demo starts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.hosting import ModuleHost
    from server.events import Subscription
    from server.lwm2m_server import Lwm2mServer
    from server.services.provisioning import Product

DEMO_MODULES = {
    # carrier: (model, IMEI, IMSI, server as the manual writes it, AT+MIPLCFG platform line or None)
    "onenet": ("ML307R", "869975039900001", "460049900000001", "183.230.40.40:5683", None),
    "ctwing": (
        "MN316",
        "869975039900002",
        "460119900000002",
        "221.229.214.202:5683",
        'AT+MIPLCFG="platform",0,1',
    ),
}
# Demo devices of earlier versions, which used the manual's example IMEIs: removed at start.
FORMER_DEMO_IMEIS = {"onenet": "869975030000461", "ctwing": "869975030000479"}
DEMO_FLEET_PREFIX = "8699750398"
DEMO_PREFIXES = ("8699750398", "8699750399")
# TCP ports of the demo modules' AT interfaces: base + position in DEMO_MODULES.
MODULE_PORT_BASE = 7100
# Objects whose sensor value (resource 5700) the cloud observes on devices of the open listener.
SENSOR_VALUE = 5700


async def start_demo_module(
    server: Lwm2mServer, host: ModuleHost, products: dict[str, Product], carrier: str, port: int
) -> tuple[str, int]:
    """Provision (once) and start one hosted AT module of `carrier`, serve it on TCP `port` (0:
    any) and log it in with the manual's commands; returns (module id, TCP port)."""
    from emulator.frontends.tcp import serve_tcp

    model, imei, imsi, address, platform_line = DEMO_MODULES[carrier]
    product = products[carrier]
    for former in server.provisioning.devices_by_imei(FORMER_DEMO_IMEIS[carrier], carrier):
        if former.product_id == product.id and former.title == f"Demo {model} ({carrier})":
            await server.provisioning.delete_device(former.id)
    if not server.provisioning.devices_by_imei(imei, carrier):
        await server.provisioning.create_device(
            product_id=product.id, imei=imei, imsi=imsi, title=f"Demo {model} ({carrier})"
        )
    module_id = await host.start_module(model, imei=imei, imsi=imsi)
    emulated = host.get(module_id)
    if emulated is None:
        raise RuntimeError(f"module {module_id} stopped at start")
    tcp = await serve_tcp(emulated, "127.0.0.1", port)
    lines = [f'AT+MIPLCREATEEX="{address}",2']
    if platform_line:
        lines.append(platform_line)
    lines += ['AT+MIPLADDOBJ=0,3303,1,"1",1,0', "AT+MIPLOPEN=0,3600"]
    for line in lines:
        await host.send(module_id, line)
    return module_id, int(tcp.sockets[0].getsockname()[1])


def sensor_paths(server: Lwm2mServer, object_links: str) -> list[str]:
    """/<object>/<instance>/5700 of every declared instance whose object has a sensor value."""
    from lwm2m.codec.link_format import parse_object_links
    from lwm2m.errors import CodecError

    try:
        instances = parse_object_links(object_links).instances
    except CodecError:
        return []
    return [
        f"/{i.object_id}/{i.instance_id}/{SENSOR_VALUE}"
        for i in instances
        if i.object_id is not None and server.model.get_resource(i.object_id, SENSOR_VALUE) is not None
    ]


async def observe_sensor_values(server: Lwm2mServer, subscription: Subscription) -> None:
    """The cloud observes the sensor values of every device that registers on an open (custom)
    listener, the demo fleet's and any fleet a user starts, so that their pages show data.
    Carrier listeners keep their own rules (OneNET observes by itself)."""
    open_listeners = {spec.name for spec in server.settings.all_listeners() if spec.carrier == "custom"}
    observing: set[asyncio.Task[None]] = set()

    async def observe(endpoint: str, paths: list[str]) -> None:
        for path in paths:
            try:
                await server.observe(endpoint, path)
            except Exception as exc:  # a device that does not answer: its page stays empty
                logging.getLogger(__name__).info("cannot observe %s %s: %s", endpoint, path, exc)

    async for event in subscription:
        reg = server.registrations.get(event.endpoint) if event.endpoint else None
        if reg is None or reg.listener not in open_listeners:
            continue
        paths = sensor_paths(server, reg.object_links)
        if paths:
            task = asyncio.create_task(observe(reg.endpoint, paths))
            observing.add(task)
            task.add_done_callback(observing.discard)
