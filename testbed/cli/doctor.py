"""`testbed doctor`: check the environment and print a table; exit 1 when a required check fails."""

from __future__ import annotations

from typing import Annotated

import typer

from server.settings import Settings
from testbed.cli.app import console
from testbed.cli.doctor_checks import doctor_checks
from testbed.cli.options import DbOption


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

    checks = doctor_checks(db or Settings().database_url, host, port)
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
