"""`testbed`: the command line of the private cloud.

The CLI is the composition root of the whole product, so it is the one place that may bring the
server and the emulator together (`up`, `fleet`, `scenario`); each imports the other side lazily.

Commands: `up` (the whole cloud), `server`, `emulator` (one AT module on TCP/pty), `fleet` (plain
LwM2M clients, or AT modules with --at), `scenario` (a send/expect script against a module, platform
steps through a running cloud's native API), `impair` (a lossy UDP proxy), `bench` (the checkout's
benchmarks), `doctor` (environment checks) and `db` (migrations).

Design choices: bad input is a usage error (typer.BadParameter, exit 2) and an environment error
a red message (exit 2), never a traceback; a failed scenario or doctor check exits 1. Ctrl-C
handlers are installed before a command says "Ctrl-C stops", so an early Ctrl-C stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from server.cli_firmware import firmware_app
from server.settings import ListenerSettings, Settings

app = typer.Typer(
    help="lwm2m-testbed: a private carrier cloud for NB-IoT/LTE-M devices.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
db_app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(firmware_app, name="firmware")
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
    from server.cli_errors import database_url_problem, models_problem

    settings = Settings()
    problem = database_url_problem(db or settings.database_url)
    if problem is None and models:
        problem = models_problem(models)
    if problem is not None:
        _explain(problem)
    overrides: dict[str, Any] = {
        "listeners": [ListenerSettings(name="default", host=host, port=port, dtls_port=dtls_port)]
    }
    if db:
        overrides["database_url"] = db
    if models:
        overrides["models_dir"] = models
    return settings.model_copy(update=overrides)


def _on_signal() -> asyncio.Event:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets. The handlers are installed at once: call it
    before telling the user that Ctrl-C stops, so that an early Ctrl-C is not a KeyboardInterrupt."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _print_event(event: Any) -> None:
    style = EVENT_STYLES.get(event.kind.split(".")[0], "white")
    detail = ""
    if "values" in event.data:
        detail = " ".join(f"{v['path']}={v['value']}" for v in event.data["values"][:4])
    console.print(f"[{style}]{event.kind:<26}[/] {event.endpoint or '':<18} {detail}")


# The demo's own identities: IMEIs and endpoint names starting 8699750399 (modules) and
# 8699750398 (the small fleet of `up`), so that the manual's example IMEI (869975030000461, chapter
# 5) and the fleets a user starts never meet a demo device.
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


def _api_key(settings: Settings) -> str:
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


async def _start_demo_module(
    server: Any, host: Any, products: dict[str, Any], carrier: str, port: int
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
    tcp = await serve_tcp(emulated, "127.0.0.1", port)
    lines = [f'AT+MIPLCREATEEX="{address}",2']
    if platform_line:
        lines.append(platform_line)
    lines += ['AT+MIPLADDOBJ=0,3303,1,"1",1,0', "AT+MIPLOPEN=0,3600"]
    for line in lines:
        await host.send(module_id, line)
    return module_id, int(tcp.sockets[0].getsockname()[1])


def _reachable(address: tuple[str, int]) -> tuple[str, int]:
    """A listening address as a client in this process reaches it (a wildcard on 127.0.0.1)."""
    return ("127.0.0.1" if address[0] in ("0.0.0.0", "::") else address[0]), address[1]


def module_routes(server: Any) -> dict[str, tuple[str, int]]:
    """Host-map overrides for modules hosted in this process: each carrier's default address
    (server.settings.CARRIER_ADDRESSES), on 5683 and 5684, -> where its listener really is (a
    wildcard address is reached on 127.0.0.1), e.g. when the carriers share one address."""
    from server.settings import CARRIER_ADDRESSES

    local = _reachable
    routes: dict[str, tuple[str, int]] = {}
    for name, (_carrier, _role, default) in CARRIER_ADDRESSES.items():
        if name in server.listeners:
            routes[f"{default}:5683"] = local(server.listeners[name].address)
        if name in server.dtls:
            routes[f"{default}:5684"] = local(server.dtls[name].address)
    return routes


def _sensor_paths(server: Any, object_links: str) -> list[str]:
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
        if server.model.get_resource(i.object_id, SENSOR_VALUE) is not None
    ]


async def _observe_sensor_values(server: Any, subscription: Any) -> None:
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
        paths = _sensor_paths(server, reg.object_links)
        if paths:
            task = asyncio.create_task(observe(reg.endpoint, paths))
            observing.add(task)
            task.add_done_callback(observing.discard)


async def _run_server(
    settings: Settings,
    fleet_size: int,
    interval: float,
    quiet: bool,
    *,
    http: bool,
    module_port_base: int = MODULE_PORT_BASE,
) -> None:
    from server.cli_errors import Binding, StartFailed, busy_addresses
    from server.lwm2m_server import Lwm2mServer

    api_key = _api_key(settings) if http else None
    if api_key:
        settings = settings.model_copy(update={"api_key": api_key})
    bindings = _bindings(settings, http=http)
    if http and module_port_base:
        bindings += [
            Binding(
                "tcp", "127.0.0.1", module_port_base + i, f"AT of the demo {c} module", "--module-port-base"
            )
            for i, c in enumerate(DEMO_MODULES)
        ]
    busy = busy_addresses(bindings)
    if busy is not None:
        raise StartFailed(busy)
    server = Lwm2mServer(settings)
    stop = _on_signal()
    try:
        await server.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            await server.stop()  # releases what was bound, so the probes can name the culprit
        problem = _start_problem(exc, settings, bindings)
        if problem is None:
            raise
        raise StartFailed(problem) from exc
    fleet = None
    handle = None
    host = None
    registrations = server.subscribe(kinds=["registration.registered"])
    observer = asyncio.create_task(_observe_sensor_values(server, registrations))
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
            host = ModuleHost(hosts=module_routes(server))
            app = create_app(server, module_host=host)
            mount_console(app)
            try:
                handle = await serve_http(app, settings.http_host, settings.http_port)
            except OSError as exc:
                http_binding = [b for b in bindings if b.option == "--http-port"]
                raise StartFailed(_start_problem(exc, settings, http_binding)) from exc
            shown = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
            base = f"http://{shown}:{handle.port}"
            console.print(f"[bold]Console[/]  {base}/#key={api_key}")
            console.print(f"[bold]API[/]      {base}  (OneNET-compatible; native under /api/v1; /docs)")
            console.print(f"[bold]API key[/]  {api_key}  (admin, and master key of the demo OneNET product)")
            for carrier, product in products.items():
                console.print(
                    f"           {carrier:<7} product {product.id}  master key {product.master_key}"
                )
            for index, carrier in enumerate(DEMO_MODULES):
                wanted = module_port_base + index if module_port_base else 0
                try:
                    module_id, port = await _start_demo_module(server, host, products, carrier, wanted)
                except Exception as exc:  # a demo module is a convenience: report, keep serving
                    console.print(f"[red]demo {carrier} module not started: {exc}[/]")
                    continue
                console.print(f"[bold]Module[/]   {module_id} ({carrier}) AT on tcp://127.0.0.1:{port}")
        if fleet_size:
            from rich.progress import Progress

            from emulator.fleet import Fleet

            first = server.listeners.get("default") or next(iter(server.listeners.values()))
            fleet = Fleet(_reachable(first.address), fleet_size, interval=interval, prefix=DEMO_FLEET_PREFIX)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("starting the emulated fleet", total=fleet_size)
                await fleet.start(lambda done: progress.update(task, completed=done))
            console.print(
                f"[bold]Fleet[/]    {fleet_size} emulated devices: "
                + ", ".join(d.endpoint for d in fleet.devices[:5])
            )
        freeze_long_lived_objects()
        console.print("Press Ctrl-C to stop.")
        subscription = server.subscribe()

        async def log_events() -> None:
            async for event in subscription:
                if not quiet:
                    _print_event(event)

        printer = asyncio.create_task(log_events())
        await stop.wait()
        printer.cancel()
        subscription.close()
    finally:
        observer.cancel()
        registrations.close()
        if fleet is not None:
            await fleet.stop()
        if host is not None:
            await host.close()
        if handle is not None:
            await handle.stop()
        await server.stop()
        console.print("stopped")


def _run_explained(main: Any) -> None:
    """asyncio.run(main); a start that fails for a reason the user can fix ends in two lines."""
    from server.cli_errors import StartFailed

    try:
        asyncio.run(main)
    except StartFailed as exc:
        _explain(exc.problem)


@app.command()
def up(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="CoAP listen address of the open (custom) listener.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="CoAP port of the open listener.")] = 5683,
    dtls_port: Annotated[
        int | None, typer.Option(help="DTLS port of the open listener (default: port + 1; 0 picks one).")
    ] = None,
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
    module_port_base: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535 - len(DEMO_MODULES),
            help="TCP port of the first demo module's AT interface (OneNET); the next ones follow "
            "(CTWing on base + 1). 0 picks free ports.",
        ),
    ] = MODULE_PORT_BASE,
) -> None:
    """Run the private cloud: LwM2M server, HTTP API and console, demo modules, a small fleet.

    The LwM2M server listens on every carrier listener; demo products and modules are created per
    carrier, and a small emulated fleet reports sensor values."""
    settings = _settings(db, host, port, port + 1 if dtls_port is None else dtls_port, models)
    updates: dict[str, Any] = {"carrier_map": carriers}
    if http_port is not None:
        updates["http_port"] = http_port
    _run_explained(
        _run_server(
            settings.model_copy(update=updates),
            fleet,
            interval,
            quiet,
            http=True,
            module_port_base=module_port_base,
        )
    )


@app.command()
def server(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="CoAP listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="CoAP port.")] = 5683,
    quiet: Annotated[bool, typer.Option(help="Do not log events.")] = False,
    models: ModelsOption = None,
    node_id: Annotated[str | None, typer.Option("--node-id", help="This node's id in a cluster.")] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="NATS URL of the cluster (nats://host:4222); needs --node-id."),
    ] = None,
    http_port: Annotated[int, typer.Option(help="HTTP port of a cluster node's API (0 picks one).")] = 8080,
    cluster_name: Annotated[
        str, typer.Option(help="Name of the cluster: its NATS subjects (clusters may share a NATS server).")
    ] = "testbed",
) -> None:
    """Run the LwM2M server only (no HTTP API, no emulated devices); with --cluster, one node of a
    cluster on PostgreSQL and NATS, with its HTTP API (see server/cluster)."""
    settings = _settings(db, host, port, None, models)
    if cluster is None:
        if node_id is not None:
            raise typer.BadParameter("--node-id needs --cluster nats://host:port", param_hint="--node-id")
        _run_explained(_run_server(settings, 0, 0.0, quiet, http=False))
        return
    _run_cluster_node(settings, node_id, cluster, http_port, cluster_name)


def _run_cluster_node(
    settings: Settings, node_id: str | None, cluster: str, http_port: int, name: str
) -> None:
    from nats.errors import Error as NatsError

    from server.cluster.node import NODE_ID
    from server.cluster.run import run_node

    if node_id is None or not NODE_ID.match(node_id):
        raise typer.BadParameter("give --node-id: 1-64 letters, digits, '-' or '_'", param_hint="--node-id")
    if not NODE_ID.match(name):
        raise typer.BadParameter("1-64 letters, digits, '-' or '_'", param_hint="--cluster-name")
    if not cluster.startswith(("nats://", "tls://")):
        raise typer.BadParameter("a NATS URL such as nats://127.0.0.1:4222", param_hint="--cluster")
    if not settings.database_url.startswith("postgresql"):
        raise typer.BadParameter("cluster nodes share one PostgreSQL database: --db postgresql+asyncpg://...")
    settings = settings.model_copy(update={"api_key": _api_key(settings)})

    async def main() -> None:
        stop = _on_signal()
        try:
            await run_node(
                settings, node_id, cluster, http_port, stop, lambda line: print(line, flush=True), name
            )
        except (OSError, NatsError) as exc:
            _fail(f"node {node_id} could not start: {exc or type(exc).__name__} (is NATS at {cluster}?)")

    _run_explained(main())


@app.command("fleet")
def fleet_command(
    count: Annotated[int, typer.Option("--count", min=1, help="How many devices.")] = 10,
    server_host: Annotated[
        str, typer.Option("--server-host", help="Address of the LwM2M server.")
    ] = "127.0.0.1",
    server_port: Annotated[
        int, typer.Option("--server-port", min=1, max=65535, help="CoAP port of the LwM2M server.")
    ] = 5683,
    interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between sensor changes / notifies.")
    ] = 10.0,
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Endpoint-name prefix (IMEI-like names, padded to 15 digits with the device "
            "index). Default: 86997504 and a run id, so that no two runs and no demo device share "
            "a name."
        ),
    ] = None,
    at: Annotated[
        bool,
        typer.Option(
            "--at",
            help="AT modules (emulator.module_fleet: a full OneMO module per device, driven by a "
            "built-in MCU, endpoint IMEI;IMSI) instead of plain LwM2M clients.",
        ),
    ] = False,
    model: Annotated[str, typer.Option(help="Module model of the --at fleet.")] = "ML307R",
    processes: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Worker processes to spread the devices over (one bar, one summary)."
        ),
    ] = 1,
    worker: Annotated[
        bool, typer.Option(hidden=True, help="Run as a worker of a --processes fleet.")
    ] = False,
    first_index: Annotated[
        int, typer.Option("--first", hidden=True, min=0, help="Index of this worker's first device.")
    ] = 0,
) -> None:
    """Run N emulated devices against a server, with a progress bar while they come up; Ctrl-C stops.

    Each run picks its own endpoint names (a run id in the prefix, printed at start), so a fleet
    never takes over the registrations of the demo devices of `testbed up` or of another fleet.
    A server that observes them (`testbed up` does, on its open listener) gets their sensor
    values every --interval seconds."""
    from emulator.fleet import run_prefix

    if prefix is None:
        prefix = run_prefix(count)
    elif not prefix.isdigit() or len(prefix) > 15 - len(str(max(count - 1, 0))):
        raise typer.BadParameter(
            f"{prefix!r} leaves no room for {count} IMEI-like names: give at most "
            f"{15 - len(str(max(count - 1, 0)))} digits",
            param_hint="--prefix",
        )
    width = 15 - len(prefix)
    first, last = f"{prefix}{0:0{width}d}", f"{prefix}{count - 1:0{width}d}"
    for demo in DEMO_PREFIXES:
        rest = 15 - len(demo)
        if int(first) <= int(demo + "9" * rest) and int(demo + "0" * rest) <= int(last):
            raise typer.BadParameter(
                f"names {first} … {last} include the demo devices' of `testbed up` ({demo}…); "
                "leave --prefix out to get a run of your own",
                param_hint="--prefix",
            )
    if not worker:
        console.print(f"[bold]Fleet[/]    endpoints {first} … {last}", highlight=False)
    if processes > 1 and not worker:
        common = [
            "--server-host",
            server_host,
            "--server-port",
            str(server_port),
            "--interval",
            str(interval),
        ]
        common += ["--prefix", prefix] + (["--at", "--model", model] if at else [])
        _run_process_fleet(count, processes, common, f"{server_host}:{server_port}", at)
        return
    if at:
        first_imei = int(f"{prefix}{first_index:0{width}d}")
        _run_module_fleet(
            count,
            f"{server_host}:{server_port}",
            model,
            interval,
            first_imei,
            worker=worker,
            first=first_index,
        )
        return
    from rich.progress import Progress

    from emulator.fleet import Fleet
    from emulator.fleet_processes import report

    async def main() -> None:
        stop = _on_signal()
        fleet = Fleet((server_host, server_port), count, interval=interval, prefix=prefix, first=first_index)
        if worker:
            step = max(1, count // 100)
            await fleet.start(
                lambda done: report("progress", done) if done % step == 0 or done == count else None
            )
        else:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("registering", total=count)
                await fleet.start(lambda done: progress.update(task, completed=done))
        freeze_long_lived_objects()
        registered = sum(1 for d in fleet.devices if d.client.registered)
        if worker:
            report("started", {"registered": registered, "failed": count - registered})
        else:
            console.print(
                f"{registered}/{count} devices registered with {server_host}:{server_port}; Ctrl-C stops."
            )
        try:
            await stop.wait()
        finally:
            await fleet.stop()
            if worker:
                report("summary", {"registered": registered, "failed": count - registered})

    asyncio.run(main())


def _run_process_fleet(count: int, processes: int, common: list[str], server_address: str, at: bool) -> None:
    from rich.progress import Progress

    from emulator.fleet_processes import ProcessFleet, WorkerShare

    def argv_for(share: WorkerShare) -> list[str]:
        share_args = ["--count", str(share.count), "--first", str(share.first), "--worker"]
        return ["-m", "server.cli", "fleet", *share_args, *common]

    async def main() -> None:
        stop = _on_signal()
        fleet = ProcessFleet(argv_for, count, processes)
        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"{count} devices in {len(fleet.shares)} processes", total=count)
                started = await fleet.start(lambda done: progress.update(task, completed=done))
            lost = f", [red]{started.workers_lost} worker(s) died[/]" if started.workers_lost else ""
            failed = f", [red]{started.failed} failed[/]" if started.failed else ""
            console.print(
                f"{started.registered}/{count} devices registered with {server_address} by "
                f"{started.processes} processes{failed}{lost}; Ctrl-C stops."
            )
            await stop.wait()
        finally:
            totals = await fleet.stop()
            line = f"{totals.processes} processes stopped"
            if at:
                c = totals.counters
                line += (
                    f"; notifies sent {c.get('notifies_sent', 0)}, acked {c.get('notifies_acked', 0)}, "
                    f"failed {c.get('notifies_failed', 0)}"
                )
            if totals.workers_lost:
                line += f"; [red]{totals.workers_lost} worker(s) gave no summary[/]"
            console.print(line)

    asyncio.run(main())


def _run_module_fleet(
    count: int,
    server_address: str,
    model: str,
    interval: float,
    first_imei: int,
    *,
    worker: bool = False,
    first: int = 0,
) -> None:
    from dataclasses import asdict

    from rich.progress import Progress

    from emulator.fleet_processes import report
    from emulator.module_fleet import ModuleFleet, ModuleFleetSettings

    _check_model(model)

    async def main() -> None:
        stop = _on_signal()
        fleet = ModuleFleet(
            ModuleFleetSettings(
                count=count,
                server=server_address,
                model=model,
                notify_interval=interval,
                first_imei=first_imei,
                first_imsi=ModuleFleetSettings(count=count).first_imsi + first,
            )
        )
        try:
            if worker:
                step = max(1, count // 100)
                stats = await fleet.start(
                    lambda done, total: (
                        report("progress", done) if done % step == 0 or done == total else None
                    )
                )
                report("started", {"registered": stats.registered, "failed": stats.failed})
            else:
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task(f"{model} modules logging in", total=count)
                    stats = await fleet.start(lambda done, total: progress.update(task, completed=done))
            freeze_long_lived_objects()
            if not worker:
                console.print(
                    f"{stats.registered}/{count} {model} modules registered with {server_address}"
                    + (f", [red]{stats.failed} failed[/]" if stats.failed else "")
                    + "; Ctrl-C stops."
                )
            await stop.wait()
        finally:
            await fleet.stop()
            if worker:
                report("summary", {k: v for k, v in asdict(fleet.stats).items() if isinstance(v, int)})
            else:
                console.print(
                    f"notifies sent {fleet.stats.notifies_sent}, acked {fleet.stats.notifies_acked}, "
                    f"failed {fleet.stats.notifies_failed}"
                )

    asyncio.run(main())


def freeze_long_lived_objects() -> None:
    """Move everything alive now (imports, the started server, a fleet that has come up) into the
    garbage collector's permanent generation, so that full collections walk only what is allocated
    later. With 5,000 AT modules in one process a full collection paused the event loop for
    1.0-1.3 s, twice every 20 s; after the freeze it takes a millisecond. Only for a process of its
    own (these commands, the benchmarks' processes): frozen objects are never freed, even when they
    become garbage."""
    gc.collect()
    gc.freeze()


def _check_model(model: str) -> None:
    from emulator.module.models import MODELS, capabilities

    try:
        capabilities(model)
    except KeyError:
        raise typer.BadParameter(
            f"unknown model {model!r}; choose from {', '.join(MODELS)}", param_hint="--model"
        ) from None


def _address(value: str, option: str) -> tuple[str, int]:
    """ "host:port" (":port" = 127.0.0.1) -> (host, port), or a usage error naming `option`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT", param_hint=option)
    return host.strip("[]") or "127.0.0.1", int(port)


def _imei(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) == 15):
        raise typer.BadParameter(f"{value!r} is not an IMEI: give 15 digits (AT+CGSN answers it)")
    return value


