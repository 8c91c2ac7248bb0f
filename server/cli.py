"""`testbed`: the command line of the private cloud.

The CLI is the composition root of the whole product, so it is the one place that may bring the
server and the emulator together (`up`, `fleet`); each imports the other side lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated, Any

import typer
from rich.console import Console

from server.settings import ListenerSettings, Settings

app = typer.Typer(
    help="lwm2m-testbed: a private carrier cloud for NB-IoT/LTE-M devices.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: SQLite under ./data/, or TESTBED_DATABASE_URL)."),
]

EVENT_STYLES = {
    "registration": "green",
    "notification": "cyan",
    "send": "cyan",
    "request": "magenta",
    "observation": "blue",
}


ModelsOption = Annotated[
    str | None, typer.Option("--models", help="A directory of OMA DDF XML files to add to the object model.")
]


def _settings(
    db: str | None, host: str, port: int, dtls_port: int | None, models: str | None = None
) -> Settings:
    settings = Settings()
    overrides: dict[str, Any] = {
        "listeners": [ListenerSettings(name="default", host=host, port=port, dtls_port=dtls_port)]
    }
    if db:
        overrides["database_url"] = db
    if models:
        overrides["models_dir"] = models
    return settings.model_copy(update=overrides)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _print_event(event: Any) -> None:
    style = EVENT_STYLES.get(event.kind.split(".")[0], "white")
    detail = ""
    if "values" in event.data:
        detail = " ".join(f"{v['path']}={v['value']}" for v in event.data["values"][:4])
    console.print(f"[{style}]{event.kind:<26}[/] {event.endpoint or '':<18} {detail}")


DEMO_MODULES = {
    # carrier: (model, IMEI, IMSI, server as the manual writes it, AT+MIPLCFG platform line or None)
    "onenet": ("ML307R", "869975030000461", "460041234567890", "183.230.40.40:5683", None),
    "ctwing": (
        "MN316",
        "869975030000479",
        "460111234567891",
        "221.229.214.202:5683",
        'AT+MIPLCFG="platform",0,1',
    ),
}


def _api_key(settings: Settings) -> str:
    """TESTBED_API_KEY when set; otherwise a key generated once and kept beside the SQLite data."""
    if settings.api_key:
        return settings.api_key
    from pathlib import Path

    from server.services.provisioning import new_key

    path = Path("data") / "api_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


async def _start_demo_module(
    server: Any, host: Any, products: dict[str, Any], carrier: str
) -> tuple[str, int]:
    """Provision (once) and start one hosted AT module of `carrier`, serve it on a TCP port and
    log it in with the manual's commands; returns (module id, TCP port)."""
    from emulator.frontends.tcp import serve_tcp

    model, imei, imsi, address, platform_line = DEMO_MODULES[carrier]
    product = products[carrier]
    if not server.provisioning.devices_by_imei(imei, carrier):
        await server.provisioning.create_device(
            product_id=product.id, imei=imei, imsi=imsi, title=f"Demo {model} ({carrier})"
        )
    module_id = await host.start_module(model, imei=imei, imsi=imsi)
    emulated = host.get(module_id)
    tcp = await serve_tcp(emulated, "127.0.0.1", 0)
    lines = [f'AT+MIPLCREATEEX="{address}",2']
    if platform_line:
        lines.append(platform_line)
    lines += ['AT+MIPLADDOBJ=0,3303,1,"1",1,0', "AT+MIPLOPEN=0,3600"]
    for line in lines:
        await host.send(module_id, line)
    return module_id, int(tcp.sockets[0].getsockname()[1])


async def _run_server(
    settings: Settings, fleet_size: int, interval: float, quiet: bool, *, http: bool
) -> None:
    from server.lwm2m_server import Lwm2mServer

    api_key = _api_key(settings) if http else None
    if api_key:
        settings = settings.model_copy(update={"api_key": api_key})
    server = Lwm2mServer(settings)
    await server.start()
    fleet = None
    handle = None
    host = None
    try:
        for listener in server.listeners.values():
            dtls = server.dtls.get(listener.name)
            secure = f", coaps://{listener.host}:{dtls.address[1]}" if dtls else ""
            console.print(
                f"[bold]LwM2M[/]    coap://{listener.host}:{listener.port}{secure}  ({listener.name})"
            )
        console.print(f"[bold]Database[/] {settings.database_url}")
        if http:
            from emulator.hosting import ModuleHost
            from server.api.app import create_app
            from server.api.demo import ensure_demo_products
            from server.api.serve import serve_http
            from server.console import mount_console

            products = await ensure_demo_products(server, api_key)
            host = ModuleHost()
            app = create_app(server, module_host=host)
            mount_console(app)
            handle = await serve_http(app, settings.http_host, settings.http_port)
            shown = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
            base = f"http://{shown}:{handle.port}"
            console.print(f"[bold]Console[/]  {base}/#key={api_key}")
            console.print(f"[bold]API[/]      {base}  (OneNET-compatible; native under /api/v1; /docs)")
            console.print(f"[bold]API key[/]  {api_key}  (admin, and master key of the demo OneNET product)")
            for carrier, product in products.items():
                console.print(
                    f"           {carrier:<7} product {product.id}  master key {product.master_key}"
                )
            for carrier in DEMO_MODULES:
                try:
                    module_id, port = await _start_demo_module(server, host, products, carrier)
                except Exception as exc:  # a demo module is a convenience: report, keep serving
                    console.print(f"[red]demo {carrier} module not started: {exc}[/]")
                    continue
                console.print(f"[bold]Module[/]   {module_id} ({carrier}) AT on tcp://127.0.0.1:{port}")
        if fleet_size:
            from rich.progress import Progress

            from emulator.fleet import Fleet

            first = server.listeners.get("default") or next(iter(server.listeners.values()))
            fleet = Fleet(first.address, fleet_size, interval=interval)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("starting the emulated fleet", total=fleet_size)
                await fleet.start(lambda done: progress.update(task, completed=done))
            console.print(
                f"[bold]Fleet[/]    {fleet_size} emulated devices: "
                + ", ".join(d.endpoint for d in fleet.devices[:5])
            )
            for device in fleet.devices:
                for path in ("/3303/0/5700", "/3304/0/5700"):
                    await server.observe(device.endpoint, path)
        console.print("Press Ctrl-C to stop.")
        subscription = server.subscribe()

        async def log_events() -> None:
            async for event in subscription:
                if not quiet:
                    _print_event(event)

        printer = asyncio.create_task(log_events())
        await _wait_for_signal()
        printer.cancel()
        subscription.close()
    finally:
        if fleet is not None:
            await fleet.stop()
        if host is not None:
            await host.close()
        if handle is not None:
            await handle.stop()
        await server.stop()
        console.print("stopped")


