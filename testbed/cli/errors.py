"""Why a command could not start, in words a person can act on.

The CLI turns the failures of a start (a busy port, an address not on this machine, a database
URL that is none, a PostgreSQL that does not answer, a models folder that is missing) into a
`Problem`: one line naming what is wrong (which port on which address, held by which process when
this machine can tell) and one line with the fix. Everything here is pure except the port probes
(`busy_addresses`) and the process lookup under /proc (`port_holder`).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.settings import Settings

DOCTOR = "`testbed doctor` checks ports, addresses and the database"
DATABASE_URL_FORMS = "sqlite+aiosqlite:///./data/testbed.db or postgresql+asyncpg://USER@HOST:5432/DB"
ASYNC_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


@dataclass(frozen=True, slots=True)
class Problem:
    what: str
    fix: str


@dataclass(frozen=True, slots=True)
class Binding:
    """An address a command listens on: `protocol` "udp" or "tcp", `role` in words, `option` the
    flag that moves it."""

    protocol: str
    host: str
    port: int
    role: str
    option: str


class StartFailed(Exception):
    """A command could not start; `problem` says why and what to do."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.what)
        self.problem = problem


# --- ports -------------------------------------------------------------------------------------


def bind_error(binding: Binding) -> OSError | None:
    """None when `binding` can be bound now, else the error of the attempt (the probe binds the
    way the listeners do: UDP without SO_REUSEADDR, TCP with it)."""
    family = socket.AF_INET6 if ":" in binding.host else socket.AF_INET
    kind = socket.SOCK_DGRAM if binding.protocol == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((binding.host, binding.port))
    except OSError as exc:
        return exc
    return None


def busy_addresses(bindings: Iterable[Binding]) -> Problem | None:
    """The first of `bindings` (fixed ports only) that cannot be bound, as a Problem."""
    for binding in bindings:
        if binding.port == 0:
            continue
        error = bind_error(binding)
        if error is not None:
            return port_problem(binding, error, port_holder(binding.protocol, binding.host, binding.port))
    return None


def port_problem(binding: Binding, error: OSError, holder: str | None) -> Problem:
    where = f"{binding.protocol.upper()} port {binding.port} on {binding.host} ({binding.role})"
    if error.errno == errno.EADDRINUSE:
        held = f" by {holder}" if holder else " by another process"
        return Problem(
            f"{where} is already in use{held}.",
            f"Stop it, or choose another port with {binding.option}.",
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return Problem(
            f"{where}: the address {binding.host} is not on this machine.",
            "Add it to the loopback interface, or run without the carrier listeners (--no-carriers).",
        )
    if error.errno == errno.EACCES:
        return Problem(
            f"{where}: permission denied (ports below 1024 need privileges).",
            f"Choose a port above 1023 with {binding.option}.",
        )
    return Problem(
        f"{where}: {error.strerror or error}.", f"Choose another address or port ({binding.option})."
    )


def port_holder(protocol: str, host: str, port: int) -> str | None:
    """`name (pid N)` of the process holding `port` (on `host` or a wildcard address), when this
    machine tells (Linux /proc, and only processes this user may inspect)."""
    inodes = _socket_inodes(protocol, host, port)
    if not inodes:
        return None
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return f"{_process_name(entry)} (pid {entry.name})"
        except OSError:
            continue
    return None


def _process_name(entry: Path) -> str:
    try:
        words = (entry / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "a process"
    shown = [w.decode(errors="replace") for w in words if w]
    if not shown:
        return "a process"
    text = " ".join(" ".join([Path(shown[0]).name, *shown[1:]]).split())
    return text if len(text) <= 60 else text[:59] + "…"


def _socket_inodes(protocol: str, host: str, port: int) -> set[str]:
    wanted = {_hex_ipv4(host), "00000000"} if ":" not in host else set()
    inodes: set[str] = set()
    for table in (protocol, protocol + "6"):
        try:
            lines = Path("/proc/net", table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) != port:
                continue
            if table.endswith("6") or not wanted or address in wanted:
                inodes.add(fields[9])
    return inodes


def _hex_ipv4(host: str) -> str:
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return ""
    return packed[::-1].hex().upper()


def describe_bind_failure(error: OSError, bindings: Iterable[Binding]) -> Problem:
    """A start that failed with `error` while binding: name the address when a probe finds it."""
    return busy_addresses(bindings) or Problem(
        f"cannot listen: {error.strerror or error}.", "Choose other ports or addresses."
    )


# --- database ----------------------------------------------------------------------------------


def database_url_problem(url: str) -> Problem | None:
    """A --db value that is no URL of a database this server can use."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return Problem(f"--db {url!r} is not a database URL.", f"Give {DATABASE_URL_FORMS}.")
    if parsed.drivername not in ASYNC_DRIVERS:
        return Problem(
            f"--db {url!r}: the server runs on SQLite (sqlite+aiosqlite) or PostgreSQL "
            f"(postgresql+asyncpg), not {parsed.drivername}.",
            f"Give {DATABASE_URL_FORMS}.",
        )
    return None


def database_problem(url: str, error: BaseException) -> Problem | None:
    """The database at `url` could not be opened: unreachable, refused, missing, unwritable.
    None when `error` is not a database failure."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    shown = _without_password(url)
    try:
        parsed = make_url(url)
    except Exception:
        return database_url_problem(url)
    cause = _root_cause(error.orig if isinstance(error, DBAPIError) and error.orig is not None else error)
    if parsed.drivername.startswith("sqlite"):
        if isinstance(error, SQLAlchemyError | OSError):
            return Problem(
                f"cannot open the SQLite database {parsed.database}: {_first_line(cause)}.",
                "Check that its folder exists and is writable, or give another file with --db.",
            )
        return None
    where = f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}"
    if isinstance(cause, socket.gaierror):
        return Problem(f"{where}: no such host ({_first_line(cause)}).", "Check the host name in --db.")
    if isinstance(cause, ConnectionRefusedError | TimeoutError) or (
        isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError)
    ):
        return Problem(
            f"{where} does not answer ({_first_line(cause)}).",
            f"Start PostgreSQL, or correct host and port in --db {shown}.",
        )
    name = type(cause).__name__
    if name == "InvalidCatalogNameError":
        return Problem(
            f"{where}: the database {parsed.database!r} does not exist.",
            f"Create it (createdb -h {parsed.host or 'localhost'} {parsed.database}) or name another in --db.",
        )
    if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return Problem(
            f"{where} refused the login: {_first_line(cause)}.", "Check user and password in --db."
        )
    if isinstance(error, SQLAlchemyError) or type(cause).__module__.startswith("asyncpg"):
        return Problem(f"{where}: {_first_line(cause)}.", f"Check --db {shown}.")
    return None


