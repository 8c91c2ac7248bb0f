"""`testbed up`: the whole private cloud (LwM2M server, API and console, demo modules, a fleet)."""

from __future__ import annotations

from typing import Annotated

import typer

from testbed.cli.options import DbOption, ModelsOption, run_explained, settings_for
from testbed.demo import DEMO_MODULES, MODULE_PORT_BASE


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
    from testbed.cli.serving import run_server

    settings = settings_for(db, host, port, port + 1 if dtls_port is None else dtls_port, models)
    updates: dict[str, object] = {"carrier_map": carriers}
    if http_port is not None:
        updates["http_port"] = http_port
    run_explained(
        run_server(
            settings.model_copy(update=updates),
            fleet,
            interval,
            quiet,
            http=True,
            module_port_base=module_port_base,
        )
    )
