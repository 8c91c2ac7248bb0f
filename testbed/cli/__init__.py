"""`testbed`: the command line of the private cloud.

The CLI is part of the composition package: it brings the server and the emulator together
(`up`, `fleet`, `scenario`) through `testbed.cloud`, and imports each side lazily.

Commands, one module each, registered here in the order `--help` lists them: `up` (the whole
cloud), `server`, `fleet` (plain LwM2M clients, or AT modules with --at), `emulator` (one AT
module on TCP/pty), `scenario` (a send/expect script against a module, platform steps through a
running cloud's native API), `impair` (a lossy UDP proxy), `bench` (the checkout's benchmarks),
`doctor` (environment checks), `db` (migrations) and `firmware` (packages for updates over the
air).

Design choices: bad input is a usage error (typer.BadParameter, exit 2) and an environment error
a red message (exit 2), never a traceback; a failed scenario or doctor check exits 1. Ctrl-C
handlers are installed before a command says "Ctrl-C stops", so an early Ctrl-C stops cleanly.
"""

from __future__ import annotations

import logging

from testbed.cli import bench, doctor, emulator, fleet, impair, scenario, server, up
from testbed.cli.app import app
from testbed.cli.db import db_app
from testbed.cli.firmware import firmware_app

__all__ = ["app", "main"]

app.add_typer(db_app, name="db")
app.add_typer(firmware_app, name="firmware")
app.command()(up.up)
app.command()(server.server)
app.command("fleet")(fleet.fleet_command)
app.command()(emulator.emulator)
app.command()(scenario.scenario)
app.command()(impair.impair)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(bench.bench)
app.command()(doctor.doctor)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