def _imsi(value: str) -> str:
    if not (value.isascii() and value.isdigit() and 1 <= len(value) <= 15):
        raise typer.BadParameter(f"{value!r} is not an IMSI: give up to 15 digits (AT+CIMI answers it)")
    return value


TranscriptOption = Annotated[
    Path | None,
    typer.Option(
        "--transcript",
        dir_okay=False,
        help="Append every line to and from the module, timestamped, to this file.",
    ),
]


@app.command()
def emulator(
    model: Annotated[str, typer.Option(help="Module model: ML307R, MN316, MN316-S, ML305A, ...")] = "ML307R",
    imei: Annotated[
        str, typer.Option(callback=_imei, help="IMEI the module reports (AT+CGSN): 15 digits.")
    ] = "869975030000461",
    imsi: Annotated[
        str, typer.Option(callback=_imsi, help="IMSI the module reports (AT+CIMI): up to 15 digits.")
    ] = "460041234567890",
    tcp: Annotated[str | None, typer.Option(help='Serve AT on host:port (":0" picks a port).')] = None,
    pty: Annotated[bool, typer.Option(help="Serve AT on a pseudo-terminal and print its path.")] = False,
    stdio: Annotated[
        bool, typer.Option(help="Talk AT over stdin/stdout (messages go to stderr); end of input stops.")
    ] = False,
    transcript: TranscriptOption = None,
    carrier_ports: Annotated[
        bool,
        typer.Option(
            envvar="TESTBED_CARRIER_PORTS",
            help="Reach each carrier by its host name on its own ports (a server with"
            " TESTBED_CARRIER_HOST, as in docker compose).",
        ),
    ] = False,
    fota_fault: Annotated[
        str,
        typer.Option(
            help="Faults of firmware updates: cut=N (%), corrupt, no-storage, out-of-memory, "
            "update-fails, rate=N (bytes/s), no-return; comma-separated."
        ),
    ] = "",
) -> None:
    """Run one emulated OneMO module speaking the AT commands of the module manual."""
    from emulator.module.fota import FotaFaults
    from emulator.runner import run_emulator

    try:
        faults = FotaFaults.parse(fota_fault)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fota-fault") from None

    if tcp is None and not pty and not stdio:
        raise typer.BadParameter("give --tcp HOST:PORT, --pty and/or --stdio")
    out = Console(stderr=True) if stdio else console
    _check_model(model)
    if tcp is not None:
        _address(tcp, "--tcp")
    hosts = None
    if carrier_ports:
        from emulator.carrier_ports import port_routes

        hosts = port_routes()

    def ready(addresses: list[str]) -> None:
        for address in addresses:
            out.print(f"[bold]{model}[/] AT interface: {address}")
        if transcript is not None:
            out.print(f"[bold]Transcript[/] {transcript}")

    async def main() -> None:
        signalled = _on_signal()
        runner = asyncio.create_task(
            run_emulator(
                model,
                imei,
                imsi,
                tcp,
                pty,
                ready=ready,
                transcript=transcript,
                stdio=stdio,
                hosts=hosts,
                fota_faults=faults,
            )
        )
        stop = asyncio.create_task(signalled.wait())
        await asyncio.wait([runner, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if runner.done():
            runner.result()  # an error while opening the front-ends
            return
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    try:
        asyncio.run(main())
    except OSError as exc:
        if tcp is not None:
            from server.cli_errors import Binding, busy_addresses

            host, port = _address(tcp, "--tcp")
            busy = busy_addresses([Binding("tcp", host, port, "AT interface of the module", "--tcp")])
            if busy is not None:
                _explain(busy)
        _fail(f"cannot serve the module: {exc}")


def _fail(message: str, code: int = 2) -> NoReturn:
    """A red message on stderr and exit `code` (2: bad input or environment, 1: a failed run)."""
    Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _explain(problem: Any) -> NoReturn:
    """A `server.cli_errors.Problem` on stderr, two lines (what is wrong; the fix and `testbed
    doctor`), exit 2."""
    from server.cli_errors import DOCTOR

    err = Console(stderr=True, soft_wrap=True)
    err.print(f"[red]error:[/] {problem.what}", highlight=False, markup=True)
    err.print(f"  {problem.fix} {DOCTOR}.", highlight=False, markup=False)
    raise typer.Exit(2)


def _bindings(settings: Settings, *, http: bool) -> list[Any]:
    """Every address `up`/`server` listens on, with the option that moves it."""
    from server.cli_errors import Binding

    result = []
    for spec in settings.all_listeners():
        custom = spec.name == "default"
        role = f"CoAP, {spec.name} listener"
        result.append(Binding("udp", spec.host, spec.port, role, "--port" if custom else "--no-carriers"))
        if spec.dtls_port is not None:
            option = "--dtls-port" if custom else "--no-carriers"
            result.append(Binding("udp", spec.host, spec.dtls_port, f"DTLS, {spec.name} listener", option))
    if http:
        result.append(
            Binding("tcp", settings.http_host, settings.http_port, "HTTP API and console", "--http-port")
        )
    return result


def _start_problem(error: BaseException, settings: Settings, bindings: list[Any]) -> Any:
    """The Problem behind a failed start, or None when it is none the user can fix."""
    import errno

    from server.cli_errors import database_problem, describe_bind_failure

    if isinstance(error, OSError) and error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return describe_bind_failure(error, bindings)
    return database_problem(settings.database_url, error)


# --- scenario --------------------------------------------------------------------------------------


class _EchoTransport:
    """Wraps a line transport: prints the exchange as it happens and records it to a transcript
    (the `--connect` case; an in-process module writes its own transcript)."""

    def __init__(self, inner: Any, writer: Any, quiet: bool) -> None:
        self.inner = inner
        self.writer = writer
        self.quiet = quiet

    async def send_line(self, line: str) -> None:
        if not self.quiet:
            console.print(f"> {line}", style="dim", highlight=False, markup=False)
        if self.writer is not None:
            self.writer.to_module(line.encode() + b"\r")
        await self.inner.send_line(line)

    async def read_line(self) -> str:
        line: str = await self.inner.read_line()
        if not self.quiet:
            console.print(f"< {line}", style="cyan", highlight=False, markup=False)
        if self.writer is not None:
            self.writer.from_module(line.encode() + b"\r\n")
        return line


def _write_value(path: str, text: str) -> Any:
    """A `do write` argument as the native API's JSON value: hex for object 19 (binary app data),
    a number when it reads as one, else the string."""
    if path.strip("/").split("/")[0] == "19":
        return {"hex": text}
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class _ApiActions:
    """The platform side of a scenario over the native HTTP API of a running cloud: `do observe`,
    `read`, `write`, `execute`, `discover`, `psk` on the device whose endpoint (or IMEI, or id)
    is `device`."""

    def __init__(self, base_url: str, api_key: str, device: str, timeout: float) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"api-key": api_key},
            timeout=timeout + 5,
        )
        self.device = device
        self.timeout = max(1.0, min(120.0, timeout))
        self._id: int | None = int(device) if device.isdigit() and len(device) < 10 else None

    async def device_id(self) -> int:
        if self._id is not None:
            return self._id
        # The cloud records an unknown endpoint just after it registers: allow it a moment.
        for _ in range(20):
            response = await self.client.get("/devices", params={"q": self.device, "limit": 1000})
            self._raise_for(response)
            items = [
                d
                for d in response.json()["items"]
                if d["id"] is not None and self.device in (d["endpoint"], d["imei"])
            ]
            items.sort(key=lambda d: not d["online"])
            if items:
                self._id = int(items[0]["id"])
                return self._id
            await asyncio.sleep(0.2)
        raise LookupError(f"the cloud knows no device {self.device!r} (endpoint, IMEI or id)")

    @staticmethod
    def _raise_for(response: Any) -> None:
        if response.status_code >= 400:
            raise RuntimeError(
                f"HTTP {response.status_code} {response.request.url.path}: {response.text[:300]}"
            )

    async def _post(self, operation: str, body: dict[str, Any]) -> Any:
        device_id = await self.device_id()
        response = await self.client.post(
            f"/devices/{device_id}/{operation}", json={**body, "timeout": self.timeout}
        )
        self._raise_for(response)
        return response.json()

    def actions(self) -> dict[str, Any]:
        def needs(args: Sequence[str], count: int, usage: str) -> None:
            if len(args) < count:
                raise ValueError(f"usage: do {usage}")

        async def observe(args: Sequence[str]) -> Any:
            needs(args, 1, "observe PATH")
            return await self._post("observe", {"path": args[0]})

        async def read(args: Sequence[str]) -> Any:
            needs(args, 1, "read PATH")
            return await self._post("read", {"path": args[0]})

        async def write(args: Sequence[str]) -> Any:
            needs(args, 2, "write PATH VALUE")
            body: dict[str, Any] = {"path": args[0], "value": _write_value(args[0], args[1])}
            if isinstance(body["value"], dict):
                # Object 19 application data goes down as octet-stream, as the carriers send it
                # (manual §5.3, §5.6): one value of the multiple resource /19/1/0, not a TLV.
                body["content_format"] = 42
            return await self._post("write", body)

        async def execute(args: Sequence[str]) -> Any:
            needs(args, 1, "execute PATH [ARGUMENTS]")
            return await self._post("execute", {"path": args[0], "arguments": " ".join(args[1:])})

        async def discover(args: Sequence[str]) -> Any:
            needs(args, 1, "discover PATH")
            return await self._post("discover", {"path": args[0]})

        async def psk(args: Sequence[str]) -> Any:
            # The platform changes the device's DTLS PSK between two parts of a flow (manual
            # §5.2: OneNET's access PSK; §5.4: CTWing's device PSK, text or hexadecimal).
            needs(args, 1, "psk KEY [hex|string]")
            encoding = args[1].lower() if len(args) > 1 else "string"
            if encoding not in ("string", "hex"):
                raise ValueError("usage: do psk KEY [hex|string]")
            device_id = await self.device_id()
            response = await self.client.put(
                f"/devices/{device_id}/psk", json={"psk": args[0], "psk_encoding": encoding}
            )
            self._raise_for(response)
            return response.json()

        return {
            "observe": observe,
            "read": read,
            "write": write,
            "execute": execute,
            "discover": discover,
            "psk": psk,
        }

    async def aclose(self) -> None:
        await self.client.aclose()


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip().isidentifier():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        variables[name.strip()] = value
    return variables


