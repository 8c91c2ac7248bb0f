"""Test helpers shared across the suite: external tools and PostgreSQL availability.

A test that needs a system tool or PostgreSQL skips with a clear reason when it is absent,
except under CI=true, where it fails: CI installs and starts everything the suite needs.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

POSTGRES_HOST = os.environ.get("TESTBED_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("TESTBED_TEST_PG_PORT", "5432"))
POSTGRES_USER = os.environ.get("TESTBED_TEST_PG_USER", "postgres")
NATS_HOST = os.environ.get("TESTBED_TEST_NATS_HOST", "127.0.0.1")
NATS_PORT = int(os.environ.get("TESTBED_TEST_NATS_PORT", "4222"))


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(reason: str) -> None:
    """Skip with `reason`, or fail under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: it must be available)")
    pytest.skip(reason)


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (Debian package {package})")
        raise AssertionError("unreachable")
    return path


def postgres_available() -> bool:
    try:
        with socket.create_connection((POSTGRES_HOST, POSTGRES_PORT), timeout=1):
            return True
    except OSError:
        return False


def nats_available() -> bool:
    """Whether the machine's NATS server answers at NATS_HOST:NATS_PORT."""
    try:
        with socket.create_connection((NATS_HOST, NATS_PORT), timeout=1) as sock:
            return sock.recv(4) == b"INFO"
    except OSError:
        return False
