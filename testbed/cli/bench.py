"""`testbed bench`: the checkout's benchmarks, the same as `python -m bench`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from testbed.cli.options import fail


def _import_bench() -> ModuleType:
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
    fail(
        "the benchmarks are not installed with the package: run `testbed bench` (or "
        "`python -m bench`) from the lwm2m-testbed checkout"
    )


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
