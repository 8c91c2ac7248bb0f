"""What the commands share: option types, parsing of command-line values, the settings they
start from, Ctrl-C handling and the one- or two-line way a command fails."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from server.settings import ListenerSettings, Settings
from testbed.cli.errors import DOCTOR, Problem, StartFailed, database_url_problem, models_problem

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: SQLite under ./data/, or TESTBED_DATABASE_URL)."),
]
ModelsOption = Annotated[
    str | None, typer.Option("--models", help="A directory of OMA DDF XML files to add to the object model.")
]
TranscriptOption = Annotated[
    Path | None,
    typer.Option(
        "--transcript",
        dir_okay=False,
        help="Append every line to and from the module, timestamped, to this file.",
    ),
]


def settings_for(
    db: str | None, host: str, port: int, dtls_port: int | None, models: str | None = None
) -> Settings:
    """The environment's settings with one open (`default`) listener and the command's options."""
    settings = Settings()
    problem = database_url_problem(db or settings.database_url)
    if problem is None and models:
        problem = models_problem(models)
    if problem is not None:
        explain(problem)
    overrides: dict[str, object] = {
        "listeners": [ListenerSettings(name="default", host=host, port=port, dtls_port=dtls_port)]
    }
    if db:
        overrides["database_url"] = db
    if models:
        overrides["models_dir"] = models
    return settings.model_copy(update=overrides)


def on_signal() -> asyncio.Event:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets. The handlers are installed at once: call it
    before telling the user that Ctrl-C stops, so that an early Ctrl-C is not a KeyboardInterrupt."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def fail(message: str, code: int = 2) -> NoReturn:
    """A red message on stderr and exit `code` (2: bad input or environment, 1: a failed run)."""
    Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def explain(problem: Problem) -> NoReturn:
    """A `testbed.cli.errors.Problem` on stderr, two lines (what is wrong; the fix and `testbed
    doctor`), exit 2."""
    err = Console(stderr=True, soft_wrap=True)
    err.print(f"[red]error:[/] {problem.what}", highlight=False, markup=True)
    err.print(f"  {problem.fix} {DOCTOR}.", highlight=False, markup=False)
    raise typer.Exit(2)


def run_explained(main: Coroutine[object, object, None]) -> None:
    """asyncio.run(main); a start that fails for a reason the user can fix ends in two lines."""
    try:
        asyncio.run(main)
    except StartFailed as exc:
        explain(exc.problem)


def check_model(model: str) -> None:
    from emulator.module.models import MODELS, capabilities

    try:
        capabilities(model)
    except KeyError:
        raise typer.BadParameter(
            f"unknown model {model!r}; choose from {', '.join(MODELS)}", param_hint="--model"
        ) from None


def parse_address(value: str, option: str) -> tuple[str, int]:
    """ "host:port" (":port" = 127.0.0.1) -> (host, port), or a usage error naming `option`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT", param_hint=option)
    return host.strip("[]") or "127.0.0.1", int(port)


def imei_value(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) == 15):
        raise typer.BadParameter(f"{value!r} is not an IMEI: give 15 digits (AT+CGSN answers it)")
    return value


def imsi_value(value: str) -> str:
    if not (value.isascii() and value.isdigit() and 1 <= len(value) <= 15):
        raise typer.BadParameter(f"{value!r} is not an IMSI: give up to 15 digits (AT+CIMI answers it)")
    return value


def parse_vars(pairs: list[str]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip().isidentifier():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        variables[name.strip()] = value
    return variables
