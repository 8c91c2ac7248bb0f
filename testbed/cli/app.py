"""The `testbed` Typer application and the console the commands print on.

`testbed.cli` registers the commands of its modules on `app`, in the order `--help` lists them."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help="lwm2m-testbed: a private carrier cloud for NB-IoT/LTE-M devices.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
console = Console()
