"""The checks of `testbed doctor`: Python, free CoAP/DTLS ports, the carrier loopback addresses,
the database and its migration revision, the DTLS PSK cipher suites, optional tools."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


REQUIRED_SUITES = ("TLS-PSK-WITH-AES-128-CCM-8", "TLS-PSK-WITH-AES-128-CBC-SHA256")


def _bind_udp(host: str, port: int) -> str | None:
    """None when (host, port) can be bound, else why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _check_ports(host: str, port: int) -> list[Check]:
    checks = []
    for number, role in ((port, "CoAP"), (port + 1, "CoAP over DTLS")):
        error = _bind_udp(host, number)
        detail = "free" if error is None else f"{error} (another server running? choose --port)"
        checks.append(Check(f"UDP {host}:{number} ({role})", error is None, detail))
    return checks


def _check_carrier_addresses() -> Check:
    from server.settings import CARRIER_ADDRESSES

    failed = [
        f"{a} ({e})" for a in sorted({v[2] for v in CARRIER_ADDRESSES.values()}) if (e := _bind_udp(a, 0))
    ]
    if failed:
        detail = "not bindable: " + ", ".join(failed) + "; add them to lo, or run `testbed up --no-carriers`"
        return Check("carrier addresses 127.0.1.1-5", False, detail)
    return Check("carrier addresses 127.0.1.1-5", True, "bindable")


def _check_database(url: str) -> Check:
    from alembic.script import ScriptDirectory

    from server.store.database import alembic_config

    name = "database"
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        file = url[len(prefix) :].split("?", 1)[0]
        if file and file != ":memory:" and not Path(file).exists():
            return Check(name, True, f"{url}: not created yet (the server creates it at start)")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        revision = asyncio.run(_database_revision(url))
    except Exception as exc:  # a malformed URL, a missing driver, refused, bad credentials, timeout
        return Check(name, False, f"{url}: unreachable: {type(exc).__name__}: {exc}")
    if revision is None:
        state = "empty (the server migrates it at start)"
    elif revision == head:
        state = f"at revision {revision} (head)"
    else:
        state = f"at revision {revision}, head is {head}: run `testbed db upgrade`"
    return Check(name, True, f"{url}: {state}")


async def _database_revision(url: str) -> str | None:
    from server.store.database import Database

    database = Database.connect(url)
    try:
        async with asyncio.timeout(10):
            return await database.current_revision()
    finally:
        await database.dispose()


def _check_dtls() -> Check:
    try:
        from mbedtls import tls
    except ImportError as exc:
        return Check("python-mbedtls (DTLS)", False, f"not importable: {exc}")
    available = set(tls.ciphers_available())
    missing = [s for s in REQUIRED_SUITES if s not in available]
    if missing:
        return Check("python-mbedtls (DTLS)", False, "missing PSK suites: " + ", ".join(missing))
    return Check("python-mbedtls (DTLS)", True, "PSK suites " + ", ".join(REQUIRED_SUITES))


def _check_tool(title: str, names: Sequence[str], purpose: str) -> Check:
    found = next((path for n in names if (path := shutil.which(n))), None)
    return Check(title, found is not None, found or f"not found ({purpose})", required=False)


def doctor_checks(db: str, host: str, port: int) -> list[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    checks = [Check("Python", sys.version_info >= (3, 11), f"{version} ({sys.executable})")]
    checks += _check_ports(host, port)
    checks.append(_check_carrier_addresses())
    checks.append(_check_database(db))
    checks.append(_check_dtls())
    checks.append(_check_tool("coap-client-openssl", ["coap-client-openssl"], "libcoap interop tests only"))
    checks.append(
        _check_tool(
            "chromium", ["chromium", "chromium-browser", "google-chrome"], "console browser tests only"
        )
    )
    return checks
