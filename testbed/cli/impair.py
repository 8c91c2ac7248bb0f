"""`testbed impair`: a UDP proxy that impairs datagrams between modules and a server (a bad cell)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from testbed.cli.app import console
from testbed.cli.options import fail, on_signal, parse_address


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

    listen_address = parse_address(listen, "--listen")
    target_address = parse_address(target, "--target")
    settings = {"loss": loss, "duplicate": duplicate, "reorder": reorder, "delay": delay, "jitter": jitter}

    async def main() -> None:
        signalled = on_signal()
        proxy = asyncio.create_task(
            run_proxy(
                listen_address,
                target_address,
                rebind_every=rebind_every,
                seed=seed,
                loss=loss,
                duplicate=duplicate,
                reorder=reorder,
                delay=delay,
                jitter=jitter,
            )
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
        fail(f"cannot listen on {listen}: {exc}")
