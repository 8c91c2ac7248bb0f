"""`testbed emulator`: one emulated OneMO module speaking the AT commands of the module manual,
on TCP, a pseudo-terminal and/or stdin/stdout."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer
from rich.console import Console

from testbed.cli.app import console
from testbed.cli.errors import Binding, busy_addresses
from testbed.cli.options import (
    TranscriptOption,
    check_model,
    explain,
    fail,
    imei_value,
    imsi_value,
    on_signal,
    parse_address,
)


def emulator(
    model: Annotated[str, typer.Option(help="Module model: ML307R, MN316, MN316-S, ML305A, ...")] = "ML307R",
    imei: Annotated[
        str, typer.Option(callback=imei_value, help="IMEI the module reports (AT+CGSN): 15 digits.")
    ] = "869975030000461",
    imsi: Annotated[
        str, typer.Option(callback=imsi_value, help="IMSI the module reports (AT+CIMI): up to 15 digits.")
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
    check_model(model)
    if tcp is not None:
        parse_address(tcp, "--tcp")
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
        signalled = on_signal()
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
            host, port = parse_address(tcp, "--tcp")
            busy = busy_addresses([Binding("tcp", host, port, "AT interface of the module", "--tcp")])
            if busy is not None:
                explain(busy)
        fail(f"cannot serve the module: {exc}")