@app.command()
def scenario(
    script_ref: Annotated[
        str,
        typer.Argument(
            metavar="FILE_OR_FLOW",
            help="A scenario file, or the name of a shipped flow (5.1-onenet ... 5.7-huawei-dtls, custom).",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Model of the in-process module (default: the script's @model, else ML307R)."),
    ] = None,
    imei: Annotated[
        str, typer.Option(callback=_imei, help="IMEI of the in-process module: 15 digits.")
    ] = "869975030000461",
    imsi: Annotated[
        str, typer.Option(callback=_imsi, help="IMSI of the in-process module: up to 15 digits.")
    ] = "460041234567890",
    var: Annotated[
        list[str] | None, typer.Option("--var", help="Set a script variable: NAME=VALUE (repeatable).")
    ] = None,
    server_address: Annotated[
        str | None, typer.Option("--server", help="The LwM2M server HOST:PORT (sets ${server}).")
    ] = None,
    connect: Annotated[
        str | None,
        typer.Option(help="Drive a module served over TCP at HOST:PORT (`testbed emulator --tcp`, `up`)."),
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(help="Base URL of a running cloud (http://127.0.0.1:8080): `do` steps call its API."),
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --api (admin or product key).")] = None,
    device: Annotated[
        str | None,
        typer.Option(help="Device of the `do` steps: id, endpoint or IMEI (default: ${ep}, else the IMEI)."),
    ] = None,
    manual: Annotated[
        bool, typer.Option(help="Without --api: log the `do` steps for you to perform instead of failing.")
    ] = False,
    transcript: TranscriptOption = None,
    quiet: Annotated[bool, typer.Option(help="Do not print the exchange.")] = False,
) -> None:
    """Run a send/expect scenario (a file or a shipped flow) against an emulated module.

    The module runs in-process, or is reached over TCP with --connect. `do` steps (platform
    requests) go to a running cloud's API with --api/--api-key. Exit code 0 when the scenario
    passes; 1 with the failing file, line, step and reason when it fails."""
    from emulator.scenarios import ScriptError, flow_names, load_script

    try:
        script = load_script(script_ref)
    except FileNotFoundError:
        raise typer.BadParameter(
            f"no file {script_ref!r} and no flow of that name; flows: {', '.join(flow_names())}",
            param_hint="FILE_OR_FLOW",
        ) from None
    except (ScriptError, OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE_OR_FLOW") from None
    variables = _parse_vars(var or [])
    if server_address is not None:
        _address(server_address, "--server")
        variables["server"] = server_address
    target = _address(connect, "--connect") if connect is not None else None
    chosen_model = model or script.meta.get("model", "ML307R").split()[0]
    if target is None:
        _check_model(chosen_model)
    if (api is None) != (api_key is None):
        raise typer.BadParameter("give --api and --api-key together", param_hint="--api")
    if api is not None and not api.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{api!r} is not an http(s) URL", param_hint="--api")
    merged = {**script.variables, **variables}
    who = device or merged.get("ep") or imei

    console.print(f"[bold]{script.title}[/] ({script.name})", highlight=False)
    try:
        result = asyncio.run(
            _run_scenario(
                script,
                variables,
                target,
                chosen_model,
                imei,
                imsi,
                api,
                api_key,
                who,
                manual,
                transcript,
                quiet,
            )
        )
    except OSError as exc:
        _fail(f"cannot reach the module at {connect}: {exc}" if connect else str(exc))
    if result.failure is not None:
        console.print("FAILED", style="bold red", end=" ")
        console.print(str(result.failure), highlight=False, markup=False)
        if "no action" in result.failure.reason and api is None:
            console.print("give --api URL --api-key KEY to let a running cloud perform the `do` steps")
        raise typer.Exit(1)
    console.print(f"[bold green]PASSED[/] {script.name}: {len(script.steps)} steps")


async def _run_scenario(
    script: Any,
    variables: dict[str, str],
    target: tuple[str, int] | None,
    model: str,
    imei: str,
    imsi: str,
    api: str | None,
    api_key: str | None,
    device: str,
    manual: bool,
    transcript: Path | None,
    quiet: bool,
) -> Any:
    from emulator.scenarios import ModuleTransport, StreamTransport, run_scenario
    from emulator.transcript import open_transcript

    platform = _ApiActions(api, api_key, device, script.timeout) if api and api_key else None
    module = None
    writer = None
    stream = None
    try:
        if target is None:
            from emulator.runner import EmulatedModule

            module = EmulatedModule(
                model, imei=imei, imsi=imsi, transcript=transcript, request_timeout=script.timeout
            )
            await module.start()
            inner: Any = ModuleTransport(module)
        else:
            reader, stream = await asyncio.open_connection(*target)
            inner = StreamTransport(reader, stream)
            writer = open_transcript(transcript) if transcript is not None else None
        return await run_scenario(
            script,
            _EchoTransport(inner, writer, quiet),
            variables=variables,
            actions=platform.actions() if platform else None,
            missing_actions="log" if manual and platform is None else "fail",
        )
    finally:
        if platform is not None:
            await platform.aclose()
        if module is not None:
            await module.stop()
        if stream is not None:
            stream.close()
        if writer is not None:
            writer.close()


# --- impair, bench, doctor -------------------------------------------------------------------------


@app.command()
def impair(
    listen: Annotated[str, typer.Option(help="HOST:PORT the modules send to (the proxy's address).")],
    target: Annotated[str, typer.Option(help="HOST:PORT of the LwM2M server behind the proxy.")],
    loss: Annotated[float, typer.Option(min=0, max=1, help="Probability a datagram is dropped.")] = 0.0,
    duplicate: Annotated[
        float, typer.Option(min=0, max=1, help="Probability a datagram is sent twice.")
    ] = 0.0,
    reorder: Annotated[
        float, typer.Option(min=0, max=1, help="Probability a datagram is held back behind later ones.")
    ] = 0.0,
    delay: Annotated[float, typer.Option(min=0, help="Seconds every datagram is delayed.")] = 0.0,
    jitter: Annotated[float, typer.Option(min=0, help="Random extra delay, up to this many seconds.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (the same seed, the same impairment).")] = 0,
    rebind_every: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Seconds between source-port changes of every flow (a carrier NAT rebinding)."
        ),
    ] = None,
) -> None:
    """Run a UDP proxy that impairs datagrams between modules and a server (a bad cell).

    Datagrams are lost, duplicated, reordered and delayed as asked; Ctrl-C stops."""
    from emulator.impairment import run_proxy

    listen_address = _address(listen, "--listen")
    target_address = _address(target, "--target")
    settings = {"loss": loss, "duplicate": duplicate, "reorder": reorder, "delay": delay, "jitter": jitter}

    async def main() -> None:
        signalled = _on_signal()
        proxy = asyncio.create_task(
            run_proxy(listen_address, target_address, rebind_every=rebind_every, seed=seed, **settings)
        )
        stop = asyncio.create_task(signalled.wait())
        await asyncio.sleep(0.05)
        if not proxy.done():
            console.print(
                f"[bold]Impairment[/] udp {listen} -> {target}: "
                + ", ".join(f"{k} {v:g}" for k, v in settings.items())
                + (f", rebind every {rebind_every:g} s" if rebind_every else "")
                + "; Ctrl-C stops.",
                highlight=False,
            )
        await asyncio.wait([proxy, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if proxy.done():
            proxy.result()
            return
        proxy.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await proxy
        console.print("stopped")

    try:
        asyncio.run(main())
    except OSError as exc:
        _fail(f"cannot listen on {listen}: {exc}")


def _import_bench() -> Any:
    """`bench.__main__` from the checkout (the bench package is not installed)."""
    try:
        return importlib.import_module("bench.__main__")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.__main__"):
            raise
    checkout = Path.cwd()
    if (checkout / "bench" / "__main__.py").exists():
        sys.path.insert(0, str(checkout))
        return importlib.import_module("bench.__main__")
    _fail(
        "the benchmarks are not installed with the package: run `testbed bench` (or "
        "`python -m bench`) from the lwm2m-testbed checkout"
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes (a smoke run of a few seconds).")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset: registrations,reads,memory,dtls,modules,notifies,fleet."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Results file name (bench/results/NAME.json).")] = None,
) -> None:
    """Run the benchmarks, the same as `python -m bench` (run it from the checkout).

    Further options such as --clients N are passed on to the bench."""
    module = _import_bench()
    argv = (
        (["--quick"] if quick else [])
        + (["--only", only] if only else [])
        + (["--name", name] if name else [])
    )
    raise typer.Exit(int(module.main([*argv, *ctx.args]) or 0))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


REQUIRED_SUITES = ("TLS-PSK-WITH-AES-128-CCM-8", "TLS-PSK-WITH-AES-128-CBC-SHA256")


def _bind_udp(host: str, port: int) -> str | None:
    """None when (host, port) can be bound, else why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _check_ports(host: str, port: int) -> list[Check]:
    checks = []
    for number, role in ((port, "CoAP"), (port + 1, "CoAP over DTLS")):
        error = _bind_udp(host, number)
        detail = "free" if error is None else f"{error} (another server running? choose --port)"
        checks.append(Check(f"UDP {host}:{number} ({role})", error is None, detail))
    return checks


def _check_carrier_addresses() -> Check:
    from server.settings import CARRIER_ADDRESSES

    failed = [
        f"{a} ({e})" for a in sorted({v[2] for v in CARRIER_ADDRESSES.values()}) if (e := _bind_udp(a, 0))
    ]
    if failed:
        detail = "not bindable: " + ", ".join(failed) + "; add them to lo, or run `testbed up --no-carriers`"
        return Check("carrier addresses 127.0.1.1-5", False, detail)
    return Check("carrier addresses 127.0.1.1-5", True, "bindable")


def _check_database(url: str) -> Check:
    from alembic.script import ScriptDirectory

    from server.store.database import alembic_config

    name = "database"
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        file = url[len(prefix) :].split("?", 1)[0]
        if file and file != ":memory:" and not Path(file).exists():
            return Check(name, True, f"{url}: not created yet (the server creates it at start)")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        revision = asyncio.run(_database_revision(url))
    except Exception as exc:  # a malformed URL, a missing driver, refused, bad credentials, timeout
        return Check(name, False, f"{url}: unreachable: {type(exc).__name__}: {exc}")
    if revision is None:
        state = "empty (the server migrates it at start)"
    elif revision == head:
        state = f"at revision {revision} (head)"
    else:
        state = f"at revision {revision}, head is {head}: run `testbed db upgrade`"
    return Check(name, True, f"{url}: {state}")


async def _database_revision(url: str) -> str | None:
    from server.store.database import Database

    database = Database.connect(url)
    try:
        async with asyncio.timeout(10):
            return await database.current_revision()
    finally:
        await database.dispose()


def _check_dtls() -> Check:
    try:
        from mbedtls import tls
    except ImportError as exc:
        return Check("python-mbedtls (DTLS)", False, f"not importable: {exc}")
    available = set(tls.ciphers_available())
    missing = [s for s in REQUIRED_SUITES if s not in available]
    if missing:
        return Check("python-mbedtls (DTLS)", False, "missing PSK suites: " + ", ".join(missing))
    return Check("python-mbedtls (DTLS)", True, "PSK suites " + ", ".join(REQUIRED_SUITES))


def _check_tool(title: str, names: Sequence[str], purpose: str) -> Check:
    found = next((path for n in names if (path := shutil.which(n))), None)
    return Check(title, found is not None, found or f"not found ({purpose})", required=False)


def _doctor_checks(db: str, host: str, port: int) -> list[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    checks = [Check("Python", sys.version_info >= (3, 11), f"{version} ({sys.executable})")]
    checks += _check_ports(host, port)
    checks.append(_check_carrier_addresses())
    checks.append(_check_database(db))
    checks.append(_check_dtls())
    checks.append(_check_tool("coap-client-openssl", ["coap-client-openssl"], "libcoap interop tests only"))
    checks.append(
        _check_tool(
            "chromium", ["chromium", "chromium-browser", "google-chrome"], "console browser tests only"
        )
    )
    return checks


@app.command()
def doctor(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="CoAP listen address to test.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65534, help="CoAP port to test (DTLS on port+1).")] = 5683,
) -> None:
    """Check the environment: ports, carrier addresses, database, DTLS support, tools.

    Python version, free CoAP/DTLS ports, the carrier loopback addresses, the database and its
    migration revision, the DTLS PSK cipher suites, optional tools. Exit code 1 when a required
    check fails."""
    from rich.table import Table

    checks = _doctor_checks(db or Settings().database_url, host, port)
    table = Table(title="testbed doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in checks:
        status = "[green]ok[/]" if check.ok else ("[red]FAIL[/]" if check.required else "[yellow]missing[/]")
        table.add_row(check.name, status, check.detail)
    console.print(table)
    failed = [c.name for c in checks if c.required and not c.ok]
    if failed:
        console.print(f"[red]{len(failed)} required check(s) failed:[/] {', '.join(failed)}")
        raise typer.Exit(1)
    console.print("[green]all required checks passed[/]")


def _run_on_database(db: str | None, work: Any) -> None:
    """Run `await work(database)` on the --db database; a database that is not reachable (or a
    URL that is none) ends in two lines."""
    from server.cli_errors import database_problem, database_url_problem
    from server.store.database import Database

    url = db or Settings().database_url
    problem = database_url_problem(url)
    if problem is not None:
        _explain(problem)

    async def main() -> None:
        database = Database.connect(url)
        try:
            await work(database)
        finally:
            await database.dispose()

    try:
        asyncio.run(main())
    except Exception as exc:
        problem = database_problem(url, exc)
        if problem is None:
            raise
        _explain(problem)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, revision: str = "head") -> None:
    """Apply the migrations (the server also does this at start)."""

    async def work(database: Any) -> None:
        await database.migrate(revision)
        console.print(f"database at revision {await database.current_revision()}")

    _run_on_database(db, work)


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the schema revision of the database."""

    async def work(database: Any) -> None:
        console.print(await database.current_revision() or "empty")

    _run_on_database(db, work)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
