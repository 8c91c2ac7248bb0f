"""What `testbed up` and `testbed server` run: a `testbed.cloud.Cloud`, said out loud.

`run_server` starts the cloud (with the API, the console, the demo products and modules when
`http`), a small emulated fleet when asked, observes the sensor values of the open listener,
logs events until Ctrl-C and stops everything. A start that fails for a reason the user can fix
raises `StartFailed` with the problem in words.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from server.settings import Settings
from testbed.cli.app import console
from testbed.cli.errors import Binding, StartFailed, busy_addresses, listener_bindings, start_problem
from testbed.cli.options import on_signal
from testbed.cloud import Cloud
from testbed.demo import (
    DEMO_FLEET_PREFIX,
    DEMO_MODULES,
    MODULE_PORT_BASE,
    observe_sensor_values,
    start_demo_module,
)
from testbed.gc_tuning import freeze_long_lived_objects
from testbed.hosting import reachable

if TYPE_CHECKING:
    from emulator.fleet import Fleet
    from server.events import Event

EVENT_STYLES = {
    "registration": "green",
    "notification": "cyan",
    "send": "cyan",
    "request": "magenta",
    "observation": "blue",
}


def api_key_for(settings: Settings) -> str:
    """TESTBED_API_KEY when set; otherwise a key generated once and kept beside the SQLite data."""
    if settings.api_key:
        return settings.api_key
    from server.services.provisioning import new_key

    path = Path("data") / "api_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def print_event(event: Event) -> None:
    style = EVENT_STYLES.get(event.kind.split(".")[0], "white")
    detail = ""
    if "values" in event.data:
        detail = " ".join(f"{v['path']}={v['value']}" for v in event.data["values"][:4])
    console.print(f"[{style}]{event.kind:<26}[/] {event.endpoint or '':<18} {detail}")


def _demo_bindings(module_port_base: int) -> list[Binding]:
    return [
        Binding("tcp", "127.0.0.1", module_port_base + i, f"AT of the demo {c} module", "--module-port-base")
        for i, c in enumerate(DEMO_MODULES)
    ]


async def _start_cloud(cloud: Cloud, bindings: list[Binding]) -> None:
    try:
        await cloud.start_server()
    except Exception as exc:
        problem = start_problem(exc, cloud.settings, bindings)
        if problem is None:
            raise
        raise StartFailed(problem) from exc


async def _serve_http(cloud: Cloud, api_key: str, module_port_base: int, bindings: list[Binding]) -> None:
    """The API and console, the demo products and the demo modules, said out loud."""
    from server.api.demo import ensure_demo_products

    server = cloud.server
    settings = cloud.settings
    products = await ensure_demo_products(server, api_key)
    try:
        handle = await cloud.start_http()
    except OSError as exc:
        problem = start_problem(exc, settings, [b for b in bindings if b.option == "--http-port"])
        if problem is None:
            raise
        raise StartFailed(problem) from exc
    shown = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
    base = f"http://{shown}:{handle.port}"
    console.print(f"[bold]Console[/]  {base}/#key={api_key}")
    console.print(f"[bold]API[/]      {base}  (OneNET-compatible; native under /api/v1; /docs)")
    console.print(f"[bold]API key[/]  {api_key}  (admin, and master key of the demo OneNET product)")
    for carrier, product in products.items():
        console.print(f"           {carrier:<7} product {product.id}  master key {product.master_key}")
    host = cloud.module_host
    assert host is not None  # the cloud hosts modules when it serves HTTP here
    for index, carrier in enumerate(DEMO_MODULES):
        wanted = module_port_base + index if module_port_base else 0
        try:
            module_id, port = await start_demo_module(server, host, products, carrier, wanted)
        except Exception as exc:  # a demo module is a convenience: report, keep serving
            console.print(f"[red]demo {carrier} module not started: {exc}[/]")
            continue
        console.print(f"[bold]Module[/]   {module_id} ({carrier}) AT on tcp://127.0.0.1:{port}")


async def _start_fleet(cloud: Cloud, fleet_size: int, interval: float) -> Fleet:
    from rich.progress import Progress

    from emulator.fleet import Fleet

    listeners = cloud.server.listeners
    first = listeners.get("default") or next(iter(listeners.values()))
    fleet = Fleet(reachable(first.address), fleet_size, interval=interval, prefix=DEMO_FLEET_PREFIX)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("starting the emulated fleet", total=fleet_size)
        await fleet.start(lambda done: progress.update(task, completed=done))
    console.print(
        f"[bold]Fleet[/]    {fleet_size} emulated devices: "
        + ", ".join(d.endpoint for d in fleet.devices[:5])
    )
    return fleet


async def run_server(
    settings: Settings,
    fleet_size: int,
    interval: float,
    quiet: bool,
    *,
    http: bool,
    module_port_base: int = MODULE_PORT_BASE,
) -> None:
    api_key = api_key_for(settings) if http else None
    if api_key:
        settings = settings.model_copy(update={"api_key": api_key})
    bindings = listener_bindings(settings, http=http)
    if http and module_port_base:
        bindings += _demo_bindings(module_port_base)
    busy = busy_addresses(bindings)
    if busy is not None:
        raise StartFailed(busy)
    cloud = Cloud(settings, console=True, modules=True)
    stop = on_signal()
    await _start_cloud(cloud, bindings)
    server = cloud.server
    fleet = None
    registrations = server.subscribe(kinds=["registration.registered"])
    observer = asyncio.create_task(observe_sensor_values(server, registrations))
    try:
        for listener in server.listeners.values():
            dtls = server.dtls.get(listener.name)
            secure = f", coaps://{listener.host}:{dtls.address[1]}" if dtls else ""
            console.print(
                f"[bold]LwM2M[/]    coap://{listener.host}:{listener.port}{secure}  ({listener.name})"
            )
        console.print(f"[bold]Database[/] {settings.database_url}")
        if api_key is not None:
            await _serve_http(cloud, api_key, module_port_base, bindings)
        if fleet_size:
            fleet = await _start_fleet(cloud, fleet_size, interval)
        freeze_long_lived_objects()
        console.print("Press Ctrl-C to stop.")
        subscription = server.subscribe()

        async def log_events() -> None:
            async for event in subscription:
                if not quiet:
                    print_event(event)

        printer = asyncio.create_task(log_events())
        await stop.wait()
        printer.cancel()
        subscription.close()
    finally:
        observer.cancel()
        registrations.close()
        if fleet is not None:
            await fleet.stop()
        await cloud.stop()
        console.print("stopped")
