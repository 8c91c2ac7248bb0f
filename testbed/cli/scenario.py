"""`testbed scenario`: a send/expect script (a file or a shipped flow) against an emulated module,
in this process or reached over TCP; `do` steps go to a running cloud's API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from testbed.cli.app import console
from testbed.cli.options import (
    TranscriptOption,
    check_model,
    fail,
    imei_value,
    imsi_value,
    parse_address,
    parse_vars,
)

if TYPE_CHECKING:
    from emulator.scenarios import LineTransport, ScenarioResult, Script
    from emulator.transcript import TranscriptWriter


class _EchoTransport:
    """Wraps a line transport: prints the exchange as it happens and records it to a transcript
    (the `--connect` case; an in-process module writes its own transcript)."""

    def __init__(self, inner: LineTransport, writer: TranscriptWriter | None, quiet: bool) -> None:
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
        str, typer.Option(callback=imei_value, help="IMEI of the in-process module: 15 digits.")
    ] = "869975030000461",
    imsi: Annotated[
        str, typer.Option(callback=imsi_value, help="IMSI of the in-process module: up to 15 digits.")
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
    variables = parse_vars(var or [])
    if server_address is not None:
        parse_address(server_address, "--server")
        variables["server"] = server_address
    target = parse_address(connect, "--connect") if connect is not None else None
    chosen_model = model or script.meta.get("model", "ML307R").split()[0]
    if target is None:
        check_model(chosen_model)
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
        fail(f"cannot reach the module at {connect}: {exc}" if connect else str(exc))
    if result.failure is not None:
        console.print("FAILED", style="bold red", end=" ")
        console.print(str(result.failure), highlight=False, markup=False)
        if "no action" in result.failure.reason and api is None:
            console.print("give --api URL --api-key KEY to let a running cloud perform the `do` steps")
        raise typer.Exit(1)
    console.print(f"[bold green]PASSED[/] {script.name}: {len(script.steps)} steps")


async def _run_scenario(
    script: Script,
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
) -> ScenarioResult:
    from emulator.scenarios import ModuleTransport, StreamTransport, run_scenario
    from emulator.transcript import open_transcript
    from testbed.cli.api_actions import ApiActions

    platform = ApiActions(api, api_key, device, script.timeout) if api and api_key else None
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
            inner: LineTransport = ModuleTransport(module)
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