def _root_cause(error: BaseException) -> BaseException:
    """The driver's own exception behind SQLAlchemy's adapters (asyncpg's, an OSError)."""
    seen = error
    while seen.__cause__ is not None and seen.__cause__ is not seen:
        seen = seen.__cause__
    return seen


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].rstrip(".")


# --- object models -----------------------------------------------------------------------------


def models_problem(folder: str) -> Problem | None:
    """A --models folder that is missing or holds a DDF file that does not load."""
    from lwm2m.errors import ModelError
    from lwm2m.model.ddf import load_ddf_directory

    path = Path(folder)
    if not path.is_dir():
        state = "is a file, not a folder" if path.exists() else "does not exist"
        return Problem(
            f"--models {folder} {state}.",
            "Give a folder of OMA DDF XML files (one object definition per file).",
        )
    try:
        load_ddf_directory(path)
    except ModelError as exc:
        return Problem(f"--models {folder}: {_first_line(exc)}.", "Fix or remove that file.")
    return None


# --- what `up` and `server` listen on ----------------------------------------------------------


def listener_bindings(settings: Settings, *, http: bool) -> list[Binding]:
    """Every address `up`/`server` listens on, with the option that moves it."""
    result = []
    for spec in settings.all_listeners():
        custom = spec.name == "default"
        role = f"CoAP, {spec.name} listener"
        result.append(Binding("udp", spec.host, spec.port, role, "--port" if custom else "--no-carriers"))
        if spec.dtls_port is not None:
            option = "--dtls-port" if custom else "--no-carriers"
            result.append(Binding("udp", spec.host, spec.dtls_port, f"DTLS, {spec.name} listener", option))
    if http:
        result.append(
            Binding("tcp", settings.http_host, settings.http_port, "HTTP API and console", "--http-port")
        )
    return result


def start_problem(error: BaseException, settings: Settings, bindings: list[Binding]) -> Problem | None:
    """The Problem behind a failed start, or None when it is none the user can fix."""
    if isinstance(error, OSError) and error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return describe_bind_failure(error, bindings)
    return database_problem(settings.database_url, error)
