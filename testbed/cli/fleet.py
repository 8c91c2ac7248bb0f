"""`testbed fleet`: N emulated devices against a server (plain LwM2M clients, or AT modules with
--at), in this process or spread over worker processes (`--processes`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from testbed.cli.app import console
from testbed.cli.options import check_model, on_signal
from testbed.demo import DEMO_PREFIXES
from testbed.gc_tuning import freeze_long_lived_objects


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
        stop = on_signal()
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
        return ["-m", "testbed.cli", "fleet", *share_args, *common]

    async def main() -> None:
        stop = on_signal()
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

    check_model(model)

    async def main() -> None:
        stop = on_signal()
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
