"""`testbed firmware ...`: firmware packages in the testbed's format (lwm2m.firmware_package)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

firmware_app = typer.Typer(
    help="Firmware packages for updates over the air (object 5).", no_args_is_help=True
)


@firmware_app.command("pack")
def pack_command(
    file: Annotated[Path, typer.Argument(help="The firmware image to wrap.")],
    model: Annotated[str, typer.Option(help="The module model the package is for: ML307R, MN316, ...")],
    version: Annotated[str, typer.Option(help="The version the module reports after the update.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write it (default: FILE-MODEL-VERSION.tbfw)."),
    ] = None,
) -> None:
    """Wrap FILE in the package header the emulated modules check: magic, model, version,
    length, SHA-256."""
    from emulator.module.models import MODELS, capabilities
    from lwm2m.firmware_package import pack

    try:
        caps = capabilities(model)
    except KeyError:
        raise typer.BadParameter(
            f"unknown model {model!r}; choose from {', '.join(MODELS)}", param_hint="--model"
        ) from None
    try:
        payload = file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="FILE") from None
    try:
        package = pack(caps.name, version, payload)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--version") from None
    target = output or file.with_name(f"{file.name}-{caps.name}-{version}.tbfw")
    try:
        target.write_bytes(package)
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {target}: {exc.strerror}", param_hint="--output") from None
    typer.echo(f"{target}  {len(package)} bytes  sha256 {hashlib.sha256(package).hexdigest()}")