@app.command()
def up(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="CoAP listen address of the open (custom) listener.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="CoAP port of the open listener (DTLS on port+1).")] = 5683,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port of the API and console (default 8080).")
    ] = None,
    carriers: Annotated[
        bool, typer.Option(help="Carrier listeners on 127.0.1.x (OneNET, CTWing, ...).")
    ] = True,
    fleet: Annotated[int, typer.Option(help="Emulated LwM2M devices reporting sensor values.")] = 3,
    interval: Annotated[float, typer.Option(help="Seconds between sensor changes of the fleet.")] = 10.0,
    quiet: Annotated[bool, typer.Option(help="Do not log events.")] = False,
    models: ModelsOption = None,
) -> None:
    """Run the private cloud: LwM2M server on every carrier listener, the HTTP API and web console,
    demo products and modules per carrier, and a small emulated fleet reporting sensor values."""
    settings = _settings(db, host, port, port + 1, models)
    updates: dict[str, Any] = {"carrier_map": carriers}
    if http_port is not None:
        updates["http_port"] = http_port
    asyncio.run(_run_server(settings.model_copy(update=updates), fleet, interval, quiet, http=True))


@app.command()
def server(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="CoAP listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="CoAP port.")] = 5683,
    quiet: Annotated[bool, typer.Option(help="Do not log events.")] = False,
    models: ModelsOption = None,
) -> None:
    """Run the LwM2M server only (no HTTP API, no emulated devices)."""
    asyncio.run(_run_server(_settings(db, host, port, None, models), 0, 0.0, quiet, http=False))


@app.command("fleet")
def fleet_command(
    count: Annotated[int, typer.Option("--count", help="How many devices.")] = 10,
    server_host: Annotated[str, typer.Option("--server-host")] = "127.0.0.1",
    server_port: Annotated[int, typer.Option("--server-port")] = 5683,
    interval: Annotated[float, typer.Option(help="Seconds between sensor changes.")] = 10.0,
    prefix: Annotated[str, typer.Option(help="Endpoint-name prefix (IMEI-like names).")] = "86997503",
) -> None:
    """Run N emulated LwM2M devices against a server, with a progress bar while they come up."""
    from rich.progress import Progress

    from emulator.fleet import Fleet

    async def main() -> None:
        fleet = Fleet((server_host, server_port), count, interval=interval, prefix=prefix)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("registering", total=count)
            await fleet.start(lambda done: progress.update(task, completed=done))
        registered = sum(1 for d in fleet.devices if d.client.registered)
        console.print(
            f"{registered}/{count} devices registered with {server_host}:{server_port}; Ctrl-C stops."
        )
        try:
            await _wait_for_signal()
        finally:
            await fleet.stop()

    asyncio.run(main())


@app.command()
def emulator(
    model: Annotated[str, typer.Option(help="Module model: ML307R, MN316, MN316-S, ML305A, ...")] = "ML307R",
    imei: Annotated[str, typer.Option(help="IMEI the module reports (AT+CGSN).")] = "869975030000461",
    imsi: Annotated[str, typer.Option(help="IMSI the module reports (AT+CIMI).")] = "460041234567890",
    tcp: Annotated[str | None, typer.Option(help='Serve AT on host:port (":0" picks a port).')] = None,
    pty: Annotated[bool, typer.Option(help="Serve AT on a pseudo-terminal and print its path.")] = False,
) -> None:
    """Run one emulated OneMO module speaking the AT commands of the module manual."""
    from emulator.runner import run_emulator

    if tcp is None and not pty:
        raise typer.BadParameter("give --tcp HOST:PORT and/or --pty")

    def ready(addresses: list[str]) -> None:
        for address in addresses:
            console.print(f"[bold]{model}[/] AT interface: {address}")

    async def main() -> None:
        runner = asyncio.create_task(run_emulator(model, imei, imsi, tcp, pty, ready=ready))
        await _wait_for_signal()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, revision: str = "head") -> None:
    """Apply the migrations (the server also does this at start)."""
    from server.store.database import Database

    async def main() -> None:
        database = Database.connect(db or Settings().database_url)
        try:
            await database.migrate(revision)
            console.print(f"database at revision {await database.current_revision()}")
        finally:
            await database.dispose()

    asyncio.run(main())


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the schema revision of the database."""
    from server.store.database import Database

    async def main() -> None:
        database = Database.connect(db or Settings().database_url)
        try:
            console.print(await database.current_revision() or "empty")
        finally:
            await database.dispose()

    asyncio.run(main())


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
